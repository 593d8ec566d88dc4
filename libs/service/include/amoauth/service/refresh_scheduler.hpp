#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

struct SchedulerSettings {
  /// Rows fetched per query.
  std::size_t batch = 100;
  /// How often Run() looks for due rows. Due times are minutes to days apart, so a second is
  /// plenty; the cost of an idle look is one indexed query.
  std::chrono::milliseconds interval{1000};
  /// Refreshes in flight at once. Each is mostly waiting for amoCRM, so a few in parallel keep a
  /// backlog (every account due after an outage) from taking hours; few enough not to hammer
  /// amoCRM's token endpoint.
  std::size_t parallel = 4;
};

/// Refreshes every active account before its access token expires and at least every keepalive
/// period (core::NextRefreshAt), so that no refresh token reaches amoCRM's three-month end and
/// callers rarely wait for a refresh. Several processes may run it on one store: each refresh goes
/// through AccountService's lease, and a row someone else refreshed is skipped.
class RefreshScheduler {
 public:
  RefreshScheduler(AccountService& accounts,
                   ConnectionStore& connections,
                   const core::Clock& clock,
                   SchedulerSettings settings);

  /// Refreshes every row due at the clock's now, batch after batch, each row at most once per
  /// call. Returns how many refreshes it attempted. Errors: the store's.
  Task<Result<std::size_t>> RunOnce();

  /// RunOnce every interval until Stop(); store errors are logged and retried next round.
  Task<void> Run();
  void Stop() { stopped_ = true; }

 private:
  struct Round;
  /// Refreshes `rows`, settings_.parallel at a time. Runs on a strand of its own.
  Task<void> RefreshAll(std::vector<core::Connection> rows);
  Task<void> Worker(std::shared_ptr<Round> round);

  AccountService& accounts_;
  ConnectionStore& connections_;
  const core::Clock& clock_;
  SchedulerSettings settings_;
  std::atomic<bool> stopped_{false};
};

}  // namespace amoauth::service
