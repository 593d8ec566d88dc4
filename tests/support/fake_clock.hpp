#pragma once

#include <atomic>
#include <chrono>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/random.hpp"

namespace amoauth::testing {

/// A clock tests move by hand. Thread-safe.
class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(std::int64_t unix_seconds = 1'760'000'000) : now_(unix_seconds) {}
  [[nodiscard]] core::TimePoint Now() const override { return core::FromUnixSeconds(now_.load()); }
  void Advance(std::chrono::seconds d) { now_ += d.count(); }
  void Set(std::int64_t unix_seconds) { now_ = unix_seconds; }

 private:
  std::atomic<std::int64_t> now_;
};

/// Deterministic "random" bytes: a counter. Thread-safe.
class CountingRandom final : public core::Random {
 public:
  void Fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      b = static_cast<std::uint8_t>(next_++);
    }
  }

 private:
  std::atomic<unsigned> next_{1};
};

}  // namespace amoauth::testing
