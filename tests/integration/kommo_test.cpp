// Kommo end to end (issue 4, item 8; protocol §8): amoauth configured for Kommo against the
// sandbox's Kommo account — the kommo_oauth button with its theme and locale, the consent, a
// redirect carrying client_id instead of platform, token answers with server_time, refreshes
// under Kommo's grace rotation, and the proxy.
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::int64_t kKommoAccount = 31000001;

boost::json::object JsonOf(const net::HttpResponse& r) {
  return boost::json::parse(r.body).as_object();
}

std::string StringAt(const boost::json::object& o, std::string_view key) {
  return std::string(o.at(key).as_string());
}

std::optional<std::string> ParamOf(const std::string& url, std::string_view name) {
  auto parsed = boost::urls::parse_uri_reference(url);
  if (!parsed) {
    return std::nullopt;
  }
  for (const auto& p : parsed->params()) {
    if (p.key == name) {
      return std::string(p.value);
    }
  }
  return std::nullopt;
}

class KommoTest : public ::testing::Test {
 protected:
  KommoTest() : h({.platform = core::Platform::kKommo}) {
    h.ConfigureSandbox(R"({"rotation":"grace_until_new_used"})");
  }

  std::int64_t Counter(std::string_view name) {
    return h.SandboxCounters().at("accounts").at("31000001").at(name).as_int64();
  }

  /// The stored row, tokens decrypted.
  core::Connection Row() {
    core::AccountKey key{kKommoAccount, h.SandboxIntegration().client_id};
    auto found = h.Await(h.Store().Find(std::move(key)));
    EXPECT_TRUE(found && *found);
    return found && *found ? **found : core::Connection{};
  }

  /// The Kommo button, Allow on the Kommo account, the redirect followed.
  void Connect() {
    auto button = h.Call("GET", "/v1/button?theme=dark&locale=es&mode=post_message");
    ASSERT_EQ(button.status, 200) << button.body;
    const std::string location =
        h.Decide(StringAt(JsonOf(button), "state"), "allow", kKommoAccount);
    // Kommo names the integration instead of the platform (protocol §2.5, §8).
    EXPECT_EQ(ParamOf(location, "client_id"), h.SandboxIntegration().client_id);
    EXPECT_EQ(ParamOf(location, "platform"), std::nullopt);
    EXPECT_EQ(ParamOf(location, "referer"), "example.kommo.com");
    auto page = h.Get(location);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_THAT(page.body, HasSubstr("example.kommo.com"));
  }

  ServiceHarness h;
};

TEST_F(KommoTest, TheButtonIsKommosWithThemeAndLocale) {
  auto r = h.Call("GET", "/v1/button?theme=dark&locale=es&title=Connect%20Kommo");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string html = StringAt(JsonOf(r), "html");
  EXPECT_THAT(html, HasSubstr("class=\"kommo_oauth\""));
  EXPECT_THAT(html, HasSubstr("data-theme=\"dark\""));
  EXPECT_THAT(html, HasSubstr("data-locale=\"es\""));
  EXPECT_THAT(html, HasSubstr("data-client-id=\"" + h.SandboxIntegration().client_id + "\""));
  EXPECT_THAT(html, Not(HasSubstr("amocrm_oauth")));
  EXPECT_THAT(html, Not(HasSubstr("data-color")));
  // amoCRM's colours are not Kommo's; Kommo's theme is not amoCRM's.
  auto refused = h.Call("GET", "/v1/button?color=green");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(StringAt(JsonOf(refused), "field"), "color");

  auto page = h.Get(h.BaseUrl() + "/connect");
  ASSERT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("class=\"kommo_oauth\""));
  EXPECT_THAT(page.body, HasSubstr("data-title=\"Connect Kommo\""));
}

TEST_F(KommoTest, ConnectsRefreshesUnderGraceRotationAndProxies) {
  Connect();
  // Kommo's token answer carries server_time (protocol §3.2); amoauth's client read it.
  EXPECT_GT(h.amo_counter->last_server_time.load(), 0);

  auto account = h.Call("GET", "/v1/accounts/31000001");
  ASSERT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(StringAt(JsonOf(account), "base_domain"), "example.kommo.com");
  EXPECT_EQ(StringAt(JsonOf(account), "api_domain"), "api-c.kommo.com");
  EXPECT_EQ(StringAt(JsonOf(account), "client_id"), h.SandboxIntegration().client_id);

  // A refresh whose answer was lost (the process died after Kommo answered, before the commit:
  // architecture.md) leaves the old refresh token in the row. Under Kommo's grace it still works
  // until the new one is used, so the next refresh simply succeeds.
  const core::Connection before = Row();
  h.amo_counter->last_server_time = -1;
  auto refreshed = h.Call("POST", "/v1/accounts/31000001/refresh");
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_GT(h.amo_counter->last_server_time.load(), 0);
  core::Connection lost = Row();
  ASSERT_FALSE(lost.refresh_token == before.refresh_token);
  const std::int64_t version = lost.version;
  lost.access_token = before.access_token;
  lost.refresh_token = before.refresh_token;
  std::vector<service::Event> none;
  ASSERT_TRUE(h.Await(h.Store().Replace(std::move(lost), version, std::move(none))));

  refreshed = h.Call("POST", "/v1/accounts/31000001/refresh");
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(StringAt(JsonOf(refreshed), "status"), "active");
  EXPECT_EQ(Counter("refreshes"), 2);
  EXPECT_EQ(Counter("refresh_token_reuses"), 0);
  // And once more on the pair just stored: rotation goes on normally.
  refreshed = h.Call("POST", "/v1/accounts/31000001/refresh");
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(Counter("refreshes"), 3);

  auto proxied = h.Call("GET", "/v1/accounts/31000001/proxy/api/v4/account");
  ASSERT_EQ(proxied.status, 200) << proxied.body;
  EXPECT_EQ(JsonOf(proxied).at("id").as_int64(), kKommoAccount);
  EXPECT_EQ(Counter("api_unauthorized"), 0);
}

TEST_F(KommoTest, StrictRotationWouldHaveLostTheSameAccount) {
  // The control for the test above: the same lost answer on amoCRM's strict rotation ends the
  // account (the old refresh token is dead at once), so the grace is what saved it there.
  h.ConfigureSandbox(R"({"rotation":"strict"})");
  Connect();
  const core::Connection before = Row();
  ASSERT_EQ(h.Call("POST", "/v1/accounts/31000001/refresh").status, 200);
  core::Connection lost = Row();
  const std::int64_t version = lost.version;
  lost.access_token = before.access_token;
  lost.refresh_token = before.refresh_token;
  std::vector<service::Event> none;
  ASSERT_TRUE(h.Await(h.Store().Replace(std::move(lost), version, std::move(none))));
  auto refreshed = h.Call("POST", "/v1/accounts/31000001/refresh");
  EXPECT_EQ(refreshed.status, 409) << refreshed.body;
  EXPECT_EQ(StringAt(JsonOf(refreshed), "error"), "reauth_required");
}

}  // namespace
}  // namespace amoauth::testing
