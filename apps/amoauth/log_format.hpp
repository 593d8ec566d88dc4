#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

/// The two log formats of AMOAUTH_LOG_FORMAT (docs/operations.md, "Logs").
namespace amoauth::app {

/// `text` appended to `out` as the inside of a JSON string (RFC 8259): `"` and `\` escaped,
/// control characters (and DEL) as \n, \t… or \u00XX, valid UTF-8 kept as is, and every byte
/// that is not part of a valid UTF-8 sequence (overlong forms, surrogates, beyond U+10FFFF,
/// truncated) replaced by \ufffd, so that any line parses with any JSON parser.
void AppendJsonEscaped(std::string_view text, std::string& out);

/// One line for people: `2026-12-01T03:04:05.123Z info  [req=ID] message`, the [req=…] part only
/// when the line belongs to a request or a background job (net::CurrentLogId()).
[[nodiscard]] std::unique_ptr<spdlog::formatter> MakeTextLogFormatter();
/// The same line through spdlog's pattern formatter, which MakeTextLogFormatter replaces (it cost
/// every request 1,600 instructions): what it must write, byte for byte, and its colour range.
[[nodiscard]] std::unique_ptr<spdlog::formatter> MakeTextLogPatternFormatter();

/// One JSON object per line: {"ts":"2026-12-01T03:04:05.123Z","level":"info","logger":"http",
/// "msg":"…","request_id":"…"}, request_id only when the line belongs to a request or a
/// background job (net::CurrentLogId()).
[[nodiscard]] std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter();

}  // namespace amoauth::app
