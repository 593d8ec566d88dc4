// GET /metrics through the real service, store and sandbox: a refresh and proxied calls move the
// counters by exactly what happened, and the store's gauges follow the accounts.
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

const std::string kAccountPath = "/v1/accounts/30000001";

/// The value of the sample named exactly `series` (name and labels), nullopt when absent.
std::optional<double> Sample(const std::string& body, const std::string& series) {
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::string Scrape(ServiceHarness& h) {
  auto r = h.Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.Get("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  return r.body;
}

TEST(Metrics, ARefreshAndProxiedCallsMoveTheCountersByExactlyWhatHappened) {
  ServiceHarness h;
  h.Connect();
  std::string m = Scrape(h);
  EXPECT_EQ(Sample(m, R"(amoauth_accounts{status="active"})"), 1);
  EXPECT_EQ(Sample(m, R"(amoauth_accounts{status="reauth_required"})"), 0);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_attempts_total{trigger="forced"})"), 0);
  EXPECT_EQ(Sample(m, "amoauth_proxy_request_duration_seconds_count"), 0);
  EXPECT_EQ(Sample(m, "amoauth_oldest_token_age_seconds"), 0);
  const auto pending = h.Await(h.Store().CountPending());
  ASSERT_TRUE(pending);
  EXPECT_GE(*pending, 1U) << "account.connected";
  EXPECT_EQ(Sample(m, "amoauth_webhook_outbox_pending"), static_cast<double>(*pending));
  EXPECT_EQ(Sample(m, "amoauth_code_queue_pending"), 0);
  EXPECT_EQ(Sample(m, "amoauth_limiter_queue_length"), 0);

  // A forced refresh, a proxied call, then one whose token amoCRM revoked: 401, an on-demand
  // refresh, and the replay's 200.
  ASSERT_EQ(h.Call("POST", kAccountPath + "/refresh").status, 200);
  ASSERT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 200);
  ASSERT_EQ(h.SandboxPost(
                 "/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"access"})")
                .status,
            200);
  ASSERT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 200);
  h.AdvanceClocks(std::chrono::seconds(1000));

  m = Scrape(h);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_attempts_total{trigger="forced"})"), 1);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_attempts_total{trigger="on_demand"})"), 1);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_attempts_total{trigger="scheduled"})"), 0);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_results_total{result="success"})"), 2);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_results_total{result="failed"})"), 0);
  EXPECT_EQ(Sample(m, R"(amoauth_proxy_requests_total{code="200"})"), 2);
  EXPECT_EQ(Sample(m, R"(amoauth_proxy_requests_total{code="401"})"), std::nullopt)
      << "the 401 was replayed: the caller got the replay's answer";
  EXPECT_EQ(Sample(m, "amoauth_proxy_request_duration_seconds_count"), 2);
  EXPECT_EQ(Sample(m, R"(amoauth_proxy_request_duration_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_GT(Sample(m, "amoauth_proxy_request_duration_seconds_sum").value_or(0), 0);
  EXPECT_EQ(Sample(m, "amoauth_oldest_token_age_seconds"), 1000) << "refreshed 1000 s ago";

  // amoCRM revokes everything: the forced refresh finds the refresh token dead.
  ASSERT_EQ(
      h.SandboxPost("/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"all"})")
          .status,
      200);
  EXPECT_EQ(h.Call("POST", kAccountPath + "/refresh").status, 409);
  EXPECT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 409);

  m = Scrape(h);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_attempts_total{trigger="forced"})"), 2);
  EXPECT_EQ(Sample(m, R"(amoauth_refresh_results_total{result="reauth_required"})"), 1);
  EXPECT_EQ(Sample(m, R"(amoauth_accounts{status="active"})"), 0);
  EXPECT_EQ(Sample(m, R"(amoauth_accounts{status="reauth_required"})"), 1);
  EXPECT_EQ(Sample(m, "amoauth_oldest_token_age_seconds"), std::nullopt) << "no active account";
  EXPECT_EQ(Sample(m, R"(amoauth_proxy_failures_total{reason="other"})"), 1);
  EXPECT_EQ(Sample(m, "amoauth_proxy_request_duration_seconds_count"), 3);

  // Nothing secret in it.
  EXPECT_EQ(m.find(h.ApiKey()), std::string::npos);
  EXPECT_EQ(m.find("30000001"), std::string::npos) << "no account ids as labels";
}

TEST(Metrics, NeedTheApiKeyUnlessPublic) {
  {
    ServiceHarness h;
    EXPECT_EQ(h.Call("GET", "/metrics", {}, std::string("wrong-key-wrong-key")).status, 401);
    EXPECT_EQ(h.Call("GET", "/metrics").status, 200);
  }
  ServiceHarness::Options options;
  options.metrics_public = true;
  ServiceHarness h(options);
  EXPECT_EQ(h.Call("GET", "/metrics", {}, std::string("wrong-key-wrong-key")).status, 200);
}

}  // namespace
}  // namespace amoauth::testing
