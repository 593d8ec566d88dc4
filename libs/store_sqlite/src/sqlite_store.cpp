#include "amoauth/store_sqlite/sqlite_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/platform.hpp"
#include "amoauth/net/run_blocking.hpp"
#include "amoauth/store_schema/stored_format.hpp"
#include "commit_probes.hpp"
#include "migrations.hpp"
#include "sqlite_handle.hpp"
#include "store_parts.hpp"

namespace amoauth::store_sqlite {

namespace {

using core::FormatIsoTime;
using core::ParseIsoTime;
using detail::Blob;
using detail::Database;
using detail::NullableText;
using detail::Statement;
using detail::Transaction;
using store_schema::CeilToSeconds;
using store_schema::FloorToSeconds;
using store_schema::kCodeLifetime;
using store_schema::kDeliveredRetention;
using store_schema::TokenAad;
using store_schema::TokenKind;

/// A nullable time column: "never" (core::TimePoint{}) is NULL. Rounded down like every time.
detail::NullableText NullableTime(core::TimePoint t) {
  const core::TimePoint stored = FloorToSeconds(t);
  if (stored == core::TimePoint{}) {
    return {};
  }
  return {FormatIsoTime(stored)};
}

/// Reads a column written by NullableTime: NULL is core::TimePoint{}; nullopt if malformed.
std::optional<core::TimePoint> ReadNullableTime(const detail::Statement& row, int column) {
  if (row.IsNull(column)) {
    return core::TimePoint{};
  }
  return ParseIsoTime(row.Text(column));
}

/// The "store" logger: the application's if it registered one, else a copy of the default
/// logger under that name (not registered, so the application may still register its own).
std::shared_ptr<spdlog::logger> StoreLogger() {
  if (auto existing = spdlog::get("store")) {
    return existing;
  }
  return spdlog::default_logger()->clone("store");
}

// Every amo_tokens query reads the columns in this order (see ReadConnection).
constexpr std::string_view kFindSql = R"sql(
SELECT "accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId",
       "accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt",
       "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt"
FROM amo_tokens WHERE "accountId" = ?1 AND "clientId" = ?2)sql";

constexpr std::string_view kFindByAccountSql = R"sql(
SELECT "accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId",
       "accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt",
       "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt"
FROM amo_tokens WHERE "accountId" = ?1 ORDER BY "clientId")sql";

constexpr std::string_view kListSql = R"sql(
SELECT "accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId",
       "accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt",
       "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt"
FROM amo_tokens ORDER BY "accountId", "clientId")sql";

// Served by the amo_tokens_base_domain index.
constexpr std::string_view kFindByDomainSql = R"sql(
SELECT "accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId",
       "accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt",
       "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt"
FROM amo_tokens WHERE "baseDomain" = ?1 ORDER BY "accountId", "clientId")sql";

// ?1 is the active status. The amo_tokens_due index (status, nextRefreshAt, accountId, clientId)
// answers this with one range scan in index order: no sort, whatever the table size. NULL
// ("never") fails `<=`, so unscheduled rows drop out by themselves. INDEXED BY is SQLite's
// assertion that the plan stays so: should the index go, the statement fails instead of
// silently scanning 100,000 rows on every scheduler tick.
constexpr std::string_view kListDueSql = R"sql(
SELECT "accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId",
       "accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt",
       "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt"
FROM amo_tokens INDEXED BY amo_tokens_due
WHERE "status" = ?1 AND "nextRefreshAt" <= ?2
ORDER BY "nextRefreshAt", "accountId", "clientId"
LIMIT ?3)sql";

// Writes bind ?1…?17 in the same order (BindConnection); ?18 is Replace's expected version.
// One statement: the row's old version and createdAt are read under the same write lock.
constexpr std::string_view kUpsertSql = R"sql(
INSERT INTO amo_tokens ("accountId", "clientId", "baseDomain", "apiDomain", "userId", "status",
                        "keyId", "accessToken", "refreshToken", "expiresAt", "version",
                        "createdAt", "updatedAt", "lastRefreshAt", "nextRefreshAt",
                        "refreshFailures", "lastError", "lastErrorAt")
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
ON CONFLICT ("accountId", "clientId") DO UPDATE SET
  "baseDomain" = excluded."baseDomain",
  "apiDomain" = excluded."apiDomain",
  "userId" = excluded."userId",
  "status" = excluded."status",
  "keyId" = excluded."keyId",
  "accessToken" = excluded."accessToken",
  "refreshToken" = excluded."refreshToken",
  "expiresAt" = excluded."expiresAt",
  "version" = amo_tokens."version" + 1,
  "updatedAt" = excluded."updatedAt",
  "lastRefreshAt" = excluded."lastRefreshAt",
  "nextRefreshAt" = excluded."nextRefreshAt",
  "refreshFailures" = excluded."refreshFailures",
  "lastError" = excluded."lastError",
  "lastErrorAt" = excluded."lastErrorAt"
RETURNING "version", "createdAt")sql";

// ?11 (createdAt) is bound but unused: an existing row keeps its creation time.
constexpr std::string_view kReplaceSql = R"sql(
UPDATE amo_tokens SET
  "baseDomain" = ?3,
  "apiDomain" = ?4,
  "userId" = ?5,
  "status" = ?6,
  "keyId" = ?7,
  "accessToken" = ?8,
  "refreshToken" = ?9,
  "expiresAt" = ?10,
  "version" = "version" + 1,
  "updatedAt" = ?12,
  "lastRefreshAt" = ?13,
  "nextRefreshAt" = ?14,
  "refreshFailures" = ?15,
  "lastError" = ?16,
  "lastErrorAt" = ?17
WHERE "accountId" = ?1 AND "clientId" = ?2 AND "version" = ?18
RETURNING "version", "createdAt")sql";

constexpr std::string_view kExistsSql =
    R"sql(SELECT 1 FROM amo_tokens WHERE "accountId" = ?1 AND "clientId" = ?2)sql";

// ---- refresh_leases -----------------------------------------------------------------------------

// One statement, so one write transaction: SQLite lets one writer at a time into the file, so of
// any number of threads or processes racing for a lease exactly one inserts it or takes it over;
// the others' DO UPDATE is vetoed by the WHERE and RETURNING gives them no row.
// ?1 ?2 key, ?3 holder, ?4 until, ?5 now.
constexpr std::string_view kAcquireLeaseSql = R"sql(
INSERT INTO refresh_leases ("accountId", "clientId", "holder", "expiresAt")
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT ("accountId", "clientId") DO UPDATE SET
  "holder" = excluded."holder",
  "expiresAt" = excluded."expiresAt"
WHERE refresh_leases."holder" = excluded."holder" OR refresh_leases."expiresAt" <= ?5
RETURNING "holder")sql";

constexpr std::string_view kReleaseLeaseSql = R"sql(
DELETE FROM refresh_leases WHERE "accountId" = ?1 AND "clientId" = ?2 AND "holder" = ?3)sql";

constexpr std::string_view kLeaseHolderSql = R"sql(
SELECT "holder" FROM refresh_leases WHERE "accountId" = ?1 AND "clientId" = ?2)sql";

// From a holder known dead, or our own already (a second run of the same take-over).
constexpr std::string_view kTakeOverLeaseSql = R"sql(
UPDATE refresh_leases SET "holder" = ?4, "expiresAt" = ?5
WHERE "accountId" = ?1 AND "clientId" = ?2 AND "holder" IN (?3, ?4))sql";

// The scheduler's candidates: ListDue's range scan of amo_tokens_due (INDEXED BY, as there) less
// the rows whose lease another holder still holds. Run inside BEGIN IMMEDIATE with the lease
// upserts that follow: the file's write lock makes read and claim one step, so two claimers,
// threads or processes, never see the same free lease. ?1 active status, ?2 now, ?3 holder,
// ?4 limit.
constexpr std::string_view kDueWithFreeLeaseSql = R"sql(
SELECT t."accountId", t."clientId", t."baseDomain", t."apiDomain", t."userId", t."status",
       t."keyId", t."accessToken", t."refreshToken", t."expiresAt", t."version", t."createdAt",
       t."updatedAt", t."lastRefreshAt", t."nextRefreshAt", t."refreshFailures", t."lastError",
       t."lastErrorAt"
FROM amo_tokens AS t INDEXED BY amo_tokens_due
LEFT JOIN refresh_leases AS l ON l."accountId" = t."accountId" AND l."clientId" = t."clientId"
WHERE t."status" = ?1 AND t."nextRefreshAt" <= ?2
  AND (l."holder" IS NULL OR l."holder" = ?3 OR l."expiresAt" <= ?2)
ORDER BY t."nextRefreshAt", t."accountId", t."clientId"
LIMIT ?4)sql";

// ---- webhook_outbox -----------------------------------------------------------------------------

// ?1 type, ?2 body, ?3 the enqueue time: createdAt, and due at once.
constexpr std::string_view kEnqueueSql = R"sql(
INSERT INTO webhook_outbox ("type", "body", "createdAt", "attempts", "nextAttemptAt")
VALUES (?1, ?2, ?3, 0, ?3))sql";

// ---- account_events ----------------------------------------------------------------------------

// ?1 accountId, ?2 clientId, ?3 type, ?4 body, ?5 createdAt.
constexpr std::string_view kInsertHistorySql = R"sql(
INSERT INTO account_events ("accountId", "clientId", "type", "body", "createdAt")
VALUES (?1, ?2, ?3, ?4, ?5))sql";

// Keeps the newest ?3 entries of the row (?1, ?2): deletes from the (?3 + 1)-th newest down, one
// range of account_events_account.
constexpr std::string_view kTrimHistorySql = R"sql(
DELETE FROM account_events WHERE "accountId" = ?1 AND "clientId" = ?2 AND "id" <= (
  SELECT "id" FROM account_events WHERE "accountId" = ?1 AND "clientId" = ?2
  ORDER BY "id" DESC LIMIT 1 OFFSET ?3))sql";

// ?1 accountId, ?2 limit. Newest first, every integration of the account.
constexpr std::string_view kListHistorySql = R"sql(
SELECT "id", "accountId", "clientId", "type", "body", "createdAt" FROM account_events
WHERE "accountId" = ?1 ORDER BY "id" DESC LIMIT ?2)sql";

// One statement picks and marks the entries, under the write lock, so another claimer (thread or
// process) waits and then no longer sees them as due. ?1 now, ?2 claim_until, ?3 limit.
// RETURNING gives rows in no promised order; the caller sorts by id. Without INDEXED BY, SQLite
// prefers walking the whole table in id order (it satisfies ORDER BY … LIMIT), delivered rows
// included; the partial index finds just the due ones, and sorting those few is cheap.
constexpr std::string_view kClaimSql = R"sql(
UPDATE webhook_outbox SET "attempts" = "attempts" + 1, "nextAttemptAt" = ?2
WHERE "id" IN (SELECT "id" FROM webhook_outbox INDEXED BY webhook_outbox_due
               WHERE "deliveredAt" IS NULL AND "nextAttemptAt" <= ?1
               ORDER BY "id" LIMIT ?3)
RETURNING "id", "type", "body", "createdAt", "attempts", "nextAttemptAt", "lastError")sql";

// ?1 the cut-off: delivered before it. Served by the partial index webhook_outbox_delivered.
constexpr std::string_view kPruneDeliveredSql =
    R"sql(DELETE FROM webhook_outbox WHERE "deliveredAt" < ?1)sql";

// Both leave a delivered entry alone: a late report from a claimer whose claim had run out must
// not put an event back in the queue once someone delivered it.
constexpr std::string_view kMarkDeliveredSql = R"sql(
UPDATE webhook_outbox SET "deliveredAt" = ?2 WHERE "id" = ?1 AND "deliveredAt" IS NULL)sql";
constexpr std::string_view kMarkFailedSql = R"sql(
UPDATE webhook_outbox SET "lastError" = ?2, "nextAttemptAt" = ?3
WHERE "id" = ?1 AND "deliveredAt" IS NULL)sql";

constexpr std::string_view kCountPendingSql =
    R"sql(SELECT count(*) FROM webhook_outbox WHERE "deliveredAt" IS NULL)sql";

/// GET /metrics: both served by amo_tokens_last_refresh ("status", "lastRefreshAt"), an index
/// scan with no table access; MIN over an equality prefix is one index probe.
constexpr std::string_view kCountByStatusSql =
    R"sql(SELECT "status", count(*) FROM amo_tokens GROUP BY "status")sql";
constexpr std::string_view kOldestRefreshSql =
    R"sql(SELECT min("lastRefreshAt") FROM amo_tokens WHERE "status" = 'active')sql";

/// An error as a Result<T>. Needed for T = bool: bool is constructible from an error_code
/// (explicit operator bool), so result<bool>'s implicit error constructor is disabled.
template <class T>
Result<T> ErrorAs(const boost::system::error_code& ec) {
  return Result<T>(boost::system::in_place_error, ec);
}

/// A LIMIT parameter: SQLite takes a signed 64-bit value; anything larger is "no limit" anyway.
std::int64_t SqlLimit(std::size_t limit) {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(limit, kMax));
}

/// A connection's tokens as stored: sealed, the refresh token NULL when empty.
struct SealedTokens {
  std::string access;
  std::optional<std::string> refresh;
};

}  // namespace

struct SqliteStore::Impl {
  Impl(SqliteOptions opts,
       crypto::MasterKey master_key,
       std::shared_ptr<spdlog::logger> logger,
       std::vector<Database> dbs,
       std::unique_ptr<detail::CommitProbes> probe_in,
       int version)
      : options(std::move(opts)),
        key(std::move(master_key)),
        log(std::move(logger)),
        connections(std::move(dbs)),
        probe(std::move(probe_in)),
        schema_version(version),
        pool(connections.size()) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Lets queued work finish, then the threads end; the connections close after them.
  ~Impl() { pool.join(); }

  /// Runs `method` on this pool thread's connection. Never throws: an exception escaping it
  /// (bad_alloc, a third-party throw) is logged and becomes Errc::kStoreFailure.
  template <class Method, class... Args>
  auto Run(std::string_view operation, Method method, const Args&... args) noexcept
      -> std::invoke_result_t<Method, Impl*, Database&, const Args&...> {
    auto work = [&](Database& db) { return std::invoke(method, this, db, args...); };
    return detail::RunGuarded(*log, ThisThreadConnection(), operation, work);
  }

  /// The connection of the calling pool thread: each thread claims one on its first job and
  /// keeps it, so no connection is ever used by two threads. A pool thread serves one store
  /// only, so one (owner, connection) slot per thread suffices.
  Database* ThisThreadConnection() {
    thread_local const Impl* owner = nullptr;
    thread_local Database* connection = nullptr;
    if (owner != this) {
      const std::size_t slot = next_connection.fetch_add(1, std::memory_order_relaxed);
      if (slot >= connections.size()) {
        return nullptr;  // more threads than connections: a bug, never by construction
      }
      owner = this;
      connection = &connections[slot];
    }
    return connection;
  }

  // ---- amo_tokens -----------------------------------------------------------------------------

  [[nodiscard]] SealedTokens SealTokens(const core::Connection& c) const {
    SealedTokens sealed;
    sealed.access = crypto::Seal(
        key, c.access_token.Reveal(), TokenAad(c.account_id, c.client_id, TokenKind::kAccess));
    if (!c.refresh_token.Empty()) {
      sealed.refresh = crypto::Seal(
          key, c.refresh_token.Reveal(), TokenAad(c.account_id, c.client_id, TokenKind::kRefresh));
    }
    return sealed;
  }

  /// The time a write stamps into createdAt/updatedAt, whole seconds as stored.
  [[nodiscard]] core::TimePoint WriteTime() const {
    const core::Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
    return FloorToSeconds(clock.Now());
  }

  /// Binds ?1…?17 of kUpsertSql / kReplaceSql; `now` is both createdAt (used by a new row only)
  /// and updatedAt. The caller's created_at, updated_at and version are ignored: the store owns
  /// them. The refresh bookkeeping is the caller's and is written as given.
  [[nodiscard]] Result<void> BindConnection(Statement& stmt,
                                            const core::Connection& c,
                                            const SealedTokens& sealed,
                                            core::TimePoint now) const {
    const std::string now_text = FormatIsoTime(now);
    std::optional<Blob> refresh;
    if (sealed.refresh) {
      refresh = Blob{*sealed.refresh};
    }
    return stmt.BindAll(c.account_id,
                        std::string_view(c.client_id),
                        std::string_view(c.base_domain),
                        std::string_view(c.api_domain),
                        std::string_view(c.user_id),
                        core::ToString(c.status),
                        std::string_view(key.Id()),
                        Blob{sealed.access},
                        refresh,
                        FormatIsoTime(c.expires_at),
                        std::string_view(now_text),
                        std::string_view(now_text),
                        NullableTime(c.last_refresh_at),
                        NullableTime(c.next_refresh_at),
                        std::int64_t{c.refresh_failures},
                        std::string_view(c.last_error),
                        NullableTime(c.last_error_at));
  }

  /// The row as stored, from what was written plus the RETURNING "version", "createdAt" row.
  [[nodiscard]] Result<core::Connection> StoredRow(core::Connection c,
                                                   const Statement& returned,
                                                   core::TimePoint now) const {
    const auto created = ParseIsoTime(returned.Text(1));
    if (!created) {
      log->error("amo_tokens row accountId={} clientId={} has a malformed createdAt",
                 c.account_id,
                 c.client_id);
      return Fail(Errc::kStoreFailure);
    }
    c.version = returned.Int(0);
    c.created_at = *created;
    c.expires_at = FloorToSeconds(c.expires_at);
    c.updated_at = now;
    c.last_refresh_at = FloorToSeconds(c.last_refresh_at);
    c.next_refresh_at = FloorToSeconds(c.next_refresh_at);
    c.last_error_at = FloorToSeconds(c.last_error_at);
    return c;
  }

  /// The key being retired during a rotation (reads only), or nullptr.
  [[nodiscard]] const crypto::MasterKey* PreviousKey() const {
    return options.previous_key ? &*options.previous_key : nullptr;
  }

  [[nodiscard]] Result<std::string> OpenToken(const crypto::MasterKey& row_key,
                                              const Statement& row,
                                              int column,
                                              std::int64_t account_id,
                                              const std::string& client_id,
                                              TokenKind kind) const {
    auto plain = crypto::Open(row_key, row.BlobAt(column), TokenAad(account_id, client_id, kind));
    if (!plain) {
      // Which row and which token; never the data.
      log->error(
          "amo_tokens row accountId={} clientId={}: the {} token does not decrypt "
          "(tampered, or moved from another row)",
          account_id,
          client_id,
          kind == TokenKind::kAccess ? "access" : "refresh");
      return Fail(Errc::kCryptoFailure);
    }
    return std::move(*plain);
  }

  /// One row of kFindSql / kFindByAccountSql / kListSql / kListDueSql, decrypted.
  [[nodiscard]] Result<core::Connection> ReadConnection(const Statement& row) const {
    core::Connection c;
    c.account_id = row.Int(0);
    c.client_id = row.Text(1);
    c.base_domain = row.Text(2);
    c.api_domain = row.Text(3);
    c.user_id = row.Text(4);
    const std::string status = row.Text(5);
    const auto parsed_status = core::ParseConnectionStatus(status);
    if (!parsed_status) {
      log->error("amo_tokens row accountId={} clientId={} has unknown status '{}'",
                 c.account_id,
                 c.client_id,
                 status);
      return Fail(Errc::kStoreFailure);
    }
    c.status = *parsed_status;
    const std::string key_id = row.Text(6);
    const crypto::MasterKey* row_key = crypto::KeyById(key_id, key, PreviousKey());
    if (row_key == nullptr) {
      log->error(
          "amo_tokens row accountId={} clientId={} was written under another master key "
          "(row keyId {}, current keyId {})",
          c.account_id,
          c.client_id,
          key_id,
          key.Id());
      return Fail(Errc::kCryptoFailure);
    }
    auto access = OpenToken(*row_key, row, 7, c.account_id, c.client_id, TokenKind::kAccess);
    if (!access) {
      return access.error();
    }
    c.access_token = Secret(std::move(*access));
    if (!row.IsNull(8)) {
      auto refresh = OpenToken(*row_key, row, 8, c.account_id, c.client_id, TokenKind::kRefresh);
      if (!refresh) {
        return refresh.error();
      }
      c.refresh_token = Secret(std::move(*refresh));
    }
    const auto expires = ParseIsoTime(row.Text(9));
    const auto created = ParseIsoTime(row.Text(11));
    const auto updated = ParseIsoTime(row.Text(12));
    const auto last_refresh = ReadNullableTime(row, 13);
    const auto next_refresh = ReadNullableTime(row, 14);
    const auto last_error_at = ReadNullableTime(row, 17);
    if (!expires || !created || !updated || !last_refresh || !next_refresh || !last_error_at) {
      log->error("amo_tokens row accountId={} clientId={} has a malformed time",
                 c.account_id,
                 c.client_id);
      return Fail(Errc::kStoreFailure);
    }
    c.expires_at = *expires;
    c.version = row.Int(10);
    c.created_at = *created;
    c.updated_at = *updated;
    c.last_refresh_at = *last_refresh;
    c.next_refresh_at = *next_refresh;
    c.refresh_failures = static_cast<int>(row.Int(15));
    c.last_error = row.Text(16);
    c.last_error_at = *last_error_at;
    return c;
  }

  /// Appends `events` to webhook_outbox, due at `now`. Inside the caller's transaction.
  static Result<void> InsertEvents(Database& db,
                                   const std::vector<service::Event>& events,
                                   core::TimePoint now) {
    if (events.empty()) {
      return {};
    }
    if (auto keys = store_schema::CheckEventKeys(events); !keys) {
      return keys.error();
    }
    auto stmt = Statement::Prepare(db, kEnqueueSql);
    if (!stmt) {
      return stmt.error();
    }
    const std::string now_text = FormatIsoTime(now);
    for (const auto& event : events) {
      if (!event.deliver) {
        continue;
      }
      if (auto bound = stmt->BindAll(std::string_view(event.type),
                                     std::string_view(event.body),
                                     std::string_view(now_text));
          !bound) {
        return bound.error();
      }
      if (auto done = stmt->Run(); !done) {
        return done.error();
      }
      if (auto reset = stmt->Reset(); !reset) {
        return reset.error();
      }
    }
    return InsertHistory(db, events, now_text);
  }

  /// Appends the events about an account to its history and trims it (kAccountHistoryKept).
  /// Inside the caller's transaction.
  static Result<void> InsertHistory(Database& db,
                                    const std::vector<service::Event>& events,
                                    const std::string& now_text) {
    for (const auto& event : events) {
      if (event.account_id == 0) {
        continue;
      }
      auto insert = Statement::Prepare(db, kInsertHistorySql);
      if (!insert) {
        return insert.error();
      }
      if (auto bound = insert->BindAll(event.account_id,
                                       std::string_view(event.client_id),
                                       std::string_view(event.type),
                                       std::string_view(event.body),
                                       std::string_view(now_text));
          !bound) {
        return bound.error();
      }
      if (auto done = insert->Run(); !done) {
        return done.error();
      }
      auto trim = Statement::Prepare(db, kTrimHistorySql);
      if (!trim) {
        return trim.error();
      }
      if (auto bound = trim->BindAll(
              event.account_id,
              std::string_view(event.client_id),
              static_cast<std::int64_t>(service::AccountHistory::kAccountHistoryKept));
          !bound) {
        return bound.error();
      }
      if (auto done = trim->Run(); !done) {
        return done.error();
      }
    }
    return {};
  }

  Result<std::vector<service::AccountEvent>> ListAccountEvents(Database& db,
                                                               const std::int64_t& account_id,
                                                               const std::size_t& limit) {
    auto stmt = Statement::Prepare(db, kListHistorySql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(account_id, SqlLimit(limit)); !bound) {
      return bound.error();
    }
    std::vector<service::AccountEvent> out;
    for (;;) {
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return out;
      }
      service::AccountEvent event;
      event.id = stmt->Int(0);
      event.account_id = stmt->Int(1);
      event.client_id = stmt->Text(2);
      event.type = stmt->Text(3);
      event.body = stmt->Text(4);
      const auto created = ParseIsoTime(stmt->Text(5));
      if (!created) {
        log->error("account_events row id={} has a malformed time", event.id);
        return Fail(Errc::kStoreFailure);
      }
      event.created_at = *created;
      out.push_back(std::move(event));
    }
  }

  Result<core::Connection> Upsert(Database& db,
                                  const core::Connection& c,
                                  const std::vector<service::Event>& events) {
    if (auto keys = store_schema::CheckKeys({c.client_id, c.base_domain}); !keys) {
      return keys.error();
    }
    const SealedTokens sealed = SealTokens(c);
    const core::TimePoint now = WriteTime();
    // The row and its events commit together or not at all (the outbox never reports a change
    // that did not happen, nor misses one that did).
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    std::optional<core::Connection> stored;
    {
      auto stmt = Statement::Prepare(db, kUpsertSql);
      if (!stmt) {
        return stmt.error();
      }
      if (auto bound = BindConnection(*stmt, c, sealed, now); !bound) {
        return bound.error();
      }
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        log->error("upsert of accountId={} clientId={} returned no row", c.account_id, c.client_id);
        return Fail(Errc::kStoreFailure);
      }
      auto result = StoredRow(c, *stmt, now);
      if (!result) {
        return result.error();
      }
      stored = std::move(*result);
      if (auto finished = stmt->Run(); !finished) {
        return finished.error();
      }
    }
    if (auto queued = InsertEvents(db, events, now); !queued) {
      return queued.error();
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    return std::move(*stored);
  }

  Result<core::Connection> Replace(Database& db,
                                   const core::Connection& c,
                                   std::int64_t expected_version,
                                   const std::vector<service::Event>& events) {
    if (auto keys = store_schema::CheckKeys({c.client_id, c.base_domain}); !keys) {
      return keys.error();
    }
    const SealedTokens sealed = SealTokens(c);
    const core::TimePoint now = WriteTime();
    // One transaction, so that "0 rows updated" is told apart from "no row" consistently.
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    std::optional<core::Connection> stored;
    {
      auto stmt = Statement::Prepare(db, kReplaceSql);
      if (!stmt) {
        return stmt.error();
      }
      if (auto bound = BindConnection(*stmt, c, sealed, now); !bound) {
        return bound.error();
      }
      if (auto bound = stmt->Bind(18, expected_version); !bound) {
        return bound.error();
      }
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (*row) {
        auto result = StoredRow(c, *stmt, now);
        if (!result) {
          return result.error();
        }
        stored = std::move(*result);
        if (auto finished = stmt->Run(); !finished) {
          return finished.error();
        }
      }
    }
    if (stored) {
      // Only a swap that happened is reported: a loser's events are never written.
      if (auto queued = InsertEvents(db, events, now); !queued) {
        return queued.error();
      }
      if (auto committed = tx.Commit(); !committed) {
        return committed.error();
      }
      return std::move(*stored);
    }
    auto exists = Statement::Prepare(db, kExistsSql);
    if (!exists) {
      return exists.error();
    }
    if (auto bound = exists->BindAll(c.account_id, std::string_view(c.client_id)); !bound) {
      return bound.error();
    }
    auto found = exists->Step();
    if (!found) {
      return found.error();
    }
    // Nothing was written; the transaction rolls back.
    return Fail(*found ? Errc::kConflict : Errc::kNotFound);
  }

  Result<std::optional<core::Connection>> Find(Database& db, const core::AccountKey& k) {
    auto stmt = Statement::Prepare(db, kFindSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(k.account_id, std::string_view(k.client_id)); !bound) {
      return bound.error();
    }
    auto row = stmt->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return std::optional<core::Connection>();
    }
    auto c = ReadConnection(*stmt);
    if (!c) {
      return c.error();
    }
    return std::optional<core::Connection>(std::move(*c));
  }

  Result<std::vector<core::Connection>> ReadAll(Statement& stmt) {
    std::vector<core::Connection> out;
    for (;;) {
      auto row = stmt.Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return out;
      }
      auto c = ReadConnection(stmt);
      if (!c) {
        return c.error();
      }
      out.push_back(std::move(*c));
    }
  }

  Result<std::vector<core::Connection>> FindByAccount(Database& db, const std::int64_t& account) {
    auto stmt = Statement::Prepare(db, kFindByAccountSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->Bind(1, account); !bound) {
      return bound.error();
    }
    return ReadAll(*stmt);
  }

  Result<std::vector<core::Connection>> FindByDomain(Database& db, const std::string& domain) {
    auto stmt = Statement::Prepare(db, kFindByDomainSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->Bind(1, std::string_view(domain)); !bound) {
      return bound.error();
    }
    return ReadAll(*stmt);
  }

  Result<std::vector<core::Connection>> List(Database& db) {
    auto stmt = Statement::Prepare(db, kListSql);
    if (!stmt) {
      return stmt.error();
    }
    return ReadAll(*stmt);
  }

  Result<std::vector<core::Connection>> ListDue(Database& db,
                                                const core::TimePoint& now,
                                                const std::size_t& limit) {
    auto stmt = Statement::Prepare(db, kListDueSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(
            core::ToString(core::ConnectionStatus::kActive), FormatIsoTime(now), SqlLimit(limit));
        !bound) {
      return bound.error();
    }
    return ReadAll(*stmt);
  }

  // ---- oauth_states ---------------------------------------------------------------------------

  Result<void> Put(Database& db, const service::PendingState& state, const core::TimePoint& now) {
    if (auto keys = store_schema::CheckKeys({state.state_hash}); !keys) {
      return keys.error();
    }
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    {
      // Expired at `now` means expires_at <= now, the same rule as Take.
      auto purge = Statement::Prepare(db, "DELETE FROM oauth_states WHERE expires_at <= ?1");
      if (!purge) {
        return purge.error();
      }
      if (auto bound = purge->Bind(1, FormatIsoTime(now)); !bound) {
        return bound.error();
      }
      if (auto done = purge->Run(); !done) {
        return done.error();
      }
    }
    std::int64_t pending = 0;
    {
      auto count = Statement::Prepare(db, "SELECT count(*) FROM oauth_states");
      if (!count) {
        return count.error();
      }
      auto row = count->Step();
      if (!row) {
        return row.error();
      }
      pending = count->Int(0);
    }
    if (pending >= static_cast<std::int64_t>(options.max_pending_states)) {
      log->warn(
          "refusing a new OAuth state: {} pending (limit {})", pending, options.max_pending_states);
      if (auto committed = tx.Commit(); !committed) {  // keep the purge
        return committed.error();
      }
      return Fail(Errc::kBusy);
    }
    {
      auto insert = Statement::Prepare(db,
                                       "INSERT INTO oauth_states (state_hash, client_id, mode, "
                                       "created_at, expires_at, purpose, flow_reference) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                       "ON CONFLICT (state_hash) DO NOTHING");
      if (!insert) {
        return insert.error();
      }
      if (auto bound = insert->BindAll(std::string_view(state.state_hash),
                                       std::string_view(state.client_id),
                                       core::ToString(state.mode),
                                       FormatIsoTime(state.created_at),
                                       FormatIsoTime(state.expires_at),
                                       service::ToString(state.purpose),
                                       std::string_view(state.reference));
          !bound) {
        return bound.error();
      }
      if (auto done = insert->Run(); !done) {
        return done.error();
      }
      if (db.Changes() != 1) {
        // States are random; a repeat is a bug upstream. Keep the first one.
        log->error("refusing a new OAuth state: its hash is already pending");
        return Fail(Errc::kConflict);
      }
    }
    return tx.Commit();
  }

  Result<std::optional<service::PendingState>> Take(Database& db,
                                                    const std::string& state_hash,
                                                    const core::TimePoint& now) {
    // DELETE … RETURNING is one atomic statement: of any number of threads or processes taking
    // the same state, exactly one gets the row.
    return ReadState(db,
                     "DELETE FROM oauth_states WHERE state_hash = ?1 "
                     "RETURNING client_id, mode, created_at, expires_at, purpose, flow_reference",
                     state_hash,
                     now);
  }

  Result<std::optional<service::PendingState>> Peek(Database& db,
                                                    const std::string& state_hash,
                                                    const core::TimePoint& now) {
    return ReadState(db,
                     "SELECT client_id, mode, created_at, expires_at, purpose, flow_reference "
                     "FROM oauth_states "
                     "WHERE state_hash = ?1",
                     state_hash,
                     now);
  }

  /// Runs `sql` (one row of client_id, mode, created_at, expires_at, purpose, flow_reference for
  /// ?1 = the hash); nullopt when there is none or it expired at `now`.
  Result<std::optional<service::PendingState>> ReadState(Database& db,
                                                         std::string_view sql,
                                                         const std::string& state_hash,
                                                         const core::TimePoint& now) {
    auto stmt = Statement::Prepare(db, sql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->Bind(1, std::string_view(state_hash)); !bound) {
      return bound.error();
    }
    auto row = stmt->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return std::optional<service::PendingState>();
    }
    service::PendingState state;
    state.state_hash = state_hash;
    state.client_id = stmt->Text(0);
    const auto parsed_mode = core::ParseConsentMode(stmt->Text(1));
    const auto created = ParseIsoTime(stmt->Text(2));
    const auto expires = ParseIsoTime(stmt->Text(3));
    const auto purpose = service::ParseStatePurpose(stmt->Text(4));
    state.reference = stmt->Text(5);
    if (auto finished = stmt->Run(); !finished) {  // completes the autocommit transaction
      return finished.error();
    }
    if (!parsed_mode || !created || !expires || !purpose) {
      log->error("oauth_states row for client {} is malformed", state.client_id);
      return Fail(Errc::kStoreFailure);
    }
    state.mode = *parsed_mode;
    state.purpose = *purpose;
    state.created_at = *created;
    state.expires_at = *expires;
    if (state.expires_at <= now) {
      return std::optional<service::PendingState>();  // expired: not returned
    }
    return std::optional<service::PendingState>(std::move(state));
  }

  // ---- integrations ---------------------------------------------------------------------------

  Result<void> AddIntegration(Database& db, const service::ExternalIntegration& integration) {
    if (auto keys = store_schema::CheckKeys({integration.client_id, integration.state_hash});
        !keys) {
      return keys.error();
    }
    auto stmt = Statement::Prepare(db,
                                   "INSERT INTO integrations (\"clientId\", \"keyId\", "
                                   "\"clientSecret\", \"stateHash\", \"createdAt\") "
                                   "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING");
    if (!stmt) {
      return stmt.error();
    }
    const std::string sealed = crypto::Seal(
        key, integration.client_secret.Reveal(), store_schema::SecretAad(integration.client_id));
    if (auto bound = stmt->BindAll(std::string_view(integration.client_id),
                                   std::string_view(key.Id()),
                                   Blob{sealed},
                                   std::string_view(integration.state_hash),
                                   FormatIsoTime(integration.created_at));
        !bound) {
      return bound.error();
    }
    if (auto done = stmt->Run(); !done) {
      return done.error();
    }
    if (db.Changes() != 1) {
      return Fail(Errc::kSecretsAlreadyReceived);  // its client id or its state is known
    }
    return {};
  }

  Result<std::size_t> ForgetUnusedIntegrations(Database& db, core::TimePoint created_before) {
    auto stmt = Statement::Prepare(db,
                                   "DELETE FROM integrations WHERE \"createdAt\" < ?1 AND NOT "
                                   "EXISTS (SELECT 1 FROM amo_tokens t WHERE t.\"clientId\" = "
                                   "integrations.\"clientId\")");
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(FormatIsoTime(created_before)); !bound) {
      return bound.error();
    }
    if (auto done = stmt->Run(); !done) {
      return done.error();
    }
    return static_cast<std::size_t>(db.Changes());
  }

  /// Reads a row of kIntegrationColumns, opening the sealed client secret.
  Result<service::ExternalIntegration> ReadIntegration(const Statement& row) {
    service::ExternalIntegration integration;
    integration.client_id = row.Text(0);
    const crypto::MasterKey* row_key = crypto::KeyById(row.Text(1), key, PreviousKey());
    if (row_key == nullptr) {
      log->error("integrations row clientId={} was written under another master key",
                 integration.client_id);
      return Fail(Errc::kCryptoFailure);
    }
    auto secret =
        crypto::Open(*row_key, row.BlobAt(2), store_schema::SecretAad(integration.client_id));
    if (!secret) {
      log->error("integrations row clientId={}: the client secret does not decrypt",
                 integration.client_id);
      return Fail(Errc::kCryptoFailure);
    }
    integration.client_secret = Secret(std::move(*secret));
    integration.state_hash = row.Text(3);
    const auto created = ParseIsoTime(row.Text(4));
    if (!created) {
      log->error("integrations row clientId={} has a malformed createdAt", integration.client_id);
      return Fail(Errc::kStoreFailure);
    }
    integration.created_at = *created;
    return integration;
  }

  static constexpr std::string_view kIntegrationColumns =
      R"("clientId", "keyId", "clientSecret", "stateHash", "createdAt")";

  Result<std::optional<service::ExternalIntegration>> FindIntegrationWhere(
      Database& db, std::string_view column, const std::string& value) {
    auto stmt = Statement::Prepare(
        db,
        fmt::format("SELECT {} FROM integrations WHERE \"{}\" = ?1", kIntegrationColumns, column));
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->Bind(1, std::string_view(value)); !bound) {
      return bound.error();
    }
    auto row = stmt->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return std::optional<service::ExternalIntegration>();
    }
    auto integration = ReadIntegration(*stmt);
    if (!integration) {
      return integration.error();
    }
    return std::optional<service::ExternalIntegration>(std::move(*integration));
  }

  Result<std::vector<service::ExternalIntegration>> ListIntegrations(Database& db) {
    auto stmt = Statement::Prepare(
        db, fmt::format("SELECT {} FROM integrations ORDER BY \"clientId\"", kIntegrationColumns));
    if (!stmt) {
      return stmt.error();
    }
    std::vector<service::ExternalIntegration> out;
    for (;;) {
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return out;
      }
      auto integration = ReadIntegration(*stmt);
      if (!integration) {
        return integration.error();
      }
      out.push_back(std::move(*integration));
    }
  }

  Result<std::optional<service::ExternalIntegration>> FindIntegration(
      Database& db, const std::string& client_id) {
    return FindIntegrationWhere(db, "clientId", client_id);
  }

  Result<std::optional<service::ExternalIntegration>> FindIntegrationByState(
      Database& db, const std::string& state_hash) {
    return FindIntegrationWhere(db, "stateHash", state_hash);
  }

  // ---- used_codes -----------------------------------------------------------------------------

  Result<bool> MarkUsed(Database& db, const std::string& code_hash, const core::TimePoint& now) {
    if (auto keys = store_schema::CheckKeys({code_hash}); !keys) {
      return ErrorAs<bool>(keys.error());
    }
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return ErrorAs<bool>(begun.error());
    }
    {
      // Strictly older than the code lifetime (rounded so that nothing goes early).
      auto purge = Statement::Prepare(db, "DELETE FROM used_codes WHERE used_at < ?1");
      if (!purge) {
        return ErrorAs<bool>(purge.error());
      }
      if (auto bound = purge->Bind(1, FormatIsoTime(now - kCodeLifetime)); !bound) {
        return ErrorAs<bool>(bound.error());
      }
      if (auto done = purge->Run(); !done) {
        return ErrorAs<bool>(done.error());
      }
    }
    bool inserted = false;
    {
      auto insert = Statement::Prepare(
          db, "INSERT OR IGNORE INTO used_codes (code_hash, used_at) VALUES (?1, ?2)");
      if (!insert) {
        return ErrorAs<bool>(insert.error());
      }
      if (auto bound = insert->BindAll(std::string_view(code_hash), FormatIsoTime(now)); !bound) {
        return ErrorAs<bool>(bound.error());
      }
      if (auto done = insert->Run(); !done) {
        return ErrorAs<bool>(done.error());
      }
      inserted = db.Changes() == 1;
    }
    if (auto committed = tx.Commit(); !committed) {
      return ErrorAs<bool>(committed.error());
    }
    return inserted;
  }

  // ---- refresh_leases ---------------------------------------------------------------------------

  Result<bool> TryAcquire(Database& db,
                          const core::AccountKey& k,
                          const std::string& holder,
                          const core::TimePoint& now,
                          const core::TimePoint& until) {
    if (auto keys = store_schema::CheckKeys({k.client_id}); !keys) {
      return ErrorAs<bool>(keys.error());
    }
    auto stmt = Statement::Prepare(db, kAcquireLeaseSql);
    if (!stmt) {
      return ErrorAs<bool>(stmt.error());
    }
    // `now` rounds down and `until` up: a lease is never taken over before its end.
    if (auto bound = stmt->BindAll(k.account_id,
                                   std::string_view(k.client_id),
                                   std::string_view(holder),
                                   FormatIsoTime(CeilToSeconds(until)),
                                   FormatIsoTime(now));
        !bound) {
      return ErrorAs<bool>(bound.error());
    }
    auto row = stmt->Step();
    if (!row) {
      return ErrorAs<bool>(row.error());
    }
    const bool held = *row;  // a row back: inserted, taken over or extended, for `holder`
    if (auto finished = stmt->Run(); !finished) {  // completes the autocommit transaction
      return ErrorAs<bool>(finished.error());
    }
    return held;
  }

  Result<void> Release(Database& db, const core::AccountKey& k, const std::string& holder) {
    auto stmt = Statement::Prepare(db, kReleaseLeaseSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound =
            stmt->BindAll(k.account_id, std::string_view(k.client_id), std::string_view(holder));
        !bound) {
      return bound.error();
    }
    return stmt->Run();
  }

  Result<std::optional<std::string>> LeaseHolder(Database& db, const core::AccountKey& k) {
    auto stmt = Statement::Prepare(db, kLeaseHolderSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(k.account_id, std::string_view(k.client_id)); !bound) {
      return bound.error();
    }
    auto row = stmt->Step();
    if (!row) {
      return row.error();
    }
    std::optional<std::string> holder;
    if (*row) {
      holder = stmt->Text(0);
    }
    if (auto finished = stmt->Run(); !finished) {  // completes the autocommit transaction
      return finished.error();
    }
    return holder;
  }

  Result<bool> TakeOver(Database& db,
                        const core::AccountKey& k,
                        const std::string& gone,
                        const std::string& holder,
                        const core::TimePoint& until) {
    auto stmt = Statement::Prepare(db, kTakeOverLeaseSql);
    if (!stmt) {
      return ErrorAs<bool>(stmt.error());
    }
    if (auto bound = stmt->BindAll(k.account_id,
                                   std::string_view(k.client_id),
                                   std::string_view(gone),
                                   std::string_view(holder),
                                   FormatIsoTime(CeilToSeconds(until)));
        !bound) {
      return ErrorAs<bool>(bound.error());
    }
    if (auto done = stmt->Run(); !done) {
      return ErrorAs<bool>(done.error());
    }
    return db.Changes() == 1;
  }

  Result<std::vector<core::Connection>> ClaimDueRefreshes(Database& db,
                                                          const core::TimePoint& now,
                                                          const std::string& holder,
                                                          const core::TimePoint& until,
                                                          const std::size_t& limit) {
    // Candidates and leases under one write lock; a row that fails to decrypt rolls it all back.
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    std::vector<core::Connection> due;
    {
      auto stmt = Statement::Prepare(db, kDueWithFreeLeaseSql);
      if (!stmt) {
        return stmt.error();
      }
      if (auto bound = stmt->BindAll(core::ToString(core::ConnectionStatus::kActive),
                                     FormatIsoTime(now),
                                     std::string_view(holder),
                                     SqlLimit(limit));
          !bound) {
        return bound.error();
      }
      auto read = ReadAll(*stmt);
      if (!read) {
        return read.error();
      }
      due = std::move(*read);
    }
    std::vector<core::Connection> claimed;
    claimed.reserve(due.size());
    for (core::Connection& row : due) {
      auto taken = TryAcquire(db, row.Key(), holder, now, until);
      if (!taken) {
        return taken.error();
      }
      if (*taken) {  // always, under the write lock: the candidate's lease was free
        claimed.push_back(std::move(row));
      }
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    return claimed;
  }

  // ---- webhook_outbox -------------------------------------------------------------------------

  Result<void> Enqueue(Database& db,
                       const std::vector<service::Event>& events,
                       const core::TimePoint& now) {
    Transaction tx(db);  // all of them or none
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    if (auto queued = InsertEvents(db, events, FloorToSeconds(now)); !queued) {
      return queued.error();
    }
    return tx.Commit();
  }

  Result<std::vector<service::OutboxEntry>> ClaimDue(Database& db,
                                                     const core::TimePoint& now,
                                                     const core::TimePoint& claim_until,
                                                     const std::size_t& limit) {
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    {
      // Pruning here keeps the table bounded without a timer of its own; the claimer polls.
      auto prune = Statement::Prepare(db, kPruneDeliveredSql);
      if (!prune) {
        return prune.error();
      }
      if (auto bound = prune->Bind(1, FormatIsoTime(now - kDeliveredRetention)); !bound) {
        return bound.error();
      }
      if (auto done = prune->Run(); !done) {
        return done.error();
      }
    }
    std::vector<service::OutboxEntry> claimed;
    {
      auto stmt = Statement::Prepare(db, kClaimSql);
      if (!stmt) {
        return stmt.error();
      }
      // The claim ends no earlier than asked (rounded up): nobody else claims meanwhile.
      if (auto bound = stmt->BindAll(
              FormatIsoTime(now), FormatIsoTime(CeilToSeconds(claim_until)), SqlLimit(limit));
          !bound) {
        return bound.error();
      }
      for (;;) {
        auto row = stmt->Step();
        if (!row) {
          return row.error();
        }
        if (!*row) {
          break;
        }
        service::OutboxEntry entry;
        entry.id = stmt->Int(0);
        entry.type = stmt->Text(1);
        entry.body = stmt->Text(2);
        const auto created = ParseIsoTime(stmt->Text(3));
        entry.attempts = static_cast<int>(stmt->Int(4));
        const auto next = ParseIsoTime(stmt->Text(5));
        entry.last_error = stmt->Text(6);
        if (!created || !next) {
          // Returning rolls the claim back: the entry stays due, and this is logged each time.
          log->error("webhook_outbox row id={} has a malformed time", entry.id);
          return Fail(Errc::kStoreFailure);
        }
        entry.created_at = *created;
        entry.next_attempt_at = *next;
        claimed.push_back(std::move(entry));
      }
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    std::sort(
        claimed.begin(), claimed.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return claimed;
  }

  Result<void> MarkDelivered(Database& db, const std::int64_t& id, const core::TimePoint& now) {
    auto stmt = Statement::Prepare(db, kMarkDeliveredSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(id, FormatIsoTime(now)); !bound) {
      return bound.error();
    }
    return stmt->Run();
  }

  Result<void> MarkFailed(Database& db,
                          const std::int64_t& id,
                          const std::string& error,
                          const core::TimePoint& next_attempt_at) {
    auto stmt = Statement::Prepare(db, kMarkFailedSql);
    if (!stmt) {
      return stmt.error();
    }
    if (auto bound = stmt->BindAll(
            id, std::string_view(error), FormatIsoTime(CeilToSeconds(next_attempt_at)));
        !bound) {
      return bound.error();
    }
    return stmt->Run();
  }

  // ---- key rotation (docs/adr/0005-key-rotation.md) -------------------------------------------

  Result<std::vector<std::pair<std::string, std::int64_t>>> CountByKeyId(Database& db) {
    auto stmt = Statement::Prepare(db, R"sql(
SELECT "keyId", count(*) FROM (
  SELECT "keyId" FROM amo_tokens UNION ALL SELECT "keyId" FROM integrations
  UNION ALL SELECT "keyId" FROM code_queue)
GROUP BY "keyId" ORDER BY "keyId")sql");
    if (!stmt) {
      return stmt.error();
    }
    std::vector<std::pair<std::string, std::int64_t>> counts;
    for (;;) {
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return counts;
      }
      counts.emplace_back(stmt->Text(0), stmt->Int(1));
    }
  }

  /// One batch per table inside one BEGIN IMMEDIATE: the write lock is held from the reads to
  /// the writes, so no other writer changes a row in between; the UPDATEs compare what was read
  /// anyway (version or ciphertext, and the key id). version and updatedAt stay as they are.
  Result<service::KeyRotationBatch> RotateKeyBatch(Database& db, std::size_t limit) {
    const crypto::MasterKey* old_key = PreviousKey();
    if (old_key == nullptr) {
      log->error("key rotation: no previous master key is configured");
      return Fail(Errc::kCryptoFailure);
    }
    const auto batch_limit = static_cast<std::int64_t>(
        std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
    service::KeyRotationBatch batch;
    Transaction tx(db);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    if (auto done = RotateTokens(db, *old_key, batch_limit, batch); !done) {
      return done.error();
    }
    if (auto done = RotateIntegrations(db, *old_key, batch_limit, batch); !done) {
      return done.error();
    }
    if (auto done = RotateCodes(db, *old_key, batch_limit, batch); !done) {
      return done.error();
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    return batch;
  }

  /// Counts the UPDATE that just ran: one row rotated, or none (changed since the read).
  static void CountUpdate(const Database& db, service::KeyRotationBatch& batch) {
    if (db.Changes() == 1) {
      ++batch.rotated;
    } else {
      ++batch.changed;
    }
  }

  Result<void> RotateTokens(Database& db,
                            const crypto::MasterKey& old_key,
                            std::int64_t limit,
                            service::KeyRotationBatch& batch) {
    auto select = Statement::Prepare(db, R"sql(
SELECT "accountId", "clientId", "version", "accessToken", "refreshToken"
FROM amo_tokens WHERE "keyId" = ?1 ORDER BY "accountId", "clientId" LIMIT ?2)sql");
    if (!select) {
      return select.error();
    }
    if (auto bound = select->BindAll(std::string_view(old_key.Id()), limit); !bound) {
      return bound.error();
    }
    struct Rotated {
      std::int64_t account_id = 0;
      std::string client_id;
      std::int64_t version = 0;
      std::string access;
      std::optional<std::string> refresh;
    };
    std::vector<Rotated> rows;
    for (;;) {
      auto row = select->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      Rotated r{
          .account_id = select->Int(0), .client_id = select->Text(1), .version = select->Int(2)};
      auto access = crypto::Open(
          old_key, select->BlobAt(3), TokenAad(r.account_id, r.client_id, TokenKind::kAccess));
      std::optional<std::string> refresh;
      bool readable = access.has_value();
      if (readable && !select->IsNull(4)) {
        refresh = crypto::Open(
            old_key, select->BlobAt(4), TokenAad(r.account_id, r.client_id, TokenKind::kRefresh));
        readable = refresh.has_value();
      }
      if (!readable) {
        log->error(
            "key rotation: amo_tokens row accountId={} clientId={} does not open under "
            "the previous key; left as it is",
            r.account_id,
            r.client_id);
        ++batch.unreadable;
        continue;
      }
      r.access =
          crypto::Seal(key, *access, TokenAad(r.account_id, r.client_id, TokenKind::kAccess));
      if (refresh) {
        r.refresh =
            crypto::Seal(key, *refresh, TokenAad(r.account_id, r.client_id, TokenKind::kRefresh));
      }
      rows.push_back(std::move(r));
    }
    for (const Rotated& r : rows) {
      auto update = Statement::Prepare(db, R"sql(
UPDATE amo_tokens SET "keyId" = ?1, "accessToken" = ?2, "refreshToken" = ?3
WHERE "accountId" = ?4 AND "clientId" = ?5 AND "version" = ?6 AND "keyId" = ?7)sql");
      if (!update) {
        return update.error();
      }
      std::optional<Blob> refresh;
      if (r.refresh) {
        refresh = Blob{*r.refresh};
      }
      if (auto bound = update->BindAll(std::string_view(key.Id()),
                                       Blob{r.access},
                                       refresh,
                                       r.account_id,
                                       std::string_view(r.client_id),
                                       r.version,
                                       std::string_view(old_key.Id()));
          !bound) {
        return bound.error();
      }
      if (auto done = update->Run(); !done) {
        return done.error();
      }
      CountUpdate(db, batch);
    }
    return {};
  }

  Result<void> RotateIntegrations(Database& db,
                                  const crypto::MasterKey& old_key,
                                  std::int64_t limit,
                                  service::KeyRotationBatch& batch) {
    auto select = Statement::Prepare(db, R"sql(
SELECT "clientId", "clientSecret" FROM integrations WHERE "keyId" = ?1
ORDER BY "clientId" LIMIT ?2)sql");
    if (!select) {
      return select.error();
    }
    if (auto bound = select->BindAll(std::string_view(old_key.Id()), limit); !bound) {
      return bound.error();
    }
    std::vector<std::array<std::string, 3>> rows;  // clientId, old ciphertext, new ciphertext
    for (;;) {
      auto row = select->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      std::string client_id = select->Text(0);
      std::string sealed = select->BlobAt(1);
      auto plain = crypto::Open(old_key, sealed, store_schema::SecretAad(client_id));
      if (!plain) {
        log->error(
            "key rotation: integrations row clientId={} does not open under the previous "
            "key; left as it is",
            client_id);
        ++batch.unreadable;
        continue;
      }
      std::string resealed = crypto::Seal(key, *plain, store_schema::SecretAad(client_id));
      rows.push_back({std::move(client_id), std::move(sealed), std::move(resealed)});
    }
    for (const auto& [client_id, sealed, resealed] : rows) {
      auto update = Statement::Prepare(db, R"sql(
UPDATE integrations SET "keyId" = ?1, "clientSecret" = ?2
WHERE "clientId" = ?3 AND "keyId" = ?4 AND "clientSecret" = ?5)sql");
      if (!update) {
        return update.error();
      }
      if (auto bound = update->BindAll(std::string_view(key.Id()),
                                       Blob{resealed},
                                       std::string_view(client_id),
                                       std::string_view(old_key.Id()),
                                       Blob{sealed});
          !bound) {
        return bound.error();
      }
      if (auto done = update->Run(); !done) {
        return done.error();
      }
      CountUpdate(db, batch);
    }
    return {};
  }

  Result<void> RotateCodes(Database& db,
                           const crypto::MasterKey& old_key,
                           std::int64_t limit,
                           service::KeyRotationBatch& batch) {
    auto select = Statement::Prepare(db, R"sql(
SELECT "id", "codeHash", "code" FROM code_queue WHERE "keyId" = ?1 ORDER BY "id" LIMIT ?2)sql");
    if (!select) {
      return select.error();
    }
    if (auto bound = select->BindAll(std::string_view(old_key.Id()), limit); !bound) {
      return bound.error();
    }
    struct Rotated {
      std::int64_t id = 0;
      std::string sealed;
      std::string resealed;
    };
    std::vector<Rotated> rows;
    for (;;) {
      auto row = select->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      Rotated r{.id = select->Int(0), .sealed = select->BlobAt(2)};
      const std::string code_hash = select->Text(1);
      auto plain = crypto::Open(old_key, r.sealed, store_schema::CodeAad(code_hash));
      if (!plain) {
        log->error(
            "key rotation: code_queue row id={} does not open under the previous key; "
            "left as it is",
            r.id);
        ++batch.unreadable;
        continue;
      }
      r.resealed = crypto::Seal(key, *plain, store_schema::CodeAad(code_hash));
      rows.push_back(std::move(r));
    }
    for (const Rotated& r : rows) {
      auto update = Statement::Prepare(db, R"sql(
UPDATE code_queue SET "keyId" = ?1, "code" = ?2
WHERE "id" = ?3 AND "keyId" = ?4 AND "code" = ?5)sql");
      if (!update) {
        return update.error();
      }
      if (auto bound = update->BindAll(std::string_view(key.Id()),
                                       Blob{r.resealed},
                                       r.id,
                                       std::string_view(old_key.Id()),
                                       Blob{r.sealed});
          !bound) {
        return bound.error();
      }
      if (auto done = update->Run(); !done) {
        return done.error();
      }
      CountUpdate(db, batch);
    }
    return {};
  }

  Result<service::ConnectionCensus> CountConnections(Database& db) {
    service::ConnectionCensus census;
    auto by_status = Statement::Prepare(db, kCountByStatusSql);
    if (!by_status) {
      return by_status.error();
    }
    for (;;) {
      auto row = by_status->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      if (const auto status = core::ParseConnectionStatus(by_status->Text(0))) {
        census.by_status[static_cast<std::size_t>(*status)] =
            static_cast<std::size_t>(by_status->Int(1));
      }
    }
    auto oldest = Statement::Prepare(db, kOldestRefreshSql);
    if (!oldest) {
      return oldest.error();
    }
    auto row = oldest->Step();
    if (!row) {
      return row.error();
    }
    if (*row && !oldest->IsNull(0)) {
      const auto at = ParseIsoTime(oldest->Text(0));
      if (!at) {
        return Fail(Errc::kStoreFailure);
      }
      census.oldest_refresh = *at;
    }
    return census;
  }

  Result<std::size_t> CountPending(Database& db) {
    auto stmt = Statement::Prepare(db, kCountPendingSql);
    if (!stmt) {
      return stmt.error();
    }
    auto row = stmt->Step();
    if (!row) {
      return row.error();
    }
    return static_cast<std::size_t>(stmt->Int(0));
  }

  SqliteOptions options;
  core::SystemClock system_clock;  // when options.clock is null
  crypto::MasterKey key;
  std::shared_ptr<spdlog::logger> log;
  std::vector<Database> connections;  // never resized: threads keep pointers into it
  std::atomic<std::size_t> next_connection{0};
  std::unique_ptr<detail::CommitProbes> probe;  // used on callers' threads, never on the pool
  int schema_version = 0;
  boost::asio::thread_pool pool;  // one thread per connection
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(SqliteOptions options,
                                                       crypto::MasterKey key) {
  auto log = StoreLogger();
  try {
    if (options.path.empty() || options.path == ":memory:") {
      log->error("refusing database path '{}': a file is required", options.path);
      return Fail(Errc::kStoreFailure);
    }
    if (options.threads == 0) {
      log->error("refusing threads = 0: at least one connection is needed");
      return Fail(Errc::kStoreFailure);
    }
    std::vector<Database> connections;
    connections.reserve(options.threads);
    auto first = Database::Open(options.path, log);
    if (!first) {
      return first.error();
    }
    connections.push_back(std::move(*first));
    const core::SystemClock system_clock;
    const core::Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
    auto version = detail::Migrate(connections.front(), FormatIsoTime(clock.Now()));
    if (!version) {
      return version.error();
    }
    while (connections.size() < options.threads) {
      auto next = Database::Open(options.path, log);
      if (!next) {
        return next.error();
      }
      connections.push_back(std::move(*next));
    }
    // Enough for the I/O threads of a machine of a few cores to each find one free (a busy one
    // is waited for, so fewer only cost some queueing).
    constexpr std::size_t kCommitProbes = 4;
    auto probes = detail::CommitProbes::Open(options.path, kCommitProbes, log);
    if (!probes) {
      return probes.error();
    }
    log->info("opened {} (schema version {}, {} connections)",
              options.path,
              *version,
              connections.size());
    auto impl = std::make_unique<Impl>(std::move(options),
                                       std::move(key),
                                       std::move(log),
                                       std::move(connections),
                                       std::move(*probes),
                                       *version);
    return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
  } catch (const std::exception& e) {
    log->error("cannot open the store: {}", e.what());
  }
  return Fail(Errc::kStoreFailure);
}

detail::StoreParts SqliteStore::Parts() const {
  Impl* impl = impl_.get();
  return {
      .pool = &impl->pool,
      .key = &impl->key,
      .previous_key = impl->PreviousKey(),
      .log = impl->log.get(),
      .connection = [impl] { return impl->ThisThreadConnection(); },
      .insert_events = &Impl::InsertEvents,
  };
}

std::optional<std::uint64_t> SqliteStore::CommitCount() noexcept {
  return impl_->probe->Count();
}

int SqliteStore::SchemaVersion() const {
  return impl_->schema_version;
}

// Each method hands a named local to RunBlocking (never a lambda inside the co_await
// expression: GCC 12, asio#858). The lambda holds copies of the arguments and the Impl pointer,
// which outlives every call (the caller keeps the store alive while awaiting it).

service::Task<Result<core::Connection>> SqliteStore::Upsert(core::Connection connection,
                                                            std::vector<service::Event> events) {
  Impl* impl = impl_.get();
  auto work = [impl, connection = std::move(connection), events = std::move(events)] {
    return impl->Run("upsert", &Impl::Upsert, connection, events);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<core::Connection>> SqliteStore::Replace(core::Connection connection,
                                                             std::int64_t expected_version,
                                                             std::vector<service::Event> events) {
  Impl* impl = impl_.get();
  auto work =
      [impl, connection = std::move(connection), expected_version, events = std::move(events)] {
        return impl->Run("replace", &Impl::Replace, connection, expected_version, events);
      };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<core::Connection>>> SqliteStore::ListDue(core::TimePoint now,
                                                                          std::size_t limit) {
  Impl* impl = impl_.get();
  auto work = [impl, now, limit] { return impl->Run("list due", &Impl::ListDue, now, limit); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<core::Connection>>> SqliteStore::Find(core::AccountKey key) {
  Impl* impl = impl_.get();
  auto work = [impl, key = std::move(key)] { return impl->Run("find", &Impl::Find, key); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<core::Connection>>> SqliteStore::FindByAccount(
    std::int64_t account_id) {
  Impl* impl = impl_.get();
  auto work = [impl, account_id] {
    return impl->Run("find by account", &Impl::FindByAccount, account_id);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<core::Connection>>> SqliteStore::FindByDomain(
    std::string base_domain) {
  Impl* impl = impl_.get();
  auto work = [impl, base_domain = std::move(base_domain)] {
    return impl->Run("find by domain", &Impl::FindByDomain, base_domain);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<core::Connection>>> SqliteStore::List() {
  Impl* impl = impl_.get();
  auto work = [impl] { return impl->Run("list", &Impl::List); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::Put(service::PendingState state, core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, state = std::move(state), now] {
    return impl->Run("put state", &Impl::Put, state, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<service::PendingState>>> SqliteStore::Take(
    std::string state_hash, core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, state_hash = std::move(state_hash), now] {
    return impl->Run("take state", &Impl::Take, state_hash, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<service::PendingState>>> SqliteStore::Peek(
    std::string state_hash, core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, state_hash = std::move(state_hash), now] {
    return impl->Run("peek state", &Impl::Peek, state_hash, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::AddIntegration(service::ExternalIntegration integration) {
  Impl* impl = impl_.get();
  auto work = [impl, integration = std::move(integration)] {
    return impl->Run("add integration", &Impl::AddIntegration, integration);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::size_t>> SqliteStore::ForgetUnusedIntegrations(
    core::TimePoint created_before) {
  Impl* impl = impl_.get();
  auto work = [impl, created_before] {
    return impl->Run("forget unused integrations", &Impl::ForgetUnusedIntegrations, created_before);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<service::ExternalIntegration>>> SqliteStore::FindIntegration(
    std::string client_id) {
  Impl* impl = impl_.get();
  auto work = [impl, client_id = std::move(client_id)] {
    return impl->Run("find integration", &Impl::FindIntegration, client_id);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<service::ExternalIntegration>>>
SqliteStore::FindIntegrationByState(std::string state_hash) {
  Impl* impl = impl_.get();
  auto work = [impl, state_hash = std::move(state_hash)] {
    return impl->Run("find integration by state", &Impl::FindIntegrationByState, state_hash);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<service::ExternalIntegration>>> SqliteStore::ListIntegrations() {
  Impl* impl = impl_.get();
  auto work = [impl] { return impl->Run("list integrations", &Impl::ListIntegrations); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<bool>> SqliteStore::MarkUsed(std::string code_hash, core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, code_hash = std::move(code_hash), now] {
    return impl->Run("mark code used", &Impl::MarkUsed, code_hash, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<bool>> SqliteStore::TryAcquire(core::AccountKey key,
                                                    std::string holder,
                                                    core::TimePoint now,
                                                    core::TimePoint until) {
  Impl* impl = impl_.get();
  auto work = [impl, key = std::move(key), holder = std::move(holder), now, until] {
    return impl->Run("acquire lease", &Impl::TryAcquire, key, holder, now, until);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::Release(core::AccountKey key, std::string holder) {
  Impl* impl = impl_.get();
  auto work = [impl, key = std::move(key), holder = std::move(holder)] {
    return impl->Run("release lease", &Impl::Release, key, holder);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::optional<std::string>>> SqliteStore::Holder(core::AccountKey key) {
  Impl* impl = impl_.get();
  auto work = [impl, key = std::move(key)] {
    return impl->Run("read lease holder", &Impl::LeaseHolder, key);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<bool>> SqliteStore::TakeOver(core::AccountKey key,
                                                  std::string gone,
                                                  std::string holder,
                                                  core::TimePoint until) {
  Impl* impl = impl_.get();
  auto work =
      [impl, key = std::move(key), gone = std::move(gone), holder = std::move(holder), until] {
        return impl->Run("take over lease", &Impl::TakeOver, key, gone, holder, until);
      };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<core::Connection>>> SqliteStore::ClaimDueRefreshes(
    core::TimePoint now, std::string holder, core::TimePoint until, std::size_t limit) {
  Impl* impl = impl_.get();
  auto work = [impl, now, holder = std::move(holder), until, limit] {
    return impl->Run("claim due refreshes", &Impl::ClaimDueRefreshes, now, holder, until, limit);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::Enqueue(std::vector<service::Event> events,
                                                 core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, events = std::move(events), now] {
    return impl->Run("enqueue events", &Impl::Enqueue, events, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<service::OutboxEntry>>> SqliteStore::ClaimDue(
    core::TimePoint now, core::TimePoint claim_until, std::size_t limit) {
  Impl* impl = impl_.get();
  auto work = [impl, now, claim_until, limit] {
    return impl->Run("claim events", &Impl::ClaimDue, now, claim_until, limit);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::MarkDelivered(std::int64_t id, core::TimePoint now) {
  Impl* impl = impl_.get();
  auto work = [impl, id, now] {
    return impl->Run("mark event delivered", &Impl::MarkDelivered, id, now);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::MarkFailed(std::int64_t id,
                                                    std::string error,
                                                    core::TimePoint next_attempt_at) {
  Impl* impl = impl_.get();
  auto work = [impl, id, error = std::move(error), next_attempt_at] {
    return impl->Run("mark event failed", &Impl::MarkFailed, id, error, next_attempt_at);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<service::AccountEvent>>> SqliteStore::ListAccountEvents(
    std::int64_t account_id, std::size_t limit) {
  Impl* impl = impl_.get();
  auto work = [impl, account_id, limit] {
    return impl->Run("list account events", &Impl::ListAccountEvents, account_id, limit);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::vector<std::pair<std::string, std::int64_t>>>>
SqliteStore::CountByKeyId() {
  Impl* impl = impl_.get();
  auto work = [impl] { return impl->Run("count rows by key id", &Impl::CountByKeyId); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<service::KeyRotationBatch>> SqliteStore::RotateKeyBatch(std::size_t limit) {
  Impl* impl = impl_.get();
  auto work = [impl, limit] {
    return impl->Run("rotate a key batch", &Impl::RotateKeyBatch, limit);
  };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<service::ConnectionCensus>> SqliteStore::CountConnections() {
  Impl* impl = impl_.get();
  auto work = [impl] { return impl->Run("count connections", &Impl::CountConnections); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

service::Task<Result<std::size_t>> SqliteStore::CountPending() {
  Impl* impl = impl_.get();
  auto work = [impl] { return impl->Run("count pending events", &Impl::CountPending); };
  co_return co_await net::RunBlocking(impl->pool, std::move(work));
}

}  // namespace amoauth::store_sqlite
