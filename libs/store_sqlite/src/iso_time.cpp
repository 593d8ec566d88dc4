#include "iso_time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace amoauth::store_sqlite::detail {

namespace {

using std::chrono::days;
using std::chrono::floor;
using SysSeconds = std::chrono::sys_seconds;

constexpr std::int64_t kMinSeconds = -62'167'219'200;  // 0000-01-01T00:00:00Z
constexpr std::int64_t kMaxSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z

// Reads exactly `text.size()` decimal digits.
std::optional<int> Digits(std::string_view text) {
  int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

core::TimePoint FloorToSeconds(core::TimePoint t) {
  return std::chrono::time_point_cast<core::TimePoint::duration>(floor<std::chrono::seconds>(t));
}

std::string FormatIsoTime(core::TimePoint t) {
  std::int64_t seconds = floor<std::chrono::seconds>(t).time_since_epoch().count();
  seconds = std::clamp(seconds, kMinSeconds, kMaxSeconds);
  const SysSeconds s{std::chrono::seconds{seconds}};
  const auto day = floor<days>(s);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{s - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                     static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()),
                     hms.hours().count(),
                     hms.minutes().count(),
                     hms.seconds().count());
}

std::optional<core::TimePoint> ParseIsoTime(std::string_view text) {
  // 0123456789012345678 9
  // YYYY-MM-DDTHH:MM:SSZ
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
    return std::nullopt;
  }
  const auto year = Digits(text.substr(0, 4));
  const auto month = Digits(text.substr(5, 2));
  const auto day = Digits(text.substr(8, 2));
  const auto hour = Digits(text.substr(11, 2));
  const auto minute = Digits(text.substr(14, 2));
  const auto second = Digits(text.substr(17, 2));
  if (!year || !month || !day || !hour || !minute || !second || *hour > 23 || *minute > 59 ||
      *second > 59) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{*year},
                                        std::chrono::month{static_cast<unsigned>(*month)},
                                        std::chrono::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  const SysSeconds s = std::chrono::sys_days{ymd} + std::chrono::hours{*hour} +
                       std::chrono::minutes{*minute} + std::chrono::seconds{*second};
  // system_clock counts nanoseconds in 64 bits: years 1677…2262 only.
  using Limits = std::numeric_limits<core::TimePoint::rep>;
  const auto min =
      std::chrono::ceil<std::chrono::seconds>(core::TimePoint{core::TimePoint::duration{Limits::min()}});
  const auto max = floor<std::chrono::seconds>(core::TimePoint{core::TimePoint::duration{Limits::max()}});
  if (s < min || s > max) {
    return std::nullopt;
  }
  return std::chrono::time_point_cast<core::TimePoint::duration>(s);
}

}  // namespace amoauth::store_sqlite::detail
