#pragma once
// How every engine writes values into the shared schema (docs/storage.md §2, §3): the rounding of
// times, the AAD that binds each sealed secret to its row, and the bounds and retention periods.
// One copy, so that a row written by one engine reads the same in the other (export/import).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/core/result.hpp"

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

/// Text every engine keeps byte for byte: valid UTF-8 (RFC 3629: no surrogate halves, no overlong
/// forms, nothing past U+10FFFF) without NUL. PostgreSQL's TEXT refuses the rest (and libpq cuts a
/// parameter at its first NUL without a word); SQLite would take it, but is held to the same rule
/// so that what one engine took the other takes too (export/import). A text parameter that breaks
/// it is refused with Errc::kInvalidArgument before the statement runs (docs/storage.md, "Text
/// values").
[[nodiscard]] inline bool IsStorableText(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) {
        return false;
      }
      ++p;
      continue;
    }
    std::size_t more = 0;
    unsigned char low = 0x80;  // the first continuation byte's bounds rule out the bad forms
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      low = c == 0xE0 ? 0xA0 : 0x80;   // overlong
      high = c == 0xED ? 0x9F : 0xBF;  // U+D800..U+DFFF: surrogate halves
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      low = c == 0xF0 ? 0x90 : 0x80;   // overlong
      high = c == 0xF4 ? 0x8F : 0xBF;  // past U+10FFFF
    } else {
      return false;  // a continuation byte first, C0/C1 (overlong), F5..FF
    }
    if (static_cast<std::size_t>(end - p) <= more || p[1] < low || p[1] > high) {
      return false;
    }
    for (std::size_t i = 2; i <= more; ++i) {
      if ((p[i] & 0xC0U) != 0x80U) {
        return false;
      }
    }
    p += more + 1;
  }
  return true;
}

/// Client ids, account hosts, hashes and lease holders are index keys, and a PostgreSQL btree
/// entry holds about 2.7 kB at most: longer keys are refused on both engines, before anything is
/// written. Real ones are far shorter (a UUID, a host of at most 253 bytes, 64 hex digits).
inline constexpr std::size_t kMaxKeyBytes = 1024;

/// Errc::kInvalidArgument unless every key is at most kMaxKeyBytes (their text is checked where
/// it is bound, IsStorableText).
[[nodiscard]] inline Result<void> CheckKeys(std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (key.size() > kMaxKeyBytes) {
      return Fail(Errc::kInvalidArgument);
    }
  }
  return {};
}

/// CheckKeys over the client ids of `events` (service::Event: they index the account history).
template <class Events>
[[nodiscard]] Result<void> CheckEventKeys(const Events& events) {
  for (const auto& event : events) {
    if (auto checked = CheckKeys({event.client_id}); !checked) {
      return checked;
    }
  }
  return {};
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
