#include "amoauth/crypto/aead.hpp"

#include <string>

#include <gtest/gtest.h>

#include "amoauth/crypto/base64.hpp"

namespace amoauth::crypto {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// The key of the GCM specification's test cases 13-18 (feffe992... twice).
constexpr std::string_view kGcmSpecKeyBase64 = "/v/pkoZlcxxtao+UZzCDCP7/6ZKGZXMcbWqPlGcwgwg=";

MasterKey TestKey() {
  return MasterKey::FromBase64(kGcmSpecKeyBase64).value();
}

TEST(MasterKey, ParsesBase64Of32Bytes) {
  const auto key = MasterKey::FromBase64(kGcmSpecKeyBase64);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->ToBase64(), kGcmSpecKeyBase64);
  EXPECT_EQ(key->Bytes()[0], 0xfe);
}

TEST(MasterKey, ToleratesATrailingNewline) {
  EXPECT_TRUE(MasterKey::FromBase64(std::string(kGcmSpecKeyBase64) + "\n").has_value());
}

TEST(MasterKey, RejectsWrongSizesAndGarbage) {
  EXPECT_FALSE(MasterKey::FromBase64("").has_value());
  EXPECT_FALSE(MasterKey::FromBase64(Base64Encode(std::string(31, 'k'))).has_value());
  EXPECT_FALSE(MasterKey::FromBase64(Base64Encode(std::string(33, 'k'))).has_value());
  EXPECT_FALSE(MasterKey::FromBase64("not base64 at all!").has_value());
}

// Python: hmac.new(key, b"amoauth master key id", hashlib.sha256).hexdigest()[:16]
TEST(MasterKey, IdIsHmacPrefixNotTheKey) {
  EXPECT_EQ(TestKey().Id(), "2a3f98221e4d0a21");
}

TEST(MasterKey, GeneratedKeysAreDistinctAndRoundTrip) {
  const MasterKey a = MasterKey::Generate();
  const MasterKey b = MasterKey::Generate();
  EXPECT_NE(a.Bytes(), b.Bytes());
  EXPECT_NE(a.Id(), b.Id());
  const auto reparsed = MasterKey::FromBase64(a.ToBase64());
  ASSERT_TRUE(reparsed.has_value());
  EXPECT_EQ(reparsed->Bytes(), a.Bytes());
  EXPECT_EQ(reparsed->Id(), a.Id());
  EXPECT_EQ(a.Id().size(), 16U);
}

TEST(Aead, SealThenOpenRoundTrips) {
  const MasterKey key = TestKey();
  const std::string sealed = Seal(key, "def50200refresh", "amo_tokens:1:client:refresh");
  EXPECT_EQ(sealed.size(), 12U + 15U + 16U);
  EXPECT_EQ(Open(key, sealed, "amo_tokens:1:client:refresh"), "def50200refresh");
}

TEST(Aead, RoundTripsEmptyPlaintextAndEmptyAad) {
  const MasterKey key = TestKey();
  const std::string sealed = Seal(key, "", "");
  EXPECT_EQ(sealed.size(), 28U);
  EXPECT_EQ(Open(key, sealed, ""), "");
}

TEST(Aead, TwoSealsOfTheSamePlaintextDiffer) {
  const MasterKey key = TestKey();
  EXPECT_NE(Seal(key, "same", "aad"), Seal(key, "same", "aad"));
}

TEST(Aead, RejectsAnyFlippedByte) {
  const MasterKey key = TestKey();
  const std::string sealed = Seal(key, "secret", "aad");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_FALSE(Open(key, tampered, "aad").has_value()) << "byte " << i;
  }
}

TEST(Aead, RejectsWrongAad) {
  const MasterKey key = TestKey();
  const std::string sealed = Seal(key, "secret", "amo_tokens:1:client:access");
  EXPECT_FALSE(Open(key, sealed, "amo_tokens:2:client:access").has_value());
  EXPECT_FALSE(Open(key, sealed, "").has_value());
}

TEST(Aead, RejectsWrongKey) {
  const std::string sealed = Seal(TestKey(), "secret", "aad");
  EXPECT_FALSE(Open(MasterKey::Generate(), sealed, "aad").has_value());
}

TEST(Aead, RejectsTruncatedInput) {
  const MasterKey key = TestKey();
  const std::string sealed = Seal(key, "secret", "aad");
  EXPECT_FALSE(Open(key, "", "aad").has_value());
  EXPECT_FALSE(Open(key, sealed.substr(0, 27), "aad").has_value());
  EXPECT_FALSE(Open(key, sealed.substr(0, sealed.size() - 1), "aad").has_value());
}

// GCM specification test case 16 (AES-256, 96-bit IV, with AAD), laid out as nonce||ct||tag:
// pins the wire format other implementations must read.
TEST(Aead, OpensGcmSpecTestCase16) {
  const std::string sealed = FromHex(
      "cafebabefacedbaddecaf888"
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
      "56828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b");
  const std::string aad = FromHex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const auto plaintext = Open(TestKey(), sealed, aad);
  ASSERT_TRUE(plaintext.has_value());
  EXPECT_EQ(*plaintext,
            FromHex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809"
                    "532fcf0e2449a6b525b16aedf5aa0de657ba637b39"));
}

}  // namespace
}  // namespace amoauth::crypto
