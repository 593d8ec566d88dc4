#include "amoauth/service/api_limiter.hpp"

#include <algorithm>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace amoauth::service {
namespace {

std::chrono::seconds CeilSeconds(std::chrono::nanoseconds d) {
  return std::chrono::ceil<std::chrono::seconds>(std::max(d, std::chrono::nanoseconds{0}));
}

}  // namespace

ApiLimiter::Permit::Permit(Permit&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), account_id_(other.account_id_) {}

ApiLimiter::Permit& ApiLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (limiter_ != nullptr) {
      limiter_->Release(account_id_);
    }
    limiter_ = std::exchange(other.limiter_, nullptr);
    account_id_ = other.account_id_;
  }
  return *this;
}

ApiLimiter::Permit::~Permit() {
  if (limiter_ != nullptr) {
    limiter_->Release(account_id_);
  }
}

ApiLimiter::ApiLimiter(LimiterSettings settings, boost::asio::any_io_executor executor, NowFn now)
    : settings_(settings), executor_(std::move(executor)), now_(std::move(now)) {}

ApiLimiter::AccountState& ApiLimiter::StateLocked(std::int64_t account_id) {
  auto& slot = accounts_[account_id];
  if (!slot) {
    slot = std::make_unique<AccountState>(executor_);
    if (settings_.rps > 0) {
      slot->window.emplace(settings_.rps, settings_.window);
    }
  }
  return *slot;
}

Task<Result<ApiLimiter::Permit>> ApiLimiter::Acquire(std::int64_t account_id) {
  // The common case — nobody queued for the account, no hold, no block, room in the window — is
  // the decision PumpLocked would make for a sole waiter, taken here without queueing a waiter
  // and resuming through a post (two allocations and a hand-off per proxied request).
  bool admitted_now = false;
  {
    std::lock_guard lock(mutex_);
    AccountState& state = StateLocked(account_id);
    const auto now = now_();
    admitted_now = state.waiters.empty() && state.blocked_until <= now && state.hold_until <= now &&
                   (!state.window || state.window->TryStart(now));
  }
  if (admitted_now) {
    co_return Permit(this, account_id);
  }
  auto initiate = [this, account_id](auto handler) {
    using Handler = decltype(handler);
    auto home = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                    boost::asio::execution::outstanding_work.tracked);
    auto shared = std::make_shared<Handler>(std::move(handler));
    auto waiter = std::make_shared<Waiter>();
    waiter->resume = [shared, home](bool admitted) {
      boost::asio::post(home, [shared, admitted]() mutable { std::move (*shared)(admitted); });
    };
    std::lock_guard lock(mutex_);
    AccountState& state = StateLocked(account_id);
    waiter->deadline = now_() + settings_.max_wait;
    state.waiters.push_back(waiter);
    queued_.fetch_add(1, std::memory_order_relaxed);
    PumpLocked(account_id, state);
  };
  const bool admitted =
      co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(bool)>(
          initiate, boost::asio::use_awaitable);
  if (!admitted) {
    std::lock_guard lock(mutex_);
    co_return Fail(StateLocked(account_id).blocked_until > now_() ? Errc::kAmoBlocked
                                                                  : Errc::kThrottled);
  }
  co_return Permit(this, account_id);
}

void ApiLimiter::PumpLocked(std::int64_t account_id, AccountState& state) {
  // Every waiter leaves the queue here: count those who leave, however this returns.
  struct Leavers {
    std::atomic<std::size_t>& queued;
    const std::deque<std::shared_ptr<Waiter>>& waiters;
    const std::size_t before = waiters.size();
    ~Leavers() { queued.fetch_sub(before - waiters.size(), std::memory_order_relaxed); }
  } leavers{queued_, state.waiters};
  const auto now = now_();
  // A blocked account answers everyone at once; so do callers whose turn can no longer come.
  if (state.blocked_until > now) {
    for (auto& w : state.waiters) {
      w->resume(false);
    }
    state.waiters.clear();
    return;
  }
  while (!state.waiters.empty() && state.hold_until <= now &&
         (!state.window || state.window->TryStart(now))) {
    state.waiters.front()->resume(true);
    state.waiters.pop_front();
  }
  std::erase_if(state.waiters, [now](const std::shared_ptr<Waiter>& w) {
    if (w->deadline <= now) {
      w->resume(false);
      return true;
    }
    return false;
  });
  if (state.waiters.empty()) {
    return;
  }
  // Wake for whichever comes first: the window's next chance (a Finish also pumps), the end of a
  // 429 hold, or the earliest deadline.
  SteadyClock::time_point wake = SteadyClock::time_point::max();
  for (const auto& w : state.waiters) {
    wake = std::min(wake, w->deadline);
  }
  if (state.hold_until > now) {
    wake = std::min(wake, state.hold_until);
  } else if (state.window) {
    if (auto chance = state.window->NextChance(now)) {
      wake = std::min(wake, *chance);
    }
  }
  state.timer.expires_at(wake);  // cancels the previous wait, whose handler then does nothing
  state.timer.async_wait([this, account_id](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    std::lock_guard lock(mutex_);
    PumpLocked(account_id, StateLocked(account_id));
  });
}

void ApiLimiter::Release(std::int64_t account_id) {
  std::lock_guard lock(mutex_);
  AccountState& state = StateLocked(account_id);
  if (state.window) {
    state.window->Finish(now_());
  }
  PumpLocked(account_id, state);
}

void ApiLimiter::OnRateLimited(std::int64_t account_id, std::chrono::seconds retry_after) {
  std::lock_guard lock(mutex_);
  AccountState& state = StateLocked(account_id);
  state.hold_until =
      std::max(state.hold_until, now_() + std::max(retry_after, std::chrono::seconds{1}));
}

bool ApiLimiter::OnBlocked(std::int64_t account_id) {
  std::lock_guard lock(mutex_);
  const auto now = now_();
  AccountState& state = StateLocked(account_id);
  const bool new_block = state.blocked_until <= now;
  state.blocked_until = now + settings_.block_cooloff;
  PumpLocked(account_id, state);
  return new_block;
}

std::chrono::seconds ApiLimiter::RetryAfter(std::int64_t account_id) const {
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(account_id);
  if (it == accounts_.end()) {
    return std::chrono::seconds{0};
  }
  return CeilSeconds(std::max(it->second->blocked_until, it->second->hold_until) - now_());
}

std::optional<std::chrono::seconds> ApiLimiter::BlockedFor(std::int64_t account_id) const {
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(account_id);
  const auto now = now_();
  if (it == accounts_.end() || it->second->blocked_until <= now) {
    return std::nullopt;
  }
  return CeilSeconds(it->second->blocked_until - now);
}

}  // namespace amoauth::service
