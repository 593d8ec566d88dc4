#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

/// The signature on amoauth's webhooks (docs/api.md, "Webhooks"):
///   X-Amoauth-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>
/// The timestamp is inside the signed message, so a receiver that rejects old timestamps rejects
/// replays; the body is signed byte for byte as sent.
namespace amoauth::core {

inline constexpr std::string_view kWebhookSignatureHeader = "X-Amoauth-Signature";

[[nodiscard]] std::string SignWebhook(std::string_view secret,
                                      std::int64_t unix_seconds,
                                      std::string_view body);

/// What a receiver does (and our tests): parses the header, recomputes, compares in constant time
/// and checks |now - t| <= tolerance.
[[nodiscard]] bool VerifyWebhook(std::string_view secret,
                                 std::string_view header_value,
                                 std::string_view body,
                                 std::int64_t now_unix_seconds,
                                 std::chrono::seconds tolerance);

}  // namespace amoauth::core
