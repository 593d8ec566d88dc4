#include "amoauth/service/refresh_scheduler.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/net/log_context.hpp"

namespace amoauth::service {

RefreshScheduler::RefreshScheduler(AccountService& accounts,
                                   RefreshLeases& leases,
                                   const core::Clock& clock,
                                   SchedulerSettings settings)
    : accounts_(accounts), leases_(leases), clock_(clock), settings_(settings) {}

/// The rows of one batch and the workers taking them in turn. Touched only on the batch's strand.
struct RefreshScheduler::Round {
  explicit Round(const boost::asio::any_io_executor& executor) : done(executor) {}
  std::vector<core::Connection> rows;
  std::size_t next = 0;
  std::size_t running = 0;
  boost::asio::steady_timer done;  ///< cancelled by the last worker to finish
};

Task<Result<std::size_t>> RefreshScheduler::RunOnce() {
  const core::TimePoint now = clock_.Now();
  std::set<std::pair<std::int64_t, std::string>> attempted;
  std::size_t count = 0;
  for (;;) {
    // Claimed as the refresh's own holder, so RefreshIfDue's lease extends the claim. A claim
    // lasts as long as a refresh's lease from the moment it is made: a row still waiting in the
    // batch when it ends may be claimed by another instance, and then the lease, re-read and
    // compare-and-swap in AccountService still let only one of us refresh it.
    const core::TimePoint until = clock_.Now() + accounts_.LeaseTtl();
    auto due =
        co_await leases_.ClaimDueRefreshes(now, accounts_.LeaseHolder(), until, settings_.batch);
    if (!due) {
      co_return due.error();
    }
    std::vector<core::Connection> rows;
    for (core::Connection& row : *due) {
      // A row whose write failed stays due; never spin on it within one round. Its claim is left
      // to end by itself rather than released: the holder names this process, not this round,
      // so a Release could drop the lease of an on-demand refresh of the same account running
      // here right now and let another instance refresh it at the same time. Such a row is rare
      // (its store write just failed) and waits at most a lease's length.
      if (attempted.emplace(row.account_id, row.client_id).second) {
        rows.push_back(std::move(row));
      }
    }
    if (rows.empty()) {
      break;
    }
    count += rows.size();
    auto strand = boost::asio::make_strand(co_await boost::asio::this_coro::executor);
    co_await boost::asio::co_spawn(strand, RefreshAll(std::move(rows)), boost::asio::use_awaitable);
    if (due->size() < settings_.batch || stopped_) {
      break;
    }
  }
  co_return count;
}

Task<void> RefreshScheduler::RefreshAll(std::vector<core::Connection> rows) {
  const auto executor = co_await boost::asio::this_coro::executor;
  auto round = std::make_shared<Round>(executor);
  round->rows = std::move(rows);
  round->done.expires_at(boost::asio::steady_timer::time_point::max());
  round->running = std::min(std::max<std::size_t>(settings_.parallel, 1), round->rows.size());
  const std::size_t workers = round->running;
  for (std::size_t i = 0; i < workers; ++i) {
    // co_spawn posts: no worker runs before this coroutine waits on `done` below.
    boost::asio::co_spawn(executor, Worker(round), [round](const std::exception_ptr&) {
      if (--round->running == 0) {
        round->done.cancel();
      }
    });
  }
  if (round->running > 0) {
    boost::system::error_code ec;
    co_await round->done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

Task<void> RefreshScheduler::Worker(std::shared_ptr<Round> round) {
  // After Stop() no row is started; the refreshes running finish.
  while (round->next < round->rows.size() && !stopped_) {
    core::Connection row = std::move(round->rows[round->next++]);
    const std::int64_t account_id = row.account_id;
    // Every line of this refresh, down to the store and the amoCRM client, names the account.
    std::string log_id = fmt::format("refresh-{}", account_id);
    auto refresh = accounts_.RefreshIfDue(std::move(row));
    auto refreshed = co_await net::RunWithLogId(std::move(log_id), std::move(refresh));
    if (!refreshed && !Is(refreshed.error(), Errc::kReauthRequired)) {
      spdlog::debug("scheduler: account {}: {}", account_id, refreshed.error().message());
    }
  }
}

Task<void> RefreshScheduler::Run() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    // busy_ is set before stopped_ is read (both sequentially consistent): a shutdown that sets
    // stopped_ and then sees busy_ false knows no round starts after it.
    busy_ = true;
    if (stopped_) {
      busy_ = false;
      break;
    }
    auto done = co_await RunOnce();
    busy_ = false;
    if (!done) {
      spdlog::error("scheduler: cannot read due accounts: {}", done.error().message());
    }
    timer.expires_after(settings_.interval);
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

}  // namespace amoauth::service
