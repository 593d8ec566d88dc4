#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace amoauth::crypto {

/// The 32-byte key that encrypts tokens and client secrets at rest (AMOAUTH_MASTER_KEY).
/// Its Id() is stored beside every ciphertext, so that keys can be rotated later.
class MasterKey {
 public:
  /// From base64 of exactly 32 bytes; nullopt otherwise.
  [[nodiscard]] static std::optional<MasterKey> FromBase64(std::string_view text);
  [[nodiscard]] static MasterKey Generate();

  [[nodiscard]] std::string ToBase64() const;
  /// 16 lowercase hex chars derived from the key (HMAC, not the key itself).
  [[nodiscard]] const std::string& Id() const { return id_; }
  [[nodiscard]] const std::array<std::uint8_t, 32>& Bytes() const { return key_; }

 private:
  explicit MasterKey(const std::array<std::uint8_t, 32>& key);
  std::array<std::uint8_t, 32> key_{};
  std::string id_;
};

/// The key of `current` and `previous` (may be null) whose Id() is `key_id`; nullptr if neither.
/// Stores read a row with the key its "keyId" names: during a rotation, either.
[[nodiscard]] inline const MasterKey* KeyById(std::string_view key_id,
                                              const MasterKey& current,
                                              const MasterKey* previous) {
  if (key_id == current.Id()) {
    return &current;
  }
  if (previous != nullptr && key_id == previous->Id()) {
    return previous;
  }
  return nullptr;
}

/// AES-256-GCM with a fresh 12-byte random nonce per call. Output: nonce || ciphertext || 16-byte
/// tag (binary). `aad` binds the ciphertext to where it is stored (e.g.
/// "amo_tokens:123:client:access"), so a ciphertext copied to another row does not decrypt.
[[nodiscard]] std::string Seal(const MasterKey& key,
                               std::string_view plaintext,
                               std::string_view aad);

/// Inverse of Seal; nullopt if the key, the aad or any byte is wrong.
[[nodiscard]] std::optional<std::string> Open(const MasterKey& key,
                                              std::string_view sealed,
                                              std::string_view aad);

}  // namespace amoauth::crypto
