// The admin UI (docs/admin-ui.md) over the real service and sandbox: the login and its cookie,
// sessions, CSRF, the security headers, escaping, and what the actions do.
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kAccount = 30000001;

std::string Header(const net::HttpResponse& r, std::string_view name) {
  return std::string(r.headers.Get(name).value_or(""));
}

void ExpectSecurityHeaders(const net::HttpResponse& r) {
  const std::string csp = Header(r, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("'unsafe-inline'", csp.find("script-src")), csp.find("'unsafe-inline'"))
      << "no unsafe-inline for scripts: " << csp;
  EXPECT_EQ(csp.find("script-src 'self' 'unsafe-inline'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(Header(r, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(Header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Header(r, "Cache-Control"), "no-store");
}

/// The browser side of a session: its cookie and the CSRF token its pages carry.
struct Admin {
  std::string cookie;  ///< "amoauth_admin=…"
  std::string csrf;
};

std::string CsrfOf(const std::string& page) {
  static const std::regex kCsrf(R"re(name="csrf" value="([0-9a-f]{64})")re");
  std::smatch m;
  return std::regex_search(page, m, kCsrf) ? m[1].str() : std::string();
}

net::HttpResponse PostLogin(ServiceHarness& h, const std::string& key) {
  return h.Send("POST",
                "/admin/login",
                {{"Content-Type", "application/x-www-form-urlencoded"}},
                "api_key=" + key);
}

Admin LogIn(ServiceHarness& h) {
  auto login = PostLogin(h, h.ApiKey());
  EXPECT_EQ(login.status, 303) << login.body;
  const std::string set_cookie = Header(login, "Set-Cookie");
  Admin admin{.cookie = set_cookie.substr(0, set_cookie.find(';'))};
  auto page = h.Send("GET", "/admin", {{"Cookie", admin.cookie}});
  EXPECT_EQ(page.status, 200);
  admin.csrf = CsrfOf(page.body);
  EXPECT_EQ(admin.csrf.size(), 64U);
  return admin;
}

net::HttpResponse Get(ServiceHarness& h, const Admin& admin, const std::string& target) {
  return h.Send("GET", target, {{"Cookie", admin.cookie}});
}

net::HttpResponse PostForm(ServiceHarness& h,
                           const Admin& admin,
                           const std::string& target,
                           const std::string& body,
                           Headers extra = {}) {
  Headers headers{{"Cookie", admin.cookie}, {"Content-Type", "application/x-www-form-urlencoded"}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  return h.Send("POST", target, std::move(headers), body);
}

std::string ActionBody(const Admin& admin, const std::string& client_id) {
  return "csrf=" + admin.csrf + "&client_id=" + client_id;
}

TEST(AdminUi, WithoutASessionEveryPageRedirectsToTheLoginForm) {
  ServiceHarness h;
  h.Connect();
  for (const std::string target : {"/admin", "/admin/integrations", "/admin/accounts/30000001"}) {
    auto r = h.Send("GET", target, {});
    EXPECT_EQ(r.status, 303) << target;
    EXPECT_EQ(Header(r, "Location"), "/admin/login") << target;
    ExpectSecurityHeaders(r);
  }
  // The API key does not open the UI either: only the session cookie does.
  auto with_key = h.Send("GET", "/admin", {{"Authorization", "Bearer " + h.ApiKey()}});
  EXPECT_EQ(with_key.status, 303);
  // A forged cookie neither.
  auto forged = h.Send("GET", "/admin", {{"Cookie", "amoauth_admin=" + std::string(64, 'a')}});
  EXPECT_EQ(forged.status, 303);

  auto form = h.Send("GET", "/admin/login", {});
  EXPECT_EQ(form.status, 200);
  ExpectSecurityHeaders(form);
  EXPECT_NE(form.body.find(R"(<form method="post" action="/admin/login">)"), std::string::npos);
  EXPECT_NE(form.body.find(R"(type="password")"), std::string::npos);
  EXPECT_EQ(form.body.find("<script>"), std::string::npos) << "no inline script";
}

TEST(AdminUi, AWrongKeyGetsAClearErrorAndNoSession) {
  ServiceHarness h;
  auto wrong = PostLogin(h, "not-the-key");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(Header(wrong, "Set-Cookie").empty());
  EXPECT_NE(wrong.body.find("That is not the API key"), std::string::npos) << wrong.body;
  EXPECT_EQ(wrong.body.find("not-the-key"), std::string::npos) << "the attempt is not echoed";
  ExpectSecurityHeaders(wrong);
  auto empty = PostLogin(h, "");
  EXPECT_EQ(empty.status, 401);
  EXPECT_TRUE(Header(empty, "Set-Cookie").empty());
}

TEST(AdminUi, TheSessionCookieIsHttpOnlyStrictAndScopedToTheAdminPages) {
  ServiceHarness h;
  auto login = PostLogin(h, h.ApiKey());
  ASSERT_EQ(login.status, 303);
  EXPECT_EQ(Header(login, "Location"), "/admin");
  const std::string cookie = Header(login, "Set-Cookie");
  EXPECT_TRUE(std::regex_search(cookie, std::regex("^amoauth_admin=[0-9a-f]{64}; "))) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Path=/admin"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Max-Age=28800"), std::string::npos) << cookie;
  // The harness's Redirect URI is http://127.0.0.1: no Secure (a browser would drop the cookie).
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find(h.ApiKey()), std::string::npos);
}

TEST(AdminUi, TheCookieIsSecureWhenTheServiceIsServedOverHttps) {
  ServiceHarness::Options options;
  options.admin_cookie_secure = true;  // as when AMO_REDIRECT_URI is https://
  ServiceHarness h(options);
  const std::string cookie = Header(PostLogin(h, h.ApiKey()), "Set-Cookie");
  EXPECT_NE(cookie.find("; Secure"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
}

TEST(AdminUi, TheAccountsListShowsStatusDomainAndRelativeTimesFromTheServersClock) {
  ServiceHarness h;
  h.Connect();
  const Admin admin = LogIn(h);
  auto page = Get(h, admin, "/admin");
  ASSERT_EQ(page.status, 200);
  ExpectSecurityHeaders(page);
  EXPECT_NE(page.body.find(R"(<tr data-account-id="30000001")"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("example.amocrm.ru"), std::string::npos);
  EXPECT_NE(page.body.find(">active</span>"), std::string::npos);
  // The sandbox's tokens live 24 h; the refresh was just now.
  EXPECT_NE(page.body.find(R"(<td class="expires"><time)"), std::string::npos);
  EXPECT_NE(page.body.find(">in 24 h</time>"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find(R"(<td class="last-refresh"><time)"), std::string::npos);
  EXPECT_NE(page.body.find(">just now</time>"), std::string::npos);
  EXPECT_NE(page.body.find(R"(href="/connect")"), std::string::npos) << "connect a new account";

  h.clock.Advance(hours(3));  // amoauth's clock only: nothing refreshes
  auto later = Get(h, admin, "/admin");
  EXPECT_NE(later.body.find(">in 21 h</time>"), std::string::npos) << later.body;
  EXPECT_NE(later.body.find(">3 h ago</time>"), std::string::npos);
  h.clock.Advance(hours(24 * 3));
  later = Get(h, LogIn(h), "/admin");  // the first session has ended (8 h)
  EXPECT_NE(later.body.find(">3 days ago</time>"), std::string::npos) << later.body;
}

TEST(AdminUi, EverythingFromTheStoreIsHtmlEscaped) {
  ServiceHarness h;
  h.Connect();
  // A row as an attacker might shape it: a host and an error with markup in them.
  auto row = h.Await(h.Store().Find({kAccount, h.SandboxIntegration().client_id}));
  ASSERT_TRUE(row && *row);
  core::Connection c = **row;
  c.base_domain = "<b>evil</b>.amocrm.ru";
  c.user_id = "\"><script>alert(1)</script>";
  c.last_error = "<img src=x onerror=alert(1)>";
  c.last_error_at = h.clock.Now();
  ASSERT_TRUE(h.Await(h.Store().Replace(c, c.version, {})));
  const Admin admin = LogIn(h);
  for (const std::string target : {"/admin", "/admin/accounts/30000001"}) {
    auto page = Get(h, admin, target);
    ASSERT_EQ(page.status, 200) << target;
    EXPECT_EQ(page.body.find("<img src=x"), std::string::npos) << target;
    EXPECT_EQ(page.body.find("<b>evil"), std::string::npos) << target;
    EXPECT_EQ(page.body.find("<script>alert"), std::string::npos) << target;
    EXPECT_NE(page.body.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos) << target;
    EXPECT_NE(page.body.find("&lt;b&gt;evil&lt;/b&gt;.amocrm.ru"), std::string::npos) << target;
  }
}

TEST(AdminUi, AFormWithoutTheSessionsCsrfTokenChangesNothing) {
  ServiceHarness h;
  h.Connect();
  const Admin admin = LogIn(h);
  const Admin other = LogIn(h);  // another session: its token is not this one's
  ASSERT_NE(admin.csrf, other.csrf);
  const std::string client = h.SandboxIntegration().client_id;
  const int calls_before = h.amo_counter->calls;
  const std::string target = "/admin/accounts/30000001/refresh";
  const std::vector<std::string> bodies = {
      "client_id=" + client,                                    // no token
      "csrf=" + std::string(64, '0') + "&client_id=" + client,  // a made-up one
      ActionBody(other, client),                                // another session's
  };
  for (const auto& body : bodies) {
    auto r = PostForm(h, admin, target, body);
    EXPECT_EQ(r.status, 403) << body;
    ExpectSecurityHeaders(r);
  }
  // The right token from another site (Origin) is refused too.
  auto cross = PostForm(
      h, admin, target, ActionBody(admin, client), {{"Origin", "https://attacker.example"}});
  EXPECT_EQ(cross.status, 403);
  auto disconnect =
      PostForm(h, admin, "/admin/accounts/30000001/disconnect", "client_id=" + client);
  EXPECT_EQ(disconnect.status, 403);
  // Without a session at all: to the login form, nothing done.
  auto anonymous = h.Send("POST",
                          target,
                          {{"Content-Type", "application/x-www-form-urlencoded"}},
                          ActionBody(admin, client));
  EXPECT_EQ(anonymous.status, 303);
  EXPECT_EQ(h.amo_counter->calls, calls_before) << "amoCRM was not called";
  auto row = h.Await(h.Store().Find({kAccount, client}));
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->status, core::ConnectionStatus::kActive);
}

TEST(AdminUi, ForcingARefreshRefreshesAndTheHistoryShowsIt) {
  ServiceHarness::Options options;
  options.events = false;  // no webhooks: the history is kept anyway
  ServiceHarness h(options);
  h.Connect();
  const Admin admin = LogIn(h);
  const std::string client = h.SandboxIntegration().client_id;
  auto before = h.Await(h.Store().Find({kAccount, client}));
  ASSERT_TRUE(before && *before);
  auto account = Get(h, admin, "/admin/accounts/30000001");
  ASSERT_EQ(account.status, 200);
  ExpectSecurityHeaders(account);
  EXPECT_NE(account.body.find(R"(data-type="account.connected")"), std::string::npos)
      << account.body;
  EXPECT_EQ(account.body.find(R"(data-type="token.refreshed")"), std::string::npos);

  h.AdvanceClocks(hours(2));
  const int calls_before = h.amo_counter->calls;
  // What chromium sends on the UI's own form under Referrer-Policy: no-referrer: Origin null.
  auto refreshed = PostForm(h,
                            admin,
                            "/admin/accounts/30000001/refresh",
                            ActionBody(admin, client),
                            {{"Origin", "null"}});
  ASSERT_EQ(refreshed.status, 303) << refreshed.body;
  EXPECT_EQ(Header(refreshed, "Location"), "/admin/accounts/30000001?done=refreshed");
  EXPECT_EQ(h.amo_counter->calls, calls_before + 1);
  auto after = h.Await(h.Store().Find({kAccount, client}));
  ASSERT_TRUE(after && *after);
  EXPECT_GT((*after)->version, (*before)->version);
  EXPECT_NE((*after)->access_token.Reveal(), (*before)->access_token.Reveal());

  auto page = Get(h, admin, "/admin/accounts/30000001?done=refreshed");
  EXPECT_NE(page.body.find("Refreshed: a new access token is stored."), std::string::npos);
  const auto refreshed_at = page.body.find(R"(data-type="token.refreshed")");
  const auto connected_at = page.body.find(R"(data-type="account.connected")");
  ASSERT_NE(refreshed_at, std::string::npos) << page.body;
  EXPECT_LT(refreshed_at, connected_at) << "newest first";
  // Nothing went to the outbox: webhooks are off.
  EXPECT_EQ(h.Await(h.Store().CountPending()).value(), 0U);
}

TEST(AdminUi, AFailedRefreshIsToldOnTheAccountPage) {
  ServiceHarness h;
  h.Connect();
  const Admin admin = LogIn(h);
  auto fault = h.SandboxPost(
      "/sandbox/faults", "application/json", R"({"token_endpoint":{"status":503,"times":1}})");
  ASSERT_EQ(fault.status, 200) << fault.body;
  auto failed = PostForm(h,
                         admin,
                         "/admin/accounts/30000001/refresh",
                         ActionBody(admin, h.SandboxIntegration().client_id));
  EXPECT_GE(failed.status, 500) << failed.body;
  EXPECT_NE(failed.body.find("The refresh failed"), std::string::npos) << failed.body;
  EXPECT_NE(failed.body.find(R"(data-type="token.refresh_failed")"), std::string::npos);
}

TEST(AdminUi, DisconnectErasesTheTokensAndTellsTheBackend) {
  ServiceHarness h;
  h.Connect();
  const Admin admin = LogIn(h);
  const std::string client = h.SandboxIntegration().client_id;
  auto done = PostForm(h, admin, "/admin/accounts/30000001/disconnect", ActionBody(admin, client));
  ASSERT_EQ(done.status, 303) << done.body;
  EXPECT_EQ(Header(done, "Location"), "/admin/accounts/30000001?done=disconnected");
  auto row = h.Await(h.Store().Find({kAccount, client}));
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->status, core::ConnectionStatus::kDisconnected);
  EXPECT_TRUE((*row)->access_token.Empty());
  EXPECT_TRUE((*row)->refresh_token.Empty());
  auto token = h.Call("GET", "/v1/accounts/30000001/token");
  EXPECT_EQ(token.status, 409);
  EXPECT_NE(token.body.find("account_disconnected"), std::string::npos);

  auto page = Get(h, admin, "/admin/accounts/30000001?done=disconnected");
  EXPECT_NE(page.body.find(">disconnected</span>"), std::string::npos);
  EXPECT_NE(page.body.find(R"(data-type="account.disconnected")"), std::string::npos);
  EXPECT_NE(page.body.find("by: operator"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("/disconnect\""), std::string::npos) << "no second disconnect button";
  // The backend is told, by the outbox, with who did it.
  bool told = false;
  auto claimed = h.Await(h.Store().ClaimDue(h.clock.Now(), h.clock.Now() + minutes(1), 100));
  ASSERT_TRUE(claimed);
  for (const auto& e : *claimed) {
    if (e.type == "account.disconnected") {
      told = true;
      EXPECT_NE(e.body.find(R"("by":"operator")"), std::string::npos) << e.body;
    }
  }
  EXPECT_TRUE(told);
}

TEST(AdminUi, LogoutEndsTheSessionAndSessionsEndAfterEightHours) {
  ServiceHarness h;
  const Admin admin = LogIn(h);
  auto out = PostForm(h, admin, "/admin/logout", "csrf=" + admin.csrf);
  ASSERT_EQ(out.status, 303);
  EXPECT_EQ(Header(out, "Location"), "/admin/login");
  EXPECT_NE(Header(out, "Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Get(h, admin, "/admin").status, 303);

  const Admin second = LogIn(h);
  h.clock.Advance(hours(8) - minutes(1));
  EXPECT_EQ(Get(h, second, "/admin").status, 200);
  h.clock.Advance(minutes(2));
  auto expired = Get(h, second, "/admin");
  EXPECT_EQ(expired.status, 303);
  EXPECT_EQ(Header(expired, "Location"), "/admin/login");
}

TEST(AdminUi, RepeatedWrongKeysFromOneAddressAreHeldOffForFifteenMinutes) {
  ServiceHarness h;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(PostLogin(h, "wrong-" + std::to_string(i)).status, 401) << i;
  }
  // Now even the right key is refused, with when to come back.
  auto held = PostLogin(h, h.ApiKey());
  EXPECT_EQ(held.status, 429);
  EXPECT_TRUE(Header(held, "Set-Cookie").empty());
  EXPECT_EQ(Header(held, "Retry-After"), "900");
  EXPECT_NE(held.body.find("Too many wrong keys"), std::string::npos);
  h.clock.Advance(minutes(15));
  EXPECT_EQ(PostLogin(h, h.ApiKey()).status, 303);
}

TEST(AdminUi, TheIntegrationsPageListsTheConfiguredIntegrationAndCountsItsAccounts) {
  ServiceHarness h;
  h.Connect();
  const Admin admin = LogIn(h);
  auto page = Get(h, admin, "/admin/integrations");
  ASSERT_EQ(page.status, 200);
  ExpectSecurityHeaders(page);
  const std::string row =
      R"(<tr data-client-id=")" + h.SandboxIntegration().client_id + R"("><td><code>)";
  EXPECT_NE(page.body.find(row), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<td>configured</td>"), std::string::npos);
  EXPECT_NE(page.body.find("<td>1</td><td>1</td>"), std::string::npos) << "one account, active";
  EXPECT_EQ(page.body.find(h.SandboxIntegration().client_secret), std::string::npos);
}

TEST(AdminUi, TheScriptIsServedWithTheRightTypeAndNoSessionNeeded) {
  ServiceHarness h;
  auto js = h.Send("GET", "/admin/admin.js", {});
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(Header(js, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(js, "X-Content-Type-Options"), "nosniff");
  EXPECT_NE(js.body.find("data-confirm"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::testing
