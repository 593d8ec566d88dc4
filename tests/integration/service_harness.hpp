#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "amoauth/amo_client/amo_http_client.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/sandbox/sandbox.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/api_key_exchange.hpp"
#include "amoauth/service/code_queue_worker.hpp"
#include "amoauth/service/connect_flow.hpp"
#include "amoauth/service/long_lived_tokens.hpp"
#include "amoauth/service/metrics.hpp"
#include "amoauth/service/refresh_scheduler.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "amoauth/web/web_app.hpp"
#include "fake_clock.hpp"

namespace amoauth::testing {

/// Counts what goes through the AmoClient port, so a test can prove nothing left at all.
class CountingAmoClient final : public service::AmoClient {
 public:
  explicit CountingAmoClient(service::AmoClient& inner) : inner_(inner) {}
  service::Task<Result<core::TokenGrant>> ExchangeCode(std::string host,
                                                       core::AuthorizationCodeGrant g) override {
    ++calls;
    auto grant = co_await inner_.ExchangeCode(std::move(host), std::move(g));
    Note(grant);
    co_return grant;
  }
  service::Task<Result<core::TokenGrant>> Refresh(std::string host,
                                                  core::RefreshTokenGrant g) override {
    ++calls;
    auto grant = co_await inner_.Refresh(std::move(host), std::move(g));
    Note(grant);
    co_return grant;
  }
  service::Task<Result<net::HttpResponse>> Forward(std::string host,
                                                   const net::HttpRequest& r,
                                                   Secret token) override {
    ++calls;
    co_return co_await inner_.Forward(std::move(host), r, std::move(token));
  }
  service::Task<Result<core::AccountDomain>> LookupDomain(std::string api_domain,
                                                          Secret refresh_token) override {
    ++calls;
    co_return co_await inner_.LookupDomain(std::move(api_domain), std::move(refresh_token));
  }
  service::Task<Result<void>> ExchangeApiKey(std::string host,
                                             core::ApiKeyExchangeRequest request) override {
    ++calls;
    co_return co_await inner_.ExchangeApiKey(std::move(host), std::move(request));
  }
  std::atomic<int> calls{0};
  /// Kommo's server_time of the last token answer that had one (protocol §3.2); -1: none yet.
  std::atomic<std::int64_t> last_server_time{-1};

 private:
  void Note(const Result<core::TokenGrant>& grant) {
    if (grant && grant->server_time) {
      last_server_time = *grant->server_time;
    }
  }
  service::AmoClient& inner_;
};

/// The real service — SQLite store, HTTPS client, use cases, web routes, HTTP server — and the
/// real sandbox, in one process on 127.0.0.1 with ports picked by the OS. The service's clock is
/// a FakeClock; the sandbox keeps its own (moved through its control API).
class ServiceHarness {
 public:
  /// Where amoauth serves amoCRM's disconnect hook (the default AMOAUTH_DISCONNECT_PATH).
  static constexpr std::string_view kDisconnectPath = "/api/v1/integrations/amo-crm/disconnect";

  struct Options {
    /// Empty: the Redirect URI the sandbox knows (the normal case).
    std::string redirect_uri_override;
    /// amoCRM's limits as amoauth keeps them; the default is production's.
    service::LimiterSettings limiter;
    /// Events are built (and land in the outbox) as when AMOAUTH_WEBHOOK_URL is set.
    bool events = true;
    /// AMOAUTH_POST_MESSAGE_ORIGIN; empty: the Redirect URI's origin.
    std::string post_message_origin;
    /// AMOAUTH_PLATFORM: Kommo's button flavour (kommo_oauth, data-theme, data-locale).
    core::Platform platform = core::Platform::kAmocrm;
    /// AMOAUTH_METRICS_PUBLIC=1: GET /metrics without the API key.
    bool metrics_public = false;
    /// Per-client limits (web::WebSettings); the defaults count nothing.
    std::vector<std::string> trusted_proxies;
    service::AttemptLimits api_key_failures;
    service::AttemptLimits connect_pages;
    service::AttemptLimits code_hooks;
    /// The admin UI's cookie carries Secure (as when the Redirect URI is https).
    bool admin_cookie_secure = false;
    /// The budget of one request to amoCRM (AMOAUTH_AMO_TIMEOUT_MS); short in fault tests.
    std::chrono::milliseconds amo_timeout{10000};
  };

  ServiceHarness();
  explicit ServiceHarness(Options options);
  ~ServiceHarness();

  /// Runs `aw` on the harness's io_context and waits for it.
  template <class T>
  T Await(boost::asio::awaitable<T> aw) {
    return boost::asio::co_spawn(ioc_, std::move(aw), boost::asio::use_future).get();
  }

  /// A request to amoauth (`target` like "/v1/accounts"), with the API key unless `api_key` given.
  net::HttpResponse Call(std::string method,
                         std::string target,
                         std::string body = {},
                         std::optional<std::string> api_key = std::nullopt);
  /// `count` identical requests to amoauth at once (each on its own connection); waits for all.
  std::vector<net::HttpResponse> CallMany(const std::string& method,
                                          const std::string& target,
                                          int count);
  /// Sends `request` as it is (no key added); `request.url` is a full URL.
  net::HttpResponse Send(http_client::ClientRequest request);
  /// GET of a full URL (e.g. a Location the sandbox returned), without any key.
  net::HttpResponse Get(const std::string& url);
  /// POST to the sandbox's plain listener (consent decision, control API).
  net::HttpResponse SandboxPost(const std::string& path,
                                const std::string& content_type,
                                std::string body);
  /// The sandbox's counters.
  boost::json::object SandboxCounters();
  /// Moves both clocks — amoauth's FakeClock and the sandbox's — forward together.
  void AdvanceClocks(std::chrono::seconds by);
  /// Connects account `account_id` through the real callback; returns the stored row's id.
  std::int64_t Connect(std::int64_t account_id = 30000001);

  service::AccountService& Accounts() { return *accounts_; }
  service::RefreshScheduler& Scheduler() { return *scheduler_; }
  store_sqlite::SqliteStore& Store() { return *store_; }
  /// The background exchange of hook codes; its Run() is running on the harness's threads.
  service::CodeQueueWorker& Codes() { return *codes_; }
  [[nodiscard]] std::string SandboxUrl() const { return sandbox_->BrowserBaseUrl(); }

  /// Starts a connect through the internal API and returns the state it minted.
  std::string StartConnect();
  /// Presses a button on the sandbox's consent page (post_message mode) and returns Location.
  std::string Decide(const std::string& state,
                     const std::string& decision,
                     std::int64_t account_id = 30000001);
  /// Presses a button on the sandbox's metadata consent page (post_message mode) for a new
  /// external integration whose redirect_uri and secrets_uri are amoauth's; returns the whole
  /// answer (302 with Location after Allow; amoCRM's 502 page when the secrets webhook failed).
  net::HttpResponse DecideMetadata(const std::string& state,
                                   const std::string& decision,
                                   std::int64_t account_id = 30000001);
  /// A request to amoauth with one extra header (e.g. X-Amoauth-Client-Id) and the API key.
  net::HttpResponse CallWithHeader(std::string method,
                                   std::string target,
                                   const std::string& header,
                                   const std::string& value);
  /// A request to amoauth with exactly these headers (no API key unless given): the admin UI's
  /// cookies, forms and Origin.
  net::HttpResponse Send(std::string method,
                         std::string target,
                         std::vector<std::pair<std::string, std::string>> headers,
                         std::string body = {});
  /// POST /sandbox/config with `changes` (JSON); throws unless the sandbox took them.
  void ConfigureSandbox(const std::string& changes);
  /// GET of a sandbox path (control API), parsed as JSON.
  boost::json::value SandboxGet(const std::string& path);

  [[nodiscard]] std::string BaseUrl() const { return base_url_; }
  /// The router every route was added to (WebApp::AddRoutes).
  [[nodiscard]] const http_server::Router& Routes() const { return router_; }
  [[nodiscard]] std::string DatabasePath() const { return (dir_ / "amoauth.db").string(); }
  [[nodiscard]] const std::string& ApiKey() const { return api_key_; }
  [[nodiscard]] const sandbox::Integration& SandboxIntegration() const { return integration_; }

  FakeClock clock;
  std::unique_ptr<CountingAmoClient> amo_counter;

 private:
  std::filesystem::path dir_;
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::string api_key_ = "integration-test-api-key-0123456789";
  std::string base_url_;
  sandbox::Integration integration_;
  CountingRandom random_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::unique_ptr<store_sqlite::SqliteStore> store_;
  std::unique_ptr<http_client::HttpClient> amo_http_;
  std::unique_ptr<http_client::HttpClient> plain_http_;
  std::unique_ptr<amo_client::AmoHttpClient> amo_;
  std::unique_ptr<service::IntegrationDirectory> integrations_;
  std::unique_ptr<service::ConnectFlow> flow_;
  std::unique_ptr<service::ApiLimiter> limiter_;
  std::unique_ptr<service::EventFactory> events_;
  service::Metrics metrics_;
  std::unique_ptr<service::MetricsReader> metrics_reader_;
  std::unique_ptr<service::AccountService> accounts_;
  std::unique_ptr<service::RefreshScheduler> scheduler_;
  std::unique_ptr<service::CodeQueueWorker> codes_;
  std::unique_ptr<service::ApiKeyExchange> api_keys_;
  std::unique_ptr<service::LongLivedTokens> long_lived_;
  std::unique_ptr<web::WebApp> web_;
  http_server::Router router_;
  std::unique_ptr<http_server::HttpServer> server_;
};

}  // namespace amoauth::testing
