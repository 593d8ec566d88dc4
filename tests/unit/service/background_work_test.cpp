// The scheduler and the webhook dispatcher over in-memory ports, with a fake clock.
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/webhook_signature.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/refresh_scheduler.hpp"
#include "amoauth/service/webhook_dispatcher.hpp"
#include "service_world.hpp"

namespace amoauth::service {
namespace {

using std::chrono::hours;
using testing::AccountWorld;
using testing::kClient;
using testing::RunCo;
using testing::ServiceWorld;

class SchedulerTest : public ::testing::Test, protected ServiceWorld {
 protected:
  SchedulerTest()
      : ServiceWorld({.integration = AccountWorld().integration,
                      .flow = {.refresh = {.ahead = hours(1), .keepalive = hours(24 * 7)},
                               .instance_id = "this-process"},
                      .referers = {"amocrm.ru"},
                      .events = false}),
        scheduler(accounts, stores, clock, SchedulerSettings{.batch = 2}) {
    // Hosts are "a{id}.amocrm.ru": answer each refresh with a token of that account.
    amo.account_for_host = [](const std::string& host) {
      return std::stoll(host.substr(1, host.find('.') - 1));
    };
  }

  void AddAccount(std::int64_t id, std::chrono::seconds token_life, bool refreshable = true) {
    SeedConnection({.account_id = id,
                    .base_domain = "a" + std::to_string(id) + ".amocrm.ru",
                    .api_domain = "",
                    .access_token = "access",
                    .refresh_token = refreshable ? "refresh" : "",
                    .expires_in = token_life});
  }

  RefreshScheduler scheduler;
};

TEST_F(SchedulerTest, RefreshesOnlyWhatIsDueAcrossBatches) {
  for (std::int64_t id = 1; id <= 5; ++id) {
    AddAccount(id, hours(24));
  }
  AddAccount(6, hours(48));
  AddAccount(7, hours(24), /*refreshable=*/false);  // a long-lived token: never scheduled
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U);
  clock.Advance(hours(23));
  // Five due in batches of two; account 6 is not due yet.
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 5U);
  EXPECT_EQ(amo.refreshes.load(), 5);
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U) << "rescheduled a day on";
  clock.Advance(hours(24));
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 6U);
}

TEST_F(SchedulerTest, KeepsAnIdleAccountAliveForMonths) {
  AddAccount(1, hours(24));
  // 120 simulated days in half-day steps: the account keeps a refresh token younger than a week.
  for (int step = 0; step < 240; ++step) {
    clock.Advance(hours(12));
    ASSERT_TRUE(RunCo(ioc, scheduler.RunOnce()));
    const core::Connection row = RunCo(ioc, accounts.Get(1)).value();
    ASSERT_EQ(row.status, core::ConnectionStatus::kActive);
    ASSERT_LE(clock.Now() - row.last_refresh_at, hours(24 * 7));
  }
  EXPECT_GE(amo.refreshes.load(), 100);
}

TEST_F(SchedulerTest, ARowThatFailsIsTriedOncePerRoundNotInALoop) {
  AddAccount(1, hours(24));
  clock.Advance(hours(25));
  amo.refresh_error = Errc::kAmoServerError;
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U);
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U) << "backing off";
  EXPECT_EQ(amo.refreshes.load(), 1);
}

TEST_F(SchedulerTest, RefreshesSeveralAccountsAtOnceButNoMoreThanAllowed) {
  RefreshScheduler wide(accounts, stores, clock, SchedulerSettings{.batch = 100, .parallel = 3});
  for (std::int64_t id = 1; id <= 7; ++id) {
    AddAccount(id, hours(24));
  }
  clock.Advance(hours(23));
  // amoCRM holds every refresh until the test lets go: the ones in flight pile up at the gate.
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  std::optional<Result<std::size_t>> round;
  boost::asio::co_spawn(
      ioc, wide.RunOnce(), [&round](std::exception_ptr, Result<std::size_t> r) { round = r; });
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(amo.refreshes.load(), 3) << "three in flight, the rest waiting their turn";
  EXPECT_FALSE(round.has_value());
  amo.gate.reset();  // let go: the held refreshes finish, the others pass straight through
  while (!round.has_value()) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(*round);
  EXPECT_EQ(**round, 7U);
  EXPECT_EQ(amo.refreshes.load(), 7);
  EXPECT_TRUE(RunCo(ioc, stores.ListDue(clock.Now(), 100)).value().empty());
}

// A graceful shutdown: after Stop() the refreshes in flight run to their commit, no other starts.
TEST_F(SchedulerTest, StopLetsTheRefreshesInFlightCommitAndStartsNoOther) {
  RefreshScheduler wide(
      accounts,
      stores,
      clock,
      SchedulerSettings{.batch = 100, .interval = std::chrono::milliseconds(1), .parallel = 2});
  for (std::int64_t id = 1; id <= 5; ++id) {
    AddAccount(id, hours(24));
  }
  clock.Advance(hours(23));
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  bool ended = false;
  boost::asio::co_spawn(ioc, wide.Run(), [&ended](const std::exception_ptr&) { ended = true; });
  const auto run_until = [this](const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      ioc.restart();
      ioc.run_for(std::chrono::milliseconds(10));
    }
    return done();
  };
  ASSERT_TRUE(run_until([this] { return amo.refreshes.load() == 2; }));
  EXPECT_TRUE(wide.Busy());
  EXPECT_EQ(accounts.RefreshesInFlight(), 2U);

  wide.Stop();
  amo.gate.reset();  // amoCRM answers the two in flight
  ASSERT_TRUE(run_until([&] { return !wide.Busy(); }));
  EXPECT_EQ(accounts.RefreshesInFlight(), 0U);
  EXPECT_EQ(amo.refreshes.load(), 2) << "no refresh may start after Stop()";
  EXPECT_EQ(RunCo(ioc, stores.ListDue(clock.Now(), 100)).value().size(), 3U)
      << "the two in flight committed, the other three still due";
  EXPECT_TRUE(run_until([&] { return ended; })) << "Run() returns after Stop()";
}

TEST_F(SchedulerTest, TwoInstancesClaimDisjointBatchesAndRefreshEachAccountOnce) {
  // A second instance on the same store: its own AccountService (its own lease holder) and
  // scheduler, the same amoCRM.
  FlowSettings other_flow{.refresh = {.ahead = hours(1), .keepalive = hours(24 * 7)},
                          .instance_id = "other-process"};
  AccountService other(directory, other_flow, core::RefererPolicy({"amocrm.ru"}), Ports());
  RefreshScheduler mine(accounts, stores, clock, SchedulerSettings{.batch = 3, .parallel = 3});
  RefreshScheduler theirs(other, stores, clock, SchedulerSettings{.batch = 3, .parallel = 3});
  for (std::int64_t id = 1; id <= 6; ++id) {
    AddAccount(id, hours(24));
  }
  clock.Advance(hours(23));
  // amoCRM holds every refresh: each instance's first batch is in flight at once.
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  std::optional<Result<std::size_t>> my_round;
  std::optional<Result<std::size_t>> their_round;
  boost::asio::co_spawn(ioc,
                        mine.RunOnce(),
                        [&my_round](std::exception_ptr, Result<std::size_t> r) { my_round = r; });
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  ASSERT_EQ(amo.refreshes.load(), 3) << "this instance's batch of three at the gate";
  boost::asio::co_spawn(
      ioc, theirs.RunOnce(), [&their_round](std::exception_ptr, Result<std::size_t> r) {
        their_round = r;
      });
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  // The other instance skipped the three rows claimed here and took the other three, instead of
  // waiting for the first three's leases.
  EXPECT_EQ(amo.refreshes.load(), 6);
  for (std::int64_t id = 1; id <= 6; ++id) {
    EXPECT_EQ(stores.LeaseHolder({id, kClient}), id <= 3 ? "this-process" : "other-process")
        << "account " << id;
  }
  amo.gate.reset();
  while (!my_round.has_value() || !their_round.has_value()) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(*my_round);
  ASSERT_TRUE(*their_round);
  EXPECT_EQ(**my_round, 3U);
  EXPECT_EQ(**their_round, 3U);
  EXPECT_EQ(amo.refreshes.load(), 6) << "no account refreshed twice";
  for (std::int64_t id = 1; id <= 6; ++id) {
    const core::Connection row = RunCo(ioc, accounts.Get(id)).value();
    EXPECT_EQ(row.version, 2) << "account " << id << " written once, by one refresh";
    EXPECT_EQ(stores.LeaseHolder({id, kClient}), std::nullopt) << "released after the refresh";
  }
}

TEST_F(SchedulerTest, SkipsARowWhoseLeaseAnotherInstanceHoldsUntilItEnds) {
  AddAccount(1, hours(24));
  AddAccount(2, hours(24));
  clock.Advance(hours(23));
  const core::AccountKey held{2, kClient};
  ASSERT_TRUE(
      RunCo(ioc, stores.TryAcquire(held, "other-process", clock.Now(), clock.Now() + hours(1)))
          .value());
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U) << "account 2 is not this round's";
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(stores.LeaseHolder(held), "other-process") << "the other instance's lease untouched";
  EXPECT_EQ(RunCo(ioc, accounts.Get(2)).value().version, 1);
  clock.Advance(hours(1));  // the other instance died: its lease ends, the row is claimed
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U);
  EXPECT_EQ(amo.refreshes.load(), 2);
  EXPECT_EQ(RunCo(ioc, accounts.Get(2)).value().version, 2);
}

/// Records what would have gone to the integrator's backend.
class RecordingSender final : public WebhookSender {
 public:
  Task<Result<int>> Post(std::string body, net::HttpHeaders headers) override {
    bodies.push_back(body);
    signatures.emplace_back(headers.Get("X-Amoauth-Signature").value_or(""));
    if (!statuses.empty()) {
      const int status = statuses.front();
      statuses.pop_front();
      co_return status;
    }
    co_return 200;
  }
  std::deque<int> statuses;
  std::vector<std::string> bodies;
  std::vector<std::string> signatures;
};

TEST(WebhookDispatcher, SignsDeliversAndRetriesWithBackoff) {
  boost::asio::io_context ioc;
  testing::FakeClock clock;
  testing::CountingRandom random;
  testing::InMemoryStores stores(clock);
  RecordingSender sender;
  const std::string secret = "whsec-0123456789abcdef";
  WebhookDispatcher dispatcher(stores, sender, clock, random, {.secret = Secret(secret)});

  ASSERT_TRUE(RunCo(ioc,
                    stores.Enqueue({{"account.connected", R"({"id":"evt_1"})"},
                                    {"token.refresh_failed", R"({"id":"evt_2"})"}},
                                   clock.Now())));
  // The first fails: the second is not tried against a failing backend in the same round.
  sender.statuses = {500};
  EXPECT_EQ(RunCo(ioc, dispatcher.RunOnce()).value(), 0U);
  ASSERT_EQ(sender.bodies.size(), 1U);
  EXPECT_TRUE(core::VerifyWebhook(secret,
                                  sender.signatures[0],
                                  sender.bodies[0],
                                  core::ToUnixSeconds(clock.Now()),
                                  std::chrono::seconds(300)));
  auto pending = stores.PendingEntries();
  ASSERT_EQ(pending.size(), 2U);
  EXPECT_EQ(pending[0].body, R"({"id":"evt_1"})");
  EXPECT_EQ(pending[0].last_error, "HTTP 500");
  EXPECT_NE(pending[1].last_error.find("not sent"), std::string::npos) << pending[1].last_error;

  // Not again before its backoff...
  EXPECT_EQ(RunCo(ioc, dispatcher.RunOnce()).value(), 0U);
  EXPECT_EQ(sender.bodies.size(), 1U);
  // ...then both delivered, oldest first, the first with the same body as before (receivers
  // deduplicate by id), each signed.
  clock.Advance(std::chrono::seconds(6));
  EXPECT_EQ(RunCo(ioc, dispatcher.RunOnce()).value(), 2U);
  ASSERT_EQ(sender.bodies.size(), 3U);
  EXPECT_EQ(sender.bodies[1], R"({"id":"evt_1"})");
  EXPECT_EQ(sender.bodies[2], R"({"id":"evt_2"})");
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(core::VerifyWebhook(secret,
                                    sender.signatures[i],
                                    sender.bodies[i],
                                    core::ToUnixSeconds(clock.Now()),
                                    std::chrono::seconds(300)));
  }
  EXPECT_TRUE(stores.PendingEntries().empty());
}

TEST(EventFactory, BuildsHistoryOnlyEventsWhenWebhooksAreOffAndNoSecretsWhenOn) {
  testing::FakeClock clock;
  testing::CountingRandom random;
  core::Connection c;
  c.account_id = 7;
  c.client_id = kClient;
  c.base_domain = "x.amocrm.ru";
  c.access_token = Secret("secret-access");
  c.refresh_token = Secret("secret-refresh");
  // Webhooks off: the account's history still gets it, the outbox does not.
  const auto off = EventFactory(false, clock, random).Make("account.connected", c);
  ASSERT_EQ(off.size(), 1U);
  EXPECT_FALSE(off[0].deliver);
  EXPECT_EQ(off[0].account_id, 7);
  EXPECT_TRUE(
      EventFactory(false, clock, random).MakeForHost("code.exchange_failed", "x", kClient).empty());
  EXPECT_FALSE(EventFactory(true, clock, random).MakeHistory("token.refreshed", c)[0].deliver);
  auto events = EventFactory(true, clock, random).Make("account.connected", c, R"({"k":1})");
  ASSERT_EQ(events.size(), 1U);
  EXPECT_TRUE(events[0].deliver);
  EXPECT_EQ(events[0].account_id, 7);
  EXPECT_EQ(events[0].client_id, kClient);
  const auto body = boost::json::parse(events[0].body).as_object();
  EXPECT_EQ(body.at("type").as_string(), "account.connected");
  EXPECT_EQ(body.at("account_id").as_int64(), 7);
  EXPECT_EQ(body.at("data").as_object().at("k").as_int64(), 1);
  EXPECT_EQ(body.at("id").as_string().size(), 4U + 32U);
  EXPECT_EQ(events[0].body.find("secret-"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::service
