#pragma once

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/net/http_message.hpp"
#include "amoauth/sandbox/sandbox.hpp"

/// Tests that run the real `amoauth serve` binary, several processes on one SQLite file, against
/// the sandbox running inside the test process (issue 3: cross-process refresh, proxy, webhooks).
namespace amoauth::testing {

/// The amoCRM account the sandbox creates by default (subdomain "example").
inline constexpr std::int64_t kSandboxAccountId = 30000001;

/// What an HTTP call returned. `status` 0: the request never got an answer (`error` says why).
struct CallResult {
  int status = 0;
  std::string body;
  net::HttpHeaders headers;
  std::string error;
};

/// One request of a concurrent batch: `method target` on process `process`, with the API key.
struct ProcessCall {
  std::size_t process = 0;
  std::string method = "GET";
  std::string target;
  std::string body;
};

using Environment = std::vector<std::pair<std::string, std::string>>;

class LatencyRelay;

/// An io_context run by its own threads until destruction (stops it, then joins).
class IoThreads final {
 public:
  explicit IoThreads(int threads);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  [[nodiscard]] boost::asio::io_context& Context() { return ioc_; }
  /// Stops the context and joins its threads. Idempotent.
  void Stop();

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

/// A blocking HTTP client for tests, over amoauth::http_client on its own io_context thread.
/// Thread-safe. Transport failures are CallResult{status 0, error}, never exceptions.
class BlockingHttp final {
 public:
  BlockingHttp();
  /// With the given client options (a CA file and connect-to for the sandbox's TLS side).
  explicit BlockingHttp(http_client::ClientOptions options);
  ~BlockingHttp();
  BlockingHttp(const BlockingHttp&) = delete;
  BlockingHttp& operator=(const BlockingHttp&) = delete;

  CallResult Send(http_client::ClientRequest request);
  /// Sends all at once (every request in flight before the first answer is awaited) and returns
  /// the results in order. Bounded by the client timeout of each request.
  std::vector<CallResult> SendAll(std::vector<http_client::ClientRequest> requests);

 private:
  IoThreads io_;
  std::unique_ptr<http_client::HttpClient> client_;
};

/// Several `amoauth serve` processes (the build's amoauth; AMOAUTH_PROCESS_TESTS_BINARY overrides
/// it) on one SQLite file in a temp dir, and the sandbox (amoCRM) in this process, all on
/// 127.0.0.1 ports picked by the OS. Every process gets the same configuration, built explicitly
/// (nothing inherited but sanitizer options): the sandbox's integration, one API key, one master
/// key, AMOAUTH_LISTEN=127.0.0.1:0, AMOAUTH_SHUTDOWN_GRACE_MS=5000 (below Stop()'s 10 s), and
/// `serve --ready-file`, which the harness waits for.
///
/// Every process has the same fixed Redirect URI (kRedirectUri), which the sandbox's integration
/// carries too: it only has to match byte for byte, since Connect() takes the code and state
/// from the sandbox's answer and delivers them to the callback of the process it chooses.
///
/// Failures of the harness itself (a process that does not start, an unexpected status on the
/// connect path) throw std::runtime_error with the process's stderr tail; gtest reports them.
/// The destructor kills every child that is still running, and, if the test failed, prints the
/// tails of every process's stdout and stderr. Children also die with the thread that started
/// them (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves none behind: create and drive
/// the harness from the test's own thread. Not thread-safe except for the HTTP calls.
class ProcessHarness final {
 public:
  static constexpr const char* kRedirectUri =
      "https://amoauth-processes.test/api/v1/integrations/amo-crm/callback";
  static constexpr const char* kCallbackPath = "/api/v1/integrations/amo-crm/callback";

  struct Options {
    std::size_t processes = 2;
    /// Extra variables for every process (AMOAUTH_WEBHOOK_URL…); a later entry of the same name
    /// wins over the harness's own.
    Environment extra_env;
    std::string log_level = "info";
    /// How long a process may take from spawn to its ready file.
    std::chrono::milliseconds start_timeout{15000};
    /// Non-zero: the processes reach amoCRM (the sandbox's TLS port) through a TCP relay that
    /// holds every new connection this long before passing it on, so that refreshes started
    /// concurrently by different processes surely overlap (a race that timing alone may hide).
    std::chrono::milliseconds amo_latency{0};
    /// Spawn every process at once on the new database. Off: the first one is ready (schema
    /// migrated, WAL on) before the others start, because at HEAD (0a04b9a) a process that
    /// opens a brand-new file while another is switching it to WAL may exit with "database is
    /// locked" (busy_timeout does not cover that step).
    bool start_together = false;
    /// The sandbox's start options (accounts, token lifetimes, rotation…); the harness sets
    /// state_dir. Default: two accounts, amoCRM's defaults.
    sandbox::Options sandbox;
    /// Non-empty: every process uses this database instead of the SQLite file in Dir() (a
    /// PostgreSQL database, or another SQLite path). ExpireAccessTokens needs the SQLite file.
    std::string database_url;
    /// Off: a failed test does not print the processes' output tails (a test that searches that
    /// output for secrets must not print what it found; the files stay in Dir() until the end).
    bool print_output_on_failure = true;
  };

  explicit ProcessHarness(Options options);
  ProcessHarness() : ProcessHarness(Options{}) {}
  ~ProcessHarness();
  ProcessHarness(const ProcessHarness&) = delete;
  ProcessHarness& operator=(const ProcessHarness&) = delete;

  // --- processes -------------------------------------------------------------------------------

  [[nodiscard]] std::size_t Size() const { return processes_.size(); }
  [[nodiscard]] bool Running(std::size_t i) const;
  /// "http://127.0.0.1:{port}" of the current incarnation of process i.
  [[nodiscard]] std::string BaseUrl(std::size_t i) const;
  /// Sends `signal` and waits (bounded) until the process is gone; returns its wait status.
  /// SIGKILL is the crash: nothing runs in the process after it.
  int Kill(std::size_t i, int signal = SIGKILL);
  /// SIGTERM, then waits up to `grace` for a clean exit (SIGKILL after that, and the test
  /// fails). Returns the exit code (128 + signal if killed by one).
  int Stop(std::size_t i, std::chrono::milliseconds grace = std::chrono::seconds(10));
  /// Sends `signal` to process i and returns at once (Kill and Stop wait for the exit).
  void Signal(std::size_t i, int signal);
  /// Waits at most `timeout` for process i to exit. Its exit code (128 + signal if killed by
  /// one), or nullopt while it still runs.
  std::optional<int> WaitExit(std::size_t i, std::chrono::milliseconds timeout);
  /// Stops process i if running and starts it again with the same environment and database.
  void Restart(std::size_t i);
  /// Sets (or replaces) a variable of process i for its next start.
  void SetEnv(std::size_t i, const std::string& name, const std::string& value);
  /// The complete environment process i gets at its next start (to run other commands, such as
  /// `amoauth export`, against the same configuration).
  [[nodiscard]] const Environment& Env(std::size_t i) const;
  /// Last `lines` lines of process i's stderr (all incarnations, appended).
  [[nodiscard]] std::string StderrTail(std::size_t i, std::size_t lines = 40) const;

  // --- HTTP ------------------------------------------------------------------------------------

  /// `method target` on process i, with the API key when `with_api_key`.
  CallResult Call(std::size_t i,
                  std::string method,
                  const std::string& target,
                  std::string body = {},
                  bool with_api_key = true);
  /// All calls in flight at once (split across processes as each names), results in order.
  std::vector<CallResult> CallConcurrently(const std::vector<ProcessCall>& calls);
  /// `count` GETs of `target`, round-robin over all running processes (first to process 0).
  std::vector<CallResult> GetConcurrently(const std::string& target, std::size_t count);
  /// GET of an absolute URL, no key.
  CallResult Get(const std::string& url);
  /// POST to the sandbox's plain listener (consent decision, control API).
  CallResult SandboxPost(const std::string& path,
                         const std::string& content_type,
                         std::string body);
  /// GET /sandbox/journal → "counters" (token_requests, refreshes, refresh_token_reuses…).
  boost::json::object SandboxCounters();
  /// One counter of SandboxCounters().
  std::int64_t SandboxCounter(const std::string& name);

  // --- OAuth -----------------------------------------------------------------------------------

  /// The whole connect on process i: POST /v1/connect → state; the sandbox's Allow for
  /// `account_id` → code, referer, state; GET of process i's callback with them (must be 200).
  /// Returns the account id.
  std::int64_t Connect(std::size_t i, std::int64_t account_id = kSandboxAccountId);
  /// The first half of Connect: a state from process i, the sandbox's Allow for `account_id`;
  /// returns the query amoCRM sends to the Redirect URI (code, referer, state, platform), not yet
  /// delivered. Codes for the widget-install hook are taken from it, too.
  std::string ConsentRedirectQuery(std::size_t i, std::int64_t account_id = kSandboxAccountId);
  /// A code the sandbox issued for the account, as amoCRM's widget-install hook carries it to the
  /// Redirect URI: `code`, `referer`, `from_widget=1`, no state (taken from a consent redirect:
  /// the harness's Redirect URI is not reachable for the sandbox's own install-widget hook).
  std::string WidgetHookQuery(std::size_t i, std::int64_t account_id = kSandboxAccountId);
  /// GET /v1/accounts/{id}/token on process i; throws unless 200. Returns the access token.
  std::string AccessToken(std::size_t i, std::int64_t account_id = kSandboxAccountId);
  /// Makes amoauth believe every stored access token expired in 2000 (UPDATE amo_tokens through
  /// the sqlite3 C API on the shared file); the sandbox still honours them. Returns rows changed.
  int ExpireAccessTokens();
  /// Who holds refresh leases in the shared SQLite file now (refresh_leases.holder, any order).
  std::vector<std::string> LeaseHolders();

  [[nodiscard]] const std::filesystem::path& Dir() const { return dir_; }
  [[nodiscard]] std::string DatabasePath() const { return (dir_ / "amoauth.db").string(); }
  [[nodiscard]] const std::string& ApiKey() const { return api_key_; }
  [[nodiscard]] const sandbox::Integration& SandboxIntegration() const { return integration_; }
  [[nodiscard]] std::string SandboxUrl() const { return sandbox_->BrowserBaseUrl(); }
  /// What a client needs to reach the sandbox's amoCRM hosts over TLS directly.
  [[nodiscard]] http_client::ClientOptions SandboxTlsOptions() const;
  /// AMOAUTH_DATABASE_URL of every process.
  [[nodiscard]] std::string DatabaseUrl() const;

 private:
  struct Process;

  void Init();
  void Shutdown() noexcept;
  void Spawn(std::size_t i);
  void WaitReady(std::size_t i);
  Process& At(std::size_t i) const;

  Options options_;
  std::filesystem::path dir_;
  std::string api_key_;
  std::string master_key_;
  sandbox::Integration integration_;
  std::unique_ptr<IoThreads> sandbox_io_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::unique_ptr<LatencyRelay> relay_;
  std::unique_ptr<BlockingHttp> http_;
  std::vector<std::unique_ptr<Process>> processes_;
  bool shut_down_ = false;
};

/// One POST the WebhookReceiver got, and what it answered.
struct WebhookDelivery {
  std::string target;
  net::HttpHeaders headers;
  std::string body;
  int answered = 0;
};

/// An HTTP server on 127.0.0.1:0 (its own io_context thread) that records every POST and
/// answers with a status the test switches (200 at first). Thread-safe.
class WebhookReceiver final {
 public:
  using Predicate = std::function<bool(const std::vector<WebhookDelivery>&)>;

  WebhookReceiver();
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  /// "http://127.0.0.1:{port}/hooks/amoauth".
  [[nodiscard]] std::string Url() const { return url_; }
  /// The status later POSTs get.
  void AnswerWith(int status);
  [[nodiscard]] std::vector<WebhookDelivery> Deliveries() const;
  /// Waits until `predicate(deliveries)` holds, at most `timeout`; on timeout the failure lists
  /// what did arrive, after `what`.
  ::testing::AssertionResult WaitUntil(const Predicate& predicate,
                                       std::chrono::milliseconds timeout,
                                       const std::string& what) const;

 private:
  net::HttpResponse Record(const net::HttpRequest& request);

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<WebhookDelivery> deliveries_;
  int answer_ = 200;
  std::string url_;
  IoThreads io_;
  std::unique_ptr<http_server::HttpServer> server_;
};

}  // namespace amoauth::testing
