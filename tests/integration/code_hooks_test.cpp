// Codes that arrive without a person, end to end against the sandbox (issue 4, items 3 and 4):
// the widget-install hook answered at once while amoCRM's token endpoint is slow, then exchanged
// in the background; exchange_api_key → 202 → the from_exchange hook → a connected account, with
// amoCRM's limit of one call per 5 minutes held locally.
#include <chrono>
#include <thread>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "amoauth/core/iso_time.hpp"
#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Steady = std::chrono::steady_clock;

constexpr std::int64_t kAccount = 30000001;

/// Waits (bounded) until `done()` holds; checks every 20 ms.
template <class Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit) {
  const auto deadline = Steady::now() + limit;
  while (!done()) {
    if (Steady::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class QueuedCodesTest : public ::testing::Test {
 protected:
  boost::json::object SandboxConfig(const boost::json::object& patch) {
    auto r = h.SandboxPost("/sandbox/config", "application/json", boost::json::serialize(patch));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? boost::json::parse(r.body).as_object() : boost::json::object{};
  }

  /// The sandbox's "install widget" for our integration: it sends the hook and reports.
  boost::json::object InstallWidget() {
    auto r = h.SandboxPost("/sandbox/accounts/" + std::to_string(kAccount) + "/install-widget",
                           "application/json",
                           boost::json::serialize(boost::json::object{
                               {"client_id", h.SandboxIntegration().client_id}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return boost::json::parse(r.body).as_object();
  }

  std::optional<core::Connection> Row() {
    auto row = h.Await(h.Store().Find({kAccount, h.SandboxIntegration().client_id}));
    return row ? *row : std::nullopt;
  }

  std::size_t Queued() { return h.Await(h.Store().CountQueued()).value(); }

  /// The sandbox account's user: {login, api_key}.
  boost::json::object SandboxUser() {
    auto r = h.Get(h.SandboxUrl() + "/sandbox/accounts");
    EXPECT_EQ(r.status, 200) << r.body;
    const boost::json::value accounts = boost::json::parse(r.body);
    for (const auto& account : accounts.as_array()) {
      if (account.as_object().at("id").as_int64() == kAccount) {
        return account.as_object().at("users").as_array().at(0).as_object();
      }
    }
    ADD_FAILURE() << "no sandbox account " << kAccount;
    return {};
  }

  net::HttpResponse CallbackHook(const std::string& query) {
    return h.Get(h.BaseUrl() + "/api/v1/integrations/amo-crm/callback?" + query);
  }

  ServiceHarness h;
};

TEST_F(QueuedCodesTest, WidgetHookIsAnsweredAtOnceWhileTheTokenEndpointIsSlowThenExchanged) {
  SandboxConfig({{"token_delay_ms", 5000}});
  const auto started = Steady::now();
  const auto report = InstallWidget();
  ASSERT_TRUE(report.at("delivered").as_bool()) << boost::json::serialize(report);
  EXPECT_EQ(report.at("status").as_int64(), 200);
  // amoCRM waits 3 s at most and never retries: the answer must not wait for the exchange.
  EXPECT_LT(report.at("elapsed_ms").as_int64(), 50) << boost::json::serialize(report);

  // Then the background exchange, which waits the 5 s of amoCRM's token endpoint.
  ASSERT_TRUE(WaitFor([&] { return Row().has_value(); }, std::chrono::seconds(30)));
  EXPECT_GE(Steady::now() - started, std::chrono::milliseconds(4900));
  const auto row = Row();
  EXPECT_EQ(row->base_domain, "example.amocrm.ru");
  EXPECT_EQ(row->status, core::ConnectionStatus::kActive);
  EXPECT_TRUE(WaitFor([&] { return Queued() == 0; }, std::chrono::seconds(5)));
  auto token = h.Call("GET", "/v1/accounts/30000001/token");
  EXPECT_EQ(token.status, 200) << token.body;
  EXPECT_EQ(h.SandboxCounters().at("codes_exchanged").as_int64(), 1);
}

TEST_F(QueuedCodesTest, HooksWithoutACodeOrFromAForeignHostAreRefusedAndNothingIsStored) {
  auto no_code = CallbackHook("referer=example.amocrm.ru&from_widget=1");
  EXPECT_EQ(no_code.status, 400);
  EXPECT_THAT(no_code.body, HasSubstr("invalid_request"));
  EXPECT_THAT(no_code.body, HasSubstr("needs a code and a referer"));

  auto foreign = CallbackHook("code=def50200abc&referer=example.amocrm.ru.evil.com&from_widget=1");
  EXPECT_EQ(foreign.status, 400);
  EXPECT_THAT(foreign.body, HasSubstr("referer_not_allowed"));
  EXPECT_THAT(foreign.body, Not(HasSubstr("def50200abc")));

  auto no_referer = CallbackHook("code=def50200abc&from_exchange=1");
  EXPECT_EQ(no_referer.status, 400);

  EXPECT_EQ(Queued(), 0U);
  EXPECT_EQ(h.amo_counter->calls, 0);
}

TEST_F(QueuedCodesTest, ExchangeApiKeyEndToEndThenTheSecondCallIsRefusedLocally) {
  // amoCRM exchanges keys only for an integration installed in the account (protocol §6).
  h.Connect(kAccount);
  ASSERT_EQ(Row()->version, 1);
  const auto user = SandboxUser();
  const std::string request =
      boost::json::serialize(boost::json::object{{"login", user.at("login")},
                                                 {"api_key", user.at("api_key")},
                                                 {"domain", "example.amocrm.ru"}});

  auto first = h.Call("POST", "/v1/exchange-api-key", request);
  ASSERT_EQ(first.status, 202) << first.body;
  const auto answer = boost::json::parse(first.body).as_object();
  EXPECT_EQ(answer.at("status").as_string(), "requested");
  const auto next_allowed = core::ParseIsoTime(answer.at("next_allowed_at").as_string());
  ASSERT_TRUE(next_allowed.has_value());
  EXPECT_EQ(*next_allowed, h.clock.Now() + std::chrono::minutes(5));

  // The code comes back to the Redirect URI with from_exchange=1 and is exchanged: a new pair.
  ASSERT_TRUE(WaitFor([&] { return Row() && Row()->version == 2; }, std::chrono::seconds(20)));
  EXPECT_EQ(Row()->status, core::ConnectionStatus::kActive);
  EXPECT_EQ(h.SandboxCounters().at("codes_exchanged").as_int64(), 2);

  h.clock.Advance(std::chrono::seconds(60));
  auto second = h.Call("POST", "/v1/exchange-api-key", request);
  EXPECT_EQ(second.status, 429) << second.body;
  const auto refusal = boost::json::parse(second.body).as_object();
  EXPECT_EQ(refusal.at("error").as_string(), "exchange_too_soon");
  EXPECT_EQ(core::ParseIsoTime(refusal.at("retry_at").as_string()), next_allowed);
  EXPECT_THAT(std::string(refusal.at("message").as_string()), HasSubstr("next is allowed at"));
  EXPECT_EQ(second.headers.Get("Retry-After").value_or(""), "240");
  // amoCRM never saw the second call.
  EXPECT_EQ(h.SandboxCounters().at("exchange_api_key_requests").as_int64(), 1);

  // The migrating backend's legacy login: a throttled conversion is no error there.
  auto legacy = h.Call("POST", "/v1/legacy-login", request);
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  const auto login = boost::json::parse(legacy.body).as_object();
  EXPECT_EQ(login.at("exchange").as_string(), "throttled");
  EXPECT_EQ(login.at("oauth").at("connected").as_bool(), true);
  EXPECT_EQ(login.at("oauth").at("account_id").as_int64(), kAccount);
  EXPECT_EQ(login.at("oauth").at("status").as_string(), "active");
  EXPECT_THAT(legacy.body, Not(HasSubstr(std::string(user.at("api_key").as_string()))));
}

TEST_F(QueuedCodesTest, ExchangeApiKeyRefusesBadInputAndForeignHostsInWords) {
  auto no_body = h.Call("POST", "/v1/exchange-api-key", "[]");
  EXPECT_EQ(no_body.status, 400);
  EXPECT_THAT(no_body.body, HasSubstr("JSON object"));
  auto no_key = h.Call("POST",
                       "/v1/exchange-api-key",
                       R"({"login":"a@example.com","api_key":"","domain":"example.amocrm.ru"})");
  EXPECT_EQ(no_key.status, 400);
  EXPECT_THAT(no_key.body, HasSubstr("\\\"api_key\\\""));
  auto foreign = h.Call("POST",
                        "/v1/exchange-api-key",
                        R"({"login":"a@example.com","api_key":"k","domain":"evil.example.com"})");
  EXPECT_EQ(foreign.status, 400);
  EXPECT_THAT(foreign.body, HasSubstr("referer_not_allowed"));
  auto foreign_login =
      h.Call("POST",
             "/v1/legacy-login",
             R"({"login":"a@example.com","api_key":"k","domain":"example.amocrm.ru.evil.com"})");
  EXPECT_EQ(foreign_login.status, 400);
  EXPECT_THAT(foreign_login.body, HasSubstr("must be an amoCRM or Kommo account host"));
  auto unauthorized = h.Call("POST", "/v1/exchange-api-key", "{}", std::string("wrong-key"));
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(h.amo_counter->calls, 0);
}

TEST_F(QueuedCodesTest, AmoCrmRefusingTheKeyIsReportedAndLegacyLoginStillAnswers) {
  h.Connect(kAccount);
  const std::string request = boost::json::serialize(boost::json::object{
      {"login", "nobody@example.com"}, {"api_key", "wrong"}, {"domain", "example.amocrm.ru"}});
  auto refused = h.Call("POST", "/v1/exchange-api-key", request);
  EXPECT_EQ(refused.status, 502) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("amo_api_key_forbidden"));
  EXPECT_THAT(refused.body, Not(HasSubstr("wrong")));

  auto legacy = h.Call(
      "POST",
      "/v1/legacy-login",
      boost::json::serialize(boost::json::object{
          {"login", "other@example.com"}, {"api_key", "wrong"}, {"domain", "example.amocrm.ru"}}));
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  const auto login = boost::json::parse(legacy.body).as_object();
  EXPECT_EQ(login.at("exchange").as_string(), "failed");
  EXPECT_EQ(login.at("error").as_string(), "amo_api_key_forbidden");
  EXPECT_EQ(login.at("oauth").at("connected").as_bool(), true);
}

}  // namespace
}  // namespace amoauth::testing
