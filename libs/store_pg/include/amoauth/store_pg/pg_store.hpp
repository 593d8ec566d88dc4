#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::store_pg {

struct PgOptions {
  /// libpq connection URI: postgresql://user@host/db?host=/socket/dir (or key=value pairs).
  std::string url;
  /// Connections and blocking threads (one connection per thread, never shared).
  std::size_t pool_size = 4;
  /// Upper bound on pending OAuth states (as SqliteOptions).
  std::size_t max_pending_states = 10000;
  /// Stamps createdAt/updatedAt of amo_tokens writes and the events they enqueue. nullptr: the
  /// system clock. REQUIRES: outlives the store.
  const core::Clock* clock = nullptr;
  /// How long Open (and a reconnection) waits for the server; libpq counts whole seconds.
  std::chrono::milliseconds connect_timeout{5000};
  /// During a key rotation: the master key being retired (as SqliteOptions::previous_key).
  std::optional<crypto::MasterKey> previous_key;
};

/// PostgreSQL implementation of the stores (docs/storage.md, "PostgreSQL"): the same schema and
/// migrations as SQLite, tokens and secrets sealed the same way, times stored as the same
/// ISO-8601 text. Every libpq call runs on the store's own pool of `pool_size` threads
/// (net::RunBlocking), one connection per thread, reconnected at its next use after it broke.
/// Queues are claimed with FOR UPDATE SKIP LOCKED, leases are conditional upserts, and every
/// amo_tokens write is announced with NOTIFY amoauth_tokens, which Subscribe listens to on a
/// connection and thread of its own.
class PgStore final : public service::Store,
                      public service::ConnectionChanges,
                      public service::KeyRotation {
 public:
  /// Connects, migrates. Blocking: call at start-up. Errors: Errc::kStoreFailure, the reason
  /// logged in words (which host or socket, libpq's message; never the password).
  [[nodiscard]] static Result<std::unique_ptr<PgStore>> Open(PgOptions options,
                                                             crypto::MasterKey key);
  /// Waits for queued work, stops the listener (promptly), closes the connections.
  ~PgStore() override;

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

  // KeyRotation
  service::Task<Result<std::vector<std::pair<std::string, std::int64_t>>>> CountByKeyId() override;
  service::Task<Result<service::KeyRotationBatch>> RotateKeyBatch(std::size_t limit) override;

  [[nodiscard]] int SchemaVersion() const override;
  [[nodiscard]] std::string_view Engine() const override { return "postgresql"; }

  /// Starts the listener thread: LISTEN amoauth_tokens on a connection of its own; changed() for
  /// every committed amo_tokens write by any instance, continuity(false) at once when that
  /// connection drops, continuity(true) once listening again. The first continuity call tells
  /// the state after connecting. At most one listener (a second call is ignored and logged).
  void Subscribe(Listener listener) override;

 private:
  struct Impl;
  explicit PgStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace amoauth::store_pg
