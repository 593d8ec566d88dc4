#include "amoauth/net/certificate_authority.hpp"

#include <array>
#include <climits>
#include <cstdint>
#include <ctime>
#include <memory>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace amoauth::net {
namespace {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GenNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;

constexpr long kBackdateSeconds = 60 * 60;

PkeyPtr NewP256Key() {
  return PkeyPtr(EVP_EC_gen("P-256"));
}

bool SetRandomSerial(X509* cert) {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return false;
  }
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x01;  // and never zero or short
  BnPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  return bn && BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr;
}

bool SetName(X509_NAME* name, const std::string& common_name) {
  const auto* org = reinterpret_cast<const unsigned char*>("amoauth");
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  return X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, org, -1, -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) == 1;
}

// Adds an extension written in OpenSSL's config syntax; `issuer` supplies the AKI.
bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// Version, serial, validity and public key: what every certificate here starts with.
X509Ptr NewCertificate(EVP_PKEY* key, int valid_days) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !SetRandomSerial(cert.get()) ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), valid_days, 0, nullptr) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return nullptr;
  }
  return cert;
}

// SAN built structurally (not as "DNS:a,IP:b" text), so no name can inject config syntax.
bool AddSubjectAltNames(X509* cert,
                        const std::vector<std::string>& dns_names,
                        const std::vector<std::string>& ip_addresses,
                        bool& bad_input) {
  NamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) {
    return false;
  }
  for (const std::string& dns : dns_names) {
    if (dns.empty() || dns.size() > static_cast<std::size_t>(INT_MAX)) {
      bad_input = true;
      return false;
    }
    GenNamePtr gen(GENERAL_NAME_new());
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!gen || ia5 == nullptr) {
      ASN1_IA5STRING_free(ia5);
      return false;
    }
    if (ASN1_STRING_set(ia5, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_IA5STRING_free(ia5);
      return false;
    }
    GENERAL_NAME_set0_value(gen.get(), GEN_DNS, ia5);
    if (sk_GENERAL_NAME_push(names.get(), gen.get()) == 0) {
      return false;
    }
    static_cast<void>(gen.release());
  }
  for (const std::string& ip : ip_addresses) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (octets == nullptr) {
      bad_input = true;
      return false;
    }
    GenNamePtr gen(GENERAL_NAME_new());
    if (!gen) {
      ASN1_OCTET_STRING_free(octets);
      return false;
    }
    GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, octets);
    if (sk_GENERAL_NAME_push(names.get(), gen.get()) == 0) {
      return false;
    }
    static_cast<void>(gen.release());
  }
  return X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

bool ToPem(X509* cert, std::string& out) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return false;
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  out.append(data, static_cast<std::size_t>(size));
  return true;
}

bool ToPem(EVP_PKEY* key, std::string& out) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return false;
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  out.append(data, static_cast<std::size_t>(size));
  return true;
}

}  // namespace

Result<IssuedCertificate> IssueCertificate(const std::vector<std::string>& dns_names,
                                           const std::vector<std::string>& ip_addresses,
                                           int valid_days) {
  if ((dns_names.empty() && ip_addresses.empty()) || valid_days <= 0) {
    return Fail(Errc::kInvalidArgument);
  }
  const auto crypto_failure = [] { return Fail(Errc::kCryptoFailure); };

  // The CA: self-signed, may sign certificates and nothing else.
  PkeyPtr ca_key = NewP256Key();
  if (!ca_key) {
    return crypto_failure();
  }
  X509Ptr ca = NewCertificate(ca_key.get(), valid_days);
  if (!ca || !SetName(X509_get_subject_name(ca.get()), "amoauth throwaway CA") ||
      X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash") ||
      !AddExtension(ca.get(), ca.get(), NID_authority_key_identifier, "keyid:always") ||
      X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0) {
    return crypto_failure();
  }

  // The leaf: a TLS server certificate for the given names.
  PkeyPtr key = NewP256Key();
  if (!key) {
    return crypto_failure();
  }
  const std::string& common_name = dns_names.empty() ? ip_addresses.front() : dns_names.front();
  X509Ptr leaf = NewCertificate(key.get(), valid_days);
  if (!leaf || !SetName(X509_get_subject_name(leaf.get()), common_name) ||
      X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca.get())) != 1) {
    return crypto_failure();
  }
  bool bad_input = false;
  if (!AddSubjectAltNames(leaf.get(), dns_names, ip_addresses, bad_input)) {
    return bad_input ? Fail(Errc::kInvalidArgument) : crypto_failure();
  }
  if (!AddExtension(leaf.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(leaf.get(), ca.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(leaf.get(), ca.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExtension(leaf.get(), ca.get(), NID_subject_key_identifier, "hash") ||
      !AddExtension(leaf.get(), ca.get(), NID_authority_key_identifier, "keyid:always") ||
      X509_sign(leaf.get(), ca_key.get(), EVP_sha256()) == 0) {
    return crypto_failure();
  }

  IssuedCertificate out;
  if (!ToPem(ca.get(), out.ca_certificate_pem) || !ToPem(leaf.get(), out.certificate_chain_pem) ||
      !ToPem(ca.get(), out.certificate_chain_pem) || !ToPem(key.get(), out.private_key_pem)) {
    return crypto_failure();
  }
  return out;
}

}  // namespace amoauth::net
