// The store contract: what every engine (SQLite, PostgreSQL) must do, written once against
// service::Store and run on each engine (store_engine.hpp). Engine-only behaviour (file format,
// query plans, old-file migrations) is tested beside the engine (tests/unit/store_sqlite).

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
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

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/crypto/aead.hpp"
#include "store_engine.hpp"
#include "store_test_helpers.hpp"

namespace amoauth::testing::store {
namespace {

using core::AccountKey;
using core::Connection;
using core::ConnectionStatus;
using core::FromUnixSeconds;
using core::TimePoint;
using crypto::MasterKey;
using service::Event;
using service::OutboxEntry;
using service::PendingState;

TEST_P(StoreContract, MigrationsAreIdempotentOnReopen) {
  int first_version = 0;
  {
    auto store = OpenStore();
    first_version = store->SchemaVersion();
    EXPECT_GE(first_version, 1);
    Unwrap(Run(store->Upsert(MakeConnection(1, "a"), {})));
  }
  auto store = OpenStore();
  EXPECT_EQ(store->SchemaVersion(), first_version);
  EXPECT_EQ(Query("SELECT count(*), max(version) FROM schema_migrations"),
            (Rows{{std::to_string(first_version), std::to_string(first_version)}}));
  EXPECT_TRUE(Unwrap(Run(store->Find({1, "a"}))).has_value());
}

TEST_P(StoreContract, RefusesASchemaNewerThanItKnows) {
  OpenStore().reset();
  Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'x')");
  auto store = engine_->Open(key_, 10'000, clock_, nullptr);
  ASSERT_FALSE(store.has_value());
  ExpectError(store.error(), Errc::kStoreFailure);
}

TEST_P(StoreContract, SeedQueryShowsReadableTimes) {
  auto store = OpenStore();
  clock_.Set(1'795'290'180);  // 2026-11-21T19:43:00Z
  Connection c = MakeConnection(31'337'001, "2912780f-a1e4-4d5d-a069-ee01422d8bef");
  c.expires_at = FromUnixSeconds(1'795'376'580);  // 2026-11-22T19:43:00Z
  Unwrap(Run(store->Upsert(c, {})));

  // Seed 003, verbatim.
  EXPECT_EQ(Query(R"(SELECT "accountId", "expiresAt", "createdAt" FROM amo_tokens;)"),
            (Rows{{"31337001", "2026-11-22T19:43:00Z", "2026-11-21T19:43:00Z"}}));
}

TEST_P(StoreContract, UpsertThenFindListAndFindByAccount) {
  auto store = OpenStore();
  const Connection a1 = MakeConnection(1, "a", "tok-1a", "ref-1a");
  const Connection b1 = MakeConnection(1, "b", "tok-1b", "ref-1b");
  const Connection a2 = MakeConnection(2, "a", "tok-2a", "ref-2a");
  // Out of order on purpose: List orders by account, then client.
  for (const auto& c : {a2, b1, a1}) {
    const Connection stored = Unwrap(Run(store->Upsert(c, {})));
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

TEST_P(StoreContract, UpsertReplacesAndBumpsVersionKeepingCreatedAt) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(7, "c"), {})));

  clock_.Advance(std::chrono::seconds(500));
  Connection second = MakeConnection(7, "c", "new-access", "new-refresh");
  second.status = ConnectionStatus::kReauthRequired;
  second.base_domain = "renamed.amocrm.ru";
  second.expires_at = FromUnixSeconds(kNow + 500 + 86'400);
  // Ignored: the store owns these.
  second.created_at = FromUnixSeconds(1);
  second.updated_at = FromUnixSeconds(2);
  second.version = 77;
  const Connection stored = Unwrap(Run(store->Upsert(second, {})));
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

TEST_P(StoreContract, ReplaceSucceedsAtTheExpectedVersion) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(Run(store->Upsert(MakeConnection(5, "x"), {})));
  clock_.Advance(std::chrono::seconds(60));
  const Connection next = MakeConnection(5, "x", "rotated-access", "rotated-refresh");
  const Connection v2 = Unwrap(Run(store->Replace(next, v1.version, {})));
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

TEST_P(StoreContract, ReplaceAtAStaleVersionConflictsAndChangesNothing) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(Run(store->Upsert(MakeConnection(5, "x"), {})));
  const Connection winner = MakeConnection(5, "x", "winner-access", "winner-refresh");
  Unwrap(Run(store->Replace(winner, v1.version, {})));

  auto lost = Run(store->Replace(MakeConnection(5, "x", "loser", "loser"), v1.version, {}));
  ASSERT_FALSE(lost.has_value());
  ExpectError(lost.error(), Errc::kConflict);

  const auto found = Unwrap(Run(store->Find({5, "x"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, 2);
  ExpectSameContent(*found, winner);
}

TEST_P(StoreContract, ReplaceOfAMissingRowIsNotFound) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(5, "x"), {})));
  auto missing = Run(store->Replace(MakeConnection(5, "other-client"), 1, {}));
  ASSERT_FALSE(missing.has_value());
  ExpectError(missing.error(), Errc::kNotFound);
  EXPECT_FALSE(Unwrap(Run(store->Find({5, "other-client"}))).has_value());
}

TEST_P(StoreContract, EmptyRefreshTokenIsStoredAsNullAndReadBackEmpty) {
  auto store = OpenStore();
  const Connection long_lived = MakeConnection(9, "llt", "long-lived-access-token", "");
  Unwrap(Run(store->Upsert(long_lived, {})));

  EXPECT_EQ(Query(R"(SELECT count(*) FROM amo_tokens
                     WHERE "refreshToken" IS NULL AND "accessToken" IS NOT NULL)"),
            (Rows{{"1"}}));

  const auto found = Unwrap(Run(store->Find({9, "llt"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->refresh_token.Empty());
  EXPECT_EQ(found->access_token.Reveal(), "long-lived-access-token");
}

TEST_P(StoreContract, TokensNeverReachTheFilesInPlaintext) {
  const std::string access = "ACCESS-eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9-unique-marker";
  const std::string refresh = "REFRESH-def50200a1b2c3d4e5f6-unique-marker";
  auto store = OpenStore();
  Connection c = MakeConnection(11, "plain", access, refresh);
  c.base_domain = "visible-marker.amocrm.ru";
  Unwrap(Run(store->Upsert(c, {})));
  Unwrap(Run(store->Replace(c, 1, {})));  // a second copy of each (another WAL frame, tuple)

  // The store is still open: whatever the engine has written so far (its log included).
  const std::string bytes = engine_->FileBytes();
  ASSERT_NE(bytes.find("visible-marker.amocrm.ru"), std::string::npos)
      << "sanity: the row must be somewhere in these files";
  EXPECT_EQ(bytes.find(access), std::string::npos);
  EXPECT_EQ(bytes.find(refresh), std::string::npos);
  EXPECT_EQ(bytes.find("unique-marker"), std::string::npos);

  // And once the store is closed.
  store.reset();
  const std::string closed = engine_->FileBytes();
  ASSERT_NE(closed.find("visible-marker.amocrm.ru"), std::string::npos);
  EXPECT_EQ(closed.find("unique-marker"), std::string::npos);
}

TEST_P(StoreContract, AnotherMasterKeyCannotReadTheRows) {
  Unwrap(Run(OpenStore()->Upsert(MakeConnection(1, "a"), {})));

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

TEST_P(StoreContract, CiphertextMovedToAnotherRowDoesNotDecrypt) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(1, "a", "access-one", "refresh-one"), {})));
  Unwrap(Run(store->Upsert(MakeConnection(2, "a", "access-two", "refresh-two"), {})));
  Exec(R"(UPDATE amo_tokens SET "accessToken" =
             (SELECT "accessToken" FROM amo_tokens WHERE "accountId" = 2)
           WHERE "accountId" = 1)");
  // Within one row too: the refresh ciphertext put in the access column.
  Exec(R"(UPDATE amo_tokens SET "accessToken" = "refreshToken" WHERE "accountId" = 2)");
  for (const std::int64_t account : {1, 2}) {
    auto found = Run(store->Find({account, "a"}));
    ASSERT_FALSE(found.has_value()) << account;
    ExpectError(found.error(), Errc::kCryptoFailure);
  }
}

TEST_P(StoreContract, EightConcurrentUpsertsOnTwoThreadsAllSucceed) {
  auto store = OpenStore();
  boost::asio::io_context ioc(2);
  std::vector<std::future<Result<Connection>>> same_key;
  std::vector<std::future<Result<Connection>>> distinct_keys;
  for (int i = 0; i < 8; ++i) {
    same_key.push_back(boost::asio::co_spawn(
        ioc,
        store->Upsert(MakeConnection(100, "shared", "access-" + std::to_string(i)), {}),
        boost::asio::use_future));
    distinct_keys.push_back(boost::asio::co_spawn(
        ioc, store->Upsert(MakeConnection(200 + i, "own"), {}), boost::asio::use_future));
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

TEST_P(StoreContract, ConcurrentReplacesAtOneVersionFromTwoStoresHaveExactlyOneWinner) {
  auto first = OpenStore();
  auto second = OpenStore();  // another process's view: its own connections
  const Connection v1 = Unwrap(Run(first->Upsert(MakeConnection(5, "x"), {})));
  std::vector<boost::asio::awaitable<Result<Connection>>> tasks;
  for (int i = 0; i < 12; ++i) {
    service::Store& store = i % 2 == 0 ? *first : *second;
    const std::string access = "access-" + std::to_string(i);
    tasks.push_back(
        store.Replace(MakeConnection(5, "x", access), v1.version, MakeEvents({access})));
  }
  const auto results = RunConcurrently(std::move(tasks));
  std::vector<std::string> winners;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i]) {
      EXPECT_EQ(results[i]->version, v1.version + 1);
      winners.push_back("access-" + std::to_string(i));
    } else {
      ExpectError(results[i].error(), Errc::kConflict);
    }
  }
  ASSERT_EQ(winners.size(), 1U);
  const auto found = Unwrap(Run(second->Find({5, "x"})));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, v1.version + 1);
  EXPECT_EQ(found->access_token.Reveal(), winners[0]);
  // Only the winner's event was committed.
  EXPECT_EQ(Query(R"(SELECT "type" FROM webhook_outbox)"), (Rows{{winners[0]}}));
}

TEST_P(StoreContract, ConcurrentTakesOfOneStateFromTwoStoresHaveExactlyOneWinner) {
  auto first = OpenStore();
  auto second = OpenStore();
  for (int round = 0; round < 5; ++round) {
    const std::string hash = "raced-state-" + std::to_string(round);
    Unwrap(Run(first->Put(MakeState(hash, kNow), FromUnixSeconds(kNow))));
    std::vector<boost::asio::awaitable<Result<std::optional<PendingState>>>> tasks;
    for (int i = 0; i < 12; ++i) {
      service::Store& store = i % 2 == 0 ? *first : *second;
      tasks.push_back(store.Take(hash, FromUnixSeconds(kNow + 1)));
    }
    int winners = 0;
    for (auto& taken : RunConcurrently(std::move(tasks))) {
      const auto state = Unwrap(std::move(taken));
      if (state.has_value()) {
        ++winners;
        EXPECT_EQ(state->state_hash, hash);
      }
    }
    EXPECT_EQ(winners, 1) << "round " << round;
  }
}

TEST_P(StoreContract, RefreshBookkeepingRoundTripsEverywhereRowsAreRead) {
  auto store = OpenStore();
  Connection c = MakeConnection(3, "k");
  c.last_refresh_at = At(-3600);
  c.next_refresh_at = At(-1);
  c.refresh_failures = 2;
  c.last_error = "amoCRM answered 503";
  c.last_error_at = At(-60);
  const Connection stored = Unwrap(Run(store->Upsert(c, {})));
  auto expect_bookkeeping = [&c](const Connection& actual) {
    EXPECT_EQ(actual.last_refresh_at, c.last_refresh_at);
    EXPECT_EQ(actual.next_refresh_at, c.next_refresh_at);
    EXPECT_EQ(actual.refresh_failures, c.refresh_failures);
    EXPECT_EQ(actual.last_error, c.last_error);
    EXPECT_EQ(actual.last_error_at, c.last_error_at);
  };
  expect_bookkeeping(stored);
  const auto found = Unwrap(Run(store->Find({3, "k"})));
  ASSERT_TRUE(found.has_value());
  expect_bookkeeping(*found);
  const auto by_account = Unwrap(Run(store->FindByAccount(3)));
  ASSERT_EQ(by_account.size(), 1U);
  expect_bookkeeping(by_account[0]);
  const auto all = Unwrap(Run(store->List()));
  ASSERT_EQ(all.size(), 1U);
  expect_bookkeeping(all[0]);
  const auto due = Unwrap(Run(store->ListDue(At(0), 10)));
  ASSERT_EQ(due.size(), 1U);
  expect_bookkeeping(due[0]);

  // A healthy refresh: failures cleared, the error times "never", stored as NULL.
  c.last_refresh_at = At(0);
  c.next_refresh_at = TimePoint{};
  c.refresh_failures = 0;
  c.last_error.clear();
  c.last_error_at = TimePoint{};
  const Connection replaced = Unwrap(Run(store->Replace(c, stored.version, {})));
  expect_bookkeeping(replaced);
  const auto after = Unwrap(Run(store->Find({3, "k"})));
  ASSERT_TRUE(after.has_value());
  expect_bookkeeping(*after);

  EXPECT_EQ(Query(R"(SELECT "lastRefreshAt", "nextRefreshAt", "refreshFailures", "lastError",
                                "lastErrorAt" FROM amo_tokens)"),
            (Rows{{"2025-10-09T08:53:20Z", "NULL", "0", "", "NULL"}}));
}

TEST_P(StoreContract, UpsertCommitsItsEventsWithTheRow) {
  auto store = OpenStore();
  Unwrap(Run(
      store->Upsert(MakeConnection(1, "a"), MakeEvents({"account.connected", "token.refreshed"}))));
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 2U);

  EXPECT_EQ(Query(R"(SELECT "type", "body", "createdAt", "attempts", "nextAttemptAt",
                                "lastError", "deliveredAt" FROM webhook_outbox ORDER BY "id")"),
            (Rows{{"account.connected",
                   R"({"event":"account.connected"})",
                   "2025-10-09T08:53:20Z",
                   "0",
                   "2025-10-09T08:53:20Z",
                   "",
                   "NULL"},
                  {"token.refreshed",
                   R"({"event":"token.refreshed"})",
                   "2025-10-09T08:53:20Z",
                   "0",
                   "2025-10-09T08:53:20Z",
                   "",
                   "NULL"}}));
}

TEST_P(StoreContract, ReplaceCommitsEventsOnlyWhenTheSwapSucceeds) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(Run(store->Upsert(MakeConnection(5, "x"), {})));
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 0U);

  Unwrap(Run(store->Replace(MakeConnection(5, "x", "won"), v1.version, MakeEvents({"won"}))));
  auto lost = Run(store->Replace(MakeConnection(5, "x", "lost"), v1.version, MakeEvents({"lost"})));
  ASSERT_FALSE(lost.has_value());
  ExpectError(lost.error(), Errc::kConflict);
  auto missing = Run(store->Replace(MakeConnection(6, "x"), 1, MakeEvents({"missing"})));
  ASSERT_FALSE(missing.has_value());
  ExpectError(missing.error(), Errc::kNotFound);

  EXPECT_EQ(Query(R"(SELECT "type" FROM webhook_outbox)"), (Rows{{"won"}}));
}

/// Events about row (account, client), as EventFactory makes them: delivered by webhook, or
/// (deliver = false) for the account's history only.
std::vector<Event> AccountEvents(std::int64_t account,
                                 const std::string& client,
                                 std::initializer_list<std::string> types,
                                 bool deliver = true) {
  std::vector<Event> events = MakeEvents(types);
  for (auto& e : events) {
    e.account_id = account;
    e.client_id = client;
    e.deliver = deliver;
  }
  return events;
}

std::vector<std::string> Types(const std::vector<service::AccountEvent>& events) {
  std::vector<std::string> types;
  for (const auto& e : events) {
    types.push_back(e.type);
  }
  return types;
}

TEST_P(StoreContract, EventsAboutAnAccountAreKeptInItsHistoryNewestFirstDeliveredOrNot) {
  auto store = OpenStore();
  const Connection v1 = Unwrap(
      Run(store->Upsert(MakeConnection(5, "x"), AccountEvents(5, "x", {"account.connected"}))));
  // History only (webhooks off, or a type the backend is not told about): never in the outbox.
  Unwrap(Run(store->Replace(MakeConnection(5, "x", "t2"),
                            v1.version,
                            AccountEvents(5, "x", {"token.refreshed"}, false))));
  // A lost swap writes no history either.
  auto lost = Run(store->Replace(
      MakeConnection(5, "x", "t3"), v1.version, AccountEvents(5, "x", {"lost"}, false)));
  ASSERT_FALSE(lost.has_value());
  Unwrap(Run(store->Enqueue(AccountEvents(5, "z", {"account.api_blocked"}), At(10))));
  Unwrap(Run(store->Upsert(MakeConnection(6, "y"), AccountEvents(6, "y", {"account.connected"}))));
  Unwrap(Run(store->Enqueue(MakeEvents({"code.exchange_failed"}), At(20))));  // no account

  const auto history = Unwrap(Run(store->ListAccountEvents(5, 10)));
  EXPECT_EQ(
      Types(history),
      (std::vector<std::string>{"account.api_blocked", "token.refreshed", "account.connected"}));
  ASSERT_EQ(history.size(), 3U);
  EXPECT_EQ(history[0].client_id, "z");
  EXPECT_EQ(history[0].account_id, 5);
  EXPECT_EQ(history[0].created_at, At(10));
  EXPECT_EQ(history[0].body, R"({"event":"account.api_blocked"})");
  EXPECT_EQ(history[1].client_id, "x");
  EXPECT_EQ(history[2].created_at, FromUnixSeconds(kNow));
  EXPECT_GT(history[0].id, history[1].id);
  EXPECT_GT(history[1].id, history[2].id);

  EXPECT_EQ(Types(Unwrap(Run(store->ListAccountEvents(5, 1)))),
            (std::vector<std::string>{"account.api_blocked"}));
  EXPECT_EQ(Types(Unwrap(Run(store->ListAccountEvents(6, 10)))),
            (std::vector<std::string>{"account.connected"}));
  EXPECT_TRUE(Unwrap(Run(store->ListAccountEvents(7, 10))).empty());
  // The outbox got only what is delivered.
  EXPECT_EQ(Query(R"(SELECT "type" FROM webhook_outbox ORDER BY "id")"),
            (Rows{{"account.connected"},
                  {"account.api_blocked"},
                  {"account.connected"},
                  {"code.exchange_failed"}}));
}

TEST_P(StoreContract, AccountHistoryKeepsTheNewestEntriesOfEachRow) {
  constexpr std::size_t kKept = service::AccountHistory::kAccountHistoryKept;
  auto store = OpenStore();
  std::vector<Event> many;
  for (std::size_t i = 0; i < kKept + 5; ++i) {
    auto one = AccountEvents(1, "a", {"e" + std::to_string(i)}, false);
    many.push_back(std::move(one.front()));
  }
  Unwrap(Run(store->Enqueue(AccountEvents(1, "b", {"b0", "b1", "b2"}, false), At(0))));
  Unwrap(Run(store->Enqueue(std::move(many), At(1))));

  const auto history = Unwrap(Run(store->ListAccountEvents(1, 10'000)));
  ASSERT_EQ(history.size(), kKept + 3);  // the other row's entries are its own
  EXPECT_EQ(history.front().type, "e" + std::to_string(kKept + 4));
  std::size_t of_a = 0;
  for (const auto& e : history) {
    if (e.client_id == "a") {
      ++of_a;
      EXPECT_NE(e.type, "e4");  // the five oldest are gone
      EXPECT_NE(e.type, "e0");
    }
  }
  EXPECT_EQ(of_a, kKept);
  EXPECT_EQ(history.back().type, "b0");
}

/// A row of client `client` (access token "access-" + client) for `account`, next due at `next`.
void PutDue(boost::asio::io_context& ioc,
            service::Store& store,
            std::int64_t account,
            const std::string& client,
            TimePoint next,
            ConnectionStatus status = ConnectionStatus::kActive) {
  Connection c = MakeConnection(account, client, "access-" + client);
  c.next_refresh_at = next;
  c.status = status;
  Unwrap(RunCo(ioc, store.Upsert(c, {})));
}

/// The scheduler's cases, named by client: due at various times, never due, not active, and two
/// rows due at the same second (which come in key order).
void PutDueRows(boost::asio::io_context& ioc, service::Store& store) {
  PutDue(ioc, store, 1, "due-10s-ago", At(-10));
  PutDue(ioc, store, 2, "due-100s-ago", At(-100));
  PutDue(ioc, store, 3, "due-now", At(0));
  PutDue(ioc, store, 4, "due-in-1s", At(1));
  PutDue(ioc, store, 5, "never", TimePoint{});
  PutDue(ioc, store, 6, "reauth", At(-1000), ConnectionStatus::kReauthRequired);
  PutDue(ioc, store, 7, "disconnected", At(-1000), ConnectionStatus::kDisconnected);
  PutDue(ioc, store, 9, "tie-b", At(-50));
  PutDue(ioc, store, 8, "tie-a", At(-50));
}

TEST_P(StoreContract, ListDueReturnsActiveDueRowsEarliestFirstUpToTheLimit) {
  auto store = OpenStore();
  PutDueRows(ioc_, *store);

  EXPECT_EQ(Clients(Unwrap(Run(store->ListDue(At(0), 100)))),
            (std::vector<std::string>{"due-100s-ago", "tie-a", "tie-b", "due-10s-ago", "due-now"}));
  EXPECT_EQ(Clients(Unwrap(Run(store->ListDue(At(0), 2)))),
            (std::vector<std::string>{"due-100s-ago", "tie-a"}));
  EXPECT_TRUE(Unwrap(Run(store->ListDue(At(0), 0))).empty());
  EXPECT_TRUE(Unwrap(Run(store->ListDue(At(-101), 100))).empty());
  EXPECT_EQ(Unwrap(Run(store->ListDue(At(1), 100))).size(), 6U);
}

TEST_P(StoreContract, CountConnectionsCountsRowsByStatusAndFindsTheOldestActiveRefresh) {
  auto store = OpenStore();
  const service::ConnectionCensus empty = Unwrap(Run(store->CountConnections()));
  EXPECT_EQ(empty.by_status, (std::array<std::size_t, 3>{0, 0, 0}));
  EXPECT_FALSE(empty.oldest_refresh.has_value());

  auto put = [&](std::int64_t account, TimePoint last_refresh, ConnectionStatus status) {
    Connection c = MakeConnection(account, "client");
    c.last_refresh_at = last_refresh;
    c.status = status;
    if (last_refresh == TimePoint{}) {
      c.refresh_token = Secret();  // a long-lived token: never refreshed
    }
    Unwrap(Run(store->Upsert(c, {})));
  };
  put(1, At(-50), ConnectionStatus::kActive);
  put(2, At(-100), ConnectionStatus::kActive);
  put(3, TimePoint{}, ConnectionStatus::kActive);        // no last refresh: not a candidate
  put(4, At(-1000), ConnectionStatus::kReauthRequired);  // older, but no longer in use
  put(5, At(-2000), ConnectionStatus::kDisconnected);
  put(6, At(-3000), ConnectionStatus::kDisconnected);

  const service::ConnectionCensus census = Unwrap(Run(store->CountConnections()));
  EXPECT_EQ(census.by_status, (std::array<std::size_t, 3>{3, 1, 2}));
  ASSERT_TRUE(census.oldest_refresh.has_value());
  EXPECT_EQ(*census.oldest_refresh, At(-100));

  // The oldest one refreshed: the next oldest is reported.
  put(2, At(0), ConnectionStatus::kActive);
  EXPECT_EQ(Unwrap(Run(store->CountConnections())).oldest_refresh, At(-50));
}

TEST_P(StoreContract, LeaseIsExclusiveAcrossTwoStoresOnOneDatabase) {
  auto first = OpenStore();
  auto second = OpenStore();  // another process's view: its own connections
  const AccountKey key{1, "a"};
  EXPECT_TRUE(Unwrap(Run(first->TryAcquire(key, "process-1", At(0), At(30)))));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(1), At(31)))));
  // Another key is another lease.
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire({1, "b"}, "process-2", At(1), At(31)))));
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire({2, "a"}, "process-2", At(1), At(31)))));

  EXPECT_EQ(Query(R"(SELECT "accountId", "clientId", "holder", "expiresAt"
                         FROM refresh_leases ORDER BY "accountId", "clientId")"),
            (Rows{{"1", "a", "process-1", "2025-10-09T08:53:50Z"},
                  {"1", "b", "process-2", "2025-10-09T08:53:51Z"},
                  {"2", "a", "process-2", "2025-10-09T08:53:51Z"}}));
}

TEST_P(StoreContract, ConcurrentAcquiresFromTwoStoresHaveExactlyOneWinner) {
  auto first = OpenStore();
  auto second = OpenStore();
  for (std::int64_t account = 1; account <= 5; ++account) {
    std::vector<boost::asio::awaitable<Result<bool>>> tasks;
    for (int i = 0; i < 12; ++i) {
      AccountKey key{account, "shared"};
      service::Store& store = i % 2 == 0 ? *first : *second;
      tasks.push_back(store.TryAcquire(key, "holder-" + std::to_string(i), At(0), At(30)));
    }
    const auto results = RunConcurrently(std::move(tasks));
    std::vector<std::string> winners;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (Unwrap(results[i])) {
        winners.push_back("holder-" + std::to_string(i));
      }
    }
    ASSERT_EQ(winners.size(), 1U) << "account " << account;
    EXPECT_EQ(Query(R"(SELECT "holder" FROM refresh_leases WHERE "accountId" = )" +
                    std::to_string(account)),
              (Rows{{winners[0]}}));
  }
}

TEST_P(StoreContract, ExpiredLeaseIsTakenOver) {
  auto first = OpenStore();
  auto second = OpenStore();
  const AccountKey key{1, "a"};
  ASSERT_TRUE(Unwrap(Run(first->TryAcquire(key, "process-1", At(0), At(30)))));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(29), At(59)))));
  // Ended at `now`: free (process-1 died, or is too slow to count on).
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire(key, "process-2", At(30), At(60)))));
  EXPECT_FALSE(Unwrap(Run(first->TryAcquire(key, "process-1", At(31), At(61)))));
}

TEST_P(StoreContract, LeaseEndIsRoundedUpNeverDown) {
  auto store = OpenStore();
  const AccountKey key{1, "a"};
  ASSERT_TRUE(Unwrap(
      Run(store->TryAcquire(key, "process-1", At(0), At(30) + std::chrono::milliseconds(500)))));
  EXPECT_FALSE(Unwrap(Run(store->TryAcquire(key, "process-2", At(30), At(60)))));
  EXPECT_TRUE(Unwrap(Run(store->TryAcquire(key, "process-2", At(31), At(60)))));
}

TEST_P(StoreContract, HolderExtendsItsOwnLease) {
  auto first = OpenStore();
  auto second = OpenStore();
  const AccountKey key{1, "a"};
  ASSERT_TRUE(Unwrap(Run(first->TryAcquire(key, "process-1", At(0), At(30)))));
  EXPECT_TRUE(Unwrap(Run(first->TryAcquire(key, "process-1", At(10), At(60)))));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(30), At(90)))));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(59), At(90)))));
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire(key, "process-2", At(60), At(90)))));
}

TEST_P(StoreContract, ReleaseByANonHolderDoesNothing) {
  auto first = OpenStore();
  auto second = OpenStore();
  const AccountKey key{1, "a"};
  ASSERT_TRUE(Unwrap(Run(first->TryAcquire(key, "process-1", At(0), At(30)))));
  Unwrap(Run(second->Release(key, "process-2")));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(1), At(31)))));

  Unwrap(Run(first->Release(key, "process-1")));
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire(key, "process-2", At(2), At(32)))));
  // Releasing what nobody holds, or twice, is fine.
  Unwrap(Run(first->Release(key, "process-1")));
  Unwrap(Run(first->Release({9, "none"}, "process-1")));
  EXPECT_FALSE(Unwrap(Run(first->TryAcquire(key, "process-1", At(3), At(33)))));
}

TEST_P(StoreContract, HolderNamesWhoHoldsALeaseEvenAfterItsEnd) {
  auto store = OpenStore();
  const AccountKey key{1, "a"};
  EXPECT_EQ(Unwrap(Run(store->Holder(key))), std::nullopt);
  ASSERT_TRUE(Unwrap(Run(store->TryAcquire(key, "process-1", At(0), At(30)))));
  EXPECT_EQ(Unwrap(Run(store->Holder(key))), std::optional<std::string>("process-1"));
  EXPECT_EQ(Unwrap(Run(store->Holder({1, "b"}))), std::nullopt) << "another key";
  Unwrap(Run(store->Release(key, "process-1")));
  EXPECT_EQ(Unwrap(Run(store->Holder(key))), std::nullopt);
}

// A lease whose holder is known dead is taken over before its end, by exactly one of those who
// saw it dead; a live holder's, or nobody's, is not.
TEST_P(StoreContract, TakeOverTakesOnlyFromTheNamedHolderAndHasOneWinner) {
  auto first = OpenStore();
  auto second = OpenStore();
  const AccountKey key{1, "a"};
  EXPECT_FALSE(Unwrap(Run(first->TakeOver(key, "dead", "process-1", At(30))))) << "nobody's";
  ASSERT_TRUE(Unwrap(Run(first->TryAcquire(key, "dead", At(0), At(60)))));
  EXPECT_FALSE(Unwrap(Run(second->TakeOver(key, "someone-else", "process-2", At(30)))));
  EXPECT_EQ(Unwrap(Run(second->Holder(key))), std::optional<std::string>("dead"));

  std::vector<boost::asio::awaitable<Result<bool>>> tasks;
  for (int i = 0; i < 8; ++i) {
    service::Store& store = i % 2 == 0 ? *first : *second;
    tasks.push_back(store.TakeOver(key, "dead", "taker-" + std::to_string(i), At(30)));
  }
  const auto results = RunConcurrently(std::move(tasks));
  std::vector<std::string> winners;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (Unwrap(results[i])) {
      winners.push_back("taker-" + std::to_string(i));
    }
  }
  ASSERT_EQ(winners.size(), 1U);
  EXPECT_EQ(Query(R"(SELECT "holder", "expiresAt" FROM refresh_leases)"),
            (Rows{{winners[0], "2025-10-09T08:53:50Z"}}));
  // Asked again by the winner (a lost answer): still its own; the lease then runs as any other.
  EXPECT_TRUE(Unwrap(Run(first->TakeOver(key, "dead", winners[0], At(30)))));
  EXPECT_FALSE(Unwrap(Run(second->TryAcquire(key, "process-2", At(29), At(59)))));
  EXPECT_TRUE(Unwrap(Run(second->TryAcquire(key, "process-2", At(30), At(60)))));
}

/// The keys of `rows`, in order.
std::vector<std::pair<std::int64_t, std::string>> Keys(const std::vector<Connection>& rows) {
  std::vector<std::pair<std::int64_t, std::string>> keys;
  for (const auto& c : rows) {
    keys.emplace_back(c.account_id, c.client_id);
  }
  return keys;
}

/// An on-demand refresh's TryAcquire, shaped as a claim (the key, if taken) so it can race claims
/// in one RunConcurrently.
boost::asio::awaitable<Result<std::vector<Connection>>> AcquireAsClaim(service::Store& store,
                                                                       AccountKey key,
                                                                       std::string holder) {
  auto taken = co_await store.TryAcquire(key, holder, At(0), At(60));
  if (!taken) {
    co_return taken.error();
  }
  std::vector<Connection> out;
  if (*taken) {
    Connection c;
    c.account_id = key.account_id;
    c.client_id = key.client_id;
    out.push_back(std::move(c));
  }
  co_return out;
}

TEST_P(StoreContract, ClaimDueRefreshesTakesDueRowsWithFreeLeasesEarliestFirstUpToTheLimit) {
  auto store = OpenStore();
  // As ListDue's rows, plus three whose leases differ.
  PutDueRows(ioc_, *store);
  PutDue(ioc_, *store, 10, "held-by-other", At(-200));
  PutDue(ioc_, *store, 11, "other-lease-ended", At(-150));
  PutDue(ioc_, *store, 12, "already-mine", At(-120));
  ASSERT_TRUE(Unwrap(Run(store->TryAcquire({10, "held-by-other"}, "other", At(-5), At(30)))));
  ASSERT_TRUE(Unwrap(Run(store->TryAcquire({11, "other-lease-ended"}, "other", At(-60), At(0)))));
  ASSERT_TRUE(Unwrap(Run(store->TryAcquire({12, "already-mine"}, "me", At(-5), At(10)))));

  EXPECT_TRUE(Unwrap(Run(store->ClaimDueRefreshes(At(0), "me", At(60), 0))).empty());
  // Earliest first, at most the limit; the row another holder holds is skipped, the ended lease
  // taken over, our own lease counts as free.
  const auto first = Unwrap(Run(store->ClaimDueRefreshes(At(0), "me", At(60), 3)));
  EXPECT_EQ(Clients(first),
            (std::vector<std::string>{"other-lease-ended", "already-mine", "due-100s-ago"}));
  ASSERT_EQ(first.size(), 3U);
  EXPECT_EQ(first[0].access_token.Reveal(), "access-other-lease-ended") << "decrypted, as ListDue";
  EXPECT_EQ(first[0].version, 1);
  EXPECT_EQ(first[0].next_refresh_at, At(-150));
  // Each claimed row's lease is ours until `until`; the other holder's lease is untouched.
  EXPECT_EQ(Query(R"(SELECT "accountId", "holder", "expiresAt" FROM refresh_leases
                     ORDER BY "accountId")"),
            (Rows{{"2", "me", "2025-10-09T08:54:20Z"},
                  {"10", "other", "2025-10-09T08:53:50Z"},
                  {"11", "me", "2025-10-09T08:54:20Z"},
                  {"12", "me", "2025-10-09T08:54:20Z"}}));
  EXPECT_FALSE(Unwrap(Run(store->TryAcquire({2, "due-100s-ago"}, "other", At(1), At(31)))))
      << "a claimed row's lease excludes other holders";

  // Another holder now gets only what nobody holds; "me" again gets its own rows back as well.
  EXPECT_EQ(Clients(Unwrap(Run(store->ClaimDueRefreshes(At(0), "third", At(60), 100)))),
            (std::vector<std::string>{"tie-a", "tie-b", "due-10s-ago", "due-now"}));
  EXPECT_EQ(Clients(Unwrap(Run(store->ClaimDueRefreshes(At(0), "me", At(60), 100)))),
            (std::vector<std::string>{"other-lease-ended", "already-mine", "due-100s-ago"}));
  EXPECT_TRUE(Unwrap(Run(store->ClaimDueRefreshes(At(0), "fourth", At(60), 100))).empty());
  // Rows come due as `now` moves; a lease is free once it has ended (at `now`, not a second
  // before), and "fourth"'s own claim from a moment ago counts as free for it.
  EXPECT_EQ(Clients(Unwrap(Run(store->ClaimDueRefreshes(At(29), "fourth", At(90), 100)))),
            (std::vector<std::string>{"due-in-1s"}));
  EXPECT_EQ(Clients(Unwrap(Run(store->ClaimDueRefreshes(At(30), "fourth", At(90), 100)))),
            (std::vector<std::string>{"held-by-other", "due-in-1s"}));
}

TEST_P(StoreContract, ConcurrentClaimsFromTwoStoresAreDisjointAndMissNoDueRow) {
  auto first = OpenStore();
  auto second = OpenStore();  // another instance: its own connections
  constexpr std::int64_t kRows = 60;
  for (std::int64_t account = 1; account <= kRows; ++account) {
    Connection c = MakeConnection(account, "shared");
    c.next_refresh_at = At(-account);
    Unwrap(Run(first->Upsert(c, {})));
  }
  // Twelve scheduler claims of ten, and on-demand refreshes of every fifth account taking its
  // lease at the same moment, alternating between the two stores.
  std::vector<boost::asio::awaitable<Result<std::vector<Connection>>>> tasks;
  std::vector<std::string> holders;
  for (int i = 0; i < 12; ++i) {
    service::Store& store = i % 2 == 0 ? *first : *second;
    holders.push_back("scheduler-" + std::to_string(i));
    tasks.push_back(store.ClaimDueRefreshes(At(0), holders.back(), At(60), 10));
    if (i < kRows / 5) {
      service::Store& other = i % 2 == 0 ? *second : *first;
      holders.push_back("on-demand-" + std::to_string(i));
      tasks.push_back(AcquireAsClaim(other, {(i + 1) * 5, "shared"}, holders.back()));
    }
  }
  const auto results = RunConcurrently(std::move(tasks));
  std::map<std::int64_t, std::string> owner;  // account -> who got it
  for (std::size_t i = 0; i < results.size(); ++i) {
    for (const auto& [account, client] : Keys(Unwrap(results[i]))) {
      const auto [it, fresh] = owner.emplace(account, holders[i]);
      EXPECT_TRUE(fresh) << "account " << account << " went to " << it->second << " and to "
                         << holders[i];
    }
  }
  EXPECT_GE(owner.size(), 10U) << "the concurrent claims took rows";
  // Every row anyone got is leased to exactly that one; a sweep afterwards gets exactly the
  // rest (a claim that lost every candidate to a racer may come back short, never with a row
  // someone else holds).
  for (const auto& [account, holder] : owner) {
    EXPECT_EQ(Query(R"(SELECT "holder" FROM refresh_leases WHERE "accountId" = )" +
                    std::to_string(account)),
              (Rows{{holder}}));
  }
  for (const auto& [account, client] :
       Keys(Unwrap(Run(first->ClaimDueRefreshes(At(0), "sweep", At(60), 100))))) {
    const auto [it, fresh] = owner.emplace(account, "sweep");
    EXPECT_TRUE(fresh) << "account " << account << " went to " << it->second << " and the sweep";
  }
  EXPECT_EQ(owner.size(), static_cast<std::size_t>(kRows)) << "no due row left unclaimed";
}

TEST_P(StoreContract, EnqueuedEventsAreClaimedOldestFirstUpToTheLimit) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"e1", "e2"}), At(0))));
  Unwrap(Run(store->Enqueue(MakeEvents({"e3"}), At(5))));
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 3U);
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(-1), At(60), 10))).empty());  // none due yet

  const auto first = Unwrap(Run(store->ClaimDue(At(10), At(70), 2)));
  ASSERT_EQ(first.size(), 2U);
  EXPECT_LT(first[0].id, first[1].id);
  EXPECT_EQ(first[0].type, "e1");
  EXPECT_EQ(first[0].body, R"({"event":"e1"})");
  EXPECT_EQ(first[0].created_at, At(0));
  EXPECT_EQ(first[0].attempts, 1);
  EXPECT_EQ(first[0].next_attempt_at, At(70));
  EXPECT_EQ(first[0].last_error, "");
  EXPECT_EQ(first[1].type, "e2");

  const auto rest = Unwrap(Run(store->ClaimDue(At(10), At(70), 2)));
  ASSERT_EQ(rest.size(), 1U);
  EXPECT_EQ(rest[0].type, "e3");
  EXPECT_EQ(rest[0].created_at, At(5));
  EXPECT_GT(rest[0].id, first[1].id);
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(10), At(70), 2))).empty());
  // Claimed is not delivered.
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 3U);
}

TEST_P(StoreContract, ClaimsAreOrderedByAgeNotByRetryTime) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"old", "young"}), At(0))));
  const auto claimed = Unwrap(Run(store->ClaimDue(At(0), At(60), 10)));
  ASSERT_EQ(claimed.size(), 2U);
  Unwrap(Run(store->MarkFailed(claimed[0].id, "timeout", At(20))));
  Unwrap(Run(store->MarkFailed(claimed[1].id, "timeout", At(10))));
  EXPECT_EQ(Ids(Unwrap(Run(store->ClaimDue(At(20), At(80), 10)))), Ids(claimed));
}

TEST_P(StoreContract, AnUnfinishedClaimBecomesDueAgainWhenItEnds) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"e"}), At(0))));
  const auto claimed = Unwrap(Run(store->ClaimDue(At(0), At(60), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  // The claimer "dies": neither MarkDelivered nor MarkFailed.
  auto other_process = OpenStore();
  EXPECT_TRUE(Unwrap(Run(other_process->ClaimDue(At(59), At(120), 10))).empty());
  const auto again = Unwrap(Run(other_process->ClaimDue(At(60), At(120), 10)));
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].id, claimed[0].id);
  EXPECT_EQ(again[0].attempts, 2);
  EXPECT_EQ(again[0].next_attempt_at, At(120));
}

TEST_P(StoreContract, ClaimEndIsRoundedUpNeverDown) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"e"}), At(0))));
  ASSERT_EQ(Unwrap(Run(store->ClaimDue(At(0), At(60) + std::chrono::milliseconds(1), 10))).size(),
            1U);
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(60), At(120), 10))).empty());
  EXPECT_EQ(Unwrap(Run(store->ClaimDue(At(61), At(120), 10))).size(), 1U);
}

TEST_P(StoreContract, ConcurrentClaimsFromTwoStoresNeverShareAnEntry) {
  auto first = OpenStore();
  auto second = OpenStore();
  constexpr int kEvents = 40;
  std::vector<Event> events;
  for (int i = 0; i < kEvents; ++i) {
    events.push_back({"e", std::to_string(i)});
  }
  Unwrap(Run(first->Enqueue(events, At(0))));

  std::vector<boost::asio::awaitable<Result<std::vector<OutboxEntry>>>> tasks;
  for (int i = 0; i < 24; ++i) {
    service::Store& store = i % 2 == 0 ? *first : *second;
    tasks.push_back(store.ClaimDue(At(0), At(60), 3));
  }
  std::multiset<std::int64_t> ids;
  for (auto& claimed : RunConcurrently(std::move(tasks))) {
    for (const auto& entry : Unwrap(std::move(claimed))) {
      EXPECT_EQ(entry.attempts, 1);
      ids.insert(entry.id);
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kEvents));  // 24 × 3 ≥ 40: all were claimed
  EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), ids.size()) << "claimed twice";
}

TEST_P(StoreContract, MarkFailedRecordsTheErrorAndReschedules) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"e"}), At(0))));
  const auto claimed = Unwrap(Run(store->ClaimDue(At(0), At(60), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  Unwrap(Run(store->MarkFailed(claimed[0].id, "HTTP 503 from the webhook URL", At(120))));
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 1U);
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(119), At(180), 10))).empty());
  const auto retried = Unwrap(Run(store->ClaimDue(At(120), At(180), 10)));
  ASSERT_EQ(retried.size(), 1U);
  EXPECT_EQ(retried[0].attempts, 2);
  EXPECT_EQ(retried[0].last_error, "HTTP 503 from the webhook URL");
}

TEST_P(StoreContract, MarkDeliveredTakesTheEntryOutOfTheQueueForGood) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"delivered", "pending"}), At(0))));
  const auto claimed = Unwrap(Run(store->ClaimDue(At(0), At(60), 1)));
  ASSERT_EQ(claimed.size(), 1U);
  Unwrap(Run(store->MarkDelivered(claimed[0].id, At(3))));
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 1U);
  // A late failure report (from a claimer whose claim had run out) does not bring it back.
  Unwrap(Run(store->MarkFailed(claimed[0].id, "late", At(4))));
  Unwrap(Run(store->MarkDelivered(claimed[0].id, At(5))));  // nor does a second delivery move it
  EXPECT_EQ(Unwrap(Run(store->CountPending())), 1U);
  const auto rest = Unwrap(Run(store->ClaimDue(At(1000), At(1060), 10)));
  ASSERT_EQ(rest.size(), 1U);
  EXPECT_EQ(rest[0].type, "pending");

  EXPECT_EQ(Query(R"(SELECT "type", "deliveredAt", "lastError" FROM webhook_outbox
                         WHERE "deliveredAt" IS NOT NULL)"),
            (Rows{{"delivered", "2025-10-09T08:53:23Z", ""}}));
}

TEST_P(StoreContract, DeliveredEntriesArePrunedAfterSevenDays) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeEvents({"e"}), At(0))));
  const auto claimed = Unwrap(Run(store->ClaimDue(At(0), At(60), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  Unwrap(Run(store->MarkDelivered(claimed[0].id, At(0))));
  constexpr std::int64_t kSevenDays = 7 * 86'400;
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(kSevenDays), At(kSevenDays + 60), 10))).empty());
  EXPECT_EQ(Query("SELECT count(*) FROM webhook_outbox"), (Rows{{"1"}}));
  EXPECT_TRUE(Unwrap(Run(store->ClaimDue(At(kSevenDays + 1), At(kSevenDays + 60), 10))).empty());
  EXPECT_EQ(Query("SELECT count(*) FROM webhook_outbox"), (Rows{{"0"}}));
  // Ids are never reused after pruning (AUTOINCREMENT): "increasing in enqueue order" holds.
  Unwrap(Run(store->Enqueue(MakeEvents({"next"}), At(kSevenDays + 2))));
  const auto next = Unwrap(Run(store->ClaimDue(At(kSevenDays + 2), At(kSevenDays + 60), 10)));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_GT(next[0].id, claimed[0].id);
}

TEST_P(StoreContract, StateIsTakenOnce) {
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

TEST_P(StoreContract, StateKeepsItsReference) {
  auto store = OpenStore();
  PendingState named = MakeState("hash-named", kNow);
  named.reference = "user-8812 «кириллица» 'quoted'";
  Unwrap(Run(store->Put(named, FromUnixSeconds(kNow))));
  Unwrap(Run(store->Put(MakeState("hash-plain", kNow), FromUnixSeconds(kNow))));

  const auto peeked = Unwrap(Run(store->Peek("hash-named", FromUnixSeconds(kNow + 1))));
  ASSERT_TRUE(peeked.has_value());
  EXPECT_EQ(peeked->reference, named.reference);
  const auto taken = Unwrap(Run(store->Take("hash-named", FromUnixSeconds(kNow + 2))));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->reference, named.reference);
  const auto plain = Unwrap(Run(store->Take("hash-plain", FromUnixSeconds(kNow + 2))));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->reference, "");
}

TEST_P(StoreContract, UnknownStateIsNullopt) {
  auto store = OpenStore();
  EXPECT_FALSE(Unwrap(Run(store->Take("never-issued", FromUnixSeconds(kNow)))).has_value());
}

TEST_P(StoreContract, ExpiredStateIsNotReturnedAndIsRemoved) {
  auto store = OpenStore();
  Unwrap(Run(store->Put(MakeState("hash-exp", kNow, 600), clock_.Now())));
  clock_.Advance(std::chrono::seconds(600));  // expires_at == now: expired
  EXPECT_FALSE(Unwrap(Run(store->Take("hash-exp", clock_.Now()))).has_value());
  // Removed, not just hidden: even an earlier `now` does not bring it back.
  EXPECT_FALSE(Unwrap(Run(store->Take("hash-exp", FromUnixSeconds(kNow)))).has_value());
}

TEST_P(StoreContract, PutRefusesWithBusyAtTheLimitUntilStatesExpire) {
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

TEST_P(StoreContract, StateTakenThroughOneStoreIsGoneForAnotherOnTheSameDatabase) {
  auto first = OpenStore();
  auto second = OpenStore();  // another process's view: its own connections
  Unwrap(Run(first->Put(MakeState("shared-state", kNow), FromUnixSeconds(kNow))));
  ASSERT_TRUE(Unwrap(Run(second->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
  EXPECT_FALSE(Unwrap(Run(first->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
  EXPECT_FALSE(Unwrap(Run(second->Take("shared-state", FromUnixSeconds(kNow + 1)))).has_value());
}

TEST_P(StoreContract, PeekLeavesTheStatePendingAndKeepsItsPurpose) {
  auto store = OpenStore();
  PendingState state = MakeState("meta-state", kNow);
  state.purpose = service::StatePurpose::kCreateIntegration;
  Unwrap(Run(store->Put(state, FromUnixSeconds(kNow))));

  const auto peeked = Unwrap(Run(store->Peek("meta-state", FromUnixSeconds(kNow + 1))));
  ASSERT_TRUE(peeked.has_value());
  EXPECT_EQ(peeked->purpose, service::StatePurpose::kCreateIntegration);
  EXPECT_EQ(peeked->mode, state.mode);
  // Still there for the redirect, which takes it once.
  const auto taken = Unwrap(Run(store->Take("meta-state", FromUnixSeconds(kNow + 2))));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->purpose, service::StatePurpose::kCreateIntegration);
  EXPECT_FALSE(Unwrap(Run(store->Peek("meta-state", FromUnixSeconds(kNow + 3)))).has_value());
  // An expired state is not peeked either.
  Unwrap(Run(store->Put(MakeState("short", kNow, 10), FromUnixSeconds(kNow))));
  EXPECT_FALSE(Unwrap(Run(store->Peek("short", FromUnixSeconds(kNow + 10)))).has_value());
}

TEST_P(StoreContract, ExternalIntegrationIsStoredSealedAndFoundByIdAndByState) {
  const std::string secret = "SECRET-of-the-external-integration-unique-marker";
  auto store = OpenStore();
  Unwrap(Run(store->AddIntegration({.client_id = "ext-client-1",
                                    .client_secret = Secret(secret),
                                    .state_hash = "state-hash-1",
                                    .created_at = FromUnixSeconds(kNow)})));

  auto other_process = OpenStore();
  const auto by_id = Unwrap(Run(other_process->FindIntegration("ext-client-1")));
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->client_secret.Reveal(), secret);
  EXPECT_EQ(by_id->state_hash, "state-hash-1");
  EXPECT_EQ(by_id->created_at, FromUnixSeconds(kNow));
  const auto by_state = Unwrap(Run(other_process->FindIntegrationByState("state-hash-1")));
  ASSERT_TRUE(by_state.has_value());
  EXPECT_EQ(by_state->client_id, "ext-client-1");
  EXPECT_FALSE(Unwrap(Run(store->FindIntegration("nobody"))).has_value());
  EXPECT_FALSE(Unwrap(Run(store->FindIntegrationByState("no-state"))).has_value());

  const std::string bytes = engine_->FileBytes();
  ASSERT_NE(bytes.find("ext-client-1"), std::string::npos) << "sanity: the row is in the files";
  EXPECT_EQ(bytes.find("unique-marker"), std::string::npos) << "the secret is sealed";
}

TEST_P(StoreContract, ASecondIntegrationForOneStateOrOneClientIsRefused) {
  auto store = OpenStore();
  Unwrap(Run(store->AddIntegration({.client_id = "ext-a",
                                    .client_secret = Secret("s1"),
                                    .state_hash = "state-a",
                                    .created_at = FromUnixSeconds(kNow)})));
  auto replay = Run(store->AddIntegration({.client_id = "ext-b",
                                           .client_secret = Secret("s2"),
                                           .state_hash = "state-a",
                                           .created_at = FromUnixSeconds(kNow)}));
  ASSERT_FALSE(replay);
  EXPECT_TRUE(Is(replay.error(), Errc::kSecretsAlreadyReceived));
  auto same_client = Run(store->AddIntegration({.client_id = "ext-a",
                                                .client_secret = Secret("s3"),
                                                .state_hash = "state-c",
                                                .created_at = FromUnixSeconds(kNow)}));
  ASSERT_FALSE(same_client);
  EXPECT_TRUE(Is(same_client.error(), Errc::kSecretsAlreadyReceived));
  // The first keys are untouched.
  EXPECT_EQ(Unwrap(Run(store->FindIntegration("ext-a")))->client_secret.Reveal(), "s1");
  EXPECT_FALSE(Unwrap(Run(store->FindIntegration("ext-b"))).has_value());
}

TEST_P(StoreContract, IntegrationsAreListedInClientIdOrderWithTheirSecretsOpened) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->ListIntegrations())).empty());
  for (const char* id : {"ext-c", "ext-a", "ext-b"}) {
    Unwrap(Run(store->AddIntegration({.client_id = id,
                                      .client_secret = Secret(std::string("s-") + id),
                                      .state_hash = std::string("state-") + id,
                                      .created_at = FromUnixSeconds(kNow)})));
  }
  const auto all = Unwrap(Run(OpenStore()->ListIntegrations()));
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0].client_id, "ext-a");
  EXPECT_EQ(all[1].client_id, "ext-b");
  EXPECT_EQ(all[2].client_id, "ext-c");
  EXPECT_EQ(all[1].client_secret.Reveal(), "s-ext-b");
  EXPECT_EQ(all[2].state_hash, "state-ext-c");
}

TEST_P(StoreContract, IntegrationsNoConnectionUsesAreForgottenPastTheCutoff) {
  auto store = OpenStore();
  for (const auto& [id, created] : std::vector<std::pair<std::string, std::int64_t>>{
           {"ext-old-unused", kNow - 7200},
           {"ext-old-used", kNow - 7200},
           {"ext-new-unused", kNow - 60},
       }) {
    Unwrap(Run(store->AddIntegration({.client_id = id,
                                      .client_secret = Secret("s-" + id),
                                      .state_hash = "state-" + id,
                                      .created_at = FromUnixSeconds(created)})));
  }
  Unwrap(Run(store->Upsert(MakeConnection(1, "ext-old-used"), {})));
  EXPECT_EQ(Unwrap(Run(store->ForgetUnusedIntegrations(FromUnixSeconds(kNow - 3600)))), 1U);
  EXPECT_FALSE(Unwrap(Run(store->FindIntegration("ext-old-unused"))).has_value());
  EXPECT_TRUE(Unwrap(Run(store->FindIntegration("ext-old-used"))).has_value());
  EXPECT_TRUE(Unwrap(Run(store->FindIntegration("ext-new-unused"))).has_value());
  EXPECT_EQ(Unwrap(Run(store->ForgetUnusedIntegrations(FromUnixSeconds(kNow - 3600)))), 0U);
}

TEST_P(StoreContract, CodeIsNewOnceThenKnown) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", FromUnixSeconds(kNow)))));
  EXPECT_FALSE(Unwrap(Run(store->MarkUsed("code-hash", FromUnixSeconds(kNow + 1)))));
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("other-code", FromUnixSeconds(kNow + 1)))));

  auto other_process = OpenStore();
  EXPECT_FALSE(Unwrap(Run(other_process->MarkUsed("code-hash", FromUnixSeconds(kNow + 2)))));
}

TEST_P(StoreContract, CodeIsForgottenAfterTwentyMinutes) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));
  clock_.Advance(std::chrono::minutes(20));
  EXPECT_FALSE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));  // exactly 20 min: kept
  clock_.Advance(std::chrono::seconds(1));
  // A repeat does not refresh the entry: first seen 20 min + 1 s ago, so forgotten, new again.
  EXPECT_TRUE(Unwrap(Run(store->MarkUsed("code-hash", clock_.Now()))));
}

TEST_P(StoreContract, QueuedCodesAreSealedAtRestAndDeduplicated) {
  auto store = OpenStore();
  EXPECT_TRUE(Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-secret-code")))));
  EXPECT_FALSE(Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-secret-code")))));
  EXPECT_EQ(Unwrap(Run(store->CountQueued())), 1U);

  const auto rows = Query(R"(SELECT "code", "codeHash", "accountHost" FROM code_queue)");
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0][0].find("def50200-secret-code"), std::string::npos);
  EXPECT_EQ(rows[0][1].find("def50200-secret-code"), std::string::npos);
  EXPECT_EQ(rows[0][2], "example.amocrm.ru");
  const std::string bytes = engine_->FileBytes();
  ASSERT_NE(bytes.find("example.amocrm.ru"), std::string::npos) << "sanity: the row is there";
  EXPECT_EQ(bytes.find("def50200-secret-code"), std::string::npos) << "the code is sealed";

  const auto claimed = Unwrap(Run(store->ClaimDueCodes(At(0), At(30), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_EQ(claimed[0].code.Reveal(), "def50200-secret-code");
  EXPECT_EQ(claimed[0].client_id, "client-a");
  EXPECT_EQ(claimed[0].source, service::CodeSource::kWidget);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_EQ(claimed[0].expires_at, At(1200));
}

TEST_P(StoreContract, ACodeUnderAnotherKeyComesBackEmptyInsteadOfBlockingTheQueue) {
  {
    auto store = OpenStore();
    Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-old-key"))));
  }
  auto store = OpenStore(MasterKey::Generate());
  const auto claimed = Unwrap(Run(store->ClaimDueCodes(At(0), At(30), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_TRUE(claimed[0].code.Empty());
}

TEST_P(StoreContract, AClaimedCodeIsNobodyElsesUntilTheClaimEnds) {
  auto store = OpenStore();
  auto other = OpenStore();  // another process on the same file
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-a", 0))));
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-b", 1))));
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-later", 100))));

  const auto first = Unwrap(Run(store->ClaimDueCodes(At(10), At(40), 10)));
  ASSERT_EQ(first.size(), 2U);  // "later" is not due yet
  EXPECT_EQ(first[0].code.Reveal(), "def50200-a");
  EXPECT_EQ(first[1].code.Reveal(), "def50200-b");
  EXPECT_TRUE(Unwrap(Run(other->ClaimDueCodes(At(20), At(50), 10))).empty());

  // The claimer dies; after its claim ends, the other process takes both, as a second attempt.
  const auto again = Unwrap(Run(other->ClaimDueCodes(At(40), At(70), 10)));
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(again[0].attempts, 2);
}

TEST_P(StoreContract, RetryFinishAndGiveUpEndOrPostponeACode) {
  auto store = OpenStore();
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-retry"))));
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-done"))));
  Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-dead"))));
  const auto claimed = Unwrap(Run(store->ClaimDueCodes(At(0), At(30), 10)));
  ASSERT_EQ(claimed.size(), 3U);

  Unwrap(Run(store->Retry(claimed[0].id, "amoCRM answered 503", At(100))));
  Unwrap(Run(store->Finish(claimed[1].id)));
  Unwrap(Run(store->GiveUp(claimed[2].id, MakeEvents({"code.exchange_failed"}), At(5))));
  // A second report of the same end writes no second event.
  Unwrap(Run(store->GiveUp(claimed[2].id, MakeEvents({"code.exchange_failed"}), At(6))));

  EXPECT_EQ(Unwrap(Run(store->CountQueued())), 1U);
  EXPECT_TRUE(Unwrap(Run(store->ClaimDueCodes(At(99), At(130), 10))).empty());
  const auto retried = Unwrap(Run(store->ClaimDueCodes(At(100), At(130), 10)));
  ASSERT_EQ(retried.size(), 1U);
  EXPECT_EQ(retried[0].last_error, "amoCRM answered 503");
  EXPECT_EQ(retried[0].attempts, 2);
  const auto events = Unwrap(Run(store->ClaimDue(At(10), At(20), 10)));
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].type, "code.exchange_failed");
}

TEST_P(StoreContract, TheCodeQueueIsBounded) {
  auto store = OpenStore();
  Exec(R"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
           INSERT INTO code_queue ("codeHash", "keyId", "code", "accountHost", "clientId",
                                   "source", "receivedAt", "expiresAt", "nextAttemptAt")
           SELECT 'hash-' || i, 'k', )" +
       engine_->BytesLiteral("00") + R"(, 'example.amocrm.ru', 'client-a', 'widget',
                  '2025-10-09T08:53:20Z', '2025-10-09T09:13:20Z', '2025-10-09T08:53:20Z'
           FROM n)");
  auto refused = Run(store->Enqueue(MakeQueuedCode("def50200-one-too-many")));
  ASSERT_FALSE(refused.has_value());
  ExpectError(refused.error(), Errc::kBusy);
  EXPECT_EQ(Unwrap(Run(store->CountQueued())), 10'000U);
}

TEST_P(StoreContract, ExchangeQuotaAllowsOneTakePerIntervalAcrossProcesses) {
  auto store = OpenStore();
  auto other = OpenStore();
  const std::chrono::seconds five_minutes(300);
  EXPECT_FALSE(Unwrap(Run(store->TryTake("subject-1", At(0), five_minutes))).has_value());
  const auto refused = Unwrap(Run(other->TryTake("subject-1", At(120), five_minutes)));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, At(300));
  EXPECT_FALSE(Unwrap(Run(other->TryTake("subject-2", At(120), five_minutes))).has_value());
  EXPECT_TRUE(Unwrap(Run(store->TryTake("subject-1", At(299), five_minutes))).has_value());
  EXPECT_FALSE(Unwrap(Run(store->TryTake("subject-1", At(300), five_minutes))).has_value());

  EXPECT_EQ(Query(R"(SELECT count(*) FROM exchange_quota)")[0][0], "2");
}

TEST_P(StoreContract, ExchangeQuotaGivesBackOnlyTheTakeItWasGiven) {
  auto store = OpenStore();
  auto other = OpenStore();
  const std::chrono::seconds five_minutes(300);
  const auto taken_at = At(0) + std::chrono::milliseconds(400);  // stored in whole seconds
  ASSERT_FALSE(Unwrap(Run(store->TryTake("subject-1", taken_at, five_minutes))).has_value());
  Unwrap(Run(store->GiveBack("subject-1", taken_at)));
  EXPECT_FALSE(Unwrap(Run(other->TryTake("subject-1", At(1), five_minutes))).has_value());

  // Given back again (a late duplicate): the slot is the other process's take now, and stays.
  Unwrap(Run(store->GiveBack("subject-1", taken_at)));
  Unwrap(Run(store->GiveBack("subject-unknown", taken_at)));
  const auto refused = Unwrap(Run(store->TryTake("subject-1", At(2), five_minutes)));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, At(301));
  EXPECT_EQ(Query(R"(SELECT count(*) FROM exchange_quota)")[0][0], "1");
}

TEST_P(StoreContract, FindByDomainReturnsEveryIntegrationsRowOfThatHost) {
  auto store = OpenStore();
  Unwrap(Run(store->Upsert(MakeConnection(1, "b"), {})));
  Unwrap(Run(store->Upsert(MakeConnection(1, "a"), {})));
  auto elsewhere = MakeConnection(2, "a");
  elsewhere.base_domain = "other.amocrm.ru";
  Unwrap(Run(store->Upsert(elsewhere, {})));
  const auto found = Unwrap(Run(store->FindByDomain("example.amocrm.ru")));
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found[0].client_id, "a");
  EXPECT_EQ(found[1].client_id, "b");
  EXPECT_EQ(found[0].access_token.Reveal(), "access-token-plaintext-0123456789");
  EXPECT_TRUE(Unwrap(Run(store->FindByDomain("nobody.amocrm.ru"))).empty());
}

// ---- key rotation (docs/adr/0005-key-rotation.md) -----------------------------------------------

TEST_P(StoreContract, KeyRotationResealsEveryRowUnderTheNewKeyAndKeepsVersions) {
  const MasterKey old_key = key_;
  const MasterKey new_key = MasterKey::Generate();
  {
    auto store = OpenStore(old_key);
    for (int account = 1; account <= 5; ++account) {
      Unwrap(Run(store->Upsert(MakeConnection(account,
                                              "a",
                                              "access-" + std::to_string(account),
                                              "refresh-" + std::to_string(account)),
                               {})));
    }
    Connection no_refresh = MakeConnection(6, "long-lived", "long-lived-access", "");
    Unwrap(Run(store->Upsert(no_refresh, {})));
    Unwrap(Run(store->Replace(MakeConnection(1, "a", "access-1b", "refresh-1b"), 1, {})));
    Unwrap(Run(store->AddIntegration({.client_id = "ext-client",
                                      .client_secret = Secret("ext-secret"),
                                      .state_hash = "ext-state",
                                      .created_at = FromUnixSeconds(kNow)})));
    EXPECT_TRUE(Unwrap(Run(store->Enqueue(MakeQueuedCode("def50200-queued")))));
  }
  const Rows versions_before =
      Query(R"(SELECT "accountId", "version", "updatedAt" FROM amo_tokens ORDER BY "accountId")");

  clock_.Advance(std::chrono::seconds(100));
  auto rotating = OpenRotatingStore(new_key, old_key);
  // Before the rotation, the rotating store reads rows of the old key…
  EXPECT_EQ(Unwrap(Run(rotating->Find({1, "a"})))->access_token.Reveal(), "access-1b");
  auto* rotation = dynamic_cast<service::KeyRotation*>(rotating.get());
  ASSERT_NE(rotation, nullptr);
  using KeyCounts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(Unwrap(Run(rotation->CountByKeyId())), (KeyCounts{{old_key.Id(), 8}}));

  int batches = 0;
  const auto total = RotateAll(*rotation, 2, batches);
  EXPECT_EQ(total.rotated, 8U);
  EXPECT_EQ(total.changed, 0U);
  EXPECT_EQ(total.unreadable, 0U);
  EXPECT_EQ(batches, 4) << "three batches of up to two rows a table, then an empty one";
  EXPECT_EQ(Unwrap(Run(rotation->CountByKeyId())), (KeyCounts{{new_key.Id(), 8}}));
  // Neither version nor updatedAt moved: a refresh that read a row before keeps its CAS.
  EXPECT_EQ(Query(R"(SELECT "accountId", "version", "updatedAt" FROM amo_tokens
                     ORDER BY "accountId")"),
            versions_before);

  // The new key alone reads everything; the old one alone nothing.
  auto fresh = OpenStore(new_key);
  EXPECT_EQ(Unwrap(Run(fresh->Find({1, "a"})))->refresh_token.Reveal(), "refresh-1b");
  EXPECT_EQ(Unwrap(Run(fresh->Find({5, "a"})))->access_token.Reveal(), "access-5");
  EXPECT_TRUE(Unwrap(Run(fresh->Find({6, "long-lived"})))->refresh_token.Empty());
  EXPECT_EQ(Unwrap(Run(fresh->FindIntegration("ext-client")))->client_secret.Reveal(),
            "ext-secret");
  const auto claimed = Unwrap(Run(fresh->ClaimDueCodes(At(0), At(30), 10)));
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_EQ(claimed[0].code.Reveal(), "def50200-queued");
  auto stale = Run(OpenStore(old_key)->List());
  ASSERT_FALSE(stale.has_value());
  ExpectError(stale.error(), Errc::kCryptoFailure);
}

TEST_P(StoreContract, ARefreshThatReadTheRowBeforeTheRotationStillCommits) {
  const MasterKey old_key = key_;
  const MasterKey new_key = MasterKey::Generate();
  Unwrap(Run(OpenStore(old_key)->Upsert(MakeConnection(1, "a", "access-1", "refresh-1"), {})));
  // An instance already on the new key reads the row (version 1) and refreshes at amoCRM…
  auto instance = OpenRotatingStore(new_key, old_key);
  const Connection read = *Unwrap(Run(instance->Find({1, "a"})));
  // …while rotate-key re-seals the row…
  auto command = OpenRotatingStore(new_key, old_key);
  int batches = 0;
  EXPECT_EQ(RotateAll(*dynamic_cast<service::KeyRotation*>(command.get()), 10, batches).rotated,
            1U);
  // …and its compare-and-swap on version 1 still wins: the new refresh token is not lost.
  Connection refreshed = read;
  refreshed.access_token = Secret("access-2");
  refreshed.refresh_token = Secret("refresh-2");
  const Connection stored = Unwrap(Run(instance->Replace(refreshed, read.version, {})));
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(Unwrap(Run(OpenStore(new_key)->Find({1, "a"})))->refresh_token.Reveal(), "refresh-2");
}

TEST_P(StoreContract, ARowAnInstanceOnTheOldKeyRewritesIsPickedUpByTheNextPass) {
  const MasterKey old_key = key_;
  const MasterKey new_key = MasterKey::Generate();
  auto laggard = OpenStore(old_key);  // an instance not yet restarted with the new key
  Unwrap(Run(laggard->Upsert(MakeConnection(1, "a", "access-1", "refresh-1"), {})));
  auto command = OpenRotatingStore(new_key, old_key);
  auto* rotation = dynamic_cast<service::KeyRotation*>(command.get());
  int batches = 0;
  EXPECT_EQ(RotateAll(*rotation, 10, batches).rotated, 1U);
  // The laggard cannot read the row any more, and its blind write puts it back under its key.
  Unwrap(Run(laggard->Upsert(MakeConnection(1, "a", "access-2", "refresh-2"), {})));
  using KeyCounts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(Unwrap(Run(rotation->CountByKeyId())), (KeyCounts{{old_key.Id(), 1}}));
  EXPECT_EQ(RotateAll(*rotation, 10, batches).rotated, 1U);
  EXPECT_EQ(Unwrap(Run(OpenStore(new_key)->Find({1, "a"})))->refresh_token.Reveal(), "refresh-2");
}

TEST_P(StoreContract, KeyRotationLeavesATamperedRowAndNeedsThePreviousKey) {
  const MasterKey old_key = key_;
  const MasterKey new_key = MasterKey::Generate();
  {
    auto store = OpenStore(old_key);
    Unwrap(Run(store->Upsert(MakeConnection(1, "a", "access-1", "refresh-1"), {})));
    Unwrap(Run(store->Upsert(MakeConnection(2, "a", "access-2", "refresh-2"), {})));
  }
  Exec(R"(UPDATE amo_tokens SET "accessToken" = "refreshToken" WHERE "accountId" = 2)");

  // A store without a previous key has nothing to rotate from.
  auto plain = OpenStore(new_key);
  auto refused = Run(dynamic_cast<service::KeyRotation*>(plain.get())->RotateKeyBatch(10));
  ASSERT_FALSE(refused.has_value());
  ExpectError(refused.error(), Errc::kCryptoFailure);

  auto command = OpenRotatingStore(new_key, old_key);
  auto* rotation = dynamic_cast<service::KeyRotation*>(command.get());
  int batches = 0;
  const auto total = RotateAll(*rotation, 10, batches);
  EXPECT_EQ(total.rotated, 1U);
  EXPECT_EQ(total.unreadable, 1U);
  using KeyCounts = std::vector<std::pair<std::string, std::int64_t>>;
  auto counts = Unwrap(Run(rotation->CountByKeyId()));
  std::sort(counts.begin(), counts.end());
  KeyCounts expected{{old_key.Id(), 1}, {new_key.Id(), 1}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(counts, expected);
}

}  // namespace
}  // namespace amoauth::testing::store
