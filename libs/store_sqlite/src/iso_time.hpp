#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/clock.hpp"

namespace amoauth::store_sqlite::detail {

/// "2026-11-22T19:43:00Z": UTC, whole seconds (rounded down), always 20 characters. The fixed
/// width makes string order equal time order, so SQL compares these strings directly, and
/// SQLite's date functions accept them. Years outside 0000…9999 are clamped to that range.
[[nodiscard]] std::string FormatIsoTime(core::TimePoint t);

/// Inverse of FormatIsoTime, strict: exactly that shape, a real calendar date, seconds 00-59.
/// nullopt for anything else, or a time TimePoint cannot represent.
[[nodiscard]] std::optional<core::TimePoint> ParseIsoTime(std::string_view text);

/// `t` rounded down to a whole second: what a round trip through FormatIsoTime gives.
[[nodiscard]] core::TimePoint FloorToSeconds(core::TimePoint t);

}  // namespace amoauth::store_sqlite::detail
