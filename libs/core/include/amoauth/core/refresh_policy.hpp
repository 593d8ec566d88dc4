#pragma once

#include <chrono>
#include <optional>

#include <boost/system/error_code.hpp>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"

/// When to refresh an account's tokens, and what a failed refresh means. Pure arithmetic over
/// times, so every rule here is tested with fixed clocks (tests/unit/core/refresh_policy_test.cpp).
namespace amoauth::core {

struct RefreshPolicy {
  /// /token and the proxy refresh on demand when the access token is this close to expiry.
  Seconds margin{5 * 60};
  /// The scheduler refreshes ahead of expiry by this much, so callers never wait for a refresh.
  /// Zero: no ahead-of-time refresh (on demand and keepalive only).
  Seconds ahead{60 * 60};
  /// Every refresh token is used at least this often, so none reaches amoCRM's three-month end.
  Seconds keepalive{7 * 24 * 60 * 60};
  /// Transient failures are retried after base * 2^(failures-1), at most `backoff_cap`, with
  /// jitter (see Backoff).
  Seconds backoff_base{30};
  Seconds backoff_cap{60 * 60};
};

/// When the scheduler should next refresh `c` after a successful exchange or refresh at
/// `c.last_refresh_at`: the earlier of "ahead of expiry" and "keepalive since the last refresh".
/// TimePoint{} (never) for a token that cannot be refreshed (a long-lived token has no refresh
/// token) or a connection that is not active.
[[nodiscard]] TimePoint NextRefreshAt(const Connection& c, const RefreshPolicy& policy);

/// Delay before retry number `failures` (1 = after the first failure): exponential, capped, and
/// spread by `jitter` in [0, 1) over [delay/2, delay) ("equal jitter"), so that many accounts that
/// failed together (amoCRM was down) do not all come back in the same second.
[[nodiscard]] Seconds Backoff(int failures, const RefreshPolicy& policy, double jitter);

/// A uniform number in [0, 1) from the injected randomness: Backoff's `jitter`.
[[nodiscard]] double Jitter(Random& random);

/// What a failed refresh means for the account (protocol §3.3; keyed on status + hint, never on
/// an `error` field — the classification into Errc happened in ClassifyAmoFailure).
enum class RefreshFailure {
  kDead,           ///< the refresh token will never work again: reauth_required, no more attempts
  kHostMoved,      ///< 401/404 without a hint: the subdomain may have been renamed; look it up
  kTransient,      ///< timeouts, connection errors, 5xx, 429, anything unexpected: back off, retry
  kMisconfigured,  ///< our client_id/secret are refused: every account is affected; back off
};
[[nodiscard]] RefreshFailure ClassifyRefreshFailure(const boost::system::error_code& ec);

}  // namespace amoauth::core
