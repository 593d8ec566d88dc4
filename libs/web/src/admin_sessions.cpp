#include "admin_sessions.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "amoauth/crypto/digest.hpp"
#include "amoauth/crypto/random_bytes.hpp"

namespace amoauth::web::admin {

std::string RandomToken() {
  std::array<std::uint8_t, 32> bytes{};
  crypto::FillRandom(bytes);
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    hex += fmt::format("{:02x}", b);
  }
  return hex;
}

Sessions::Sessions(const core::Clock& clock, std::chrono::seconds ttl, std::size_t max_sessions)
    : clock_(clock), ttl_(ttl), max_sessions_(std::max<std::size_t>(max_sessions, 1)) {}

Sessions::Created Sessions::Create() {
  Created created{.id = RandomToken(), .csrf = RandomToken()};
  const core::TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  std::erase_if(by_hash_, [now](const auto& kv) { return kv.second.expires_at <= now; });
  while (by_hash_.size() >= max_sessions_) {
    auto soonest =
        std::min_element(by_hash_.begin(), by_hash_.end(), [](const auto& a, const auto& b) {
          return a.second.expires_at < b.second.expires_at;
        });
    by_hash_.erase(soonest);
  }
  by_hash_[crypto::Sha256Hex(created.id)] = Session{.csrf = created.csrf, .expires_at = now + ttl_};
  return created;
}

std::optional<Sessions::Session> Sessions::Find(std::string_view id) {
  if (id.empty()) {
    return std::nullopt;
  }
  // Looked up by hash: the map's comparisons never touch the secret itself.
  const std::string hash = crypto::Sha256Hex(id);
  const core::TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    return std::nullopt;
  }
  if (it->second.expires_at <= now) {
    by_hash_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void Sessions::Remove(std::string_view id) {
  const std::string hash = crypto::Sha256Hex(id);
  std::lock_guard lock(mutex_);
  by_hash_.erase(hash);
}

LoginLimiter::LoginLimiter(const core::Clock& clock,
                           int max_failures,
                           std::chrono::seconds window,
                           std::size_t max_addresses)
    : clock_(clock),
      max_failures_(max_failures),
      window_(window),
      max_addresses_(std::max<std::size_t>(max_addresses, 1)) {}

std::optional<std::chrono::seconds> LoginLimiter::Refused(const std::string& address) {
  const core::TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto it = counts_.find(address);
  if (it == counts_.end()) {
    return std::nullopt;
  }
  const core::TimePoint ends = it->second.window_start + window_;
  if (ends <= now) {
    counts_.erase(it);
    return std::nullopt;
  }
  if (it->second.failures < max_failures_) {
    return std::nullopt;
  }
  auto wait = std::chrono::ceil<std::chrono::seconds>(ends - now);
  return std::max(wait, std::chrono::seconds{1});
}

void LoginLimiter::Failed(const std::string& address) {
  const core::TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto it = counts_.find(address);
  if (it == counts_.end() || it->second.window_start + window_ <= now) {
    if (it == counts_.end() && counts_.size() >= max_addresses_) {
      auto oldest =
          std::min_element(counts_.begin(), counts_.end(), [](const auto& a, const auto& b) {
            return a.second.window_start < b.second.window_start;
          });
      counts_.erase(oldest);
    }
    counts_[address] = Count{.failures = 1, .window_start = now};
    return;
  }
  ++it->second.failures;
}

void LoginLimiter::Succeeded(const std::string& address) {
  std::lock_guard lock(mutex_);
  counts_.erase(address);
}

}  // namespace amoauth::web::admin
