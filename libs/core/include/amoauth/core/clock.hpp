#pragma once

#include <chrono>

namespace amoauth::core {

using TimePoint = std::chrono::system_clock::time_point;
using Seconds = std::chrono::seconds;

/// Wall-clock time, injected so that tests control it. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

/// Whole seconds since the Unix epoch; the unit amoCRM and our JSON use.
[[nodiscard]] inline std::int64_t ToUnixSeconds(TimePoint t) {
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}
[[nodiscard]] inline TimePoint FromUnixSeconds(std::int64_t s) {
  return TimePoint{Seconds{s}};
}

}  // namespace amoauth::core
