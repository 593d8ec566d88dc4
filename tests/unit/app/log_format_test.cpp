// AMOAUTH_LOG_FORMAT=json: JSON escaping (quotes, control characters, invalid UTF-8) and the line
// the formatter writes.

#include "log_format.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <regex>
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include "amoauth/net/log_context.hpp"

namespace amoauth::app {
namespace {

std::string Escaped(std::string_view text) {
  std::string out;
  AppendJsonEscaped(text, out);
  return out;
}

/// What a JSON parser reads back from "…escaped…".
std::string RoundTrip(std::string_view text) {
  const boost::json::value parsed = boost::json::parse("\"" + Escaped(text) + "\"");
  return std::string(parsed.as_string());
}

TEST(LogFormat, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Escaped(R"(say "hi" \o/)"), R"(say \"hi\" \\o/)");
  EXPECT_EQ(Escaped("a\nb\rc\td\be\ff"), R"(a\nb\rc\td\be\ff)");
  EXPECT_EQ(Escaped(std::string_view("\x01\x1f\x7f", 3)), R"(\u0001\u001f\u007f)");
  EXPECT_EQ(Escaped(std::string_view("nul\0byte", 8)), R"(nul\u0000byte)");
  EXPECT_EQ(Escaped("plain </script> text"), "plain </script> text");
  EXPECT_EQ(RoundTrip("line one\nline \"two\"\t\\"), "line one\nline \"two\"\t\\");
}

TEST(LogFormat, KeepsValidUtf8) {
  const std::string text =
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";  // é € 😀 U+10FFFF
  EXPECT_EQ(Escaped(text), text);
  EXPECT_EQ(RoundTrip(text), text);
}

TEST(LogFormat, ReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(Escaped("a\xff"
                    "b"),
            R"(a\ufffdb)");
  EXPECT_EQ(Escaped("cut \xc3"), R"(cut \ufffd)");                        // truncated sequence
  EXPECT_EQ(Escaped("\xc3("), R"(\ufffd()");                              // bad continuation
  EXPECT_EQ(Escaped("\xc0\xaf"), R"(\ufffd\ufffd)");                      // overlong '/'
  EXPECT_EQ(Escaped("\xe0\x80\xaf"), R"(\ufffd\ufffd\ufffd)");            // overlong, 3 bytes
  EXPECT_EQ(Escaped("\xed\xa0\x80"), R"(\ufffd\ufffd\ufffd)");            // UTF-16 surrogate
  EXPECT_EQ(Escaped("\xf4\x90\x80\x80"), R"(\ufffd\ufffd\ufffd\ufffd)");  // > U+10FFFF
  EXPECT_EQ(Escaped("\x80"), R"(\ufffd)");                                // lone continuation
  // Whatever the bytes, the result is valid JSON (Boost.JSON rejects invalid UTF-8).
  std::string all;
  for (int c = 0; c < 256; ++c) {
    all.push_back(static_cast<char>(c));
  }
  EXPECT_NO_THROW(RoundTrip(all));
}

boost::json::object FormatLine(spdlog::formatter& formatter,
                               std::string_view logger,
                               spdlog::level::level_enum level,
                               std::string_view message) {
  const spdlog::details::log_msg msg(spdlog::string_view_t(logger.data(), logger.size()),
                                     level,
                                     spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t out;
  formatter.format(msg, out);
  std::string line(out.data(), out.size());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // one line, whatever the message
  return boost::json::parse(line).as_object();
}

TEST(LogFormat, JsonLineHasTimeLevelLoggerMessageAndRequestId) {
  auto formatter = MakeJsonLogFormatter();
  const auto outside = FormatLine(*formatter, "http", spdlog::level::warn, "two\nlines \"q\"");
  EXPECT_EQ(outside.at("level"), "warn");
  EXPECT_EQ(outside.at("logger"), "http");
  EXPECT_EQ(outside.at("msg"), "two\nlines \"q\"");
  EXPECT_FALSE(outside.contains("request_id"));
  const std::string ts(outside.at("ts").as_string());
  EXPECT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << ts;

  const net::LogScope scope(std::make_shared<const std::string>("abc123"));
  const auto inside = FormatLine(*formatter, "amoauth", spdlog::level::err, "bad \xff byte");
  EXPECT_EQ(inside.at("level"), "error");
  EXPECT_EQ(inside.at("msg"), "bad \xef\xbf\xbd byte");
  EXPECT_EQ(inside.at("request_id"), "abc123");
  EXPECT_EQ(formatter->clone() != nullptr, true);
}

TEST(LogFormat, TextLineNamesTheRequest) {
  auto formatter = MakeTextLogFormatter();
  const spdlog::details::log_msg plain("http", spdlog::level::info, "hello");
  spdlog::memory_buf_t out;
  formatter->format(plain, out);
  EXPECT_TRUE(
      std::regex_match(std::string(out.data(), out.size()), std::regex(R"(\S+Z info  hello\n)")))
      << std::string(out.data(), out.size());

  const net::LogScope scope(std::make_shared<const std::string>("abc123"));
  spdlog::memory_buf_t with_id;
  formatter->format(plain, with_id);
  EXPECT_NE(std::string(with_id.data(), with_id.size()).find("info  [req=abc123] hello"),
            std::string::npos);
}

// The text line is written piece by piece (every request logs one); it must stay the line
// spdlog's pattern formatter writes, colour range included, for every level, with and without a
// request id, and across second boundaries (the date and time of day are cached per second).
TEST(LogFormat, TextLineIsWhatThePatternWrites) {
  auto ours = MakeTextLogFormatter();
  auto pattern = MakeTextLogPatternFormatter();
  const auto compare = [&](const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t a;
    spdlog::memory_buf_t b;
    const spdlog::details::log_msg ours_msg = msg;
    const spdlog::details::log_msg pattern_msg = msg;
    ours->format(ours_msg, a);
    pattern->format(pattern_msg, b);
    EXPECT_EQ(std::string(a.data(), a.size()), std::string(b.data(), b.size()));
    EXPECT_EQ(ours_msg.color_range_start, pattern_msg.color_range_start);
    EXPECT_EQ(ours_msg.color_range_end, pattern_msg.color_range_end);
  };
  using std::chrono::milliseconds;
  const spdlog::log_clock::time_point base{std::chrono::seconds(1'764'558'734)};
  const std::array<milliseconds, 6> offsets{milliseconds(0),
                                            milliseconds(7),
                                            milliseconds(999),
                                            milliseconds(1000),
                                            milliseconds(61'042),
                                            milliseconds(86'400'000)};
  const std::array<spdlog::level::level_enum, 6> levels{spdlog::level::trace,
                                                        spdlog::level::debug,
                                                        spdlog::level::info,
                                                        spdlog::level::warn,
                                                        spdlog::level::err,
                                                        spdlog::level::critical};
  for (const auto offset : offsets) {
    for (const auto level : levels) {
      const spdlog::details::log_msg msg(base + offset, {}, "http", level, "a \"line\" of text");
      compare(msg);
      const net::LogScope scope(std::make_shared<const std::string>("3fa9c0000001"));
      compare(msg);
    }
  }
  const spdlog::details::log_msg now("http", spdlog::level::info, "");
  compare(now);
}

}  // namespace
}  // namespace amoauth::app
