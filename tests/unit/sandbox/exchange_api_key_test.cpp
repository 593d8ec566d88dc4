// POST /oauth2/exchange_api_key (protocol §6), request in, response out; the hook it schedules
// is recorded instead of sent. The sandbox clock is moved by hand.

#include <map>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "endpoints.hpp"
#include "sandbox_context.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::string_view kRedirect = "https://app.example.com/amo/callback";

class ExchangeApiKeyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto generated = JwtSigner::Generate();
    ASSERT_TRUE(generated.has_value());
    signer_ = std::make_unique<JwtSigner>(*generated);
  }
  static void TearDownTestSuite() { signer_.reset(); }

  ExchangeApiKeyTest() : ctx_(StateConfig{}, DefaultAccounts(), *signer_, [this] { return now_; }) {
    ctx_.send_later = [this](OutgoingHook hook) { hooks_.push_back(std::move(hook)); };
    Integration i;
    i.redirect_uri = std::string(kRedirect);
    integration_ = ctx_.state.PutIntegration(i);
    amo_ = *ctx_.state.FindAccount(30000001);
    kommo_ = *ctx_.state.FindAccount(31000001);
  }

  boost::json::object Body(const Account& account) const {
    return boost::json::object{{"login", account.user_login},
                               {"api_key", account.user_api_key},
                               {"client_uuid", integration_.client_id},
                               {"client_secret", integration_.client_secret}};
  }

  net::HttpResponse Call(const Account& account, const boost::json::object& body) {
    net::HttpRequest req;
    req.method = "POST";
    req.target = "/oauth2/exchange_api_key";
    req.headers.Set("Host", AccountHost(account));
    req.headers.Set("Content-Type", "application/json");
    req.body = boost::json::serialize(body);
    return ServeAmoSide(ctx_, req);
  }

  std::map<std::string, std::string> HookQuery(const OutgoingHook& hook) const {
    const auto query = net::ParseQuery(hook.url.substr(hook.url.find('?') + 1));
    EXPECT_TRUE(query.has_value());
    return query ? std::map<std::string, std::string>(query->begin(), query->end())
                 : std::map<std::string, std::string>{};
  }

  static std::unique_ptr<JwtSigner> signer_;
  TimePoint now_ =
      std::chrono::time_point_cast<TimePoint::duration>(std::chrono::system_clock::now());
  SandboxContext ctx_;
  Integration integration_;
  Account amo_;
  Account kommo_;
  std::vector<OutgoingHook> hooks_;
};

std::unique_ptr<JwtSigner> ExchangeApiKeyTest::signer_;

TEST_F(ExchangeApiKeyTest, UsersHaveLoginsAndKeys) {
  EXPECT_EQ(amo_.user_login, "admin@example.amocrm.ru");
  EXPECT_EQ(amo_.user_api_key.size(), 40U);
  net::HttpRequest req;
  req.method = "GET";
  req.target = "/sandbox/accounts";
  req.headers.Set("Host", "127.0.0.1");
  const auto listed = boost::json::parse(ServeBrowserSide(ctx_, req).body).as_array();
  const auto& user = listed.at(0).at("users").as_array().at(0).as_object();
  EXPECT_EQ(user.at("id"), 10000001);
  EXPECT_EQ(user.at("login").as_string(), amo_.user_login);
  EXPECT_EQ(user.at("api_key").as_string(), amo_.user_api_key);
}

TEST_F(ExchangeApiKeyTest, AcceptedCallSchedulesTheCodeHook) {
  ASSERT_TRUE(ctx_.state.IssueCode(integration_.client_id, amo_.id).has_value());  // installed
  auto body = Body(amo_);
  body["state"] = "st-1";
  const auto response = Call(amo_, body);
  EXPECT_EQ(response.status, 202) << response.body;
  EXPECT_TRUE(response.body.empty());
  ASSERT_EQ(hooks_.size(), 1U);
  const OutgoingHook& hook = hooks_.front();
  EXPECT_EQ(hook.method, "GET");
  EXPECT_TRUE(hook.url.starts_with(std::string(kRedirect) + "?code=def50200"));
  EXPECT_EQ(hook.log_url, kRedirect);
  EXPECT_EQ(hook.account_id, amo_.id);
  EXPECT_EQ(hook.delay.count(), 0);
  auto q = HookQuery(hook);
  EXPECT_EQ(q["referer"], "example.amocrm.ru");
  EXPECT_EQ(q["platform"], "1");
  EXPECT_EQ(q["from_exchange"], "1");
  EXPECT_EQ(q["state"], "st-1");
  EXPECT_FALSE(q.contains("from_widget"));
  const auto counters = ctx_.state.Journal().accounts.at(amo_.id);
  EXPECT_EQ(counters.exchange_api_key_requests, 1U);
  EXPECT_EQ(counters.exchange_api_key_accepted, 1U);
}

TEST_F(ExchangeApiKeyTest, KommoHookCarriesClientIdAndTheConfiguredDelay) {
  ASSERT_FALSE(
      ctx_.state.ApplyConfig(ConfigPatch{.exchange_hook_delay = std::chrono::milliseconds(1500)}));
  ASSERT_TRUE(ctx_.state.InstallWidget(kommo_.id, integration_.client_id).has_value());
  EXPECT_EQ(Call(kommo_, Body(kommo_)).status, 202);
  ASSERT_EQ(hooks_.size(), 1U);
  EXPECT_EQ(hooks_.front().delay.count(), 1500);
  auto q = HookQuery(hooks_.front());
  EXPECT_EQ(q["referer"], "example.kommo.com");
  EXPECT_EQ(q["client_id"], integration_.client_id);
  EXPECT_FALSE(q.contains("platform"));
  EXPECT_FALSE(q.contains("state"));
}

TEST_F(ExchangeApiKeyTest, OneCallPerFiveMinutesPerUserAndIntegration) {
  ASSERT_TRUE(ctx_.state.IssueCode(integration_.client_id, amo_.id).has_value());
  EXPECT_EQ(Call(amo_, Body(amo_)).status, 202);
  now_ += std::chrono::seconds(299);
  const auto limited = Call(amo_, Body(amo_));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers.Get("Retry-After").value_or(""), "1");
  EXPECT_NE(limited.body.find("5 minutes"), std::string::npos);
  EXPECT_EQ(hooks_.size(), 1U) << "a refused call sends nothing";
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(Call(amo_, Body(amo_)).status, 202);
  EXPECT_EQ(hooks_.size(), 2U);
  EXPECT_EQ(ctx_.state.Journal().counters.exchange_api_key_rate_limited, 1U);
}

TEST_F(ExchangeApiKeyTest, RefusesMissingFieldsWrongKeysAndUninstalledIntegrations) {
  auto body = Body(amo_);
  body.erase("api_key");
  body["client_uuid"] = "";
  auto response = Call(amo_, body);
  EXPECT_EQ(response.status, 400);
  EXPECT_NE(response.body.find("api_key, client_uuid"), std::string::npos) << response.body;
  EXPECT_EQ(Call(amo_, boost::json::object{{"login", 5}}).status, 400);

  EXPECT_EQ(Call(amo_, Body(amo_)).status, 403) << "not installed yet";
  ASSERT_TRUE(ctx_.state.IssueCode(integration_.client_id, amo_.id).has_value());
  body = Body(amo_);
  body["api_key"] = kommo_.user_api_key;
  EXPECT_EQ(Call(amo_, body).status, 403) << "another user's key";
  body = Body(amo_);
  body["client_secret"] = "wrong";
  response = Call(amo_, body);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(response.body.find(integration_.client_secret), std::string::npos);
  EXPECT_EQ(Call(kommo_, Body(amo_)).status, 403) << "the amoCRM user on the Kommo host";
  EXPECT_TRUE(hooks_.empty());
  EXPECT_EQ(Call(amo_, Body(amo_)).status, 202);
}

}  // namespace
}  // namespace amoauth::sandbox
