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
  // The ends of what a nanosecond system_clock holds (years 1677-2262).
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(9200000000)), "2261-07-15T11:33:20Z");
  EXPECT_EQ(FormatIsoTime(FromUnixSeconds(-9200000000)), "1678-06-18T12:26:40Z");
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
