// GET /metrics's body: Prometheus text exposition format 0.0.4, checked against golden text.
#include "amoauth/web/prometheus_text.hpp"

#include <chrono>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace amoauth::web {
namespace {

using std::chrono::milliseconds;

TEST(PrometheusText, EscapesLabelValuesAndHelpAsTheFormatRequires) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\nd"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(EscapeHelp(R"(a\b"c)"
                       "\nd"),
            R"(a\\b"c\nd)");  // quotes stay as they are in HELP
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(PrometheusText, FormatsValuesAsPrometheusReadsThem) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(42), "42");
  EXPECT_EQ(FormatSampleValue(12345678901234.0), "12345678901234");
  EXPECT_EQ(FormatSampleValue(0.005), "0.005");
  EXPECT_EQ(FormatSampleValue(2.5), "2.5");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(PrometheusText, WritesFamiliesAndSamplesWithLabels) {
  PrometheusText text;
  text.Family("x_total", "counter", "What x counts.\nSecond line.");
  text.Sample("x_total", {{"a", "1"}, {"b", "say \"hi\""}}, 3);
  text.Sample("x_total", 0.25);
  EXPECT_EQ(text.Take(),
            "# HELP x_total What x counts.\\nSecond line.\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"1\",b=\"say \\\"hi\\\"\"} 3\n"
            "x_total 0.25\n");
}

TEST(PrometheusText, RendersEveryAmoauthFamilyFromASample) {
  service::Metrics metrics;
  metrics.RefreshSent(service::RefreshTrigger::kScheduled);
  metrics.RefreshSent(service::RefreshTrigger::kScheduled);
  metrics.RefreshSent(service::RefreshTrigger::kOnDemand);
  metrics.RefreshEnded(service::RefreshResult::kSuccess);
  metrics.RefreshEnded(service::RefreshResult::kSuccess);
  metrics.RefreshEnded(service::RefreshResult::kReauthRequired);
  metrics.ProxyAnswered(200, milliseconds(3));    // <= 0.005
  metrics.ProxyAnswered(200, milliseconds(5));    // <= 0.005: bounds are inclusive
  metrics.ProxyAnswered(429, milliseconds(40));   // <= 0.05
  metrics.ProxyAnswered(999, milliseconds(300));  // <= 0.5; no such status: "other"
  metrics.ProxyFailed(service::ProxyFailure::kThrottled, milliseconds(12'000));  // +Inf

  service::MetricsSample sample;
  sample.counters = metrics.Read();
  sample.accounts_by_status = {7, 1, 2};
  sample.oldest_token_age_seconds = 3600;
  sample.limiter_queue = 4;
  sample.outbox_pending = 5;
  sample.codes_queued = 6;

  EXPECT_EQ(
      RenderMetrics(sample),
      R"(# HELP amoauth_refresh_attempts_total Refresh grants sent to amoCRM, by what asked for them.
# TYPE amoauth_refresh_attempts_total counter
amoauth_refresh_attempts_total{trigger="on_demand"} 1
amoauth_refresh_attempts_total{trigger="scheduled"} 2
amoauth_refresh_attempts_total{trigger="forced"} 0
# HELP amoauth_refresh_results_total amoCRM's verdicts on refresh grants: success, failed (retried with backoff), reauth_required (the refresh token is dead).
# TYPE amoauth_refresh_results_total counter
amoauth_refresh_results_total{result="success"} 2
amoauth_refresh_results_total{result="failed"} 0
amoauth_refresh_results_total{result="reauth_required"} 1
# HELP amoauth_accounts Connections (account, integration) by status.
# TYPE amoauth_accounts gauge
amoauth_accounts{status="active"} 7
amoauth_accounts{status="reauth_required"} 1
amoauth_accounts{status="disconnected"} 2
# HELP amoauth_oldest_token_age_seconds Seconds since the least recently refreshed active token pair was issued; absent when no active account has one.
# TYPE amoauth_oldest_token_age_seconds gauge
amoauth_oldest_token_age_seconds 3600
# HELP amoauth_proxy_requests_total Proxied calls that amoCRM answered, by amoCRM's HTTP status.
# TYPE amoauth_proxy_requests_total counter
amoauth_proxy_requests_total{code="other"} 1
amoauth_proxy_requests_total{code="200"} 2
amoauth_proxy_requests_total{code="429"} 1
# HELP amoauth_proxy_failures_total Proxied calls that got no answer from amoCRM, by reason.
# TYPE amoauth_proxy_failures_total counter
amoauth_proxy_failures_total{reason="throttled"} 1
amoauth_proxy_failures_total{reason="blocked"} 0
amoauth_proxy_failures_total{reason="unreachable"} 0
amoauth_proxy_failures_total{reason="other"} 0
# HELP amoauth_proxy_request_duration_seconds Time from a proxied call's arrival to its answer, any refresh and limiter wait included.
# TYPE amoauth_proxy_request_duration_seconds histogram
amoauth_proxy_request_duration_seconds_bucket{le="0.005"} 2
amoauth_proxy_request_duration_seconds_bucket{le="0.01"} 2
amoauth_proxy_request_duration_seconds_bucket{le="0.025"} 2
amoauth_proxy_request_duration_seconds_bucket{le="0.05"} 3
amoauth_proxy_request_duration_seconds_bucket{le="0.1"} 3
amoauth_proxy_request_duration_seconds_bucket{le="0.25"} 3
amoauth_proxy_request_duration_seconds_bucket{le="0.5"} 4
amoauth_proxy_request_duration_seconds_bucket{le="1"} 4
amoauth_proxy_request_duration_seconds_bucket{le="2.5"} 4
amoauth_proxy_request_duration_seconds_bucket{le="5"} 4
amoauth_proxy_request_duration_seconds_bucket{le="10"} 4
amoauth_proxy_request_duration_seconds_bucket{le="+Inf"} 5
amoauth_proxy_request_duration_seconds_sum 12.348
amoauth_proxy_request_duration_seconds_count 5
# HELP amoauth_limiter_queue_length Proxied calls waiting for their account's turn under amoCRM's rate limit.
# TYPE amoauth_limiter_queue_length gauge
amoauth_limiter_queue_length 4
# HELP amoauth_webhook_outbox_pending Webhook events in the outbox not yet delivered.
# TYPE amoauth_webhook_outbox_pending gauge
amoauth_webhook_outbox_pending 5
# HELP amoauth_code_queue_pending Codes from the widget-install and exchange_api_key hooks not yet exchanged.
# TYPE amoauth_code_queue_pending gauge
amoauth_code_queue_pending 6
)");
}

TEST(PrometheusText, LeavesOutTheTokenAgeWhenNoActiveAccountHasOne) {
  service::MetricsSample sample;
  const std::string body = RenderMetrics(sample);
  EXPECT_NE(body.find("# TYPE amoauth_oldest_token_age_seconds gauge\n"), std::string::npos);
  EXPECT_EQ(body.find("amoauth_oldest_token_age_seconds 0"), std::string::npos);
  EXPECT_NE(body.find("amoauth_proxy_request_duration_seconds_count 0\n"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::web
