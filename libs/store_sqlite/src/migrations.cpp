#include "migrations.hpp"

#include <array>
#include <cstdint>

namespace amoauth::store_sqlite::detail {

namespace {

// Column names of amo_tokens are quoted camelCase on purpose: operators query them by those names
// (`SELECT "accountId", "expiresAt", "createdAt" FROM amo_tokens;`). Times are ISO-8601 UTC text
// of fixed width ("2026-11-22T19:43:00Z"), compared as strings. docs/storage.md explains every
// column.
constexpr std::string_view kVersion1 = R"sql(
CREATE TABLE amo_tokens (
  "accountId"    INTEGER NOT NULL,
  "clientId"     TEXT    NOT NULL,
  "baseDomain"   TEXT    NOT NULL,
  "apiDomain"    TEXT    NOT NULL DEFAULT '',
  "userId"       TEXT    NOT NULL DEFAULT '',
  "status"       TEXT    NOT NULL,
  "keyId"        TEXT    NOT NULL,
  "accessToken"  BLOB    NOT NULL,
  "refreshToken" BLOB,
  "expiresAt"    TEXT    NOT NULL,
  "version"      INTEGER NOT NULL,
  "createdAt"    TEXT    NOT NULL,
  "updatedAt"    TEXT    NOT NULL,
  PRIMARY KEY ("accountId", "clientId")
);

CREATE TABLE oauth_states (
  state_hash TEXT PRIMARY KEY,
  client_id  TEXT NOT NULL,
  mode       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

CREATE TABLE used_codes (
  code_hash TEXT PRIMARY KEY,
  used_at   TEXT NOT NULL
);
CREATE INDEX used_codes_used_at ON used_codes (used_at);
)sql";

// Refresh bookkeeping, refresh leases and the webhook outbox (issue 3, "tokens that never die").
// A time that is "never" (core::TimePoint{}) is NULL, so `"nextRefreshAt" <= ?` skips it without
// a special case. Rows from version 1 get lastRefreshAt = nextRefreshAt = updatedAt: their tokens
// were born no later than that, and a due nextRefreshAt makes the scheduler look at them at once.
// amo_tokens_due serves ListDue (status = ? AND nextRefreshAt <= ? ORDER BY nextRefreshAt, key)
// as one range scan in order, with no sort, however many rows there are.
constexpr std::string_view kVersion2 = R"sql(
ALTER TABLE amo_tokens ADD COLUMN "lastRefreshAt"   TEXT;
ALTER TABLE amo_tokens ADD COLUMN "nextRefreshAt"   TEXT;
ALTER TABLE amo_tokens ADD COLUMN "refreshFailures" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE amo_tokens ADD COLUMN "lastError"       TEXT    NOT NULL DEFAULT '';
ALTER TABLE amo_tokens ADD COLUMN "lastErrorAt"     TEXT;
UPDATE amo_tokens SET "lastRefreshAt" = "updatedAt", "nextRefreshAt" = "updatedAt";
CREATE INDEX amo_tokens_due ON amo_tokens ("status", "nextRefreshAt", "accountId", "clientId");

CREATE TABLE refresh_leases (
  "accountId" INTEGER NOT NULL,
  "clientId"  TEXT    NOT NULL,
  "holder"    TEXT    NOT NULL,
  "expiresAt" TEXT    NOT NULL,
  PRIMARY KEY ("accountId", "clientId")
);

CREATE TABLE webhook_outbox (
  "id"            INTEGER PRIMARY KEY AUTOINCREMENT,
  "type"          TEXT    NOT NULL,
  "body"          TEXT    NOT NULL,
  "createdAt"     TEXT    NOT NULL,
  "attempts"      INTEGER NOT NULL DEFAULT 0,
  "nextAttemptAt" TEXT    NOT NULL,
  "lastError"     TEXT    NOT NULL DEFAULT '',
  "deliveredAt"   TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox ("nextAttemptAt") WHERE "deliveredAt" IS NULL;
CREATE INDEX webhook_outbox_delivered ON webhook_outbox ("deliveredAt")
  WHERE "deliveredAt" IS NOT NULL;
)sql";

// External integrations (issue 4, "every way in"): amoCRM creates one per metadata-button
// authorization and posts its keys to the secrets webhook; the client secret is sealed like the
// tokens. A state remembers what it was issued for, so only a metadata state accepts keys.
constexpr std::string_view kVersion3 = R"sql(
CREATE TABLE integrations (
  "clientId"     TEXT PRIMARY KEY,
  "keyId"        TEXT NOT NULL,
  "clientSecret" BLOB NOT NULL,
  "stateHash"    TEXT NOT NULL UNIQUE,
  "createdAt"    TEXT NOT NULL
);
ALTER TABLE oauth_states ADD COLUMN purpose TEXT NOT NULL DEFAULT 'connect';
)sql";

// Codes that arrive without a person (the widget-install and exchange_api_key hooks, issue 4):
// a durable queue of them, sealed like tokens (AAD "code_queue/{codeHash}"), deduplicated by the
// code's SHA-256; the exchange_api_key limit per (user, integration), keyed by a hash (never the
// login); and an index for finding an account's rows by host (POST /v1/legacy-login).
constexpr std::string_view kVersion4 = R"sql(
CREATE TABLE code_queue (
  "id"            INTEGER PRIMARY KEY AUTOINCREMENT,
  "codeHash"      TEXT    NOT NULL UNIQUE,
  "keyId"         TEXT    NOT NULL,
  "code"          BLOB    NOT NULL,
  "accountHost"   TEXT    NOT NULL,
  "clientId"      TEXT    NOT NULL,
  "source"        TEXT    NOT NULL,
  "receivedAt"    TEXT    NOT NULL,
  "expiresAt"     TEXT    NOT NULL,
  "attempts"      INTEGER NOT NULL DEFAULT 0,
  "nextAttemptAt" TEXT    NOT NULL,
  "lastError"     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX code_queue_due ON code_queue ("nextAttemptAt");

CREATE TABLE exchange_quota (
  "subjectHash" TEXT PRIMARY KEY,
  "takenAt"     TEXT NOT NULL
);

CREATE INDEX amo_tokens_base_domain ON amo_tokens ("baseDomain");
)sql";

constexpr std::array<std::string_view, 4> kMigrations = {
    kVersion1, kVersion2, kVersion3, kVersion4};

Result<int> CurrentVersion(Database& db) {
  auto stmt = Statement::Prepare(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!stmt) {
    return stmt.error();
  }
  auto row = stmt->Step();
  if (!row) {
    return row.error();
  }
  return static_cast<int>(stmt->Int(0));
}

// Applies script `version` unless another process got there first. Returns the version after.
Result<int> Apply(Database& db, int version, std::string_view applied_at) {
  Transaction tx(db);
  if (auto begun = tx.Begin(); !begun) {
    return begun.error();
  }
  auto current = CurrentVersion(db);
  if (!current) {
    return current.error();
  }
  if (*current >= version) {
    return *current;  // nothing to do; the transaction rolls back harmlessly
  }
  if (auto done = db.Exec(kMigrations[static_cast<std::size_t>(version - 1)]); !done) {
    db.Log().error("schema migration {} failed", version);
    return done.error();
  }
  auto record =
      Statement::Prepare(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
  if (!record) {
    return record.error();
  }
  if (auto bound = record->BindAll(std::int64_t{version}, applied_at); !bound) {
    return bound.error();
  }
  if (auto inserted = record->Run(); !inserted) {
    return inserted.error();
  }
  if (auto committed = tx.Commit(); !committed) {
    return committed.error();
  }
  db.Log().info("database schema migrated to version {}", version);
  return version;
}

}  // namespace

std::span<const std::string_view> Migrations() {
  return kMigrations;
}

Result<int> Migrate(Database& db, std::string_view applied_at) {
  if (auto created = db.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                             "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
      !created) {
    return created.error();
  }
  auto current = CurrentVersion(db);
  if (!current) {
    return current.error();
  }
  const int latest = static_cast<int>(kMigrations.size());
  if (*current > latest) {
    db.Log().error(
        "database schema version {} is newer than this build supports ({}); refusing to use it",
        *current,
        latest);
    return Fail(Errc::kStoreFailure);
  }
  int version = *current;
  while (version < latest) {
    auto applied = Apply(db, version + 1, applied_at);
    if (!applied) {
      return applied.error();
    }
    version = *applied;  // may jump ahead if another process migrated meanwhile
  }
  if (version > latest) {
    db.Log().error(
        "database schema version {} is newer than this build supports ({})", version, latest);
    return Fail(Errc::kStoreFailure);
  }
  return version;
}

}  // namespace amoauth::store_sqlite::detail
