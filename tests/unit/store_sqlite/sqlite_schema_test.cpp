// The SQLite schema after the migrations moved to libs/store_schema: a database written by an
// earlier build at version 4 keeps working (migrated to 7), and a new database gets exactly that
// schema plus version 5's index, version 6's account_events and version 7's flow_reference.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "amoauth/crypto/aead.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "run_co.hpp"

namespace {

namespace fs = std::filesystem;
using amoauth::crypto::MasterKey;
using amoauth::store_sqlite::SqliteOptions;
using amoauth::store_sqlite::SqliteStore;

// sqlite_master of a version-4 database as the build before store_schema wrote it (frozen: never
// edit; a later version adds its own frozen schema beside this one).
constexpr std::string_view kFrozenVersion4Schema = R"sql(
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
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
  "updatedAt"    TEXT    NOT NULL, "lastRefreshAt"   TEXT, "nextRefreshAt"   TEXT, "refreshFailures" INTEGER NOT NULL DEFAULT 0, "lastError"       TEXT    NOT NULL DEFAULT '', "lastErrorAt"     TEXT,
  PRIMARY KEY ("accountId", "clientId")
);
CREATE TABLE oauth_states (
  state_hash TEXT PRIMARY KEY,
  client_id  TEXT NOT NULL,
  mode       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
, purpose TEXT NOT NULL DEFAULT 'connect');
CREATE TABLE used_codes (
  code_hash TEXT PRIMARY KEY,
  used_at   TEXT NOT NULL
);
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
CREATE TABLE integrations (
  "clientId"     TEXT PRIMARY KEY,
  "keyId"        TEXT NOT NULL,
  "clientSecret" BLOB NOT NULL,
  "stateHash"    TEXT NOT NULL UNIQUE,
  "createdAt"    TEXT NOT NULL
);
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
CREATE TABLE exchange_quota (
  "subjectHash" TEXT PRIMARY KEY,
  "takenAt"     TEXT NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
CREATE INDEX used_codes_used_at ON used_codes (used_at);
CREATE INDEX amo_tokens_due ON amo_tokens ("status", "nextRefreshAt", "accountId", "clientId");
CREATE INDEX webhook_outbox_due ON webhook_outbox ("nextAttemptAt") WHERE "deliveredAt" IS NULL;
CREATE INDEX webhook_outbox_delivered ON webhook_outbox ("deliveredAt")
  WHERE "deliveredAt" IS NOT NULL;
CREATE INDEX code_queue_due ON code_queue ("nextAttemptAt");
CREATE INDEX amo_tokens_base_domain ON amo_tokens ("baseDomain");
)sql";

using Rows = std::vector<std::vector<std::string>>;

/// A raw connection, to build and inspect files the way an older build or an operator would.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close(db_); }

  void Exec(std::string_view sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << "exec failed: " << (error != nullptr ? error : "?");
    }
    sqlite3_free(error);
  }

  Rows Query(std::string_view sql) {
    Rows rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "prepare failed: " << sqlite3_errmsg(db_);
      return rows;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* text = sqlite3_column_text(stmt, i);
        row.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

// What version 5 adds to it (frozen too).
constexpr std::string_view kFrozenVersion5Additions = R"sql(
CREATE INDEX amo_tokens_last_refresh ON amo_tokens ("status", "lastRefreshAt");
)sql";

// What version 6 adds to it (frozen too): each account's history.
constexpr std::string_view kFrozenVersion6Additions = R"sql(
CREATE TABLE account_events (
  "id"        INTEGER PRIMARY KEY AUTOINCREMENT,
  "accountId" INTEGER NOT NULL,
  "clientId"  TEXT    NOT NULL,
  "type"      TEXT    NOT NULL,
  "body"      TEXT    NOT NULL,
  "createdAt" TEXT    NOT NULL
);
CREATE INDEX account_events_account ON account_events ("accountId", "clientId", "id");
)sql";

// What version 7 adds (frozen too): a connect flow's reference.
constexpr std::string_view kFrozenVersion7Additions = R"sql(
ALTER TABLE oauth_states ADD COLUMN flow_reference TEXT NOT NULL DEFAULT '';
)sql";

constexpr std::string_view kSchemaSql =
    "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name";

class SqliteSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("amoauth-schema-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<SqliteStore> Open(const fs::path& path) {
    SqliteOptions options;
    options.path = path.string();
    options.threads = 1;
    auto store = SqliteStore::Open(std::move(options), key_);
    if (!store) {
      ADD_FAILURE() << "open failed: " << store.error().message();
      return nullptr;
    }
    return std::move(*store);
  }

  fs::path dir_;
  MasterKey key_ = MasterKey::Generate();
};

TEST_F(SqliteSchemaTest, ANewDatabaseGetsExactlyTheVersion4SchemaOfEarlierBuildsPlusVersions5To7) {
  const fs::path frozen = dir_ / "frozen.db";
  RawDb(frozen).Exec(kFrozenVersion4Schema);
  RawDb(frozen).Exec(kFrozenVersion5Additions);
  RawDb(frozen).Exec(kFrozenVersion6Additions);
  RawDb(frozen).Exec(kFrozenVersion7Additions);
  const fs::path fresh = dir_ / "fresh.db";
  ASSERT_NE(Open(fresh), nullptr);
  EXPECT_EQ(RawDb(fresh).Query(kSchemaSql), RawDb(frozen).Query(kSchemaSql));
}

TEST_F(SqliteSchemaTest, AVersion4DatabaseOpensAndReopensKeepingItsRows) {
  const fs::path path = dir_ / "v4.db";
  {
    RawDb raw(path);
    raw.Exec(kFrozenVersion4Schema);
    raw.Exec(
        "INSERT INTO schema_migrations VALUES (1, '2025-01-01T00:00:00Z'), "
        "(2, '2025-01-01T00:00:00Z'), (3, '2025-01-01T00:00:00Z'), (4, '2025-01-01T00:00:00Z')");
    const std::string access =
        amoauth::crypto::Seal(key_, "v4-access", "amo_tokens/42/client/access");
    // Hex of the sealed token, as an X'…' literal.
    std::string hex;
    for (unsigned char byte : access) {
      constexpr std::string_view kDigits = "0123456789abcdef";
      hex += kDigits[byte >> 4U];
      hex += kDigits[byte & 0xFU];
    }
    raw.Exec(R"(INSERT INTO amo_tokens ("accountId", "clientId", "baseDomain", "status", "keyId",
                 "accessToken", "expiresAt", "version", "createdAt", "updatedAt")
               VALUES (42, 'client', 'example.amocrm.ru', 'active', ')" +
             key_.Id() + "', X'" + hex +
             R"(', '2025-10-10T00:00:00Z', 7, '2025-10-01T00:00:00Z', '2025-10-05T00:00:00Z'))");
  }
  for (int open = 0; open < 2; ++open) {
    auto store = Open(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->SchemaVersion(), 7);
    boost::asio::io_context ioc;
    const auto found = amoauth::testing::RunCo(ioc, store->Find({42, "client"}));
    ASSERT_TRUE(found.has_value()) << found.error().message();
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->access_token.Reveal(), "v4-access");
    EXPECT_EQ((*found)->version, 7);
  }
  // Versions 5 (an index), 6 (account_events) and 7 (flow_reference) were applied once, on the
  // first open.
  EXPECT_EQ(RawDb(path).Query("SELECT count(*) FROM schema_migrations"), (Rows{{"7"}}));
}

}  // namespace
