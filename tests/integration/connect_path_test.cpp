// The connect → exchange → store → use path through the real service and the real sandbox,
// over TLS on 127.0.0.1, and every way bad input must be met on it (issue 2).
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string QueryValue(const std::string& url, const std::string& name) {
  auto parsed = boost::urls::parse_uri_reference(url);
  auto it = parsed->params().find(name);
  return it == parsed->params().end() ? std::string() : std::string((*it).value);
}

/// The callback URL with `name` set to `value` (other parameters kept).
std::string WithParam(const std::string& url, const std::string& name, const std::string& value) {
  boost::urls::url u(url);
  u.params().set(name, value);
  return std::string(u.buffer());
}

/// Captures every log line of the process while alive.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string Text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

class ConnectPathTest : public ::testing::Test {
 protected:
  ServiceHarness h;
};

TEST_F(ConnectPathTest, ConnectExchangeStoreAndUse) {
  const std::string location = h.Decide(h.StartConnect(), "allow");
  EXPECT_EQ(QueryValue(location, "referer"), "example.amocrm.ru");

  auto page = h.Get(location);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("example.amocrm.ru"));
  EXPECT_THAT(page.body, HasSubstr("is connected"));

  auto accounts = h.Call("GET", "/v1/accounts");
  ASSERT_EQ(accounts.status, 200);
  auto list = boost::json::parse(accounts.body).as_object().at("accounts").as_array();
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0].as_object().at("account_id").as_int64(), 30000001);
  EXPECT_EQ(list[0].as_object().at("status").as_string(), "active");
  EXPECT_THAT(accounts.body, Not(HasSubstr("access_token")));

  auto token = h.Call("GET", "/v1/accounts/30000001/token");
  ASSERT_EQ(token.status, 200) << token.body;
  auto t = boost::json::parse(token.body).as_object();
  EXPECT_EQ(t.at("token_type").as_string(), "Bearer");
  EXPECT_EQ(t.at("account_id").as_int64(), 30000001);
  EXPECT_EQ(t.at("base_domain").as_string(), "example.amocrm.ru");
  EXPECT_EQ(t.at("api_domain").as_string(), "api-b.amocrm.ru");
  EXPECT_EQ(t.at("expires_in").as_int64(), 86400);
  const std::string access_token(t.at("access_token").as_string());

  auto account = h.Call("GET", "/v1/accounts/30000001/proxy/api/v4/account");
  ASSERT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(boost::json::parse(account.body).as_object().at("id").as_int64(), 30000001);

  auto echo =
      h.Call("POST", "/v1/accounts/30000001/proxy/api/v4/leads?with=contacts", R"([{"name":"x"}])");
  ASSERT_EQ(echo.status, 200) << echo.body;
  auto e = boost::json::parse(echo.body).as_object();
  EXPECT_EQ(e.at("method").as_string(), "POST");
  EXPECT_EQ(e.at("path").as_string(), "/api/v4/leads");
  EXPECT_THAT(std::string(e.at("query").as_string()), HasSubstr("with=contacts"));
  EXPECT_EQ(e.at("body").as_string(), R"([{"name":"x"}])");

  // Encrypted at rest: neither token appears in the database files.
  const std::string raw = Slurp(h.DatabasePath()) + Slurp(h.DatabasePath() + "-wal");
  EXPECT_FALSE(raw.empty());
  EXPECT_EQ(raw.find(access_token), std::string::npos);
  EXPECT_EQ(raw.find(access_token.substr(0, 40)), std::string::npos);
}

// POST /v1/connect's reference (the backend's user, say) comes back with the account.connected of
// the connection that flow made, for the backend to attribute it (security.md, threat 1).
TEST_F(ConnectPathTest, AReferenceGivenAtTheStartComesBackInAccountConnected) {
  const std::vector<std::string> refused_bodies = {
      R"({"reference":""})",
      R"({"reference":42})",
      R"({"reference":"a\u0000b"})",
      R"({"reference":")" + std::string(201, 'r') + R"("})",
  };
  for (const std::string& bad : refused_bodies) {
    auto refused = h.Call("POST", "/v1/connect", bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_THAT(refused.body, HasSubstr("reference")) << bad;
  }
  auto started =
      h.Call("POST", "/v1/connect", R"({"mode":"post_message","reference":"user-8812"})");
  ASSERT_EQ(started.status, 201) << started.body;
  const auto start = boost::json::parse(started.body).as_object();
  EXPECT_EQ(start.at("reference").as_string(), "user-8812");
  auto page = h.Get(h.Decide(std::string(start.at("state").as_string()), "allow"));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, Not(HasSubstr("user-8812"))) << "the browser is not told";

  const auto now = h.clock.Now();
  auto due = h.Await(h.Store().ClaimDue(now, now + std::chrono::minutes(1), 10));
  ASSERT_TRUE(due) << due.error().message();
  ASSERT_EQ(due->size(), 1U);
  const auto event = boost::json::parse(due->front().body).as_object();
  EXPECT_EQ(event.at("type").as_string(), "account.connected");
  EXPECT_EQ(event.at("account_id").as_int64(), 30000001);
  EXPECT_EQ(event.at("data"), (boost::json::object{{"reference", "user-8812"}}));
}

TEST_F(ConnectPathTest, ReloadingTheCallbackDoesNotSendTheCodeAgain) {
  const std::string location = h.Decide(h.StartConnect(), "allow");
  ASSERT_EQ(h.Get(location).status, 200);
  auto again = h.Get(location);
  EXPECT_EQ(again.status, 400);
  EXPECT_THAT(again.body, HasSubstr("expired or was already used"));
  EXPECT_THAT(again.body, HasSubstr("href=\"/\""));
  auto counters = h.SandboxCounters();
  EXPECT_EQ(counters.at("codes_exchanged").as_int64(), 1);
  EXPECT_EQ(counters.at("code_reuses").as_int64(), 0);
}

TEST_F(ConnectPathTest, MissingUnknownOrExpiredStateIsRefusedBeforeAnythingGoesOut) {
  const std::string location = h.Decide(h.StartConnect(), "allow");
  boost::urls::url no_state(location);
  no_state.params().erase("state");
  for (const std::string& url : {std::string(no_state.buffer()),
                                 WithParam(location, "state", "x"),
                                 WithParam(location, "state", std::string(43, 'A'))}) {
    auto page = h.Get(url);
    EXPECT_EQ(page.status, 400) << url;
    EXPECT_THAT(page.body, HasSubstr("expired or was already used"));
  }
  // The real state, 21 minutes later.
  h.clock.Advance(std::chrono::minutes(21));
  auto late = h.Get(location);
  EXPECT_EQ(late.status, 400);
  EXPECT_THAT(late.body, HasSubstr("expired or was already used"));

  EXPECT_EQ(h.amo_counter->calls.load(), 0);
  EXPECT_EQ(h.SandboxCounters().at("token_requests").as_int64(), 0);
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, R"({"accounts":[]})");
}

TEST_F(ConnectPathTest, RefererOutsideTheAllowListNeverReceivesAnything) {
  const std::string state = h.StartConnect();
  const std::string location = h.Decide(state, "allow");
  for (const char* referer : {"evil.example",
                              "amocrm.ru.evil.example",
                              "sub.amocrm.ru@evil.example",
                              "example.amocrm.ru:443",
                              "example.amocrm.ru/path",
                              "https://example.amocrm.ru",
                              "example.amocrm.ru.",
                              "a.b.amocrm.ru",
                              "",
                              "amocrm.ru"}) {
    auto page = h.Get(WithParam(location, "referer", referer));
    EXPECT_EQ(page.status, 400) << referer;
    EXPECT_THAT(page.body, HasSubstr("not an amoCRM or Kommo account")) << referer;
  }
  EXPECT_EQ(h.amo_counter->calls.load(), 0);
  EXPECT_EQ(h.SandboxCounters().at("token_requests").as_int64(), 0);
  // The state was not spent on the forgeries: the real redirect still works.
  EXPECT_EQ(h.Get(location).status, 200);
}

TEST_F(ConnectPathTest, AccessDeniedSaysSoAndStoresNothing) {
  const std::string location = h.Decide(h.StartConnect(), "deny");
  EXPECT_EQ(QueryValue(location, "error"), "access_denied");
  auto page = h.Get(location);
  EXPECT_EQ(page.status, 403);
  EXPECT_THAT(page.body, HasSubstr("Access was not granted"));
  EXPECT_EQ(h.amo_counter->calls.load(), 0);
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, R"({"accounts":[]})");
}

TEST_F(ConnectPathTest, ExpiredCodeIsExplainedAndLoggedWithTheHintButNeverTheCode) {
  LogCapture logs;
  const std::string location = h.Decide(h.StartConnect(), "allow");
  const std::string code = QueryValue(location, "code");
  ASSERT_FALSE(code.empty());
  ASSERT_EQ(
      h.SandboxPost("/sandbox/clock/advance", "application/json", R"({"seconds":1260})").status,
      200);

  auto page = h.Get(location);
  EXPECT_EQ(page.status, 502);
  EXPECT_THAT(page.body, HasSubstr("took too long"));
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, R"({"accounts":[]})");

  const std::string text = logs.Text();
  EXPECT_THAT(text, HasSubstr("Authorization code has expired"));
  EXPECT_EQ(text.find(code), std::string::npos);
  EXPECT_EQ(text.find(code.substr(0, 24)), std::string::npos);
  EXPECT_EQ(text.find(h.SandboxIntegration().client_secret), std::string::npos);
}

TEST(ConnectPathMismatch, RedirectUriMismatchIsExplained) {
  ServiceHarness h({.redirect_uri_override = "https://elsewhere.example/callback"});
  auto page = h.Get(h.Decide(h.StartConnect(), "allow"));
  EXPECT_EQ(page.status, 502);
  EXPECT_THAT(page.body, HasSubstr("Redirect URI"));
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, R"({"accounts":[]})");
}

/// One concrete request per method of every route the router has: parameters filled in ({id}
/// an account that exists, {path*} an amoCRM API path, any other a word), "*" as the methods a
/// caller would use. Taken from the router's own table, so a route added later is walked too.
struct RouteCall {
  std::string method;
  std::string target;
  std::string pattern;
};
std::vector<RouteCall> EveryRoute(const ServiceHarness& h) {
  std::vector<RouteCall> calls;
  for (const auto& route : h.Routes().Table()) {
    std::string target;
    std::string_view rest = route.pattern;
    while (!rest.empty()) {
      const auto open = rest.find('{');
      if (open == std::string_view::npos) {
        target += rest;
        break;
      }
      const auto close = rest.find('}', open);
      const std::string_view name = rest.substr(open + 1, close - open - 1);
      target += rest.substr(0, open);
      target += name.ends_with('*') ? "api/v4/account" : name == "id" ? "30000001" : "x";
      rest.remove_prefix(close + 1);
    }
    const std::vector<std::string> methods =
        route.method == "*" ? std::vector<std::string>{"GET", "POST", "PATCH", "DELETE"}
                            : std::vector<std::string>{route.method};
    for (const std::string& method : methods) {
      calls.push_back({method, target, route.pattern});
    }
  }
  return calls;
}

// docs/security.md, threat 9: every route of the internal API (every /v1 route the router has,
// and /metrics), with no key and with a wrong one: 401 in words, and nothing done — no refresh,
// no proxied call, no state, no token handed out.
TEST_F(ConnectPathTest, EveryInternalRouteRefusesACallerWithoutTheKeyAndDoesNothing) {
  h.Connect();
  const auto before = h.SandboxCounters();
  const auto accounts_before = h.Call("GET", "/v1/accounts").body;
  std::vector<RouteCall> internal;
  std::set<std::string> patterns;
  for (RouteCall& call : EveryRoute(h)) {
    if (call.pattern.starts_with("/v1/") || call.pattern == "/metrics") {
      patterns.insert(call.pattern);
      internal.push_back(std::move(call));
    }
  }
  EXPECT_GE(patterns.size(), 11U) << "the router's table lost the internal routes";
  for (const std::optional<std::string>& key :
       {std::optional<std::string>(""), std::optional<std::string>("wrong-key-wrong-key-wrong")}) {
    for (const RouteCall& call : internal) {
      SCOPED_TRACE(call.method + " " + call.target + " with key '" + *key + "'");
      const std::string body = call.method == "GET" ? "" : "{}";
      const auto r = h.Call(call.method, call.target, body, key);
      EXPECT_EQ(r.status, 401) << r.body;
      const auto parsed = boost::json::parse(r.body).as_object();
      EXPECT_EQ(parsed.at("error").as_string(), "unauthorized");
      EXPECT_FALSE(parsed.at("message").as_string().empty());
      EXPECT_EQ(r.body.find("access_token"), std::string::npos);
    }
  }
  EXPECT_EQ(h.SandboxCounters(), before) << "a refused call reached amoCRM";
  EXPECT_EQ(h.Call("GET", "/v1/accounts").body, accounts_before);
}

// docs/security.md, threat 7: no answer of any route sends the browser off-site, whatever the
// request asks for (parameters that redirecting code typically reads, a foreign Referer), with no
// credentials, with the API key, and from the admin login. A Location, where there is one, is a
// path on this host.
TEST_F(ConnectPathTest, NoAnswerOfAnyRouteRedirectsOffSite) {
  h.Connect();
  const std::string hostile =
      "next=https%3A%2F%2Fevil.example%2F&return_to=%2F%2Fevil.example&redirect_uri=https%3A%2F%2F"
      "evil.example&redirect=%2F%5Cevil.example&url=https://evil.example&referer=evil.example&"
      "continue=javascript:alert(1)";
  auto check = [](const std::string& what, const net::HttpResponse& r) {
    const auto location = r.headers.Get("Location");
    if (!location) {
      return;
    }
    const std::string l(*location);
    EXPECT_TRUE(l.starts_with("/") && !l.starts_with("//") && !l.starts_with("/\\"))
        << what << " answered " << r.status << " with Location: " << l;
    EXPECT_EQ(l.find("evil"), std::string::npos) << what << ": " << l;
  };
  std::size_t calls = 0;
  for (const RouteCall& call : EveryRoute(h)) {
    const std::string target =
        call.target + (call.target.find('?') == std::string::npos ? "?" : "&") + hostile;
    const std::string body = call.method == "GET" ? "" : "next=https%3A%2F%2Fevil.example";
    for (const bool with_key : {false, true}) {
      std::vector<std::pair<std::string, std::string>> headers = {
          {"Referer", "https://evil.example/"},
          {"Content-Type", "application/x-www-form-urlencoded"}};
      if (with_key) {
        headers.emplace_back("Authorization", "Bearer " + h.ApiKey());
      }
      check(call.method + " " + call.target + (with_key ? " with the key" : ""),
            h.Send(call.method, target, headers, body));
      ++calls;
    }
  }
  EXPECT_GE(calls, 40U);
  // The admin login's 303 goes to the admin page, not where the form asks.
  auto login = h.Send("POST",
                      "/admin/login?" + hostile,
                      {{"Content-Type", "application/x-www-form-urlencoded"}},
                      "api_key=" + h.ApiKey() + "&next=https%3A%2F%2Fevil.example");
  EXPECT_EQ(login.status, 303) << login.body;
  EXPECT_EQ(login.headers.Get("Location").value_or(""), "/admin");
  check("the admin login", login);
}

// Every HTML page amoauth serves tells the browser: no Referer (the callback URL carries a code),
// no caching, no sniffing. The callback's pages load nothing, cannot be framed and run no script
// but their own (this response's nonce); the connect page runs only its own inline script and
// amoCRM's button script from its origin ('unsafe-eval' for that script: pages.cpp says why).
TEST_F(ConnectPathTest, EveryPageCarriesTheSecurityHeaders) {
  std::vector<std::pair<std::string, net::HttpResponse>> pages;
  pages.emplace_back("connect page", h.Get(h.BaseUrl() + "/connect"));
  pages.emplace_back("connect page, again", h.Get(h.BaseUrl() + "/connect"));
  pages.emplace_back("callback with an unknown state",
                     h.Get(h.BaseUrl() + "/api/v1/integrations/amo-crm/callback?code=def502&"
                                         "state=never-issued&referer=example.amocrm.ru"));
  pages.emplace_back("callback after consent", h.Get(h.Decide(h.StartConnect(), "allow")));
  std::vector<std::string> nonces;
  for (const auto& [name, page] : pages) {
    SCOPED_TRACE(name);
    EXPECT_THAT(page.headers.Get("Content-Type").value_or(""), HasSubstr("text/html"));
    EXPECT_EQ(page.headers.Get("Referrer-Policy").value_or(""), "no-referrer");
    EXPECT_EQ(page.headers.Get("Cache-Control").value_or(""), "no-store");
    EXPECT_EQ(page.headers.Get("X-Content-Type-Options").value_or(""), "nosniff");
    const std::string csp(page.headers.Get("Content-Security-Policy").value_or(""));
    EXPECT_THAT(csp, HasSubstr("base-uri 'none'"));
    EXPECT_THAT(csp, HasSubstr("form-action 'none'"));
    if (name.rfind("connect page", 0) != 0) {
      EXPECT_THAT(csp, HasSubstr("default-src 'none'"));
      EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
      EXPECT_THAT(csp, Not(HasSubstr("unsafe-eval")));
      // The post_message hand-back is an inline script: it must carry this response's nonce.
      for (auto pos = page.body.find("<script"); pos != std::string::npos;
           pos = page.body.find("<script", pos + 1)) {
        const auto at = csp.find("'nonce-");
        ASSERT_NE(at, std::string::npos) << "a script, but no nonce in " << csp;
        const std::string nonce = csp.substr(at + 7, csp.find('\'', at + 7) - (at + 7));
        EXPECT_THAT(page.body.substr(pos, page.body.find('>', pos) - pos),
                    HasSubstr("nonce=\"" + nonce + "\""));
      }
      continue;
    }
    EXPECT_THAT(csp, HasSubstr("object-src 'none'"));
    const auto at = csp.find("'nonce-");
    ASSERT_NE(at, std::string::npos) << csp;
    const std::string nonce = csp.substr(at + 7, csp.find('\'', at + 7) - (at + 7));
    ASSERT_GE(nonce.size(), 16U);
    // Every script either carries the nonce or is amoCRM's button script from its origin.
    std::size_t inline_scripts = 0;
    for (auto pos = page.body.find("<script"); pos != std::string::npos;
         pos = page.body.find("<script", pos + 1)) {
      const std::string tag = page.body.substr(pos, page.body.find('>', pos) - pos);
      if (tag.find(" src=\"") != std::string::npos) {
        EXPECT_THAT(tag, HasSubstr("src=\"" + h.SandboxUrl() + "/auth/button.js\"")) << tag;
        EXPECT_THAT(csp, HasSubstr(" " + h.SandboxUrl() + " "));
      } else {
        ++inline_scripts;
        EXPECT_THAT(tag, HasSubstr("nonce=\"" + nonce + "\"")) << tag;
      }
    }
    EXPECT_GE(inline_scripts, 1U);
    nonces.push_back(nonce);
  }
  ASSERT_EQ(nonces.size(), 2U);
  EXPECT_NE(nonces[0], nonces[1]) << "a fresh nonce per response";
}

TEST_F(ConnectPathTest, InternalApiNeedsTheKeyAndNamesUnknownAccounts) {
  for (const std::optional<std::string>& key :
       {std::optional<std::string>(""), std::optional<std::string>("wrong-key-wrong-key-wrong")}) {
    auto r = h.Call("GET", "/v1/accounts", {}, key);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(boost::json::parse(r.body).as_object().at("error").as_string(), "unauthorized");
    EXPECT_EQ(h.Call("GET", "/v1/accounts/30000001/token", {}, key).status, 401);
    EXPECT_EQ(h.Call("POST", "/v1/connect", {}, key).status, 401);
  }
  auto missing = h.Call("GET", "/v1/accounts/12345/token");
  EXPECT_EQ(missing.status, 404);
  auto body = boost::json::parse(missing.body).as_object();
  EXPECT_EQ(body.at("error").as_string(), "not_found");
  EXPECT_FALSE(body.at("message").as_string().empty());
  EXPECT_EQ(h.Call("GET", "/v1/accounts/abc").status, 400);
  EXPECT_EQ(h.Call("POST", "/v1/connect", R"({"mode":"sideways"})").status, 400);
}

TEST_F(ConnectPathTest, ProbeWithoutParametersAnswers200) {
  auto r = h.Get(h.BaseUrl() + "/api/v1/integrations/amo-crm/callback");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(h.Get(h.BaseUrl() + "/healthz").status, 200);
}

TEST_F(ConnectPathTest, ConnectPageCarriesTheSiteButtonWithAFreshState) {
  auto page = h.Get(h.BaseUrl() + "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("class=\"amocrm_oauth\""));
  EXPECT_THAT(page.body, HasSubstr("data-client-id=\"" + h.SandboxIntegration().client_id + "\""));
  EXPECT_THAT(page.body, HasSubstr("/auth/button.js"));
  EXPECT_THAT(page.body, HasSubstr("data-state=\""));
}

TEST_F(ConnectPathTest, ExpiredAccessTokenIsRefreshedOnceForManyConcurrentCallers) {
  ASSERT_EQ(h.Get(h.Decide(h.StartConnect(), "allow")).status, 200);
  auto first = boost::json::parse(h.Call("GET", "/v1/accounts/30000001/token").body).as_object();
  h.clock.Advance(std::chrono::hours(24));

  std::vector<std::future<net::HttpResponse>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(std::async(std::launch::async,
                               [this] { return h.Call("GET", "/v1/accounts/30000001/token"); }));
  }
  std::set<std::string> tokens;
  for (auto& c : calls) {
    auto r = c.get();
    ASSERT_EQ(r.status, 200) << r.body;
    tokens.insert(
        std::string(boost::json::parse(r.body).as_object().at("access_token").as_string()));
  }
  EXPECT_EQ(tokens.size(), 1U);
  EXPECT_NE(*tokens.begin(), first.at("access_token").as_string());
  auto counters = h.SandboxCounters();
  EXPECT_EQ(counters.at("refreshes").as_int64(), 1);
  EXPECT_EQ(counters.at("refresh_token_reuses").as_int64(), 0);
}

}  // namespace
}  // namespace amoauth::testing
