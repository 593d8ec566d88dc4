#include "amoauth/service/connect_flow.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/state_token.hpp"
#include "service_world.hpp"

namespace amoauth::service {
namespace {

using testing::kClient;
using testing::kExternal;
using testing::RunCo;
using testing::ServiceWorld;

class ConnectFlowTest : public ::testing::Test, protected ServiceWorld {
 protected:
  std::string NewState() {
    auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPopup));
    EXPECT_TRUE(start.has_value());
    return start->state;
  }

  Result<core::Connection> Callback(CallbackParams p) {
    return RunCo(ioc, flow.CompleteCallback(std::move(p))).connection;
  }
};

TEST_F(ConnectFlowTest, StartStoresOnlyTheStateHashAndBuildsTheConsentUrl) {
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPostMessage));
  ASSERT_TRUE(start);
  EXPECT_EQ(start->expires_at, clock.Now() + std::chrono::minutes(20));
  auto url = boost::urls::parse_uri(start->authorize_url);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host(), "www.amocrm.ru");
  EXPECT_EQ((*url->params().find("client_id")).value, kClient);
  EXPECT_EQ((*url->params().find("state")).value, start->state);
  EXPECT_EQ((*url->params().find("mode")).value, "post_message");
  // Stored by hash: the raw state is not a key the store knows.
  EXPECT_FALSE(RunCo(ioc, stores.Take(start->state, clock.Now())).value().has_value());
  EXPECT_TRUE(
      RunCo(ioc, stores.Take(core::HashState(start->state), clock.Now())).value().has_value());
}

TEST_F(ConnectFlowTest, ExchangesOnceAndStoresTheConnection) {
  const std::string state = NewState();
  auto c = Callback({.code = "def50200code", .referer = "example.amocrm.ru", .state = state});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->account_id, 30000001);
  EXPECT_EQ(c->base_domain, "example.amocrm.ru");
  EXPECT_EQ(c->api_domain, "api-b.amocrm.ru");
  EXPECT_EQ(c->user_id, "10000001");
  EXPECT_EQ(c->expires_at, clock.Now() + std::chrono::seconds(86400));
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");
  EXPECT_EQ(amo.last_secret, "s3cr3t");
  // The scheduler's bookkeeping starts at the exchange: refresh an hour ahead of expiry.
  EXPECT_EQ(c->last_refresh_at, clock.Now());
  EXPECT_EQ(c->next_refresh_at, c->expires_at - std::chrono::hours(1));
  // The backend hears of it, from the same transaction.
  auto queued = stores.EnqueuedEvents();
  ASSERT_EQ(queued.size(), 1U);
  EXPECT_EQ(queued[0].type, "account.connected");
  EXPECT_NE(queued[0].body.find("\"account_id\":30000001"), std::string::npos);
  EXPECT_EQ(queued[0].body.find("def50200"), std::string::npos) << "no token in events";

  // The same redirect again: the state is spent, amoCRM is not asked twice.
  auto again = Callback({.code = "def50200code", .referer = "example.amocrm.ru", .state = state});
  EXPECT_TRUE(Is(again.error(), Errc::kStateInvalid));
  EXPECT_EQ(amo.exchanges.load(), 1);
}

TEST_F(ConnectFlowTest, BadRefererStopsBeforeTheStateAndBeforeAmoCrm) {
  const std::string state = NewState();
  auto r = Callback({.code = "c", .referer = "example.amocrm.ru.evil.example", .state = state});
  EXPECT_TRUE(Is(r.error(), Errc::kRefererNotAllowed));
  EXPECT_EQ(amo.exchanges.load(), 0);
  EXPECT_EQ(stores.PendingStates(), 1U);
}

TEST_F(ConnectFlowTest, DeniedConsumesTheState) {
  const std::string state = NewState();
  auto r = Callback({.state = state, .error = "access_denied"});
  EXPECT_TRUE(Is(r.error(), Errc::kAccessDenied));
  EXPECT_EQ(stores.PendingStates(), 0U);
  EXPECT_EQ(amo.exchanges.load(), 0);
}

TEST_F(ConnectFlowTest, OutcomeCarriesTheModeTheStateWasIssuedFor) {
  // The callback page answers per mode (post_message tells the opener), so the mode must come
  // back from the state, on success and on a deny alike.
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPostMessage));
  ASSERT_TRUE(start);
  auto ok =
      RunCo(ioc,
            flow.CompleteCallback(
                {.code = "def50200a", .referer = "example.amocrm.ru", .state = start->state}));
  ASSERT_TRUE(ok.connection) << ok.connection.error().message();
  EXPECT_EQ(ok.mode, core::ConsentMode::kPostMessage);

  auto second = RunCo(ioc, flow.Start(core::ConsentMode::kPostMessage));
  ASSERT_TRUE(second);
  auto denied =
      RunCo(ioc, flow.CompleteCallback({.state = second->state, .error = "access_denied"}));
  EXPECT_TRUE(Is(denied.connection.error(), Errc::kAccessDenied));
  EXPECT_EQ(denied.mode, core::ConsentMode::kPostMessage);

  // No state of ours: the default, popup.
  auto unknown = RunCo(ioc, flow.CompleteCallback({.error = "access_denied"}));
  EXPECT_EQ(unknown.mode, core::ConsentMode::kPopup);
}

TEST_F(ConnectFlowTest, ExpiredOrForeignStateIsRefused) {
  const std::string state = NewState();
  clock.Advance(std::chrono::minutes(20));
  EXPECT_TRUE(Is(Callback({.code = "c", .referer = "example.amocrm.ru", .state = state}).error(),
                 Errc::kStateInvalid));
  EXPECT_TRUE(
      Is(Callback({.code = "c", .referer = "example.amocrm.ru"}).error(), Errc::kStateInvalid));
  EXPECT_TRUE(Is(
      Callback({.code = "c", .referer = "example.amocrm.ru", .state = core::GenerateState(random)})
          .error(),
      Errc::kStateInvalid));
  EXPECT_TRUE(Is(Callback({.referer = "example.amocrm.ru", .state = NewState()}).error(),
                 Errc::kInvalidArgument));
  EXPECT_EQ(amo.exchanges.load(), 0);
}

TEST_F(ConnectFlowTest, PastedCodeIsExchangedAtMostOnce) {
  auto first = RunCo(ioc, flow.ExchangePastedCode(Secret("def50200pasted"), "example.amocrm.ru"));
  ASSERT_TRUE(first);
  auto second = RunCo(ioc, flow.ExchangePastedCode(Secret("def50200pasted"), "example.amocrm.ru"));
  EXPECT_TRUE(Is(second.error(), Errc::kCodeAlreadyUsed));
  EXPECT_EQ(amo.exchanges.load(), 1);
  EXPECT_TRUE(Is(RunCo(ioc, flow.ExchangePastedCode(Secret("x"), "evil.example")).error(),
                 Errc::kRefererNotAllowed));
}

TEST_F(ConnectFlowTest, AmoCrmRefusalStoresNothing) {
  amo.exchange_error = Errc::kAmoCodeExpired;
  auto r = Callback({.code = "c", .referer = "example.amocrm.ru", .state = NewState()});
  EXPECT_TRUE(Is(r.error(), Errc::kAmoCodeExpired));
  EXPECT_TRUE(RunCo(ioc, stores.List()).value().empty());
  EXPECT_TRUE(stores.EnqueuedEvents().empty());
}

TEST_F(ConnectFlowTest, TokenOfAnotherIntegrationIsNotStored) {
  amo.token_client_id = "99999999-0000-0000-0000-000000000000";
  auto r = Callback({.code = "c", .referer = "example.amocrm.ru", .state = NewState()});
  EXPECT_TRUE(Is(r.error(), Errc::kAmoMalformedResponse));
  EXPECT_TRUE(RunCo(ioc, stores.List()).value().empty());
}

// The backend names a flow when it starts it; the account.connected of the connection that flow
// makes, and only that one, hands the name back (security.md, threat 1).
TEST_F(ConnectFlowTest, AFlowsReferenceComesBackWithItsAccountConnectedOnly) {
  auto named =
      RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kConnect, "user-8812"));
  ASSERT_TRUE(named);
  EXPECT_EQ(named->reference, "user-8812");
  const std::string unnamed = NewState();

  auto first = Callback({.code = "def50200one", .referer = "example.amocrm.ru", .state = unnamed});
  ASSERT_TRUE(first) << first.error().message();
  auto second =
      Callback({.code = "def50200two", .referer = "example.amocrm.ru", .state = named->state});
  ASSERT_TRUE(second) << second.error().message();
  const auto queued = stores.EnqueuedEvents();
  ASSERT_EQ(queued.size(), 2U);
  EXPECT_EQ(boost::json::parse(queued[0].body).at("data"), boost::json::object{});
  EXPECT_EQ(boost::json::parse(queued[1].body).at("data"),
            (boost::json::object{{"reference", "user-8812"}}));

  // Bad forms are refused before any state is stored.
  for (const std::string& bad : {std::string(201, 'r'), std::string("a\nb"), std::string("\x7f")}) {
    auto refused = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kConnect, bad));
    ASSERT_FALSE(refused);
    EXPECT_TRUE(Is(refused.error(), Errc::kInvalidArgument));
  }
  EXPECT_TRUE(LooksLikeFlowReference(std::string(200, 'r')));
  EXPECT_TRUE(LooksLikeFlowReference("пользователь 42"));
  EXPECT_FALSE(LooksLikeFlowReference(""));
}

// ---- External integrations: the metadata button and the secrets webhook (protocol §2.2, §5) ----

TEST_F(ConnectFlowTest, SecretsFirstThenTheRedirectExchangesWithTheNewIntegrationsKeys) {
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(start);
  EXPECT_TRUE(start->authorize_url.empty()) << "the metadata button builds its own URL";
  auto accepted = RunCo(ioc,
                        flow.AcceptSecrets({.client_id = kExternal,
                                            .client_secret = Secret("external-secret"),
                                            .state = start->state}));
  ASSERT_TRUE(accepted) << accepted.error().message();

  amo.token_client_id = kExternal;
  auto c = Callback({.code = "def50200ext",
                     .referer = "example.amocrm.ru",
                     .state = start->state,
                     .client_id = kExternal});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->client_id, kExternal) << "tokens are keyed by (account, integration)";
  EXPECT_EQ(amo.last_client_id, kExternal);
  EXPECT_EQ(amo.last_secret, "external-secret");
}

TEST_F(ConnectFlowTest, CodeFirstWaitsForTheSecretsThenExchanges) {
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(start);
  amo.token_client_id = kExternal;
  std::optional<CallbackOutcome> outcome;
  boost::asio::co_spawn(
      ioc,
      flow.CompleteCallback(
          {.code = "def50200early", .referer = "example.amocrm.ru", .state = start->state}),
      [&](std::exception_ptr e, CallbackOutcome o) {
        ASSERT_FALSE(e);
        outcome = std::move(o);
      });
  // The redirect is now waiting (it has consumed the state); the secrets still count.
  ioc.run_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(outcome.has_value()) << "it must wait for the keys";
  EXPECT_EQ(amo.exchanges.load(), 0);
  bool accepted = false;
  boost::asio::co_spawn(
      ioc,
      flow.AcceptSecrets(
          {.client_id = kExternal, .client_secret = Secret("late-secret"), .state = start->state}),
      [&](std::exception_ptr e, Result<void> r) {
        ASSERT_FALSE(e);
        accepted = r.has_value();
      });
  ioc.restart();
  while (!outcome && ioc.run_one_for(std::chrono::seconds(5)) > 0) {
  }
  ASSERT_TRUE(accepted) << "the keys are accepted while their redirect waits";
  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(outcome->connection) << outcome->connection.error().message();
  EXPECT_EQ(outcome->connection->client_id, kExternal);
  EXPECT_EQ(amo.last_secret, "late-secret");
}

TEST_F(ConnectFlowTest, RedirectGivesUpWhenTheSecretsNeverCome) {
  IntegrationDirectory dir({.client_id = kClient, .client_secret = Secret("s3cr3t")}, stores);
  ConnectFlow impatient = NewFlow(dir,
                                  FlowSettings{.secrets_wait = std::chrono::milliseconds(30)},
                                  core::RefererPolicy({"amocrm.ru"}));
  auto start =
      RunCo(ioc, impatient.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(start);
  auto o = RunCo(ioc,
                 impatient.CompleteCallback(
                     {.code = "def50200x", .referer = "example.amocrm.ru", .state = start->state}));
  EXPECT_TRUE(Is(o.connection.error(), Errc::kSecretsNotReceived));
  EXPECT_EQ(amo.exchanges.load(), 0);
}

TEST_F(ConnectFlowTest, ForgedOrMisdirectedSecretsAreRefusedAndStoreNothing) {
  auto secrets = [&](std::string state, std::string client_id = kExternal) {
    return RunCo(ioc,
                 flow.AcceptSecrets({.client_id = std::move(client_id),
                                     .client_secret = Secret("x"),
                                     .state = std::move(state)}));
  };
  // A state we never issued.
  EXPECT_TRUE(Is(secrets(core::GenerateState(random)).error(), Errc::kStateInvalid));
  // Not a state at all.
  EXPECT_TRUE(Is(secrets("123qwe").error(), Errc::kStateInvalid));
  // A state of the standard button: no integration is being created for it.
  EXPECT_TRUE(Is(secrets(NewState()).error(), Errc::kStateInvalid));
  // An expired metadata state.
  auto old = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  clock.Advance(std::chrono::minutes(20));
  EXPECT_TRUE(Is(secrets(old->state).error(), Errc::kStateInvalid));
  // Malformed keys.
  auto fresh = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  EXPECT_TRUE(Is(secrets(fresh->state, "").error(), Errc::kInvalidArgument));
  EXPECT_TRUE(Is(secrets(fresh->state, "<script>").error(), Errc::kInvalidArgument));
  EXPECT_FALSE(RunCo(ioc, stores.FindIntegration(kExternal)).value().has_value());
}

TEST_F(ConnectFlowTest, ReplayedSecretsAreRefusedBeforeAndAfterTheRedirect) {
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  SecretsDelivery first{
      .client_id = kExternal, .client_secret = Secret("first"), .state = start->state};
  ASSERT_TRUE(RunCo(ioc, flow.AcceptSecrets(first)));
  SecretsDelivery again{.client_id = "ffffffff-0000-0000-0000-000000000000",
                        .client_secret = Secret("attacker"),
                        .state = start->state};
  EXPECT_TRUE(Is(RunCo(ioc, flow.AcceptSecrets(again)).error(), Errc::kSecretsAlreadyReceived));

  amo.token_client_id = kExternal;
  ASSERT_TRUE(
      Callback({.code = "def50200r", .referer = "example.amocrm.ru", .state = start->state}));
  // The redirect consumed the state: a late replay finds nothing to attach to.
  EXPECT_TRUE(Is(RunCo(ioc, flow.AcceptSecrets(again)).error(), Errc::kStateInvalid));
  EXPECT_EQ(RunCo(ioc, stores.FindIntegration(kExternal)).value()->client_secret.Reveal(), "first");
}

TEST_F(ConnectFlowTest, RedirectNamingAnotherIntegrationThanItsStateIsRefused) {
  auto start = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(
      RunCo(ioc,
            flow.AcceptSecrets(
                {.client_id = kExternal, .client_secret = Secret("k"), .state = start->state})));
  auto r = Callback({.code = "def50200m",
                     .referer = "example.amocrm.ru",
                     .state = start->state,
                     .client_id = "99999999-0000-0000-0000-000000000000"});
  EXPECT_TRUE(Is(r.error(), Errc::kStateInvalid));
  EXPECT_EQ(amo.exchanges.load(), 0);
}

TEST_F(ConnectFlowTest, KeysNobodyConnectedWithAreForgottenAfterAnHourWhenNewOnesArrive) {
  // A stranger mints metadata states and delivers keys of its own for each: no connection
  // follows.
  auto junk = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(RunCo(ioc,
                    flow.AcceptSecrets({.client_id = "dddddddd-0000-0000-0000-000000000000",
                                        .client_secret = Secret("junk"),
                                        .state = junk->state})));
  // A person's flow that did connect.
  auto real = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(
      RunCo(ioc,
            flow.AcceptSecrets(
                {.client_id = kExternal, .client_secret = Secret("k"), .state = real->state})));
  amo.token_client_id = kExternal;
  ASSERT_TRUE(
      Callback({.code = "def50200c", .referer = "example.amocrm.ru", .state = real->state}));

  // Within the hour, new keys leave both alone.
  clock.Advance(std::chrono::minutes(59));
  auto within = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(RunCo(ioc,
                    flow.AcceptSecrets({.client_id = "eeeeeeee-0000-0000-0000-000000000000",
                                        .client_secret = Secret("e"),
                                        .state = within->state})));
  EXPECT_TRUE(RunCo(ioc, stores.FindIntegration("dddddddd-0000-0000-0000-000000000000")).value());

  // Past it, the next delivery forgets the unconnected one; the connected one stays.
  clock.Advance(std::chrono::minutes(2));
  auto later = RunCo(ioc, flow.Start(core::ConsentMode::kPopup, StatePurpose::kCreateIntegration));
  ASSERT_TRUE(RunCo(ioc,
                    flow.AcceptSecrets({.client_id = "ffffffff-1111-0000-0000-000000000000",
                                        .client_secret = Secret("f"),
                                        .state = later->state})));
  EXPECT_FALSE(RunCo(ioc, stores.FindIntegration("dddddddd-0000-0000-0000-000000000000")).value());
  EXPECT_TRUE(RunCo(ioc, stores.FindIntegration(kExternal)).value());
  EXPECT_TRUE(RunCo(ioc, stores.FindIntegration("eeeeeeee-0000-0000-0000-000000000000")).value());
}

TEST(CallbackParams, NoParameterAtAllIsTheProbe) {
  EXPECT_TRUE(CallbackParams{}.IsProbe());
  EXPECT_FALSE(CallbackParams{.state = ""}.IsProbe());
}

}  // namespace
}  // namespace amoauth::service
