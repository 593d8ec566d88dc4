#include "amoauth/web/web_app.hpp"

#include <array>
#include <charconv>
#include <chrono>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "admin_sessions.hpp"
#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/site_button.hpp"
#include "amoauth/core/web_origin.hpp"
#include "amoauth/crypto/base64.hpp"
#include "amoauth/crypto/constant_time.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/crypto/random_bytes.hpp"
#include "amoauth/web/openapi.hpp"
#include "amoauth/web/prometheus_text.hpp"
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

/// Which integration the caller means (several may be connected to one account): the client_id
/// query parameter or the X-Amoauth-Client-Id header; nullopt lets AccountService choose.
std::optional<std::string> ClientIdOf(const HttpRequest& request) {
  if (auto header = request.headers.Get("X-Amoauth-Client-Id"); header && !header->empty()) {
    return std::string(*header);
  }
  if (auto query = net::ParseQuery(request.RawQuery())) {
    if (auto v = net::Find(*query, "client_id"); v && !v->empty()) {
      return std::string(*v);
    }
  }
  return std::nullopt;
}

/// The secrets webhook's fields (protocol §5). amoCRM's docs do not name the content type:
/// integrators see JSON, so JSON is read first and a form body is accepted too.
std::optional<service::SecretsDelivery> ParseSecretsBody(const HttpRequest& request) {
  service::SecretsDelivery delivery;
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(request.body, ec);
  if (!ec) {
    const auto* object = body.if_object();
    if (object == nullptr) {
      return std::nullopt;
    }
    auto text = [object](std::string_view name) -> std::optional<std::string> {
      const auto* v = object->if_contains(name);
      const auto* str = v != nullptr ? v->if_string() : nullptr;
      return str != nullptr ? std::optional<std::string>(std::string(*str)) : std::nullopt;
    };
    auto client_id = text("client_id");
    auto client_secret = text("client_secret");
    auto state = text("state");
    if (!client_id || !client_secret || !state) {
      return std::nullopt;
    }
    delivery.client_id = std::move(*client_id);
    delivery.client_secret = Secret(std::move(*client_secret));
    delivery.state = std::move(*state);
    return delivery;
  }
  auto form = net::ParseQuery(request.body);
  if (!form) {
    return std::nullopt;
  }
  auto client_id = net::Find(*form, "client_id");
  auto client_secret = net::Find(*form, "client_secret");
  auto state = net::Find(*form, "state");
  if (!client_id || !client_secret || !state) {
    return std::nullopt;
  }
  delivery.client_id = std::string(*client_id);
  delivery.client_secret = Secret(std::string(*client_secret));
  delivery.state = std::string(*state);
  return delivery;
}

HttpResponse NoStore(HttpResponse response) {
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

/// 429 for a client over a per-client limit, in words, with Retry-After.
HttpResponse TooManyAttempts(const HttpRequest& request,
                             std::string_view message,
                             std::chrono::seconds wait) {
  HttpResponse response =
      HttpResponse::Json(429,
                         boost::json::serialize(boost::json::object{
                             {"error", "too_many_requests"},
                             {"message", fmt::format("{} Retry in {} s.", message, wait.count())},
                             {"retry_after", wait.count()},
                             {"request_id", request.request_id},
                         }));
  response.headers.Set("Retry-After", std::to_string(wait.count()));
  return response;
}

/// The /connect page's own error callback: the button names it, the page defines it.
constexpr std::string_view kConnectErrorCallback = "amoauthConnectFailed";

/// A CSP nonce: 128 random bits, fresh for every response that carries an inline script.
std::string FreshNonce() {
  std::array<std::uint8_t, 16> bytes{};
  crypto::FillRandom(bytes);
  return crypto::Base64Encode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

HttpResponse InvalidRequest(const HttpRequest& request, std::string_view message) {
  return HttpResponse::Json(400,
                            boost::json::serialize(boost::json::object{
                                {"error", "invalid_request"},
                                {"message", message},
                                {"request_id", request.request_id},
                            }));
}

HttpResponse RefusedButton(const HttpRequest& request, const core::ButtonOptionError& refused) {
  return HttpResponse::Json(400,
                            boost::json::serialize(boost::json::object{
                                {"error", "invalid_request"},
                                {"message", refused.message},
                                {"field", refused.field},
                                {"request_id", request.request_id},
                            }));
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

/// The admin UI's limits (docs/admin-ui.md): sessions held at once, and failed logins allowed per
/// client address in a window.
constexpr std::size_t kMaxAdminSessions = 1000;
constexpr int kLoginFailuresAllowed = 5;
constexpr std::chrono::seconds kLoginFailureWindow{15 * 60};
constexpr std::size_t kLoginAddressesTracked = 10000;

}  // namespace

WebApp::WebApp(WebSettings settings, WebServices services)
    : settings_(std::move(settings)),
      flow_(services.flow),
      accounts_(services.accounts),
      long_lived_(services.long_lived),
      clock_(services.clock),
      codes_(services.codes),
      api_keys_(services.api_keys),
      metrics_(services.metrics),
      api_key_failures_(settings_.api_key_failures),
      connect_pages_(settings_.connect_pages),
      code_hooks_(settings_.code_hooks),
      history_(services.history),
      integrations_(services.integrations),
      admin_sessions_(std::make_unique<admin::Sessions>(
          services.clock, settings_.admin_session_ttl, kMaxAdminSessions)),
      login_limiter_(std::make_unique<admin::LoginLimiter>(
          services.clock, kLoginFailuresAllowed, kLoginFailureWindow, kLoginAddressesTracked)),
      openapi_etag_("\"" + crypto::Sha256Hex(OpenApiDocument()).substr(0, 32) + "\"") {}

WebApp::~WebApp() = default;

void WebApp::AddRoutes(http_server::Router& router) {
  // Each route is a non-capturing-coroutine member; the lambdas only forward (style.md §2.5).
  router.Add("GET", "/", [this](HttpRequest r) { return ConnectPage(std::move(r)); });
  router.Add("GET", "/connect", [this](HttpRequest r) { return ConnectPage(std::move(r)); });
  router.Add(
      "GET", settings_.callback_path, [this](HttpRequest r) { return Callback(std::move(r)); });
  router.Add("GET", settings_.disconnect_path, [this](HttpRequest r) {
    return DisconnectHook(std::move(r));
  });
  router.Add(
      "POST", settings_.secrets_path, [this](HttpRequest r) { return SecretsHook(std::move(r)); });
  router.Add("GET", "/healthz", [this](HttpRequest r) { return Health(std::move(r)); });
  router.Add("GET", "/openapi.json", [this](HttpRequest r) { return OpenApi(std::move(r)); });
  if (metrics_ != nullptr) {
    router.Add("GET", "/metrics", [this](HttpRequest r) { return MetricsPage(std::move(r)); });
  }

  router.Add("POST", "/v1/connect", [this](HttpRequest r) { return StartConnect(std::move(r)); });
  router.Add("GET", "/v1/button", [this](HttpRequest r) { return Button(std::move(r)); });
  router.Add("GET", "/v1/accounts", [this](HttpRequest r) { return ListAccounts(std::move(r)); });
  router.Add("POST", "/v1/long-lived-tokens", [this](HttpRequest r) {
    return AddLongLivedToken(std::move(r));
  });
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
  AddAdminRoutes(router);
}

core::ButtonContext WebApp::ButtonContext() const {
  return {
      .platform = settings_.platform,
      .script_url = settings_.button_script_url,
      .client_id = flow_.GetIntegration().client_id,
      .redirect_uri = flow_.GetIntegration().redirect_uri,
      .secrets_path = settings_.secrets_path,
  };
}

std::string WebApp::PostMessageOrigin() const {
  if (!settings_.post_message_origin.empty()) {
    return settings_.post_message_origin;
  }
  return core::WebOrigin(flow_.GetIntegration().redirect_uri).value_or("");
}

WebApp::Task WebApp::ConnectPage(Request request) {
  auto query = net::ParseQuery(request.RawQuery());
  if (!query) {
    co_return pages::Error(ViewOf(query.error()), request.request_id);
  }
  // AMOAUTH_BUTTON_* (checked at start-up), the mode the link asks for, and the page's own error
  // callback.
  core::ButtonOptionPairs options;
  const auto mode = net::Find(*query, "mode");
  for (const auto& option : settings_.connect_button) {
    if (!(mode && option.first == "mode")) {
      options.push_back(option);
    }
  }
  if (mode) {
    if (!core::ParseConsentMode(*mode)) {
      co_return pages::Error({.status = 400,
                              .code = "invalid_request",
                              .message = "mode must be popup or post_message.",
                              .title = "This link is not valid",
                              .advice = "The mode in the address must be popup or post_message."},
                             request.request_id);
    }
    options.emplace_back("mode", *mode);
  }
  options.emplace_back("error_callback", kConnectErrorCallback);
  core::SiteButton button;
  button.title = fmt::format("Connect {}", core::ProductName(settings_.platform));
  if (auto refused = core::MakeSiteButton(ButtonContext(), options, button)) {
    spdlog::error("the /connect button is misconfigured: {}", refused->message);
    co_return pages::Error(ViewOf(Fail(Errc::kConfigInvalid)), request.request_id);
  }
  // Each visit mints a pending state, and the states are capped for everyone: one client gets
  // only its share.
  const std::string client = settings_.client_addresses.LimitKeyOf(request);
  if (auto wait = connect_pages_.TryTake(client)) {
    spdlog::info("/connect refused: {} is over its limit", client);
    const std::string advice = fmt::format(
        "This address opened the connect page too often. Wait {} minute(s) and try again.",
        (wait->count() + 59) / 60);
    HttpResponse page = pages::Error({.status = 429,
                                      .code = "too_many_requests",
                                      .message = "Too many connect pages from this address.",
                                      .title = "Too many attempts",
                                      .advice = advice},
                                     request.request_id);
    page.headers.Set("Retry-After", std::to_string(wait->count()));
    co_return page;
  }
  auto start = co_await flow_.Start(button.mode, service::PurposeOf(button.variant));
  if (!start) {
    co_return pages::Error(ViewOf(start.error()), request.request_id);
  }
  button.state = start->state;
  pages::ConnectPageView view{
      .platform = settings_.platform,
      .button_html = core::RenderSiteButton(button),
      .mode = button.mode,
      .client_id = button.client_id,
      .error_callback = button.error_callback,
      .callback_origin = core::WebOrigin(flow_.GetIntegration().redirect_uri).value_or(""),
      .script_origin = core::WebOrigin(settings_.button_script_url).value_or(""),
      .nonce = FreshNonce(),
  };
  co_return pages::Connect(view);
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
    // at once, exchanged in the background. The queue is capped for everyone: one client gets
    // only its share.
    const std::string client = settings_.client_addresses.LimitKeyOf(request);
    if (auto wait = code_hooks_.TryTake(client)) {
      spdlog::info("code hook refused: {} is over its limit", client);
      co_return TooManyAttempts(request, "Too many code hooks from this address.", *wait);
    }
    std::string request_id = request.request_id;
    co_return co_await CodeHook(std::move(params), std::move(request_id));
  }
  auto outcome = co_await flow_.CompleteCallback(std::move(params));
  auto& connected = outcome.connection;
  // post_message: this page runs in the consent window and must tell the opener (protocol §2.4).
  std::optional<pages::OpenerMessage> opener;
  if (outcome.mode == core::ConsentMode::kPostMessage) {
    if (std::string origin = PostMessageOrigin(); !origin.empty()) {
      opener = pages::OpenerMessage{.target_origin = std::move(origin), .nonce = FreshNonce()};
    }
  }
  if (!connected) {
    spdlog::info("callback not completed: {}", connected.error().message());
    co_return pages::Error(ViewOf(connected.error()), request.request_id, opener);
  }
  co_return pages::Connected(*connected, opener);
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
    spdlog::warn("disconnect hook not applied: {}", done.error().message());
    co_return json::Error(done.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, R"({"status":"ok"})");
}

WebApp::Task WebApp::SecretsHook(Request request) {
  // amoCRM's POST {secrets_uri} with {client_id, client_secret, state} (protocol §5). amoCRM goes
  // on to hand out the code only after exactly 200; anything else aborts the person's flow, which
  // is what a forged or replayed delivery deserves. Never log the body: it holds the secret.
  auto delivery = ParseSecretsBody(request);
  if (!delivery) {
    co_return HttpResponse::Json(
        400,
        boost::json::serialize(boost::json::object{
            {"error", "invalid_request"},
            {"message",
             "The body must be JSON (or a form) with string fields client_id, client_secret and "
             "state."},
            {"request_id", request.request_id},
        }));
  }
  auto accepted = co_await flow_.AcceptSecrets(std::move(*delivery));
  if (!accepted) {
    spdlog::warn("secrets webhook refused: {}", accepted.error().message());
    co_return json::Error(accepted.error(), request.request_id);
  }
  co_return HttpResponse::Json(200, R"({"status":"ok"})");
}

WebApp::Task WebApp::Health(Request /*request*/) {
  co_return HttpResponse::Json(200, R"({"status":"ok"})");
}

WebApp::Task WebApp::OpenApi(Request request) {
  // Public and the same until the binary changes: cacheable, revalidated by its ETag.
  HttpResponse response;
  if (request.headers.Get("If-None-Match").value_or("") == openapi_etag_) {
    response.status = 304;
  } else {
    response = HttpResponse::Json(200, std::string(OpenApiDocument()));
  }
  response.headers.Set("ETag", openapi_etag_);
  response.headers.Set("Cache-Control", "public, max-age=300");
  co_return response;
}

WebApp::Task WebApp::MetricsPage(Request request) {
  // Prometheus scrapes with `authorization: {type: Bearer, credentials: <API key>}`.
  if (!settings_.metrics_public) {
    if (auto rejected = RejectUnauthorized(request)) {
      co_return std::move(*rejected);
    }
  }
  auto sample = co_await metrics_->Read();
  if (!sample) {
    spdlog::error("/metrics: {}", sample.error().message());
    co_return json::Error(sample.error(), request.request_id);
  }
  HttpResponse response = HttpResponse::Text(200, RenderMetrics(*sample));
  response.headers.Set("Content-Type", std::string(kPrometheusContentType));
  response.headers.Set("Cache-Control", "no-store");
  co_return response;
}

std::optional<net::HttpResponse> WebApp::RejectUnauthorized(const Request& request) {
  // A client that failed too often is refused before its key is even looked at: guessing goes
  // no faster than the limit, and a success of another client resets nothing. Its address is
  // worked out only when it counts (it took a parse of the peer's address on every request).
  std::optional<std::string> client;
  const auto client_key = [&]() -> const std::string& {
    if (!client) {
      client = settings_.client_addresses.LimitKeyOf(request);
    }
    return *client;
  };
  if (api_key_failures_.MayBlockAnyone()) {
    if (auto wait = api_key_failures_.Blocked(client_key())) {
      spdlog::info("{} refused: too many failed API-key attempts", client_key());
      return TooManyAttempts(
          request, "Too many requests with a wrong API key from this address.", *wait);
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  const auto authorization = request.headers.Get("Authorization");
  const auto header = authorization.value_or("");
  const bool ok =
      !settings_.api_key.Empty() && header.size() > kBearer.size() &&
      header.substr(0, kBearer.size()) == kBearer &&
      crypto::ConstantTimeEquals(header.substr(kBearer.size()), settings_.api_key.Reveal());
  if (ok) {
    return std::nullopt;
  }
  // A request with no Authorization at all guesses nothing (a browser, a scraper left without
  // the key): only an attempt counts.
  if (authorization) {
    api_key_failures_.Record(client_key());
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
  std::string reference;
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
    if (const auto* r = object->if_contains("reference")) {
      const auto* text = r->if_string();
      if (text == nullptr ||
          !service::LooksLikeFlowReference(std::string_view(text->data(), text->size()))) {
        co_return HttpResponse::Json(
            400,
            boost::json::serialize(boost::json::object{
                {"error", "invalid_request"},
                {"message",
                 "\"reference\" must be a string of 1 to 200 bytes without control characters."},
                {"request_id", request.request_id},
            }));
      }
      reference.assign(text->data(), text->size());
    }
  }
  auto start = co_await flow_.Start(mode, service::StatePurpose::kConnect, std::move(reference));
  if (!start) {
    co_return json::Error(start.error(), request.request_id);
  }
  co_return NoStore(HttpResponse::Json(201, json::ConnectStart(*start)));
}

WebApp::Task WebApp::Button(Request request) {
  if (auto rejected = RejectUnauthorized(request)) {
    co_return std::move(*rejected);
  }
  auto query = net::ParseQuery(request.RawQuery());
  if (!query) {
    co_return InvalidRequest(request, "The query string is not valid percent-encoding.");
  }
  core::SiteButton button;
  if (auto refused = core::MakeSiteButton(ButtonContext(), *query, button)) {
    co_return RefusedButton(request, *refused);
  }
  auto start = co_await flow_.Start(button.mode, service::PurposeOf(button.variant));
  if (!start) {
    co_return json::Error(start.error(), request.request_id);
  }
  button.state = start->state;
  co_return NoStore(HttpResponse::Json(200,
                                       boost::json::serialize(boost::json::object{
                                           {"html", core::RenderSiteButton(button)},
                                           {"state", start->state},
                                           {"expires_at", core::FormatIsoTime(start->expires_at)},
                                           {"variant", core::ToString(button.variant)},
                                           {"mode", core::ToString(button.mode)},
                                       })));
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
  std::optional<std::string> client_id = ClientIdOf(request);
  auto account = co_await accounts_.Get(*id, std::move(client_id));
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
  std::optional<std::string> client_id = ClientIdOf(request);
  auto refreshed = co_await accounts_.ForceRefresh(*id, client_id);
  if (!refreshed) {
    co_return co_await AccountError(
        refreshed.error(), *id, std::move(client_id), request.request_id);
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
  std::optional<std::string> client_id = ClientIdOf(request);
  auto fresh = co_await accounts_.FreshToken(*id, client_id);
  if (!fresh) {
    co_return co_await AccountError(fresh.error(), *id, std::move(client_id), request.request_id);
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
  // The query belongs to amoCRM here: only the header names the integration.
  std::optional<std::string> client_id;
  if (auto header = request.headers.Get("X-Amoauth-Client-Id"); header && !header->empty()) {
    client_id = std::string(*header);
  }
  request.target = std::move(target);
  auto answer = co_await accounts_.Proxy(*id, std::move(request), client_id);
  if (!answer) {
    HttpResponse refused =
        co_await AccountError(answer.error(), *id, std::move(client_id), request_id);
    if (Is(answer.error(), Errc::kThrottled) || Is(answer.error(), Errc::kAmoBlocked)) {
      const auto wait = std::max(accounts_.Limiter().RetryAfter(*id), std::chrono::seconds{1});
      refused.headers.Set("Retry-After", std::to_string(wait.count()));
    }
    co_return refused;
  }
  co_return std::move(*answer);
}

}  // namespace amoauth::web
