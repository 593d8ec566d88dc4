// External integrations end to end (issue 4, items 2 and 9): a metadata button, the sandbox's
// consent creating a new integration and POSTing its keys to amoauth's secrets webhook (before or
// after the code), the account connected under the new client_id beside the configured one, each
// integration's tokens refreshed with its own keys, the API choosing between them, the external
// integration's own disconnect hook, and forged or replayed secrets webhooks refused over HTTP.
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::int64_t kAccount = 30000001;
constexpr std::string_view kSecretsPath = "/api/v1/integrations/amo-crm/secrets";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

boost::json::object JsonOf(const net::HttpResponse& r) {
  return boost::json::parse(r.body).as_object();
}

std::string StringAt(const boost::json::object& o, std::string_view key) {
  return std::string(o.at(key).as_string());
}

/// One query parameter of a URL (the redirect the sandbox answered with).
std::string ParamOf(const std::string& url, std::string_view name) {
  auto parsed = boost::urls::parse_uri_reference(url);
  if (!parsed) {
    return {};
  }
  for (const auto& p : parsed->params()) {
    if (p.key == name) {
      return p.value;
    }
  }
  return {};
}

std::string SecretsBody(const std::string& client_id,
                        const std::string& client_secret,
                        const std::string& state) {
  return boost::json::serialize(boost::json::object{
      {"client_id", client_id}, {"client_secret", client_secret}, {"state", state}});
}

class ExternalIntegrationTest : public ::testing::Test {
 protected:
  /// What the sandbox's Allow on the metadata consent produced.
  struct Created {
    std::string client_id;  ///< the new integration's, from the redirect (protocol §2.5)
    std::string location;   ///< the redirect to amoauth's callback, not yet followed
  };

  /// A state minted for a metadata button by GET /v1/button.
  std::string MetadataState() {
    auto r = h.Call("GET",
                    "/v1/button?variant=metadata&name=Deals%20sync&description=Keeps%20deals"
                    "&mode=post_message");
    EXPECT_EQ(r.status, 200) << r.body;
    return StringAt(JsonOf(r), "state");
  }

  /// The person presses the metadata button and Allow; the redirect is not followed yet.
  Created Allow(std::int64_t account_id = kAccount) {
    auto decided = h.DecideMetadata(MetadataState(), "allow", account_id);
    EXPECT_EQ(decided.status, 302) << decided.body;
    Created created;
    created.location = std::string(decided.headers.Get("Location").value_or(""));
    created.client_id = ParamOf(created.location, "client_id");
    EXPECT_FALSE(created.client_id.empty()) << created.location;
    EXPECT_NE(created.client_id, h.SandboxIntegration().client_id);
    return created;
  }

  /// Allow, then the redirect: the account is connected under the new integration.
  std::string ConnectExternal(std::int64_t account_id = kAccount) {
    const Created created = Allow(account_id);
    auto page = h.Get(created.location);
    EXPECT_EQ(page.status, 200) << page.body;
    EXPECT_THAT(page.body, HasSubstr("is connected"));
    return created.client_id;
  }

  /// The new integration's secret as the sandbox made it (GET /sandbox/integrations).
  std::string SandboxSecretOf(const std::string& client_id) {
    const boost::json::value listed = h.SandboxGet("/sandbox/integrations");
    for (const auto& v : listed.as_array()) {
      const auto& integration = v.as_object();
      if (StringAt(integration, "client_id") == client_id) {
        return StringAt(integration, "client_secret");
      }
    }
    ADD_FAILURE() << "the sandbox does not list " << client_id;
    return {};
  }

  net::HttpResponse PostSecrets(std::string body) {
    return h.Call("POST", std::string(kSecretsPath), std::move(body), std::string());
  }

  boost::json::object Account(const std::string& target) {
    auto r = h.Call("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return r.status == 200 ? JsonOf(r) : boost::json::object{};
  }

  std::string AccessToken(const std::string& target) {
    auto r = h.Call("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return r.status == 200 ? StringAt(JsonOf(r), "access_token") : std::string();
  }

  bool Stored(const std::string& client_id) {
    auto found = h.Await(h.Store().FindIntegration(client_id));
    EXPECT_TRUE(found.has_value());
    return found && found->has_value();
  }

  std::size_t AccountCount() {
    auto r = h.Call("GET", "/v1/accounts");
    EXPECT_EQ(r.status, 200);
    return JsonOf(r).at("accounts").as_array().size();
  }

  std::int64_t Counter(std::string_view name) { return h.SandboxCounters().at(name).as_int64(); }

  net::HttpResponse SandboxDisconnect(const std::string& client_id) {
    return h.SandboxPost("/sandbox/accounts/" + std::to_string(kAccount) + "/disconnect",
                         "application/json",
                         boost::json::serialize(boost::json::object{{"client_id", client_id}}));
  }

  ServiceHarness h;
};

TEST_F(ExternalIntegrationTest, MetadataButtonConnectsTheAccountUnderTheNewIntegration) {
  const Created created = Allow();
  // The sandbox POSTed the keys before handing the code out (and got exactly 200).
  EXPECT_TRUE(Stored(created.client_id));
  EXPECT_EQ(Counter("external_integrations_created"), 1);
  EXPECT_EQ(ParamOf(created.location, "referer"), "example.amocrm.ru");

  auto page = h.Get(created.location);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("is connected"));

  auto account = Account("/v1/accounts/30000001?client_id=" + created.client_id);
  EXPECT_EQ(StringAt(account, "client_id"), created.client_id);
  EXPECT_EQ(StringAt(account, "status"), "active");
  // Its only integration in this account: the default picks it.
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001"), "client_id"), created.client_id);
  // The configured integration has no row here.
  EXPECT_EQ(
      h.Call("GET", "/v1/accounts/30000001?client_id=" + h.SandboxIntegration().client_id).status,
      404);

  // The new secret is sealed at rest, never in the file as written.
  const std::string secret = SandboxSecretOf(created.client_id);
  ASSERT_EQ(secret.size(), 64U);
  const std::string raw = Slurp(h.DatabasePath()) + Slurp(h.DatabasePath() + "-wal");
  EXPECT_EQ(raw.find(secret), std::string::npos);
}

TEST_F(ExternalIntegrationTest, CodeBeforeItsKeysWaitsForThemThenConnects) {
  h.ConfigureSandbox(R"({"secrets_delivery":"after_redirect","secrets_delay_ms":1000})");
  const auto started = std::chrono::steady_clock::now();
  const Created created = Allow();
  if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(800)) {
    EXPECT_FALSE(Stored(created.client_id)) << "the keys were to come a second after the code";
  }
  auto page = h.Get(created.location);  // waits (AMOAUTH_SECRETS_WAIT_MS) for the keys
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("is connected"));
  EXPECT_TRUE(Stored(created.client_id));
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + created.client_id), "status"),
            "active");
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1000));
}

TEST_F(ExternalIntegrationTest, TwoIntegrationsInOneAccountEachRefreshWithTheirOwnKeys) {
  const std::string primary = h.SandboxIntegration().client_id;
  h.Connect();
  const std::string external = ConnectExternal();

  const auto listed = JsonOf(h.Call("GET", "/v1/accounts")).at("accounts").as_array();
  std::set<std::string> clients;
  for (const auto& row : listed) {
    EXPECT_EQ(row.as_object().at("account_id").as_int64(), kAccount);
    clients.insert(StringAt(row.as_object(), "client_id"));
  }
  EXPECT_EQ(clients, (std::set<std::string>{primary, external}));

  // Without a choice: the configured integration's row; with one: that integration's.
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001"), "client_id"), primary);
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + external), "client_id"),
            external);
  auto by_header =
      h.CallWithHeader("GET", "/v1/accounts/30000001", "X-Amoauth-Client-Id", external);
  ASSERT_EQ(by_header.status, 200) << by_header.body;
  EXPECT_EQ(StringAt(JsonOf(by_header), "client_id"), external);
  EXPECT_EQ(
      h.Call("GET", "/v1/accounts/30000001?client_id=00000000-0000-4000-8000-000000000000").status,
      404);

  const std::string primary_token = AccessToken("/v1/accounts/30000001/token");
  const std::string external_token =
      AccessToken("/v1/accounts/30000001/token?client_id=" + external);
  EXPECT_NE(primary_token, external_token);

  // The sandbox refuses a refresh token presented with another integration's keys
  // (`Token is not linked to client`), so each success below used the row's own keys.
  const auto refreshes = Counter("refreshes");
  auto refreshed = h.Call("POST", "/v1/accounts/30000001/refresh?client_id=" + external);
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(StringAt(JsonOf(refreshed), "client_id"), external);
  EXPECT_EQ(Counter("refreshes"), refreshes + 1);
  EXPECT_NE(AccessToken("/v1/accounts/30000001/token?client_id=" + external), external_token);
  EXPECT_EQ(AccessToken("/v1/accounts/30000001/token"), primary_token);  // untouched

  refreshed = h.Call("POST", "/v1/accounts/30000001/refresh");
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(StringAt(JsonOf(refreshed), "client_id"), primary);
  EXPECT_EQ(Counter("refreshes"), refreshes + 2);
  EXPECT_EQ(Counter("refresh_token_reuses"), 0);

  auto proxied = h.CallWithHeader(
      "GET", "/v1/accounts/30000001/proxy/api/v4/account", "X-Amoauth-Client-Id", external);
  ASSERT_EQ(proxied.status, 200) << proxied.body;
  EXPECT_EQ(JsonOf(proxied).at("id").as_int64(), kAccount);
}

TEST_F(ExternalIntegrationTest, TheProxyHeaderUsesTheExternalIntegrationsToken) {
  const std::string primary = h.SandboxIntegration().client_id;
  h.Connect();
  const std::string external = ConnectExternal();
  // The account disconnects the configured integration: its tokens die in amoCRM, and its row
  // in amoauth. The external integration's token alone still works.
  auto done = SandboxDisconnect(primary);
  ASSERT_EQ(done.status, 200) << done.body;
  ASSERT_EQ(JsonOf(done).at("hook_status").as_int64(), 200);

  auto plain = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account");
  EXPECT_EQ(plain.status, 409) << plain.body;
  EXPECT_EQ(StringAt(JsonOf(plain), "error"), "account_disconnected");
  auto chosen = h.CallWithHeader(
      "GET", "/v1/accounts/30000001/proxy/api/v4/account", "X-Amoauth-Client-Id", external);
  ASSERT_EQ(chosen.status, 200) << chosen.body;
  EXPECT_EQ(JsonOf(chosen).at("id").as_int64(), kAccount);
  // The proxy's own query belongs to amoCRM: ?client_id= there does not choose.
  auto query = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account?client_id=" + external);
  EXPECT_EQ(query.status, 409) << query.body;
}

TEST_F(ExternalIntegrationTest, DisconnectOfTheExternalIntegrationDisconnectsOnlyItsRow) {
  const std::string primary = h.SandboxIntegration().client_id;
  h.Connect();
  const std::string external = ConnectExternal();

  // The sandbox signs the hook with the external integration's secret (protocol §7.1).
  auto done = SandboxDisconnect(external);
  ASSERT_EQ(done.status, 200) << done.body;
  const auto report = JsonOf(done);
  ASSERT_FALSE(report.at("hook_status").is_null()) << done.body;
  EXPECT_EQ(report.at("hook_status").as_int64(), 200) << done.body;

  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + external), "status"),
            "disconnected");
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001"), "status"), "active");
  auto token = h.Call("GET", "/v1/accounts/30000001/token?client_id=" + external);
  EXPECT_EQ(token.status, 409);
  EXPECT_EQ(StringAt(JsonOf(token), "error"), "account_disconnected");
  auto chosen = h.CallWithHeader(
      "GET", "/v1/accounts/30000001/proxy/api/v4/account", "X-Amoauth-Client-Id", external);
  EXPECT_EQ(chosen.status, 409);
  auto plain = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account");
  EXPECT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + primary), "status"), "active");
}

TEST_F(ExternalIntegrationTest, SeveralExternalIntegrationsAndNoConfiguredOneAreAmbiguous) {
  const std::string first = ConnectExternal();
  const std::string second = ConnectExternal();
  ASSERT_NE(first, second);
  auto r = h.Call("GET", "/v1/accounts/30000001");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(StringAt(JsonOf(r), "error"), "integration_ambiguous");
  EXPECT_THAT(StringAt(JsonOf(r), "message"), HasSubstr("X-Amoauth-Client-Id"));
  EXPECT_EQ(h.Call("GET", "/v1/accounts/30000001/token").status, 409);
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + second), "client_id"), second);
}

TEST_F(ExternalIntegrationTest, ForgedOrMalformedSecretsAreRefusedAndStoreNothing) {
  const std::string forged_id = "6f0a7d1e-1111-4222-8333-444455556666";
  const std::string secret(64, 'k');

  // A state we never issued, though shaped like ours.
  std::string unknown = MetadataState();
  unknown.back() = unknown.back() == 'A' ? 'B' : 'A';
  auto r = PostSecrets(SecretsBody(forged_id, secret, unknown));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(StringAt(JsonOf(r), "error"), "state_invalid");

  // A state minted for the standard button: no keys are expected for it.
  const std::string standard = h.StartConnect();
  r = PostSecrets(SecretsBody(forged_id, secret, standard));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(StringAt(JsonOf(r), "error"), "state_invalid");

  const std::string metadata = MetadataState();
  const std::vector<std::string> malformed = {
      "not json at all",
      "[]",
      R"({"client_id":"x","client_secret":"y"})",
      R"({"client_id":1,"client_secret":"y","state":")" + metadata + "\"}",
      R"({"client_id":"x","client_secret":"y","state":null})",
      "",
  };
  for (const std::string& body : malformed) {
    r = PostSecrets(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(StringAt(JsonOf(r), "error"), "invalid_request") << body;
    EXPECT_FALSE(StringAt(JsonOf(r), "message").empty());
  }
  // Well-formed JSON, but no client id amoCRM would make, or an empty secret.
  r = PostSecrets(SecretsBody("../../etc", secret, metadata));
  EXPECT_EQ(r.status, 400) << r.body;
  r = PostSecrets(SecretsBody(forged_id, "", metadata));
  EXPECT_EQ(r.status, 400) << r.body;

  EXPECT_FALSE(Stored(forged_id));
  EXPECT_FALSE(Stored("../../etc"));
  EXPECT_EQ(AccountCount(), 0U);
  // The refused deliveries consumed nothing: the standard state still connects.
  auto page = h.Get(h.Decide(standard, "allow"));
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001"), "client_id"),
            h.SandboxIntegration().client_id);
  // No secret in any answer or the log lines the refusals wrote (they name no body).
  EXPECT_THAT(r.body, Not(HasSubstr(secret)));
}

TEST_F(ExternalIntegrationTest, ReplayedSecretsAreRefused) {
  // Twice for one state, before any redirect: the first wins, the second is refused.
  const std::string state = MetadataState();
  const std::string first = "6f0a7d1e-aaaa-4222-8333-444455556666";
  const std::string second = "6f0a7d1e-bbbb-4222-8333-444455556666";
  auto r = PostSecrets(SecretsBody(first, std::string(64, 'a'), state));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  r = PostSecrets(SecretsBody(second, std::string(64, 'b'), state));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(StringAt(JsonOf(r), "error"), "secrets_already_received");
  r = PostSecrets(SecretsBody(first, std::string(64, 'a'), state));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_TRUE(Stored(first));
  EXPECT_FALSE(Stored(second));

  // amoCRM's own delivery replayed after its redirect consumed the state.
  const std::string external = ConnectExternal();
  const auto accounts = AccountCount();
  const Created created = Allow();
  const std::string used_state = ParamOf(created.location, "state");
  ASSERT_EQ(h.Get(created.location).status, 200);
  r = PostSecrets(SecretsBody(created.client_id, SandboxSecretOf(created.client_id), used_state));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(StringAt(JsonOf(r), "error"), "state_invalid");
  // And with a new client id for that spent state: refused, not stored.
  r = PostSecrets(SecretsBody(second, std::string(64, 'b'), used_state));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_FALSE(Stored(second));
  EXPECT_EQ(AccountCount(), accounts + 1);  // only the flow's own connection
  EXPECT_EQ(StringAt(Account("/v1/accounts/30000001?client_id=" + external), "status"), "active");
}

TEST_F(ExternalIntegrationTest, SecretsThatDoNotAnswer200StopAmoCrmFromHandingOutTheCode) {
  // A metadata state that amoauth no longer has (expired, or from another installation):
  // the secrets webhook refuses it, and amoCRM (the sandbox) then shows its Code 400 page.
  std::string state = MetadataState();
  state.back() = state.back() == 'A' ? 'B' : 'A';
  auto decided = h.DecideMetadata(state, "allow");
  EXPECT_EQ(decided.status, 502) << decided.body;
  EXPECT_THAT(decided.body, HasSubstr("(Code 400)"));
  EXPECT_FALSE(decided.headers.Get("Location").has_value());
  EXPECT_EQ(AccountCount(), 0U);
}

}  // namespace
}  // namespace amoauth::testing
