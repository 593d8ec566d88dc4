#include "amoauth/core/expiry_warnings.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::seconds;

const TimePoint kExp = FromUnixSeconds(1'768'694'400);  // 00:00 UTC, as amoCRM sets it

TEST(ExpiryWarnings, VisitsThirtySevenAndOneDayAheadThenAtExpiry) {
  TimePoint now = kExp - days(365);
  EXPECT_EQ(NextExpiryVisit(kExp, now), kExp - days(30));
  now = kExp - days(30);  // the 30-day visit itself moves on to the next one
  EXPECT_EQ(NextExpiryVisit(kExp, now), kExp - days(7));
  now = kExp - days(7);
  EXPECT_EQ(NextExpiryVisit(kExp, now), kExp - days(1));
  now = kExp - days(1);
  EXPECT_EQ(NextExpiryVisit(kExp, now), kExp);
  EXPECT_EQ(NextExpiryVisit(kExp, kExp), kExp);
  EXPECT_EQ(NextExpiryVisit(kExp, kExp + hours(5)), kExp) << "overdue: visit at once";
}

TEST(ExpiryWarnings, ALateVisitSkipsTheWarningsItMissed) {
  EXPECT_EQ(NextExpiryVisit(kExp, kExp - days(5)), kExp - days(1));
  EXPECT_EQ(NextExpiryVisit(kExp, kExp - hours(3)), kExp);
  EXPECT_EQ(NextExpiryVisit(kExp, kExp - days(29)), kExp - days(7));
}

TEST(ExpiryWarnings, DaysLeftRoundsUpAndStopsAtZero) {
  EXPECT_EQ(DaysLeft(kExp, kExp - days(30)), 30);
  EXPECT_EQ(DaysLeft(kExp, kExp - days(30) + seconds(1)), 30);
  EXPECT_EQ(DaysLeft(kExp, kExp - hours(12)), 1);
  EXPECT_EQ(DaysLeft(kExp, kExp - seconds(1)), 1);
  EXPECT_EQ(DaysLeft(kExp, kExp), 0);
  EXPECT_EQ(DaysLeft(kExp, kExp + days(2)), 0);
}

TEST(ExpiryWarnings, OnlyATokenWithinSevenDaysIsWarnedAboutAtOnce) {
  EXPECT_FALSE(WarnAtOnce(kExp, kExp - days(8)));
  EXPECT_FALSE(WarnAtOnce(kExp, kExp - days(20)));
  EXPECT_TRUE(WarnAtOnce(kExp, kExp - days(7)));
  EXPECT_TRUE(WarnAtOnce(kExp, kExp - days(3)));
  EXPECT_TRUE(WarnAtOnce(kExp, kExp - hours(1)));
  EXPECT_FALSE(WarnAtOnce(kExp, kExp)) << "expired: refused, not warned about";
}

}  // namespace
}  // namespace amoauth::core
