#include "amoauth/store_sqlite/sqlite_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/crypto/aead.hpp"
#include "fake_clock.hpp"
#include "run_co.hpp"

namespace {

namespace fs = std::filesystem;
using amoauth::Errc;
using amoauth::Result;
using amoauth::Secret;
using amoauth::core::Connection;
using amoauth::core::ConnectionStatus;
using amoauth::core::FromUnixSeconds;
using amoauth::crypto::MasterKey;
using amoauth::service::PendingState;
using amoauth::store_sqlite::SqliteOptions;
using amoauth::store_sqlite::SqliteStore;

constexpr std::int64_t kNow = 1'760'000'000;  // 2025-10-09T08:53:20Z

// ---- helpers ------------------------------------------------------------------------------------

template <class T>
T Unwrap(Result<T> r) {
  if (!r) {
    ADD_FAILURE() << "unexpected error: " << r.error().message();
  }
  return std::move(r).value();  // throws on error, which fails the test
}

void ExpectError(const boost::system::error_code& ec, Errc expected) {
  EXPECT_EQ(ec, amoauth::make_error_code(expected)) << ec.message();
}

Connection MakeConnection(std::int64_t account_id,
                          std::string client_id,
                          std::string access = "access-token-plaintext-0123456789",
                          std::string refresh = "refresh-token-plaintext-9876543210") {
  Connection c;
  c.account_id = account_id;
  c.client_id = std::move(client_id);
  c.base_domain = "example.amocrm.ru";
  c.api_domain = "api-b.amocrm.ru";
  c.user_id = "8765432";
  c.status = ConnectionStatus::kActive;
  c.access_token = Secret(std::move(access));
  c.refresh_token = Secret(std::move(refresh));
  c.expires_at = FromUnixSeconds(kNow + 86'400);
  return c;
}

void ExpectSameContent(const Connection& actual, const Connection& expected) {
  EXPECT_EQ(actual.account_id, expected.account_id);
  EXPECT_EQ(actual.client_id, expected.client_id);
  EXPECT_EQ(actual.base_domain, expected.base_domain);
  EXPECT_EQ(actual.api_domain, expected.api_domain);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.access_token, expected.access_token);
  EXPECT_EQ(actual.refresh_token, expected.refresh_token);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
}

PendingState MakeState(std::string hash, std::int64_t created, std::int64_t lifetime = 600) {
  PendingState s;
  s.state_hash = std::move(hash);
  s.client_id = "client-uuid";
  s.mode = amoauth::core::ConsentMode::kPostMessage;
  s.created_at = FromUnixSeconds(created);
  s.expires_at = FromUnixSeconds(created + lifetime);
  return s;
}

std::string ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The database as an operator (or an attacker with the file) sees it: plain sqlite3 C API.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close_v2(db_); }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error != nullptr ? error : "?");
    }
    sqlite3_free(error);
  }

  /// Every row, every column as text ("NULL" for NULL).
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
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

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("amoauth-store-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter++) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  [[nodiscard]] std::string DbPath() const { return (dir_ / "amoauth.db").string(); }

  std::unique_ptr<SqliteStore> OpenStore(const MasterKey& key,
                                         std::size_t max_pending_states = 10'000) {
    SqliteOptions options;
    options.path = DbPath();
    options.threads = 2;
    options.max_pending_states = max_pending_states;
    options.clock = &clock_;
    return Unwrap(SqliteStore::Open(options, key));
  }
  std::unique_ptr<SqliteStore> OpenStore() { return OpenStore(key_); }

  template <class T>
  T Run(boost::asio::awaitable<T> aw) {
    return amoauth::testing::RunCo(ioc_, std::move(aw));
  }

  fs::path dir_;
  amoauth::testing::FakeClock clock_{kNow};
  MasterKey key_ = MasterKey::Generate();
  boost::asio::io_context ioc_;
};

// ---- schema -------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, MigrationsAreIdempotentOnReopen) {
  int first_version = 0;
  {
    auto store = OpenStore();
    first_version = store->SchemaVersion();
    EXPECT_GE(first_version, 1);
    Unwrap(Run(store->Upsert(MakeConnection(1, "a"))));
  }
  auto store = OpenStore();
  EXPECT_EQ(store->SchemaVersion(), first_version);
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Query("SELECT count(*), max(version) FROM schema_migrations"),
            (std::vector<std::vector<std::string>>{
                {std::to_string(first_version), std::to_string(first_version)}}));
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), (std::vector<std::vector<std::string>>{{"wal"}}));
  EXPECT_TRUE(Unwrap(Run(store->Find({1, "a"}))).has_value());
}

TEST_F(SqliteStoreTest, RefusesASchemaNewerThanItKnows) {
  OpenStore().reset();
  {
    RawDb raw(DbPath());
    raw.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'x')");
  }
  SqliteOptions options;
  options.path = DbPath();
  auto store = SqliteStore::Open(options, key_);
  ASSERT_FALSE(store.has_value());
  ExpectError(store.error(), Errc::kStoreFailure);
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
  options.path = (dir_ / "no-such-dir" / "amoauth.db").string();
  auto store = SqliteStore::Open(options, key_);
  ASSERT_FALSE(store.has_value());
  ExpectError(store.error(), Errc::kStoreFailure);
}

TEST_F(SqliteStoreTest, SeedQueryShowsReadableTimes) {
  auto store = OpenStore();
  clock_.Set(1'795'290'180);  // 2026-11-21T19:43:00Z
  Connection c = MakeConnection(31'337'001, "2912780f-a1e4-4d5d-a069-ee01422d8bef");
  c.expires_at = FromUnixSeconds(1'795'376'580);  // 2026-11-22T19:43:00Z
  Unwrap(Run(store->Upsert(c)));

  RawDb raw(DbPath());
  // Seed 003, verbatim.
  EXPECT_EQ(raw.Query(R"(SELECT "accountId", "expiresAt", "createdAt" FROM amo_tokens;)"),
            (std::vector<std::vector<std::string>>{
                {"31337001", "2026-11-22T19:43:00Z", "2026-11-21T19:43:00Z"}}));
  // SQLite's own date functions understand the format.
  EXPECT_EQ(raw.Query(R"(SELECT datetime("expiresAt"), unixepoch("expiresAt") FROM amo_tokens)"),
            (std::vector<std::vector<std::string>>{{"2026-11-22 19:43:00", "1795376580"}}));
}

// ---- amo_tokens ---------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, UpsertThenFindListAndFindByAccount) {
  auto store = OpenStore();
  const Connection a1 = MakeConnection(1, "a", "tok-1a", "ref-1a");
  const Connection b1 = MakeConnection(1, "b", "tok-1b", "ref-1b");
  const Connection a2 = MakeConnection(2, "a", "tok-2a", "ref-2a");
  // Out of order on purpose: List orders by account, then client.
  for (const auto& c : {a2, b1, a1}) {
    const Connection stored = Unwrap(Run(store->Upsert(c)));
    ExpectSameContent(stored, c);
    EXPECT_EQ(stored.version, 1);
    EXPECT_EQ(stored.created_at, FromUnixSeconds(kNow));
    EXPECT_EQ(stored.updated_at, FromUnixSeconds(kNow));
  }

  const auto found = Unwrap(Run(store->Find({1, "b"})));
  ASSERT_TRUE(found.has_value());
  ExpectSameContent(*found, b1);
  EXPECT_EQ(found->version, 1);
  EXPECT_EQ(found->created_at, FromUnixSeconds(kNow));
  EXPECT_EQ(found->updated_at, FromUnixSeconds(kNow));

  EXPECT_FALSE(Unwrap(Run(store->Find({3, "a"}))).has_value());
  EXPECT_FALSE(Unwrap(Run(store->Find({1, "c"}))).has_value());

  const auto account1 = Unwrap(Run(store->FindByAccount(1)));
  ASSERT_EQ(account1.size(), 2U);
  ExpectSameContent(account1[0], a1);
  ExpectSameContent(account1[1], b1);
  EXPECT_TRUE(Unwrap(Run(store->FindByAccount(42))).empty());

  const auto all = Unwrap(Run(store->List()));
  ASSERT_EQ(all.size(), 3U);
  ExpectSameContent(all[0], a1);
  ExpectSameContent(all[1], b1);
  ExpectSameContent(all[2], a2);
}

TEST_F(SqliteStoreTest, UpsertReplacesAndBumpsVersionKeepingCreatedAt) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(7, "c"))));

  clock_.Advance(std::chrono::seconds(500));
  Connection second = MakeConnection(7, "c", "new-access", "new-refresh");
  second.status = ConnectionStatus::kReauthRequired;
  second.base_domain = "renamed.amocrm.ru";
  second.expires_at = FromUnixSeconds(kNow + 500 + 86'400);
  // Ignored: the store owns these.
  second.created_at = FromUnixSeconds(1);
  second.updated_at = FromUnixSeconds(2);
  second.version = 77;
  const Connection stored = Unwrap(Run(store->Upsert(second)));
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(stored.created_at, FromUnixSeconds(kNow));
  EXPECT_EQ(stored.updated_at, FromUnixSeconds(kNow + 500));
  ExpectSameContent(stored, second);

  const auto found = Unwrap(Run(store->Find({7, "c"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, 2);
  EXPECT_EQ(found->created_at, FromUnixSeconds(kNow));
  EXPECT_EQ(found->updated_at, FromUnixSeconds(kNow + 500));
  ExpectSameContent(*found, second);
}

TEST_F(SqliteStoreTest, ReplaceSucceedsAtTheExpectedVersion) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(Run(store->Upsert(MakeConnection(5, "x"))));
  clock_.Advance(std::chrono::seconds(60));
  const Connection next = MakeConnection(5, "x", "rotated-access", "rotated-refresh");
  const Connection v2 = Unwrap(Run(store->Replace(next, v1.version)));
  EXPECT_EQ(v2.version, v1.version + 1);
  EXPECT_EQ(v2.created_at, v1.created_at);
  EXPECT_EQ(v2.updated_at, FromUnixSeconds(kNow + 60));
  ExpectSameContent(v2, next);

  const auto found = Unwrap(Run(store->Find({5, "x"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, v2.version);
  EXPECT_EQ(found->updated_at, FromUnixSeconds(kNow + 60));
  ExpectSameContent(*found, next);
}

TEST_F(SqliteStoreTest, ReplaceAtAStaleVersionConflictsAndChangesNothing) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(Run(store->Upsert(MakeConnection(5, "x"))));
  const Connection winner = MakeConnection(5, "x", "winner-access", "winner-refresh");
  Unwrap(Run(store->Replace(winner, v1.version)));

  auto lost = Run(store->Replace(MakeConnection(5, "x", "loser", "loser"), v1.version));
  ASSERT_FALSE(lost.has_value());
  ExpectError(lost.error(), Errc::kConflict);

  const auto found = Unwrap(Run(store->Find({5, "x"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, 2);
  ExpectSameContent(*found, winner);
}

TEST_F(SqliteStoreTest, ReplaceOfAMissingRowIsNotFound) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(5, "x"))));
  auto missing = Run(store->Replace(MakeConnection(5, "other-client"), 1));
  ASSERT_FALSE(missing.has_value());
  ExpectError(missing.error(), Errc::kNotFound);
  EXPECT_FALSE(Unwrap(Run(store->Find({5, "other-client"}))).has_value());
}

TEST_F(SqliteStoreTest, EmptyRefreshTokenIsStoredAsNullAndReadBackEmpty) {
  auto store = OpenStore();
  const Connection long_lived = MakeConnection(9, "llt", "long-lived-access-token", "");
  Unwrap(Run(store->Upsert(long_lived)));

  RawDb raw(DbPath());
  EXPECT_EQ(raw.Query(R"(SELECT "refreshToken" IS NULL, typeof("accessToken") FROM amo_tokens)"),
            (std::vector<std::vector<std::string>>{{"1", "blob"}}));

  const auto found = Unwrap(Run(store->Find({9, "llt"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->refresh_token.Empty());
  EXPECT_EQ(found->access_token.Reveal(), "long-lived-access-token");
}

TEST_F(SqliteStoreTest, TokensNeverReachTheFilesInPlaintext) {
  const std::string access = "ACCESS-eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9-unique-marker";
  const std::string refresh = "REFRESH-def50200a1b2c3d4e5f6-unique-marker";
  auto store = OpenStore();
  Connection c = MakeConnection(11, "plain", access, refresh);
  c.base_domain = "visible-marker.amocrm.ru";
  Unwrap(Run(store->Upsert(c)));
  Unwrap(Run(store->Replace(c, 1)));  // a second copy of each, in another WAL frame

  // The store is still open: the rows sit in the WAL, not yet checkpointed into the .db.
  const std::string bytes =
      ReadFileBytes(DbPath()) + ReadFileBytes(DbPath() + "-wal") + ReadFileBytes(DbPath() + "-shm");
  ASSERT_NE(bytes.find("visible-marker.amocrm.ru"), std::string::npos)
      << "sanity: the row must be somewhere in these files";
  EXPECT_EQ(bytes.find(access), std::string::npos);
  EXPECT_EQ(bytes.find(refresh), std::string::npos);
  EXPECT_EQ(bytes.find("unique-marker"), std::string::npos);

  // And after a checkpoint and close, in the database file alone.
  store.reset();
  const std::string db = ReadFileBytes(DbPath());
  ASSERT_NE(db.find("visible-marker.amocrm.ru"), std::string::npos);
  EXPECT_EQ(db.find("unique-marker"), std::string::npos);
}

TEST_F(SqliteStoreTest, AnotherMasterKeyCannotReadTheRows) {
  Unwrap(Run(OpenStore()->Upsert(MakeConnection(1, "a"))));

  auto other = OpenStore(MasterKey::Generate());
  auto found = Run(other->Find({1, "a"}));
  ASSERT_FALSE(found.has_value());
  ExpectError(found.error(), Errc::kCryptoFailure);
  auto all = Run(other->List());
  ASSERT_FALSE(all.has_value());
  ExpectError(all.error(), Errc::kCryptoFailure);
  auto by_account = Run(other->FindByAccount(1));
  ASSERT_FALSE(by_account.has_value());
  ExpectError(by_account.error(), Errc::kCryptoFailure);

  // The right key still reads it.
  EXPECT_TRUE(Unwrap(Run(OpenStore()->Find({1, "a"}))).has_value());
}

TEST_F(SqliteStoreTest, CiphertextMovedToAnotherRowDoesNotDecrypt) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(1, "a", "access-one", "refresh-one"))));
  Unwrap(Run(store->Upsert(MakeConnection(2, "a", "access-two", "refresh-two"))));
  {
    RawDb raw(DbPath());
    raw.Exec(R"(UPDATE amo_tokens SET "accessToken" =
                  (SELECT "accessToken" FROM amo_tokens WHERE "accountId" = 2)
                WHERE "accountId" = 1)");
    // Within one row too: the refresh ciphertext put in the access column.
    raw.Exec(R"(UPDATE amo_tokens SET "accessToken" = "refreshToken" WHERE "accountId" = 2)");
  }
  for (const std::int64_t account : {1, 2}) {
    auto found = Run(store->Find({account, "a"}));
    ASSERT_FALSE(found.has_value()) << account;
    ExpectError(found.error(), Errc::kCryptoFailure);
  }
}

TEST_F(SqliteStoreTest, EightConcurrentUpsertsOnTwoThreadsAllSucceed) {
  auto store = OpenStore();
  boost::asio::io_context ioc(2);
  std::vector<std::future<Result<Connection>>> same_key;
  std::vector<std::future<Result<Connection>>> distinct_keys;
  for (int i = 0; i < 8; ++i) {
    same_key.push_back(boost::asio::co_spawn(
        ioc,
        store->Upsert(MakeConnection(100, "shared", "access-" + std::to_string(i))),
        boost::asio::use_future));
    distinct_keys.push_back(boost::asio::co_spawn(
        ioc, store->Upsert(MakeConnection(200 + i, "own")), boost::asio::use_future));
  }
  std::thread second([&ioc] { ioc.run(); });
  ioc.run();
  second.join();

  std::set<std::int64_t> versions;
  for (auto& f : same_key) {
    versions.insert(Unwrap(f.get()).version);
  }
  // Every write took its own turn: versions 1…8, none lost or repeated.
  EXPECT_EQ(versions, (std::set<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  for (auto& f : distinct_keys) {
    EXPECT_EQ(Unwrap(f.get()).version, 1);
  }
  const auto shared = Unwrap(Run(store->Find({100, "shared"})));
  ASSERT_TRUE(shared.has_value());
  EXPECT_EQ(shared->version, 8);
  EXPECT_EQ(Unwrap(Run(store->List())).size(), 9U);
}

// ---- oauth_states -------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, StateIsTakenOnce) {
  auto store = OpenStore();
  const PendingState state = MakeState("hash-1", kNow);
  Unwrap(Run(store->Put(state, FromUnixSeconds(kNow))));

  const auto taken = Unwrap(Run(store->Take("hash-1", FromUnixSeconds(kNow + 5))));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->state_hash, "hash-1");
  EXPECT_EQ(taken->client_id, state.client_id);
  EXPECT_EQ(taken->mode, state.mode);
  EXPECT_EQ(taken->created_at, state.created_at);
  EXPECT_EQ(taken->expires_at, state.expires_at);

  EXPECT_FALSE(Unwrap(Run(store->Take("hash-1", FromUnixSeconds(kNow + 6)))).has_value());
}

TEST_F(SqliteStoreTest, UnknownStateIsNullopt) {
  auto store = OpenStore();
  EXPECT_FALSE(Unwrap(Run(store->Take("never-issued", FromUnixSeconds(kNow)))).has_value());
}

TEST_F(SqliteStoreTest, ExpiredStateIsNotReturnedAndIsRemoved) {
  auto store = OpenStore();
  Unwrap(Run(store->Put(MakeState("hash-exp", kNow, 600), clock_.Now())));
  clock_.Advance(std::chrono::seconds(600));  // expires_at == now: expired
  EXPECT_FALSE(Unwrap(Run(store->Take("hash-exp", clock_.Now()))).has_value());
  // Removed, not just hidden: even an earlier `now` does not bring it back.
  EXPECT_FALSE(Unwrap(Run(store->Take("hash-exp", FromUnixSeconds(kNow)))).has_value());
}

TEST_F(SqliteStoreTest, PutRefusesWithBusyAtTheLimitUntilStatesExpire) {
  auto store = OpenStore(key_, 3);
  for (int i = 0; i < 3; ++i) {
    Unwrap(Run(store->Put(MakeState("s" + std::to_string(i), kNow, 600), FromUnixSeconds(kNow))));
  }
  auto refused = Run(store->Put(MakeState("s3", kNow, 600), FromUnixSeconds(kNow)));
  ASSERT_FALSE(refused.has_value());
  ExpectError(refused.error(), Errc::kBusy);

  // Taking one frees a place.
  ASSERT_TRUE(Unwrap(Run(store->Take("s0", FromUnixSeconds(kNow + 1)))).has_value());
  Unwrap(Run(store->Put(MakeState("s3", kNow + 1, 600), FromUnixSeconds(kNow + 1))));

  // Once the old ones expire, Put forgets them and there is room again.
  const auto later = FromUnixSeconds(kNow + 600);
  Unwrap(Run(store->Put(MakeState("s4", kNow + 600, 600), later)));
  Unwrap(Run(store->Put(MakeState("s5", kNow + 600, 600), later)));
  EXPECT_TRUE(Unwrap(Run(store->Take("s3", later))).has_value());
  EXPECT_FALSE(Unwrap(Run(store->Take("s1", FromUnixSeconds(kNow)))).has_value());
}

TEST_F(SqliteStoreTest, StateTakenThroughOneStoreIsGoneForAnotherOnTheSameFile) {
  auto first = OpenStore();
  auto second = OpenStore();  // another process's view: its own connections
  Unwrap(Run(first->Put(MakeState("shared-state", kNow), FromUnixSeconds(kNow))));
  ASSERT_TRUE(Unwrap(Run(second->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
  EXPECT_FALSE(Unwrap(Run(first->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
  EXPECT_FALSE(Unwrap(Run(second->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
}

// ---- used_codes ---------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, CodeIsNewOnceThenKnown) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", FromUnixSeconds(kNow)))));
  EXPECT_FALSE(Unwrap(Run(store->MarkUsed("code-hash", FromUnixSeconds(kNow + 1)))));
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("other-code", FromUnixSeconds(kNow + 1)))));

  auto other_process = OpenStore();
  EXPECT_FALSE(Unwrap(Run(other_process->MarkUsed("code-hash", FromUnixSeconds(kNow + 2)))));
}

TEST_F(SqliteStoreTest, CodeIsForgottenAfterTwentyMinutes) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));
  clock_.Advance(std::chrono::minutes(20));
  EXPECT_FALSE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));  // exactly 20 min: kept
  clock_.Advance(std::chrono::seconds(1));
  // A repeat does not refresh the entry: first seen 20 min + 1 s ago, so forgotten, new again.
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));
}

}  // namespace
