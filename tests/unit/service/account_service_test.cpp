#include "amoauth/service/account_service.hpp"

#include <cctype>
#include <set>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/crypto/digest.hpp"
#include "service_world.hpp"

namespace amoauth::service {
namespace {

using testing::AccountWorld;
using testing::kClient;
using testing::kExternal;
using testing::RunCo;
using testing::ServiceWorld;
using testing::WorldOptions;

class AccountServiceTest : public ::testing::Test, protected ServiceWorld {
 protected:
  AccountServiceTest() : ServiceWorld(Options()) { SeedConnection(); }

  static WorldOptions Options() {
    WorldOptions options = AccountWorld();
    options.manual_steady_time = true;  // the rate-limit tests move steady_now
    return options;
  }

  core::Connection Row() { return RunCo(ioc, service.Get(30000001)).value(); }

  std::vector<std::string> EventTypes() {
    std::vector<std::string> types;
    for (const auto& e : stores.EnqueuedEvents()) {
      types.push_back(e.type);
    }
    return types;
  }

  /// "Another process" takes the account's refresh lease for a minute.
  void HoldLease(const core::AccountKey& key, const std::string& holder) {
    ASSERT_TRUE(
        RunCo(ioc,
              stores.TryAcquire(key, holder, clock.Now(), clock.Now() + std::chrono::seconds(60)))
            .value());
  }

  /// "Another process" commits its refresh of `before`: a new pair ending at `expires_at`.
  void CommitTheirs(const core::Connection& before,
                    std::string access,
                    std::string refresh,
                    core::TimePoint expires_at) {
    core::Connection theirs = before;
    theirs.access_token = Secret(std::move(access));
    theirs.refresh_token = Secret(std::move(refresh));
    theirs.expires_at = expires_at;
    ASSERT_TRUE(RunCo(ioc, stores.Replace(theirs, before.version, {})));
  }

  /// A FreshToken call of `on` left running on `ioc`: the test moves the world, then Finish().
  struct Waiter {
    std::shared_ptr<std::optional<Result<core::Connection>>> result =
        std::make_shared<std::optional<Result<core::Connection>>>();
    [[nodiscard]] bool Done() const { return result->has_value(); }
  };
  Waiter StartWaiting(AccountService& on, std::chrono::milliseconds run_for) {
    Waiter waiter;
    boost::asio::co_spawn(
        ioc,
        on.FreshToken(30000001),
        [result = waiter.result](std::exception_ptr e, Result<core::Connection> r) {
          ASSERT_FALSE(e);
          *result = std::move(r);
        });
    ioc.restart();
    ioc.run_for(run_for);
    return waiter;
  }
  /// Runs `ioc` until the waiter has its answer (10 s at most: then the test fails on it).
  Result<core::Connection> Finish(const Waiter& waiter) {
    for (int i = 0; i < 500 && !waiter.Done(); ++i) {
      ioc.restart();
      ioc.run_for(std::chrono::milliseconds(20));
    }
    if (!waiter.Done()) {
      ADD_FAILURE() << "the caller is still waiting";
      return Fail(Errc::kBusy);
    }
    return **waiter.result;
  }

  AccountService& service = accounts;  ///< the unit under test, by the name the tests use
};

TEST_F(AccountServiceTest, FreshTokenIsReturnedWithoutRefreshing) {
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_token.Reveal(), "old-access");
  EXPECT_EQ(amo.refreshes.load(), 0);
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(42)).error(), Errc::kNotFound));
}

TEST_F(AccountServiceTest, TokenInsideTheMarginIsRefreshedAndStored) {
  clock.Advance(std::chrono::hours(24) - std::chrono::minutes(4));
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "old-refresh");
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");
  EXPECT_EQ(c->refresh_token.Reveal(), "def50200refresh-refresh1");
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->expires_at, clock.Now() + std::chrono::hours(24));
  EXPECT_EQ(RunCo(ioc, service.Get(30000001))->access_token, c->access_token);
}

TEST_F(AccountServiceTest, ConcurrentCallersShareOneRefresh) {
  clock.Advance(std::chrono::hours(25));
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  std::vector<std::optional<Result<core::Connection>>> results(10);
  for (auto& slot : results) {
    boost::asio::co_spawn(ioc,
                          service.FreshToken(30000001),
                          [&slot](std::exception_ptr e, Result<core::Connection> r) {
                            ASSERT_FALSE(e);
                            slot = std::move(r);
                          });
  }
  ioc.restart();  // RunCo in the fixture left the context stopped
  ioc.poll();     // every caller reaches its suspension point: one at the gate, nine waiting on it
  EXPECT_EQ(amo.refreshes.load(), 1);
  amo.gate->cancel();
  ioc.restart();
  ioc.run();
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(*r);
    EXPECT_EQ((*r)->refresh_token.Reveal(), "def50200refresh-refresh1");
  }
  EXPECT_EQ(amo.refreshes.load(), 1);
}

TEST_F(AccountServiceTest, DeadRefreshTokenMarksReauthRequiredAndIsNotRetried) {
  clock.Advance(std::chrono::hours(25));
  amo.refresh_error = Errc::kAmoTokenRevoked;
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kReauthRequired));
  EXPECT_EQ(RunCo(ioc, service.Get(30000001))->status, core::ConnectionStatus::kReauthRequired);
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kReauthRequired));
  EXPECT_EQ(amo.refreshes.load(), 1);
}

// docs/security.md, threat 15: amoCRM's answer (or a forger's) carrying another account's tokens is
// not stored under this account, nor as the other account, nor handed to the caller.
TEST_F(AccountServiceTest, ARefreshAnswerCarryingAnotherAccountsTokensIsRefusedAndNotStored) {
  clock.Advance(std::chrono::hours(25));
  amo.account_for_host = [](const std::string&) { return std::int64_t{30000002}; };
  auto refreshed = RunCo(ioc, service.FreshToken(30000001));
  EXPECT_EQ(amo.refreshes.load(), 1);
  ASSERT_FALSE(refreshed.has_value()) << "handed out: " << refreshed->access_token.Reveal();
  EXPECT_TRUE(Is(refreshed.error(), Errc::kAmoMalformedResponse)) << refreshed.error().message();
  const core::Connection row = Row();
  EXPECT_EQ(row.account_id, 30000001);
  EXPECT_EQ(row.access_token.Reveal(), "old-access");
  EXPECT_EQ(row.refresh_token.Reveal(), "old-refresh");
  EXPECT_TRUE(RunCo(ioc, stores.FindByAccount(30000002)).value().empty());
}

TEST_F(AccountServiceTest, TransientFailureOrRejectedClientLeavesTheAccountActive) {
  for (Errc e : {Errc::kAmoUnreachable, Errc::kAmoServerError, Errc::kAmoInvalidClient}) {
    clock.Advance(std::chrono::hours(25));
    amo.refresh_error = e;
    EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), e));
    EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
  }
}

TEST_F(AccountServiceTest, ProxyRefreshesOnceAndReplaysOnceAfter401) {
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  amo.forward_statuses = {401, 200};
  auto r = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "/api/v4/account");
  EXPECT_EQ(amo.refreshes.load(), 1);
  ASSERT_EQ(amo.forwarded_tokens.size(), 2U);
  EXPECT_EQ(amo.forwarded_tokens[0], "old-access");
  EXPECT_NE(amo.forwarded_tokens[1], "old-access");

  // A second 401 after the replay is amoCRM's answer, not a loop.
  amo.forward_statuses = {401, 401};
  auto again = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_EQ(amo.forwards.load(), 4);
}

TEST_F(AccountServiceTest, SuccessfulRefreshSchedulesTheNextOneAndHoldsNoLease) {
  clock.Advance(std::chrono::hours(25));
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->last_refresh_at, clock.Now());
  EXPECT_EQ(c->next_refresh_at, clock.Now() + std::chrono::hours(23));
  EXPECT_EQ(c->refresh_failures, 0);
  EXPECT_TRUE(c->last_error.empty());
  EXPECT_FALSE(stores.LeaseHolder(c->Key()).has_value()) << "the lease is given back";
}

TEST_F(AccountServiceTest, DeadRefreshTokenTellsTheBackendOnce) {
  clock.Advance(std::chrono::hours(25));
  amo.refresh_error = Errc::kAmoTokenExpired;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kReauthRequired));
  }
  EXPECT_TRUE(Is(RunCo(ioc, service.ForceRefresh(30000001)).error(), Errc::kReauthRequired));
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.reauth_required"});
  const core::Connection row = Row();
  EXPECT_EQ(row.next_refresh_at, core::TimePoint{}) << "the scheduler leaves it alone";
  EXPECT_FALSE(row.last_error.empty());
}

TEST_F(AccountServiceTest, TransientFailureBacksOffThenRecovers) {
  clock.Advance(std::chrono::hours(25));  // the access token has expired
  amo.refresh_error = Errc::kAmoServerError;
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kAmoServerError));
  core::Connection row = Row();
  EXPECT_EQ(row.refresh_failures, 1);
  EXPECT_GE(row.next_refresh_at, clock.Now() + std::chrono::seconds(15));
  EXPECT_LE(row.next_refresh_at, clock.Now() + std::chrono::seconds(30));
  EXPECT_NE(row.last_error.find("5xx"), std::string::npos) << row.last_error;

  // Callers inside the backoff do not reach amoCRM: no refresh storm.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kRefreshDeferred));
  }
  EXPECT_EQ(amo.refreshes.load(), 1);

  // After the backoff the next caller tries again, and succeeds.
  clock.Advance(std::chrono::seconds(31));
  amo.refresh_error.reset();
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(amo.refreshes.load(), 2);
  EXPECT_EQ(c->refresh_failures, 0);
  EXPECT_TRUE(c->last_error.empty());
  EXPECT_EQ(EventTypes(),
            (std::vector<std::string>{"token.refresh_failed", "token.refresh_recovered"}));
}

TEST_F(AccountServiceTest, FailureWhileTheTokenStillWorksHandsOutTheCurrentToken) {
  clock.Advance(std::chrono::hours(24) - std::chrono::minutes(2));  // inside the margin
  amo.refresh_error = Errc::kAmoUnreachable;
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->access_token.Reveal(), "old-access");
  EXPECT_EQ(c->refresh_failures, 1);
}

TEST_F(AccountServiceTest, AForcedRefreshThatFailsSaysSoEvenWhileTheTokenWorks) {
  amo.refresh_error = Errc::kAmoServerError;
  auto forced = RunCo(ioc, service.ForceRefresh(30000001));
  ASSERT_FALSE(forced);
  EXPECT_TRUE(Is(forced.error(), Errc::kAmoServerError));
  EXPECT_EQ(Row().refresh_failures, 1);
}

TEST_F(AccountServiceTest, BackoffGrowsWithEveryFailure) {
  amo.refresh_error = Errc::kAmoUnreachable;
  clock.Advance(std::chrono::hours(25));
  core::TimePoint last_delay_end = clock.Now();
  std::chrono::seconds previous{0};
  for (int attempt = 1; attempt <= 6; ++attempt) {
    (void)RunCo(ioc, service.ForceRefresh(30000001));
    const core::Connection row = Row();
    EXPECT_EQ(row.refresh_failures, attempt);
    const auto delay =
        std::chrono::duration_cast<std::chrono::seconds>(row.next_refresh_at - clock.Now());
    EXPECT_GE(delay * 2, previous) << "attempt " << attempt;
    previous = delay;
    last_delay_end = row.next_refresh_at;
    clock.Advance(delay + std::chrono::seconds(1));
  }
  EXPECT_GE(previous, std::chrono::seconds(480));
}

TEST_F(AccountServiceTest, RenamedAccountIsFoundAndRefreshedOnItsNewHost) {
  clock.Advance(std::chrono::hours(25));
  amo.refresh_error_by_host["example.amocrm.ru"] = Errc::kAmoNotFound;
  amo.domain_answer =
      core::AccountDomain{.id = 30000001, .subdomain = "renamed", .domain = "renamed.amocrm.ru"};
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->base_domain, "renamed.amocrm.ru");
  EXPECT_EQ(amo.last_lookup_host, "api-b.amocrm.ru");
  EXPECT_EQ(amo.last_lookup_token, "old-refresh");
  EXPECT_EQ(amo.refresh_hosts,
            (std::vector<std::string>{"example.amocrm.ru", "renamed.amocrm.ru"}));
  EXPECT_EQ(Row().base_domain, "renamed.amocrm.ru");
}

TEST_F(AccountServiceTest, DomainLookupNamingAForeignHostIsIgnored) {
  clock.Advance(std::chrono::hours(25));
  amo.refresh_error_by_host["example.amocrm.ru"] = Errc::kAmoUnauthorized;
  for (const char* evil : {"evil.example", "renamed.amocrm.ru.evil.example"}) {
    amo.domain_answer = core::AccountDomain{.id = 30000001, .subdomain = "x", .domain = evil};
    (void)RunCo(ioc, service.ForceRefresh(30000001));
  }
  // client_secret never went anywhere but the account's own host.
  for (const std::string& host : amo.refresh_hosts) {
    EXPECT_EQ(host, "example.amocrm.ru");
  }
  EXPECT_EQ(Row().base_domain, "example.amocrm.ru");
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
}

TEST_F(AccountServiceTest, AnotherProcessHoldingTheLeaseIsWaitedForAndItsResultUsed) {
  clock.Advance(std::chrono::hours(25));
  const core::Connection before = Row();
  // "Another process" holds the lease and is refreshing.
  HoldLease(before.Key(), "other-process");
  const Waiter waiter =
      StartWaiting(service, std::chrono::milliseconds(60));  // the caller is polling the row
  EXPECT_FALSE(waiter.Done());
  // The other process commits its refresh and lets go.
  ASSERT_NO_FATAL_FAILURE(
      CommitTheirs(before, "their-access", "their-refresh", clock.Now() + std::chrono::hours(24)));
  ASSERT_TRUE(RunCo(ioc, stores.Release(before.Key(), "other-process")));
  const auto result = Finish(waiter);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->access_token.Reveal(), "their-access");
  EXPECT_EQ(amo.refreshes.load(), 0) << "no second refresh with a spent refresh token";
}

// While the caller waits for another process's lease, that process commits a token that is valid
// but already inside the refresh margin (short-lived tokens: the margin is as long as their life).
// The caller takes it: refreshing again would only race the other processes for the lease.
TEST_F(AccountServiceTest, AWaiterTakesAValidTokenAnotherProcessCommittedEvenInsideTheMargin) {
  clock.Advance(std::chrono::hours(25));
  const core::Connection before = Row();
  HoldLease(before.Key(), "other-process");
  const Waiter waiter = StartWaiting(service, std::chrono::milliseconds(60));
  ASSERT_FALSE(waiter.Done());
  ASSERT_NO_FATAL_FAILURE(
      CommitTheirs(before,
                   "their-short-access",
                   "their-short-refresh",
                   clock.Now() + std::chrono::seconds(30)));  // inside any margin, yet valid
  // The other process keeps its lease a while longer (it is writing its history, say): the waiter
  // must not need it.
  const auto result = Finish(waiter);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->access_token.Reveal(), "their-short-access");
  EXPECT_EQ(amo.refreshes.load(), 0) << "no second refresh of a token another process just made";
}

// The same, but what the other process committed has expired by the time the waiter sees it:
// then the waiter refreshes it, once the lease is free.
TEST_F(AccountServiceTest, AWaiterRefreshesATokenAnotherProcessCommittedAlreadyExpired) {
  clock.Advance(std::chrono::hours(25));
  const core::Connection before = Row();
  HoldLease(before.Key(), "other-process");
  const Waiter waiter = StartWaiting(service, std::chrono::milliseconds(60));
  ASSERT_FALSE(waiter.Done());
  ASSERT_NO_FATAL_FAILURE(CommitTheirs(
      before, "their-dead-access", "their-live-refresh", clock.Now() - std::chrono::seconds(1)));
  ASSERT_TRUE(RunCo(ioc, stores.Release(before.Key(), "other-process")));
  const auto result = Finish(waiter);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "their-live-refresh") << "the newest refresh token is used";
  EXPECT_GT(result->expires_at, clock.Now());
}

/// HolderLiveness of a test: the holders in `gone` have died.
struct FakeLiveness final : HolderLiveness {
  std::set<std::string, std::less<>> gone;
  [[nodiscard]] bool IsGone(std::string_view holder) const noexcept override {
    return gone.contains(holder);
  }
};

// A process died holding the lease (SIGKILL mid-refresh): the caller does not wait for the lease
// to end (a minute here) but takes it over once the grace after the death has passed, and
// refreshes once. While the holder lives, its lease is respected whatever the wait.
TEST_F(AccountServiceTest, ALeaseOfAHolderThatDiedIsTakenOverAfterTheGraceNotAtItsEnd) {
  FakeLiveness liveness;
  FlowSettings settings = AccountWorld().flow;
  settings.lease_ttl = std::chrono::seconds(60);
  settings.dead_holder_grace = std::chrono::milliseconds(150);
  AccountPorts ports = Ports();
  ports.liveness = &liveness;
  AccountService watching(directory, settings, core::RefererPolicy({"amocrm.ru"}), ports);

  clock.Advance(std::chrono::hours(25));
  const core::AccountKey key = Row().Key();
  HoldLease(key, "crashed-process");
  const Waiter waiter = StartWaiting(
      watching, std::chrono::milliseconds(400));  // alive: more than the grace, and still waiting
  ASSERT_FALSE(waiter.Done());
  EXPECT_EQ(stores.LeaseHolder(key), "crashed-process");

  liveness.gone.insert("crashed-process");
  const auto seen_dead = std::chrono::steady_clock::now();
  const auto result = Finish(waiter);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - seen_dead, settings.dead_holder_grace);
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "old-refresh");
  EXPECT_EQ(stores.LeaseHolder(key), std::nullopt) << "taken over, used and given back";
}

TEST_F(AccountServiceTest, ScheduledRefreshSkipsARowSomeoneElseRefreshed) {
  clock.Advance(std::chrono::hours(23) + std::chrono::minutes(1));
  const core::Connection due = Row();
  // Refreshed on demand meanwhile (another process, say).
  ASSERT_TRUE(RunCo(ioc, service.ForceRefresh(30000001)));
  ASSERT_EQ(amo.refreshes.load(), 1);
  auto r = RunCo(ioc, service.RefreshIfDue(due));
  ASSERT_TRUE(r);
  EXPECT_EQ(amo.refreshes.load(), 1);
}

TEST_F(AccountServiceTest, AJson403IsAnAnswerAboutRightsNotABlock) {
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/leads";
  amo.forward_statuses = {403};
  amo.forward_content_type = "application/problem+json";
  auto denied = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_FALSE(limiter.BlockedFor(30000001).has_value());
  amo.forward_content_type.clear();
  EXPECT_TRUE(RunCo(ioc, service.Proxy(30000001, request))) << "the next call goes out";
  EXPECT_TRUE(EventTypes().empty());
}

TEST_F(AccountServiceTest, ProxyKeepsToTheRateLimitAndHonours429And403) {
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/leads";
  // Seven in the same instant go; the eighth would have to wait (and max_wait is zero here).
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(RunCo(ioc, service.Proxy(30000001, request)));
  }
  EXPECT_TRUE(Is(RunCo(ioc, service.Proxy(30000001, request)).error(), Errc::kThrottled));
  EXPECT_EQ(amo.forwards.load(), 7);

  steady_now += std::chrono::seconds(5);
  amo.forward_statuses = {429};
  amo.forward_headers_retry_after = {"30"};
  auto limited = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429) << "amoCRM's answer reaches the caller";
  EXPECT_TRUE(Is(RunCo(ioc, service.Proxy(30000001, request)).error(), Errc::kThrottled));
  EXPECT_GE(limiter.RetryAfter(30000001), std::chrono::seconds(29));

  steady_now += std::chrono::seconds(31);
  amo.forward_statuses = {403};
  auto blocked = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->status, 403);
  const int forwards = amo.forwards.load();
  EXPECT_TRUE(Is(RunCo(ioc, service.Proxy(30000001, request)).error(), Errc::kAmoBlocked));
  EXPECT_EQ(amo.forwards.load(), forwards) << "nothing is sent during the cool-off";
  EXPECT_TRUE(limiter.BlockedFor(30000001).has_value());
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.api_blocked"});
}

TEST_F(AccountServiceTest, AForcedRefreshInTheSameSecondAsTheLastOneRefreshesOnce) {
  // The clock stands still: the new last_refresh_at equals the old one, yet one refresh is made.
  auto forced = RunCo(ioc, service.ForceRefresh(30000001));
  ASSERT_TRUE(forced) << forced.error().message();
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(forced->refresh_token.Reveal(), "def50200refresh-refresh1");
}

// ---- The disconnect hook (protocol §7.1) ---------------------------------------------------

/// What amoCRM would sign for our integration (client secret "s").
std::string AmoSignature(std::string_view client_uuid, std::string_view account_id) {
  return crypto::HmacSha256Hex("s", std::string(client_uuid) + "|" + std::string(account_id));
}

TEST_F(AccountServiceTest, DisconnectHookErasesTheTokensAndTellsTheBackendOnce) {
  amo.refresh_error = Errc::kAmoTokenRevoked;  // amoCRM revoked the pair before the hook
  const std::int64_t version_before = Row().version;
  auto done =
      RunCo(ioc, service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001")));
  ASSERT_TRUE(done) << done.error().message();
  const core::Connection row = Row();
  EXPECT_EQ(row.status, core::ConnectionStatus::kDisconnected);
  EXPECT_TRUE(row.access_token.Empty());
  EXPECT_TRUE(row.refresh_token.Empty());
  EXPECT_EQ(row.next_refresh_at, core::TimePoint{}) << "the scheduler leaves it alone";
  EXPECT_EQ(row.last_error, "amoCRM reported that the account disconnected the integration");
  EXPECT_EQ(row.version, version_before + 1) << "one write";
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.disconnected"});
  EXPECT_EQ(amo.refreshes.load(), 1) << "confirmed with amoCRM first";
  const auto body = boost::json::parse(stores.EnqueuedEvents().back().body).as_object();
  EXPECT_EQ(body.at("status"), "disconnected");
  EXPECT_EQ(body.at("account_id"), 30000001);
  EXPECT_EQ(body.at("type"), "account.disconnected");

  // amoCRM may send the hook again: still fine, nothing new.
  ASSERT_TRUE(
      RunCo(ioc, service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001"))));
  EXPECT_EQ(Row().version, version_before + 1);
  EXPECT_EQ(EventTypes().size(), 1U);
  EXPECT_EQ(amo.refreshes.load(), 1) << "a disconnected row is not asked about again";
}

TEST_F(AccountServiceTest, AReplayedDisconnectHookIsIgnoredWhileAmoCrmAcceptsTheTokens) {
  // The signature has no timestamp: a hook captured once verifies forever. amoCRM still takes
  // the refresh token, so the account is connected and the hook is a replay.
  auto done =
      RunCo(ioc, service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001")));
  ASSERT_TRUE(done) << done.error().message();
  const core::Connection row = Row();
  EXPECT_EQ(row.status, core::ConnectionStatus::kActive);
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "old-refresh");
  EXPECT_EQ(row.refresh_token.Reveal(), "def50200refresh-refresh1") << "stored as any refresh";
  EXPECT_FALSE(row.access_token.Empty());
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.disconnect_ignored"});
  const auto body = boost::json::parse(stores.EnqueuedEvents().back().body).as_object();
  EXPECT_EQ(body.at("status"), "active");
  EXPECT_EQ(body.at("data").at("reason"), "tokens_still_valid");
  EXPECT_EQ(body.at("data").at("message"), "disconnect hook ignored: tokens still valid");
}

TEST_F(AccountServiceTest, ALongLivedTokenIsCheckedWithOneApiCallBeforeTheHookErasesIt) {
  // No refresh token to try: GET /api/v4/account with the token itself asks amoCRM.
  core::Connection long_lived = Row();
  long_lived.refresh_token = Secret();
  long_lived.last_refresh_at = core::TimePoint{};
  ASSERT_TRUE(RunCo(ioc, stores.Upsert(long_lived, {})));
  ASSERT_EQ(core::KindOf(Row()), core::ConnectionKind::kLongLived);
  const std::string signature = AmoSignature(kClient, "30000001");

  amo.forward_statuses = {200};  // amoCRM takes the token: a replay
  ASSERT_TRUE(RunCo(ioc, service.Disconnect(kClient, "30000001", signature)));
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
  EXPECT_EQ(amo.forwards.load(), 1);
  EXPECT_EQ(amo.refreshes.load(), 0);
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.disconnect_ignored"});

  amo.forward_statuses = {503};  // amoCRM cannot say
  auto unknown = RunCo(ioc, service.Disconnect(kClient, "30000001", signature));
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(Is(unknown.error(), Errc::kAmoServerError)) << unknown.error().message();
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);

  amo.forward_statuses = {401};  // amoCRM refuses it: genuine
  ASSERT_TRUE(RunCo(ioc, service.Disconnect(kClient, "30000001", signature)));
  EXPECT_EQ(Row().status, core::ConnectionStatus::kDisconnected);
  EXPECT_TRUE(Row().access_token.Empty());
  EXPECT_EQ(amo.forwards.load(), 3);
}

TEST_F(AccountServiceTest, ADisconnectHookAmoCrmCannotConfirmKeepsTheTokens) {
  for (Errc e : {Errc::kAmoUnreachable, Errc::kAmoServerError, Errc::kAmoMalformedResponse}) {
    amo.refresh_error = e;
    auto done =
        RunCo(ioc, service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001")));
    ASSERT_FALSE(done);
    EXPECT_TRUE(Is(done.error(), e)) << done.error().message();
    const core::Connection row = Row();
    EXPECT_EQ(row.status, core::ConnectionStatus::kActive);
    EXPECT_EQ(row.access_token.Reveal(), "old-access") << "nothing erased";
    EXPECT_EQ(row.refresh_token.Reveal(), "old-refresh");
    EXPECT_GT(row.next_refresh_at, clock.Now()) << "the backoff brings the next attempt";
    EXPECT_FALSE(row.last_error.empty());
  }
  EXPECT_EQ(Row().refresh_failures, 3);
  for (const std::string& type : EventTypes()) {
    EXPECT_EQ(type, "token.refresh_failed");
  }

  // The next refresh settles it: amoCRM revoked the pair → reauth_required.
  amo.refresh_error = Errc::kAmoTokenRevoked;
  clock.Advance(std::chrono::hours(2));
  EXPECT_TRUE(Is(RunCo(ioc, service.ForceRefresh(30000001)).error(), Errc::kReauthRequired));
}

TEST_F(AccountServiceTest, AForgedDisconnectHookChangesNothing) {
  const core::Connection before = Row();
  const std::string other_client = "99999999-2222-3333-4444-555555555555";
  const std::string good = AmoSignature(kClient, "30000001");
  std::string upper = good;
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  struct Case {
    std::string client;
    std::string account;
    std::string signature;
  };
  const std::vector<Case> forged = {
      {kClient, "30000001", AmoSignature(kClient, "30000002")},  // another account's
      {kClient, "30000001", crypto::HmacSha256Hex("other", std::string(kClient) + "|30000001")},
      {other_client, "30000001", AmoSignature(other_client, "30000001")},  // not our client id
      {kClient, "30000001", good.substr(0, 63)},
      {kClient, "30000001", ""},
      {kClient, "30000001", std::string(64, 'z')},
      {kClient, "30000002", good},
  };
  for (const Case& c : forged) {
    auto r = RunCo(ioc, service.Disconnect(c.client, c.account, c.signature));
    ASSERT_FALSE(r) << c.client << " " << c.account;
    EXPECT_TRUE(Is(r.error(), Errc::kSignatureInvalid)) << r.error().message();
  }
  const core::Connection after = Row();
  EXPECT_EQ(after.status, core::ConnectionStatus::kActive);
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(after.access_token.Reveal(), "old-access");
  EXPECT_TRUE(EventTypes().empty());

  EXPECT_EQ(amo.refreshes.load(), 0) << "a forged hook never reaches amoCRM";

  // Uppercase hex is the same signature.
  amo.refresh_error = Errc::kAmoTokenRevoked;
  EXPECT_TRUE(RunCo(ioc, service.Disconnect(kClient, "30000001", upper)));
  EXPECT_EQ(Row().status, core::ConnectionStatus::kDisconnected);
}

TEST_F(AccountServiceTest, DisconnectHookNeedsAPositiveIntegerAccountId) {
  for (const char* id : {"", "abc", "0", "-5", "12x", "99999999999999999999999"}) {
    auto r = RunCo(ioc, service.Disconnect(kClient, id, AmoSignature(kClient, id)));
    ASSERT_FALSE(r) << id;
    EXPECT_TRUE(Is(r.error(), Errc::kInvalidArgument)) << id;
  }
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
}

TEST_F(AccountServiceTest, DisconnectHookForAnUnknownAccountIsASuccessThatDoesNothing) {
  EXPECT_TRUE(
      RunCo(ioc, service.Disconnect(kClient, "30000002", AmoSignature(kClient, "30000002"))));
  EXPECT_TRUE(EventTypes().empty());
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
}

TEST_F(AccountServiceTest, ADisconnectedAccountHandsOutNoTokenUntilConnectedAgain) {
  amo.refresh_error = Errc::kAmoTokenRevoked;
  ASSERT_TRUE(
      RunCo(ioc, service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001"))));
  ASSERT_EQ(amo.refreshes.load(), 1);  // the hook's confirmation
  amo.refresh_error.reset();
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kAccountDisconnected));
  EXPECT_TRUE(Is(RunCo(ioc, service.ForceRefresh(30000001)).error(), Errc::kAccountDisconnected));
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  EXPECT_TRUE(Is(RunCo(ioc, service.Proxy(30000001, request)).error(), Errc::kAccountDisconnected));
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.forwards.load(), 0);

  // A new connect writes a fresh row (Upsert): active again.
  core::Connection fresh = Row();
  fresh.status = core::ConnectionStatus::kActive;
  fresh.access_token = Secret("new-access");
  fresh.refresh_token = Secret("new-refresh");
  fresh.expires_at = clock.Now() + std::chrono::hours(24);
  fresh.next_refresh_at = fresh.expires_at - std::chrono::hours(1);
  fresh.last_error.clear();
  ASSERT_TRUE(RunCo(ioc, stores.Upsert(fresh, {})));
  auto token = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(token) << token.error().message();
  EXPECT_EQ(token->access_token.Reveal(), "new-access");
}

TEST_F(AccountServiceTest, ARefreshInFlightWhenTheHookArrivesDoesNotResurrectTheTokens) {
  clock.Advance(std::chrono::hours(25));
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  std::optional<Result<core::Connection>> refreshed;
  boost::asio::co_spawn(ioc,
                        service.FreshToken(30000001),
                        [&refreshed](std::exception_ptr e, Result<core::Connection> r) {
                          ASSERT_FALSE(e);
                          refreshed = std::move(r);
                        });
  ioc.restart();
  ioc.poll();  // the refresh waits at amoCRM's gate
  ASSERT_EQ(amo.refreshes.load(), 1);
  std::optional<Result<void>> hooked;
  boost::asio::co_spawn(ioc,
                        service.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001")),
                        [&hooked](std::exception_ptr e, Result<void> r) {
                          ASSERT_FALSE(e);
                          hooked = std::move(r);
                        });
  ioc.restart();
  ioc.poll();  // the hook waits for the refresh in flight
  EXPECT_FALSE(hooked.has_value());
  // amoCRM answered the refresh in flight before it revoked the pair: that answer proves
  // nothing, so the hook asks again with a refresh of its own, which amoCRM refuses.
  amo.refresh_script = {std::nullopt, Errc::kAmoTokenRevoked};
  amo.gate_opened = true;
  amo.gate->cancel();
  ioc.restart();
  ioc.run();
  ASSERT_TRUE(refreshed.has_value());
  ASSERT_TRUE(hooked.has_value());
  ASSERT_TRUE(*hooked) << hooked->error().message();
  EXPECT_EQ(amo.refreshes.load(), 2);
  const core::Connection row = Row();
  EXPECT_EQ(row.status, core::ConnectionStatus::kDisconnected);
  EXPECT_TRUE(row.access_token.Empty());
  EXPECT_TRUE(row.refresh_token.Empty());
}

/// A ConnectionStore whose row is rewritten (as by a concurrent refresh) just before each of the
/// first `races` Replace calls, so they lose their compare-and-swap.
class RacingStore final : public ConnectionStore {
 public:
  RacingStore(testing::InMemoryStores& inner, int races) : inner_(inner), races_(races) {}

  Task<Result<core::Connection>> Upsert(core::Connection c, std::vector<Event> e) override {
    co_return co_await inner_.Upsert(std::move(c), std::move(e));
  }
  Task<Result<core::Connection>> Replace(core::Connection c,
                                         std::int64_t expected,
                                         std::vector<Event> e) override {
    if (races_ > 0) {
      --races_;
      auto current = co_await inner_.Find(c.Key());
      core::Connection rewritten = **current;
      [[maybe_unused]] auto bumped = co_await inner_.Replace(rewritten, rewritten.version, {});
    }
    co_return co_await inner_.Replace(std::move(c), expected, std::move(e));
  }
  Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                      std::size_t limit) override {
    co_return co_await inner_.ListDue(now, limit);
  }
  Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) override {
    co_return co_await inner_.Find(std::move(key));
  }
  Task<Result<std::vector<core::Connection>>> FindByAccount(std::int64_t account_id) override {
    co_return co_await inner_.FindByAccount(account_id);
  }
  Task<Result<std::vector<core::Connection>>> List() override { co_return co_await inner_.List(); }
  Task<Result<std::vector<core::Connection>>> FindByDomain(std::string base_domain) override {
    co_return co_await inner_.FindByDomain(std::move(base_domain));
  }

 private:
  testing::InMemoryStores& inner_;
  int races_;
};

TEST_F(AccountServiceTest, DisconnectHookRetriesALostCompareAndSwap) {
  for (int races : {2, 10}) {
    amo.refresh_error = Errc::kAmoTokenRevoked;
    RacingStore racing(stores, races);
    AccountService raced(
        directory, FlowSettings{}, core::RefererPolicy({"amocrm.ru"}), Ports(racing));
    auto r = RunCo(ioc, raced.Disconnect(kClient, "30000001", AmoSignature(kClient, "30000001")));
    if (races == 2) {
      ASSERT_TRUE(r) << r.error().message();
      EXPECT_EQ(Row().status, core::ConnectionStatus::kDisconnected);
      EXPECT_EQ(EventTypes(), std::vector<std::string>{"account.disconnected"}) << "once";
      // Connect again for the next round.
      core::Connection fresh = Row();
      fresh.status = core::ConnectionStatus::kActive;
      fresh.access_token = Secret("a");
      ASSERT_TRUE(RunCo(ioc, stores.Upsert(fresh, {})));
    } else {
      ASSERT_FALSE(r) << "gives up after a few attempts";
      EXPECT_TRUE(Is(r.error(), Errc::kConflict));
      EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
      EXPECT_EQ(EventTypes().size(), 1U);
    }
  }
}

/// Runs `ioc` until `done` holds (bounded), for callers the limiter's real timers release.
template <class Pred>
void RunUntil(boost::asio::io_context& ioc, Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(5));
  }
}

TEST(ApiLimiter, QueuesCallersUntilAWindowAfterAnAnswerAndRefusesBeyondTheBound) {
  // Real time, with a short window: the waits below are a tenth of a second.
  boost::asio::io_context ioc;
  ApiLimiter limiter({.rps = 2,
                      .window = std::chrono::milliseconds(100),
                      .max_wait = std::chrono::milliseconds(150)},
                     ioc.get_executor());
  auto first = RunCo(ioc, limiter.Acquire(1));
  auto second = RunCo(ioc, limiter.Acquire(1));
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(RunCo(ioc, limiter.Acquire(2))) << "another account has its own window";

  // Both places of account 1 are taken: the next caller queues.
  std::optional<Result<ApiLimiter::Permit>> third;
  boost::asio::co_spawn(
      ioc, limiter.Acquire(1), [&third](std::exception_ptr, Result<ApiLimiter::Permit> r) {
        third = std::move(r);
      });
  ioc.restart();
  ioc.poll();
  EXPECT_FALSE(third.has_value());
  EXPECT_EQ(limiter.QueueLength(), 1U) << "GET /metrics's amoauth_limiter_queue_length";
  const auto answered = std::chrono::steady_clock::now();
  *first = ApiLimiter::Permit();  // amoCRM answered the first request
  RunUntil(ioc, [&] { return third.has_value(); });
  ASSERT_TRUE(third.has_value());
  ASSERT_TRUE(*third);
  EXPECT_EQ(limiter.QueueLength(), 0U) << "admitted: no longer waiting";
  EXPECT_GE(std::chrono::steady_clock::now() - answered, std::chrono::milliseconds(100))
      << "admitted no sooner than a window after the answer";

  // Second and third hold both places and nobody answers: a caller is refused at its bound.
  std::optional<Result<ApiLimiter::Permit>> fourth;
  boost::asio::co_spawn(
      ioc, limiter.Acquire(1), [&fourth](std::exception_ptr, Result<ApiLimiter::Permit> r) {
        fourth = std::move(r);
      });
  ioc.restart();
  ioc.poll();
  EXPECT_EQ(limiter.QueueLength(), 1U);
  RunUntil(ioc, [&] { return fourth.has_value(); });
  ASSERT_TRUE(fourth.has_value());
  EXPECT_TRUE(Is(fourth->error(), Errc::kThrottled));
  EXPECT_EQ(limiter.QueueLength(), 0U) << "refused at its bound: no longer waiting";
}

// ---- Several integrations in one amoauth -------------------------------------------------------

class SeveralIntegrationsTest : public AccountServiceTest {
 protected:
  SeveralIntegrationsTest() { AddExternalIntegration().value(); }

  /// The same account, connected through the external integration too.
  void ConnectExternal(std::int64_t account_id = 30000001) {
    core::Connection c = Row();
    c.account_id = account_id;
    c.client_id = kExternal;
    c.access_token = Secret("external-access");
    c.refresh_token = Secret("external-refresh");
    RunCo(ioc, stores.Upsert(c, {})).value();
  }
};

TEST_F(SeveralIntegrationsTest, WithoutAClientIdTheConfiguredIntegrationIsTheDefault) {
  ConnectExternal();
  auto row = RunCo(ioc, service.Get(30000001));
  ASSERT_TRUE(row);
  EXPECT_EQ(row->client_id, kClient);
  auto external = RunCo(ioc, service.Get(30000001, kExternal));
  ASSERT_TRUE(external);
  EXPECT_EQ(external->access_token.Reveal(), "external-access");
  EXPECT_TRUE(Is(RunCo(ioc, service.Get(30000001, "nobody")).error(), Errc::kNotFound));
}

TEST_F(SeveralIntegrationsTest, AnAccountWithOnlyExternalIntegrationsNeedsAClientIdWhenAmbiguous) {
  ConnectExternal(555);
  auto only = RunCo(ioc, service.Get(555));
  ASSERT_TRUE(only) << "one connection: no need to say which";
  EXPECT_EQ(only->client_id, kExternal);

  RunCo(ioc,
        stores.AddIntegration({.client_id = "bbbbbbbb-0000-0000-0000-000000000000",
                               .client_secret = Secret("second"),
                               .state_hash = "h2",
                               .created_at = clock.Now()}))
      .value();
  core::Connection second = *only;
  second.client_id = "bbbbbbbb-0000-0000-0000-000000000000";
  RunCo(ioc, stores.Upsert(second, {})).value();
  EXPECT_TRUE(Is(RunCo(ioc, service.Get(555)).error(), Errc::kIntegrationAmbiguous));
}

TEST_F(SeveralIntegrationsTest, AnExternalIntegrationsTokenIsRefreshedWithItsOwnKeys) {
  ConnectExternal();
  amo.token_client_id = kExternal;
  clock.Advance(std::chrono::hours(25));
  auto fresh = RunCo(ioc, service.FreshToken(30000001, kExternal));
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_EQ(amo.last_client_id, kExternal);
  EXPECT_EQ(amo.last_secret, "external-secret");
  EXPECT_EQ(amo.last_refresh_token, "external-refresh");
  EXPECT_EQ(fresh->client_id, kExternal);
}

TEST_F(SeveralIntegrationsTest, DisconnectHookOfAnExternalIntegrationIsVerifiedWithItsSecret) {
  ConnectExternal();
  const std::string with_ours = crypto::HmacSha256Hex("s", std::string(kExternal) + "|30000001");
  EXPECT_TRUE(Is(RunCo(ioc, service.Disconnect(kExternal, "30000001", with_ours)).error(),
                 Errc::kSignatureInvalid))
      << "signed with another integration's secret";
  const std::string signature =
      crypto::HmacSha256Hex("external-secret", std::string(kExternal) + "|30000001");
  amo.refresh_error = Errc::kAmoTokenRevoked;
  ASSERT_TRUE(RunCo(ioc, service.Disconnect(kExternal, "30000001", signature)));
  EXPECT_EQ(RunCo(ioc, service.Get(30000001, kExternal))->status,
            core::ConnectionStatus::kDisconnected);
  EXPECT_EQ(Row().status, core::ConnectionStatus::kActive) << "the other integration stays";
  EXPECT_TRUE(Is(
      RunCo(ioc, service.Disconnect("cccccccc-0000-0000-0000-000000000000", "30000001", signature))
          .error(),
      Errc::kSignatureInvalid))
      << "an unknown integration";
}

}  // namespace
}  // namespace amoauth::service
