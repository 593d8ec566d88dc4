#include "amoauth/core/iso_time.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(IsoTime, FormatsUtcWholeSeconds) {
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(1768694400)), "2026-01-18T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(1760000000) + std::chrono::milliseconds(999)),
            "2025-10-09T08:53:20Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(951868799)), "2000-02-29T23:59:59Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(253402300799)), "9999-12-31T23:59:59Z");
  // Outside years 0-9999 (not written digit by digit): what fmt writes.
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(253402300800)), "10000-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(-62167219200)), "0000-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(-62167219201)), "-001-12-31T23:59:59Z");
  // Before 1970: the day and time still count forward.
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(-1)), "1969-12-31T23:59:59Z");
}

TEST(IsoTime, ParsesWhatItFormats) {
  for (std::int64_t s : {0LL, 951782400LL, 1760000000LL, 4102444799LL}) {
    auto t = FromUnixSeconds(s);
    EXPECT_EQ(ParseIsoTime(FormatIsoTime(t)), t) << s;
  }
}

TEST(IsoTime, RejectsOtherShapes) {
  for (const char* bad : {"",
                          "2026-11-22",
                          "2026-11-22T19:43:00",
                          "2026-11-22 19:43:00Z",
                          "2026-02-30T00:00:00Z",
                          "2026-11-22T24:00:00Z",
                          "2026-11-22T19:43:00+00:00",
                          "20x6-11-22T19:43:00Z",
                          "2026-11-22T19:43:60Z"}) {
    EXPECT_FALSE(ParseIsoTime(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace amoauth::core
