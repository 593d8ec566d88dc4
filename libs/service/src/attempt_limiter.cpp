#include "amoauth/service/attempt_limiter.hpp"

#include <algorithm>
#include <utility>

namespace amoauth::service {

AttemptLimiter::AttemptLimiter(AttemptLimits limits, NowFn now)
    : limits_(limits), now_(std::move(now)) {}

void AttemptLimiter::Prune(Times& times, SteadyClock::time_point now) const {
  while (!times.empty() && times.front() + limits_.window <= now) {
    times.pop_front();
  }
}

std::optional<std::chrono::seconds> AttemptLimiter::BlockedLocked(
    const Times& times, SteadyClock::time_point now) const {
  if (times.size() < limits_.max_attempts) {
    return std::nullopt;
  }
  // Free again once the oldest counted attempt leaves the window; rounded up to whole seconds.
  const auto left = times.front() + limits_.window - now;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(left);
  return std::max(seconds, std::chrono::seconds{1});
}

std::optional<std::chrono::seconds> AttemptLimiter::Blocked(std::string_view key) const {
  if (limits_.max_attempts == 0) {
    return std::nullopt;
  }
  const auto now = now_();
  const std::lock_guard lock(mutex_);
  auto it = attempts_.find(std::string(key));
  if (it == attempts_.end()) {
    return std::nullopt;
  }
  Times times = it->second;
  Prune(times, now);
  return BlockedLocked(times, now);
}

bool AttemptLimiter::MayBlockAnyone() const {
  if (limits_.max_attempts == 0) {
    return false;
  }
  const SteadyClock::rep until = no_block_from_.load(std::memory_order_acquire);
  return now_().time_since_epoch().count() < until;
}

void AttemptLimiter::NoteLimitReachedLocked(SteadyClock::time_point now) {
  // A key at the limit is free again once its oldest counted attempt (at or before `now`) leaves
  // the window: by now + window at the latest.
  const SteadyClock::rep until = (now + limits_.window).time_since_epoch().count();
  if (until > no_block_from_.load(std::memory_order_relaxed)) {
    no_block_from_.store(until, std::memory_order_release);
  }
}

AttemptLimiter::Times& AttemptLimiter::EntryLocked(std::string_view key,
                                                   SteadyClock::time_point now) {
  std::string name(key);
  if (auto it = attempts_.find(name); it != attempts_.end()) {
    Prune(it->second, now);
    return it->second;
  }
  if (attempts_.size() >= std::max<std::size_t>(limits_.max_keys, 1)) {
    for (auto it = attempts_.begin(); it != attempts_.end();) {
      Prune(it->second, now);
      it = it->second.empty() ? attempts_.erase(it) : std::next(it);
    }
    if (attempts_.size() >= std::max<std::size_t>(limits_.max_keys, 1)) {
      auto stalest =
          std::min_element(attempts_.begin(), attempts_.end(), [](const auto& a, const auto& b) {
            return a.second.back() < b.second.back();
          });
      attempts_.erase(stalest);
    }
  }
  return attempts_[std::move(name)];
}

void AttemptLimiter::Record(std::string_view key) {
  if (limits_.max_attempts == 0) {
    return;
  }
  const auto now = now_();
  const std::lock_guard lock(mutex_);
  Times& times = EntryLocked(key, now);
  times.push_back(now);
  while (times.size() > limits_.max_attempts) {
    times.pop_front();
  }
  if (times.size() == limits_.max_attempts) {
    NoteLimitReachedLocked(now);
  }
}

std::optional<std::chrono::seconds> AttemptLimiter::TryTake(std::string_view key) {
  if (limits_.max_attempts == 0) {
    return std::nullopt;
  }
  const auto now = now_();
  const std::lock_guard lock(mutex_);
  Times& times = EntryLocked(key, now);
  if (auto blocked = BlockedLocked(times, now)) {
    return blocked;
  }
  times.push_back(now);
  if (times.size() == limits_.max_attempts) {
    NoteLimitReachedLocked(now);
  }
  return std::nullopt;
}

}  // namespace amoauth::service
