#include "amoauth/service/refresh_scheduler.hpp"

#include <set>
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace amoauth::service {

RefreshScheduler::RefreshScheduler(AccountService& accounts,
                                   ConnectionStore& connections,
                                   const core::Clock& clock,
                                   SchedulerSettings settings)
    : accounts_(accounts), connections_(connections), clock_(clock), settings_(settings) {}

Task<Result<std::size_t>> RefreshScheduler::RunOnce() {
  const core::TimePoint now = clock_.Now();
  std::set<std::pair<std::int64_t, std::string>> attempted;
  std::size_t count = 0;
  for (;;) {
    auto due = co_await connections_.ListDue(now, settings_.batch);
    if (!due) {
      co_return due.error();
    }
    bool progressed = false;
    for (core::Connection& row : *due) {
      // A row whose write failed stays due; never spin on it within one round.
      if (!attempted.emplace(row.account_id, row.client_id).second) {
        continue;
      }
      progressed = true;
      ++count;
      const std::int64_t account_id = row.account_id;
      auto refreshed = co_await accounts_.RefreshIfDue(std::move(row));
      if (!refreshed && !Is(refreshed.error(), Errc::kReauthRequired)) {
        spdlog::debug("scheduler: account {}: {}", account_id, refreshed.error().message());
      }
    }
    if (!progressed || due->size() < settings_.batch) {
      break;
    }
  }
  co_return count;
}

Task<void> RefreshScheduler::Run() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  while (!stopped_) {
    auto done = co_await RunOnce();
    if (!done) {
      spdlog::error("scheduler: cannot read due accounts: {}", done.error().message());
    }
    timer.expires_after(settings_.interval);
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

}  // namespace amoauth::service
