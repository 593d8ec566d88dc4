#include "amoauth/web/web_app.hpp"

#include <charconv>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/core/site_button.hpp"
#include "amoauth/crypto/constant_time.hpp"
#include "json_views.hpp"
#include "pages.hpp"

namespace amoauth::web {
namespace {

using net::HttpRequest;
using net::HttpResponse;

std::optional<std::int64_t> ParseAccountId(std::string_view text) {
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return std::nullopt;
  }
  return id;
}

HttpResponse BadAccountId(const HttpRequest& request) {
  return HttpResponse::Json(400,
                            boost::json::serialize(boost::json::object{
                                {"error", "invalid_request"},
                                {"message", "The account id must be a positive integer."},
                                {"request_id", request.request_id},
                            }));
}

HttpResponse NoStore(HttpResponse response) {
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

/// Copies the query parameters amoCRM sends to the Redirect URI (protocol §2.5).
service::CallbackParams ToCallbackParams(const net::QueryParams& query) {
  auto get = [&query](std::string_view name) -> std::optional<std::string> {
    if (auto v = net::Find(query, name)) {
      return std::string(*v);
    }
    return std::nullopt;
  };
  return service::CallbackParams{
      .code = get("code"),
      .referer = get("referer"),
      .state = get("state"),
      .error = get("error"),
      .platform = get("platform"),
      .client_id = get("client_id"),
      .from_widget = get("from_widget"),
      .from_exchange = get("from_exchange"),
  };
}

}  // namespace

WebApp::WebApp(WebSettings settings,
               service::ConnectFlow& flow,
               service::AccountService& accounts,
               const core::Clock& clock)
    : settings_(std::move(settings)), flow_(flow), accounts_(accounts), clock_(clock) {}

void WebApp::AddRoutes(http_server::Router& router) {
  // Each route is a non-capturing-coroutine member; the lambdas only forward (style.md §2.5).
  router.Add("GET", "/", [this](HttpRequest r) { return ConnectPage(std::move(r)); });
  router.Add(
      "GET", settings_.callback_path, [this](HttpRequest r) { return Callback(std::move(r)); });
  router.Add("GET", settings_.disconnect_path, [this](HttpRequest r) {
    return DisconnectHook(std::move(r));
  });
  router.Add("GET", "/healthz", [this](HttpRequest r) { return Health(std::move(r)); });

  router.Add("POST", "/v1/connect", [this](HttpRequest r) { return StartConnect(std::move(r)); });
  router.Add("GET", "/v1/accounts", [this](HttpRequest r) { return ListAccounts(std::move(r)); });
  router.Add(
      "GET", "/v1/accounts/{id}", [this](HttpRequest r) { return GetAccount(std::move(r)); });
  router.Add(
      "GET", "/v1/accounts/{id}/token", [this](HttpRequest r) { return GetToken(std::move(r)); });
  router.Add("POST", "/v1/accounts/{id}/refresh", [this](HttpRequest r) {
    return ForceRefresh(std::move(r));
  });
  router.Add("*", "/v1/accounts/{id}/proxy/{path*}", [this](HttpRequest r) {
    return ProxyCall(std::move(r));
  });
  router.Add("POST", "/v1/exchange-api-key", [this](HttpRequest r) {
    return ExchangeApiKey(std::move(r));
  });
  router.Add(
      "POST", "/v1/legacy-login", [this](HttpRequest r) { return LegacyLogin(std::move(r)); });
}

WebApp::Task WebApp::ConnectPage(Request request) {
  auto start = co_await flow_.Start(core::ConsentMode::kPopup);
  if (!start) {
    co_return pages::Error(ViewOf(start.error()), request.request_id);
  }
  const std::string button = core::RenderSiteButton({
      .platform = settings_.platform,
      .script_url = settings_.button_script_url,
      .client_id = flow_.GetIntegration().client_id,
      .title = settings_.platform == core::Platform::kKommo ? "Connect Kommo" : "Connect amoCRM",
      .state = start->state,
      .mode = core::ConsentMode::kPopup,
  });
  co_return pages::Connect(button);
}

WebApp::Task WebApp::Callback(Request request) {
  auto query = net::ParseQuery(request.RawQuery());
  if (!query) {
    co_return pages::Error(ViewOf(query.error()), request.request_id);
  }
  service::CallbackParams params = ToCallbackParams(*query);
  if (params.IsProbe()) {
    // amoCRM checks now and then that the Redirect URI answers (protocol §2.5).
    co_return HttpResponse::Text(200, "amoauth: this Redirect URI is up.\n");
  }
  if (params.from_widget || params.from_exchange) {
    // A server-to-server hook with no person and no state (protocol §2.6, §6): stored, answered
    // at once, exchanged in the background.
    std::string request_id = request.request_id;
    co_return co_await CodeHook(std::move(params), std::move(request_id));
  }
  auto connected = co_await flow_.CompleteCallback(std::move(params));
  if (!connected) {
    spdlog::info(
        "[req={}] callback not completed: {}", request.request_id, connected.error().message());
    co_return pages::Error(ViewOf(connected.error()), request.request_id);
  }
  co_return pages::Connected(*connected);
}

WebApp::Task WebApp::DisconnectHook(Request request) {
  // amoCRM's GET {hook}?client_uuid=…&account_id=…&signature=… (protocol §7.1). The query holds
  // the signature: log neither it nor the query.
  auto query = net::ParseQuery(request.RawQuery());
  if (!query) {
    co_return json::Error(query.error(), request.request_id);
  }
  // An older page of amoCRM's docs names the parameter client_id: take either.
  auto client_uuid = net::Find(*query, "client_uuid");
  if (!client_uuid) {
    client_uuid = net::Find(*query, "client_id");
  }
  const auto account_id = net::Find(*query, "account_id");
  const auto signature = net::Find(*query, "signature");
  if (!client_uuid || !account_id || !signature) {
    co_return HttpResponse::Json(
        400,
        boost::json::serialize(boost::json::object{
            {"error", "invalid_request"},
            {"message", "The hook needs client_uuid (or client_id), account_id and signature."},
            {"request_id", request.request_id},
        }));
  }
  auto done = co_await accounts_.Disconnect(
      std::string(*client_uuid), std::string(*account_id), std::string(*signature));
  if (!done) {
    spdlog::warn(
        "[req={}] disconnect hook refused: {}", request.request_id, done.error().message());
    co_return json::Error(done.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, R"({"status":"ok"})");
}

WebApp::Task WebApp::Health(Request /*request*/) {
  co_return HttpResponse::Json(200, R"({"status":"ok"})");
}

std::optional<net::HttpResponse> WebApp::RejectUnauthorized(const Request& request) const {
  constexpr std::string_view kBearer = "Bearer ";
  const auto header = request.headers.Get("Authorization").value_or("");
  const bool ok =
      !settings_.api_key.Empty() && header.size() > kBearer.size() &&
      header.substr(0, kBearer.size()) == kBearer &&
      crypto::ConstantTimeEquals(header.substr(kBearer.size()), settings_.api_key.Reveal());
  if (ok) {
    return std::nullopt;
  }
  auto response = json::Error(Fail(Errc::kUnauthorized), request.request_id);
  response.headers.Set("WWW-Authenticate", "Bearer realm=\"amoauth\"");
  return response;
}

WebApp::Task WebApp::StartConnect(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  core::ConsentMode mode = core::ConsentMode::kPopup;
  if (!request.body.empty()) {
    boost::system::error_code ec;
    boost::json::value body = boost::json::parse(request.body, ec);
    const boost::json::object* object = ec ? nullptr : body.if_object();
    if (object == nullptr) {
      co_return HttpResponse::Json(400,
                                   boost::json::serialize(boost::json::object{
                                       {"error", "invalid_request"},
                                       {"message", "The body must be a JSON object (or empty)."},
                                       {"request_id", request.request_id},
                                   }));
    }
    if (const auto* m = object->if_contains("mode")) {
      const auto* text = m->if_string();
      auto parsed = text ? core::ParseConsentMode(*text) : std::nullopt;
      if (!parsed) {
        co_return HttpResponse::Json(
            400,
            boost::json::serialize(boost::json::object{
                {"error", "invalid_request"},
                {"message", "\"mode\" must be \"popup\" or \"post_message\"."},
                {"request_id", request.request_id},
            }));
      }
      mode = *parsed;
    }
  }
  auto start = co_await flow_.Start(mode);
  if (!start) {
    co_return json::Error(start.error(), request.request_id);
  }
  co_return NoStore(HttpResponse::Json(201, json::ConnectStart(*start)));
}

WebApp::Task WebApp::ListAccounts(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto all = co_await accounts_.List();
  if (!all) {
    co_return json::Error(all.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, json::Accounts(*all));
}

WebApp::Task WebApp::GetAccount(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto id = ParseAccountId(request.PathParam("id"));
  if (!id) {
    co_return BadAccountId(request);
  }
  auto account = co_await accounts_.Get(*id);
  if (!account) {
    co_return json::Error(account.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, json::Account(*account, accounts_.Limiter().BlockedFor(*id)));
}

WebApp::Task WebApp::ForceRefresh(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto id = ParseAccountId(request.PathParam("id"));
  if (!id) {
    co_return BadAccountId(request);
  }
  auto refreshed = co_await accounts_.ForceRefresh(*id);
  if (!refreshed) {
    co_return json::Error(refreshed.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, json::Account(*refreshed, accounts_.Limiter().BlockedFor(*id)));
}

WebApp::Task WebApp::GetToken(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto id = ParseAccountId(request.PathParam("id"));
  if (!id) {
    co_return BadAccountId(request);
  }
  auto fresh = co_await accounts_.FreshToken(*id);
  if (!fresh) {
    co_return json::Error(fresh.error(), request.request_id);
  }
  co_return NoStore(HttpResponse::Json(200, json::Token(*fresh, clock_.Now())));
}

WebApp::Task WebApp::ProxyCall(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto id = ParseAccountId(request.PathParam("id"));
  if (!id) {
    co_return BadAccountId(request);
  }
  // Rewrite the target to amoCRM's path: everything after /proxy, with the caller's query.
  std::string target = "/" + std::string(request.PathParam("path"));
  if (const auto query = request.RawQuery(); !query.empty()) {
    target += "?";
    target += query;
  }
  const std::string request_id = request.request_id;
  request.target = std::move(target);
  auto answer = co_await accounts_.Proxy(*id, std::move(request));
  if (!answer) {
    HttpResponse refused = json::Error(answer.error(), request_id);
    if (Is(answer.error(), Errc::kThrottled) || Is(answer.error(), Errc::kAmoBlocked)) {
      const auto wait = std::max(accounts_.Limiter().RetryAfter(*id), std::chrono::seconds{1});
      refused.headers.Set("Retry-After", std::to_string(wait.count()));
    }
    co_return refused;
  }
  co_return std::move(*answer);
}

}  // namespace amoauth::web
