#pragma once

#include <string>
#include <string_view>

namespace amoauth::core {

/// Escapes & < > " ' for use in HTML text and double- or single-quoted attribute values.
[[nodiscard]] std::string HtmlEscape(std::string_view s);

}  // namespace amoauth::core
