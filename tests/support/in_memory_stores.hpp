#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::testing {

/// The store ports in memory, with the ports' contracts (versions, single use, CAS, events
/// committed with their row, exclusive leases, outbox claims) as libs/store_sqlite keeps them.
/// Differences: times are kept exactly (SQLite stores whole seconds), and delivered events are
/// never pruned, so EnqueuedEvents() shows everything a test caused.
/// Thread-safe; the mutex is never held across a suspension point (no method awaits).
class InMemoryStores final : public service::ConnectionStore,
                             public service::StateStore,
                             public service::CodeLedger,
                             public service::RefreshLeases,
                             public service::EventOutbox,
                             public service::IntegrationStore,
                             public service::CodeQueue,
                             public service::ExchangeQuota {
 public:
  explicit InMemoryStores(const core::Clock& clock) : clock_(clock) {}

  // ---- ConnectionStore --------------------------------------------------------------------------

  service::Task<Result<core::Connection>> Upsert(core::Connection c,
                                                 std::vector<service::Event> events) override {
    std::lock_guard lock(mutex_);
    auto key = std::make_pair(c.account_id, c.client_id);
    auto it = rows_.find(key);
    const core::TimePoint now = clock_.Now();
    c.created_at = it == rows_.end() ? now : it->second.created_at;
    c.version = it == rows_.end() ? 1 : it->second.version + 1;
    c.updated_at = now;
    rows_[key] = c;
    EnqueueLocked(std::move(events), now);
    co_return c;
  }
  service::Task<Result<core::Connection>> Replace(core::Connection c,
                                                  std::int64_t expected,
                                                  std::vector<service::Event> events) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find({c.account_id, c.client_id});
    if (it == rows_.end()) {
      co_return Fail(Errc::kNotFound);
    }
    if (it->second.version != expected) {
      co_return Fail(Errc::kConflict);  // a lost swap writes no events
    }
    const core::TimePoint now = clock_.Now();
    c.created_at = it->second.created_at;
    c.version = expected + 1;
    c.updated_at = now;
    it->second = c;
    EnqueueLocked(std::move(events), now);
    co_return c;
  }
  service::Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                               std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<core::Connection> out;
    for (const auto& [k, v] : rows_) {
      if (v.status == core::ConnectionStatus::kActive && v.next_refresh_at != core::TimePoint{} &&
          v.next_refresh_at <= now) {
        out.push_back(v);
      }
    }
    // Earliest first; ties in key order, as the SQLite index gives them.
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.next_refresh_at < b.next_refresh_at;
    });
    if (out.size() > limit) {
      out.resize(limit);
    }
    co_return out;
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
  service::Task<Result<std::vector<core::Connection>>> FindByDomain(
      std::string base_domain) override {
    std::lock_guard lock(mutex_);
    std::vector<core::Connection> out;
    for (const auto& [k, v] : rows_) {
      if (v.base_domain == base_domain) {
        out.push_back(v);
      }
    }
    co_return out;
  }

  // ---- StateStore, CodeLedger -------------------------------------------------------------------

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
  service::Task<Result<std::optional<service::PendingState>>> Peek(std::string hash,
                                                                   core::TimePoint now) override {
    std::lock_guard lock(mutex_);
    auto it = states_.find(hash);
    if (it == states_.end() || it->second.expires_at <= now) {
      co_return std::nullopt;
    }
    co_return std::optional(it->second);
  }
  service::Task<Result<bool>> MarkUsed(std::string hash, core::TimePoint /*now*/) override {
    std::lock_guard lock(mutex_);
    co_return used_.insert(hash).second;
  }

  // ---- IntegrationStore -------------------------------------------------------------------------

  service::Task<Result<void>> AddIntegration(service::ExternalIntegration i) override {
    std::lock_guard lock(mutex_);
    const bool state_known =
        std::any_of(integrations_.begin(), integrations_.end(), [&](const auto& kv) {
          return kv.second.state_hash == i.state_hash;
        });
    if (state_known || integrations_.contains(i.client_id)) {
      co_return Fail(Errc::kSecretsAlreadyReceived);
    }
    integrations_.emplace(i.client_id, i);
    co_return Result<void>{};
  }
  service::Task<Result<std::optional<service::ExternalIntegration>>> FindIntegration(
      std::string client_id) override {
    std::lock_guard lock(mutex_);
    auto it = integrations_.find(client_id);
    co_return it == integrations_.end() ? std::nullopt : std::optional(it->second);
  }
  service::Task<Result<std::optional<service::ExternalIntegration>>> FindIntegrationByState(
      std::string state_hash) override {
    std::lock_guard lock(mutex_);
    for (const auto& [id, i] : integrations_) {
      if (i.state_hash == state_hash) {
        co_return std::optional(i);
      }
    }
    co_return std::nullopt;
  }
  service::Task<Result<std::vector<service::ExternalIntegration>>> ListIntegrations() override {
    std::lock_guard lock(mutex_);
    std::vector<service::ExternalIntegration> out;
    for (const auto& [id, i] : integrations_) {
      out.push_back(i);
    }
    co_return out;
  }
  service::Task<Result<std::size_t>> ForgetUnusedIntegrations(
      core::TimePoint created_before) override {
    std::lock_guard lock(mutex_);
    std::size_t forgotten = 0;
    for (auto it = integrations_.begin(); it != integrations_.end();) {
      const bool used = std::any_of(rows_.begin(), rows_.end(), [&](const auto& row) {
        return row.first.second == it->first;
      });
      if (!used && it->second.created_at < created_before) {
        it = integrations_.erase(it);
        ++forgotten;
      } else {
        ++it;
      }
    }
    co_return forgotten;
  }

  // ---- RefreshLeases ----------------------------------------------------------------------------

  service::Task<Result<bool>> TryAcquire(core::AccountKey key,
                                         std::string holder,
                                         core::TimePoint now,
                                         core::TimePoint until) override {
    std::lock_guard lock(mutex_);
    auto [it, inserted] =
        leases_.try_emplace({key.account_id, key.client_id}, Lease{holder, until});
    if (!inserted) {
      if (it->second.holder != holder && it->second.until > now) {
        co_return false;  // held by someone else, and not yet ended
      }
      it->second = Lease{std::move(holder), until};  // taken over, or extended
    }
    co_return true;
  }
  service::Task<Result<void>> Release(core::AccountKey key, std::string holder) override {
    std::lock_guard lock(mutex_);
    auto it = leases_.find({key.account_id, key.client_id});
    if (it != leases_.end() && it->second.holder == holder) {
      leases_.erase(it);
    }
    co_return Result<void>{};
  }
  service::Task<Result<std::optional<std::string>>> Holder(core::AccountKey key) override {
    co_return LeaseHolder(key);
  }
  service::Task<Result<bool>> TakeOver(core::AccountKey key,
                                       std::string gone,
                                       std::string holder,
                                       core::TimePoint until) override {
    std::lock_guard lock(mutex_);
    auto it = leases_.find({key.account_id, key.client_id});
    if (it == leases_.end() || (it->second.holder != gone && it->second.holder != holder)) {
      co_return false;
    }
    it->second = Lease{std::move(holder), until};
    co_return true;
  }
  service::Task<Result<std::vector<core::Connection>>> ClaimDueRefreshes(
      core::TimePoint now, std::string holder, core::TimePoint until, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<core::Connection> out;
    for (const auto& [k, v] : rows_) {
      if (v.status != core::ConnectionStatus::kActive || v.next_refresh_at == core::TimePoint{} ||
          v.next_refresh_at > now) {
        continue;
      }
      auto lease = leases_.find(k);
      if (lease != leases_.end() && lease->second.holder != holder && lease->second.until > now) {
        continue;  // held by someone else, and not yet ended
      }
      out.push_back(v);
    }
    // As ListDue: earliest first, ties in key order.
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.next_refresh_at < b.next_refresh_at;
    });
    if (out.size() > limit) {
      out.resize(limit);
    }
    for (const auto& c : out) {
      leases_[{c.account_id, c.client_id}] = Lease{holder, until};
    }
    co_return out;
  }

  // ---- EventOutbox ------------------------------------------------------------------------------

  service::Task<Result<void>> Enqueue(std::vector<service::Event> events,
                                      core::TimePoint now) override {
    std::lock_guard lock(mutex_);
    EnqueueLocked(std::move(events), now);
    co_return Result<void>{};
  }
  service::Task<Result<std::vector<service::OutboxEntry>>> ClaimDue(core::TimePoint now,
                                                                    core::TimePoint claim_until,
                                                                    std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<service::OutboxEntry> claimed;
    for (auto& [id, slot] : outbox_) {  // std::map: oldest (lowest id) first
      if (claimed.size() >= limit) {
        break;
      }
      if (slot.delivered_at || slot.entry.next_attempt_at > now) {
        continue;
      }
      ++slot.entry.attempts;
      slot.entry.next_attempt_at = claim_until;  // nobody else claims it meanwhile
      claimed.push_back(slot.entry);
    }
    co_return claimed;
  }
  service::Task<Result<void>> MarkDelivered(std::int64_t id, core::TimePoint now) override {
    std::lock_guard lock(mutex_);
    auto it = outbox_.find(id);
    if (it != outbox_.end() && !it->second.delivered_at) {
      it->second.delivered_at = now;
    }
    co_return Result<void>{};
  }
  service::Task<Result<void>> MarkFailed(std::int64_t id,
                                         std::string error,
                                         core::TimePoint next_attempt_at) override {
    std::lock_guard lock(mutex_);
    auto it = outbox_.find(id);
    // A delivered entry stays delivered, as in SQLite: a late failure report changes nothing.
    if (it != outbox_.end() && !it->second.delivered_at) {
      it->second.entry.last_error = std::move(error);
      it->second.entry.next_attempt_at = next_attempt_at;
    }
    co_return Result<void>{};
  }
  service::Task<Result<std::size_t>> CountPending() override {
    std::lock_guard lock(mutex_);
    co_return PendingLocked();
  }

  // ---- CodeQueue, ExchangeQuota -----------------------------------------------------------------

  service::Task<Result<bool>> Enqueue(service::QueuedCode code) override {
    std::lock_guard lock(mutex_);
    const std::string hash = crypto::Sha256Hex(code.code.Reveal());
    for (const auto& [id, queued] : codes_) {
      if (crypto::Sha256Hex(queued.code.Reveal()) == hash) {
        co_return false;
      }
    }
    code.id = next_code_id_++;
    code.attempts = 0;
    codes_.emplace(code.id, std::move(code));
    co_return true;
  }
  service::Task<Result<std::vector<service::QueuedCode>>> ClaimDueCodes(
      core::TimePoint now, core::TimePoint claim_until, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    std::vector<service::QueuedCode> claimed;
    for (auto& [id, code] : codes_) {  // lowest id (oldest) first
      if (claimed.size() >= limit) {
        break;
      }
      if (code.next_attempt_at > now) {
        continue;
      }
      ++code.attempts;
      code.next_attempt_at = claim_until;
      claimed.push_back(code);
    }
    co_return claimed;
  }
  service::Task<Result<void>> Finish(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    codes_.erase(id);
    co_return Result<void>{};
  }
  service::Task<Result<void>> Retry(std::int64_t id,
                                    std::string error,
                                    core::TimePoint next_attempt_at) override {
    std::lock_guard lock(mutex_);
    if (auto it = codes_.find(id); it != codes_.end()) {
      it->second.last_error = std::move(error);
      it->second.next_attempt_at = next_attempt_at;
    }
    co_return Result<void>{};
  }
  service::Task<Result<void>> GiveUp(std::int64_t id,
                                     std::vector<service::Event> events,
                                     core::TimePoint now) override {
    std::lock_guard lock(mutex_);
    if (codes_.erase(id) == 1) {
      EnqueueLocked(std::move(events), now);
    }
    co_return Result<void>{};
  }
  service::Task<Result<std::size_t>> CountQueued() override {
    std::lock_guard lock(mutex_);
    co_return codes_.size();
  }
  service::Task<Result<std::optional<core::TimePoint>>> TryTake(std::string subject_hash,
                                                                core::TimePoint now,
                                                                core::Seconds interval) override {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = quota_.try_emplace(subject_hash, now);
    if (!inserted) {
      if (it->second + interval > now) {
        co_return std::optional<core::TimePoint>(it->second + interval);
      }
      it->second = now;
    }
    co_return std::optional<core::TimePoint>();
  }

  service::Task<Result<void>> GiveBack(std::string subject_hash,
                                       core::TimePoint taken_at) override {
    std::lock_guard lock(mutex_);
    if (auto it = quota_.find(subject_hash); it != quota_.end() && it->second == taken_at) {
      quota_.erase(it);
    }
    co_return Result<void>{};
  }

  // ---- for tests --------------------------------------------------------------------------------

  /// The codes still queued, oldest first, as the worker would see them.
  std::vector<service::QueuedCode> QueuedCodes() {
    std::lock_guard lock(mutex_);
    std::vector<service::QueuedCode> out;
    for (const auto& [id, code] : codes_) {
      out.push_back(code);
    }
    return out;
  }

  std::size_t PendingStates() {
    std::lock_guard lock(mutex_);
    return states_.size();
  }

  /// Every event ever enqueued (by Upsert, a successful Replace, or Enqueue), oldest first,
  /// delivered or not.
  std::vector<service::Event> EnqueuedEvents() {
    std::lock_guard lock(mutex_);
    std::vector<service::Event> out;
    for (const auto& [id, slot] : outbox_) {
      out.push_back({slot.entry.type, slot.entry.body});
    }
    return out;
  }

  /// Outbox entries not yet delivered, oldest first, with their attempts and last errors.
  std::vector<service::OutboxEntry> PendingEntries() {
    std::lock_guard lock(mutex_);
    std::vector<service::OutboxEntry> out;
    for (const auto& [id, slot] : outbox_) {
      if (!slot.delivered_at) {
        out.push_back(slot.entry);
      }
    }
    return out;
  }

  /// Who holds the lease of `key` (whether or not it has ended), if anyone.
  std::optional<std::string> LeaseHolder(const core::AccountKey& key) {
    std::lock_guard lock(mutex_);
    auto it = leases_.find({key.account_id, key.client_id});
    if (it == leases_.end()) {
      return std::nullopt;
    }
    return it->second.holder;
  }

 private:
  struct Lease {
    std::string holder;
    core::TimePoint until{};
  };
  struct OutboxSlot {
    service::OutboxEntry entry;
    std::optional<core::TimePoint> delivered_at;
  };

  // REQUIRES: mutex_ held.
  void EnqueueLocked(std::vector<service::Event> events, core::TimePoint now) {
    for (auto& event : events) {
      if (!event.deliver) {
        continue;  // the account's history only (not kept here)
      }
      OutboxSlot slot;
      slot.entry.id = next_event_id_++;
      slot.entry.type = std::move(event.type);
      slot.entry.body = std::move(event.body);
      slot.entry.created_at = now;
      slot.entry.next_attempt_at = now;  // due at once
      outbox_.emplace(slot.entry.id, std::move(slot));
    }
  }
  // REQUIRES: mutex_ held.
  std::size_t PendingLocked() const {
    return static_cast<std::size_t>(std::count_if(
        outbox_.begin(), outbox_.end(), [](const auto& kv) { return !kv.second.delivered_at; }));
  }

  const core::Clock& clock_;
  std::mutex mutex_;
  std::map<std::pair<std::int64_t, std::string>, core::Connection> rows_;
  std::map<std::string, service::PendingState> states_;
  std::map<std::string, service::ExternalIntegration> integrations_;
  std::set<std::string> used_;
  std::map<std::pair<std::int64_t, std::string>, Lease> leases_;
  std::map<std::int64_t, OutboxSlot> outbox_;
  std::int64_t next_event_id_ = 1;
  std::map<std::int64_t, service::QueuedCode> codes_;
  std::int64_t next_code_id_ = 1;
  std::map<std::string, core::TimePoint> quota_;
};

}  // namespace amoauth::testing
