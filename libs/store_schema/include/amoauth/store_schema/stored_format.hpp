#pragma once
// How every engine writes values into the shared schema (docs/storage.md §2, §3): the rounding of
// times, the AAD that binds each sealed secret to its row, and the bounds and retention periods.
// One copy, so that a row written by one engine reads the same in the other (export/import).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "amoauth/core/clock.hpp"

namespace amoauth::store_schema {

/// amoCRM's authorization code lifetime (protocol §3.4): the code ledger may forget older codes.
inline constexpr auto kCodeLifetime = std::chrono::minutes(20);
/// How long delivered webhook events are kept for inspection before ClaimDue prunes them.
inline constexpr auto kDeliveredRetention = std::chrono::days(7);
/// At most this many hook codes are queued: far more than amoCRM sends in 20 minutes.
inline constexpr std::int64_t kMaxQueuedCodes = 10'000;

/// What a round trip through the ISO-8601 text gives back.
[[nodiscard]] inline core::TimePoint FloorToSeconds(core::TimePoint t) {
  return std::chrono::time_point_cast<core::TimePoint::duration>(
      std::chrono::floor<std::chrono::seconds>(t));
}

/// For the end of a lease or a claim: rounded up, so that storing it in whole seconds never ends
/// it early (a second late is harmless; early lets two holders in).
[[nodiscard]] inline core::TimePoint CeilToSeconds(core::TimePoint t) {
  return std::chrono::time_point_cast<core::TimePoint::duration>(
      std::chrono::ceil<std::chrono::seconds>(t));
}

enum class TokenKind { kAccess, kRefresh };

/// amo_tokens."accessToken" / "refreshToken": a ciphertext copied to another row or column does
/// not decrypt. Unambiguous: accountId is decimal, the last segment names the role.
[[nodiscard]] inline std::string TokenAad(std::int64_t account_id,
                                          std::string_view client_id,
                                          TokenKind kind) {
  return fmt::format("amo_tokens/{}/{}/{}",
                     account_id,
                     client_id,
                     kind == TokenKind::kAccess ? "access" : "refresh");
}

/// code_queue."code".
[[nodiscard]] inline std::string CodeAad(std::string_view code_hash) {
  return fmt::format("code_queue/{}", code_hash);
}

/// integrations."clientSecret".
[[nodiscard]] inline std::string SecretAad(std::string_view client_id) {
  return fmt::format("integrations/{}/client_secret", client_id);
}

}  // namespace amoauth::store_schema
