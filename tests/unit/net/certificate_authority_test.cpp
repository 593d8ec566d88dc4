#include "amoauth/net/certificate_authority.hpp"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace amoauth::net {
namespace {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::vector<X509Ptr> ReadCertificates(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(cert);
  }
  return out;
}

PkeyPtr ReadKey(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

/// X509_V_OK when `leaf` chains to `ca` for TLS server use.
int Verify(X509* leaf, X509* ca) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) == 1) {
    return X509_V_OK;
  }
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(CertificateAuthority, IssuesAVerifiableServerCertificate) {
  auto issued = IssueCertificate({"localhost", "*.amocrm.ru"}, {"127.0.0.1", "::1"});
  ASSERT_TRUE(issued) << issued.error().message();

  auto cas = ReadCertificates(issued->ca_certificate_pem);
  ASSERT_EQ(cas.size(), 1U);
  auto chain = ReadCertificates(issued->certificate_chain_pem);
  ASSERT_EQ(chain.size(), 2U);  // leaf, then CA
  X509* ca = cas[0].get();
  X509* leaf = chain[0].get();
  EXPECT_EQ(X509_cmp(chain[1].get(), ca), 0);

  EXPECT_EQ(X509_check_ca(ca), 1);
  EXPECT_TRUE((X509_get_key_usage(ca) & KU_KEY_CERT_SIGN) != 0);
  EXPECT_EQ(X509_check_ca(leaf), 0);
  EXPECT_TRUE((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) != 0);
  EXPECT_EQ(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);

  EXPECT_EQ(Verify(leaf, ca), X509_V_OK);

  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf, "example.amocrm.ru", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(leaf, "a.b.amocrm.ru", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(leaf, "example.kommo.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "::1", 0), 1);
  EXPECT_NE(X509_check_ip_asc(leaf, "127.0.0.2", 0), 1);

  PkeyPtr key = ReadKey(issued->private_key_pem);
  ASSERT_TRUE(key);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  EXPECT_EQ(X509_check_private_key(leaf, key.get()), 1);
  EXPECT_NE(X509_check_private_key(ca, key.get()), 1);

  // Valid from an hour ago: a clock slightly behind still accepts it.
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(leaf)), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(leaf)), 0);
}

TEST(CertificateAuthority, EveryCallMakesANewCaWithRandomSerials) {
  auto a = IssueCertificate({"localhost"}, {});
  auto b = IssueCertificate({"localhost"}, {});
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->ca_certificate_pem, b->ca_certificate_pem);
  auto leaf_a = ReadCertificates(a->certificate_chain_pem);
  auto leaf_b = ReadCertificates(b->certificate_chain_pem);
  auto ca_a = ReadCertificates(a->ca_certificate_pem);
  ASSERT_FALSE(leaf_a.empty());
  ASSERT_FALSE(leaf_b.empty());
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf_a[0].get()),
                             X509_get0_serialNumber(leaf_b[0].get())),
            0);
  // Another CA does not vouch for it.
  EXPECT_NE(Verify(leaf_b[0].get(), ca_a[0].get()), X509_V_OK);
}

TEST(CertificateAuthority, IpOnlyCertificate) {
  auto issued = IssueCertificate({}, {"127.0.0.1"});
  ASSERT_TRUE(issued) << issued.error().message();
  auto chain = ReadCertificates(issued->certificate_chain_pem);
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(X509_check_ip_asc(chain[0].get(), "127.0.0.1", 0), 1);
}

TEST(CertificateAuthority, RejectsBadInput) {
  auto no_names = IssueCertificate({}, {});
  ASSERT_FALSE(no_names);
  EXPECT_TRUE(Is(no_names.error(), Errc::kInvalidArgument));
  auto bad_ip = IssueCertificate({"localhost"}, {"127.0.0.300"});
  ASSERT_FALSE(bad_ip);
  EXPECT_TRUE(Is(bad_ip.error(), Errc::kInvalidArgument));
  auto bad_days = IssueCertificate({"localhost"}, {}, 0);
  ASSERT_FALSE(bad_days);
  EXPECT_TRUE(Is(bad_days.error(), Errc::kInvalidArgument));
}

}  // namespace
}  // namespace amoauth::net
