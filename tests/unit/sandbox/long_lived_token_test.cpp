// Long-lived tokens (protocol §7.5): issued through the control API, used on the API, request in,
// response out. The sandbox clock is moved by hand.

#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "endpoints.hpp"
#include "sandbox_context.hpp"

namespace amoauth::sandbox {
namespace {

class LongLivedTokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto generated = JwtSigner::Generate();
    ASSERT_TRUE(generated.has_value());
    signer_ = std::make_unique<JwtSigner>(*generated);
  }
  static void TearDownTestSuite() { signer_.reset(); }

  LongLivedTokenTest() : ctx_(StateConfig{}, DefaultAccounts(), *signer_, [this] { return now_; }) {
    Integration i;
    i.redirect_uri = "https://app.example.com/cb";
    integration_ = ctx_.state.PutIntegration(i);
  }

  net::HttpResponse Issue(const std::string& client_id, std::string body) {
    net::HttpRequest req;
    req.method = "POST";
    req.target = "/sandbox/integrations/" + client_id + "/long-lived-tokens";
    req.headers.Set("Host", "127.0.0.1:8090");
    req.body = std::move(body);
    return ServeBrowserSide(ctx_, req);
  }

  net::HttpResponse Api(const std::string& host, const std::string& token) {
    net::HttpRequest req;
    req.method = "GET";
    req.target = "/api/v4/account";
    req.headers.Set("Host", host);
    req.headers.Set("Authorization", "Bearer " + token);
    return ServeAmoSide(ctx_, req);
  }

  static std::unique_ptr<JwtSigner> signer_;
  // 2026-01-17 10:00:00 UTC: one day ahead is the protocol's sample exp, 1768694400.
  TimePoint now_ = TimePoint{std::chrono::seconds{1768644000}};
  SandboxContext ctx_;
  Integration integration_;
};

std::unique_ptr<JwtSigner> LongLivedTokenTest::signer_;

TEST_F(LongLivedTokenTest, ExpiresAtMidnightUtcAndWorksUntilThen) {
  const auto response = Issue(integration_.client_id, R"({"account_id":30000001,"days":1})");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = boost::json::parse(response.body).as_object();
  EXPECT_EQ(body.at("expires_at"), 1768694400);
  EXPECT_FALSE(body.contains("refresh_token"));
  const std::string token(body.at("access_token").as_string());
  const auto claims = signer_->Verify(token);
  ASSERT_TRUE(claims.has_value()) << "same RS256 JWT as the other access tokens";
  EXPECT_EQ(claims->at("exp"), 1768694400);
  EXPECT_EQ(claims->at("iat"), 1768644000);
  EXPECT_EQ(claims->at("nbf"), 1768644000);
  EXPECT_EQ(claims->at("account_id"), 30000001);
  EXPECT_EQ(claims->at("aud").as_string(), integration_.client_id);
  EXPECT_EQ(claims->at("sub"), "10000001");
  EXPECT_EQ(claims->at("base_domain"), "amocrm.ru");
  EXPECT_EQ(claims->at("api_domain"), "api-b.amocrm.ru");

  EXPECT_EQ(Api("example.amocrm.ru", token).status, 200);
  EXPECT_EQ(Api("example.kommo.com", token).status, 401) << "another account's host";
  now_ = TimePoint{std::chrono::seconds{1768694399}};
  EXPECT_EQ(Api("example.amocrm.ru", token).status, 200);
  now_ = TimePoint{std::chrono::seconds{1768694400}};
  EXPECT_EQ(Api("example.amocrm.ru", token).status, 401) << "expired";
  EXPECT_EQ(ctx_.state.Journal().counters.long_lived_tokens_issued, 1U);
}

TEST_F(LongLivedTokenTest, RevokedWithTheAccountsOtherAccessTokens) {
  const auto response = Issue(integration_.client_id, R"({"account_id":31000001,"days":1825})");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = boost::json::parse(response.body).as_object();
  EXPECT_EQ(body.at("expires_at"), (1768644000 / 86400 + 1825) * 86400);
  const std::string token(body.at("access_token").as_string());
  EXPECT_EQ(signer_->Verify(token)->at("base_domain"), "kommo.com");
  EXPECT_EQ(Api("example.kommo.com", token).status, 200);
  ASSERT_TRUE(ctx_.state.RevokeTokens(31000001, RevokeScope::kAccess).has_value());
  EXPECT_EQ(Api("example.kommo.com", token).status, 401);
}

TEST_F(LongLivedTokenTest, RefusesBadDaysAndUnknowns) {
  EXPECT_EQ(Issue(integration_.client_id, R"({"account_id":30000001,"days":0})").status, 400);
  EXPECT_EQ(Issue(integration_.client_id, R"({"account_id":30000001,"days":1826})").status, 400);
  EXPECT_EQ(Issue(integration_.client_id, R"({"account_id":30000001})").status, 400);
  EXPECT_EQ(Issue(integration_.client_id, R"({"account_id":1,"days":5})").status, 404);
  EXPECT_EQ(Issue("nobody", R"({"account_id":30000001,"days":5})").status, 404);
  EXPECT_EQ(ctx_.state.Journal().counters.long_lived_tokens_issued, 0U);
}

}  // namespace
}  // namespace amoauth::sandbox
