#include "amoauth/core/iso_time.hpp"

#include <charconv>

#include <fmt/format.h>

namespace amoauth::core {
namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

bool ReadNumber(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  const char* first = text.data() + pos;
  const char* last = first + len;
  auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc() && ptr == last;
}

}  // namespace

std::string FormatIsoTime(TimePoint t) {
  const auto secs = std::chrono::floor<Seconds>(t);
  const auto day = std::chrono::floor<days>(secs);
  const year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{secs - day};
  const int year = static_cast<int>(ymd.year());
  if (year >= 0 && year <= 9999) {  // always, for a nanosecond system_clock (1677-2262)
    // Digit by digit: every /token answer writes one, and fmt::format took 3,700 instructions.
    char text[] = "0000-00-00T00:00:00Z";
    auto put = [&text](std::size_t at, unsigned value, std::size_t width) {
      for (std::size_t i = width; i > 0; --i, value /= 10) {
        text[at + i - 1] = static_cast<char>('0' + value % 10);
      }
    };
    put(0, static_cast<unsigned>(year), 4);
    put(5, static_cast<unsigned>(ymd.month()), 2);
    put(8, static_cast<unsigned>(ymd.day()), 2);
    put(11, static_cast<unsigned>(hms.hours().count()), 2);
    put(14, static_cast<unsigned>(hms.minutes().count()), 2);
    put(17, static_cast<unsigned>(hms.seconds().count()), 2);
    return std::string(text, sizeof(text) - 1);
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                     static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()),
                     hms.hours().count(),
                     hms.minutes().count(),
                     hms.seconds().count());
}

std::optional<TimePoint> ParseIsoTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return std::nullopt;
  }
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!ReadNumber(text, 0, 4, year) || !ReadNumber(text, 5, 2, month) ||
      !ReadNumber(text, 8, 2, day) || !ReadNumber(text, 11, 2, hour) ||
      !ReadNumber(text, 14, 2, minute) || !ReadNumber(text, 17, 2, second)) {
    return std::nullopt;
  }
  const year_month_day ymd{std::chrono::year{year},
                           std::chrono::month{static_cast<unsigned>(month)},
                           std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  return TimePoint{sys_days{ymd}} + std::chrono::hours{hour} + std::chrono::minutes{minute} +
         Seconds{second};
}

}  // namespace amoauth::core
