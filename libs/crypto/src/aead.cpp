#include "amoauth/crypto/aead.hpp"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <openssl/evp.h>

#include "amoauth/crypto/base64.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/crypto/random_bytes.hpp"

namespace amoauth::crypto {
namespace {

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kIdHexChars = 16;
constexpr std::string_view kIdLabel = "amoauth master key id";

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// Sealing fails only on allocation failure or a broken OpenSSL; storing an unencrypted or
// empty value instead would be worse than stopping.
[[noreturn]] void DieOnSealFailure(const char* what) {
  std::fprintf(stderr, "amoauth: AES-256-GCM seal failed at %s\n", what);
  std::abort();
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* Bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// EVP update calls take int lengths; values bigger than that never reach this layer legitimately.
bool FitsInt(std::size_t n) {
  return n <= static_cast<std::size_t>(INT_MAX);
}

}  // namespace

MasterKey::MasterKey(const std::array<std::uint8_t, 32>& key)
    : key_(key),
      id_(HmacSha256Hex(std::string_view(reinterpret_cast<const char*>(key_.data()), key_.size()),
                        kIdLabel)
              .substr(0, kIdHexChars)) {}

std::optional<MasterKey> MasterKey::FromBase64(std::string_view text) {
  const auto decoded = Base64Decode(text);
  if (!decoded || decoded->size() != kKeySize) {
    return std::nullopt;
  }
  std::array<std::uint8_t, kKeySize> key{};
  for (std::size_t i = 0; i < kKeySize; ++i) {
    key[i] = static_cast<std::uint8_t>((*decoded)[i]);
  }
  return MasterKey(key);
}

MasterKey MasterKey::Generate() {
  std::array<std::uint8_t, kKeySize> key{};
  FillRandom(key);
  return MasterKey(key);
}

std::string MasterKey::ToBase64() const {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(key_.data()), key_.size()));
}

std::string Seal(const MasterKey& key, std::string_view plaintext, std::string_view aad) {
  if (!FitsInt(plaintext.size()) || !FitsInt(aad.size())) {
    DieOnSealFailure("input size");
  }
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = Bytes(out);
  FillRandom(std::span<std::uint8_t>(nonce, kNonceSize));

  const CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) {
    DieOnSealFailure("EVP_CIPHER_CTX_new");
  }
  // GCM's default IV length is 12, which is also what we store, so no EVP_CTRL_GCM_SET_IVLEN.
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.Bytes().data(), nonce) != 1) {
    DieOnSealFailure("EVP_EncryptInit_ex");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    DieOnSealFailure("EVP_EncryptUpdate(aad)");
  }
  unsigned char* ciphertext = nonce + kNonceSize;
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(
          ctx.get(), ciphertext, &len, Bytes(plaintext), static_cast<int>(plaintext.size())) != 1) {
    DieOnSealFailure("EVP_EncryptUpdate");
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + plaintext.size(), &final_len) != 1 ||
      final_len != 0) {
    DieOnSealFailure("EVP_EncryptFinal_ex");
  }
  unsigned char* tag = ciphertext + plaintext.size();
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    DieOnSealFailure("EVP_CTRL_GCM_GET_TAG");
  }
  return out;
}

std::optional<std::string> Open(const MasterKey& key,
                                std::string_view sealed,
                                std::string_view aad) {
  if (sealed.size() < kNonceSize + kTagSize || !FitsInt(sealed.size()) || !FitsInt(aad.size())) {
    return std::nullopt;
  }
  const auto nonce = sealed.substr(0, kNonceSize);
  const auto ciphertext = sealed.substr(kNonceSize, sealed.size() - kNonceSize - kTagSize);
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer, so copy the tag out of the caller's view.
  std::array<unsigned char, kTagSize> tag{};
  const auto tag_view = sealed.substr(sealed.size() - kTagSize);
  std::copy(tag_view.begin(), tag_view.end(), tag.begin());

  const CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) {
    return std::nullopt;
  }
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.Bytes().data(), Bytes(nonce)) !=
      1) {
    return std::nullopt;
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return std::nullopt;
  }
  std::string plaintext(ciphertext.size(), '\0');
  if (!ciphertext.empty() && EVP_DecryptUpdate(ctx.get(),
                                               Bytes(plaintext),
                                               &len,
                                               Bytes(ciphertext),
                                               static_cast<int>(ciphertext.size())) != 1) {
    return std::nullopt;
  }
  if (EVP_CIPHER_CTX_ctrl(
          ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) != 1) {
    return std::nullopt;
  }
  // Plaintext bytes written so far are unauthenticated until Final succeeds; drop them on failure.
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), Bytes(plaintext) + ciphertext.size(), &final_len) != 1) {
    return std::nullopt;
  }
  return plaintext;
}

}  // namespace amoauth::crypto
