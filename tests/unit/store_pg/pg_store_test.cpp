// PostgreSQL-only behaviour of store_pg::PgStore: migrations, what an operator sees in psql,
// claims across instances, notifications, reconnection and start-up errors. The semantics both
// engines share are the store contract suite's.
#include "amoauth/store_pg/pg_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "amoauth/core/connection.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/crypto/aead.hpp"
#include "fake_clock.hpp"
#include "pg_sql.hpp"
#include "postgres_scratch.hpp"
#include "run_co.hpp"

namespace {

using amoauth::Errc;
using amoauth::Result;
using amoauth::Secret;
using amoauth::core::AccountKey;
using amoauth::core::Connection;
using amoauth::core::FromUnixSeconds;
using amoauth::core::TimePoint;
using amoauth::crypto::MasterKey;
using amoauth::store_pg::PgOptions;
using amoauth::store_pg::PgStore;
using amoauth::testing::RunCo;

constexpr std::int64_t kNow = 1'760'000'000;  // 2025-10-09T08:53:20Z

TimePoint At(std::int64_t seconds) {
  return FromUnixSeconds(kNow + seconds);
}

using Rows = std::vector<std::vector<std::string>>;

/// A plain libpq session, as an operator's psql: to look at what the store wrote.
class Psql {
 public:
  explicit Psql(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      ADD_FAILURE() << "psql: " << PQerrorMessage(conn_);
    }
  }
  Psql(const Psql&) = delete;
  Psql& operator=(const Psql&) = delete;
  ~Psql() { PQfinish(conn_); }

  Rows Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    Rows rows;
    const auto status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      ADD_FAILURE() << "psql: " << sql << ": " << PQresultErrorMessage(r);
    } else {
      for (int i = 0; i < PQntuples(r); ++i) {
        std::vector<std::string> row;
        for (int j = 0; j < PQnfields(r); ++j) {
          row.emplace_back(PQgetisnull(r, i, j) == 1 ? "NULL" : PQgetvalue(r, i, j));
        }
        rows.push_back(std::move(row));
      }
    }
    PQclear(r);
    return rows;
  }

 private:
  PGconn* conn_;
};

/// Waits for `done` for up to 20 s, checking every 10 ms.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Connection MakeConnection(std::int64_t account_id, std::string client_id) {
  Connection c;
  c.account_id = account_id;
  c.client_id = std::move(client_id);
  c.base_domain = "example.amocrm.ru";
  c.status = amoauth::core::ConnectionStatus::kActive;
  c.access_token = Secret("access-token-plaintext-0123456789");
  c.refresh_token = Secret("refresh-token-plaintext-9876543210");
  c.expires_at = At(86'400);
  return c;
}

/// What a listener heard, in order.
struct Heard {
  std::mutex mutex;
  std::vector<std::string> changes;  // "accountId/clientId"
  std::vector<bool> continuity;

  amoauth::service::ConnectionChanges::Listener Listener() {
    amoauth::service::ConnectionChanges::Listener l;
    l.changed = [this](AccountKey key) {
      const std::lock_guard lock(mutex);
      changes.push_back(fmt::format("{}/{}", key.account_id, key.client_id));
    };
    l.continuity = [this](bool listening) {
      const std::lock_guard lock(mutex);
      continuity.push_back(listening);
    };
    return l;
  }
  std::vector<std::string> Changes() {
    const std::lock_guard lock(mutex);
    return changes;
  }
  std::vector<bool> Continuity() {
    const std::lock_guard lock(mutex);
    return continuity;
  }
};

/// 10,000 token rows, every tenth reauth_required, the rest active; `time_column` ("nextRefreshAt"
/// or "lastRefreshAt") one minute apart from 2025-01-01T00:01:00Z; then ANALYZE, so that the
/// planner sees the table as it would in production.
void FillTenThousandRows(Psql& psql, const std::string& time_column) {
  psql.Query(R"(
    INSERT INTO amo_tokens ("accountId", "clientId", "baseDomain", "status", "keyId",
                            "accessToken", "expiresAt", "version", "createdAt", "updatedAt",
                            ")" +
             time_column + R"(")
    SELECT g, 'client', 'example.amocrm.ru',
           CASE WHEN g % 10 = 0 THEN 'reauth_required' ELSE 'active' END, 'k', '\x00'::bytea,
           '2025-01-01T00:00:00Z', 1, '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z',
           to_char(timestamp '2025-01-01' + g * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    FROM generate_series(1, 10000) AS g)");
  psql.Query("ANALYZE amo_tokens");
}

class PgStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<PgStore> Open(std::size_t pool_size = 2) {
    PgOptions options;
    options.url = db_.Url();
    options.pool_size = pool_size;
    options.clock = &clock_;
    auto store = PgStore::Open(std::move(options), key_);
    if (!store) {
      ADD_FAILURE() << "open failed: " << store.error().message();
      return nullptr;
    }
    return std::move(*store);
  }

  template <class T>
  T Run(boost::asio::awaitable<T> task) {
    return RunCo(ioc_, std::move(task));
  }

  /// Cuts every session of the test database but this one, as a server restart does.
  void TerminateSessions(const std::string& which = "") {
    Psql(db_.Url()).Query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()" +
        which);
  }

  amoauth::testing::ScratchDatabase db_;  // throws, saying why, without the fixture
  amoauth::testing::FakeClock clock_{kNow};
  MasterKey key_ = MasterKey::Generate();
  boost::asio::io_context ioc_;
};

// ---- migrations ---------------------------------------------------------------------------------

TEST_F(PgStoreTest, MigratesAFreshDatabaseAndReopensWithoutApplyingAnything) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->SchemaVersion(), 7);
  EXPECT_EQ(first->Engine(), "postgresql");
  Psql psql(db_.Url());
  const Rows applied = psql.Query("SELECT version, applied_at FROM schema_migrations ORDER BY 1");
  ASSERT_EQ(applied.size(), 7U);
  clock_.Advance(std::chrono::hours(1));
  auto second = Open();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->SchemaVersion(), 7);
  EXPECT_EQ(psql.Query("SELECT version, applied_at FROM schema_migrations ORDER BY 1"), applied);
}

TEST_F(PgStoreTest, InstancesStartingAtOnceMigrateOnce) {
  constexpr int kInstances = 4;
  std::vector<std::thread> threads;
  std::vector<int> versions(kInstances, -1);
  for (int i = 0; i < kInstances; ++i) {
    threads.emplace_back([&, i] {
      PgOptions options;
      options.url = db_.Url();
      options.pool_size = 1;
      auto store = PgStore::Open(std::move(options), key_);
      versions[static_cast<std::size_t>(i)] = store ? (*store)->SchemaVersion() : 0;
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(versions, std::vector<int>(kInstances, 7));
  EXPECT_EQ(Psql(db_.Url()).Query("SELECT count(*), max(version) FROM schema_migrations"),
            (Rows{{"7", "7"}}));
}

TEST_F(PgStoreTest, RefusesASchemaNewerThanItKnows) {
  ASSERT_NE(Open(), nullptr);
  Psql(db_.Url()).Query("INSERT INTO schema_migrations VALUES (99, '2030-01-01T00:00:00Z')");
  PgOptions options;
  options.url = db_.Url();
  EXPECT_EQ(PgStore::Open(std::move(options), key_).error(),
            amoauth::make_error_code(Errc::kStoreFailure));
}

// ---- what an operator sees ----------------------------------------------------------------------

TEST_F(PgStoreTest, TheSeedQueryWorksVerbatimInPsql) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Run(store->Upsert(MakeConnection(31337001, "client"), {})));
  EXPECT_EQ(
      Psql(db_.Url()).Query(R"(SELECT "accountId", "expiresAt", "createdAt" FROM amo_tokens;)"),
      (Rows{{"31337001", "2025-10-10T08:53:20Z", "2025-10-09T08:53:20Z"}}));
}

TEST_F(PgStoreTest, TokensAreSealedInTheDatabase) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Run(store->Upsert(MakeConnection(1, "client"), {})));
  // nonce (12) + ciphertext + tag (16), and neither token's text anywhere in the bytes.
  EXPECT_EQ(Psql(db_.Url()).Query(
                R"(SELECT length("accessToken"), length("refreshToken"),
                        position(convert_to('access-token-plaintext', 'UTF8') in "accessToken"),
                        position(convert_to('refresh-token-plaintext', 'UTF8') in "refreshToken")
                 FROM amo_tokens)"),
            (Rows{{"61", "62", "0", "0"}}));
}

TEST_F(PgStoreTest, ListDueIsAnIndexRangeScanWithoutSortAtTenThousandRows) {
  ASSERT_NE(Open(), nullptr);
  Psql psql(db_.Url());
  FillTenThousandRows(psql, "nextRefreshAt");
  psql.Query("PREPARE list_due(text, text, bigint) AS " +
             std::string(amoauth::store_pg::detail::sql::kListDueSql));
  std::string plan;
  for (const auto& row :
       psql.Query("EXPLAIN EXECUTE list_due('active', '2025-01-05T00:00:00Z', 100)")) {
    plan += row.front() + "\n";
  }
  EXPECT_NE(plan.find("Index Scan using amo_tokens_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Sort"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
}

TEST_F(PgStoreTest, TheMetricsTokenAgeQueryReadsOneEndOfItsIndexAtTenThousandRows) {
  ASSERT_NE(Open(), nullptr);
  Psql psql(db_.Url());
  FillTenThousandRows(psql, "lastRefreshAt");
  std::string plan;
  for (const auto& row :
       psql.Query("EXPLAIN " + std::string(amoauth::store_pg::detail::sql::kOldestRefreshSql))) {
    plan += row.front() + "\n";
  }
  // min() over the index's leading equality and second column: the first matching entry, no scan.
  EXPECT_NE(plan.find("using amo_tokens_last_refresh"), std::string::npos) << plan;
  EXPECT_NE(plan.find("Limit"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
  EXPECT_EQ(psql.Query(std::string(amoauth::store_pg::detail::sql::kOldestRefreshSql)),
            (Rows{{"2025-01-01T00:01:00Z"}}));
}

TEST_F(PgStoreTest, ClaimDueRefreshesWalksTheDueIndexWithoutSortAtTenThousandRows) {
  ASSERT_NE(Open(), nullptr);
  Psql psql(db_.Url());
  FillTenThousandRows(psql, "nextRefreshAt");
  // Another instance holds a thousand of the leases.
  psql.Query(R"(
    INSERT INTO refresh_leases ("accountId", "clientId", "holder", "expiresAt")
    SELECT g, 'client', 'other', '2030-01-01T00:00:00Z' FROM generate_series(1, 10000, 10) AS g)");
  psql.Query("ANALYZE refresh_leases");
  psql.Query("PREPARE claim(text, text, text, text, bigint) AS " +
             std::string(amoauth::store_pg::detail::sql::kClaimDueRefreshesSql));
  std::string plan;
  for (const auto& row : psql.Query("EXPLAIN EXECUTE claim('active', '2025-01-05T00:00:00Z', "
                                    "'me', '2025-01-05T00:01:00Z', 100)")) {
    plan += row.front() + "\n";
  }
  EXPECT_NE(plan.find("Index Scan using amo_tokens_due"), std::string::npos) << plan;
  EXPECT_NE(plan.find("LockRows"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan on amo_tokens"), std::string::npos) << plan;
  // The only sort allowed is the final one of at most `limit` rows, above the claim.
  EXPECT_EQ(plan.find("Sort Key: t."), std::string::npos) << plan;
}

// ---- claims across instances --------------------------------------------------------------------

/// Two stores (two instances) claim from the same queue at once, in small batches, until it is
/// empty; every claimed id, in claim order.
template <class Claim>
std::vector<std::int64_t> ClaimEverythingFromTwoStores(PgStore& a, PgStore& b, Claim claim) {
  std::mutex mutex;
  std::vector<std::int64_t> ids;
  auto drain = [&](PgStore& store) {
    boost::asio::io_context ioc;
    for (;;) {
      const std::vector<std::int64_t> batch = RunCo(ioc, claim(store));
      if (batch.empty()) {
        return;
      }
      const std::lock_guard lock(mutex);
      ids.insert(ids.end(), batch.begin(), batch.end());
    }
  };
  std::thread first([&] { drain(a); });
  std::thread second([&] { drain(b); });
  first.join();
  second.join();
  return ids;
}

TEST_F(PgStoreTest, TwoInstancesClaimingEventsAtOnceNeverShareOne) {
  auto a = Open(3);
  auto b = Open(3);
  ASSERT_TRUE(a && b);
  std::vector<amoauth::service::Event> events;
  for (int i = 0; i < 300; ++i) {
    events.push_back({"test.event", fmt::format(R"({{"n":{}}})", i)});
  }
  ASSERT_TRUE(Run(a->Enqueue(std::move(events), At(0))));
  auto claim = [](PgStore& store) -> boost::asio::awaitable<std::vector<std::int64_t>> {
    auto claimed = co_await store.ClaimDue(At(0), At(600), 7);
    std::vector<std::int64_t> ids;
    for (const auto& e : claimed.value()) {
      ids.push_back(e.id);
    }
    co_return ids;
  };
  const auto ids = ClaimEverythingFromTwoStores(*a, *b, claim);
  EXPECT_EQ(ids.size(), 300U);
  EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 300U)
      << "an event was claimed twice";
}

TEST_F(PgStoreTest, TwoInstancesClaimingCodesAtOnceNeverShareOne) {
  auto a = Open(3);
  auto b = Open(3);
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 200; ++i) {
    amoauth::service::QueuedCode code;
    code.code = Secret(fmt::format("def50200-code-{}", i));
    code.account_host = "example.amocrm.ru";
    code.client_id = "client";
    code.received_at = At(0);
    code.expires_at = At(1200);
    code.next_attempt_at = At(0);
    ASSERT_TRUE(Run(a->Enqueue(std::move(code))).value());
  }
  auto claim = [](PgStore& store) -> boost::asio::awaitable<std::vector<std::int64_t>> {
    auto claimed = co_await store.ClaimDueCodes(At(0), At(600), 5);
    std::vector<std::int64_t> ids;
    for (const auto& c : claimed.value()) {
      ids.push_back(c.id);
    }
    co_return ids;
  };
  const auto ids = ClaimEverythingFromTwoStores(*a, *b, claim);
  EXPECT_EQ(ids.size(), 200U);
  EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 200U)
      << "a code was claimed twice";
}

// ---- notifications ------------------------------------------------------------------------------

TEST_F(PgStoreTest, AnotherInstancesListenerHearsEveryCommittedTokenWrite) {
  auto listening = Open(1);
  auto writing = Open(1);
  ASSERT_TRUE(listening && writing);
  Heard heard;
  listening->Subscribe(heard.Listener());
  ASSERT_TRUE(WaitFor([&] { return !heard.Continuity().empty(); }));
  EXPECT_EQ(heard.Continuity(), std::vector<bool>{true});

  auto stored = Run(writing->Upsert(MakeConnection(7, "client"), {}));
  ASSERT_TRUE(stored);
  ASSERT_TRUE(WaitFor([&] { return heard.Changes().size() == 1; }));
  // A lost compare-and-swap wrote nothing, so it is not announced; the winning one is.
  EXPECT_EQ(Run(writing->Replace(MakeConnection(7, "client"), stored->version + 5, {})).error(),
            amoauth::make_error_code(Errc::kConflict));
  ASSERT_TRUE(Run(writing->Replace(MakeConnection(7, "client"), stored->version, {})));
  ASSERT_TRUE(WaitFor([&] { return heard.Changes().size() >= 2; }));
  EXPECT_EQ(heard.Changes(), (std::vector<std::string>{"7/client", "7/client"}));
}

TEST_F(PgStoreTest, TheListenerReportsALostConnectionAndListensAgain) {
  auto listening = Open(1);
  auto writing = Open(1);
  ASSERT_TRUE(listening && writing);
  Heard heard;
  listening->Subscribe(heard.Listener());
  ASSERT_TRUE(WaitFor([&] { return heard.Continuity() == std::vector<bool>{true}; }));

  TerminateSessions(" AND query LIKE 'LISTEN%'");
  ASSERT_TRUE(WaitFor([&] { return heard.Continuity().size() == 3; }))
      << "continuity reports: " << heard.Continuity().size();
  EXPECT_EQ(heard.Continuity(), (std::vector<bool>{true, false, true}));

  ASSERT_TRUE(Run(writing->Upsert(MakeConnection(8, "client"), {})));
  EXPECT_TRUE(WaitFor([&] { return heard.Changes() == std::vector<std::string>{"8/client"}; }));
}

TEST_F(PgStoreTest, DestroyingTheStoreStopsItsListenerPromptly) {
  auto store = Open(1);
  ASSERT_NE(store, nullptr);
  Heard heard;
  store->Subscribe(heard.Listener());
  ASSERT_TRUE(WaitFor([&] { return !heard.Continuity().empty(); }));
  const auto start = std::chrono::steady_clock::now();
  store.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// ---- reconnection -------------------------------------------------------------------------------

TEST_F(PgStoreTest, CallsSucceedAgainAfterTheServerCutTheirConnections) {
  auto store = Open(1);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Run(store->Upsert(MakeConnection(9, "client"), {})));

  TerminateSessions();
  // A read is run again on a new connection: the caller never notices.
  auto found = Run(store->Find({9, "client"}));
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_TRUE(found->has_value());

  TerminateSessions();
  // A write whose outcome is unknown is never sent twice: it fails, the next one reconnects.
  EXPECT_EQ(Run(store->Upsert(MakeConnection(9, "client"), {})).error(),
            amoauth::make_error_code(Errc::kStoreFailure));
  auto again = Run(store->Upsert(MakeConnection(9, "client"), {}));
  ASSERT_TRUE(again) << again.error().message();
}

// ---- every statement runs
// ------------------------------------------------------------------------

// Not the contract (the typed suite checks the semantics on both engines): one pass over every
// port, so that a statement PostgreSQL rejects (syntax, parameter types) fails here, by name.
TEST_F(PgStoreTest, EveryStatementIsAcceptedByPostgreSQL) {
  auto store = Open(1);
  ASSERT_NE(store, nullptr);
  auto stored = Run(store->Upsert(MakeConnection(5, "client"), {{"account.connected", "{}"}}));
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_TRUE(Run(store->Replace(MakeConnection(5, "client"), stored->version, {})));
  EXPECT_EQ(Run(store->Replace(MakeConnection(6, "client"), 1, {})).error(),
            amoauth::make_error_code(Errc::kNotFound));
  EXPECT_EQ(Run(store->Find({5, "client"})).value()->refresh_token.Reveal(),
            "refresh-token-plaintext-9876543210");
  EXPECT_EQ(Run(store->FindByAccount(5)).value().size(), 1U);
  EXPECT_EQ(Run(store->FindByDomain("example.amocrm.ru")).value().size(), 1U);
  EXPECT_EQ(Run(store->List()).value().size(), 1U);
  EXPECT_TRUE(Run(store->ListDue(At(0), 10)).value().empty());

  amoauth::service::PendingState state;
  state.state_hash = "hash";
  state.client_id = "client";
  state.created_at = At(0);
  state.expires_at = At(600);
  EXPECT_TRUE(Run(store->Put(state, At(0))));
  EXPECT_TRUE(Run(store->Peek("hash", At(1))).value().has_value());
  EXPECT_TRUE(Run(store->Take("hash", At(1))).value().has_value());
  EXPECT_FALSE(Run(store->Take("hash", At(1))).value().has_value());

  amoauth::service::ExternalIntegration integration;
  integration.client_id = "external";
  integration.client_secret = Secret("client-secret");
  integration.state_hash = "state";
  integration.created_at = At(0);
  EXPECT_TRUE(Run(store->AddIntegration(integration)));
  EXPECT_EQ(Run(store->AddIntegration(integration)).error(),
            amoauth::make_error_code(Errc::kSecretsAlreadyReceived));
  EXPECT_EQ(Run(store->FindIntegration("external")).value()->client_secret.Reveal(),
            "client-secret");
  EXPECT_TRUE(Run(store->FindIntegrationByState("state")).value().has_value());
  EXPECT_EQ(Run(store->ListIntegrations()).value().size(), 1U);

  EXPECT_TRUE(Run(store->MarkUsed("code", At(0))).value());
  EXPECT_FALSE(Run(store->MarkUsed("code", At(1))).value());

  EXPECT_TRUE(Run(store->TryAcquire({5, "client"}, "me", At(0), At(30))).value());
  EXPECT_FALSE(Run(store->TryAcquire({5, "client"}, "other", At(1), At(30))).value());
  EXPECT_TRUE(Run(store->Release({5, "client"}, "me")));
  EXPECT_TRUE(Run(store->TryAcquire({5, "client"}, "other", At(1), At(30))).value());

  EXPECT_EQ(Run(store->CountPending()).value(), 1U);
  const auto events = Run(store->ClaimDue(At(0), At(60), 10)).value();
  ASSERT_EQ(events.size(), 1U);
  EXPECT_TRUE(Run(store->MarkFailed(events[0].id, "HTTP 500", At(120))));
  EXPECT_TRUE(Run(store->MarkDelivered(events[0].id, At(130))));
  EXPECT_EQ(Run(store->CountPending()).value(), 0U);

  amoauth::service::QueuedCode code;
  code.code = Secret("def50200-code");
  code.account_host = "example.amocrm.ru";
  code.client_id = "client";
  code.received_at = At(0);
  code.expires_at = At(1200);
  code.next_attempt_at = At(0);
  EXPECT_TRUE(Run(store->Enqueue(code)).value());
  EXPECT_FALSE(Run(store->Enqueue(code)).value());
  const auto codes = Run(store->ClaimDueCodes(At(0), At(60), 10)).value();
  ASSERT_EQ(codes.size(), 1U);
  EXPECT_EQ(codes[0].code.Reveal(), "def50200-code");
  EXPECT_TRUE(Run(store->Retry(codes[0].id, "HTTP 500", At(90))));
  EXPECT_TRUE(Run(store->GiveUp(codes[0].id, {{"code.exchange_failed", "{}"}}, At(100))));
  EXPECT_EQ(Run(store->CountQueued()).value(), 0U);
  EXPECT_EQ(Run(store->CountPending()).value(), 1U);
  EXPECT_TRUE(Run(store->Enqueue(code)).value());
  EXPECT_TRUE(Run(store->Finish(Run(store->ClaimDueCodes(At(200), At(260), 1)).value().at(0).id)));

  EXPECT_FALSE(Run(store->TryTake("subject", At(0), std::chrono::seconds(300))).value());
  EXPECT_EQ(Run(store->TryTake("subject", At(10), std::chrono::seconds(300))).value(), At(300));
}

// ---- start-up errors ----------------------------------------------------------------------------

TEST_F(PgStoreTest, OpenFailsInWordsWhenNoServerListensOnTheSocket) {
  auto out = std::make_shared<std::ostringstream>();
  auto logger = std::make_shared<spdlog::logger>(
      "store", std::make_shared<spdlog::sinks::ostream_sink_mt>(*out));
  spdlog::register_logger(logger);
  const std::string dir = fmt::format("/tmp/amoauth-no-server-{}", ::getpid());
  PgOptions options;
  options.url = fmt::format("postgresql://postgres:Sup3r-Secret-Pw@/postgres?host={}", dir);
  options.connect_timeout = std::chrono::milliseconds(2000);
  const auto start = std::chrono::steady_clock::now();
  auto store = PgStore::Open(std::move(options), key_);
  const auto took = std::chrono::steady_clock::now() - start;
  spdlog::drop("store");

  EXPECT_EQ(store.error(), amoauth::make_error_code(Errc::kStoreFailure));
  EXPECT_LT(took, std::chrono::seconds(3));
  const std::string log = out->str();
  EXPECT_NE(log.find("cannot connect to PostgreSQL at Unix socket directory " + dir),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("No such file or directory"), std::string::npos) << log;
  EXPECT_EQ(log.find("Sup3r-Secret-Pw"), std::string::npos) << log;
}

}  // namespace
