#include "amoauth/core/webhook_signature.hpp"

#include <charconv>

#include <fmt/format.h>

#include "amoauth/crypto/constant_time.hpp"
#include "amoauth/crypto/digest.hpp"

namespace amoauth::core {

std::string SignWebhook(std::string_view secret, std::int64_t unix_seconds, std::string_view body) {
  const std::string t = std::to_string(unix_seconds);
  std::string message;
  message.reserve(t.size() + 1 + body.size());
  message.append(t).append(".").append(body);
  return fmt::format("t={},v1={}", t, crypto::HmacSha256Hex(secret, message));
}

bool VerifyWebhook(std::string_view secret,
                   std::string_view header_value,
                   std::string_view body,
                   std::int64_t now_unix_seconds,
                   std::chrono::seconds tolerance) {
  constexpr std::string_view kT = "t=";
  constexpr std::string_view kV1 = ",v1=";
  if (!header_value.starts_with(kT)) {
    return false;
  }
  const std::size_t comma = header_value.find(kV1);
  if (comma == std::string_view::npos) {
    return false;
  }
  const std::string_view t_text = header_value.substr(kT.size(), comma - kT.size());
  std::int64_t t = 0;
  const auto [end, ec] = std::from_chars(t_text.data(), t_text.data() + t_text.size(), t);
  if (ec != std::errc{} || end != t_text.data() + t_text.size()) {
    return false;
  }
  const std::int64_t skew = now_unix_seconds > t ? now_unix_seconds - t : t - now_unix_seconds;
  if (skew > tolerance.count()) {
    return false;
  }
  const std::string expected = SignWebhook(secret, t, body);
  return crypto::ConstantTimeEquals(expected, header_value);
}

}  // namespace amoauth::core
