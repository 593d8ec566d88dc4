#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

/// amoCRM allows 7 requests per second per account (protocol §7.4) and blocks accounts that keep
/// exceeding it. A token bucket would let a full bucket burst and then a steady stream through in
/// the same second; this window guarantees what amoCRM counts: at most `limit` requests in any
/// interval of length `window`. Pure: time comes in as arguments.
namespace amoauth::core {

class RequestWindow {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  /// REQUIRES: limit > 0, window > 0.
  RequestWindow(std::size_t limit, std::chrono::nanoseconds window);

  /// Books the earliest send time not before `now` (and not before `not_before`) that keeps the
  /// window's promise, and returns it — unless that time is later than `now + max_wait`: then
  /// nothing is booked and nullopt returned. Times booked are non-decreasing, so callers served in
  /// call order also send in order.
  std::optional<TimePoint> Reserve(TimePoint now,
                                   std::chrono::nanoseconds max_wait,
                                   TimePoint not_before = {});

 private:
  std::size_t limit_;
  std::chrono::nanoseconds window_;
  std::deque<TimePoint> booked_;  ///< the last `limit_` booked times, oldest first
};

}  // namespace amoauth::core
