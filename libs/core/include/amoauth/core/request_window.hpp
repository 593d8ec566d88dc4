#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

/// amoCRM allows 7 requests per second per account (protocol §7.4) and blocks accounts that keep
/// exceeding it, counting requests as they ARRIVE. We only know that a request arrives somewhere
/// between the moment we start sending it and the moment its answer is back. So this window
/// counts a request from its start until a full window after its end: a new request may start
/// only while fewer than `limit` requests are in flight or finished within the last `window`.
/// Then no `window`-long interval can hold `limit + 1` arrivals, whatever the network delays
/// (tests/unit/core/request_window_test.cpp checks it on random schedules). A token bucket, or a
/// window over start times, would not promise that. Pure: time comes in as arguments.
namespace amoauth::core {

class RequestWindow {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  /// REQUIRES: limit > 0, window > 0.
  RequestWindow(std::size_t limit, std::chrono::nanoseconds window);

  /// Starts a request at `now` if the window allows; true if it did.
  bool TryStart(TimePoint now);
  /// A request started with TryStart has its answer (or failed) at `now`.
  /// REQUIRES: a matching TryStart; `now` not before earlier calls.
  void Finish(TimePoint now);

  /// When a start may next be allowed without waiting for a request in flight to finish;
  /// nullopt when only a Finish can free a place (or a start is allowed now).
  [[nodiscard]] std::optional<TimePoint> NextChance(TimePoint now);

  [[nodiscard]] std::size_t InFlight() const { return in_flight_; }

 private:
  void Forget(TimePoint now);

  std::size_t limit_;
  std::chrono::nanoseconds window_;
  std::size_t in_flight_ = 0;
  std::deque<TimePoint> finished_;  ///< ends within the last window, oldest first
};

}  // namespace amoauth::core
