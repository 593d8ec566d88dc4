#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

class ApiLimiter;

/// Why a refresh grant was sent to amoCRM.
enum class RefreshTrigger {
  kOnDemand,   ///< /token or the proxy needed a token inside the margin (or after a 401)
  kScheduled,  ///< the refresh scheduler
  kForced,     ///< POST /v1/accounts/{id}/refresh
};
inline constexpr std::size_t kRefreshTriggers = 3;
[[nodiscard]] std::string_view ToString(RefreshTrigger t);  // "on_demand" | "scheduled" | "forced"

/// What amoCRM made of a refresh grant (after the one retry at a renamed host, if any).
enum class RefreshResult {
  kSuccess,         ///< a new pair came back
  kFailed,          ///< transient or misconfigured: retried with backoff
  kReauthRequired,  ///< the refresh token is dead: the account needs a person
};
inline constexpr std::size_t kRefreshResults = 3;
[[nodiscard]] std::string_view ToString(
    RefreshResult r);  // "success" | "failed" | "reauth_required"

/// Why a proxied call got no answer from amoCRM.
enum class ProxyFailure {
  kThrottled,    ///< amoauth's limiter did not admit it within the wait
  kBlocked,      ///< the account is in a 403 cool-off
  kUnreachable,  ///< amoCRM did not answer (connection, TLS, timeout)
  kOther,        ///< no usable token: unknown account, reauth_required, a failed refresh, …
};
inline constexpr std::size_t kProxyFailures = 4;
[[nodiscard]] std::string_view ToString(ProxyFailure f);

/// The port through which the use cases count what they do. It knows nothing of any exposition
/// format: the web adapter renders a Metrics::Snapshot. Implementations are thread-safe and cheap
/// (called on the proxy's hot path).
class MetricsRecorder {
 public:
  virtual ~MetricsRecorder() = default;
  /// A refresh grant goes to amoCRM.
  virtual void RefreshSent(RefreshTrigger trigger) = 0;
  /// amoCRM's verdict on it.
  virtual void RefreshEnded(RefreshResult result) = 0;
  /// A proxied call came back with amoCRM's answer `status`, `latency` after it reached amoauth.
  virtual void ProxyAnswered(int status, std::chrono::nanoseconds latency) = 0;
  /// A proxied call ended without amoCRM's answer.
  virtual void ProxyFailed(ProxyFailure reason, std::chrono::nanoseconds latency) = 0;
};

/// The process's counters: relaxed atomics, no lock, no allocation per event. Counts since start.
class Metrics final : public MetricsRecorder {
 public:
  /// Upper bounds of the proxy latency histogram, in seconds; a last bucket (+Inf) takes the rest.
  static constexpr std::array<double, 11> kLatencyBounds = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  /// A copy of every counter at one moment (each read atomically; not a transaction).
  struct Snapshot {
    std::array<std::uint64_t, kRefreshTriggers> refresh_sent{};  ///< by RefreshTrigger
    std::array<std::uint64_t, kRefreshResults> refresh_ended{};  ///< by RefreshResult
    /// amoCRM's answers to proxied calls, (status, count) for each status seen, ascending;
    /// status 0 counts answers with a status outside 100–599.
    std::vector<std::pair<int, std::uint64_t>> proxy_answers;
    std::array<std::uint64_t, kProxyFailures> proxy_failures{};  ///< by ProxyFailure
    /// Proxied calls per latency bucket, not cumulative: [i] for latency <= kLatencyBounds[i]
    /// (and above the bound before), the last one above every bound.
    std::array<std::uint64_t, kLatencyBounds.size() + 1> latency_buckets{};
    double latency_sum_seconds = 0;
  };

  void RefreshSent(RefreshTrigger trigger) override;
  void RefreshEnded(RefreshResult result) override;
  void ProxyAnswered(int status, std::chrono::nanoseconds latency) override;
  void ProxyFailed(ProxyFailure reason, std::chrono::nanoseconds latency) override;

  [[nodiscard]] Snapshot Read() const;

 private:
  using Counter = std::atomic<std::uint64_t>;
  void Observe(std::chrono::nanoseconds latency);

  std::array<Counter, kRefreshTriggers> refresh_sent_{};
  std::array<Counter, kRefreshResults> refresh_ended_{};
  std::array<Counter, 600> proxy_answers_{};  ///< by status; [0]: outside 100–599
  std::array<Counter, kProxyFailures> proxy_failures_{};
  std::array<Counter, kLatencyBounds.size() + 1> latency_buckets_{};
  Counter latency_sum_ns_{0};
};

/// Everything GET /metrics shows, gathered at one scrape.
struct MetricsSample {
  Metrics::Snapshot counters;
  /// amo_tokens rows per status; every status is present, zero or not.
  std::array<std::uint64_t, 3> accounts_by_status{};  ///< by core::ConnectionStatus
  /// Seconds since the least recently refreshed active OAuth token was issued; nullopt: none.
  std::optional<std::int64_t> oldest_token_age_seconds;
  std::size_t limiter_queue = 0;   ///< proxied calls waiting for their account's turn
  std::size_t outbox_pending = 0;  ///< webhook events not yet delivered
  std::size_t codes_queued = 0;    ///< widget/exchange codes not yet exchanged
};

/// What the store ports MetricsReader reads. All must outlive it.
struct MetricsPorts {
  const Metrics& counters;
  StoreStatistics& statistics;
  EventOutbox& outbox;
  CodeQueue& codes;
  const ApiLimiter& limiter;
  const core::Clock& clock;
};

/// Gathers a MetricsSample: the counters from memory, the gauges that live in the database
/// through the store (on its blocking pool, never on the caller's thread), one cheap query each.
class MetricsReader {
 public:
  explicit MetricsReader(MetricsPorts ports) : ports_(ports) {}
  /// Errors: the store's.
  Task<Result<MetricsSample>> Read();

 private:
  MetricsPorts ports_;
};

}  // namespace amoauth::service
