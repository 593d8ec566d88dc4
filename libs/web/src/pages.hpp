#pragma once

#include <string>
#include <string_view>

#include "amoauth/core/connection.hpp"
#include "amoauth/net/http_message.hpp"
#include "error_mapping.hpp"

/// The HTML a person sees. Every dynamic value goes through core::HtmlEscape.
namespace amoauth::web::pages {

/// GET /: the "Connect amoCRM" site button, already carrying a fresh state.
[[nodiscard]] net::HttpResponse Connect(std::string_view button_html);
/// The callback succeeded.
[[nodiscard]] net::HttpResponse Connected(const core::Connection& connection);
/// Anything that went wrong, in words, with a link to start again.
[[nodiscard]] net::HttpResponse Error(const ErrorView& view, std::string_view request_id);

}  // namespace amoauth::web::pages
