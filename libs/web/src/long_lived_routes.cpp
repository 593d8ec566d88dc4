// POST /v1/long-lived-tokens, and how a long-lived token's end is told to callers.
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/web/web_app.hpp"
#include "json_views.hpp"

namespace amoauth::web {
namespace {

using net::HttpResponse;

HttpResponse BadBody(const net::HttpRequest& request) {
  return HttpResponse::Json(
      400,
      boost::json::serialize(boost::json::object{
          {"error", "invalid_request"},
          {"message",
           "The body must be a JSON object with \"token\" (the long-lived token from the "
           "integration's Keys tab) and optionally \"domain\" (the account host, e.g. "
           "example.amocrm.ru), both strings."},
          {"request_id", request.request_id},
      }));
}

}  // namespace

WebApp::Task WebApp::AddLongLivedToken(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  // The body holds the token: it is never logged, and no answer repeats it.
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(request.body, ec);
  const boost::json::object* object = ec ? nullptr : body.if_object();
  if (object == nullptr) {
    co_return BadBody(request);
  }
  const boost::json::value* token = object->if_contains("token");
  const boost::json::value* domain = object->if_contains("domain");
  if (token == nullptr || !token->is_string() || token->get_string().empty() ||
      (domain != nullptr && !domain->is_string() && !domain->is_null())) {
    co_return BadBody(request);
  }
  Secret secret(std::string(token->get_string()));
  std::string host =
      domain != nullptr && domain->is_string() ? std::string(domain->get_string()) : std::string();
  auto added = co_await long_lived_.Add(std::move(secret), std::move(host));
  if (!added) {
    spdlog::info("long-lived token refused: {}", added.error().message());
    co_return json::Error(added.error(), request.request_id);
  }
  co_return HttpResponse::Json(201, json::Account(*added, std::nullopt));
}

WebApp::Task WebApp::AccountError(boost::system::error_code error,
                                  std::int64_t account_id,
                                  std::optional<std::string> client_id,
                                  std::string request_id) {
  if (Is(error, Errc::kLongLivedTokenExpired) || Is(error, Errc::kLongLivedTokenRejected)) {
    // The row says when it expired, or that amoCRM refused it.
    auto row = co_await accounts_.Get(account_id, std::move(client_id));
    if (row && row->status == core::ConnectionStatus::kReauthRequired && !row->last_error.empty()) {
      co_return json::Error(error, request_id, row->last_error);
    }
  }
  co_return json::Error(error, request_id);
}

}  // namespace amoauth::web
