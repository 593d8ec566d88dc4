// The refresh scheduler at scale: fills a fresh store (SQLite, or PostgreSQL with --postgres)
// with N connections, then runs the real RefreshScheduler::RunOnce over the real AccountService
// and store, with amoCRM replaced by an in-process fake that answers every refresh at once, or
// after --amo-latency-ms (docs/benchmarks.md).
//
//   amoauth_scheduler_bench [--accounts N] [--dir DIR] [--repeats N] [--samples N]
//                           [--recovering-every K] [--breakdown] [--log-level LEVEL] [--keep]
//                           [--store-threads N] [--perf-control CTL_FIFO,ACK_FIFO]
//                           [--postgres SERVER_URL] [--amo-latency-ms N] [--fill-parallel N]
//
// With --postgres the run creates a database of its own on that server
// (scripts/postgres-scratch.sh prints such a URL) and drops it afterwards unless --keep.
//
// Prints one result per line, `name value unit`, for people and for scripts/bench.sh; the
// service's own log goes to stderr as `amoauth serve` writes it (level info by default, as in
// production). Exits 1 if a store call fails or a check after the run does not hold. Memory and
// CPU are the whole process's (/proc/self/status, getrusage), so run nothing else in it.
//
// To profile the scheduler's run alone (not the fill): start perf disabled with a control FIFO;
// the program enables it just before the RunOnce over every account and disables it after:
//   mkfifo ctl ack
//   perf record -D -1 --control fifo:ctl,ack -g -- amoauth_scheduler_bench --perf-control ctl,ack
#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/core/refresh_policy.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/crypto/base64.hpp"
#include "amoauth/net/run_blocking.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/api_limiter.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/ports.hpp"
#include "amoauth/service/refresh_scheduler.hpp"
#include "amoauth/store_pg/pg_store.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "bench_database.hpp"
#include "process_memory.hpp"

namespace {

namespace fs = std::filesystem;
namespace service = amoauth::service;
namespace core = amoauth::core;
using amoauth::Errc;
using amoauth::Result;
using amoauth::Secret;
using amoauth::store_sqlite::SqliteStore;
using core::Connection;
using core::TimePoint;
using service::Task;
using Steady = std::chrono::steady_clock;

struct Options {
  std::int64_t accounts = 100'000;
  std::string dir;                    ///< empty: a fresh directory under the system temp dir
  int repeats = 20;                   ///< idle RunOnce calls timed after the first
  std::int64_t samples = 1'000;       ///< rows read back after the run and checked one by one
  std::int64_t recovering_every = 0;  ///< every K-th row had a failed attempt (0: none)
  bool breakdown = false;             ///< time each store call (a decorator over the store)
  std::string log_level = "info";     ///< AMOAUTH_LOG_LEVEL's default
  bool keep = false;                  ///< leave the database behind
  std::size_t store_threads = 4;      ///< SqliteOptions::threads (the default, as `serve` opens it)
  std::string perf_ctl;               ///< perf's --control FIFOs, "ctl,ack"; empty: none
  std::string postgres;               ///< a PostgreSQL server's URL; empty: SQLite
  int amo_latency_ms = 0;             ///< how long the fake amoCRM takes to answer a refresh
  int fill_parallel = 1;              ///< Upserts in flight during the fill
};

constexpr std::int64_t kFirstAccountId = 40'000'000;
constexpr const char* kClientId = "2912780f-a1e4-4d5d-a069-ee01422d8bef";
// Sizes of real amoCRM tokens (as in store_bench.cpp): the access token is an RS256 JWT of about
// 900 characters, the refresh token a "def50200…" blob of about 700.
constexpr std::size_t kRefreshTokenChars = 700;
constexpr std::size_t kRs256SignatureBytes = 256;
constexpr auto kTokenLife = std::chrono::hours(24);  // amoCRM's access tokens
constexpr std::int64_t kSpreadSeconds = 3600;        // due times spread over an hour

Options ParseOptions(int argc, char** argv) {
  Options o;
  const CLI::Range kAtLeastOne(1, std::numeric_limits<int>::max());
  const CLI::Range kAtLeastZero(0, std::numeric_limits<int>::max());
  CLI::App app{"amoauth_scheduler_bench: the refresh scheduler at scale (docs/benchmarks.md)"};
  app.add_option("--accounts", o.accounts, "due accounts")->check(kAtLeastOne);
  app.add_option("--dir", o.dir, "where the database goes (default: a fresh temp dir)");
  app.add_option("--repeats", o.repeats, "idle RunOnce calls timed")->check(kAtLeastOne);
  app.add_option("--samples", o.samples, "rows checked after the run")->check(kAtLeastOne);
  app.add_option("--recovering-every", o.recovering_every, "every K-th row had a failed attempt")
      ->check(kAtLeastZero);
  app.add_flag("--breakdown", o.breakdown, "time each store call");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error");
  app.add_flag("--keep", o.keep, "leave the database behind");
  app.add_option("--store-threads", o.store_threads, "the store's threads")->check(kAtLeastOne);
  app.add_option("--postgres", o.postgres, "PostgreSQL server URL (default: SQLite in --dir)");
  app.add_option("--amo-latency-ms", o.amo_latency_ms, "amoCRM's answer time for a refresh")
      ->check(kAtLeastZero);
  app.add_option("--fill-parallel", o.fill_parallel, "Upserts in flight during the fill")
      ->check(kAtLeastOne);
  app.add_option("--perf-control", o.perf_ctl, "perf's --control FIFOs: CTL_FIFO,ACK_FIFO")
      ->check(
          [](const std::string& v) {
            return v.find(',') == std::string::npos ? std::string("expected CTL_FIFO,ACK_FIFO")
                                                    : std::string();
          },
          "CTL_FIFO,ACK_FIFO");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

// ---- Measuring ----------------------------------------------------------------------------------

using amoauth::bench::Memory;
using amoauth::bench::ReadMemory;

/// Starts VmHWM again from the current RSS (Linux: "5" > /proc/PID/clear_refs), so that the peak
/// read afterwards belongs to what ran in between. False if the kernel refused.
bool ResetPeakMemory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

/// CPU time of every thread of the process, and its context switches.
struct CpuUsage {
  double user_s = 0;
  double sys_s = 0;
  std::int64_t voluntary_switches = 0;
  std::int64_t involuntary_switches = 0;
};

CpuUsage ReadCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return {seconds(u.ru_utime), seconds(u.ru_stime), u.ru_nvcsw, u.ru_nivcsw};
}

/// perf's control FIFOs (`perf record|stat --control fifo:CTL,ACK`): "enable" and "disable",
/// each acknowledged, so that counting starts and stops exactly around the measured run.
class PerfControl {
 public:
  explicit PerfControl(const std::string& fifos) {
    if (fifos.empty()) {
      return;
    }
    const auto comma = fifos.find(',');
    // Read-write: the FIFOs always have a reader and a writer (us), so neither open nor read
    // sees an early end when perf reopens its side.
    ctl_ = ::open(fifos.substr(0, comma).c_str(), O_RDWR | O_CLOEXEC);
    ack_ = ::open(fifos.substr(comma + 1).c_str(), O_RDWR | O_CLOEXEC);
    if (ctl_ < 0 || ack_ < 0) {
      throw std::runtime_error("cannot open the perf control FIFOs " + fifos);
    }
  }
  PerfControl(const PerfControl&) = delete;
  PerfControl& operator=(const PerfControl&) = delete;
  ~PerfControl() {
    for (const int fd : {ctl_, ack_}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }

  void Command(std::string_view command) {
    if (ctl_ < 0) {
      return;
    }
    const std::string line = std::string(command) + "\n";
    std::array<char, 16> answer{};
    if (::write(ctl_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::read(ack_, answer.data(), answer.size() - 1) <= 0 ||
        std::string_view(answer.data()).substr(0, 3) != "ack") {
      throw std::runtime_error("perf did not acknowledge '" + std::string(command) + "'");
    }
  }

 private:
  int ctl_ = -1;
  int ack_ = -1;
};

double MicrosSince(Steady::time_point start) {
  return std::chrono::duration<double, std::micro>(Steady::now() - start).count();
}

void Print(std::string_view name, double value, std::string_view unit) {
  std::printf("%-40s %14.2f %s\n", std::string(name).c_str(), value, std::string(unit).c_str());
}

double MiB(std::int64_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

template <class T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    throw std::runtime_error(std::string(what) + ": " + r.error().message());
  }
  return std::move(*r);
}

void Check(bool ok, const std::string& what) {
  if (!ok) {
    throw std::runtime_error("check failed: " + what);
  }
}

// ---- The world around the scheduler -------------------------------------------------------------

/// The business clock, moved by the benchmark (never by itself). Thread-safe.
class BenchClock final : public core::Clock {
 public:
  [[nodiscard]] TimePoint Now() const override {
    return TimePoint(TimePoint::duration(ticks_.load(std::memory_order_relaxed)));
  }
  void Set(TimePoint t) { ticks_.store(t.time_since_epoch().count(), std::memory_order_relaxed); }

 private:
  std::atomic<TimePoint::rep> ticks_{0};
};

/// Each account lives on its own host, "a{account_id}.amocrm.ru", so the fake amoCRM knows from
/// the host alone whose refresh it is answering.
std::string HostOf(std::int64_t account_id) {
  return fmt::format("a{}.amocrm.ru", account_id);
}

std::optional<std::int64_t> AccountOfHost(std::string_view host) {
  if (!host.starts_with('a')) {
    return std::nullopt;
  }
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(host.data() + 1, host.data() + host.size(), id);
  if (ec != std::errc{} || std::string_view(end, host.data() + host.size() - end) != ".amocrm.ru") {
    return std::nullopt;
  }
  return id;
}

/// The refresh token amoCRM issued to `account_id` in its `generation`-th grant (0: the one the
/// fill stores), padded to amoCRM's size.
std::string RefreshTokenOf(std::int64_t account_id, int generation) {
  std::string token = fmt::format("def50200{}g{}", account_id, generation);
  token.resize(kRefreshTokenChars, '7');
  return token;
}

/// A JWT-shaped access token with amoCRM's claims (as tests/unit/service/fake_amo_client.hpp
/// builds it; the header, the other claims and a 256-byte RS256 signature make it real-sized).
/// Unsigned: amoauth never verifies it.
std::string AccessTokenOf(std::int64_t account_id,
                          int generation,
                          std::int64_t issued_at,
                          const std::string& signature) {
  const std::string jti = fmt::format("{:016x}{:08x}{:016x}", account_id, generation, issued_at);
  const boost::json::object header{{"typ", "JWT"}, {"alg", "RS256"}, {"jti", jti}};
  const boost::json::object payload{
      {"aud", kClientId},
      {"jti", jti},
      {"iat", issued_at},
      {"nbf", issued_at},
      {"exp", issued_at + std::chrono::seconds(kTokenLife).count()},
      {"sub", std::to_string(8'000'000 + account_id % 1'000'000)},
      {"grant_type", ""},
      {"account_id", account_id},
      {"base_domain", "amocrm.ru"},
      {"version", 2},
      {"scopes",
       boost::json::array{"crm", "files", "files_delete", "notifications", "push_notifications"}},
      {"hash_uuid", "6f3a1c2e-9b4d-4e7a-8c1f-2d5b6a7e8f90"},
      {"api_domain", "api-b.amocrm.ru"},
      {"user_flags", 0},
  };
  return amoauth::crypto::Base64UrlEncode(boost::json::serialize(header)) + "." +
         amoauth::crypto::Base64UrlEncode(boost::json::serialize(payload)) + "." + signature;
}

std::string FakeSignature() {
  std::string bytes(kRs256SignatureBytes, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((i * 37 + 11) & 0xffU);
  }
  return amoauth::crypto::Base64UrlEncode(bytes);
}

/// amoCRM answering every refresh at once with the next grant of the account the host names.
/// Anything else is a bug in the benchmark's wiring and is counted as unexpected.
class FakeAmo final : public service::AmoClient {
 public:
  FakeAmo(const core::Clock& clock, std::string signature, std::chrono::milliseconds latency)
      : clock_(clock), signature_(std::move(signature)), latency_(latency) {}

  Task<Result<core::TokenGrant>> ExchangeCode(std::string /*host*/,
                                              core::AuthorizationCodeGrant /*grant*/) override {
    ++unexpected;
    co_return amoauth::Fail(Errc::kAmoUnreachable);
  }

  Task<Result<core::TokenGrant>> Refresh(std::string host, core::RefreshTokenGrant grant) override {
    if (latency_.count() > 0) {
      // amoCRM's round trip: the refresh waits without holding a thread, as over HTTPS.
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
      timer.expires_after(latency_);
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
    const auto start = Steady::now();
    ++refreshes;
    const auto account = AccountOfHost(host);
    if (!account || grant.client_id != kClientId ||
        grant.refresh_token.Reveal() != RefreshTokenOf(*account, 0)) {
      ++wrong_requests;  // a refresh token sent to another account's host, or a stale one
      co_return amoauth::Fail(Errc::kAmoTokenRevoked);
    }
    core::TokenGrant g;
    g.token_type = "Bearer";
    g.expires_in = std::chrono::seconds(kTokenLife).count();
    g.access_token =
        Secret(AccessTokenOf(*account, 1, core::ToUnixSeconds(clock_.Now()), signature_));
    g.refresh_token = Secret(RefreshTokenOf(*account, 1));
    busy_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now() - start).count();
    co_return g;
  }

  Task<Result<amoauth::net::HttpResponse>> Forward(std::string /*host*/,
                                                   const amoauth::net::HttpRequest& /*request*/,
                                                   Secret /*access_token*/) override {
    ++unexpected;
    co_return amoauth::Fail(Errc::kAmoUnreachable);
  }

  Task<Result<core::AccountDomain>> LookupDomain(std::string /*api_domain*/,
                                                 Secret /*refresh_token*/) override {
    ++unexpected;
    co_return amoauth::Fail(Errc::kAmoUnreachable);
  }

  Task<Result<void>> ExchangeApiKey(std::string /*host*/,
                                    core::ApiKeyExchangeRequest /*request*/) override {
    ++unexpected;
    co_return amoauth::Fail(Errc::kAmoUnreachable);
  }

  std::atomic<std::int64_t> refreshes{0};
  std::atomic<std::int64_t> wrong_requests{0};
  std::atomic<std::int64_t> unexpected{0};
  std::atomic<std::int64_t> busy_ns{0};  ///< time spent building answers (not amoauth's cost)

 private:
  const core::Clock& clock_;
  std::string signature_;
  std::chrono::milliseconds latency_;
};

/// Calls and time of one kind of store call, as the calling coroutine sees it: the hand-off to
/// the store's pool, the SQLite work and the hand-off back.
struct CallStats {
  std::atomic<std::int64_t> calls{0};
  std::atomic<std::int64_t> ns{0};
  void Add(Steady::time_point start) {
    ++calls;
    ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now() - start).count();
  }
};

/// --breakdown: forwards every call to the store and times the ones the scheduler makes.
class TimedStore final : public service::ConnectionStore,
                         public service::RefreshLeases,
                         public service::EventOutbox {
 public:
  explicit TimedStore(service::Store& inner) : inner_(inner) {}

  Task<Result<Connection>> Upsert(Connection connection,
                                  std::vector<service::Event> events) override {
    co_return co_await inner_.Upsert(std::move(connection), std::move(events));
  }
  Task<Result<Connection>> Replace(Connection connection,
                                   std::int64_t expected_version,
                                   std::vector<service::Event> events) override {
    const auto start = Steady::now();
    auto r = co_await inner_.Replace(std::move(connection), expected_version, std::move(events));
    replace.Add(start);
    co_return r;
  }
  Task<Result<std::vector<Connection>>> ListDue(TimePoint now, std::size_t limit) override {
    co_return co_await inner_.ListDue(now, limit);
  }
  Task<Result<std::optional<Connection>>> Find(core::AccountKey key) override {
    const auto start = Steady::now();
    auto r = co_await inner_.Find(std::move(key));
    find.Add(start);
    co_return r;
  }
  Task<Result<std::vector<Connection>>> FindByAccount(std::int64_t account_id) override {
    co_return co_await inner_.FindByAccount(account_id);
  }
  Task<Result<std::vector<Connection>>> List() override { co_return co_await inner_.List(); }
  Task<Result<std::vector<Connection>>> FindByDomain(std::string base_domain) override {
    co_return co_await inner_.FindByDomain(std::move(base_domain));
  }

  Task<Result<bool>> TryAcquire(core::AccountKey key,
                                std::string holder,
                                TimePoint now,
                                TimePoint until) override {
    const auto start = Steady::now();
    auto r = co_await inner_.TryAcquire(std::move(key), std::move(holder), now, until);
    acquire.Add(start);
    co_return r;
  }
  Task<Result<void>> Release(core::AccountKey key, std::string holder) override {
    const auto start = Steady::now();
    auto r = co_await inner_.Release(std::move(key), std::move(holder));
    release.Add(start);
    co_return r;
  }
  Task<Result<std::optional<std::string>>> Holder(core::AccountKey key) override {
    co_return co_await inner_.Holder(std::move(key));
  }
  Task<Result<bool>> TakeOver(core::AccountKey key,
                              std::string gone,
                              std::string holder,
                              TimePoint until) override {
    co_return co_await inner_.TakeOver(std::move(key), std::move(gone), std::move(holder), until);
  }
  Task<Result<std::vector<Connection>>> ClaimDueRefreshes(TimePoint now,
                                                          std::string holder,
                                                          TimePoint until,
                                                          std::size_t limit) override {
    const auto start = Steady::now();
    auto r = co_await inner_.ClaimDueRefreshes(now, std::move(holder), until, limit);
    claim_due.Add(start);
    co_return r;
  }

  Task<Result<void>> Enqueue(std::vector<service::Event> events, TimePoint now) override {
    co_return co_await static_cast<service::EventOutbox&>(inner_).Enqueue(std::move(events), now);
  }
  Task<Result<std::vector<service::OutboxEntry>>> ClaimDue(TimePoint now,
                                                           TimePoint claim_until,
                                                           std::size_t limit) override {
    co_return co_await inner_.ClaimDue(now, claim_until, limit);
  }
  Task<Result<void>> MarkDelivered(std::int64_t id, TimePoint now) override {
    co_return co_await inner_.MarkDelivered(id, now);
  }
  Task<Result<void>> MarkFailed(std::int64_t id,
                                std::string error,
                                TimePoint next_attempt_at) override {
    co_return co_await inner_.MarkFailed(id, std::move(error), next_attempt_at);
  }
  Task<Result<std::size_t>> CountPending() override { co_return co_await inner_.CountPending(); }

  CallStats acquire;
  CallStats find;
  CallStats replace;
  CallStats release;
  CallStats claim_due;

 private:
  service::Store& inner_;
};

// ---- The benchmark ------------------------------------------------------------------------------

const core::RefreshPolicy kPolicy{};  // production's defaults: ahead 1 h, keepalive 7 days

/// Row `index` as a connect `fill_time - spread` ago left it: its next refresh (an hour before
/// expiry) falls between 22 and 23 hours after the fill.
Connection MakeConnection(std::int64_t index,
                          const Options& o,
                          TimePoint fill_time,
                          const std::string& signature) {
  using std::chrono::seconds;
  Connection c;
  c.account_id = kFirstAccountId + index;
  c.client_id = kClientId;
  c.base_domain = HostOf(c.account_id);
  c.api_domain = "api-b.amocrm.ru";
  c.user_id = std::to_string(8'000'000 + c.account_id % 1'000'000);
  c.status = core::ConnectionStatus::kActive;
  c.last_refresh_at = fill_time - seconds((index * 7919) % kSpreadSeconds);
  c.expires_at = c.last_refresh_at + kTokenLife;
  c.access_token =
      Secret(AccessTokenOf(c.account_id, 0, core::ToUnixSeconds(c.last_refresh_at), signature));
  c.refresh_token = Secret(RefreshTokenOf(c.account_id, 0));
  c.next_refresh_at = core::NextRefreshAt(c, kPolicy);
  if (o.recovering_every > 0 && index % o.recovering_every == 0) {
    // Its last attempt failed (amoCRM had a bad minute): the next success reports the recovery.
    c.refresh_failures = 1;
    c.last_error = "amoCRM answered 502";
    c.last_error_at = c.last_refresh_at + std::chrono::hours(20);
  }
  return c;
}

struct Timing {
  double first_us = 0;
  double median_us = 0;
  double max_us = 0;
};

Timing Summarize(std::vector<double> runs) {
  Timing t;
  if (runs.empty()) {
    return t;
  }
  t.first_us = runs.front();
  std::vector<double> rest(runs.begin() + 1, runs.end());
  if (!rest.empty()) {
    std::sort(rest.begin(), rest.end());
    t.median_us = rest[rest.size() / 2];
    t.max_us = rest.back();
  }
  return t;
}

/// Idle looks: RunOnce with nothing due, `repeats + 1` times; each must attempt nothing.
Task<Timing> TimeIdleRuns(service::RefreshScheduler& scheduler, int repeats) {
  std::vector<double> runs;
  for (int i = 0; i <= repeats; ++i) {
    const auto start = Steady::now();
    const std::size_t attempted = Must(co_await scheduler.RunOnce(), "RunOnce (idle)");
    runs.push_back(MicrosSince(start));
    Check(attempted == 0, fmt::format("an idle RunOnce attempted {} refreshes", attempted));
  }
  co_return Summarize(std::move(runs));
}

void PrintTiming(const std::string& name, const Timing& t) {
  Print(name + "_first", t.first_us, "us");
  Print(name + "_median", t.median_us, "us");
  Print(name + "_max", t.max_us, "us");
}

void PrintCalls(const std::string& name, const CallStats& s, double run_us, double accounts) {
  const double calls = static_cast<double>(s.calls.load());
  const double us = static_cast<double>(s.ns.load()) / 1e3;
  Print("store_" + name + "_calls_per_account", calls / accounts, "calls");
  Print("store_" + name + "_mean", calls > 0 ? us / calls : 0, "us");
  Print("store_" + name + "_share", 100.0 * us / run_us, "%");
}

/// The components of a refresh measured alone: what one pool round trip and one seal or open of
/// a token cost on this machine, to set beside the per-account figure.
Task<void> MeasureComponents(const std::string& access_token) {
  constexpr int kRoundTrips = 20'000;
  constexpr int kCryptoOps = 20'000;
  {
    boost::asio::thread_pool pool(4);  // the store's default: 4 threads
    const auto nothing = [] { return 0; };
    const auto start = Steady::now();
    for (int i = 0; i < kRoundTrips; ++i) {
      auto fn = nothing;
      co_await amoauth::net::RunBlocking(pool, std::move(fn));
    }
    Print("component_pool_round_trip", MicrosSince(start) / kRoundTrips, "us");
    pool.join();
  }
  const auto key = amoauth::crypto::MasterKey::Generate();
  const std::string aad = "amo_tokens/40000000/2912780f-a1e4-4d5d-a069-ee01422d8bef/access";
  std::string sealed;
  auto start = Steady::now();
  for (int i = 0; i < kCryptoOps; ++i) {
    sealed = amoauth::crypto::Seal(key, access_token, aad);
  }
  Print("component_seal_access_token", MicrosSince(start) / kCryptoOps, "us");
  start = Steady::now();
  for (int i = 0; i < kCryptoOps; ++i) {
    Check(amoauth::crypto::Open(key, sealed, aad).has_value(), "Open of a sealed token");
  }
  Print("component_open_access_token", MicrosSince(start) / kCryptoOps, "us");
}

/// Upserts rows first, first + step, … below `o.accounts`; adds the events the scheduler will
/// write for them to `expected_events`; counts itself in `done` at the end.
Task<void> FillPart(service::Store& store,
                    std::int64_t first,
                    std::int64_t step,
                    const Options& o,
                    TimePoint fill_time,
                    const std::string& signature,
                    std::atomic<std::int64_t>& expected_events,
                    std::atomic<int>& done) {
  for (std::int64_t i = first; i < o.accounts; i += step) {
    // Arguments are named locals, not temporaries in the co_await expression (GCC 12).
    Connection connection = MakeConnection(i, o, fill_time, signature);
    expected_events += connection.refresh_failures > 0 ? 1 : 0;
    std::vector<service::Event> no_events;
    Must(co_await store.Upsert(std::move(connection), std::move(no_events)), "Upsert");
  }
  ++done;
}

Task<void> Run(service::Store& store, BenchClock& clock, const Options& o, PerfControl& perf) {
  const auto executor = co_await boost::asio::this_coro::executor;
  const std::string signature = FakeSignature();
  const double accounts = static_cast<double>(o.accounts);
  std::optional<TimedStore> timed;
  if (o.breakdown) {
    timed.emplace(store);
  }
  service::ConnectionStore& connections =
      timed ? static_cast<service::ConnectionStore&>(*timed) : store;
  service::RefreshLeases& leases = timed ? static_cast<service::RefreshLeases&>(*timed) : store;
  service::EventOutbox& outbox = timed ? static_cast<service::EventOutbox&>(*timed) : store;

  // Wired as apps/amoauth/runtime.cpp wires them, webhooks on (events go to the outbox).
  FakeAmo amo(clock, signature, std::chrono::milliseconds(o.amo_latency_ms));
  core::SystemRandom random;
  service::ApiLimiter limiter(service::LimiterSettings{}, executor);
  const service::EventFactory events(true, clock, random);
  service::IntegrationDirectory integrations(
      service::Integration{.client_id = kClientId,
                           .client_secret = Secret("bench-client-secret"),
                           .redirect_uri = "https://amoauth.example/v1/callback"},
      store);
  service::AccountService account_service(
      integrations,
      service::FlowSettings{.refresh = kPolicy,
                            // serve's: 3 × AMOAUTH_AMO_TIMEOUT_MS (15 s) + 5 s
                            .lease_ttl = std::chrono::seconds(50),
                            .instance_id = fmt::format("bench:{}:0", ::getpid())},
      core::RefererPolicy({"amocrm.ru", "kommo.com"}),
      service::AccountPorts{.connections = connections,
                            .leases = leases,
                            .outbox = outbox,
                            .amo = amo,
                            .limiter = limiter,
                            .events = events,
                            .clock = clock,
                            .random = random});
  service::RefreshScheduler scheduler(account_service, leases, clock, {});

  // First, on a quiet process (and before any profiler is enabled): the parts alone.
  co_await MeasureComponents(AccessTokenOf(kFirstAccountId, 1, 1'800'000'000, signature));

  // Fill: one Upsert (one transaction) at a time, as connects write, or --fill-parallel of them
  // in flight; no events, so that the outbox holds only what the scheduler writes.
  const TimePoint fill_time = std::chrono::floor<std::chrono::seconds>(clock.Now());
  const Memory before = ReadMemory();
  const auto fill_start = Steady::now();
  std::atomic<std::int64_t> fill_events{0};
  if (o.fill_parallel == 1) {
    std::atomic<int> done{0};
    co_await FillPart(store, 0, 1, o, fill_time, signature, fill_events, done);
  } else {
    std::atomic<int> done{0};
    std::atomic<int> failed{0};
    for (int part = 0; part < o.fill_parallel; ++part) {
      auto fill =
          FillPart(store, part, o.fill_parallel, o, fill_time, signature, fill_events, done);
      boost::asio::co_spawn(executor, std::move(fill), [&failed, &done](std::exception_ptr e) {
        if (e) {
          ++failed;
          ++done;
        }
      });
    }
    boost::asio::steady_timer poll(executor);
    while (done.load() < o.fill_parallel) {
      poll.expires_after(std::chrono::milliseconds(5));
      co_await poll.async_wait(boost::asio::use_awaitable);
    }
    Check(failed.load() == 0, "the fill failed (see the log)");
  }
  const std::int64_t expected_events = fill_events.load();
  const double fill_us = MicrosSince(fill_start);
  const Memory after_fill = ReadMemory();
  Print("accounts", accounts, "rows");
  Print("access_token_chars",
        static_cast<double>(AccessTokenOf(kFirstAccountId, 1, 1'800'000'000, signature).size()),
        "chars");
  Print("fill_total", fill_us / 1e6, "s");
  Print("fill_rate", accounts / (fill_us / 1e6), "rows/s");

  // The look with nothing due: the earliest row is due 22 hours after the fill.
  PrintTiming("idle_run_once", co_await TimeIdleRuns(scheduler, o.repeats));
  const Memory after_idle = ReadMemory();

  // 23 hours on: every row is due (up to an hour late). One RunOnce refreshes them all.
  clock.Set(fill_time + std::chrono::hours(23));
  const TimePoint due_time = clock.Now();
  const std::size_t pending_before = Must(co_await store.CountPending(), "CountPending");
  const bool peak_reset = ResetPeakMemory();
  const Memory run_before = ReadMemory();
  perf.Command("enable");
  const CpuUsage cpu_before = ReadCpu();
  const auto run_start = Steady::now();
  const std::size_t attempted = Must(co_await scheduler.RunOnce(), "RunOnce");
  const double run_us = MicrosSince(run_start);
  const CpuUsage cpu_after = ReadCpu();
  perf.Command("disable");
  const Memory run_after = ReadMemory();
  const std::size_t pending_after = Must(co_await store.CountPending(), "CountPending");

  Print("run_attempted", static_cast<double>(attempted), "refreshes");
  Print("run_total", run_us / 1e6, "s");
  Print("run_per_account", run_us / accounts, "us");
  Print("run_rate", accounts / (run_us / 1e6), "refreshes/s");
  Print("run_cpu_user", cpu_after.user_s - cpu_before.user_s, "s");
  Print("run_cpu_sys", cpu_after.sys_s - cpu_before.sys_s, "s");
  Print(
      "run_cpu_per_account",
      (cpu_after.user_s - cpu_before.user_s + cpu_after.sys_s - cpu_before.sys_s) * 1e6 / accounts,
      "us");
  Print(
      "run_switches_per_account",
      static_cast<double>(cpu_after.voluntary_switches - cpu_before.voluntary_switches) / accounts,
      "voluntary");
  Print("fake_amo_per_account", static_cast<double>(amo.busy_ns.load()) / 1e3 / accounts, "us");
  Print("outbox_rows_created", static_cast<double>(pending_after - pending_before), "rows");
  Print("outbox_rows_expected", static_cast<double>(expected_events), "rows");
  if (timed) {
    PrintCalls("claim_due_refreshes", timed->claim_due, run_us, accounts);
    PrintCalls("acquire_lease", timed->acquire, run_us, accounts);
    PrintCalls("find", timed->find, run_us, accounts);
    PrintCalls("replace", timed->replace, run_us, accounts);
    PrintCalls("release_lease", timed->release, run_us, accounts);
  }

  // Afterwards: nothing is due, and an idle look costs what it did before.
  const auto still_due = Must(co_await store.ListDue(due_time, 1), "ListDue");
  Print("due_after_run", static_cast<double>(still_due.size()), "rows");
  PrintTiming("idle_run_once_after", co_await TimeIdleRuns(scheduler, o.repeats));

  // Sampled rows, spread over the key range: each was refreshed once, with the new pair.
  const std::int64_t samples = std::min(o.samples, o.accounts);
  std::int64_t sampled_ok = 0;
  for (std::int64_t i = 0; i < samples; ++i) {
    const std::int64_t index = i * o.accounts / samples;
    core::AccountKey key{kFirstAccountId + index, kClientId};
    const auto row = Must(co_await store.Find(std::move(key)), "Find");
    const bool ok = row && row->version == 2 && row->status == core::ConnectionStatus::kActive &&
                    row->refresh_token.Reveal() == RefreshTokenOf(kFirstAccountId + index, 1) &&
                    row->refresh_failures == 0 && row->last_error.empty() &&
                    row->last_refresh_at == due_time && row->next_refresh_at > due_time &&
                    row->base_domain == HostOf(kFirstAccountId + index);
    sampled_ok += ok ? 1 : 0;
  }
  Print("sampled_rows_ok", static_cast<double>(sampled_ok), "rows");
  Print("sampled_rows", static_cast<double>(samples), "rows");

  Print("rss_start", MiB(before.rss_kib), "MiB");
  Print("rss_after_fill", MiB(after_fill.rss_kib), "MiB");
  Print("rss_after_idle", MiB(after_idle.rss_kib), "MiB");
  Print("rss_before_run", MiB(run_before.rss_kib), "MiB");
  Print("rss_after_run", MiB(run_after.rss_kib), "MiB");
  Print("rss_peak_fill", MiB(after_fill.hwm_kib), "MiB");
  // -1: the kernel did not let us reset the peak; the figure would include the fill's.
  Print("rss_peak_run", peak_reset ? MiB(run_after.hwm_kib) : -1.0, "MiB");
  Print("rss_growth_per_account",
        static_cast<double>(run_after.rss_kib - run_before.rss_kib) * 1024.0 / accounts,
        "B");

  Check(attempted == static_cast<std::size_t>(o.accounts),
        fmt::format("RunOnce attempted {} of {} accounts", attempted, o.accounts));
  Check(amo.refreshes.load() == o.accounts,
        fmt::format("amoCRM saw {} refreshes for {} accounts", amo.refreshes.load(), o.accounts));
  Check(amo.wrong_requests.load() == 0,
        fmt::format("{} refreshes sent the wrong token or host", amo.wrong_requests.load()));
  Check(amo.unexpected.load() == 0, "amoCRM got calls other than refreshes");
  Check(still_due.empty(), "rows are still due after the run");
  Check(pending_after - pending_before == static_cast<std::size_t>(expected_events),
        fmt::format("the outbox got {} events, expected {}",
                    pending_after - pending_before,
                    expected_events));
  Check(sampled_ok == samples,
        fmt::format("{} of {} sampled rows are not as refreshed", samples - sampled_ok, samples));
}

std::uintmax_t SizeOr0(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  return ec ? 0 : size;
}

/// The log as `amoauth serve` sets it up (apps/amoauth/local_setup.cpp), to stderr.
void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("amoauth");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  SetUpLogging(o.log_level);  // before Open: the store's logger copies the default one
  const bool own_dir = o.dir.empty();
  const fs::path dir = own_dir ? fs::temp_directory_path() /
                                     ("amoauth-scheduler-bench-" + std::to_string(::getpid()))
                               : fs::path(o.dir);
  fs::create_directories(dir);
  const fs::path db = dir / "scheduler.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(db.string() + suffix);
  }

  int status = 0;
  {
    BenchClock clock;
    clock.Set(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    boost::asio::io_context ioc;
    auto work = boost::asio::make_work_guard(ioc);
    std::thread runner([&ioc] { ioc.run(); });
    try {
      PerfControl perf(o.perf_ctl);
      std::optional<amoauth::bench::BenchDatabase> pg_database;
      std::unique_ptr<service::Store> store;
      if (o.postgres.empty()) {
        store = Must(
            SqliteStore::Open({.path = db.string(), .threads = o.store_threads, .clock = &clock},
                              amoauth::crypto::MasterKey::Generate()),
            "Open");
      } else {
        pg_database.emplace(o.postgres, o.keep);
        store = Must(amoauth::store_pg::PgStore::Open(
                         {.url = pg_database->Url(), .pool_size = o.store_threads, .clock = &clock},
                         amoauth::crypto::MasterKey::Generate()),
                     "Open");
      }
      std::printf(
          "scheduler_bench: %lld accounts into %s %s (%zu store threads, amoCRM answers in %d ms, "
          "log level %s)\n",
          static_cast<long long>(o.accounts),
          std::string(store->Engine()).c_str(),
          o.postgres.empty() ? db.c_str() : "(a database of its own)",
          o.store_threads,
          o.amo_latency_ms,
          o.log_level.c_str());
      boost::asio::co_spawn(ioc, Run(*store, clock, o, perf), boost::asio::use_future).get();
      if (pg_database) {
        Print("db_size", static_cast<double>(pg_database->SizeBytes()) / (1024.0 * 1024.0), "MiB");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "scheduler_bench: %s\n", e.what());
      status = 1;
    }
    work.reset();
    runner.join();
  }

  // The store is closed: its last connection checkpointed the WAL into the main file.
  const auto bytes = SizeOr0(db) + SizeOr0(db.string() + "-wal");
  if (status == 0 && o.postgres.empty()) {
    Print("db_size", static_cast<double>(bytes) / (1024.0 * 1024.0), "MiB");
  }
  if (!o.keep) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      fs::remove(db.string() + suffix);
    }
    if (own_dir) {
      fs::remove(dir);
    }
  }
  return status;
}
