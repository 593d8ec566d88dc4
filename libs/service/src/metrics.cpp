#include "amoauth/service/metrics.hpp"

#include <algorithm>

#include "amoauth/service/api_limiter.hpp"

namespace amoauth::service {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

template <class E, class Array>
void Bump(Array& counters, E which) {
  counters[static_cast<std::size_t>(which)].fetch_add(1, kRelaxed);
}

template <std::size_t N>
std::array<std::uint64_t, N> Load(const std::array<std::atomic<std::uint64_t>, N>& counters) {
  std::array<std::uint64_t, N> values{};
  for (std::size_t i = 0; i < N; ++i) {
    values[i] = counters[i].load(kRelaxed);
  }
  return values;
}

}  // namespace

std::string_view ToString(RefreshTrigger t) {
  switch (t) {
    case RefreshTrigger::kOnDemand:
      return "on_demand";
    case RefreshTrigger::kScheduled:
      return "scheduled";
    case RefreshTrigger::kForced:
      return "forced";
  }
  return "on_demand";
}

std::string_view ToString(RefreshResult r) {
  switch (r) {
    case RefreshResult::kSuccess:
      return "success";
    case RefreshResult::kFailed:
      return "failed";
    case RefreshResult::kReauthRequired:
      return "reauth_required";
  }
  return "failed";
}

std::string_view ToString(ProxyFailure f) {
  switch (f) {
    case ProxyFailure::kThrottled:
      return "throttled";
    case ProxyFailure::kBlocked:
      return "blocked";
    case ProxyFailure::kUnreachable:
      return "unreachable";
    case ProxyFailure::kOther:
      return "other";
  }
  return "other";
}

void Metrics::RefreshSent(RefreshTrigger trigger) {
  Bump(refresh_sent_, trigger);
}

void Metrics::RefreshEnded(RefreshResult result) {
  Bump(refresh_ended_, result);
}

void Metrics::ProxyAnswered(int status, std::chrono::nanoseconds latency) {
  const std::size_t slot = status >= 100 && status < 600 ? static_cast<std::size_t>(status) : 0;
  proxy_answers_[slot].fetch_add(1, kRelaxed);
  Observe(latency);
}

void Metrics::ProxyFailed(ProxyFailure reason, std::chrono::nanoseconds latency) {
  Bump(proxy_failures_, reason);
  Observe(latency);
}

void Metrics::Observe(std::chrono::nanoseconds latency) {
  const double seconds = std::chrono::duration<double>(latency).count();
  const auto bound = std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds);
  latency_buckets_[static_cast<std::size_t>(bound - kLatencyBounds.begin())].fetch_add(1, kRelaxed);
  latency_sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count())),
                            kRelaxed);
}

Metrics::Snapshot Metrics::Read() const {
  Snapshot s;
  s.refresh_sent = Load(refresh_sent_);
  s.refresh_ended = Load(refresh_ended_);
  for (std::size_t status = 0; status < proxy_answers_.size(); ++status) {
    if (const std::uint64_t n = proxy_answers_[status].load(kRelaxed); n > 0) {
      s.proxy_answers.emplace_back(static_cast<int>(status), n);
    }
  }
  s.proxy_failures = Load(proxy_failures_);
  s.latency_buckets = Load(latency_buckets_);
  s.latency_sum_seconds = static_cast<double>(latency_sum_ns_.load(kRelaxed)) / 1e9;
  return s;
}

Task<Result<MetricsSample>> MetricsReader::Read() {
  MetricsSample sample;
  sample.counters = ports_.counters.Read();
  sample.limiter_queue = ports_.limiter.QueueLength();
  auto census = co_await ports_.statistics.CountConnections();
  if (!census) {
    co_return census.error();
  }
  for (std::size_t i = 0; i < sample.accounts_by_status.size(); ++i) {
    sample.accounts_by_status[i] = census->by_status[i];
  }
  if (census->oldest_refresh) {
    const auto age = ports_.clock.Now() - *census->oldest_refresh;
    sample.oldest_token_age_seconds =
        std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(age).count());
  }
  auto pending = co_await ports_.outbox.CountPending();
  if (!pending) {
    co_return pending.error();
  }
  sample.outbox_pending = *pending;
  auto queued = co_await ports_.codes.CountQueued();
  if (!queued) {
    co_return queued.error();
  }
  sample.codes_queued = *queued;
  co_return sample;
}

}  // namespace amoauth::service
