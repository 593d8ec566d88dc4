#include "amoauth/service/cached_connection_store.hpp"

#include <atomic>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "fake_connection_changes.hpp"
#include "service_world.hpp"

namespace amoauth::service {
namespace {

using testing::AccountWorld;
using testing::ConnectionSpec;
using testing::FakeConnectionChanges;
using testing::kClient;
using testing::kExternal;
using testing::RunCo;
using testing::ServiceWorld;

constexpr std::int64_t kAccount = 30000001;

/// The in-memory amo_tokens behind the cache, counting the reads that reach it; a test can hold
/// FindByAccount after it has read the rows (a database read in flight) until it opens the gate.
class CountingConnections final : public ConnectionStore {
 public:
  explicit CountingConnections(ConnectionStore& rows) : rows_(rows) {}

  Task<Result<core::Connection>> Upsert(core::Connection c, std::vector<Event> events) override {
    co_return co_await rows_.Upsert(std::move(c), std::move(events));
  }
  Task<Result<core::Connection>> Replace(core::Connection c,
                                         std::int64_t expected,
                                         std::vector<Event> events) override {
    co_return co_await rows_.Replace(std::move(c), expected, std::move(events));
  }
  Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                      std::size_t limit) override {
    co_return co_await rows_.ListDue(now, limit);
  }
  Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) override {
    ++reads;
    co_return co_await rows_.Find(std::move(key));
  }
  Task<Result<std::vector<core::Connection>>> FindByAccount(std::int64_t account_id) override {
    ++reads;
    auto rows = co_await rows_.FindByAccount(account_id);
    if (gate) {
      parked = true;
      auto [ec] = co_await gate->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;
    }
    co_return rows;
  }
  Task<Result<std::vector<core::Connection>>> List() override { co_return co_await rows_.List(); }
  Task<Result<std::vector<core::Connection>>> FindByDomain(std::string domain) override {
    co_return co_await rows_.FindByDomain(std::move(domain));
  }

  std::atomic<int> reads{0};
  std::atomic<bool> parked{false};
  std::optional<boost::asio::steady_timer> gate;

 private:
  ConnectionStore& rows_;
};

class CachedConnectionStoreTest : public ::testing::Test, protected ServiceWorld {
 protected:
  CachedConnectionStoreTest() : ServiceWorld(AccountWorld()) { SeedConnection(); }

  std::vector<core::Connection> Rows(std::int64_t account_id = kAccount) {
    return RunCo(ioc, cache.FindByAccount(account_id)).value();
  }
  std::string AccessToken() {
    auto rows = Rows();
    return rows.size() == 1 ? rows.front().access_token.Reveal() : "";
  }
  /// Writes the row behind the cache's back, as another instance does.
  void ChangeTokenElsewhere(const std::string& access) {
    auto row = RunCo(ioc, stores.Find({kAccount, kClient})).value().value();
    const std::int64_t version = row.version;
    row.access_token = Secret(access);
    RunCo(ioc, stores.Replace(std::move(row), version, {})).value();
  }
  /// Starts a FindByAccount through the cache and runs it up to the gate.
  void StartParkedRead(std::optional<Result<std::vector<core::Connection>>>& slot) {
    inner.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
    boost::asio::co_spawn(ioc,
                          cache.FindByAccount(kAccount),
                          [&slot](std::exception_ptr e, Result<std::vector<core::Connection>> r) {
                            ASSERT_FALSE(e);
                            slot = std::move(r);
                          });
    ioc.restart();
    ioc.poll();
    ASSERT_TRUE(inner.parked.load());
  }
  void FinishParkedRead(std::optional<Result<std::vector<core::Connection>>>& slot) {
    inner.gate->cancel();
    ioc.restart();
    ioc.poll();
    inner.gate.reset();
    ASSERT_TRUE(slot.has_value());
  }

  FakeConnectionChanges feed;
  CountingConnections inner{stores};
  CachedConnectionStore cache{inner, feed, TokenCacheOptions{.max_entries = 3}};
};

TEST_F(CachedConnectionStoreTest, RepeatedReadsOfAnAccountAreServedFromMemory) {
  EXPECT_TRUE(feed.Subscribed());
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(inner.reads.load(), 1);

  // Find is answered from the account's entry, which holds every row of the account: a client id
  // missing from it has no row.
  auto found = RunCo(ioc, cache.Find({kAccount, kClient})).value();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_token.Reveal(), "old-access");
  EXPECT_FALSE(RunCo(ioc, cache.Find({kAccount, kExternal})).value());
  EXPECT_EQ(inner.reads.load(), 1);

  // An unknown account is read every time (an empty answer is not cached).
  EXPECT_TRUE(Rows(42).empty());
  const auto stats = cache.GetStats();
  EXPECT_EQ(stats.hits, 3U);
  EXPECT_EQ(stats.entries, 1U);
  EXPECT_TRUE(stats.listening);
}

TEST_F(CachedConnectionStoreTest, ANotifiedChangeDropsTheAccountsEntry) {
  EXPECT_EQ(AccessToken(), "old-access");
  ChangeTokenElsewhere("new-access");
  // Until the notification arrives the previous row is still served: that is the window the
  // feed's latency leaves (docs/architecture.md).
  EXPECT_EQ(AccessToken(), "old-access");
  feed.Changed({kAccount, kClient});
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 2);
}

TEST_F(CachedConnectionStoreTest, AReadInFlightWhenAChangeIsNotifiedDoesNotInstallItsRow) {
  std::optional<Result<std::vector<core::Connection>>> slot;
  StartParkedRead(slot);  // it has read "old-access" from the database
  ChangeTokenElsewhere("new-access");
  feed.Changed({kAccount, kClient});
  FinishParkedRead(slot);
  ASSERT_TRUE(*slot);
  EXPECT_EQ((*slot)->front().access_token.Reveal(), "old-access");  // what it read, for its caller

  EXPECT_EQ(cache.GetStats().entries, 0U);
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 2);
}

TEST_F(CachedConnectionStoreTest, AChangeToAnotherAccountDoesNotStopAnInstall) {
  std::optional<Result<std::vector<core::Connection>>> slot;
  StartParkedRead(slot);
  feed.Changed({kAccount + 1, kClient});
  FinishParkedRead(slot);
  EXPECT_EQ(cache.GetStats().entries, 1U);
}

TEST_F(CachedConnectionStoreTest, LosingTheFeedForgetsEverythingAndCachesNothingUntilItIsBack) {
  EXPECT_EQ(AccessToken(), "old-access");
  feed.SetListening(false);
  EXPECT_EQ(cache.GetStats().entries, 0U);
  ChangeTokenElsewhere("new-access");  // a change whose notification was lost
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 3);
  EXPECT_EQ(cache.GetStats().entries, 0U);

  feed.SetListening(true);
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 4);
}

TEST_F(CachedConnectionStoreTest, AReadInFlightAcrossAGapInTheFeedDoesNotInstallItsRow) {
  std::optional<Result<std::vector<core::Connection>>> slot;
  StartParkedRead(slot);
  feed.SetListening(false);
  ChangeTokenElsewhere("new-access");  // missed: nobody was listening
  feed.SetListening(true);
  FinishParkedRead(slot);
  EXPECT_EQ(cache.GetStats().entries, 0U);
  EXPECT_EQ(AccessToken(), "new-access");
}

TEST_F(CachedConnectionStoreTest, NothingIsCachedBeforeTheFeedSaysItListens) {
  FakeConnectionChanges silent(/*listening=*/false);
  CachedConnectionStore uncached(inner, silent);
  RunCo(ioc, uncached.FindByAccount(kAccount)).value();
  RunCo(ioc, uncached.FindByAccount(kAccount)).value();
  EXPECT_EQ(inner.reads.load(), 2);
  EXPECT_FALSE(uncached.GetStats().listening);
}

TEST_F(CachedConnectionStoreTest, ItHoldsAtMostMaxEntriesAccountsDroppingTheOldest) {
  for (std::int64_t id = kAccount + 1; id <= kAccount + 4; ++id) {
    SeedConnection(ConnectionSpec{.account_id = id});
  }
  for (std::int64_t id = kAccount; id <= kAccount + 4; ++id) {
    EXPECT_EQ(Rows(id).size(), 1U);
  }
  EXPECT_EQ(cache.GetStats().entries, 3U);
  EXPECT_EQ(inner.reads.load(), 5);
  Rows(kAccount + 4);  // among the newest three
  EXPECT_EQ(inner.reads.load(), 5);
  Rows(kAccount);  // the oldest, dropped
  EXPECT_EQ(inner.reads.load(), 6);
  EXPECT_EQ(cache.GetStats().entries, 3U);
}

TEST_F(CachedConnectionStoreTest, WritesThroughTheCacheAreReadBackAtOnce) {
  auto row = Rows().front();
  row.access_token = Secret("replaced");
  const std::int64_t version = row.version;
  ASSERT_TRUE(RunCo(ioc, cache.Replace(row, version, {})));
  EXPECT_EQ(AccessToken(), "replaced");  // no notification needed

  row.access_token = Secret("upserted");
  ASSERT_TRUE(RunCo(ioc, cache.Upsert(row, {})));
  EXPECT_EQ(AccessToken(), "upserted");

  // A lost compare-and-swap means the cached row was stale: it is read again.
  ChangeTokenElsewhere("elsewhere");
  auto stale = Rows().front();
  EXPECT_EQ(stale.access_token.Reveal(), "upserted");
  EXPECT_TRUE(Is(RunCo(ioc, cache.Replace(stale, stale.version, {})).error(), Errc::kConflict));
  EXPECT_EQ(AccessToken(), "elsewhere");
}

TEST_F(CachedConnectionStoreTest, ARowInsideTheRefreshMarginIsReturnedAsItIs) {
  Rows();
  clock.Advance(std::chrono::hours(24) - std::chrono::minutes(1));
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows.front().access_token.Reveal(), "old-access");
  EXPECT_EQ(inner.reads.load(), 1);  // deciding to refresh is AccountService's business
}

TEST_F(CachedConnectionStoreTest, TheFeedMayOutliveTheCache) {
  FakeConnectionChanges outliving;
  {
    CachedConnectionStore short_lived(inner, outliving);
    RunCo(ioc, short_lived.FindByAccount(kAccount)).value();
  }
  outliving.Changed({kAccount, kClient});
  outliving.SetListening(false);
  outliving.SetListening(true);
}

/// The commit count of SQLite's PRAGMA data_version, as the test sets it.
class FakeCommitCounter final : public CommitCounter {
 public:
  std::optional<std::uint64_t> CommitCount() noexcept override {
    ++looks;
    return count;
  }
  std::optional<std::uint64_t> count = 7;
  int looks = 0;
};

/// The cache in counter mode (SQLite): no feed; every lookup reads the commit count.
class CountedCacheTest : public ::testing::Test, protected ServiceWorld {
 protected:
  CountedCacheTest() : ServiceWorld(AccountWorld()) { SeedConnection(); }

  std::string AccessToken(std::int64_t account_id = kAccount) {
    auto rows = RunCo(ioc, cache.FindByAccount(account_id)).value();
    return rows.size() == 1 ? rows.front().access_token.Reveal() : "";
  }
  /// Another process commits a new access token: the count moves, as data_version does.
  void ChangeTokenElsewhere(const std::string& access) {
    auto row = RunCo(ioc, stores.Find({kAccount, kClient})).value().value();
    const std::int64_t version = row.version;
    row.access_token = Secret(access);
    RunCo(ioc, stores.Replace(std::move(row), version, {})).value();
    ++commits;
    if (counter.count) {
      counter.count = commits;
    }
  }

  std::uint64_t commits = 7;

  FakeCommitCounter counter;
  CountingConnections inner{stores};
  CachedConnectionStore cache{inner, counter, TokenCacheOptions{.max_entries = 3}};
};

TEST_F(CountedCacheTest, WhileNothingCommitsAnAccountIsServedFromMemory) {
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(inner.reads.load(), 1);
  EXPECT_EQ(counter.looks, 3);  // every lookup looks at the count
  const auto stats = cache.GetStats();
  EXPECT_EQ(stats.hits, 2U);
  EXPECT_EQ(stats.entries, 1U);
  EXPECT_TRUE(stats.listening);
}

TEST_F(CountedCacheTest, AnotherProcesssCommitIsSeenByTheVeryNextRead) {
  EXPECT_EQ(AccessToken(), "old-access");
  ChangeTokenElsewhere("new-access");
  // No window of staleness: the count moved, so the entry is read again at once.
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 2);
}

TEST_F(CountedCacheTest, ACommitToAnyRowMakesEveryEntryReadAgain) {
  SeedConnection(ConnectionSpec{.account_id = kAccount + 1});
  EXPECT_EQ(AccessToken(), "old-access");
  counter.count = ++commits;  // e.g. a lease taken for another account, an outbox row, a state
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(inner.reads.load(), 2);
  EXPECT_EQ(AccessToken(), "old-access");
  EXPECT_EQ(inner.reads.load(), 2);
}

TEST_F(CountedCacheTest, WhenTheCountCannotBeReadEveryReadGoesToTheStore) {
  EXPECT_EQ(AccessToken(), "old-access");
  counter.count.reset();  // SQLITE_BUSY: a checkpoint or recovery holds the lock
  ChangeTokenElsewhere("new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 3);
  // Nothing installed meanwhile, and the entry tagged before is not served with a new count.
  counter.count = 100;
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 4);
}

TEST_F(CountedCacheTest, AReadInFlightWhenAnotherProcessCommitsIsNotServedAfterwards) {
  std::optional<Result<std::vector<core::Connection>>> slot;
  inner.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  boost::asio::co_spawn(ioc,
                        cache.FindByAccount(kAccount),
                        [&slot](std::exception_ptr e, Result<std::vector<core::Connection>> r) {
                          ASSERT_FALSE(e);
                          slot = std::move(r);
                        });
  ioc.restart();
  ioc.poll();
  ASSERT_TRUE(inner.parked.load());  // it has read "old-access"
  ChangeTokenElsewhere("new-access");
  inner.gate->cancel();
  ioc.restart();
  ioc.poll();
  inner.gate.reset();
  ASSERT_TRUE(slot.has_value() && *slot);
  EXPECT_EQ((*slot)->front().access_token.Reveal(), "old-access");
  // Installed under the count read before it, which has moved since: read again.
  EXPECT_EQ(AccessToken(), "new-access");
  EXPECT_EQ(inner.reads.load(), 2);
}

TEST_F(CountedCacheTest, ItHoldsAtMostMaxEntriesAccounts) {
  for (std::int64_t id = kAccount + 1; id <= kAccount + 4; ++id) {
    SeedConnection(ConnectionSpec{.account_id = id});
  }
  for (std::int64_t id = kAccount; id <= kAccount + 4; ++id) {
    AccessToken(id);
  }
  EXPECT_EQ(cache.GetStats().entries, 3U);
}

/// Two instances of amoauth over one store, each with its own cache and its own feed; the test
/// decides when a commit's notification reaches the other instance.
class TwoInstancesTest : public ::testing::Test, protected ServiceWorld {
 protected:
  TwoInstancesTest()
      : ServiceWorld(AccountWorld()),
        a(directory, Settings("instance-a"), core::RefererPolicy({"amocrm.ru"}), PortsOf(cache_a)),
        b(directory, Settings("instance-b"), core::RefererPolicy({"amocrm.ru"}), PortsOf(cache_b)) {
    SeedConnection();
  }

  static FlowSettings Settings(std::string instance) {
    FlowSettings settings = AccountWorld().flow;
    settings.instance_id = std::move(instance);
    return settings;
  }
  AccountPorts PortsOf(CachedConnectionStore& cache) {
    AccountPorts ports = Ports(cache);
    ports.latest = &stores;
    return ports;
  }
  std::string TokenFrom(AccountService& instance) {
    return RunCo(ioc, instance.FreshToken(kAccount)).value().access_token.Reveal();
  }

  FakeConnectionChanges feed_a;
  FakeConnectionChanges feed_b;
  CachedConnectionStore cache_a{stores, feed_a};
  CachedConnectionStore cache_b{stores, feed_b};
  AccountService a;
  AccountService b;
};

TEST_F(TwoInstancesTest, AStaleCachedRowNeverSpendsARefreshTokenTwice) {
  EXPECT_EQ(TokenFrom(a), "old-access");
  EXPECT_EQ(TokenFrom(b), "old-access");
  clock.Advance(std::chrono::hours(24) - std::chrono::minutes(4));  // inside the margin

  const std::string refreshed = TokenFrom(b);
  EXPECT_NE(refreshed, "old-access");
  EXPECT_EQ(amo.refreshes.load(), 1);

  // B's notification has not reached A: A's cache still has the row with the spent refresh
  // token, due for a refresh. A's refresh re-reads past the cache under the lease and finds B's.
  EXPECT_EQ(cache_a.GetStats().entries, 1U);
  EXPECT_EQ(TokenFrom(a), refreshed);
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "old-refresh");
}

TEST_F(TwoInstancesTest, OnceNotifiedTheOtherInstanceServesTheNewTokenFromItsCache) {
  EXPECT_EQ(TokenFrom(a), "old-access");
  auto forced = RunCo(ioc, b.ForceRefresh(kAccount));
  ASSERT_TRUE(forced);
  EXPECT_EQ(TokenFrom(b), forced->access_token.Reveal());  // B reads its own write at once

  feed_a.Changed({kAccount, kClient});
  EXPECT_EQ(TokenFrom(a), forced->access_token.Reveal());
  EXPECT_EQ(TokenFrom(a), forced->access_token.Reveal());
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(cache_a.GetStats().entries, 1U);
}

TEST_F(TwoInstancesTest, AProxiedCallWithAStaleTokenIsReplayedWithTheOtherInstancesToken) {
  EXPECT_EQ(TokenFrom(a), "old-access");
  auto forced = RunCo(ioc, b.ForceRefresh(kAccount));
  ASSERT_TRUE(forced);

  // amoCRM revoked the old access token on B's refresh; A has not been notified yet.
  amo.forward_statuses = {401, 200};
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  auto response = RunCo(ioc, a.Proxy(kAccount, request));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  ASSERT_EQ(amo.forwarded_tokens.size(), 2U);
  EXPECT_EQ(amo.forwarded_tokens[0], "old-access");
  EXPECT_EQ(amo.forwarded_tokens[1], forced->access_token.Reveal());
  EXPECT_EQ(amo.refreshes.load(), 1);
}

}  // namespace
}  // namespace amoauth::service
