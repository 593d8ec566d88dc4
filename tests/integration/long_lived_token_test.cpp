// Long-lived tokens (protocol §7.5) against the real sandbox: the Keys tab's token added through
// POST /v1/long-lived-tokens, used through the proxy, revoked in amoCRM, never refreshed.
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/iso_time.hpp"
#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

namespace json = boost::json;

const std::string kAccountPath = "/v1/accounts/30000001";

json::object Body(const net::HttpResponse& r) {
  return json::parse(r.body).as_object();
}

/// What an admin copies from the integration's Keys tab: {"access_token", "expires_at"}.
json::object IssueLongLivedToken(ServiceHarness& h, std::int64_t account_id, int days) {
  auto r = h.SandboxPost(
      "/sandbox/integrations/" + h.SandboxIntegration().client_id + "/long-lived-tokens",
      "application/json",
      json::serialize(json::object{{"account_id", account_id}, {"days", days}}));
  EXPECT_EQ(r.status, 200) << r.body;
  return Body(r);
}

std::string AddBody(const std::string& token, const std::string& domain = {}) {
  json::object body{{"token", token}};
  if (!domain.empty()) {
    body["domain"] = domain;
  }
  return json::serialize(body);
}

std::int64_t AccountCounter(ServiceHarness& h, std::int64_t account_id, std::string_view name) {
  const json::object all = h.SandboxCounters();
  const auto* counters = all.at("accounts").as_object().if_contains(std::to_string(account_id));
  return counters == nullptr ? 0 : counters->as_object().at(name).as_int64();
}

TEST(LongLivedToken, AddedUsedThroughTheProxyRevokedAndNeverRefreshed) {
  ServiceHarness h;
  const json::object issued = IssueLongLivedToken(h, 30000001, 30);
  const std::string token(issued.at("access_token").as_string());

  // The token names amocrm.ru, not the account: without a known account the host is required.
  auto no_domain = h.Call("POST", "/v1/long-lived-tokens", AddBody(token));
  EXPECT_EQ(no_domain.status, 400) << no_domain.body;
  EXPECT_EQ(Body(no_domain).at("error").as_string(), "long_lived_token_domain");

  auto added = h.Call("POST", "/v1/long-lived-tokens", AddBody(token, "example.amocrm.ru"));
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(added.body.find(token), std::string::npos) << "the answer never repeats the token";
  const json::object account = Body(added);
  EXPECT_EQ(account.at("account_id").as_int64(), 30000001);
  EXPECT_EQ(account.at("client_id").as_string(), h.SandboxIntegration().client_id);
  EXPECT_EQ(account.at("base_domain").as_string(), "example.amocrm.ru");
  EXPECT_EQ(account.at("api_domain").as_string(), "api-b.amocrm.ru");
  EXPECT_EQ(account.at("kind").as_string(), "long_lived");
  EXPECT_EQ(account.at("status").as_string(), "active");
  EXPECT_EQ(account.at("expires_at").as_string(),
            core::FormatIsoTime(core::FromUnixSeconds(issued.at("expires_at").as_int64())));
  EXPECT_EQ(Body(h.Call("GET", kAccountPath)).at("kind").as_string(), "long_lived");

  auto api = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  ASSERT_EQ(api.status, 200) << api.body;
  EXPECT_EQ(Body(api).at("id").as_int64(), 30000001);
  auto handed_out = h.Call("GET", kAccountPath + "/token");
  ASSERT_EQ(handed_out.status, 200) << handed_out.body;
  EXPECT_EQ(Body(handed_out).at("access_token").as_string(), token);
  auto forced = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_EQ(forced.status, 409) << forced.body;
  EXPECT_EQ(Body(forced).at("error").as_string(), "long_lived_token_not_refreshable");

  // An admin revokes it in amoCRM: amoCRM's 401 comes back as it is, and that is final.
  auto revoked = h.SandboxPost(
      "/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"access"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  auto refused = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(refused.status, 401) << refused.body;
  const json::object after = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(after.at("status").as_string(), "reauth_required");
  EXPECT_EQ(after.at("kind").as_string(), "long_lived");
  EXPECT_NE(std::string(after.at("refresh").at("last_error").as_string())
                .find("amoCRM no longer accepts the long-lived token"),
            std::string::npos);
  auto dead = h.Call("GET", kAccountPath + "/token");
  EXPECT_EQ(dead.status, 409) << dead.body;
  EXPECT_EQ(Body(dead).at("error").as_string(), "long_lived_token_rejected");
  EXPECT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 409)
      << "a dead token is not sent to amoCRM again";

  EXPECT_EQ(AccountCounter(h, 30000001, "token_requests"), 0);
  EXPECT_EQ(AccountCounter(h, 30000001, "refreshes"), 0);
  EXPECT_EQ(AccountCounter(h, 30000001, "api_requests"), 2);
  EXPECT_EQ(AccountCounter(h, 30000001, "api_unauthorized"), 1);
  EXPECT_EQ(h.SandboxCounters().at("token_requests").as_int64(), 0);
}

TEST(LongLivedToken, AfterItsExpiryAmoauthSaysWhenItExpiredWithoutAskingAmoCrm) {
  ServiceHarness h;
  const json::object issued = IssueLongLivedToken(h, 31000001, 1);  // the Kommo account
  const std::string token(issued.at("access_token").as_string());
  const std::int64_t exp = issued.at("expires_at").as_int64();
  h.clock.Set(exp - 3600);  // amoauth's clock: an hour before the token's midnight
  auto wrong_platform =
      h.Call("POST", "/v1/long-lived-tokens", AddBody(token, "example.amocrm.ru"));
  EXPECT_EQ(wrong_platform.status, 400) << "a kommo.com token on an amoCRM host";
  auto added = h.Call("POST", "/v1/long-lived-tokens", AddBody(token, "example.kommo.com"));
  ASSERT_EQ(added.status, 201) << added.body;
  ASSERT_EQ(h.Call("GET", "/v1/accounts/31000001/proxy/api/v4/account").status, 200);

  h.clock.Set(exp);
  auto expired = h.Call("GET", "/v1/accounts/31000001/token");
  EXPECT_EQ(expired.status, 409) << expired.body;
  const json::object body = Body(expired);
  EXPECT_EQ(body.at("error").as_string(), "long_lived_token_expired");
  EXPECT_NE(std::string(body.at("message").as_string())
                .find("expired on " + core::FormatIsoTime(core::FromUnixSeconds(exp))),
            std::string::npos)
      << body.at("message").as_string();
  EXPECT_EQ(Body(h.Call("GET", "/v1/accounts/31000001")).at("status").as_string(),
            "reauth_required");
  EXPECT_EQ(AccountCounter(h, 31000001, "api_requests"), 1);
  EXPECT_EQ(AccountCounter(h, 31000001, "token_requests"), 0);
}

TEST(LongLivedToken, BadInputIsRefusedInWordsAndNothingIsStored) {
  ServiceHarness h;
  auto no_key = h.Call("POST", "/v1/long-lived-tokens", AddBody("x"), std::string("wrong"));
  EXPECT_EQ(no_key.status, 401);
  for (const std::string& body : {std::string("not json"),
                                  std::string("[]"),
                                  std::string(R"({"domain":"example.amocrm.ru"})"),
                                  std::string(R"({"token":""})"),
                                  std::string(R"({"token":42})"),
                                  std::string(R"({"token":"a.b.c","domain":7})")}) {
    auto r = h.Call("POST", "/v1/long-lived-tokens", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Body(r).at("error").as_string(), "invalid_request") << body;
  }
  auto garbage = h.Call("POST", "/v1/long-lived-tokens", AddBody("a.b.c", "example.amocrm.ru"));
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Body(garbage).at("error").as_string(), "long_lived_token_invalid");
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, R"({"accounts":[]})");
}

}  // namespace
}  // namespace amoauth::testing
