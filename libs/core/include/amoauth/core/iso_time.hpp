#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/clock.hpp"

namespace amoauth::core {

/// "2026-11-22T19:43:00Z": UTC, whole seconds. The one time format amoauth writes to JSON,
/// pages and the database (it sorts as text and SQLite's datetime() reads it).
[[nodiscard]] std::string FormatIsoTime(TimePoint t);
/// Inverse of FormatIsoTime; exactly that shape, nullopt otherwise.
[[nodiscard]] std::optional<TimePoint> ParseIsoTime(std::string_view text);

}  // namespace amoauth::core
