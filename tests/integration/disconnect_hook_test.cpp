// amoCRM's disconnect ("access revoked") hook end to end (issue 4, item 6): the sandbox revokes
// the integration's tokens and calls amoauth's hook, which erases the account's tokens.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// amoCRM's signature (protocol §7.1), computed here independently of both implementations.
std::string Sign(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(),
       secret.data(),
       static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()),
       message.size(),
       mac,
       &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[mac[i] >> 4U]);
    hex.push_back(kHex[mac[i] & 0x0fU]);
  }
  return hex;
}

class DisconnectHookTest : public ::testing::Test {
 protected:
  /// GET amoauth's hook as amoCRM would, with the given parameters.
  net::HttpResponse Hook(const std::string& client_uuid,
                         const std::string& account_id,
                         const std::string& signature,
                         const std::string& client_param = "client_uuid") {
    boost::urls::url url(h.BaseUrl() + std::string(ServiceHarness::kDisconnectPath));
    url.params().append({client_param, client_uuid});
    url.params().append({"account_id", account_id});
    url.params().append({"signature", signature});
    return h.Get(std::string(url.buffer()));
  }

  std::string AccessToken() {
    auto token = h.Call("GET", "/v1/accounts/30000001/token");
    EXPECT_EQ(token.status, 200) << token.body;
    return std::string(boost::json::parse(token.body).as_object().at("access_token").as_string());
  }

  std::string Status() {
    auto account = h.Call("GET", "/v1/accounts/30000001");
    EXPECT_EQ(account.status, 200) << account.body;
    return std::string(boost::json::parse(account.body).as_object().at("status").as_string());
  }

  net::HttpResponse SandboxDisconnect(std::int64_t account_id) {
    return h.SandboxPost("/sandbox/accounts/" + std::to_string(account_id) + "/disconnect",
                         "application/json",
                         boost::json::serialize(
                             boost::json::object{{"client_id", h.SandboxIntegration().client_id}}));
  }

  std::vector<std::string> OutboxTypes() {
    const core::TimePoint now = h.clock.Now();
    auto claimed = h.Await(h.Store().ClaimDue(now, now + std::chrono::seconds(1), 100));
    std::vector<std::string> types;
    for (const auto& e : claimed.value()) {
      types.push_back(e.type);
    }
    return types;
  }

  ServiceHarness h;
};

TEST_F(DisconnectHookTest, TheSandboxDisconnectsAndAmoauthErasesTheTokens) {
  h.Connect();
  const std::string access_token = AccessToken();
  const auto before = h.Await(h.Store().Find({30000001, h.SandboxIntegration().client_id}));
  ASSERT_TRUE(before && *before);
  const std::string refresh_token((*before)->refresh_token.Reveal());
  ASSERT_FALSE(refresh_token.empty());

  auto disconnected = SandboxDisconnect(30000001);
  ASSERT_EQ(disconnected.status, 200) << disconnected.body;
  const auto report = boost::json::parse(disconnected.body).as_object();
  EXPECT_EQ(report.at("hook_status").as_int64(), 200);
  EXPECT_EQ(report.at("revoked_refresh_tokens").as_int64(), 1);
  EXPECT_THAT(std::string(report.at("hook_body").as_string()), HasSubstr(R"("status":"ok")"));

  EXPECT_EQ(Status(), "disconnected");
  auto token = h.Call("GET", "/v1/accounts/30000001/token");
  EXPECT_EQ(token.status, 409);
  EXPECT_EQ(boost::json::parse(token.body).as_object().at("error").as_string(),
            "account_disconnected");
  auto proxy = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account");
  EXPECT_EQ(proxy.status, 409);
  auto refresh = h.Call("POST", "/v1/accounts/30000001/refresh");
  EXPECT_EQ(refresh.status, 409);

  // The row holds no token any more, and neither token is in the database files.
  const auto after = h.Await(h.Store().Find({30000001, h.SandboxIntegration().client_id}));
  ASSERT_TRUE(after && *after);
  EXPECT_TRUE((*after)->access_token.Empty());
  EXPECT_TRUE((*after)->refresh_token.Empty());
  EXPECT_EQ((*after)->next_refresh_at, core::TimePoint{});
  const std::string raw = Slurp(h.DatabasePath()) + Slurp(h.DatabasePath() + "-wal");
  EXPECT_FALSE(raw.empty());
  EXPECT_EQ(raw.find(access_token.substr(0, 40)), std::string::npos);
  EXPECT_EQ(raw.find(refresh_token), std::string::npos);

  const auto types = OutboxTypes();
  EXPECT_EQ(std::count(types.begin(), types.end(), "account.disconnected"), 1);

  // amoCRM sending the hook again changes nothing.
  const std::string id = h.SandboxIntegration().client_id;
  EXPECT_EQ(
      Hook(id, "30000001", Sign(h.SandboxIntegration().client_secret, id + "|30000001")).status,
      200);
  EXPECT_TRUE(OutboxTypes().empty()) << "no second event";

  // Connecting again makes the account usable.
  h.Connect();
  EXPECT_EQ(Status(), "active");
  EXPECT_NE(AccessToken(), access_token);
}

TEST_F(DisconnectHookTest, AForgedHookIsRefusedAndChangesNothing) {
  h.Connect();
  const std::string access_token = AccessToken();
  const std::string id = h.SandboxIntegration().client_id;
  const std::string secret = h.SandboxIntegration().client_secret;
  const std::string other = "0b0832f6-d123-4123-9123-e73f236833c0";

  struct Case {
    std::string client;
    std::string account;
    std::string signature;
  };
  const std::vector<Case> forged = {
      {id, "30000001", Sign("not-the-secret", id + "|30000001")},  // wrong signature
      {other, "30000001", Sign(secret, other + "|30000001")},      // another client_uuid
      {id, "30000001", Sign(secret, id + "|30000002")},            // another account's
      {id, "30000001", "0000"},
  };
  for (const Case& c : forged) {
    auto r = Hook(c.client, c.account, c.signature);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(boost::json::parse(r.body).as_object().at("error").as_string(), "signature_invalid");
  }
  EXPECT_EQ(Hook(id, "30000001", "").status, 403);
  // Missing parameters.
  EXPECT_EQ(h.Get(h.BaseUrl() + std::string(ServiceHarness::kDisconnectPath)).status, 400);
  EXPECT_EQ(h.Get(h.BaseUrl() + std::string(ServiceHarness::kDisconnectPath) +
                  "?client_uuid=" + id + "&account_id=30000001")
                .status,
            400);

  EXPECT_EQ(Status(), "active");
  EXPECT_EQ(AccessToken(), access_token);
  EXPECT_TRUE(OutboxTypes() == std::vector<std::string>{"account.connected"});

  // The older parameter name client_id is accepted too, and another account's valid hook does
  // not touch this one.
  EXPECT_EQ(Hook(id, "30000002", Sign(secret, id + "|30000002"), "client_id").status, 200);
  EXPECT_EQ(Status(), "active");
  // amoCRM revoked the pair: the hook is genuine.
  auto revoked =
      h.SandboxPost("/sandbox/accounts/30000001/revoke", "application/json", R"({"tokens":"all"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(Hook(id, "30000001", Sign(secret, id + "|30000001"), "client_id").status, 200);
  EXPECT_EQ(Status(), "disconnected");
}

TEST_F(DisconnectHookTest, AReplayedHookAfterAReconnectIsIgnored) {
  h.Connect();
  const std::string id = h.SandboxIntegration().client_id;
  // The genuine hook, as someone who saw it (a proxy's access log) keeps it.
  const std::string signature = Sign(h.SandboxIntegration().client_secret, id + "|30000001");
  ASSERT_EQ(SandboxDisconnect(30000001).status, 200);
  ASSERT_EQ(Status(), "disconnected");
  EXPECT_EQ(h.SandboxCounters().at("refreshes").as_int64(), 0)
      << "amoCRM refused the confirming refresh";

  // The person connects again; then the old hook comes back.
  h.Connect();
  ASSERT_EQ(Status(), "active");
  (void)OutboxTypes();  // drain: connected, disconnected, connected
  auto replayed = Hook(id, "30000001", signature);
  EXPECT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(Status(), "active") << "amoCRM still accepts the tokens: a replay";
  EXPECT_EQ(h.SandboxCounters().at("refreshes").as_int64(), 1) << "asked amoCRM once";
  auto proxied = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account");
  EXPECT_EQ(proxied.status, 200) << proxied.body;
  const auto row = h.Await(h.Store().Find({30000001, id}));
  ASSERT_TRUE(row && *row);
  EXPECT_FALSE((*row)->refresh_token.Empty());
  EXPECT_EQ(OutboxTypes(), std::vector<std::string>{"account.disconnect_ignored"});

  // A genuine disconnect still disconnects at once.
  ASSERT_EQ(SandboxDisconnect(30000001).status, 200);
  EXPECT_EQ(Status(), "disconnected");
  EXPECT_EQ(OutboxTypes(), std::vector<std::string>{"account.disconnected"});
}

TEST_F(DisconnectHookTest, AHookAmoCrmCannotConfirmKeepsTheTokensUntilTheRetrySettlesIt) {
  h.Connect();
  const std::string id = h.SandboxIntegration().client_id;
  const auto before = h.Await(h.Store().Find({30000001, id}));
  ASSERT_TRUE(before && *before);
  (void)OutboxTypes();
  // The account really disconnected, but amoCRM's token endpoint is down when amoauth asks.
  auto fault =
      h.SandboxPost("/sandbox/faults", "application/json", R"({"token_endpoint":{"status":503}})");
  ASSERT_EQ(fault.status, 200) << fault.body;
  auto disconnected = SandboxDisconnect(30000001);
  EXPECT_EQ(disconnected.status, 502) << "the sandbox answers with the hook's status";
  const auto report = boost::json::parse(disconnected.body).as_object();
  EXPECT_EQ(report.at("hook_status").as_int64(), 502) << "amoauth could not confirm it";
  EXPECT_THAT(std::string(report.at("hook_body").as_string()), HasSubstr("amo_server_error"));

  // Nothing erased; the failed confirmation is recorded as a failed refresh.
  EXPECT_EQ(Status(), "active");
  const auto kept = h.Await(h.Store().Find({30000001, id}));
  ASSERT_TRUE(kept && *kept);
  EXPECT_EQ((*kept)->refresh_token, (*before)->refresh_token);
  EXPECT_EQ((*kept)->access_token, (*before)->access_token);
  auto view = boost::json::parse(h.Call("GET", "/v1/accounts/30000001").body).as_object();
  EXPECT_EQ(view.at("refresh").as_object().at("failures").as_int64(), 1);
  EXPECT_THAT(std::string(view.at("refresh").as_object().at("last_error").as_string()),
              HasSubstr("5xx"));
  EXPECT_EQ(OutboxTypes(), std::vector<std::string>{"token.refresh_failed"});

  // After the backoff the retry asks again: amoCRM refuses the revoked pair.
  h.AdvanceClocks(std::chrono::minutes(10));
  auto refreshed = h.Call("POST", "/v1/accounts/30000001/refresh");
  EXPECT_EQ(refreshed.status, 409) << refreshed.body;
  EXPECT_EQ(Status(), "reauth_required");
}

TEST_F(DisconnectHookTest, TheSandboxReportsAnUnreachableHook) {
  // Another integration whose hook points at a closed port.
  auto created = h.SandboxPost("/sandbox/integrations",
                               "application/json",
                               R"({"redirect_uri":"http://127.0.0.1:1/cb",)"
                               R"("disconnect_hook_url":"http://127.0.0.1:1/hook"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto integration = boost::json::parse(created.body).as_object();
  EXPECT_EQ(integration.at("disconnect_hook_url").as_string(), "http://127.0.0.1:1/hook");
  auto r = h.SandboxPost(
      "/sandbox/accounts/30000001/disconnect",
      "application/json",
      boost::json::serialize(boost::json::object{{"client_id", integration.at("client_id")}}));
  EXPECT_EQ(r.status, 502) << r.body;

  EXPECT_EQ(h.SandboxPost("/sandbox/accounts/30000001/disconnect", "application/json", "{}").status,
            400);
  EXPECT_EQ(h.SandboxPost("/sandbox/accounts/30000001/disconnect",
                          "application/json",
                          R"({"client_id":"no-such-client"})")
                .status,
            404);
  auto bad_hook = h.SandboxPost("/sandbox/integrations",
                                "application/json",
                                R"({"redirect_uri":"http://127.0.0.1:1/cb",)"
                                R"("disconnect_hook_url":"not a url"})");
  EXPECT_EQ(bad_hook.status, 400);
}

}  // namespace
}  // namespace amoauth::testing
