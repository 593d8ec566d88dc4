#include "jwt_signer.hpp"

#include <memory>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace amoauth::sandbox {
namespace {

std::vector<std::string> Split(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot = token.find('.'); dot != std::string::npos; dot = token.find('.', start)) {
    parts.push_back(token.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(token.substr(start));
  return parts;
}

/// Verifies RS256 with nothing but OpenSSL and the PEM public key: independent of Verify().
bool OpenSslVerifies(const std::string& public_pem, const std::string& token) {
  const auto last_dot = token.rfind('.');
  const std::string signed_part = token.substr(0, last_dot);
  const auto signature = Base64UrlDecode(token.substr(last_dot + 1));
  if (!signature) {
    return false;
  }
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())), BIO_free);
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(),
                                                                   EVP_MD_CTX_free);
  if (!key || !md ||
      EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(md.get(),
                          reinterpret_cast<const unsigned char*>(signature->data()),  // NOLINT
                          signature->size(),
                          reinterpret_cast<const unsigned char*>(signed_part.data()),  // NOLINT
                          signed_part.size()) == 1;
}

class JwtSignerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto generated = JwtSigner::Generate();
    ASSERT_TRUE(generated.has_value());
    signer_ = std::make_unique<JwtSigner>(std::move(*generated));
  }
  static void TearDownTestSuite() { signer_.reset(); }

  static std::string SignSample() {
    const boost::json::object header{{"typ", "JWT"}, {"alg", "RS256"}, {"jti", "ab"}};
    const boost::json::object payload{{"aud", "client"}, {"jti", "ab"}, {"sub", "10000001"}};
    auto token = signer_->Sign(header, payload);
    EXPECT_TRUE(token.has_value());
    return token.has_value() ? *token : std::string();
  }

  static std::unique_ptr<JwtSigner> signer_;
};

std::unique_ptr<JwtSigner> JwtSignerTest::signer_;

TEST(Base64Url, RoundTripsAndUsesTheUrlAlphabet) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xfe"), "-__-");
  EXPECT_EQ(Base64UrlDecode("-__-"), std::string("\xfb\xff\xfe"));
  EXPECT_EQ(Base64UrlDecode("Zm9vYg"), std::string("foob"));
  EXPECT_EQ(Base64UrlDecode("Zm9vYg=="), std::string("foob"));
  EXPECT_FALSE(Base64UrlDecode("Zm9v+g").has_value());
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all.push_back(static_cast<char>(i));
  }
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(all)), all);
}

TEST_F(JwtSignerTest, ProducesThreeBase64UrlParts) {
  const std::string token = SignSample();
  const auto parts = Split(token);
  ASSERT_EQ(parts.size(), 3U);
  for (const auto& part : parts) {
    EXPECT_FALSE(part.empty());
    EXPECT_EQ(part.find_first_of("+/="), std::string::npos);
  }
  const auto header = boost::json::parse(*Base64UrlDecode(parts[0])).as_object();
  EXPECT_EQ(header.at("alg"), "RS256");
  EXPECT_EQ(header.at("typ"), "JWT");
  const auto payload = boost::json::parse(*Base64UrlDecode(parts[1])).as_object();
  EXPECT_EQ(payload.at("sub"), "10000001");
  // RSA-2048: a 256-byte signature.
  EXPECT_EQ(Base64UrlDecode(parts[2])->size(), 256U);
}

TEST_F(JwtSignerTest, SignatureVerifiesWithThePublicKey) {
  const std::string token = SignSample();
  const std::string pem = signer_->PublicKeyPem();
  EXPECT_TRUE(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
  EXPECT_TRUE(OpenSslVerifies(pem, token));
  const auto payload = signer_->Verify(token);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(payload->at("aud"), "client");
}

TEST_F(JwtSignerTest, RejectsTamperingAndForeignKeys) {
  const std::string token = SignSample();
  const auto parts = Split(token);
  const std::string forged_payload =
      Base64UrlEncode(R"({"aud":"client","jti":"ab","sub":"99999999"})");
  EXPECT_FALSE(signer_->Verify(parts[0] + "." + forged_payload + "." + parts[2]).has_value());
  EXPECT_FALSE(signer_->Verify(parts[0] + "." + parts[1]).has_value());
  EXPECT_FALSE(signer_->Verify(token + ".x").has_value());
  EXPECT_FALSE(signer_->Verify("garbage").has_value());
  const std::string none_header = Base64UrlEncode(R"({"typ":"JWT","alg":"none"})");
  EXPECT_FALSE(signer_->Verify(none_header + "." + parts[1] + "." + parts[2]).has_value());

  auto other = JwtSigner::Generate();
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->Verify(token).has_value());
}

}  // namespace
}  // namespace amoauth::sandbox
