#include "amoauth/core/request_window.hpp"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TP = RequestWindow::TimePoint;

const TP kT0 = TP{} + seconds(1000);

TEST(RequestWindow, AdmitsUpToTheLimitThenWaitsForAFinishAndAWindow) {
  RequestWindow w(2, seconds(1));
  EXPECT_TRUE(w.TryStart(kT0));
  EXPECT_TRUE(w.TryStart(kT0));
  EXPECT_FALSE(w.TryStart(kT0));
  EXPECT_EQ(w.NextChance(kT0), std::nullopt) << "both in flight: only a finish helps";
  w.Finish(kT0 + milliseconds(300));
  EXPECT_FALSE(w.TryStart(kT0 + milliseconds(300)));
  EXPECT_EQ(w.NextChance(kT0 + milliseconds(300)), kT0 + milliseconds(1300));
  EXPECT_FALSE(w.TryStart(kT0 + milliseconds(1299)));
  EXPECT_TRUE(w.TryStart(kT0 + milliseconds(1300)));
  EXPECT_EQ(w.InFlight(), 2U);
}

/// Simulates many requests with random network delays, each arriving at a random moment between
/// its start and its end, and checks what amoCRM would count.
TEST(RequestWindow, NoWindowEverSeesMoreArrivalsThanTheLimitWhateverTheDelays) {
  std::mt19937 rng(20261130);
  for (int round = 0; round < 20; ++round) {
    const std::size_t limit = 1 + rng() % 8;
    RequestWindow w(limit, seconds(1));
    std::uniform_int_distribution<int> duration_ms(1, 900);
    struct Flight {
      TP end;
      TP arrival;
    };
    std::vector<Flight> flying;
    std::vector<TP> arrivals;
    TP now = kT0;
    int started = 0;
    while (started < 300) {
      // Finish what is due, then start as many as allowed, then move time a little.
      std::sort(flying.begin(), flying.end(), [](auto& a, auto& b) { return a.end < b.end; });
      while (!flying.empty() && flying.front().end <= now) {
        w.Finish(flying.front().end);
        arrivals.push_back(flying.front().arrival);
        flying.erase(flying.begin());
      }
      while (started < 300 && w.TryStart(now)) {
        const TP end = now + milliseconds(duration_ms(rng));
        const auto span = std::chrono::duration_cast<milliseconds>(end - now).count();
        flying.push_back({end, now + milliseconds(rng() % (span + 1))});
        ++started;
      }
      now += milliseconds(1 + rng() % 20);
    }
    for (auto& f : flying) {
      arrivals.push_back(f.arrival);
    }
    std::sort(arrivals.begin(), arrivals.end());
    for (std::size_t i = 0; i + limit < arrivals.size(); ++i) {
      ASSERT_GE(arrivals[i + limit] - arrivals[i], seconds(1))
          << "limit " << limit << ": " << limit + 1 << " arrivals within one second";
    }
  }
}

}  // namespace
}  // namespace amoauth::core
