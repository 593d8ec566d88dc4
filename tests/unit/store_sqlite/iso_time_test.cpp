#include "iso_time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "amoauth/core/clock.hpp"

namespace {

using amoauth::core::FromUnixSeconds;
using amoauth::store_sqlite::detail::FloorToSeconds;
using amoauth::store_sqlite::detail::FormatIsoTime;
using amoauth::store_sqlite::detail::ParseIsoTime;

TEST(IsoTime, FormatsUtcWithWholeSeconds) {
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(1'795'376'580)), "2026-11-22T19:43:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(951'782'400)), "2000-02-29T00:00:00Z");
}

TEST(IsoTime, RoundsDownToTheSecond) {
  const auto t = FromUnixSeconds(1'795'376'580);
  EXPECT_EQ(FormatIsoTime(t + std::chrono::milliseconds(999)), "2026-11-22T19:43:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(0) - std::chrono::nanoseconds(1)),
            "1969-12-31T23:59:59Z");
  EXPECT_EQ(FloorToSeconds(t + std::chrono::milliseconds(999)), t);
}

TEST(IsoTime, ParsesWhatItFormats) {
  for (const std::int64_t s : {std::int64_t{-86'401},
                               std::int64_t{0},
                               std::int64_t{951'782'400},
                               std::int64_t{1'760'000'000},
                               std::int64_t{1'795'376'580},
                               std::int64_t{4'102'444'799}}) {
    const auto parsed = ParseIsoTime(FormatIsoTime(FromUnixSeconds(s)));
    ASSERT_TRUE(parsed.has_value()) << s;
    EXPECT_EQ(*parsed, FromUnixSeconds(s));
  }
}

TEST(IsoTime, RejectsAnythingElse) {
  for (const std::string bad : {"",
                                "2026-11-22 19:43:00Z",
                                "2026-11-22T19:43:00",
                                "2026-11-22T19:43:00+00:00",
                                "2026-11-22T19:43:00.000Z",
                                "2026-02-29T00:00:00Z",
                                "2026-13-01T00:00:00Z",
                                "2026-11-22T24:00:00Z",
                                "2026-11-22T19:60:00Z",
                                "2026-11-22T19:43:60Z",
                                "2026-11-2xT19:43:00Z",
                                "9999-12-31T23:59:59Z"}) {  // beyond what TimePoint holds
    EXPECT_FALSE(ParseIsoTime(bad).has_value()) << bad;
  }
}

TEST(IsoTime, StringOrderIsTimeOrder) {
  const auto a = FormatIsoTime(FromUnixSeconds(1'795'376'579));
  const auto b = FormatIsoTime(FromUnixSeconds(1'795'376'580));
  const auto c = FormatIsoTime(FromUnixSeconds(1'795'376'580 + 86'400 * 400));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

}  // namespace
