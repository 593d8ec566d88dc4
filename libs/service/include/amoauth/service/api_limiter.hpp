#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "amoauth/core/request_window.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

struct LimiterSettings {
  /// Requests per second per account (protocol §7.4: 7). 0: no limit.
  std::size_t rps = 7;
  /// The window amoauth keeps to is a little longer than amoCRM's second, because requests
  /// sent a window apart can arrive closer together (a new TLS handshake delays one, not another).
  std::chrono::milliseconds window{1100};
  /// A caller waits at most this long for its turn; beyond that it gets Errc::kThrottled.
  std::chrono::milliseconds max_wait{10'000};
  /// After a 403 (account or IP blocked), nothing is sent for the account for this long.
  std::chrono::seconds block_cooloff{15 * 60};
};

/// Holds each account to amoCRM's request rate, queueing callers in arrival order (each books
/// the next free slot, then sleeps until it). Also remembers amoCRM's own pushback: a 429 with
/// retry_after holds the account back that long; a 403 block stops it for the cool-off.
/// Per process (several instances share the limit by each configuring a share of it; see
/// docs/architecture.md). Thread-safe. Time is the steady clock: rate limits are about real
/// seconds, whatever the business clock says.
class ApiLimiter {
 public:
  using SteadyClock = std::chrono::steady_clock;
  using NowFn = std::function<SteadyClock::time_point()>;

  explicit ApiLimiter(LimiterSettings settings, NowFn now = &SteadyClock::now);

  /// Waits for the account's turn. Errors: kAmoBlocked (inside a 403 cool-off), kThrottled (the
  /// turn is further away than max_wait; nothing is booked).
  Task<Result<void>> Acquire(std::int64_t account_id);

  /// amoCRM answered 429: nobody sends for the account before `retry_after` from now.
  void OnRateLimited(std::int64_t account_id, std::chrono::seconds retry_after);
  /// amoCRM answered 403: stop for the cool-off. True when this starts a new block (report once).
  bool OnBlocked(std::int64_t account_id);

  /// How long until the account may send again (for Retry-After); zero when it may now.
  [[nodiscard]] std::chrono::seconds RetryAfter(std::int64_t account_id) const;
  /// Seconds left of a 403 cool-off, if one is running.
  [[nodiscard]] std::optional<std::chrono::seconds> BlockedFor(std::int64_t account_id) const;

 private:
  struct AccountState {
    std::optional<core::RequestWindow> window;
    SteadyClock::time_point hold_until{};     ///< 429 retry_after
    SteadyClock::time_point blocked_until{};  ///< 403 cool-off
  };
  AccountState& StateLocked(std::int64_t account_id);

  const LimiterSettings settings_;
  const NowFn now_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, AccountState> accounts_;
};

}  // namespace amoauth::service
