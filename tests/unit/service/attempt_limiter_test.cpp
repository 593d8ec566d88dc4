#include "amoauth/service/attempt_limiter.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace amoauth::service {
namespace {

using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

class AttemptLimiterTest : public ::testing::Test {
 protected:
  AttemptLimiter Make(AttemptLimits limits) {
    return AttemptLimiter(limits, [this] { return now_; });
  }
  SteadyClock::time_point now_{seconds(1000)};
};

TEST_F(AttemptLimiterTest, FailuresBlockTheirKeyOnlyUntilTheOldestLeavesTheWindow) {
  auto limiter = Make({.max_attempts = 3, .window = seconds(60)});
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  limiter.Record("10.0.0.1");
  now_ += seconds(10);
  limiter.Record("10.0.0.1");
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  limiter.Record("10.0.0.1");
  // Three failures: blocked until the first (at t=0) is 60 s old, i.e. 50 s from now.
  EXPECT_EQ(limiter.Blocked("10.0.0.1"), seconds(50));
  // Another address is not touched.
  EXPECT_FALSE(limiter.Blocked("10.0.0.2"));
  now_ += seconds(49);
  EXPECT_EQ(limiter.Blocked("10.0.0.1"), seconds(1));
  now_ += seconds(1);
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  // One more failure fills the window again (the t=10 and t=10 ones are still in it).
  limiter.Record("10.0.0.1");
  EXPECT_EQ(limiter.Blocked("10.0.0.1"), seconds(10));
}

TEST_F(AttemptLimiterTest, TryTakeCountsUsesAndRefusesBeyondTheLimitWithoutCounting) {
  auto limiter = Make({.max_attempts = 2, .window = seconds(100)});
  EXPECT_FALSE(limiter.TryTake("a"));
  EXPECT_FALSE(limiter.TryTake("a"));
  EXPECT_EQ(limiter.TryTake("a"), seconds(100));
  now_ += seconds(30);
  // Refused attempts are not counted: the wait is still measured from the first use.
  EXPECT_EQ(limiter.TryTake("a"), seconds(70));
  EXPECT_FALSE(limiter.TryTake("b"));
  now_ += seconds(70);
  EXPECT_FALSE(limiter.TryTake("a"));
}

TEST_F(AttemptLimiterTest, SubSecondWaitsRoundUpToOneSecond) {
  auto limiter = Make({.max_attempts = 1, .window = seconds(10)});
  limiter.Record("a");
  now_ += std::chrono::milliseconds(9500);
  EXPECT_EQ(limiter.Blocked("a"), seconds(1));
}

// MayBlockAnyone() lets the API skip working out a caller's key: it must be true whenever some
// key is blocked (a false "no" would let a blocked client through), and false again once no key
// can be.
TEST_F(AttemptLimiterTest, MayBlockAnyoneWhileSomeKeyIsBlockedAndNotAfter) {
  auto limiter = Make({.max_attempts = 2, .window = seconds(60)});
  EXPECT_FALSE(limiter.MayBlockAnyone());
  limiter.Record("a");
  EXPECT_FALSE(limiter.MayBlockAnyone()) << "one failure blocks nobody";
  now_ += seconds(20);
  limiter.Record("a");
  ASSERT_TRUE(limiter.Blocked("a"));
  EXPECT_TRUE(limiter.MayBlockAnyone());
  now_ += seconds(39);  // "a" is free 40 s after its first failure
  EXPECT_TRUE(limiter.MayBlockAnyone());
  now_ += seconds(1);
  EXPECT_FALSE(limiter.Blocked("a"));
  EXPECT_TRUE(limiter.MayBlockAnyone()) << "a bound, not exact: until 60 s after the last one";
  now_ += seconds(20);
  EXPECT_FALSE(limiter.MayBlockAnyone());

  EXPECT_FALSE(limiter.TryTake("b"));
  EXPECT_FALSE(limiter.TryTake("b"));
  EXPECT_TRUE(limiter.TryTake("b"));
  EXPECT_TRUE(limiter.MayBlockAnyone()) << "TryTake's limit counts too";
  now_ += seconds(60);
  EXPECT_FALSE(limiter.MayBlockAnyone());
}

TEST_F(AttemptLimiterTest, ZeroMeansNoLimit) {
  auto limiter = Make({.max_attempts = 0});
  for (int i = 0; i < 100; ++i) {
    limiter.Record("a");
    EXPECT_FALSE(limiter.TryTake("a"));
  }
  EXPECT_FALSE(limiter.Blocked("a"));
  EXPECT_FALSE(limiter.MayBlockAnyone());
}

TEST_F(AttemptLimiterTest, MemoryIsBoundedAndTheStalestKeyGoesFirst) {
  auto limiter = Make({.max_attempts = 1, .window = seconds(600), .max_keys = 3});
  limiter.Record("old");
  now_ += seconds(1);
  limiter.Record("b");
  limiter.Record("c");
  EXPECT_TRUE(limiter.Blocked("old"));
  now_ += seconds(1);
  limiter.Record("d");  // the table is full: "old" is forgotten
  EXPECT_FALSE(limiter.Blocked("old"));
  EXPECT_TRUE(limiter.Blocked("b"));
  EXPECT_TRUE(limiter.Blocked("c"));
  EXPECT_TRUE(limiter.Blocked("d"));
}

}  // namespace
}  // namespace amoauth::service
