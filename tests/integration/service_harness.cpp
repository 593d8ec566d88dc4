#include "service_harness.hpp"

#include <stdexcept>

#include <boost/asio/detached.hpp>
#include <boost/url.hpp>

#include "amoauth/crypto/aead.hpp"

namespace amoauth::testing {
namespace {

template <class T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    throw std::runtime_error(std::string(what) + ": " + r.error().message());
  }
  return std::move(*r);
}

std::filesystem::path MakeTempDir() {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("amoauth-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

ServiceHarness::ServiceHarness(Options options)
    : dir_(MakeTempDir()), work_(boost::asio::make_work_guard(ioc_)) {
  for (int i = 0; i < 2; ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  sandbox_ =
      Must(sandbox::Sandbox::Start(ioc_.get_executor(), {.state_dir = dir_.string()}), "sandbox");

  server_ = std::make_unique<http_server::HttpServer>(
      ioc_.get_executor(), http_server::ServerOptions{}, router_.AsHandler());
  const auto port = Must(server_->Listen("127.0.0.1", 0), "listen");
  base_url_ = "http://127.0.0.1:" + std::to_string(port);
  const std::string callback_path = "/api/v1/integrations/amo-crm/callback";
  integration_ =
      sandbox_->AddIntegration({.redirect_uri = base_url_ + callback_path,
                                .disconnect_hook_url = base_url_ + std::string(kDisconnectPath)});

  store_ = Must(store_sqlite::SqliteStore::Open({.path = DatabasePath(), .clock = &clock},
                                                crypto::MasterKey::Generate()),
                "store");
  amo_http_ = Must(http_client::HttpClient::Create(ioc_.get_executor(),
                                                   {.connect_to = sandbox_->ConnectTo(),
                                                    .ca_file = sandbox_->CaFile(),
                                                    .timeout = options.amo_timeout}),
                   "amo http client");
  plain_http_ = Must(
      http_client::HttpClient::Create(ioc_.get_executor(), {.timeout = std::chrono::seconds(90)}),
      "http client");
  amo_ = std::make_unique<amo_client::AmoHttpClient>(*amo_http_);
  amo_counter = std::make_unique<CountingAmoClient>(*amo_);

  service::Integration integration{
      .platform = options.platform,
      .client_id = integration_.client_id,
      .client_secret = Secret(integration_.client_secret),
      .redirect_uri = options.redirect_uri_override.empty() ? integration_.redirect_uri
                                                            : options.redirect_uri_override,
      .consent_url = sandbox_->BrowserBaseUrl() + "/oauth",
  };
  const core::RefererPolicy referer_policy({"amocrm.ru", "amocrm.com", "kommo.com"});
  const service::FlowSettings settings{.lease_ttl = std::chrono::seconds(15),
                                       .instance_id = "integration-harness"};
  events_ = std::make_unique<service::EventFactory>(options.events, clock, random_);
  limiter_ = std::make_unique<service::ApiLimiter>(options.limiter, ioc_.get_executor());
  integrations_ = std::make_unique<service::IntegrationDirectory>(integration, *store_);
  flow_ = std::make_unique<service::ConnectFlow>(*integrations_,
                                                 settings,
                                                 referer_policy,
                                                 *store_,
                                                 *store_,
                                                 *store_,
                                                 *amo_counter,
                                                 *events_,
                                                 clock,
                                                 random_);
  accounts_ = std::make_unique<service::AccountService>(*integrations_,
                                                        settings,
                                                        referer_policy,
                                                        service::AccountPorts{
                                                            .connections = *store_,
                                                            .leases = *store_,
                                                            .outbox = *store_,
                                                            .amo = *amo_counter,
                                                            .limiter = *limiter_,
                                                            .events = *events_,
                                                            .clock = clock,
                                                            .random = random_,
                                                            .metrics = &metrics_,
                                                        });
  metrics_reader_ = std::make_unique<service::MetricsReader>(service::MetricsPorts{
      .counters = metrics_,
      .statistics = *store_,
      .outbox = *store_,
      .codes = *store_,
      .limiter = *limiter_,
      .clock = clock,
  });
  scheduler_ = std::make_unique<service::RefreshScheduler>(
      *accounts_, *store_, clock, service::SchedulerSettings{});
  codes_ = std::make_unique<service::CodeQueueWorker>(
      *flow_, *store_, *events_, clock, random_, ioc_.get_executor(), service::CodeQueueSettings{});
  api_keys_ = std::make_unique<service::ApiKeyExchange>(
      integration, referer_policy, *amo_counter, *store_, *store_, clock);
  long_lived_ = std::make_unique<service::LongLivedTokens>(
      *integrations_, referer_policy, *store_, *events_, clock);
  web::ClientAddresses clients =
      web::ClientAddresses::Parse(options.trusted_proxies).value_or(web::ClientAddresses());
  web_ = std::make_unique<web::WebApp>(
      web::WebSettings{.callback_path = callback_path,
                       .disconnect_path = std::string(kDisconnectPath),
                       .api_key = Secret(api_key_),
                       .button_script_url = sandbox_->BrowserBaseUrl() + "/auth/button.js",
                       .platform = options.platform,
                       .post_message_origin = options.post_message_origin,
                       .metrics_public = options.metrics_public,
                       .client_addresses = std::move(clients),
                       .api_key_failures = options.api_key_failures,
                       .connect_pages = options.connect_pages,
                       .code_hooks = options.code_hooks,
                       .admin_cookie_secure = options.admin_cookie_secure},
      web::WebServices{
          .flow = *flow_,
          .accounts = *accounts_,
          .codes = *codes_,
          .api_keys = *api_keys_,
          .long_lived = *long_lived_,
          .clock = clock,
          .metrics = metrics_reader_.get(),
          .history = store_.get(),
          .integrations = store_.get(),
      });
  web_->AddRoutes(router_);
  server_->Start();
  boost::asio::co_spawn(codes_->Executor(), codes_->Run(), boost::asio::detached);
}

ServiceHarness::ServiceHarness() : ServiceHarness(Options{}) {}

ServiceHarness::~ServiceHarness() {
  codes_->Stop();
  server_->Stop();
  sandbox_->Stop();
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) {
    t.join();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

net::HttpResponse ServiceHarness::Call(std::string method,
                                       std::string target,
                                       std::string body,
                                       std::optional<std::string> api_key) {
  http_client::ClientRequest request;
  request.method = std::move(method);
  request.url = base_url_ + target;
  request.body = std::move(body);
  const std::string key = api_key.value_or(api_key_);
  if (!key.empty()) {
    request.headers.Set("Authorization", "Bearer " + key);
  }
  if (!request.body.empty()) {
    request.headers.Set("Content-Type", "application/json");
  }
  return Must(Await(plain_http_->Send(std::move(request))), "call amoauth");
}

std::vector<net::HttpResponse> ServiceHarness::CallMany(const std::string& method,
                                                        const std::string& target,
                                                        int count) {
  std::vector<std::future<Result<net::HttpResponse>>> pending;
  for (int i = 0; i < count; ++i) {
    http_client::ClientRequest request{.method = method, .url = base_url_ + target};
    request.headers.Set("Authorization", "Bearer " + api_key_);
    pending.push_back(boost::asio::co_spawn(
        ioc_, plain_http_->Send(std::move(request)), boost::asio::use_future));
  }
  std::vector<net::HttpResponse> responses;
  for (auto& f : pending) {
    responses.push_back(Must(f.get(), "call amoauth"));
  }
  return responses;
}

net::HttpResponse ServiceHarness::Send(http_client::ClientRequest request) {
  return Must(Await(plain_http_->Send(std::move(request))), "send");
}

net::HttpResponse ServiceHarness::Get(const std::string& url) {
  return Must(Await(plain_http_->Send({.method = "GET", .url = url})), "GET");
}

net::HttpResponse ServiceHarness::SandboxPost(const std::string& path,
                                              const std::string& content_type,
                                              std::string body) {
  http_client::ClientRequest request{
      .method = "POST", .url = sandbox_->BrowserBaseUrl() + path, .body = std::move(body)};
  request.headers.Set("Content-Type", content_type);
  return Must(Await(plain_http_->Send(std::move(request))), "sandbox POST");
}

boost::json::object ServiceHarness::SandboxCounters() {
  auto r = Get(sandbox_->BrowserBaseUrl() + "/sandbox/journal");
  return boost::json::parse(r.body).as_object().at("counters").as_object();
}

void ServiceHarness::AdvanceClocks(std::chrono::seconds by) {
  clock.Advance(by);
  auto r = SandboxPost("/sandbox/clock/advance",
                       "application/json",
                       boost::json::serialize(boost::json::object{{"seconds", by.count()}}));
  if (r.status != 200) {
    throw std::runtime_error("sandbox clock advance: " + std::to_string(r.status) + " " + r.body);
  }
}

std::int64_t ServiceHarness::Connect(std::int64_t account_id) {
  const std::string location = Decide(StartConnect(), "allow", account_id);
  auto r = Get(location);
  if (r.status != 200) {
    throw std::runtime_error("callback: " + std::to_string(r.status) + " " + r.body);
  }
  return account_id;
}

std::string ServiceHarness::StartConnect() {
  auto r = Call("POST", "/v1/connect", R"({"mode":"post_message"})");
  if (r.status != 201) {
    throw std::runtime_error("POST /v1/connect: " + std::to_string(r.status) + " " + r.body);
  }
  return std::string(boost::json::parse(r.body).as_object().at("state").as_string());
}

std::string ServiceHarness::Decide(const std::string& state,
                                   const std::string& decision,
                                   std::int64_t account_id) {
  boost::urls::url form;
  form.params().append({"client_id", integration_.client_id});
  form.params().append({"state", state});
  form.params().append({"mode", "post_message"});
  form.params().append({"account_id", std::to_string(account_id)});
  form.params().append({"decision", decision});
  auto r = SandboxPost(
      "/oauth/decision", "application/x-www-form-urlencoded", std::string(form.encoded_query()));
  auto location = r.headers.Get("Location");
  if (r.status != 302 || !location) {
    throw std::runtime_error("consent decision: " + std::to_string(r.status) + " " + r.body);
  }
  return std::string(*location);
}

net::HttpResponse ServiceHarness::DecideMetadata(const std::string& state,
                                                 const std::string& decision,
                                                 std::int64_t account_id) {
  boost::urls::url form;
  form.params().append({"name", "Deals sync"});
  form.params().append({"description", "Keeps deals in step"});
  form.params().append({"redirect_uri", integration_.redirect_uri});
  form.params().append({"secrets_uri", base_url_ + "/api/v1/integrations/amo-crm/secrets"});
  form.params().append({"scopes[]", "crm"});
  form.params().append({"scopes[]", "notifications"});
  form.params().append({"state", state});
  form.params().append({"mode", "post_message"});
  form.params().append({"account_id", std::to_string(account_id)});
  form.params().append({"decision", decision});
  return SandboxPost(
      "/oauth/decision", "application/x-www-form-urlencoded", std::string(form.encoded_query()));
}

net::HttpResponse ServiceHarness::Send(std::string method,
                                       std::string target,
                                       std::vector<std::pair<std::string, std::string>> headers,
                                       std::string body) {
  http_client::ClientRequest request;
  request.method = std::move(method);
  request.url = base_url_ + target;
  request.body = std::move(body);
  for (const auto& [name, value] : headers) {
    request.headers.Set(name, value);
  }
  return Must(Await(plain_http_->Send(std::move(request))), "call amoauth");
}

net::HttpResponse ServiceHarness::CallWithHeader(std::string method,
                                                 std::string target,
                                                 const std::string& header,
                                                 const std::string& value) {
  http_client::ClientRequest request;
  request.method = std::move(method);
  request.url = base_url_ + target;
  request.headers.Set("Authorization", "Bearer " + api_key_);
  request.headers.Set(header, value);
  return Must(Await(plain_http_->Send(std::move(request))), "call amoauth");
}

void ServiceHarness::ConfigureSandbox(const std::string& changes) {
  auto r = SandboxPost("/sandbox/config", "application/json", changes);
  if (r.status != 200) {
    throw std::runtime_error("sandbox config: " + std::to_string(r.status) + " " + r.body);
  }
}

boost::json::value ServiceHarness::SandboxGet(const std::string& path) {
  auto r = Get(sandbox_->BrowserBaseUrl() + path);
  if (r.status != 200) {
    throw std::runtime_error("sandbox GET " + path + ": " + std::to_string(r.status));
  }
  return boost::json::parse(r.body);
}

}  // namespace amoauth::testing
