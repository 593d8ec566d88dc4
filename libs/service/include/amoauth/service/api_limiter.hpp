#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "amoauth/core/request_window.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

struct LimiterSettings {
  /// Requests per second per account (protocol §7.4: 7). 0: no limit.
  std::size_t rps = 7;
  /// The window amoauth keeps to (core::RequestWindow: counted from a request's start to a
  /// window after its end, so it already covers network delays).
  std::chrono::milliseconds window{1000};
  /// A caller waits at most this long for its turn; beyond that it gets Errc::kThrottled.
  std::chrono::milliseconds max_wait{10'000};
  /// After a 403 (account or IP blocked), nothing is sent for the account for this long.
  std::chrono::seconds block_cooloff{15 * 60};
};

/// Holds each account to amoCRM's request rate, queueing callers first come, first served.
/// Also remembers amoCRM's own pushback: a 429 with retry_after holds the account back that long;
/// a 403 block stops it for the cool-off. Per process (see docs/architecture.md for several
/// instances). Thread-safe. Time is the steady clock: rate limits are about real seconds,
/// whatever the business clock says.
class ApiLimiter {
 public:
  using SteadyClock = std::chrono::steady_clock;
  using NowFn = std::function<SteadyClock::time_point()>;

  /// A place in the account's window, held while a request is on its way; giving it back (the
  /// destructor) starts the request's window-long afterglow. Move-only.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();

   private:
    friend class ApiLimiter;
    Permit(ApiLimiter* limiter, std::int64_t account_id)
        : limiter_(limiter), account_id_(account_id) {}
    ApiLimiter* limiter_ = nullptr;
    std::int64_t account_id_ = 0;
  };

  /// `executor` runs the limiter's timers. REQUIRES: outlives the limiter's pending work.
  ApiLimiter(LimiterSettings settings,
             boost::asio::any_io_executor executor,
             NowFn now = &SteadyClock::now);

  /// Waits for the account's turn; hold the Permit until amoCRM has answered. Errors: kAmoBlocked
  /// (inside a 403 cool-off), kThrottled (not admitted within max_wait).
  Task<Result<Permit>> Acquire(std::int64_t account_id);

  /// amoCRM answered 429: nobody sends for the account before `retry_after` from now.
  void OnRateLimited(std::int64_t account_id, std::chrono::seconds retry_after);
  /// amoCRM answered 403: stop for the cool-off. True when this starts a new block (report once).
  bool OnBlocked(std::int64_t account_id);

  /// How long until the account may send again after amoCRM's pushback (for Retry-After).
  [[nodiscard]] std::chrono::seconds RetryAfter(std::int64_t account_id) const;
  /// Seconds left of a 403 cool-off, if one is running.
  [[nodiscard]] std::optional<std::chrono::seconds> BlockedFor(std::int64_t account_id) const;
  /// Callers waiting for their turn, over every account (for /metrics; no lock taken).
  [[nodiscard]] std::size_t QueueLength() const { return queued_.load(std::memory_order_relaxed); }

 private:
  struct Waiter {
    SteadyClock::time_point deadline;
    std::function<void(bool admitted)> resume;  ///< posted to the caller's executor
  };
  struct AccountState {
    explicit AccountState(boost::asio::any_io_executor executor) : timer(executor) {}
    std::optional<core::RequestWindow> window;
    std::deque<std::shared_ptr<Waiter>> waiters;  ///< first come, first served
    boost::asio::steady_timer timer;              ///< wakes Pump for the next chance or deadline
    SteadyClock::time_point hold_until{};         ///< 429 retry_after
    SteadyClock::time_point blocked_until{};      ///< 403 cool-off
  };

  AccountState& StateLocked(std::int64_t account_id);
  /// Admits waiters in order while the window allows, fails those past their deadline, and arms
  /// the account's timer for the next moment anything can change. REQUIRES: mutex_ held.
  void PumpLocked(std::int64_t account_id, AccountState& state);
  void Release(std::int64_t account_id);

  const LimiterSettings settings_;
  boost::asio::any_io_executor executor_;
  const NowFn now_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, std::unique_ptr<AccountState>> accounts_;
  /// The sum of every account's waiters.size(), kept by PumpLocked (which every change goes
  /// through), so that reading it needs no lock.
  std::atomic<std::size_t> queued_{0};
};

}  // namespace amoauth::service
