// `amoauth serve [--sandbox]` and `amoauth sandbox`: the long-running processes.
#include <array>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "amoauth/http_server/http_server.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/net/log_context.hpp"
#include "amoauth/net/one_thread_context.hpp"
#include "amoauth/sandbox/sandbox.hpp"
#include "amoauth/web/web_app.hpp"
#include "commands.hpp"
#include "local_setup.hpp"
#include "runtime.hpp"

namespace amoauth::app {
namespace {

/// What is still running during a graceful shutdown.
struct Pending {
  std::size_t requests = 0;   ///< HTTP requests read and not yet answered
  std::size_t refreshes = 0;  ///< refreshes running, from taking the lease to the commit
  std::size_t rounds = 0;     ///< background loops in a round (scheduler, webhooks, code queue)

  [[nodiscard]] bool Idle() const { return requests == 0 && refreshes == 0 && rounds == 0; }
};

/// How SIGINT/SIGTERM ends the process: drain(), then wait until pending() is idle, at most
/// grace, then stop(). A grace of 0 goes straight to stop().
struct Shutdown {
  std::chrono::milliseconds grace{0};
  /// Take no new work: refuse new connections, start no new background round. Runs once.
  std::function<void()> drain = [] {};
  std::function<Pending()> pending = [] { return Pending{}; };
  /// Cut whatever is left. Runs once, just before the io_context stops.
  std::function<void()> stop = [] {};
};

/// How often a drain looks at what is still running. A poll rather than a notification from each
/// part: the parts stay unaware of the shutdown, and a few milliseconds more on exit cost nothing.
constexpr std::chrono::milliseconds kDrainPoll{10};

/// Runs `ioc` on this thread and each of `others` on a thread of its own until SIGINT/SIGTERM and
/// the drain that follows (`shutdown`); a second signal during the drain stops at once.
void RunUntilSignal(boost::asio::io_context& ioc,
                    const std::vector<std::unique_ptr<boost::asio::io_context>>& others,
                    const Shutdown& shutdown) {
  using Clock = std::chrono::steady_clock;
  // The signal handler and the drain's timer take turns on one strand.
  auto strand = boost::asio::make_strand(ioc);
  boost::asio::signal_set signals(strand, SIGINT, SIGTERM);
  boost::asio::steady_timer poll(strand);
  bool draining = false;
  bool finished = false;
  Clock::time_point started;
  Pending waited_for;

  auto finish = [&] {
    if (finished) {
      return;
    }
    finished = true;
    signals.cancel();
    poll.cancel();
    shutdown.stop();
    ioc.stop();
    for (const auto& other : others) {
      other->stop();
    }
  };
  std::function<void()> check = [&] {
    const Pending now = shutdown.pending();
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    if (now.Idle()) {
      spdlog::info("drained in {} ms: waited for {} request(s) and {} refresh(es); stopping",
                   elapsed.count(),
                   waited_for.requests,
                   waited_for.refreshes);
      finish();
      return;
    }
    if (elapsed >= shutdown.grace) {
      spdlog::warn(
          "shutdown grace of {} ms is over (AMOAUTH_SHUTDOWN_GRACE_MS): cutting {} request(s), "
          "{} refresh(es) and {} background round(s) still running",
          shutdown.grace.count(),
          now.requests,
          now.refreshes,
          now.rounds);
      finish();
      return;
    }
    poll.expires_after(std::min<Clock::duration>(kDrainPoll, shutdown.grace - elapsed));
    poll.async_wait([&](const boost::system::error_code& ec) {
      if (!ec && !finished) {
        check();
      }
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec || finished) {
          return;
        }
        if (draining) {
          spdlog::warn("signal {} received again while draining; stopping at once", signal);
          finish();
          return;
        }
        draining = true;
        if (shutdown.grace.count() == 0) {
          spdlog::info("signal {} received; stopping", signal);
          finish();
          return;
        }
        started = Clock::now();
        waited_for = shutdown.pending();
        // Before the line below: a connection made after it is refused, or accepted and closed
        // at once if the acceptor is not closed yet; either way it gets no answer.
        shutdown.drain();
        spdlog::info(
            "signal {} received; draining (new connections refused): {} request(s), {} "
            "refresh(es) in flight; waiting up to {} ms",
            signal,
            waited_for.requests,
            waited_for.refreshes,
            shutdown.grace.count());
        signals.async_wait(on_signal);
        check();
      };
  signals.async_wait(on_signal);
  std::vector<std::thread> pool;
  for (const auto& other : others) {
    pool.emplace_back([&context = *other] {
      // Kept running while it has no connection; finish() stops it.
      auto work = boost::asio::make_work_guard(context);
      context.run();
    });
  }
  ioc.run();
  for (auto& t : pool) {
    t.join();
  }
}

bool SplitHostPort(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return false;
  }
  host = text.substr(0, colon);
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, port);
  return ec == std::errc() && ptr == last;
}

std::string LoopbackHost(const std::string& host) {
  return host == "0.0.0.0" || host == "::" ? std::string("127.0.0.1") : host;
}

}  // namespace

int RunServe(const ServeOptions& options) {
  CommonOptions common = options.common;
  common.read_sandbox_env = false;  // serve --sandbox writes it; it never reads an old one
  auto loaded = LoadLayeredConfig(common);
  if (!loaded) {
    fmt::print(stderr, "amoauth: configuration error: {}\n", loaded.error());
    return 2;
  }
  Config config = std::move(*loaded);
  SetUpLogging(config.log_level, config.log_format);
  const bool sandbox_mode = options.common.sandbox;
  if (sandbox_mode) {
    if (auto ok = EnsureSandboxSecrets(config); !ok) {
      ReportFatal(config.log_format, ok.error());
      return 2;
    }
  }

  // An io_context per thread, each run by that thread alone: a connection stays on one thread,
  // without a strand's locking or the hand-overs between threads of a shared context (this
  // halved the CPU a request costs, docs/benchmarks.md). The first also runs everything else.
  boost::asio::io_context ioc(1);
  std::vector<std::unique_ptr<boost::asio::io_context>> others;
  std::vector<boost::asio::io_context*> connection_contexts{&ioc};
  for (int i = 1; i < config.threads; ++i) {
    others.push_back(std::make_unique<boost::asio::io_context>(1));
    connection_contexts.push_back(others.back().get());
  }
  // RunUntilSignal runs each on one thread: the HTTP client may skip its strands there.
  for (boost::asio::io_context* context : connection_contexts) {
    net::MarkRunByOneThread(*context);
  }
  http_server::Router router;
  http_server::HttpServer server(
      ioc.get_executor(),
      connection_contexts,
      {.body_limit = config.http_body_limit,
       .header_limit = config.http_header_limit,
       .max_header_fields = config.http_max_header_fields,
       .header_timeout = config.http_header_timeout,
       .body_timeout = config.http_body_timeout,
       .idle_timeout = config.http_idle_timeout,
       .io_timeout = config.http_write_timeout,
       .max_connections = config.http_max_connections,
       .max_connections_per_address = config.http_max_connections_per_address,
       .log_name = "http"},
      router.AsHandler());
  auto port = server.Listen(config.listen_host, config.listen_port);
  if (!port) {
    ReportFatal(config.log_format,
                fmt::format("cannot listen on {}:{}: {} (AMOAUTH_LISTEN)",
                            config.listen_host,
                            config.listen_port,
                            port.error().message()));
    return 2;
  }
  const std::string base_url = fmt::format("http://{}:{}", LoopbackHost(config.listen_host), *port);

  std::unique_ptr<sandbox::Sandbox> sandbox;
  if (sandbox_mode) {
    const std::string state_dir = (std::filesystem::path(config.DataDir()) / "sandbox").string();
    std::filesystem::create_directories(state_dir);
    auto started = sandbox::Sandbox::Start(
        ioc.get_executor(), {.state_dir = state_dir, .connection_contexts = connection_contexts});
    if (!started) {
      ReportFatal(config.log_format, "cannot start the sandbox: " + started.error().message());
      return 1;
    }
    sandbox = std::move(*started);
    // The sandbox sends the browser back here, whatever production Redirect URI .env holds.
    if (!config.redirect_uri.empty() && config.redirect_uri != base_url + config.callback_path) {
      spdlog::info("sandbox mode: using {} as the Redirect URI instead of AMO_REDIRECT_URI",
                   base_url + config.callback_path);
    }
    config.redirect_uri = base_url + config.callback_path;
    auto integration = sandbox->AddIntegration({
        .client_id = config.client_id,
        .client_secret = config.client_secret.Reveal(),
        .redirect_uri = config.redirect_uri,
        .name = "amoauth (sandbox)",
        .disconnect_hook_url = base_url + config.disconnect_path,
    });
    config.client_id = integration.client_id;
    config.client_secret = Secret(integration.client_secret);
    // The very settings production uses, pointed at the sandbox.
    config.consent_url = sandbox->BrowserBaseUrl() + "/oauth";
    config.button_script_url = sandbox->BrowserBaseUrl() + "/auth/button.js";
    config.amo_connect_to = sandbox->ConnectTo();
    config.amo_ca_file = sandbox->CaFile();
    if (auto ok = WriteSandboxEnv(config); !ok) {
      spdlog::warn("{}", ok.error());
    }
  }

  auto runtime = Runtime::Build(config, ioc.get_executor());
  if (!runtime) {
    ReportFatal(config.log_format, runtime.error());
    return 1;
  }
  // Per-client limits (docs/configuration.md, "Limits"); the proxies were checked by LoadConfig.
  web::ClientAddresses clients =
      web::ClientAddresses::Parse(config.trusted_proxies).value_or(web::ClientAddresses());
  const service::AttemptLimits key_failures{.max_attempts = config.api_key_failure_limit,
                                            .window = std::chrono::minutes(15)};
  const service::AttemptLimits connects{.max_attempts = config.connect_limit,
                                        .window = std::chrono::minutes(20)};
  const service::AttemptLimits hooks{.max_attempts = config.hook_limit,
                                     .window = std::chrono::minutes(20)};
  web::WebApp web({.callback_path = config.callback_path,
                   .disconnect_path = config.disconnect_path,
                   .secrets_path = config.secrets_path,
                   .api_key = config.api_key,
                   .button_script_url = config.button_script_url,
                   .platform = config.platform,
                   .post_message_origin = config.post_message_origin,
                   .connect_button = config.connect_button,
                   .metrics_public = config.metrics_public,
                   .client_addresses = std::move(clients),
                   .api_key_failures = key_failures,
                   .connect_pages = connects,
                   .code_hooks = hooks},
                  {
                      .flow = (*runtime)->Flow(),
                      .accounts = (*runtime)->Accounts(),
                      .codes = (*runtime)->Codes(),
                      .api_keys = (*runtime)->ApiKeys(),
                      .long_lived = (*runtime)->LongLived(),
                      .clock = (*runtime)->Clock(),
                      .metrics = &(*runtime)->MetricsReport(),
                      .history = &(*runtime)->StoreForAdmin(),
                      .integrations = &(*runtime)->StoreForAdmin(),
                  });
  web.AddRoutes(router);
  server.Start();

  // The background work: refresh ahead of expiry and keep idle accounts alive; deliver webhooks.
  service::RefreshScheduler& scheduler = (*runtime)->Scheduler();
  // Each logs with a job id of its own in place of a request id (the scheduler: per account).
  const auto background = [&ioc](const char* job) {
    return net::WithLogId(ioc.get_executor(), std::make_shared<const std::string>(job));
  };
  boost::asio::co_spawn(background("scheduler"), scheduler.Run(), boost::asio::detached);
  service::WebhookDispatcher* webhooks = (*runtime)->Webhooks();
  if (webhooks != nullptr) {
    boost::asio::co_spawn(background("webhooks"), webhooks->Run(), boost::asio::detached);
  }
  // Codes from the widget-install and exchange_api_key hooks, including any a previous run left.
  service::CodeQueueWorker& codes = (*runtime)->Codes();
  const auto codes_executor =
      net::WithLogId(codes.Executor(), std::make_shared<const std::string>("codes"));
  boost::asio::co_spawn(codes_executor, codes.Run(), boost::asio::detached);
  spdlog::info("refresh scheduler running as {}; webhooks {}",
               (*runtime)->InstanceId(),
               webhooks != nullptr ? "on" : "off (AMOAUTH_WEBHOOK_URL is not set)");

  spdlog::info("amoauth listening on {} (Redirect URI {})", base_url, config.redirect_uri);
  if (sandbox) {
    spdlog::info("sandbox: consent page {}/oauth, amoCRM hosts via {}, control API {}/sandbox/",
                 sandbox->BrowserBaseUrl(),
                 sandbox->ConnectTo(),
                 sandbox->BrowserBaseUrl());
    if (config.log_format == "json") {
      spdlog::info(
          "amoauth is running with the amoCRM sandbox: open {}/connect; admin UI {}/admin; "
          "API key in {}/api.key",
          base_url,
          base_url,
          config.DataDir());
    } else {
      fmt::print(stderr,
                 "\n  amoauth is running with the amoCRM sandbox.\n"
                 "  Open {}/connect and press \"Connect amoCRM\".\n"
                 "  Admin UI: {}/admin (log in with the internal API key)\n"
                 "  Internal API key: {}/api.key  (export AMOAUTH_API_KEY=$(cat {}/api.key))\n\n",
                 base_url,
                 base_url,
                 config.DataDir(),
                 config.DataDir());
    }
  }
  if (!options.ready_file.empty()) {
    boost::json::object ready{{"url", base_url}, {"redirect_uri", config.redirect_uri}};
    if (sandbox) {
      ready["sandbox_url"] = sandbox->BrowserBaseUrl();
      ready["sandbox_connect_to"] = sandbox->ConnectTo();
    }
    if (auto ok = WritePrivateFile(options.ready_file, boost::json::serialize(ready)); !ok) {
      spdlog::warn("{}", ok.error());
    }
  }

  service::AccountService& accounts = (*runtime)->Accounts();
  Shutdown shutdown;
  shutdown.grace = config.shutdown_grace;
  shutdown.drain = [&] {
    // No new connection, no new background round; what has started runs to its end (a refresh
    // to its commit: amoCRM's new pair must not be lost, docs/architecture.md).
    server.Drain();
    scheduler.Stop();
    codes.Stop();
    if (webhooks != nullptr) {
      webhooks->Stop();
    }
  };
  shutdown.pending = [&] {
    Pending p;
    p.requests = server.InFlight();
    p.refreshes = accounts.RefreshesInFlight();
    p.rounds = (scheduler.Busy() ? 1 : 0) + (codes.Busy() ? 1 : 0) +
               (webhooks != nullptr && webhooks->Busy() ? 1 : 0);
    return p;
  };
  shutdown.stop = [&] {
    scheduler.Stop();
    codes.Stop();
    if (webhooks != nullptr) {
      webhooks->Stop();
    }
    server.Stop();
    if (sandbox) {
      sandbox->Stop();  // last: a draining refresh may be talking to it
    }
  };
  RunUntilSignal(ioc, others, shutdown);
  return 0;
}

namespace {

// The simulator's own limits (libs/sandbox, docs/sandbox.md §4); Sandbox::Start checks them too,
// but only names the /sandbox/config field in its log.
constexpr std::int64_t kOneDay = 24 * 60 * 60;
constexpr std::int64_t kTenYears = 10 * 365 * kOneDay;

/// "" when `value` is in [min, max]; otherwise the sentence for the operator.
std::string CheckFlag(std::string_view flag,
                      std::int64_t value,
                      std::int64_t min,
                      std::int64_t max,
                      std::string_view unit) {
  if (value >= min && value <= max) {
    return {};
  }
  return fmt::format("{} must be a whole number{} from {} to {} (got {}).",
                     flag,
                     unit.empty() ? std::string() : fmt::format(" of {}", unit),
                     min,
                     max,
                     value);
}

}  // namespace

Checked<sandbox::Options> ToSandboxOptions(const SandboxOptions& options) {
  sandbox::Options o;
  if (!SplitHostPort(options.http_listen, o.host, o.http_port)) {
    return fmt::format("--http-listen must be HOST:PORT, e.g. 127.0.0.1:8090 (got \"{}\").",
                       options.http_listen);
  }
  std::string tls_host;
  if (!SplitHostPort(options.tls_listen, tls_host, o.tls_port) || tls_host != o.host) {
    return fmt::format(
        "--tls-listen must be HOST:PORT on the same host as --http-listen (got \"{}\").",
        options.tls_listen);
  }
  o.state_dir = options.state_dir;

  const std::array errors = {
      CheckFlag("--code-ttl", options.code_ttl_seconds, 1, kTenYears, "seconds"),
      CheckFlag("--access-token-ttl", options.access_token_ttl_seconds, 1, kTenYears, "seconds"),
      CheckFlag("--refresh-token-ttl", options.refresh_token_ttl_seconds, 1, kTenYears, "seconds"),
      CheckFlag("--api-rate-limit", options.api_rate_limit_rps, 0, 10000, ""),
      CheckFlag("--api-block-after", options.api_block_after_violations, 0, 1000000, ""),
      CheckFlag(
          "--api-violation-window", options.api_violation_window_seconds, 1, kOneDay, "seconds"),
      CheckFlag("--api-block-seconds", options.api_block_seconds, 1, kTenYears, "seconds"),
      CheckFlag("--api-retry-after", options.api_retry_after_seconds, 0, kOneDay, "seconds"),
      CheckFlag("--token-delay-ms", options.token_delay_ms, 0, 60000, "milliseconds"),
      CheckFlag(
          "--exchange-hook-delay-ms", options.exchange_hook_delay_ms, 0, 600000, "milliseconds"),
      CheckFlag("--secrets-delay-ms", options.secrets_delay_ms, 0, 600000, "milliseconds"),
  };
  for (const std::string& error : errors) {
    if (!error.empty()) {
      return error;
    }
  }
  if (options.rotation == "strict") {
    o.rotation = sandbox::Rotation::kStrict;
  } else if (options.rotation == "grace_until_new_used") {
    o.rotation = sandbox::Rotation::kGraceUntilNewUsed;
  } else {
    return fmt::format("--rotation must be \"strict\" or \"grace_until_new_used\" (got \"{}\").",
                       options.rotation);
  }
  if (options.secrets_delivery == "before_redirect") {
    o.secrets_delivery = sandbox::SecretsDelivery::kBeforeRedirect;
  } else if (options.secrets_delivery == "after_redirect") {
    o.secrets_delivery = sandbox::SecretsDelivery::kAfterRedirect;
  } else {
    return fmt::format(
        "--secrets-delivery must be \"before_redirect\" or \"after_redirect\" (got \"{}\").",
        options.secrets_delivery);
  }
  o.code_ttl = std::chrono::seconds(options.code_ttl_seconds);
  o.access_token_ttl = std::chrono::seconds(options.access_token_ttl_seconds);
  o.refresh_token_ttl = std::chrono::seconds(options.refresh_token_ttl_seconds);
  o.revoke_access_token_on_refresh = !options.keep_access_on_refresh;
  o.api_rate_limit_rps = static_cast<std::uint32_t>(options.api_rate_limit_rps);
  o.api_block_after_violations = static_cast<std::uint32_t>(options.api_block_after_violations);
  o.api_violation_window = std::chrono::seconds(options.api_violation_window_seconds);
  o.api_block_duration = std::chrono::seconds(options.api_block_seconds);
  o.api_retry_after = std::chrono::seconds(options.api_retry_after_seconds);
  o.token_delay = std::chrono::milliseconds(options.token_delay_ms);
  o.exchange_hook_delay = std::chrono::milliseconds(options.exchange_hook_delay_ms);
  o.secrets_delay = std::chrono::milliseconds(options.secrets_delay_ms);
  return o;
}

int RunSandbox(const SandboxOptions& options) {
  SetUpLogging("info");
  auto checked = ToSandboxOptions(options);
  if (!checked) {
    fmt::print(stderr, "amoauth sandbox: {}\n", checked.error());
    return 2;
  }
  sandbox::Options o = std::move(*checked);
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);

  boost::asio::io_context ioc(1);
  auto started = sandbox::Sandbox::Start(ioc.get_executor(), o);
  if (!started) {
    fmt::print(stderr, "amoauth sandbox: cannot start: {}\n", started.error().message());
    return 1;
  }
  auto& sb = **started;
  boost::json::object ready{
      {"url", sb.BrowserBaseUrl()}, {"connect_to", sb.ConnectTo()}, {"ca_file", sb.CaFile()}};
  if (!options.redirect_uri.empty()) {
    auto integration = sb.AddIntegration({.client_id = options.client_id,
                                          .client_secret = options.client_secret,
                                          .redirect_uri = options.redirect_uri,
                                          .disconnect_hook_url = options.disconnect_hook_url});
    fmt::print("integration: client_id={} client_secret={} redirect_uri={}\n",
               integration.client_id,
               integration.client_secret,
               integration.redirect_uri);
    ready["client_id"] = integration.client_id;
  }
  fmt::print(
      "sandbox: consent page {}/oauth · control API {}/sandbox/ · amoCRM hosts at {} "
      "(CA {})\n",
      sb.BrowserBaseUrl(),
      sb.BrowserBaseUrl(),
      sb.ConnectTo(),
      sb.CaFile());
  std::fflush(stdout);
  if (!options.ready_file.empty()) {
    if (auto ok = WritePrivateFile(options.ready_file, boost::json::serialize(ready)); !ok) {
      spdlog::warn("{}", ok.error());
    }
  }
  Shutdown shutdown;
  shutdown.stop = [&] { sb.Stop(); };
  RunUntilSignal(ioc, {}, shutdown);
  return 0;
}

}  // namespace amoauth::app
