#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "amoauth/core/clock.hpp"

/// When amoauth warns that a long-lived token (protocol §7.5) nears its end. Such a token cannot be
/// refreshed, so a person must generate a new one in time: the backend hears about it 30, 7 and 1
/// days ahead (event token.expiring), and once more when it has expired (account.reauth_required).
/// Pure arithmetic over times (tests/unit/core/expiry_warnings_test.cpp).
namespace amoauth::core {

/// How long before expiry each warning is due, earliest first.
inline constexpr std::array<Seconds, 3> kExpiryWarningsAhead{
    std::chrono::days{30}, std::chrono::days{7}, std::chrono::days{1}};

/// A token added (or first seen) this close to its expiry gets one warning at once, besides the
/// scheduled ones still ahead: the people who run it may have picked too short a lifetime.
inline constexpr Seconds kWarnAtOnceWithin = std::chrono::days{7};

/// The next time the scheduler should visit a long-lived token after `now`: the earliest warning
/// time (expires_at - ahead) later than `now`, else `expires_at` itself (where the account is
/// marked reauth_required). A late visit (the scheduler was down) skips the warnings it missed
/// rather than sending them in a burst.
[[nodiscard]] TimePoint NextExpiryVisit(TimePoint expires_at, TimePoint now);

/// Whole days from `now` to `expires_at`, rounded up (12 hours left is 1 day); 0 once expired.
[[nodiscard]] std::int64_t DaysLeft(TimePoint expires_at, TimePoint now);

/// True when a token with `expires_at`, added at `now`, warrants a warning at once.
[[nodiscard]] bool WarnAtOnce(TimePoint expires_at, TimePoint now);

}  // namespace amoauth::core
