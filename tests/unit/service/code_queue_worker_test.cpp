// Codes that arrive without a person: the hook's checks, the background exchange, retries until
// the code's 20 minutes end, giving up at once on a permanent failure, and the event either way.
#include "amoauth/service/code_queue_worker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "service_world.hpp"

namespace amoauth::service {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using testing::kClient;
using testing::kExternal;
using testing::RunCo;
using testing::ServiceWorld;

class CodeQueueWorkerTest : public ::testing::Test, protected ServiceWorld {
 protected:
  CodeQueueWorkerTest()
      : worker(flow,
               stores,
               events,
               clock,
               random,
               ioc.get_executor(),
               CodeQueueSettings{.backoff_base = seconds(10), .backoff_cap = minutes(2)}) {}

  static CallbackParams WidgetHook(std::string code, std::string referer = "example.amocrm.ru") {
    return {.code = std::move(code), .referer = std::move(referer), .from_widget = "1"};
  }

  Result<void> Accept(CallbackParams p) { return RunCo(ioc, worker.Accept(std::move(p))); }
  std::size_t RunOnce() { return RunCo(ioc, worker.RunOnce()).value(); }

  std::vector<boost::json::object> EventsOfType(std::string_view type) {
    std::vector<boost::json::object> out;
    for (const auto& e : stores.EnqueuedEvents()) {
      if (e.type == type) {
        out.push_back(boost::json::parse(e.body).as_object());
      }
    }
    return out;
  }

  CodeQueueWorker worker;
};

TEST_F(CodeQueueWorkerTest, AcceptStoresTheCodeAndNeverCallsAmoCrm) {
  ASSERT_TRUE(Accept(WidgetHook("def502-widget-code")).has_value());
  EXPECT_EQ(amo.exchanges, 0);
  const auto queued = stores.QueuedCodes();
  ASSERT_EQ(queued.size(), 1U);
  EXPECT_EQ(queued[0].code.Reveal(), "def502-widget-code");
  EXPECT_EQ(queued[0].account_host, "example.amocrm.ru");
  EXPECT_EQ(queued[0].client_id, kClient);  // no client_id in the hook: ours
  EXPECT_EQ(queued[0].source, CodeSource::kWidget);
  EXPECT_EQ(queued[0].expires_at, clock.Now() + minutes(20));
}

TEST_F(CodeQueueWorkerTest, AcceptRefusesAMissingCodeOrAForeignRefererAndStoresNothing) {
  auto no_code = Accept({.referer = "example.amocrm.ru", .from_widget = "1"});
  ASSERT_FALSE(no_code.has_value());
  EXPECT_EQ(no_code.error(), make_error_code(Errc::kInvalidArgument));
  auto evil = Accept(WidgetHook("def502-code", "example.amocrm.ru.evil.com"));
  ASSERT_FALSE(evil.has_value());
  EXPECT_EQ(evil.error(), make_error_code(Errc::kRefererNotAllowed));
  auto no_referer = Accept({.code = "def502-code", .from_exchange = "1"});
  ASSERT_FALSE(no_referer.has_value());
  EXPECT_TRUE(stores.QueuedCodes().empty());
}

TEST_F(CodeQueueWorkerTest, ARepeatedDeliveryIsQueuedOnce) {
  ASSERT_TRUE(Accept(WidgetHook("def502-same")).has_value());
  ASSERT_TRUE(Accept(WidgetHook("def502-same")).has_value());
  EXPECT_EQ(stores.QueuedCodes().size(), 1U);
}

TEST_F(CodeQueueWorkerTest, ExchangesAQueuedCodeAndConnectsTheAccount) {
  ASSERT_TRUE(Accept(WidgetHook("def502-good")).has_value());
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 1);
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");
  EXPECT_TRUE(stores.QueuedCodes().empty());  // a code is a secret: nothing is kept
  auto row = RunCo(ioc, stores.Find({30000001, kClient})).value();
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->base_domain, "example.amocrm.ru");
  EXPECT_EQ(EventsOfType("account.connected").size(), 1U);
  EXPECT_TRUE(EventsOfType("code.exchange_failed").empty());
}

TEST_F(CodeQueueWorkerTest, RetriesTransientFailuresWithBackoffThenSucceeds) {
  amo.exchange_errors = {Errc::kAmoServerError, Errc::kAmoUnreachable};
  ASSERT_TRUE(Accept(WidgetHook("def502-flaky")).has_value());

  EXPECT_EQ(RunOnce(), 1U);
  auto queued = stores.QueuedCodes();
  ASSERT_EQ(queued.size(), 1U);
  EXPECT_EQ(queued[0].attempts, 1);
  EXPECT_FALSE(queued[0].last_error.empty());
  // Backoff of the first retry: within [base/2, base).
  EXPECT_GE(queued[0].next_attempt_at, clock.Now() + seconds(5));
  EXPECT_LE(queued[0].next_attempt_at, clock.Now() + seconds(10));
  EXPECT_EQ(RunOnce(), 0U);  // not due yet: amoCRM is left alone
  EXPECT_EQ(amo.exchanges, 1);

  clock.Advance(seconds(10));
  EXPECT_EQ(RunOnce(), 1U);  // the second failure
  clock.Advance(seconds(20));
  EXPECT_EQ(RunOnce(), 1U);  // a retry skips the ledger: the first attempt was ours
  EXPECT_EQ(amo.exchanges, 3);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  EXPECT_EQ(EventsOfType("account.connected").size(), 1U);
  EXPECT_TRUE(EventsOfType("code.exchange_failed").empty());
}

TEST_F(CodeQueueWorkerTest, GivesUpWhenTheCodeExpiresWhileAmoCrmIsDown) {
  amo.exchange_error = Errc::kAmoUnreachable;
  ASSERT_TRUE(Accept(WidgetHook("def502-doomed")).has_value());
  const auto received = clock.Now();
  int rounds = 0;
  while (!stores.QueuedCodes().empty() && rounds < 1000) {
    RunOnce();
    clock.Advance(seconds(5));
    ++rounds;
  }
  EXPECT_TRUE(stores.QueuedCodes().empty());
  EXPECT_GT(amo.exchanges, 5);
  EXPECT_LE(amo.exchanges, 20);                                 // backoff: not once per round
  EXPECT_LE(clock.Now() - received, minutes(20) + seconds(5));  // nothing past the 20 minutes
  const auto failed = EventsOfType("code.exchange_failed");
  ASSERT_EQ(failed.size(), 1U);
  EXPECT_EQ(failed[0].at("base_domain").as_string(), "example.amocrm.ru");
  EXPECT_TRUE(failed[0].at("account_id").is_null());
  const auto& data = failed[0].at("data").as_object();
  EXPECT_EQ(data.at("source").as_string(), "widget");
  EXPECT_EQ(data.at("error").as_string(), "amo_unreachable");
  EXPECT_EQ(boost::json::serialize(failed[0]).find("def502-doomed"), std::string::npos);
}

TEST_F(CodeQueueWorkerTest, AMalformedAnswerIsRetriedAndConnectsWhenTheCodeWasNotSpent) {
  amo.exchange_errors = {Errc::kAmoMalformedResponse};
  ASSERT_TRUE(Accept(WidgetHook("def502-garbled")).has_value());
  EXPECT_EQ(RunOnce(), 1U);
  ASSERT_EQ(stores.QueuedCodes().size(), 1U) << "kept for a retry";
  EXPECT_TRUE(EventsOfType("code.exchange_failed").empty());

  clock.Advance(seconds(10));
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 2);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  EXPECT_EQ(EventsOfType("account.connected").size(), 1U);
  EXPECT_TRUE(EventsOfType("code.exchange_failed").empty());
}

TEST_F(CodeQueueWorkerTest, AMalformedAnswerThatSpentTheCodeEndsAtTheRetrysRevokedAndIsReported) {
  amo.exchange_errors = {Errc::kAmoMalformedResponse, Errc::kAmoCodeRevoked};
  ASSERT_TRUE(Accept(WidgetHook("def502-spent")).has_value());
  EXPECT_EQ(RunOnce(), 1U);
  ASSERT_EQ(stores.QueuedCodes().size(), 1U);

  clock.Advance(seconds(10));
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 2);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  const auto failed = EventsOfType("code.exchange_failed");
  ASSERT_EQ(failed.size(), 1U);
  const auto& data = failed[0].at("data").as_object();
  EXPECT_EQ(data.at("error").as_string(), "amo_code_revoked");
  EXPECT_EQ(data.at("attempts").as_int64(), 2);
}

TEST_F(CodeQueueWorkerTest, GivesUpAtOnceOnAPermanentFailure) {
  amo.exchange_error = Errc::kAmoCodeRevoked;
  ASSERT_TRUE(Accept({.code = "def502-used", .referer = "example.amocrm.ru", .from_exchange = "1"})
                  .has_value());
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 1);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  const auto failed = EventsOfType("code.exchange_failed");
  ASSERT_EQ(failed.size(), 1U);
  const auto& data = failed[0].at("data").as_object();
  EXPECT_EQ(data.at("source").as_string(), "exchange");
  EXPECT_EQ(data.at("error").as_string(), "amo_code_revoked");
  EXPECT_EQ(data.at("attempts").as_int64(), 1);
}

TEST_F(CodeQueueWorkerTest, ACodeForAnotherIntegrationIsNeverSentWithOurSecret) {
  ASSERT_TRUE(Accept({.code = "def502-foreign",
                      .referer = "example.amocrm.ru",
                      .client_id = "99999999-0000-0000-0000-000000000000",
                      .from_widget = "1"})
                  .has_value());
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 0);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  EXPECT_EQ(EventsOfType("code.exchange_failed").size(), 1U);
}

TEST_F(CodeQueueWorkerTest, ACodeForOneOfOurExternalIntegrationsIsExchangedWithItsKeys) {
  ASSERT_TRUE(AddExternalIntegration());
  amo.token_client_id = kExternal;
  ASSERT_TRUE(Accept({.code = "def502-external",
                      .referer = "example.amocrm.ru",
                      .client_id = kExternal,
                      .from_widget = "1"})
                  .has_value());
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 1);
  EXPECT_EQ(amo.last_secret, "external-secret");
  EXPECT_TRUE(RunCo(ioc, stores.Find({30000001, kExternal})).value().has_value());
}

TEST_F(CodeQueueWorkerTest, ACodeAlreadyExchangedElsewhereIsNotSentAgain) {
  // The same code pasted by hand first (exchange-code): the ledger has it.
  ASSERT_TRUE(
      RunCo(ioc, flow.ExchangePastedCode(Secret("def502-twice"), "example.amocrm.ru")).has_value());
  ASSERT_TRUE(Accept(WidgetHook("def502-twice")).has_value());
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 1);
  EXPECT_EQ(EventsOfType("code.exchange_failed").size(), 1U);
}

TEST_F(CodeQueueWorkerTest, AClaimThatIsNeverFinishedComesBack) {
  ASSERT_TRUE(Accept(WidgetHook("def502-crash")).has_value());
  // A process claims it and dies before reporting.
  auto claimed = RunCo(ioc, stores.ClaimDueCodes(clock.Now(), clock.Now() + seconds(30), 8));
  ASSERT_EQ(claimed.value().size(), 1U);
  EXPECT_EQ(RunOnce(), 0U);  // still claimed
  clock.Advance(seconds(31));
  EXPECT_EQ(RunOnce(), 1U);  // the claim ended: exchanged by this worker
  EXPECT_EQ(amo.exchanges, 1);
  EXPECT_EQ(EventsOfType("account.connected").size(), 1U);
}

TEST_F(CodeQueueWorkerTest, ACodeLeftPastItsLifetimeIsGivenUpWithoutCallingAmoCrm) {
  ASSERT_TRUE(Accept(WidgetHook("def502-stale")).has_value());
  clock.Advance(minutes(21));  // every process was down meanwhile
  EXPECT_EQ(RunOnce(), 1U);
  EXPECT_EQ(amo.exchanges, 0);
  EXPECT_TRUE(stores.QueuedCodes().empty());
  const auto failed = EventsOfType("code.exchange_failed");
  ASSERT_EQ(failed.size(), 1U);
  EXPECT_EQ(failed[0].at("data").at("error").as_string(), "amo_code_expired");
}

TEST_F(CodeQueueWorkerTest, RunExchangesACodeAsSoonAsItIsAccepted) {
  // The poll interval is long: only the wake-up from Accept can make this quick.
  CodeQueueWorker woken(flow,
                        stores,
                        events,
                        clock,
                        random,
                        ioc.get_executor(),
                        CodeQueueSettings{.interval = std::chrono::hours(1)});
  boost::asio::co_spawn(woken.Executor(), woken.Run(), boost::asio::detached);
  RunCo(ioc, woken.Accept(WidgetHook("def502-wake"))).value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (amo.exchanges == 0 && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(amo.exchanges, 1);
  woken.Stop();
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace amoauth::service
