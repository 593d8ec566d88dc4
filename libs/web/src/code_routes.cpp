// WebApp's routes for codes that arrive without a person (the widget-install and
// exchange_api_key hooks) and for legacy API keys: POST /v1/exchange-api-key, /v1/legacy-login.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/web/web_app.hpp"
#include "json_views.hpp"

namespace amoauth::web {
namespace {

using net::HttpResponse;

HttpResponse BadRequest(std::string_view message, std::string_view request_id) {
  return HttpResponse::Json(400,
                            boost::json::serialize(boost::json::object{
                                {"error", "invalid_request"},
                                {"message", message},
                                {"request_id", request_id},
                            }));
}

/// {login, api_key, domain} from a JSON body; on a problem, the words saying which.
struct LegacyCredentials {
  std::string login;
  Secret api_key;
  std::string domain;
};

constexpr std::size_t kMaxLogin = 320;  // an e-mail address at its longest
constexpr std::size_t kMaxApiKey = 512;
constexpr std::size_t kMaxDomain = 253;

std::variant<LegacyCredentials, std::string> ParseCredentials(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(body, ec);
  const boost::json::object* object = ec ? nullptr : parsed.if_object();
  if (object == nullptr) {
    return std::string(
        R"(The body must be a JSON object {"login", "api_key", "domain"}, each a string.)");
  }
  auto field = [object](std::string_view name, std::size_t max) -> std::optional<std::string> {
    const auto* v = object->if_contains(name);
    const auto* text = v != nullptr ? v->if_string() : nullptr;
    if (text == nullptr || text->empty() || text->size() > max) {
      return std::nullopt;
    }
    return std::string(*text);
  };
  auto login = field("login", kMaxLogin);
  if (!login) {
    return std::string(R"("login" must be the user's amoCRM login (e-mail), a non-empty string.)");
  }
  auto api_key = field("api_key", kMaxApiKey);
  if (!api_key) {
    return std::string(R"("api_key" must be the user's amoCRM API key, a non-empty string.)");
  }
  auto domain = field("domain", kMaxDomain);
  if (!domain) {
    return std::string(
        R"("domain" must be the account's host, e.g. "example.amocrm.ru", a non-empty string.)");
  }
  return LegacyCredentials{std::move(*login), Secret(std::move(*api_key)), std::move(*domain)};
}

/// A refusal of the domain, saying what it must be.
HttpResponse DomainRefused(std::string_view request_id) {
  return HttpResponse::Json(
      400,
      boost::json::serialize(boost::json::object{
          {"error", ErrcCode(Errc::kRefererNotAllowed)},
          {"message",
           "\"domain\" must be an amoCRM or Kommo account host, like \"example.amocrm.ru\" "
           "(one name in front of an allowed domain; no scheme, port or path). Nothing was sent."},
          {"request_id", request_id},
      }));
}

/// A refusal of the API-key use cases: a domain that is no account host is named in words.
HttpResponse ApiKeyRefusal(const boost::system::error_code& error, std::string_view request_id) {
  return Is(error, Errc::kRefererNotAllowed) ? DomainRefused(request_id)
                                             : json::Error(error, request_id);
}

/// Whole seconds until `at`, at least 1: Retry-After.
std::int64_t SecondsUntil(core::TimePoint at, core::TimePoint now) {
  const auto left = std::chrono::ceil<std::chrono::seconds>(at - now).count();
  return std::max<std::int64_t>(1, left);
}

}  // namespace

WebApp::Task WebApp::CodeHook(service::CallbackParams params, std::string request_id) {
  const bool widget = params.from_widget.has_value();
  auto accepted = co_await codes_.Accept(std::move(params));
  if (!accepted) {
    spdlog::info("code hook refused: {}", accepted.error().message());
    if (Is(accepted.error(), Errc::kInvalidArgument)) {
      co_return BadRequest(
          "The hook needs a code and a referer (the account host); nothing was stored.",
          request_id);
    }
    if (Is(accepted.error(), Errc::kRefererNotAllowed)) {
      co_return HttpResponse::Json(
          400,
          boost::json::serialize(boost::json::object{
              {"error", ErrcCode(Errc::kRefererNotAllowed)},
              {"message",
               "The referer is not an allowed amoCRM/Kommo account host; nothing was stored."},
              {"request_id", request_id},
          }));
    }
    co_return json::Error(accepted.error(), request_id);
  }
  // amoCRM ignores the answer (protocol §2.6); a person testing by hand reads it.
  co_return HttpResponse::Json(
      200,
      boost::json::serialize(boost::json::object{
          {"status", "accepted"},
          {"source", widget ? "widget" : "exchange"},
          {"message", "The code is stored and will be exchanged in the background."},
      }));
}

WebApp::Task WebApp::ExchangeApiKey(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto credentials = ParseCredentials(request.body);
  if (auto* problem = std::get_if<std::string>(&credentials)) {
    co_return BadRequest(*problem, request.request_id);
  }
  auto& c = std::get<LegacyCredentials>(credentials);
  auto outcome =
      co_await api_keys_.Request(std::move(c.login), std::move(c.api_key), std::move(c.domain));
  if (!outcome) {
    co_return ApiKeyRefusal(outcome.error(), request.request_id);
  }
  const std::string next = core::FormatIsoTime(outcome->next_allowed_at);
  if (!outcome->requested) {
    HttpResponse refused =
        HttpResponse::Json(429,
                           boost::json::serialize(boost::json::object{
                               {"error", ErrcCode(Errc::kExchangeTooSoon)},
                               {"message",
                                "amoCRM allows one API-key exchange per 5 minutes for each user "
                                "and integration; the next is allowed at " +
                                    next + "."},
                               {"retry_at", next},
                               {"next_allowed_at", next},
                               {"request_id", request.request_id},
                           }));
    refused.headers.Set("Retry-After",
                        std::to_string(SecondsUntil(outcome->next_allowed_at, clock_.Now())));
    co_return refused;
  }
  co_return HttpResponse::Json(202,
                               boost::json::serialize(boost::json::object{
                                   {"status", "requested"},
                                   {"next_allowed_at", next},
                               }));
}

WebApp::Task WebApp::LegacyLogin(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto credentials = ParseCredentials(request.body);
  if (auto* problem = std::get_if<std::string>(&credentials)) {
    co_return BadRequest(*problem, request.request_id);
  }
  auto& c = std::get<LegacyCredentials>(credentials);
  auto outcome =
      co_await api_keys_.LegacyLogin(std::move(c.login), std::move(c.api_key), std::move(c.domain));
  if (!outcome) {
    co_return ApiKeyRefusal(outcome.error(), request.request_id);
  }
  boost::json::object body;
  if (outcome->exchange) {
    body["exchange"] = outcome->exchange->requested ? "requested" : "throttled";
    body["next_allowed_at"] = core::FormatIsoTime(outcome->exchange->next_allowed_at);
  } else {
    // The legacy login itself is the backend's business; the conversion failing is reported.
    const boost::system::error_code ec = outcome->exchange_error;
    body["exchange"] = "failed";
    body["error"] = ErrorCode(ec);
    body["message"] = ec.message();
  }
  boost::json::object oauth{{"connected", false}};
  if (outcome->connection) {
    oauth["connected"] = outcome->connection->status == core::ConnectionStatus::kActive;
    oauth["account_id"] = outcome->connection->account_id;
    oauth["status"] = core::ToString(outcome->connection->status);
  }
  body["oauth"] = std::move(oauth);
  body["request_id"] = request.request_id;
  co_return HttpResponse::Json(200, boost::json::serialize(body));
}

}  // namespace amoauth::web
