// Legacy API keys → OAuth (protocol §6): the host check, amoCRM's limit held locally, legacy-login.
#include "amoauth/service/api_key_exchange.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "service_world.hpp"

namespace amoauth::service {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using testing::kClient;
using testing::RunCo;
using testing::ServiceWorld;

class ApiKeyExchangeTest : public ::testing::Test, protected ServiceWorld {
 protected:
  ApiKeyExchangeTest()
      : exchange(directory.Primary(),
                 core::RefererPolicy({"amocrm.ru", "kommo.com"}),
                 amo,
                 stores,
                 stores,
                 clock) {}

  Result<ApiKeyExchangeOutcome> Request(std::string login,
                                        std::string domain = "example.amocrm.ru") {
    return RunCo(ioc, exchange.Request(std::move(login), Secret("api-key-1"), std::move(domain)));
  }

  ApiKeyExchange exchange;
};

TEST_F(ApiKeyExchangeTest, SendsOurIntegrationAndTheUsersKeyToTheAccountHost) {
  auto outcome = Request("user@example.com");
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message();
  EXPECT_TRUE(outcome->requested);
  EXPECT_EQ(outcome->next_allowed_at, clock.Now() + minutes(5));
  EXPECT_EQ(amo.api_key_exchanges, 1);
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");
  ASSERT_TRUE(amo.last_api_key_request.has_value());
  EXPECT_EQ(amo.last_api_key_request->login, "user@example.com");
  EXPECT_EQ(amo.last_api_key_request->api_key.Reveal(), "api-key-1");
  EXPECT_EQ(amo.last_api_key_request->client_uuid, kClient);
  EXPECT_EQ(amo.last_api_key_request->client_secret.Reveal(), "s3cr3t");
}

TEST_F(ApiKeyExchangeTest, AHostOutsideTheAllowListGetsNothing) {
  auto outcome = Request("user@example.com", "example.amocrm.ru.evil.com");
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error(), make_error_code(Errc::kRefererNotAllowed));
  EXPECT_EQ(amo.api_key_exchanges, 0);
}

TEST_F(ApiKeyExchangeTest, HoldsAmoCrmsLimitOfOneCallPerFiveMinutesPerUser) {
  ASSERT_TRUE(Request("user@example.com")->requested);
  const auto first_at = clock.Now();
  clock.Advance(seconds(90));
  auto again = Request("USER@example.com");  // the same login, another spelling
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->requested);
  EXPECT_EQ(again->next_allowed_at, first_at + minutes(5));
  EXPECT_EQ(amo.api_key_exchanges, 1);  // amoCRM never saw the second

  EXPECT_TRUE(Request("other@example.com")->requested);  // another user is not held back
  clock.Advance(minutes(4));                             // 5:30 after the first
  EXPECT_TRUE(Request("user@example.com")->requested);
  EXPECT_EQ(amo.api_key_exchanges, 3);
}

TEST_F(ApiKeyExchangeTest, AmoCrmsOwnTooOftenIsReportedAsThrottled) {
  amo.api_key_error = Errc::kAmoApiKeyTooOften;
  auto outcome = Request("user@example.com");
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->requested);
  EXPECT_EQ(outcome->next_allowed_at, clock.Now() + minutes(5));
}

TEST_F(ApiKeyExchangeTest, AmoCrmRefusalsAreErrorsWithTheirOwnCodes) {
  amo.api_key_error = Errc::kAmoApiKeyRejected;
  auto outcome = Request("user@example.com");
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error(), make_error_code(Errc::kAmoApiKeyRejected));
}

TEST_F(ApiKeyExchangeTest, ACallAmoCrmDidNotProcessGivesTheSlotBackForAnImmediateRetry) {
  for (const Errc unprocessed : {Errc::kAmoUnreachable, Errc::kAmoServerError}) {
    SCOPED_TRACE(make_error_code(unprocessed).message());
    const int before = amo.api_key_exchanges;
    amo.api_key_error = unprocessed;
    auto failed = Request("user@example.com");
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error(), make_error_code(unprocessed));

    amo.api_key_error.reset();
    clock.Advance(seconds(1));
    auto retried = Request("user@example.com");
    ASSERT_TRUE(retried.has_value()) << retried.error().message();
    EXPECT_TRUE(retried->requested);
    EXPECT_EQ(amo.api_key_exchanges, before + 2);
    clock.Advance(minutes(5));  // the successful retry's own slot ends
  }
}

TEST_F(ApiKeyExchangeTest, ADefiniteAnswerKeepsTheSlot) {
  for (const Errc definite :
       {Errc::kAmoApiKeyRejected, Errc::kAmoApiKeyForbidden, Errc::kAmoRejected}) {
    SCOPED_TRACE(make_error_code(definite).message());
    const int before = amo.api_key_exchanges;
    amo.api_key_error = definite;
    ASSERT_FALSE(Request("user@example.com").has_value());

    amo.api_key_error.reset();
    clock.Advance(seconds(1));
    auto retried = Request("user@example.com");
    ASSERT_TRUE(retried.has_value());
    EXPECT_FALSE(retried->requested);
    EXPECT_EQ(retried->next_allowed_at, clock.Now() - seconds(1) + minutes(5));
    EXPECT_EQ(amo.api_key_exchanges, before + 1);  // the retry never reached amoCRM
    clock.Advance(minutes(5));
  }
}

TEST_F(ApiKeyExchangeTest, AmoCrmsOwnTooOftenKeepsTheSlot) {
  amo.api_key_error = Errc::kAmoApiKeyTooOften;
  ASSERT_TRUE(Request("user@example.com").has_value());
  amo.api_key_error.reset();
  clock.Advance(seconds(1));
  auto retried = Request("user@example.com");
  ASSERT_TRUE(retried.has_value());
  EXPECT_FALSE(retried->requested);
  EXPECT_EQ(amo.api_key_exchanges, 1);
}

TEST_F(ApiKeyExchangeTest, LegacyLoginReportsTheConnectionAndAThrottledExchangeIsNoError) {
  core::Connection c;
  c.account_id = 30000001;
  c.client_id = kClient;
  c.base_domain = "example.amocrm.ru";
  c.access_token = Secret("a");
  ASSERT_TRUE(RunCo(ioc, stores.Upsert(c, {})).has_value());

  auto first =
      RunCo(ioc, exchange.LegacyLogin("user@example.com", Secret("k"), "Example.amocrm.ru"));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->exchange.has_value());
  EXPECT_TRUE(first->exchange->requested);
  ASSERT_TRUE(first->connection.has_value());
  EXPECT_EQ(first->connection->account_id, 30000001);

  auto second =
      RunCo(ioc, exchange.LegacyLogin("user@example.com", Secret("k"), "example.amocrm.ru"));
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->exchange.has_value());
  EXPECT_FALSE(second->exchange->requested);
  EXPECT_EQ(amo.api_key_exchanges, 1);

  auto unknown = RunCo(ioc, exchange.LegacyLogin("u@example.com", Secret("k"), "other.amocrm.ru"));
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(unknown->connection.has_value());
}

TEST_F(ApiKeyExchangeTest, LegacyLoginCarriesAFailedExchangeInItsOutcome) {
  amo.api_key_error = Errc::kAmoApiKeyForbidden;
  auto outcome =
      RunCo(ioc, exchange.LegacyLogin("u@example.com", Secret("k"), "example.amocrm.ru"));
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->exchange.has_value());
  EXPECT_EQ(outcome->exchange_error, make_error_code(Errc::kAmoApiKeyForbidden));
}

}  // namespace
}  // namespace amoauth::service
