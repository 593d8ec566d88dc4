#pragma once
// The statements PgStore runs, private to libs/store_pg (and its tests, which EXPLAIN them).
// Parameters are $1, $2, … (PQexecParams); every time is the fixed-width ISO-8601 text of
// docs/storage.md §3, compared as text (COLLATE "C" columns: byte order, as SQLite).

#include <string_view>

namespace amoauth::store_pg::detail::sql {

// ---- amo_tokens ---------------------------------------------------------------------------------

// Every amo_tokens query reads the columns in this order (see ReadConnection).
#define AMOAUTH_TOKEN_COLUMNS                                                            \
  R"("accountId", "clientId", "baseDomain", "apiDomain", "userId", "status", "keyId", )" \
  R"("accessToken", "refreshToken", "expiresAt", "version", "createdAt", "updatedAt", )" \
  R"("lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError", "lastErrorAt")"

inline constexpr std::string_view kFindSql =
    "SELECT " AMOAUTH_TOKEN_COLUMNS
    R"( FROM amo_tokens WHERE "accountId" = $1 AND "clientId" = $2)";
inline constexpr std::string_view kFindByAccountSql =
    "SELECT " AMOAUTH_TOKEN_COLUMNS
    R"( FROM amo_tokens WHERE "accountId" = $1 ORDER BY "clientId")";
inline constexpr std::string_view kListSql =
    "SELECT " AMOAUTH_TOKEN_COLUMNS R"( FROM amo_tokens ORDER BY "accountId", "clientId")";
// Served by the amo_tokens_base_domain index.
inline constexpr std::string_view kFindByDomainSql =
    "SELECT " AMOAUTH_TOKEN_COLUMNS
    R"( FROM amo_tokens WHERE "baseDomain" = $1 ORDER BY "accountId", "clientId")";
// $1 is the active status. The amo_tokens_due index (status, nextRefreshAt, accountId, clientId)
// answers it as one range scan in index order with no sort (a test checks the plan). NULL
// ("never") fails `<=`, so unscheduled rows drop out by themselves.
inline constexpr std::string_view kListDueSql =
    "SELECT " AMOAUTH_TOKEN_COLUMNS
    R"( FROM amo_tokens WHERE "status" = $1 AND "nextRefreshAt" <= $2
        ORDER BY "status", "nextRefreshAt", "accountId", "clientId" LIMIT $3)";

#undef AMOAUTH_TOKEN_COLUMNS

// Writes bind $1…$17 in this order (ConnectionParams).
// One statement: PostgreSQL takes the row lock (or the key's insertion lock) before reading the
// old version, so concurrent upserts of one key serialise and no version repeats.
inline constexpr std::string_view kUpsertSql = R"sql(
INSERT INTO amo_tokens ("accountId", "clientId", "baseDomain", "apiDomain", "userId", "status",
                        "keyId", "accessToken", "refreshToken", "expiresAt", "version",
                        "createdAt", "updatedAt", "lastRefreshAt", "nextRefreshAt",
                        "refreshFailures", "lastError", "lastErrorAt")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $13, $14, $15, $16, $17)
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

// The compare-and-swap. Under READ COMMITTED an UPDATE that waited for a concurrent writer's
// row lock re-checks its WHERE against the committed row, so of two refreshers at one version
// exactly one matches. Parameters as the upsert's without createdAt ($11 is updatedAt), and $17
// the expected version.
inline constexpr std::string_view kReplaceSql = R"sql(
UPDATE amo_tokens SET
  "baseDomain" = $3,
  "apiDomain" = $4,
  "userId" = $5,
  "status" = $6,
  "keyId" = $7,
  "accessToken" = $8,
  "refreshToken" = $9,
  "expiresAt" = $10,
  "version" = "version" + 1,
  "updatedAt" = $11,
  "lastRefreshAt" = $12,
  "nextRefreshAt" = $13,
  "refreshFailures" = $14,
  "lastError" = $15,
  "lastErrorAt" = $16
WHERE "accountId" = $1 AND "clientId" = $2 AND "version" = $17
RETURNING "version", "createdAt")sql";

inline constexpr std::string_view kExistsSql =
    R"sql(SELECT 1 FROM amo_tokens WHERE "accountId" = $1 AND "clientId" = $2)sql";

// Delivered to listeners when the transaction commits, not before; never if it rolls back.
inline constexpr std::string_view kNotifySql = "SELECT pg_notify('amoauth_tokens', $1)";

// ---- refresh_leases -----------------------------------------------------------------------------

// One statement: PostgreSQL's ON CONFLICT takes the existing row's lock (or waits for a racing
// insert to commit) before evaluating the WHERE, so of any number of instances racing for a
// lease exactly one inserts it or takes it over; the others get no row back.
// $1 $2 key, $3 holder, $4 until, $5 now.
inline constexpr std::string_view kAcquireLeaseSql = R"sql(
INSERT INTO refresh_leases ("accountId", "clientId", "holder", "expiresAt")
VALUES ($1, $2, $3, $4)
ON CONFLICT ("accountId", "clientId") DO UPDATE SET
  "holder" = excluded."holder",
  "expiresAt" = excluded."expiresAt"
WHERE refresh_leases."holder" = excluded."holder" OR refresh_leases."expiresAt" <= $5
RETURNING "holder")sql";

inline constexpr std::string_view kReleaseLeaseSql = R"sql(
DELETE FROM refresh_leases WHERE "accountId" = $1 AND "clientId" = $2 AND "holder" = $3)sql";

inline constexpr std::string_view kLeaseHolderSql = R"sql(
SELECT "holder" FROM refresh_leases WHERE "accountId" = $1 AND "clientId" = $2)sql";

// From a holder known dead, or our own already (a rerun after a lost commit finds it ours).
// $1 $2 key, $3 the dead holder, $4 holder, $5 until.
inline constexpr std::string_view kTakeOverLeaseSql = R"sql(
UPDATE refresh_leases SET "holder" = $4, "expiresAt" = $5
WHERE "accountId" = $1 AND "clientId" = $2 AND "holder" IN ($3, $4)
RETURNING "holder")sql";

// The scheduler's claim, one statement. `due` is ListDue's range scan of amo_tokens_due (in index
// order, no sort) joined with the free leases, each row locked FOR UPDATE SKIP LOCKED: a row
// another claimer has locked (or a refresh is writing) is passed over, never waited for. LIMIT
// sits above the lock, so skipped rows do not count. The lease test in `due` reads the statement's
// snapshot; `taken` decides: ON CONFLICT sees leases committed since (an instance that claimed the
// row and committed just before we locked it, or an on-demand TryAcquire) and its WHERE refuses
// them, so only the rows whose lease we now hold come back. `due` carries the token columns as
// locked (the newest version), in ReadConnection's order.
// $1 active status, $2 now, $3 holder, $4 until, $5 limit.
inline constexpr std::string_view kClaimDueRefreshesSql = R"sql(
WITH due AS (
  SELECT t."accountId", t."clientId", t."baseDomain", t."apiDomain", t."userId", t."status",
         t."keyId", t."accessToken", t."refreshToken", t."expiresAt", t."version", t."createdAt",
         t."updatedAt", t."lastRefreshAt", t."nextRefreshAt", t."refreshFailures",
         t."lastError", t."lastErrorAt"
  FROM amo_tokens t
  WHERE t."status" = $1 AND t."nextRefreshAt" <= $2
    AND NOT EXISTS (SELECT 1 FROM refresh_leases l
                    WHERE l."accountId" = t."accountId" AND l."clientId" = t."clientId"
                      AND l."holder" <> $3 AND l."expiresAt" > $2)
  ORDER BY t."status", t."nextRefreshAt", t."accountId", t."clientId"
  LIMIT $5
  FOR UPDATE OF t SKIP LOCKED
), taken AS (
  INSERT INTO refresh_leases ("accountId", "clientId", "holder", "expiresAt")
  SELECT "accountId", "clientId", $3::text, $4::text FROM due
  ON CONFLICT ("accountId", "clientId") DO UPDATE SET
    "holder" = excluded."holder",
    "expiresAt" = excluded."expiresAt"
  WHERE refresh_leases."holder" = excluded."holder" OR refresh_leases."expiresAt" <= $2
  RETURNING "accountId", "clientId"
)
SELECT due.* FROM due JOIN taken USING ("accountId", "clientId")
ORDER BY due."nextRefreshAt", due."accountId", due."clientId")sql";

// ---- webhook_outbox -----------------------------------------------------------------------------

// $1 type, $2 body, $3 the enqueue time: createdAt, and due at once.
inline constexpr std::string_view kEnqueueSql = R"sql(
INSERT INTO webhook_outbox ("type", "body", "createdAt", "attempts", "nextAttemptAt")
VALUES ($1, $2, $3, 0, $3))sql";

// One statement picks and marks. SKIP LOCKED: an entry another instance is claiming right now is
// passed over instead of waited for, and one it has just claimed fails the re-checked WHERE (its
// nextAttemptAt moved), so no entry is handed to two claimers and no claimer blocks another.
// $1 now, $2 claim_until, $3 limit. RETURNING order is not promised; the caller sorts by id.
inline constexpr std::string_view kClaimSql = R"sql(
UPDATE webhook_outbox SET "attempts" = "attempts" + 1, "nextAttemptAt" = $2
WHERE "id" IN (SELECT "id" FROM webhook_outbox
               WHERE "deliveredAt" IS NULL AND "nextAttemptAt" <= $1
               ORDER BY "id" LIMIT $3
               FOR UPDATE SKIP LOCKED)
RETURNING "id", "type", "body", "createdAt", "attempts", "nextAttemptAt", "lastError")sql";

inline constexpr std::string_view kPruneDeliveredSql =
    R"sql(DELETE FROM webhook_outbox WHERE "deliveredAt" < $1)sql";

// Both leave a delivered entry alone: a late report from a claimer whose claim had run out must
// not put an event back in the queue once someone delivered it.
inline constexpr std::string_view kMarkDeliveredSql = R"sql(
UPDATE webhook_outbox SET "deliveredAt" = $2 WHERE "id" = $1 AND "deliveredAt" IS NULL)sql";
inline constexpr std::string_view kMarkFailedSql = R"sql(
UPDATE webhook_outbox SET "lastError" = $2, "nextAttemptAt" = $3
WHERE "id" = $1 AND "deliveredAt" IS NULL)sql";

inline constexpr std::string_view kCountPendingSql =
    R"sql(SELECT count(*) FROM webhook_outbox WHERE "deliveredAt" IS NULL)sql";

// ---- account_events -----------------------------------------------------------------------------

// $1 accountId, $2 clientId, $3 type, $4 body, $5 createdAt.
inline constexpr std::string_view kInsertHistorySql = R"sql(
INSERT INTO account_events ("accountId", "clientId", "type", "body", "createdAt")
VALUES ($1, $2, $3, $4, $5))sql";

// Keeps the newest $3 entries of the row ($1, $2): deletes from the ($3 + 1)-th newest down, one
// range of account_events_account.
inline constexpr std::string_view kTrimHistorySql = R"sql(
DELETE FROM account_events WHERE "accountId" = $1 AND "clientId" = $2 AND "id" <= (
  SELECT "id" FROM account_events WHERE "accountId" = $1 AND "clientId" = $2
  ORDER BY "id" DESC LIMIT 1 OFFSET $3))sql";

// $1 accountId, $2 limit. Newest first, every integration of the account.
inline constexpr std::string_view kListHistorySql = R"sql(
SELECT "id", "accountId", "clientId", "type", "body", "createdAt" FROM account_events
WHERE "accountId" = $1 ORDER BY "id" DESC LIMIT $2)sql";

// GET /metrics: both read amo_tokens_last_refresh ("status", "lastRefreshAt") alone.
inline constexpr std::string_view kCountByStatusSql =
    R"sql(SELECT "status", count(*) FROM amo_tokens GROUP BY "status")sql";
inline constexpr std::string_view kOldestRefreshSql =
    R"sql(SELECT min("lastRefreshAt") FROM amo_tokens WHERE "status" = 'active')sql";

// ---- code_queue ---------------------------------------------------------------------------------

inline constexpr std::string_view kEnqueueCodeSql = R"sql(
INSERT INTO code_queue ("codeHash", "keyId", "code", "accountHost", "clientId", "source",
                        "receivedAt", "expiresAt", "attempts", "nextAttemptAt")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)
ON CONFLICT ("codeHash") DO NOTHING)sql";

// As kClaimSql. $1 now, $2 claim_until, $3 limit.
inline constexpr std::string_view kClaimCodesSql = R"sql(
UPDATE code_queue SET "attempts" = "attempts" + 1, "nextAttemptAt" = $2
WHERE "id" IN (SELECT "id" FROM code_queue
               WHERE "nextAttemptAt" <= $1 ORDER BY "nextAttemptAt", "id" LIMIT $3
               FOR UPDATE SKIP LOCKED)
RETURNING "id", "codeHash", "keyId", "code", "accountHost", "clientId", "source", "receivedAt",
          "expiresAt", "attempts", "nextAttemptAt", "lastError")sql";

inline constexpr std::string_view kDeleteCodeSql =
    R"sql(DELETE FROM code_queue WHERE "id" = $1)sql";
inline constexpr std::string_view kRetryCodeSql =
    R"sql(UPDATE code_queue SET "lastError" = $2, "nextAttemptAt" = $3 WHERE "id" = $1)sql";
inline constexpr std::string_view kCountCodesSql = R"sql(SELECT count(*) FROM code_queue)sql";

// ---- exchange_quota -----------------------------------------------------------------------------

// As the lease: one conditional upsert, exactly one racer takes the slot. $1 subject, $2 now,
// $3 now - interval.
inline constexpr std::string_view kTakeSql = R"sql(
INSERT INTO exchange_quota ("subjectHash", "takenAt") VALUES ($1, $2)
ON CONFLICT ("subjectHash") DO UPDATE SET "takenAt" = excluded."takenAt"
WHERE exchange_quota."takenAt" <= $3
RETURNING "takenAt")sql";
inline constexpr std::string_view kTakenAtSql =
    R"sql(SELECT "takenAt" FROM exchange_quota WHERE "subjectHash" = $1)sql";
// Only the take that $2 made: a slot taken again since is someone else's.
inline constexpr std::string_view kGiveBackSql =
    R"sql(DELETE FROM exchange_quota WHERE "subjectHash" = $1 AND "takenAt" = $2)sql";

// ---- integrations -------------------------------------------------------------------------------

inline constexpr std::string_view kIntegrationColumns =
    R"("clientId", "keyId", "clientSecret", "stateHash", "createdAt")";

}  // namespace amoauth::store_pg::detail::sql
