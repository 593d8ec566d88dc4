// SIGTERM drains (issue 7, item 4): the real `amoauth serve` binary finishes the requests and
// refreshes in flight — amoCRM's new pair is committed, never lost — refuses new connections,
// and exits 0 within AMOAUTH_SHUTDOWN_GRACE_MS; the grace bounds the wait, and a second signal
// ends the wait at once.
#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kTokenPath = "/v1/accounts/" + std::to_string(kSandboxAccountId) + "/token";
const std::string kProxyPath =
    "/v1/accounts/" + std::to_string(kSandboxAccountId) + "/proxy/api/v4/account";

/// Polls `done` every few milliseconds until it holds, at most `timeout`.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// The refresh grants process i has sent to amoCRM (amoauth_refresh_attempts_total, every
/// trigger): counted just before the grant goes out, so a rise means a refresh is in flight.
long long RefreshesSent(ProcessHarness& h, std::size_t i) {
  const CallResult metrics = h.Call(i, "GET", "/metrics");
  if (metrics.status != 200) {
    return -1;
  }
  long long total = 0;
  std::istringstream lines(metrics.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("amoauth_refresh_attempts_total{", 0) == 0) {
      total += std::stoll(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

/// amoCRM's token endpoint answers `delay` late (the sandbox's token_delay_ms).
void SlowTokenEndpoint(ProcessHarness& h, std::chrono::milliseconds delay) {
  const auto r = h.SandboxPost("/sandbox/config",
                               "application/json",
                               "{\"token_delay_ms\":" + std::to_string(delay.count()) + "}");
  ASSERT_EQ(r.status, 200) << "POST /sandbox/config: " << r.body << r.error;
}

/// Starts, in `call`, a /token call that must refresh: the account's access token expired, amoCRM's
/// token endpoint answering `delay` late. Returns once the refresh grant has gone out, i.e. while
/// it is in flight.
void StartTokenCallWithRefreshInFlight(ProcessHarness& h,
                                       std::chrono::milliseconds delay,
                                       std::future<CallResult>& call) {
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  ASSERT_NO_FATAL_FAILURE(SlowTokenEndpoint(h, delay));
  const long long sent = RefreshesSent(h, 0);
  ASSERT_GE(sent, 0);
  call = std::async(std::launch::async, [&h] { return h.Call(0, "GET", kTokenPath); });
  ASSERT_TRUE(WaitUntil([&] { return RefreshesSent(h, 0) > sent; }, 10s)) << h.StderrTail(0);
}

/// Every stored token expired in 2000 and due for the scheduler then (through the SQLite file).
void MakeEveryTokenDue(ProcessHarness& h) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(h.DatabasePath().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  sqlite3_busy_timeout(db, 5000);
  char* message = nullptr;
  const int rc = sqlite3_exec(db,
                              R"(UPDATE amo_tokens SET "expiresAt" = '2000-01-01T00:00:00Z',
                                                       "nextRefreshAt" = '2000-01-01T00:00:00Z')",
                              nullptr,
                              nullptr,
                              &message);
  const std::string error = message != nullptr ? message : "";
  sqlite3_free(message);
  ASSERT_EQ(rc, SQLITE_OK) << error;
  ASSERT_EQ(sqlite3_changes(db), 1);
}

std::int64_t Delta(const boost::json::object& before,
                   const boost::json::object& after,
                   const char* counter) {
  return after.at(counter).to_number<std::int64_t>() - before.at(counter).to_number<std::int64_t>();
}

std::string AccessTokenOf(const CallResult& r) {
  return std::string(boost::json::parse(r.body).as_object().at("access_token").as_string());
}

TEST(Shutdown, TokenCallInFlightAtSigtermIsAnsweredAndItsRefreshCommitted) {
  ProcessHarness h({.processes = 1, .extra_env = {{"AMOAUTH_SHUTDOWN_GRACE_MS", "20000"}}});
  h.Connect(0);
  const std::string old_token = h.AccessToken(0);
  const auto before = h.SandboxCounters();

  // /token needs a refresh; amoCRM takes 1.5 s to answer it. SIGTERM comes meanwhile.
  std::future<CallResult> call;
  ASSERT_NO_FATAL_FAILURE(StartTokenCallWithRefreshInFlight(h, 1500ms, call));
  const std::string url = h.BaseUrl(0);
  const auto signalled = Clock::now();
  h.Signal(0, SIGTERM);
  ASSERT_TRUE(
      WaitUntil([&] { return h.StderrTail(0, 20).find("draining") != std::string::npos; }, 5s))
      << h.StderrTail(0);

  // Draining: a new connection gets no answer.
  const CallResult refused = h.Get(url + "/v1/accounts");
  EXPECT_EQ(refused.status, 0) << refused.body;

  // The call in flight is answered, with the refreshed token, and its connection closes.
  const CallResult answered = call.get();
  ASSERT_EQ(answered.status, 200) << answered.body << answered.error << h.StderrTail(0);
  const std::string new_token = AccessTokenOf(answered);
  EXPECT_NE(new_token, old_token);
  const auto connection = answered.headers.Get("Connection");
  ASSERT_TRUE(connection);
  EXPECT_EQ(*connection, "close");

  const auto code = h.WaitExit(0, 20s);
  ASSERT_TRUE(code) << "still running 20 s after SIGTERM";
  EXPECT_EQ(*code, 0) << h.StderrTail(0);
  EXPECT_LT(Clock::now() - signalled, 20s) << "the drain outlasted its grace";
  // The call, and perhaps the test's own last /metrics poll still finishing.
  EXPECT_THAT(h.StderrTail(0),
              ::testing::ContainsRegex("waited for [12] request\\(s\\) and 1 refresh\\(es\\)"));

  // The new pair was committed: after a restart it is the stored one, with no further refresh,
  // and amoCRM accepts it.
  h.Restart(0);
  EXPECT_EQ(h.AccessToken(0), new_token);
  const CallResult proxied = h.Call(0, "GET", kProxyPath);
  EXPECT_EQ(proxied.status, 200) << proxied.body << proxied.error;
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);
}

TEST(Shutdown, ScheduledRefreshInFlightAtSigtermIsCommitted) {
  ProcessHarness h({.processes = 1,
                    .extra_env = {{"AMOAUTH_SHUTDOWN_GRACE_MS", "20000"},
                                  {"AMOAUTH_SCHEDULER_INTERVAL_MS", "50"}}});
  h.Connect(0);
  const std::string old_token = h.AccessToken(0);
  SlowTokenEndpoint(h, 1500ms);
  const auto before = h.SandboxCounters();
  const long long sent = RefreshesSent(h, 0);
  ASSERT_GE(sent, 0);

  // The scheduler takes the row within its 50 ms interval; amoCRM answers 1.5 s later.
  MakeEveryTokenDue(h);
  ASSERT_TRUE(WaitUntil([&] { return RefreshesSent(h, 0) > sent; }, 10s)) << h.StderrTail(0);
  h.Signal(0, SIGTERM);
  const auto code = h.WaitExit(0, 20s);
  ASSERT_TRUE(code) << "still running 20 s after SIGTERM";
  EXPECT_EQ(*code, 0) << h.StderrTail(0);
  // The test's own last /metrics poll may still count as a request in flight: only the refresh
  // is asserted.
  EXPECT_THAT(h.StderrTail(0), HasSubstr(" request(s) and 1 refresh(es)"));

  // Committed before the exit: the restarted process hands out the new token without another
  // refresh, amoCRM accepts it, and no refresh token was ever used twice.
  h.Restart(0);
  const std::string token = h.AccessToken(0);
  EXPECT_NE(token, old_token);
  const CallResult proxied = h.Call(0, "GET", kProxyPath);
  EXPECT_EQ(proxied.status, 200) << proxied.body << proxied.error;
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);
}

TEST(Shutdown, TheGraceBoundsTheWait) {
  ProcessHarness h({.processes = 1, .extra_env = {{"AMOAUTH_SHUTDOWN_GRACE_MS", "300"}}});
  h.Connect(0);
  std::future<CallResult> call;
  ASSERT_NO_FATAL_FAILURE(StartTokenCallWithRefreshInFlight(h, 20s, call));
  const auto signalled = Clock::now();
  h.Signal(0, SIGTERM);
  const auto code = h.WaitExit(0, 10s);
  ASSERT_TRUE(code) << "still running 10 s after SIGTERM with a 300 ms grace";
  EXPECT_EQ(*code, 0) << h.StderrTail(0);
  // 300 ms of grace and the exit; far less than the 20 s amoCRM would take.
  EXPECT_LT(Clock::now() - signalled, 5s);
  EXPECT_THAT(h.StderrTail(0), HasSubstr("grace of 300 ms is over"));
  const CallResult cut = call.get();
  EXPECT_EQ(cut.status, 0) << cut.body;
}

TEST(Shutdown, ASecondSignalStopsAtOnce) {
  ProcessHarness h({.processes = 1, .extra_env = {{"AMOAUTH_SHUTDOWN_GRACE_MS", "60000"}}});
  h.Connect(0);
  std::future<CallResult> call;
  ASSERT_NO_FATAL_FAILURE(StartTokenCallWithRefreshInFlight(h, 20s, call));
  h.Signal(0, SIGTERM);
  ASSERT_TRUE(
      WaitUntil([&] { return h.StderrTail(0, 20).find("draining") != std::string::npos; }, 5s))
      << h.StderrTail(0);
  EXPECT_FALSE(h.WaitExit(0, 0ms)) << "exited before the refresh in flight ended";
  const auto signalled = Clock::now();
  h.Signal(0, SIGINT);
  const auto code = h.WaitExit(0, 10s);
  ASSERT_TRUE(code) << "still running 10 s after the second signal";
  EXPECT_EQ(*code, 0) << h.StderrTail(0);
  EXPECT_LT(Clock::now() - signalled, 5s);
  EXPECT_THAT(h.StderrTail(0), HasSubstr("received again while draining"));
  EXPECT_EQ(call.get().status, 0);
}

}  // namespace
}  // namespace amoauth::testing
