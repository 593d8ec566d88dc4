// Issue 3 against the real sandbox in one process: keepalive over months, every failure class,
// the proxy's 401 replay, renames, and amoCRM's rate limits. Both clocks are moved by the test
// (ServiceHarness::AdvanceClocks); nothing sleeps.
#include <algorithm>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
namespace json = boost::json;

constexpr std::int64_t kAccount = 30000001;
const std::string kAccountPath = "/v1/accounts/30000001";

std::int64_t Counter(ServiceHarness& h, std::string_view name) {
  return h.SandboxCounters().at(name).as_int64();
}

json::object Body(const net::HttpResponse& r) {
  return json::parse(r.body).as_object();
}

void SandboxConfig(ServiceHarness& h, const json::object& patch) {
  auto r = h.SandboxPost("/sandbox/config", "application/json", json::serialize(patch));
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST(TokenLifecycle, AnIdleAccountIsStillValidAfterEightyDays) {
  ServiceHarness h;
  h.Connect();
  const auto reuses_before = Counter(h, "refresh_token_reuses");
  for (int day = 0; day < 80; ++day) {
    h.AdvanceClocks(hours(24));
    ASSERT_TRUE(h.Await(h.Scheduler().RunOnce())) << "day " << day;
  }
  auto token = h.Call("GET", kAccountPath + "/token");
  ASSERT_EQ(token.status, 200) << token.body;
  auto account = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(Counter(h, "refresh_token_reuses"), reuses_before);
  EXPECT_GE(Counter(h, "refreshes"), 80);
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "active");
  EXPECT_EQ(view.at("refresh").as_object().at("failures").as_int64(), 0);
}

TEST(TokenLifecycle, AnAccountLeftAloneForAHundredDaysIsReportedNotRetriedForever) {
  ServiceHarness h;
  h.Connect();
  // amoauth was not running: nothing refreshed for 100 days; the refresh token died at 90.
  h.AdvanceClocks(hours(24 * 100));
  const auto requests_before = Counter(h, "token_requests");
  ASSERT_TRUE(h.Await(h.Scheduler().RunOnce()));
  EXPECT_EQ(Counter(h, "token_requests"), requests_before + 1) << "one attempt";
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "reauth_required");
  EXPECT_FALSE(view.at("refresh").as_object().at("last_error").is_null());
  EXPECT_TRUE(view.at("refresh").as_object().at("next_refresh_at").is_null());

  for (int i = 0; i < 5; ++i) {
    h.AdvanceClocks(hours(24));
    ASSERT_TRUE(h.Await(h.Scheduler().RunOnce()));
  }
  auto token = h.Call("GET", kAccountPath + "/token");
  EXPECT_EQ(token.status, 409);
  EXPECT_EQ(Body(token).at("error").as_string(), "reauth_required");
  EXPECT_EQ(Counter(h, "token_requests"), requests_before + 1) << "and never again";
}

TEST(TokenLifecycle, ARevokedAccountMakesOneRefreshAttemptHoweverManyCallersAsk) {
  ServiceHarness h;
  h.Connect();
  auto revoked =
      h.SandboxPost("/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"all"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  h.AdvanceClocks(hours(25));
  const auto requests_before = Counter(h, "token_requests");
  for (const auto& r : h.CallMany("GET", kAccountPath + "/token", 30)) {
    EXPECT_EQ(r.status, 409) << r.body;
  }
  EXPECT_EQ(h.Call("POST", kAccountPath + "/refresh").status, 409);
  EXPECT_EQ(Counter(h, "token_requests"), requests_before + 1);
}

TEST(TokenLifecycle, ProxyRefreshesOnceWhenAmoCrmRevokesTheAccessToken) {
  ServiceHarness h;
  h.Connect();
  ASSERT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 200);
  auto revoked = h.SandboxPost(
      "/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"access"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  const auto refreshes_before = Counter(h, "refreshes");
  for (const auto& r : h.CallMany("GET", kAccountPath + "/proxy/api/v4/account", 5)) {
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(Counter(h, "refreshes"), refreshes_before + 1);
  EXPECT_EQ(Counter(h, "refresh_token_reuses"), 0);
}

TEST(TokenLifecycle, ARenamedAccountIsFoundThroughTheDomainLookup) {
  ServiceHarness h;
  h.Connect();
  auto renamed = h.SandboxPost(
      "/sandbox/accounts/30000001/rename", "application/json", R"({"subdomain":"renamed"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  h.AdvanceClocks(hours(25));
  auto token = h.Call("GET", kAccountPath + "/token");
  ASSERT_EQ(token.status, 200) << token.body;
  EXPECT_EQ(Body(token).at("base_domain").as_string(), "renamed.amocrm.ru");
  EXPECT_EQ(Counter(h, "subdomain_lookups"), 1);
  auto account = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(account.status, 200) << account.body;
}

TEST(TokenLifecycle, ATransientFailureIsRetriedAfterBackoffAndRecovers) {
  ServiceHarness h;
  h.Connect();
  auto fault = h.SandboxPost(
      "/sandbox/faults", "application/json", R"({"token_endpoint":{"status":503,"times":1}})");
  ASSERT_EQ(fault.status, 200) << fault.body;
  h.AdvanceClocks(hours(25));
  auto failed = h.Call("GET", kAccountPath + "/token");
  EXPECT_EQ(failed.status, 502) << failed.body;
  EXPECT_EQ(Body(failed).at("error").as_string(), "amo_server_error");
  // Inside the backoff nobody reaches amoCRM.
  auto deferred = h.Call("GET", kAccountPath + "/token");
  EXPECT_EQ(deferred.status, 503) << deferred.body;
  EXPECT_EQ(Body(deferred).at("error").as_string(), "refresh_deferred");
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "active");
  EXPECT_EQ(view.at("refresh").as_object().at("failures").as_int64(), 1);
  EXPECT_NE(std::string(view.at("refresh").as_object().at("last_error").as_string()).find("5xx"),
            std::string::npos);

  h.AdvanceClocks(seconds(60));
  auto token = h.Call("GET", kAccountPath + "/token");
  EXPECT_EQ(token.status, 200) << token.body;
  view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("refresh").as_object().at("failures").as_int64(), 0);
  EXPECT_TRUE(view.at("refresh").as_object().at("last_error").is_null());
  // connected, refresh_failed, refresh_recovered wait in the outbox (no webhook URL here).
  EXPECT_EQ(h.Await(h.Store().CountPending()).value(), 3U);
}

TEST(TokenLifecycle, ProxyPassesA204ThroughAsItIs) {
  ServiceHarness h;
  h.Connect();
  auto empty = h.Call("GET", kAccountPath + "/proxy/api/v4/leads?limit=250");
  EXPECT_EQ(empty.status, 204);
  EXPECT_TRUE(empty.body.empty());
}

TEST(TokenLifecycle, ForcedRefreshRotatesThePairOnce) {
  ServiceHarness h;
  h.Connect();
  const std::string before(
      Body(h.Call("GET", kAccountPath + "/token")).at("access_token").as_string());
  auto forced = h.Call("POST", kAccountPath + "/refresh");
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.body.find("access_token"), std::string::npos) << "the view holds no token";
  const std::string after(
      Body(h.Call("GET", kAccountPath + "/token")).at("access_token").as_string());
  EXPECT_NE(before, after);
  EXPECT_EQ(Counter(h, "refreshes"), 1);
}

TEST(TokenLifecycle, ABlockedAccountIsLeftAloneForTheCoolOff) {
  // amoauth's own limiter off, the sandbox strict: amoCRM's 429 and then its 403 block.
  ServiceHarness h({.limiter = {.rps = 0}});
  h.Connect();
  SandboxConfig(h, {{"api_rate_limit_rps", 1}, {"api_block_after_violations", 1}});
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) {
    statuses.push_back(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status);
  }
  // 200, then 429 (which also holds amoauth back for retry_after), …
  EXPECT_EQ(statuses[0], 200);
  EXPECT_EQ(statuses[1], 429);
  const auto blocked_before = Counter(h, "api_blocked");
  const auto api_before = Counter(h, "api_requests");
  // Past the sandbox's Retry-After the next call meets the block: 403, passed through once…
  h.AdvanceClocks(seconds(2));
  std::int64_t sent_403 = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
    if (r.status == 403) {
      ++sent_403;
    } else {
      EXPECT_EQ(r.status, 503) << r.body;
      const auto error = std::string(Body(r).at("error").as_string());
      EXPECT_TRUE(error == "amo_blocked" || error == "throttled") << error;
      EXPECT_TRUE(r.headers.Get("Retry-After").has_value());
    }
  }
  EXPECT_LE(sent_403, 1);
  EXPECT_LE(Counter(h, "api_blocked") - blocked_before, 1) << "no hammering a blocked account";
  EXPECT_LE(Counter(h, "api_requests") - api_before, 1);
}

TEST(TokenLifecycle, TwoHundredProxiedCallsNeverExceedSevenPerSecond) {
  // The one slow test: 200 calls at 7 per second take about half a minute of real time.
  ServiceHarness h({.limiter = {.max_wait = std::chrono::seconds(60)}});
  h.Connect();
  auto responses = h.CallMany("GET", kAccountPath + "/proxy/api/v4/account", 200);
  const auto ok = std::count_if(
      responses.begin(), responses.end(), [](const auto& r) { return r.status == 200; });
  EXPECT_EQ(ok, 200);
  EXPECT_LE(Counter(h, "max_api_requests_per_second"), 7);
  EXPECT_EQ(Counter(h, "api_rate_limited"), 0);
}

}  // namespace
}  // namespace amoauth::testing
