#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "amoauth/core/connection.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// How big the token cache may grow.
struct TokenCacheOptions {
  /// Accounts kept at most; the one cached longest ago makes room for a new one.
  /// REQUIRES: > 0 (a configuration of 0 means "no cache": do not build one).
  std::size_t max_entries = 100'000;
};

/// A per-instance cache in front of amo_tokens, so that GET /v1/accounts/{id}/token and the proxy
/// answer without a database read while another instance's refresh still reaches this one. It is
/// kept coherent in one of two ways, chosen by the constructor:
/// - by the store's change feed (ConnectionChanges: PostgreSQL's LISTEN/NOTIFY), as below;
/// - by a commit counter (CommitCounter: SQLite's PRAGMA data_version), read on every lookup: an
///   entry is served only while the count equals the one read before its row was read, i.e. no
///   write to the database committed since, by any connection of any process. A changed count
///   drops nothing by itself; the entry is read again, and re-tagged, on its next lookup. This
///   mode never serves a row older than the latest commit, so it has no window of staleness.
///
/// It caches what the hot path reads (AccountService::Get): every row of one account, as
/// FindByAccount returns them (an account with no rows is not cached), and answers Find(key)
/// from that account's entry. Writes, ListDue,
/// List and FindByDomain pass through uncached.
///
/// Coherence (docs/architecture.md, "The token cache"):
/// - It serves from memory only while the feed listens. continuity(false) forgets everything and
///   nothing is cached until continuity(true): a change may be missed meanwhile.
/// - A committed write's notification drops its account's entry (changed(key)).
/// - A read that began before a change's notification (or a continuity change) arrived never
///   installs its result: each read takes a ticket (a global epoch and its account's stripe
///   counter) before reading and installs only if neither moved. Notifications come after the
///   commit, so anything installed stale is dropped by the notification that follows.
/// - Upsert and Replace drop the account's entry after the write, whatever its outcome (a lost
///   compare-and-swap means the entry may be stale), so this instance reads its own writes at
///   once without waiting for the feed.
/// - Until a remote change's notification arrives (milliseconds), the previous row may still be
///   served. A caller that acts on a row under the refresh lease must read the store behind the
///   cache (AccountPorts::latest): a stale row there would send a refresh token that another
///   instance already used.
///
/// Thread-safe: one mutex, never held across a suspension point. The feed's callbacks may come
/// from any thread. The feed may outlive the cache (ConnectionChanges has no unsubscribe): the
/// callbacks keep the shared state alive, not the cache.
class CachedConnectionStore final : public ConnectionStore {
 public:
  /// Subscribes to `changes`. `inner` must outlive the cache.
  CachedConnectionStore(ConnectionStore& inner,
                        ConnectionChanges& changes,
                        TokenCacheOptions options = {});
  /// Checks `counter` on every lookup. `inner` and `counter` must outlive the cache.
  CachedConnectionStore(ConnectionStore& inner,
                        CommitCounter& counter,
                        TokenCacheOptions options = {});
  ~CachedConnectionStore() override;
  CachedConnectionStore(const CachedConnectionStore&) = delete;
  CachedConnectionStore& operator=(const CachedConnectionStore&) = delete;

  Task<Result<core::Connection>> Upsert(core::Connection connection,
                                        std::vector<Event> events) override;
  Task<Result<core::Connection>> Replace(core::Connection connection,
                                         std::int64_t expected_version,
                                         std::vector<Event> events) override;
  Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                      std::size_t limit) override;
  Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) override;
  Task<Result<std::vector<core::Connection>>> FindByAccount(std::int64_t account_id) override;
  Task<Result<std::vector<core::Connection>>> List() override;
  Task<Result<std::vector<core::Connection>>> FindByDomain(std::string base_domain) override;

  /// What the cache did so far (status, tests and benchmarks).
  struct Stats {
    std::uint64_t hits = 0;    ///< reads answered from memory
    std::uint64_t misses = 0;  ///< reads that went to the store
    std::size_t entries = 0;   ///< accounts cached now
    bool listening = false;    ///< the feed's last continuity (always true with a counter)
  };
  [[nodiscard]] Stats GetStats() const;

 private:
  struct State;

  ConnectionStore& inner_;
  std::shared_ptr<State> state_;
};

}  // namespace amoauth::service
