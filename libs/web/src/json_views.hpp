#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <boost/system/error_code.hpp>

#include "amoauth/core/connection.hpp"
#include "amoauth/net/http_message.hpp"
#include "amoauth/service/connect_flow.hpp"

/// JSON bodies of the internal API (docs/api.md). Tokens appear only in TokenJson.
namespace amoauth::web::json {

/// One account with its refresh state; `api_blocked_for` is the rest of a 403 cool-off.
[[nodiscard]] std::string Account(const core::Connection& c,
                                  std::optional<std::chrono::seconds> api_blocked_for);
[[nodiscard]] std::string Accounts(const std::vector<core::Connection>& all);
[[nodiscard]] std::string Token(const core::Connection& c, core::TimePoint now);
[[nodiscard]] std::string ConnectStart(const service::ConnectStart& start);
/// {"error": "<code>", "message": "<sentence>", "request_id": "<id>"} with the mapped status.
[[nodiscard]] net::HttpResponse Error(const boost::system::error_code& ec,
                                      std::string_view request_id);
/// The same with `message` in words of the case at hand (it must hold no secret).
[[nodiscard]] net::HttpResponse Error(const boost::system::error_code& ec,
                                      std::string_view request_id,
                                      std::string_view message);

}  // namespace amoauth::web::json
