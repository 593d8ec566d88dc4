// service::Metrics: the counters GET /metrics shows, counted without a lock.
#include "amoauth/service/metrics.hpp"

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace amoauth::service {
namespace {

using std::chrono::milliseconds;

TEST(Metrics, StartsAtZero) {
  const Metrics metrics;
  const Metrics::Snapshot s = metrics.Read();
  EXPECT_EQ(s.refresh_sent, (std::array<std::uint64_t, kRefreshTriggers>{}));
  EXPECT_EQ(s.refresh_ended, (std::array<std::uint64_t, kRefreshResults>{}));
  EXPECT_TRUE(s.proxy_answers.empty());
  EXPECT_EQ(s.latency_sum_seconds, 0);
}

TEST(Metrics, CountsProxyAnswersByStatusAndLatencyIntoBuckets) {
  Metrics metrics;
  metrics.ProxyAnswered(204, milliseconds(10));  // bucket 1: (0.005, 0.01]
  metrics.ProxyAnswered(200, milliseconds(11));  // bucket 2: (0.01, 0.025]
  metrics.ProxyAnswered(200, milliseconds(0));   // bucket 0
  metrics.ProxyAnswered(99, milliseconds(0));    // not an HTTP status: slot 0
  metrics.ProxyFailed(ProxyFailure::kBlocked, std::chrono::seconds(11));  // above every bound
  const Metrics::Snapshot s = metrics.Read();
  EXPECT_EQ(s.proxy_answers,
            (std::vector<std::pair<int, std::uint64_t>>{{0, 1}, {200, 2}, {204, 1}}));
  EXPECT_EQ(s.proxy_failures[static_cast<std::size_t>(ProxyFailure::kBlocked)], 1U);
  EXPECT_EQ(s.latency_buckets[0], 2U);
  EXPECT_EQ(s.latency_buckets[1], 1U);
  EXPECT_EQ(s.latency_buckets[2], 1U);
  EXPECT_EQ(s.latency_buckets.back(), 1U);
  EXPECT_DOUBLE_EQ(s.latency_sum_seconds, 11.021);
}

TEST(Metrics, CountsExactlyFromManyThreadsAtOnce) {
  Metrics metrics;
  constexpr int kThreads = 8;
  constexpr int kEach = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kEach; ++i) {
        metrics.ProxyAnswered(200, milliseconds(1));
        metrics.RefreshSent(RefreshTrigger::kOnDemand);
        metrics.RefreshEnded(RefreshResult::kFailed);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const Metrics::Snapshot s = metrics.Read();
  constexpr std::uint64_t kTotal = std::uint64_t{kThreads} * kEach;
  EXPECT_EQ(s.proxy_answers, (std::vector<std::pair<int, std::uint64_t>>{{200, kTotal}}));
  EXPECT_EQ(s.latency_buckets[0], kTotal);
  EXPECT_EQ(s.refresh_sent[static_cast<std::size_t>(RefreshTrigger::kOnDemand)], kTotal);
  EXPECT_EQ(s.refresh_ended[static_cast<std::size_t>(RefreshResult::kFailed)], kTotal);
  EXPECT_NEAR(s.latency_sum_seconds, static_cast<double>(kTotal) / 1000, 1e-6);
}

}  // namespace
}  // namespace amoauth::service
