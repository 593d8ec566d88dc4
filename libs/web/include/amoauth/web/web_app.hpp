#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "amoauth/core/platform.hpp"
#include "amoauth/core/secret.hpp"
#include "amoauth/core/site_button.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/api_key_exchange.hpp"
#include "amoauth/service/attempt_limiter.hpp"
#include "amoauth/service/code_queue_worker.hpp"
#include "amoauth/service/connect_flow.hpp"
#include "amoauth/service/long_lived_tokens.hpp"
#include "amoauth/service/metrics.hpp"
#include "amoauth/web/client_addresses.hpp"

namespace amoauth::web {

struct WebSettings {
  /// Path of the Redirect URI amoCRM sends people and hooks to (AMOAUTH_CALLBACK_PATH).
  std::string callback_path = "/api/v1/integrations/amo-crm/callback";
  /// Path of amoCRM's disconnect ("access revoked") hook (AMOAUTH_DISCONNECT_PATH, protocol §7.1).
  std::string disconnect_path = "/api/v1/integrations/amo-crm/disconnect";
  /// Path of the secrets webhook of external integrations (AMOAUTH_SECRETS_PATH, protocol §5):
  /// the metadata button's secrets_uri is the Redirect URI's origin + this path.
  std::string secrets_path = "/api/v1/integrations/amo-crm/secrets";
  /// Bearer key of the internal API (AMOAUTH_API_KEY), compared in constant time.
  Secret api_key;
  /// The site button script (amoCRM's in production, the sandbox's in sandbox mode).
  std::string button_script_url;
  core::Platform platform = core::Platform::kAmocrm;
  /// The callback page's postMessage targetOrigin in post_message mode
  /// (AMOAUTH_POST_MESSAGE_ORIGIN); empty: the Redirect URI's origin.
  std::string post_message_origin;
  /// The /connect page's button options (AMOAUTH_BUTTON_*), checked at start-up.
  core::ButtonOptionPairs connect_button;
  /// GET /metrics without the API key (AMOAUTH_METRICS_PUBLIC=1); by default it needs it.
  bool metrics_public = false;

  // Per-client limits (the client as client_addresses tells it). The defaults here count
  // nothing; amoauth serve passes the configured ones (docs/configuration.md).
  /// Reverse proxies whose X-Forwarded-For names the client (AMOAUTH_TRUSTED_PROXIES).
  ClientAddresses client_addresses;
  /// Failed API-key checks (a wrong key, or a malformed Authorization) per client; at the limit
  /// every internal route answers 429 without comparing the key
  /// (AMOAUTH_API_KEY_FAILURE_LIMIT).
  service::AttemptLimits api_key_failures;
  /// GET /connect (and /) per client: each mints a pending state (AMOAUTH_CONNECT_LIMIT).
  service::AttemptLimits connect_pages;
  /// The widget and exchange hooks per client: each may queue a code (AMOAUTH_HOOK_LIMIT).
  service::AttemptLimits code_hooks;
  /// The admin UI's session cookie carries Secure. It does anyway when the Redirect URI (the
  /// service's public address) is https.
  bool admin_cookie_secure = false;
  /// How long an admin session lasts after the login (docs/admin-ui.md).
  std::chrono::seconds admin_session_ttl{8 * 3600};
};

namespace admin {
class Sessions;
class LoginLimiter;
}  // namespace admin

/// amoauth's HTTP surface:
/// public — GET /connect (and /), GET {callback_path}, GET {disconnect_path} (signed by amoCRM),
/// POST {secrets_path} (checked against the states we issued), GET /healthz, GET /openapi.json
/// (docs/openapi.json, which describes every route here; a test holds the two together);
/// internal (Bearer API key) — POST /v1/connect, GET /v1/button, GET /v1/accounts,
/// GET /v1/accounts/{id}, GET /v1/accounts/{id}/token, POST /v1/accounts/{id}/refresh,
/// ANY /v1/accounts/{id}/proxy/{path*}, POST /v1/long-lived-tokens, GET /metrics (Prometheus;
/// the API key too unless WebSettings::metrics_public).
/// Handlers translate HTTP to use-case calls and results to pages or JSON; nothing else.
/// The use cases the HTTP surface drives. All must outlive the WebApp.
struct WebServices {
  service::ConnectFlow& flow;
  service::AccountService& accounts;
  service::CodeQueueWorker& codes;       ///< the from_widget / from_exchange hooks
  service::ApiKeyExchange& api_keys;     ///< /v1/exchange-api-key, /v1/legacy-login
  service::LongLivedTokens& long_lived;  ///< /v1/long-lived-tokens
  const core::Clock& clock;
  /// GET /metrics; nullptr: no such route.
  service::MetricsReader* metrics = nullptr;
  /// The admin UI's account history; nullptr: the account page says there is none.
  service::AccountHistory* history = nullptr;
  /// The admin UI's list of external integrations; nullptr: only the configured one is shown.
  service::IntegrationStore* integrations = nullptr;
};

class WebApp {
 public:
  WebApp(WebSettings settings, WebServices services);
  ~WebApp();
  WebApp(const WebApp&) = delete;
  WebApp& operator=(const WebApp&) = delete;

  /// Registers every route; this WebApp must outlive `router`'s use.
  void AddRoutes(http_server::Router& router);

 private:
  using Request = net::HttpRequest;
  using Response = net::HttpResponse;
  using Task = boost::asio::awaitable<Response>;

  Task ConnectPage(Request request);
  Task Callback(Request request);
  Task DisconnectHook(Request request);
  Task SecretsHook(Request request);
  Task Health(Request request);
  /// GET /openapi.json: docs/openapi.json, compiled in.
  Task OpenApi(Request request);
  Task MetricsPage(Request request);

  Task StartConnect(Request request);
  Task Button(Request request);
  // long_lived_routes.cpp
  Task AddLongLivedToken(Request request);
  /// The error of a call about one account; a long-lived token's end is told with its date (the
  /// row's last_error), the rest as json::Error.
  Task AccountError(boost::system::error_code error,
                    std::int64_t account_id,
                    std::optional<std::string> client_id,
                    std::string request_id);
  Task ListAccounts(Request request);
  Task GetAccount(Request request);
  Task GetToken(Request request);
  Task ForceRefresh(Request request);
  Task ProxyCall(Request request);

  /// What amoauth puts on every button: platform, script, its integration and its own URLs.
  [[nodiscard]] core::ButtonContext ButtonContext() const;
  /// The callback page's targetOrigin: the configured one, or the Redirect URI's origin.
  [[nodiscard]] std::string PostMessageOrigin() const;

  // code_routes.cpp: codes that arrive without a person, and legacy API keys.
  Task CodeHook(service::CallbackParams params, std::string request_id);
  Task ExchangeApiKey(Request request);
  Task LegacyLogin(Request request);

  // admin_routes.cpp: the admin UI (docs/admin-ui.md).
  struct AdminCaller {
    std::string session_id;
    std::string csrf;
  };
  /// What a login attempt with `key` from `address` (ClientAddresses::LimitKeyOf) gets. The one
  /// place that decides a login: a wrong key counts on the login's own limiter and on /v1's
  /// API-key failures, and either at its limit refuses the login.
  enum class LoginVerdict { kOk, kWrongKey, kTooManyFailures };
  [[nodiscard]] LoginVerdict CheckAdminLogin(const std::string& address,
                                             std::string_view key,
                                             std::chrono::seconds& retry_after);
  /// The caller's live admin session, from its cookie.
  [[nodiscard]] std::optional<AdminCaller> AdminSession(const Request& request) const;
  /// nullopt when a state-changing admin POST may go on: a live session, the form's CSRF token
  /// equal to the session's, and an Origin (when sent) of this host. Else the refusal.
  [[nodiscard]] std::optional<Response> RejectAdminPost(const Request& request,
                                                        const net::QueryParams& form,
                                                        std::optional<AdminCaller>& caller) const;
  [[nodiscard]] std::string SessionCookie(std::string_view value,
                                          std::chrono::seconds max_age) const;
  Task AdminLoginForm(Request request);
  Task AdminLogin(Request request);
  Task AdminLogout(Request request);
  Task AdminAccounts(Request request);
  Task AdminAccount(Request request);
  Task AdminRefresh(Request request);
  Task AdminDisconnect(Request request);
  Task AdminIntegrations(Request request);
  Task AdminScript(Request request);
  void AddAdminRoutes(http_server::Router& router);

  /// The internal API's key check; nullopt when the caller may pass. Counts failures per
  /// client, and refuses a client over the limit (429) without comparing its key.
  [[nodiscard]] std::optional<Response> RejectUnauthorized(const Request& request);

  WebSettings settings_;
  service::ConnectFlow& flow_;
  service::AccountService& accounts_;
  service::LongLivedTokens& long_lived_;
  const core::Clock& clock_;
  service::CodeQueueWorker& codes_;
  service::ApiKeyExchange& api_keys_;
  service::MetricsReader* metrics_;
  service::AttemptLimiter api_key_failures_;
  service::AttemptLimiter connect_pages_;
  service::AttemptLimiter code_hooks_;
  service::AccountHistory* history_;
  service::IntegrationStore* integrations_;
  std::unique_ptr<admin::Sessions> admin_sessions_;
  std::unique_ptr<admin::LoginLimiter> login_limiter_;
  /// The strong ETag of the compiled-in OpenAPI document.
  std::string openapi_etag_;
};

}  // namespace amoauth::web
