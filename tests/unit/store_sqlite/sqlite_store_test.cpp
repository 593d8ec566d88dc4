// SQLite-only store behaviour: the file format, WAL, query plans, the migration of files written
// by older versions, paths SQLite refuses. What every engine must do is the store contract
// (tests/unit/store_contract), which runs on SQLite too.

#include "amoauth/store_sqlite/sqlite_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/cached_connection_store.hpp"
#include "migrations.hpp"
#include "sqlite_engine.hpp"
#include "store_engine.hpp"
#include "store_test_helpers.hpp"

namespace {

namespace fs = std::filesystem;
using amoauth::Errc;
using amoauth::core::Connection;
using amoauth::core::FromUnixSeconds;
using amoauth::core::TimePoint;
using amoauth::crypto::MasterKey;
using amoauth::store_sqlite::SqliteOptions;
using amoauth::store_sqlite::SqliteStore;
using amoauth::testing::store::At;
using amoauth::testing::store::Clients;
using amoauth::testing::store::ExpectError;
using amoauth::testing::store::kNow;
using amoauth::testing::store::MakeConnection;
using amoauth::testing::store::RawDb;
using amoauth::testing::store::ReadFileBytes;
using amoauth::testing::store::Rows;
using amoauth::testing::store::SqliteEngine;
using amoauth::testing::store::StoreEngine;
using amoauth::testing::store::Unwrap;

class SqliteStoreTest : public amoauth::testing::store::StoreTest {
 protected:
  std::unique_ptr<StoreEngine> MakeEngine() override { return std::make_unique<SqliteEngine>(); }
  SqliteEngine& Sqlite() { return static_cast<SqliteEngine&>(*engine_); }
  std::string DbPath() { return Sqlite().DbPath(); }
  fs::path Dir() { return Sqlite().Dir(); }
};

TEST_F(SqliteStoreTest, UsesWriteAheadLoggingAfterAReopen) {
  OpenStore().reset();
  auto store = OpenStore();
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), (Rows{{"wal"}}));
}

TEST_F(SqliteStoreTest, RefusesAnInMemoryDatabase) {
  SqliteOptions options;
  options.path = ":memory:";
  auto store = SqliteStore::Open(options, key_);
  ASSERT_FALSE(store.has_value());
  ExpectError(store.error(), Errc::kStoreFailure);
}

TEST_F(SqliteStoreTest, RefusesAMissingDirectory) {
  SqliteOptions options;
  options.path = (Dir() / "no-such-dir" / "amoauth.db").string();
  auto store = SqliteStore::Open(options, key_);
  ASSERT_FALSE(store.has_value());
  ExpectError(store.error(), Errc::kStoreFailure);
}

TEST_F(SqliteStoreTest, SqliteDateFunctionsReadTheStoredTimes) {
  auto store = OpenStore();
  clock_.Set(1'795'290'180);  // 2026-11-21T19:43:00Z
  Connection c = MakeConnection(31'337'001, "2912780f-a1e4-4d5d-a069-ee01422d8bef");
  c.expires_at = FromUnixSeconds(1'795'376'580);  // 2026-11-22T19:43:00Z
  Unwrap(Run(store->Upsert(c, {})));

  RawDb raw(DbPath());
  EXPECT_EQ(raw.Query(R"(SELECT datetime("expiresAt"), unixepoch("expiresAt") FROM amo_tokens)"),
            (Rows{{"2026-11-22 19:43:00", "1795376580"}}));
}

TEST_F(SqliteStoreTest, TokensAreBlobsAndAnEmptyRefreshTokenIsNull) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(9, "llt", "long-lived-access-token", ""), {})));
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Query(R"(SELECT "refreshToken" IS NULL, typeof("accessToken") FROM amo_tokens)"),
            (Rows{{"1", "blob"}}));
}

TEST_F(SqliteStoreTest, TokensNeverReachTheDatabaseFileAfterACheckpoint) {
  auto store = OpenStore();
  Connection c = MakeConnection(11, "plain", "ACCESS-unique-marker", "REFRESH-unique-marker");
  c.base_domain = "visible-marker.amocrm.ru";
  Unwrap(Run(store->Upsert(c, {})));
  // Closing checkpoints the WAL into the database file: the file alone holds the rows.
  store.reset();
  const std::string db = ReadFileBytes(DbPath());
  ASSERT_NE(db.find("visible-marker.amocrm.ru"), std::string::npos);
  EXPECT_EQ(db.find("unique-marker"), std::string::npos);
}

// ---- the commit count behind the token cache ------------------------------------------------

amoauth::service::CommitCounter& CounterOf(amoauth::service::Store& store) {
  return dynamic_cast<amoauth::service::CommitCounter&>(store);
}

TEST_F(SqliteStoreTest, TheCommitCountMovesOnEveryCommitByAnyConnectionAndOnlyThen) {
  auto store = OpenStore();
  auto other = OpenStore();  // another process on the same file
  auto& counter = CounterOf(*store);
  const auto first = counter.CommitCount();
  ASSERT_TRUE(first);
  Unwrap(Run(store->FindByAccount(12)));  // reads commit nothing
  EXPECT_EQ(counter.CommitCount(), first);

  Unwrap(Run(store->Upsert(MakeConnection(12, "ours"), {})));  // this store's pool
  const auto after_own = counter.CommitCount();
  ASSERT_TRUE(after_own);
  EXPECT_NE(*after_own, *first);
  EXPECT_EQ(counter.CommitCount(), after_own);

  Unwrap(Run(other->Upsert(MakeConnection(13, "theirs"), {})));  // the other process
  const auto after_other = counter.CommitCount();
  ASSERT_TRUE(after_other);
  EXPECT_NE(*after_other, *after_own);

  RawDb raw(DbPath());  // any writer, any table
  raw.Exec("CREATE TABLE scratch (x INTEGER); INSERT INTO scratch VALUES (1)");
  EXPECT_NE(counter.CommitCount(), after_other);
}

// The I/O threads read the count on connections of their own (one shared connection was a lock
// they queued on): a count read on any thread after a commit must still differ from every count
// read before it, on any thread, and counts must agree again once nothing commits.
TEST_F(SqliteStoreTest, TheCommitCountReadOnManyThreadsMovesOnACommitAndAgreesWithoutOne) {
  auto store = OpenStore();
  auto other = OpenStore();
  auto& counter = CounterOf(*store);
  // Each read on a thread of its own: a new thread starts at the next probe.
  const auto read_on_new_threads = [&counter](std::size_t n) {
    std::vector<std::optional<std::uint64_t>> counts(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::thread([&counter, &counts, i] { counts[i] = counter.CommitCount(); }).join();
    }
    return counts;
  };
  const auto before = read_on_new_threads(8);
  Unwrap(Run(other->Upsert(MakeConnection(14, "theirs"), {})));
  const auto after = read_on_new_threads(8);
  for (const auto& a : after) {
    ASSERT_TRUE(a);
    for (const auto& b : before) {
      ASSERT_TRUE(b);
      EXPECT_NE(*a, *b);
    }
  }
  // Every probe has looked since the commit: from now on all threads read one count.
  const auto settled = read_on_new_threads(8);
  ASSERT_TRUE(settled.front());
  for (const auto& s : settled) {
    EXPECT_EQ(s, settled.front());
  }
  EXPECT_EQ(counter.CommitCount(), settled.front());
}

TEST_F(SqliteStoreTest, ACachedInstanceServesAnotherProcesssCommitAtOnce) {
  auto store = OpenStore();
  auto other = OpenStore();
  amoauth::service::CachedConnectionStore cache(*store, CounterOf(*store));
  Unwrap(Run(store->Upsert(MakeConnection(14, "c", "first-access"), {})));
  for (int i = 0; i < 3; ++i) {
    auto rows = Unwrap(Run(cache.FindByAccount(14)));
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows.front().access_token.Reveal(), "first-access");
  }
  EXPECT_EQ(cache.GetStats().hits, 2U);

  auto row = Unwrap(Run(other->Find({14, "c"}))).value();
  row.access_token = amoauth::Secret("second-access");
  Unwrap(Run(other->Replace(row, row.version, {})));
  auto rows = Unwrap(Run(cache.FindByAccount(14)));
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows.front().access_token.Reveal(), "second-access");
}

// ---- migrations of files written by older versions --------------------------------------------

// The version-1 schema as released, frozen here on purpose: this is what databases in the field
// look like, whatever migrations.cpp says later.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations (version, applied_at) VALUES (1, '2025-01-01T00:00:00Z');
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

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char ch : bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    out += kDigits[byte >> 4U];
    out += kDigits[byte & 0xFU];
  }
  return out;
}

TEST_F(SqliteStoreTest, MigratesAVersion1DatabaseKeepingItsRows) {
  {
    RawDb raw(DbPath(), /*create=*/true);
    raw.Exec(kVersion1Schema);
    // A row as version 1 wrote it (docs/storage.md §2: sealed tokens, AAD bound to the row).
    const std::string access =
        amoauth::crypto::Seal(key_, "v1-access", "amo_tokens/42/legacy-client/access");
    const std::string refresh =
        amoauth::crypto::Seal(key_, "v1-refresh", "amo_tokens/42/legacy-client/refresh");
    raw.Exec(
        R"(INSERT INTO amo_tokens VALUES (42, 'legacy-client', 'old.amocrm.ru', 'api-b.amocrm.ru',
                '777', 'active', ')" +
        key_.Id() + "', X'" + Hex(access) + "', X'" + Hex(refresh) +
        R"(', '2025-10-10T00:00:00Z', 3, '2025-10-01T00:00:00Z', '2025-10-05T12:00:00Z'))");
  }
  auto store = OpenStore();
  EXPECT_EQ(store->SchemaVersion(),
            static_cast<int>(amoauth::store_sqlite::detail::Migrations().size()));

  const auto found = Unwrap(Run(store->Find({42, "legacy-client"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->base_domain, "old.amocrm.ru");
  EXPECT_EQ(found->access_token.Reveal(), "v1-access");
  EXPECT_EQ(found->refresh_token.Reveal(), "v1-refresh");
  EXPECT_EQ(found->version, 3);
  const auto updated = amoauth::core::ParseIsoTime("2025-10-05T12:00:00Z");
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(found->updated_at, *updated);
  // The token was born no later than the row's last write, and the scheduler looks at it now.
  EXPECT_EQ(found->last_refresh_at, *updated);
  EXPECT_EQ(found->next_refresh_at, *updated);
  EXPECT_EQ(found->refresh_failures, 0);
  EXPECT_EQ(found->last_error, "");
  EXPECT_EQ(found->last_error_at, TimePoint{});
  EXPECT_EQ(Clients(Unwrap(Run(store->ListDue(At(0), 10)))),
            (std::vector<std::string>{"legacy-client"}));

  RawDb raw(DbPath());
  Rows versions;
  for (std::size_t v = 1; v <= amoauth::store_sqlite::detail::Migrations().size(); ++v) {
    versions.push_back({std::to_string(v)});
  }
  EXPECT_EQ(raw.Query("SELECT version FROM schema_migrations ORDER BY version"), versions);
  EXPECT_EQ(raw.Query(R"(SELECT "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError",
                                "lastErrorAt" FROM amo_tokens)"),
            (Rows{{"2025-10-05T12:00:00Z", "2025-10-05T12:00:00Z", "0", "", "NULL"}}));
}

// ---- query plans -----------------------------------------------------------------------------

/// EXPLAIN QUERY PLAN's details, one line each.
std::string QueryPlan(RawDb& raw, const std::string& sql) {
  std::string plan;
  for (const auto& row : raw.Query("EXPLAIN QUERY PLAN " + sql)) {
    plan += row.back() + "\n";
  }
  return plan;
}

TEST_F(SqliteStoreTest, SchedulerAndOutboxQueriesAreIndexSearches) {
  OpenStore().reset();
  RawDb raw(DbPath());
  // The store's queries (sqlite_store.cpp), with their parameters filled in.
  const std::string list_due = QueryPlan(raw, R"(
      SELECT * FROM amo_tokens INDEXED BY amo_tokens_due
      WHERE "status" = 'active' AND "nextRefreshAt" <= '2025-10-09T08:53:20Z'
      ORDER BY "nextRefreshAt", "accountId", "clientId" LIMIT 100)");
  EXPECT_NE(list_due.find("SEARCH amo_tokens USING INDEX amo_tokens_due"), std::string::npos)
      << list_due;
  EXPECT_EQ(list_due.find("TEMP B-TREE"), std::string::npos) << list_due;

  const std::string claim = QueryPlan(raw, R"(
      SELECT "id" FROM webhook_outbox INDEXED BY webhook_outbox_due
      WHERE "deliveredAt" IS NULL AND "nextAttemptAt" <= '2025-10-09T08:53:20Z'
      ORDER BY "id" LIMIT 100)");
  EXPECT_NE(claim.find("SEARCH webhook_outbox USING INDEX webhook_outbox_due"), std::string::npos)
      << claim;

  const std::string prune =
      QueryPlan(raw, R"(DELETE FROM webhook_outbox WHERE "deliveredAt" < '2025-10-02T08:53:20Z')");
  EXPECT_NE(prune.find("SEARCH webhook_outbox USING INDEX webhook_outbox_delivered"),
            std::string::npos)
      << prune;
}

TEST_F(SqliteStoreTest, MetricsQueriesReadOnlyTheLastRefreshIndex) {
  OpenStore().reset();
  RawDb raw(DbPath());
  // The store's queries for GET /metrics (sqlite_store.cpp): no table scan, no sort.
  const std::string by_status =
      QueryPlan(raw, R"(SELECT "status", count(*) FROM amo_tokens GROUP BY "status")");
  EXPECT_NE(by_status.find("COVERING INDEX"), std::string::npos) << by_status;
  EXPECT_EQ(by_status.find("TEMP B-TREE"), std::string::npos) << by_status;
  const std::string oldest =
      QueryPlan(raw, R"(SELECT min("lastRefreshAt") FROM amo_tokens WHERE "status" = 'active')");
  EXPECT_NE(oldest.find("SEARCH amo_tokens USING COVERING INDEX amo_tokens_last_refresh"),
            std::string::npos)
      << oldest;
}

TEST_F(SqliteStoreTest, FindByDomainIsAnIndexSearch) {
  OpenStore().reset();
  RawDb raw(DbPath());
  const auto plan = raw.Query(
      R"(EXPLAIN QUERY PLAN SELECT * FROM amo_tokens WHERE "baseDomain" = 'example.amocrm.ru')");
  ASSERT_FALSE(plan.empty());
  EXPECT_NE(plan[0].back().find("amo_tokens_base_domain"), std::string::npos) << plan[0].back();
}

}  // namespace
