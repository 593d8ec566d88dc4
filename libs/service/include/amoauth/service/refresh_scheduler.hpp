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
  /// Rows claimed per query.
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
/// callers rarely wait for a refresh. Several processes (on several machines) may run it on one
/// store: each claims its batches (RefreshLeases::ClaimDueRefreshes, holding the rows' leases as
/// AccountService's refreshes do), so instances share the due rows instead of all reading the
/// same ones and racing for their leases; each refresh still goes through AccountService's lease
/// and compare-and-swap, and a row someone else refreshed meanwhile is skipped.
class RefreshScheduler {
 public:
  RefreshScheduler(AccountService& accounts,
                   RefreshLeases& leases,
                   const core::Clock& clock,
                   SchedulerSettings settings);

  /// Claims and refreshes every row due at the clock's now that no one else holds, batch after
  /// batch, each row at most once per call. Returns how many refreshes it attempted (rows it
  /// claimed). Errors: the store's.
  Task<Result<std::size_t>> RunOnce();

  /// RunOnce every interval until Stop(); store errors are logged and retried next round.
  Task<void> Run();
  /// No new refresh starts after it (rows claimed and not yet started are left to their claims'
  /// end); refreshes already running go on to their commit. Thread-safe.
  void Stop() { stopped_ = true; }
  /// Run() is in a round (claiming rows or refreshing them), not waiting for the next one. Once
  /// it is false after Stop(), Run() starts no more work.
  [[nodiscard]] bool Busy() const { return busy_; }

 private:
  struct Round;
  /// Refreshes `rows`, settings_.parallel at a time. Runs on a strand of its own.
  Task<void> RefreshAll(std::vector<core::Connection> rows);
  Task<void> Worker(std::shared_ptr<Round> round);

  AccountService& accounts_;
  RefreshLeases& leases_;
  const core::Clock& clock_;
  SchedulerSettings settings_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> busy_{false};
};

}  // namespace amoauth::service
