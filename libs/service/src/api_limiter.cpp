#include "amoauth/service/api_limiter.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace amoauth::service {

namespace {
std::chrono::seconds CeilSeconds(std::chrono::nanoseconds d) {
  return std::chrono::ceil<std::chrono::seconds>(std::max(d, std::chrono::nanoseconds{0}));
}
}  // namespace

ApiLimiter::ApiLimiter(LimiterSettings settings, NowFn now)
    : settings_(settings), now_(std::move(now)) {}

ApiLimiter::AccountState& ApiLimiter::StateLocked(std::int64_t account_id) {
  AccountState& state = accounts_[account_id];
  if (!state.window && settings_.rps > 0) {
    state.window.emplace(settings_.rps, settings_.window);
  }
  return state;
}

Task<Result<void>> ApiLimiter::Acquire(std::int64_t account_id) {
  SteadyClock::time_point at;
  {
    std::lock_guard lock(mutex_);
    const auto now = now_();
    AccountState& state = StateLocked(account_id);
    if (state.blocked_until > now) {
      co_return Fail(Errc::kAmoBlocked);
    }
    if (!state.window) {
      if (state.hold_until <= now) {
        co_return Result<void>{};
      }
      if (state.hold_until - now > settings_.max_wait) {
        co_return Fail(Errc::kThrottled);
      }
      at = state.hold_until;
    } else {
      auto booked = state.window->Reserve(now, settings_.max_wait, state.hold_until);
      if (!booked) {
        co_return Fail(Errc::kThrottled);
      }
      at = *booked;
    }
  }
  if (at > now_()) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_at(at);
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
  co_return Result<void>{};
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
  return new_block;
}

std::chrono::seconds ApiLimiter::RetryAfter(std::int64_t account_id) const {
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(account_id);
  if (it == accounts_.end()) {
    return std::chrono::seconds{0};
  }
  const auto now = now_();
  return CeilSeconds(std::max(it->second.blocked_until, it->second.hold_until) - now);
}

std::optional<std::chrono::seconds> ApiLimiter::BlockedFor(std::int64_t account_id) const {
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(account_id);
  const auto now = now_();
  if (it == accounts_.end() || it->second.blocked_until <= now) {
    return std::nullopt;
  }
  return CeilSeconds(it->second.blocked_until - now);
}

}  // namespace amoauth::service
