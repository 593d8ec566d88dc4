#include "log_format.hpp"

#include <array>
#include <chrono>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>

#include "amoauth/net/log_context.hpp"

namespace amoauth::app {
namespace {

bool IsContinuation(std::string_view text, std::size_t i, unsigned char low, unsigned char high) {
  if (i >= text.size()) {
    return false;
  }
  const auto c = static_cast<unsigned char>(text[i]);
  return c >= low && c <= high;
}

/// Length of the valid UTF-8 sequence starting at text[i] (a byte >= 0x80), 0 if there is none
/// (RFC 3629, section 4: no overlong forms, no surrogates, nothing beyond U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  if (lead >= 0xC2 && lead <= 0xDF) {
    return IsContinuation(text, i + 1, 0x80, 0xBF) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    const unsigned char low = lead == 0xE0 ? 0xA0 : 0x80;
    const unsigned char high = lead == 0xED ? 0x9F : 0xBF;
    return IsContinuation(text, i + 1, low, high) && IsContinuation(text, i + 2, 0x80, 0xBF) ? 3
                                                                                             : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    const unsigned char low = lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char high = lead == 0xF4 ? 0x8F : 0xBF;
    return IsContinuation(text, i + 1, low, high) && IsContinuation(text, i + 2, 0x80, 0xBF) &&
                   IsContinuation(text, i + 3, 0x80, 0xBF)
               ? 4
               : 0;
  }
  return 0;
}

template <class Out>
void Append(Out& out, std::string_view piece) {
  out.append(piece.data(), piece.data() + piece.size());
}

template <class Out>
void AppendEscaped(std::string_view text, Out& out) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = Utf8SequenceLength(text, i);
      if (length == 0) {
        Append(out, "\\ufffd");
        ++i;
      } else {
        Append(out, text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        Append(out, "\\\"");
        break;
      case '\\':
        Append(out, "\\\\");
        break;
      case '\n':
        Append(out, "\\n");
        break;
      case '\r':
        Append(out, "\\r");
        break;
      case '\t':
        Append(out, "\\t");
        break;
      case '\b':
        Append(out, "\\b");
        break;
      case '\f':
        Append(out, "\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          const std::array<char, 6> escaped{'\\', 'u', '0', '0', kHex[c >> 4U], kHex[c & 0xFU]};
          Append(out, std::string_view(escaped.data(), escaped.size()));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return "off";
}

/// `%*` in the text pattern: "[req=ID] " when there is a current log id.
class RequestIdFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& /*msg*/,
              const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    if (const std::string* id = net::CurrentLogId()) {
      Append(dest, "[req=");
      Append(dest, *id);
      Append(dest, "] ");
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RequestIdFlag>();
  }
};

/// "2026-12-01T11:12:14.677Z info  [req=ID] message": the bytes of the spdlog pattern
/// "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %*%v" (LogFormat.TextLineIsWhatThePatternWrites), written
/// piece by piece with the date and time of day formatted once a second: every request logs a
/// line, and the pattern formatter took 1,600 instructions of it. The sink calls it under its
/// lock, so the cache needs none.
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto second = std::chrono::floor<std::chrono::seconds>(since_epoch);
    if (second != cached_second_ || cached_.empty()) {
      const std::time_t t = second.count();
      std::tm utc{};
      gmtime_r(&t, &utc);
      cached_ = fmt::format("{:%Y-%m-%dT%H:%M:%S}.", utc);
      cached_second_ = second;
    }
    Append(dest, cached_);
    const auto millis = static_cast<unsigned>(
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - second).count());
    const std::array<char, 5> tail{static_cast<char>('0' + millis / 100),
                                   static_cast<char>('0' + millis / 10 % 10),
                                   static_cast<char>('0' + millis % 10),
                                   'Z',
                                   ' '};
    Append(dest, std::string_view(tail.data(), tail.size()));
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    msg.color_range_start = dest.size();
    Append(dest, std::string_view(level.data(), level.size()));
    for (std::size_t pad = level.size(); pad < 5; ++pad) {
      dest.push_back(' ');
    }
    msg.color_range_end = dest.size();
    dest.push_back(' ');
    if (const std::string* id = net::CurrentLogId()) {
      Append(dest, "[req=");
      Append(dest, *id);
      Append(dest, "] ");
    }
    Append(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    Append(dest, "\n");
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }

 private:
  std::chrono::seconds cached_second_{};
  std::string cached_;  ///< "YYYY-MM-DDTHH:MM:SS." of cached_second_
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
    const std::time_t t = seconds.count();
    std::tm utc{};
    gmtime_r(&t, &utc);
    fmt::format_to(
        fmt::appender(dest), R"({{"ts":"{:%Y-%m-%dT%H:%M:%S}.{:03}Z","level":")", utc, millis);
    Append(dest, LevelName(msg.level));
    Append(dest, R"(","logger":")");
    AppendEscaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()), dest);
    Append(dest, R"(","msg":")");
    AppendEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    Append(dest, "\"");
    if (const std::string* id = net::CurrentLogId()) {
      Append(dest, R"(,"request_id":")");
      AppendEscaped(*id, dest);
      Append(dest, "\"");
    }
    Append(dest, "}\n");
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void AppendJsonEscaped(std::string_view text, std::string& out) {
  AppendEscaped(text, out);
}

std::unique_ptr<spdlog::formatter> MakeTextLogFormatter() {
  return std::make_unique<TextFormatter>();
}

std::unique_ptr<spdlog::formatter> MakeTextLogPatternFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<RequestIdFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %*%v");
  return formatter;
}

std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter() {
  return std::make_unique<JsonFormatter>();
}

}  // namespace amoauth::app
