#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace amoauth::service {

struct AttemptLimits {
  /// Attempts one key may make within `window`; 0: no limit (nothing is counted).
  std::size_t max_attempts = 0;
  /// REQUIRES: > 0 when max_attempts is.
  std::chrono::seconds window{600};
  /// Keys remembered at most, so memory stays bounded however many addresses try: beyond it,
  /// keys with no attempt left in the window go first, then the one whose last attempt is oldest.
  std::size_t max_keys = 10'000;
};

/// Counts attempts per key — a client address (web::ClientAddresses::LimitKey) — over a sliding
/// window, and says when a key has had its fill. Two uses: failures only (Record() after a failed
/// API-key check or login, Blocked() before even checking the next one), and every use of a
/// public path (TryTake() before minting a state or queueing a code). Keys never touch each
/// other: one address's attempts or successes change nothing for another. In memory, per
/// process. Thread-safe. Time is the steady clock, injected for tests.
class AttemptLimiter final {
 public:
  using SteadyClock = std::chrono::steady_clock;
  using NowFn = std::function<SteadyClock::time_point()>;

  explicit AttemptLimiter(AttemptLimits limits, NowFn now = &SteadyClock::now);

  /// How long until `key` may try again (at least 1 s), or nullopt if it may now. Counts nothing.
  [[nodiscard]] std::optional<std::chrono::seconds> Blocked(std::string_view key) const;
  /// false when no key can be blocked now: none has reached the limit within the last window.
  /// Lock-free, so that a caller on the hot path (every API request) can skip working out its
  /// key; true only means "ask Blocked()".
  [[nodiscard]] bool MayBlockAnyone() const;
  /// Counts one attempt of `key` (a failure), whatever its count.
  void Record(std::string_view key);
  /// Counts one attempt of `key` and returns nullopt if it is under the limit; otherwise counts
  /// nothing and returns how long until it may try again.
  [[nodiscard]] std::optional<std::chrono::seconds> TryTake(std::string_view key);

  [[nodiscard]] const AttemptLimits& Limits() const { return limits_; }

 private:
  using Times = std::deque<SteadyClock::time_point>;
  /// Drops the attempts that left the window. REQUIRES: mutex_ held.
  void Prune(Times& times, SteadyClock::time_point now) const;
  [[nodiscard]] std::optional<std::chrono::seconds> BlockedLocked(
      const Times& times, SteadyClock::time_point now) const;
  /// The key's attempts, making room for a new key if need be. REQUIRES: mutex_ held.
  Times& EntryLocked(std::string_view key, SteadyClock::time_point now);
  /// After an attempt at `now` that brought a key to the limit. REQUIRES: mutex_ held.
  void NoteLimitReachedLocked(SteadyClock::time_point now);

  const AttemptLimits limits_;
  const NowFn now_;
  mutable std::mutex mutex_;
  /// At most max_attempts times per key, oldest first.
  std::unordered_map<std::string, Times> attempts_;  // guarded by mutex_
  /// No key is blocked from this steady-clock time on (time_since_epoch().count()): the end of
  /// the window of the latest attempt that brought a key to the limit. Written under mutex_.
  std::atomic<SteadyClock::rep> no_block_from_{
      SteadyClock::time_point::min().time_since_epoch().count()};
};

}  // namespace amoauth::service
