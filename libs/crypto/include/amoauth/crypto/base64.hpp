#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace amoauth::crypto {

/// Standard base64 with padding (RFC 4648 §4).
[[nodiscard]] std::string Base64Encode(std::string_view bytes);
/// Strict: rejects characters outside the alphabet and bad padding. Surrounding ASCII whitespace
/// is ignored (keys pasted into .env files often carry a newline).
[[nodiscard]] std::optional<std::string> Base64Decode(std::string_view text);

/// base64url without padding (RFC 4648 §5), as JWTs use.
[[nodiscard]] std::string Base64UrlEncode(std::string_view bytes);
/// Accepts base64url with or without padding.
[[nodiscard]] std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace amoauth::crypto
