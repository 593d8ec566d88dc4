#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::store_sqlite {

namespace detail {
struct StoreParts;
}  // namespace detail

struct SqliteOptions {
  /// Database file; its directory must exist. ":memory:" is refused (each connection would see
  /// its own database).
  std::string path;
  /// Connections and blocking threads (one connection per thread, never shared).
  std::size_t threads = 4;
  /// Upper bound on pending OAuth states (GET / mints one per page view).
  std::size_t max_pending_states = 10000;
  /// Stamps createdAt/updatedAt of amo_tokens writes and createdAt of the events they enqueue.
  /// nullptr: the system clock. REQUIRES: outlives the store.
  const core::Clock* clock = nullptr;
  /// During a key rotation: the master key being retired. Rows its id names are read with it;
  /// every write uses the current key (docs/adr/0005-key-rotation.md).
  std::optional<crypto::MasterKey> previous_key;
};

/// SQLite implementation of the stores (WAL mode, versioned migrations, docs/storage.md).
/// Tokens and secrets are sealed with AES-256-GCM under the master key; the key id is stored
/// beside them. All SQLite calls run on the store's own bounded thread pool (net::RunBlocking).
/// Leases, outbox claims, states and codes hold across processes sharing the file: each rests
/// on one SQLite write transaction.
///
/// It is also a CommitCounter: every commit — by the pool's connections or another process's —
/// moves it. It runs on the caller's thread (an I/O thread, for the token cache), not on the
/// pool, and reads SQLite's WAL-index header in shared memory: no system call, no lock of
/// SQLite's. Where that header cannot be read it falls back to PRAGMA data_version (a read
/// transaction without a busy handler that reads no table).
class SqliteStore final : public service::Store,
                          public service::CommitCounter,
                          public service::KeyRotation {
 public:
  /// Opens (creating if needed) and migrates the database. Blocking: call at start-up.
  /// Errors: Errc::kStoreFailure with the reason logged.
  [[nodiscard]] static Result<std::unique_ptr<SqliteStore>> Open(SqliteOptions options,
                                                                 crypto::MasterKey key);
  ~SqliteStore() override;

  service::Task<Result<core::Connection>> Upsert(core::Connection connection,
                                                 std::vector<service::Event> events) override;
  service::Task<Result<core::Connection>> Replace(core::Connection connection,
                                                  std::int64_t expected_version,
                                                  std::vector<service::Event> events) override;
  service::Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                               std::size_t limit) override;
  service::Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) override;
  service::Task<Result<std::vector<core::Connection>>> FindByAccount(
      std::int64_t account_id) override;
  service::Task<Result<std::vector<core::Connection>>> List() override;
  service::Task<Result<std::vector<core::Connection>>> FindByDomain(
      std::string base_domain) override;

  service::Task<Result<void>> Put(service::PendingState state, core::TimePoint now) override;
  service::Task<Result<std::optional<service::PendingState>>> Take(std::string state_hash,
                                                                   core::TimePoint now) override;
  service::Task<Result<std::optional<service::PendingState>>> Peek(std::string state_hash,
                                                                   core::TimePoint now) override;

  service::Task<Result<void>> AddIntegration(service::ExternalIntegration integration) override;
  service::Task<Result<std::optional<service::ExternalIntegration>>> FindIntegration(
      std::string client_id) override;
  service::Task<Result<std::optional<service::ExternalIntegration>>> FindIntegrationByState(
      std::string state_hash) override;
  service::Task<Result<std::vector<service::ExternalIntegration>>> ListIntegrations() override;
  service::Task<Result<std::size_t>> ForgetUnusedIntegrations(
      core::TimePoint created_before) override;

  service::Task<Result<bool>> MarkUsed(std::string code_hash, core::TimePoint now) override;

  service::Task<Result<bool>> TryAcquire(core::AccountKey key,
                                         std::string holder,
                                         core::TimePoint now,
                                         core::TimePoint until) override;
  service::Task<Result<void>> Release(core::AccountKey key, std::string holder) override;
  service::Task<Result<std::optional<std::string>>> Holder(core::AccountKey key) override;
  service::Task<Result<bool>> TakeOver(core::AccountKey key,
                                       std::string gone,
                                       std::string holder,
                                       core::TimePoint until) override;
  service::Task<Result<std::vector<core::Connection>>> ClaimDueRefreshes(
      core::TimePoint now, std::string holder, core::TimePoint until, std::size_t limit) override;

  service::Task<Result<void>> Enqueue(std::vector<service::Event> events,
                                      core::TimePoint now) override;
  service::Task<Result<std::vector<service::OutboxEntry>>> ClaimDue(core::TimePoint now,
                                                                    core::TimePoint claim_until,
                                                                    std::size_t limit) override;
  service::Task<Result<void>> MarkDelivered(std::int64_t id, core::TimePoint now) override;
  service::Task<Result<void>> MarkFailed(std::int64_t id,
                                         std::string error,
                                         core::TimePoint next_attempt_at) override;
  service::Task<Result<std::size_t>> CountPending() override;

  // StoreStatistics
  service::Task<Result<service::ConnectionCensus>> CountConnections() override;

  // AccountHistory
  service::Task<Result<std::vector<service::AccountEvent>>> ListAccountEvents(
      std::int64_t account_id, std::size_t limit) override;

  // CodeQueue and ExchangeQuota live in code_queue.cpp and exchange_quota.cpp.
  service::Task<Result<bool>> Enqueue(service::QueuedCode code) override;
  service::Task<Result<std::vector<service::QueuedCode>>> ClaimDueCodes(core::TimePoint now,
                                                                        core::TimePoint claim_until,
                                                                        std::size_t limit) override;
  service::Task<Result<void>> Finish(std::int64_t id) override;
  service::Task<Result<void>> Retry(std::int64_t id,
                                    std::string error,
                                    core::TimePoint next_attempt_at) override;
  service::Task<Result<void>> GiveUp(std::int64_t id,
                                     std::vector<service::Event> events,
                                     core::TimePoint now) override;
  service::Task<Result<std::size_t>> CountQueued() override;

  service::Task<Result<std::optional<core::TimePoint>>> TryTake(std::string subject_hash,
                                                                core::TimePoint now,
                                                                core::Seconds interval) override;
  service::Task<Result<void>> GiveBack(std::string subject_hash, core::TimePoint taken_at) override;

  [[nodiscard]] std::optional<std::uint64_t> CommitCount() noexcept override;

  // KeyRotation
  service::Task<Result<std::vector<std::pair<std::string, std::int64_t>>>> CountByKeyId() override;
  service::Task<Result<service::KeyRotationBatch>> RotateKeyBatch(std::size_t limit) override;

  [[nodiscard]] int SchemaVersion() const override;
  [[nodiscard]] std::string_view Engine() const override { return "sqlite"; }

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  /// The pool, connections, key and logger, for the stores in their own files.
  [[nodiscard]] detail::StoreParts Parts() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace amoauth::store_sqlite
