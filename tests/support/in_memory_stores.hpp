#pragma once

#include <map>
#include <mutex>
#include <set>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::testing {

/// The store ports in memory, with the ports' contracts (versions, single use, CAS).
class InMemoryStores final : public service::ConnectionStore,
                             public service::StateStore,
                             public service::CodeLedger {
 public:
  explicit InMemoryStores(const core::Clock& clock) : clock_(clock) {}

  service::Task<Result<core::Connection>> Upsert(core::Connection c) override {
    std::lock_guard lock(mutex_);
    auto key = std::make_pair(c.account_id, c.client_id);
    auto it = rows_.find(key);
    c.created_at = it == rows_.end() ? clock_.Now() : it->second.created_at;
    c.version = it == rows_.end() ? 1 : it->second.version + 1;
    c.updated_at = clock_.Now();
    rows_[key] = c;
    co_return c;
  }
  service::Task<Result<core::Connection>> Replace(core::Connection c,
                                                  std::int64_t expected) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find({c.account_id, c.client_id});
    if (it == rows_.end()) {
      co_return Fail(Errc::kNotFound);
    }
    if (it->second.version != expected) {
      co_return Fail(Errc::kConflict);
    }
    c.created_at = it->second.created_at;
    c.version = expected + 1;
    c.updated_at = clock_.Now();
    it->second = c;
    co_return c;
  }
  service::Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find({key.account_id, key.client_id});
    co_return it == rows_.end() ? std::nullopt : std::optional(it->second);
  }
  service::Task<Result<std::vector<core::Connection>>> FindByAccount(
      std::int64_t account_id) override {
    std::lock_guard lock(mutex_);
    std::vector<core::Connection> out;
    for (const auto& [k, v] : rows_) {
      if (k.first == account_id) {
        out.push_back(v);
      }
    }
    co_return out;
  }
  service::Task<Result<std::vector<core::Connection>>> List() override {
    std::lock_guard lock(mutex_);
    std::vector<core::Connection> out;
    for (const auto& [k, v] : rows_) {
      out.push_back(v);
    }
    co_return out;
  }

  service::Task<Result<void>> Put(service::PendingState s, core::TimePoint /*now*/) override {
    std::lock_guard lock(mutex_);
    states_[s.state_hash] = s;
    co_return Result<void>{};
  }
  service::Task<Result<std::optional<service::PendingState>>> Take(std::string hash,
                                                                   core::TimePoint now) override {
    std::lock_guard lock(mutex_);
    auto it = states_.find(hash);
    if (it == states_.end()) {
      co_return std::nullopt;
    }
    auto s = it->second;
    states_.erase(it);
    co_return s.expires_at <= now ? std::nullopt : std::optional(s);
  }
  service::Task<Result<bool>> MarkUsed(std::string hash, core::TimePoint /*now*/) override {
    std::lock_guard lock(mutex_);
    co_return used_.insert(hash).second;
  }

  std::size_t PendingStates() {
    std::lock_guard lock(mutex_);
    return states_.size();
  }

 private:
  const core::Clock& clock_;
  std::mutex mutex_;
  std::map<std::pair<std::int64_t, std::string>, core::Connection> rows_;
  std::map<std::string, service::PendingState> states_;
  std::set<std::string> used_;
};

}  // namespace amoauth::testing
