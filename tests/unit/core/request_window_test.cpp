#include "amoauth/core/request_window.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TP = RequestWindow::TimePoint;

const TP kT0 = TP{} + seconds(1000);

/// The property amoCRM checks: no interval of length `window` holds more than `limit` sends.
bool AtMostInAnyWindow(const std::vector<TP>& sends, std::size_t limit, milliseconds window) {
  for (std::size_t i = 0; i < sends.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < sends.size() && sends[j] < sends[i] + window; ++j) {
      ++in_window;
    }
    if (in_window > limit) {
      return false;
    }
  }
  return true;
}

TEST(RequestWindow, LetsTheFirstLimitGoAtOnceAndSpacesTheRest) {
  RequestWindow w(7, seconds(1));
  std::vector<TP> sends;
  for (int i = 0; i < 200; ++i) {
    auto at = w.Reserve(kT0, seconds(60));
    ASSERT_TRUE(at.has_value());
    sends.push_back(*at);
  }
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(sends[static_cast<std::size_t>(i)], kT0);
  }
  EXPECT_EQ(sends[7], kT0 + seconds(1));
  EXPECT_TRUE(AtMostInAnyWindow(sends, 7, milliseconds(1000)));
  // 200 requests at 7 per second need 28 whole windows after the first.
  EXPECT_EQ(sends.back(), kT0 + seconds(28));
}

TEST(RequestWindow, ABurstAfterASteadyStreamStillKeepsTheLimit) {
  // A token bucket would allow 7 + 7 here; the window must not.
  RequestWindow w(7, seconds(1));
  std::vector<TP> sends;
  for (int i = 0; i < 7; ++i) {
    sends.push_back(*w.Reserve(kT0 + milliseconds(100 * i), seconds(60)));
  }
  for (int i = 0; i < 7; ++i) {
    sends.push_back(*w.Reserve(kT0 + milliseconds(700), seconds(60)));
  }
  EXPECT_TRUE(AtMostInAnyWindow(sends, 7, milliseconds(1000)));
}

TEST(RequestWindow, RefusesWithoutBookingWhenTheWaitIsTooLong) {
  RequestWindow w(2, seconds(1));
  ASSERT_TRUE(w.Reserve(kT0, milliseconds(0)));
  ASSERT_TRUE(w.Reserve(kT0, milliseconds(0)));
  EXPECT_FALSE(w.Reserve(kT0, milliseconds(999)));
  // The refusal booked nothing: the next slot is still exactly one window later.
  EXPECT_EQ(w.Reserve(kT0, seconds(1)), kT0 + seconds(1));
}

TEST(RequestWindow, HonoursNotBefore) {
  RequestWindow w(7, seconds(1));
  EXPECT_EQ(w.Reserve(kT0, seconds(10), kT0 + seconds(5)), kT0 + seconds(5));
  EXPECT_FALSE(w.Reserve(kT0, seconds(1), kT0 + seconds(5)));
}

}  // namespace
}  // namespace amoauth::core
