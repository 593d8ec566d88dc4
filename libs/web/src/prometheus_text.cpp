#include "amoauth/web/prometheus_text.hpp"

#include <cmath>

#include <fmt/format.h>

namespace amoauth::web {
namespace {

std::string Escape(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

double AsDouble(std::uint64_t n) {
  return static_cast<double>(n);
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  return Escape(value, true);
}

std::string EscapeHelp(std::string_view help) {
  return Escape(help, false);
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  // Counts up to 2^53 are exact in a double; print them without an exponent.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return fmt::format("{}", static_cast<std::int64_t>(value));
  }
  return fmt::format("{}", value);
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(help), name, type);
}

void PrometheusText::Sample(std::string_view name, Labels labels, double value) {
  out_ += name;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      if (!first) {
        out_ += ',';
      }
      first = false;
      out_ += fmt::format("{}=\"{}\"", label, EscapeLabelValue(label_value));
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatSampleValue(value);
  out_ += '\n';
}

std::string RenderMetrics(const service::MetricsSample& sample) {
  const service::Metrics::Snapshot& c = sample.counters;
  PrometheusText text;

  text.Family("amoauth_refresh_attempts_total",
              "counter",
              "Refresh grants sent to amoCRM, by what asked for them.");
  for (std::size_t i = 0; i < c.refresh_sent.size(); ++i) {
    const auto trigger = service::ToString(static_cast<service::RefreshTrigger>(i));
    text.Sample(
        "amoauth_refresh_attempts_total", {{"trigger", trigger}}, AsDouble(c.refresh_sent[i]));
  }
  text.Family("amoauth_refresh_results_total",
              "counter",
              "amoCRM's verdicts on refresh grants: success, failed (retried with backoff), "
              "reauth_required (the refresh token is dead).");
  for (std::size_t i = 0; i < c.refresh_ended.size(); ++i) {
    const auto result = service::ToString(static_cast<service::RefreshResult>(i));
    text.Sample(
        "amoauth_refresh_results_total", {{"result", result}}, AsDouble(c.refresh_ended[i]));
  }

  text.Family("amoauth_accounts", "gauge", "Connections (account, integration) by status.");
  for (std::size_t i = 0; i < sample.accounts_by_status.size(); ++i) {
    const auto status = core::ToString(static_cast<core::ConnectionStatus>(i));
    text.Sample("amoauth_accounts", {{"status", status}}, AsDouble(sample.accounts_by_status[i]));
  }
  text.Family("amoauth_oldest_token_age_seconds",
              "gauge",
              "Seconds since the least recently refreshed active token pair was issued; absent "
              "when no active account has one.");
  if (sample.oldest_token_age_seconds) {
    text.Sample("amoauth_oldest_token_age_seconds",
                static_cast<double>(*sample.oldest_token_age_seconds));
  }

  text.Family("amoauth_proxy_requests_total",
              "counter",
              "Proxied calls that amoCRM answered, by amoCRM's HTTP status.");
  for (const auto& [status, count] : c.proxy_answers) {
    const std::string code = status == 0 ? "other" : std::to_string(status);
    text.Sample("amoauth_proxy_requests_total", {{"code", code}}, AsDouble(count));
  }
  text.Family("amoauth_proxy_failures_total",
              "counter",
              "Proxied calls that got no answer from amoCRM, by reason.");
  for (std::size_t i = 0; i < c.proxy_failures.size(); ++i) {
    const auto reason = service::ToString(static_cast<service::ProxyFailure>(i));
    text.Sample(
        "amoauth_proxy_failures_total", {{"reason", reason}}, AsDouble(c.proxy_failures[i]));
  }
  text.Family("amoauth_proxy_request_duration_seconds",
              "histogram",
              "Time from a proxied call's arrival to its answer, any refresh and limiter wait "
              "included.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < c.latency_buckets.size(); ++i) {
    cumulative += c.latency_buckets[i];
    const std::string le = i < service::Metrics::kLatencyBounds.size()
                               ? FormatSampleValue(service::Metrics::kLatencyBounds[i])
                               : std::string("+Inf");
    text.Sample(
        "amoauth_proxy_request_duration_seconds_bucket", {{"le", le}}, AsDouble(cumulative));
  }
  text.Sample("amoauth_proxy_request_duration_seconds_sum", c.latency_sum_seconds);
  text.Sample("amoauth_proxy_request_duration_seconds_count", AsDouble(cumulative));

  text.Family("amoauth_limiter_queue_length",
              "gauge",
              "Proxied calls waiting for their account's turn under amoCRM's rate limit.");
  text.Sample("amoauth_limiter_queue_length", AsDouble(sample.limiter_queue));
  text.Family(
      "amoauth_webhook_outbox_pending", "gauge", "Webhook events in the outbox not yet delivered.");
  text.Sample("amoauth_webhook_outbox_pending", AsDouble(sample.outbox_pending));
  text.Family("amoauth_code_queue_pending",
              "gauge",
              "Codes from the widget-install and exchange_api_key hooks not yet exchanged.");
  text.Sample("amoauth_code_queue_pending", AsDouble(sample.codes_queued));
  return text.Take();
}

}  // namespace amoauth::web
