#include "amoauth/crypto/digest.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace amoauth::crypto {
namespace {

constexpr std::size_t kSha256Size = 32;

std::string ToLowerHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    hex.push_back(kDigits[byte >> 4U]);
    hex.push_back(kDigits[byte & 0x0FU]);
  }
  return hex;
}

// SHA-256 and HMAC-SHA256 cannot fail on valid inputs short of memory exhaustion or a broken
// OpenSSL install; returning an empty digest would silently match other empty digests, so abort.
[[noreturn]] void DieOnOpenSslFailure(const char* what) {
  std::fprintf(stderr, "amoauth: OpenSSL %s failed\n", what);
  std::abort();
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &digest_size, EVP_sha256(), nullptr) !=
      1) {
    DieOnOpenSslFailure("EVP_Digest(SHA-256)");
  }
  return ToLowerHex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest_size));
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  // HMAC() treats a null key as "reuse the previous key" in some OpenSSL versions; an empty
  // key is legal HMAC, so pass a real (zero-length) buffer.
  // The same goes for an empty message's null data().
  static constexpr unsigned char kEmpty = 0;
  const void* key_data = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  const unsigned char* message_data =
      message.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(message.data());
  if (HMAC(EVP_sha256(),
           key_data,
           static_cast<int>(key.size()),
           message_data,
           message.size(),
           mac.data(),
           &mac_size) == nullptr ||
      mac_size != kSha256Size) {
    DieOnOpenSslFailure("HMAC(SHA-256)");
  }
  return {reinterpret_cast<const char*>(mac.data()), mac_size};
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  return ToLowerHex(HmacSha256(key, message));
}

}  // namespace amoauth::crypto
