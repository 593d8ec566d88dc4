#pragma once

#include <string>
#include <string_view>

namespace amoauth::crypto {

/// Lowercase hex SHA-256 of `data`.
[[nodiscard]] std::string Sha256Hex(std::string_view data);

/// Lowercase hex HMAC-SHA256(key, message) — the disconnect-hook and webhook signature format.
[[nodiscard]] std::string HmacSha256Hex(std::string_view key, std::string_view message);

/// Raw 32-byte HMAC-SHA256(key, message).
[[nodiscard]] std::string HmacSha256(std::string_view key, std::string_view message);

}  // namespace amoauth::crypto
