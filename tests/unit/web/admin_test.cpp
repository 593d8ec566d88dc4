// The admin UI's pieces without a server: relative times, sessions, the login limiter.
#include <chrono>

#include <gtest/gtest.h>

#include "admin_pages.hpp"
#include "admin_sessions.hpp"
#include "fake_clock.hpp"

namespace amoauth::web::admin {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(RelativeTime, SaysHowFarInWordsBothWays) {
  const core::TimePoint now = core::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(RelativeTime(core::TimePoint{}, now), "never");
  EXPECT_EQ(RelativeTime(now, now), "just now");
  EXPECT_EQ(RelativeTime(now + seconds(44), now), "just now");
  EXPECT_EQ(RelativeTime(now - seconds(44), now), "just now");
  EXPECT_EQ(RelativeTime(now + seconds(45), now), "in 1 min");
  EXPECT_EQ(RelativeTime(now - minutes(5), now), "5 min ago");
  EXPECT_EQ(RelativeTime(now + minutes(89), now), "in 89 min");
  EXPECT_EQ(RelativeTime(now + minutes(90), now), "in 2 h");
  EXPECT_EQ(RelativeTime(now + hours(23) - seconds(10), now), "in 23 h");
  EXPECT_EQ(RelativeTime(now + hours(24) - seconds(5), now), "in 24 h");
  EXPECT_EQ(RelativeTime(now - hours(35), now), "35 h ago");
  EXPECT_EQ(RelativeTime(now - hours(36), now), "2 days ago");
  EXPECT_EQ(RelativeTime(now - hours(24 * 3), now), "3 days ago");
  EXPECT_EQ(RelativeTime(now + hours(24 * 90), now), "in 90 days");
}

TEST(AdminSessions, ASessionIsFoundByItsIdUntilItEndsOrIsRemoved) {
  testing::FakeClock clock;
  Sessions sessions(clock, hours(8), 10);
  const auto a = sessions.Create();
  const auto b = sessions.Create();
  EXPECT_EQ(a.id.size(), 64U);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.csrf, a.id);
  ASSERT_TRUE(sessions.Find(a.id));
  EXPECT_EQ(sessions.Find(a.id)->csrf, a.csrf);
  EXPECT_FALSE(sessions.Find(a.csrf)) << "the CSRF token is not a session id";
  EXPECT_FALSE(sessions.Find(""));
  sessions.Remove(a.id);
  EXPECT_FALSE(sessions.Find(a.id));
  clock.Advance(hours(8) - seconds(1));
  EXPECT_TRUE(sessions.Find(b.id));
  clock.Advance(seconds(1));
  EXPECT_FALSE(sessions.Find(b.id));
}

TEST(AdminSessions, AtTheLimitTheSessionEndingFirstMakesRoom) {
  testing::FakeClock clock;
  Sessions sessions(clock, hours(8), 2);
  const auto first = sessions.Create();
  clock.Advance(seconds(1));
  const auto second = sessions.Create();
  const auto third = sessions.Create();
  EXPECT_FALSE(sessions.Find(first.id));
  EXPECT_TRUE(sessions.Find(second.id));
  EXPECT_TRUE(sessions.Find(third.id));
}

TEST(LoginLimiter, FiveFailuresHoldTheAddressOffUntilTheWindowEnds) {
  testing::FakeClock clock;
  LoginLimiter limiter(clock, 5, minutes(15), 100);
  for (int i = 0; i < 4; ++i) {
    limiter.Failed("10.0.0.1");
  }
  EXPECT_FALSE(limiter.Refused("10.0.0.1"));
  limiter.Failed("10.0.0.1");
  clock.Advance(minutes(5));
  ASSERT_TRUE(limiter.Refused("10.0.0.1"));
  EXPECT_EQ(*limiter.Refused("10.0.0.1"), minutes(10));
  EXPECT_FALSE(limiter.Refused("10.0.0.2")) << "per address";
  clock.Advance(minutes(10));
  EXPECT_FALSE(limiter.Refused("10.0.0.1"));
  // A good login clears the count.
  for (int i = 0; i < 4; ++i) {
    limiter.Failed("10.0.0.3");
  }
  limiter.Succeeded("10.0.0.3");
  limiter.Failed("10.0.0.3");
  EXPECT_FALSE(limiter.Refused("10.0.0.3"));
}

}  // namespace
}  // namespace amoauth::web::admin
