// The handlers driven directly, request in, response out: no sockets.

#include "endpoints.hpp"

#include <map>
#include <memory>
#include <string>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <gtest/gtest.h>

#include "sandbox_context.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::string_view kRedirect = "https://app.example.com/amo/callback";

net::HttpRequest Request(std::string method,
                         std::string host,
                         std::string target,
                         std::string body = {},
                         std::string_view content_type = {}) {
  net::HttpRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.headers.Set("Host", host);
  if (!content_type.empty()) {
    req.headers.Set("Content-Type", content_type);
  }
  req.body = std::move(body);
  return req;
}

std::map<std::string, std::string> QueryOf(std::string_view url) {
  std::map<std::string, std::string> out;
  const auto parsed = boost::urls::parse_uri(url);
  EXPECT_TRUE(parsed.has_value()) << url;
  if (parsed) {
    for (const auto& param : parsed->params()) {
      out[param.key] = param.value;
    }
  }
  return out;
}

boost::json::object JsonOf(const net::HttpResponse& response) {
  const auto v = boost::json::parse(response.body);
  EXPECT_TRUE(v.is_object()) << response.body;
  return v.is_object() ? v.as_object() : boost::json::object{};
}

std::string ContentType(const net::HttpResponse& response) {
  return std::string(response.headers.Get("Content-Type").value_or(""));
}

class EndpointsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto generated = JwtSigner::Generate();
    ASSERT_TRUE(generated.has_value());
    signer_ = std::make_unique<JwtSigner>(*generated);
  }
  static void TearDownTestSuite() { signer_.reset(); }

  // The sandbox clock runs on now_, moved by hand: rate-limit windows never depend on how fast
  // the test runs.
  EndpointsTest() : ctx_(StateConfig{}, DefaultAccounts(), *signer_, [this] { return now_; }) {
    Integration i;
    i.redirect_uri = std::string(kRedirect);
    i.name = "Test shop";
    integration_ = ctx_.state.PutIntegration(i);
  }

  /// Consent "allow" as a browser posts it; returns the Location.
  std::string Allow(std::int64_t account_id,
                    std::string_view state = "s1",
                    std::string_view mode = "post_message") {
    const auto response = ServeBrowserSide(
        ctx_,
        Request("POST",
                "127.0.0.1:8080",
                "/oauth/decision",
                "client_id=" + integration_.client_id + "&state=" + std::string(state) +
                    "&mode=" + std::string(mode) + "&account_id=" + std::to_string(account_id) +
                    "&decision=allow",
                "application/x-www-form-urlencoded"));
    EXPECT_EQ(response.status, 302) << response.body;
    return std::string(response.headers.Get("Location").value_or(""));
  }

  net::HttpResponse Token(std::string_view host, const boost::json::object& body) {
    return ServeAmoSide(ctx_,
                        Request("POST",
                                std::string(host),
                                "/oauth2/access_token",
                                boost::json::serialize(body),
                                "application/json"));
  }

  boost::json::object CodeGrant(const std::string& code) const {
    return boost::json::object{{"client_id", integration_.client_id},
                               {"client_secret", integration_.client_secret},
                               {"grant_type", "authorization_code"},
                               {"code", code},
                               {"redirect_uri", integration_.redirect_uri}};
  }

  net::HttpResponse Api(std::string_view host,
                        const std::string& access_token,
                        std::string target = "/api/v4/account") {
    auto req = Request("GET", std::string(host), std::move(target));
    req.headers.Set("Authorization", "Bearer " + access_token);
    return ServeAmoSide(ctx_, req);
  }

  net::HttpResponse Control(std::string method, std::string target, std::string body = {}) {
    return ServeBrowserSide(
        ctx_, Request(std::move(method), "127.0.0.1:8090", std::move(target), std::move(body)));
  }

  /// Code → tokens on the account's host; the response body.
  boost::json::object Connect(std::int64_t account_id, std::string_view host) {
    const std::string code = QueryOf(Allow(account_id)).at("code");
    const auto response = Token(host, CodeGrant(code));
    EXPECT_EQ(response.status, 200) << response.body;
    return JsonOf(response);
  }

  boost::json::object RefreshGrant(std::string_view refresh_token) const {
    return boost::json::object{{"client_id", integration_.client_id},
                               {"client_secret", integration_.client_secret},
                               {"grant_type", "refresh_token"},
                               {"refresh_token", refresh_token},
                               {"redirect_uri", integration_.redirect_uri}};
  }

  net::HttpResponse Lookup(std::string_view api_host, std::string_view refresh_token) {
    auto req = Request("GET", std::string(api_host), "/oauth2/account/current/subdomain");
    req.headers.Set("X-Refresh-Token", refresh_token);
    return ServeAmoSide(ctx_, req);
  }

  boost::json::object Counters() {
    const auto journal = Control("GET", "/sandbox/journal");
    EXPECT_EQ(journal.status, 200);
    return JsonOf(journal).at("counters").as_object();
  }

  static std::unique_ptr<JwtSigner> signer_;
  TimePoint now_ =
      std::chrono::time_point_cast<TimePoint::duration>(std::chrono::system_clock::now());
  SandboxContext ctx_;
  Integration integration_;
};

std::unique_ptr<JwtSigner> EndpointsTest::signer_;

TEST_F(EndpointsTest, ButtonScriptIsJavaScript) {
  for (const char* path : {"/auth/button.js", "/auth/button.min.js"}) {
    const auto response = ServeBrowserSide(ctx_, Request("GET", "127.0.0.1", path));
    EXPECT_EQ(response.status, 200);
    EXPECT_TRUE(ContentType(response).starts_with("application/javascript"));
    EXPECT_NE(response.body.find("amocrm_oauth"), std::string::npos);
  }
}

TEST_F(EndpointsTest, ConsentPageIgnoresUnknownParameters) {
  const auto response = ServeBrowserSide(
      ctx_,
      Request("GET",
              "127.0.0.1",
              "/oauth/?client_id=" + integration_.client_id +
                  "&state=abc&mode=popup&origin=https%3A%2F%2Fsite%2F&response_type=code"
                  "&approval_prompt=auto&scope=&redirect_uri=x"));
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(ContentType(response).starts_with("text/html"));
  EXPECT_NE(response.body.find("Test shop"), std::string::npos);
  EXPECT_NE(response.body.find(R"(id="allow")"), std::string::npos);
  EXPECT_EQ(response.body.find(integration_.client_secret), std::string::npos);
}

TEST_F(EndpointsTest, KommoLocalizedConsentPathsServeTheSamePage) {
  for (const char* path : {"/es/oauth", "/br/oauth/", "/id/oauth/"}) {
    const auto response = ServeBrowserSide(
        ctx_,
        Request("GET", "127.0.0.1", std::string(path) + "?client_id=" + integration_.client_id));
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_NE(response.body.find("Test shop"), std::string::npos) << path;
  }
  EXPECT_EQ(ServeBrowserSide(ctx_, Request("GET", "127.0.0.1", "/fr/oauth?client_id=x")).status,
            404);
}

TEST_F(EndpointsTest, ConsentPageRefusesUnknownClient) {
  const auto response =
      ServeBrowserSide(ctx_, Request("GET", "127.0.0.1", "/oauth?client_id=%3Cscript%3Enope"));
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(ContentType(response).starts_with("text/html"));
  EXPECT_NE(response.body.find("&lt;script&gt;nope"), std::string::npos);
  EXPECT_EQ(response.body.find("<script>nope"), std::string::npos);
}

TEST_F(EndpointsTest, AllowRedirectsWithAmoCrmParameters) {
  const std::string location = Allow(30000001, "st%201%26x");  // form-encoded "st 1&x"
  ASSERT_TRUE(location.starts_with(std::string(kRedirect) + "?code=def50200")) << location;
  const auto q = QueryOf(location);
  EXPECT_EQ(q.at("referer"), "example.amocrm.ru");
  EXPECT_EQ(q.at("state"), "st 1&x");
  EXPECT_EQ(q.at("platform"), "1");
  EXPECT_FALSE(q.contains("client_id"));
  EXPECT_GE(q.at("code").size(), 1008U);
}

TEST_F(EndpointsTest, AllowOnKommoSendsClientIdAndNoEmptyState) {
  const std::string location = Allow(31000001, "");
  const auto q = QueryOf(location);
  EXPECT_EQ(q.at("referer"), "example.kommo.com");
  EXPECT_EQ(q.at("client_id"), integration_.client_id);
  EXPECT_FALSE(q.contains("state"));
  EXPECT_FALSE(q.contains("platform"));
}

TEST_F(EndpointsTest, PopupModePostsTheUrlToTheOpener) {
  const auto response =
      ServeBrowserSide(ctx_,
                       Request("POST",
                               "127.0.0.1",
                               "/oauth/decision",
                               "client_id=" + integration_.client_id +
                                   "&state=s&mode=popup&account_id=30000001&decision=allow",
                               "application/x-www-form-urlencoded"));
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.body.find("window.opener.postMessage(message, \"*\")"), std::string::npos);
  EXPECT_NE(response.body.find(R"({"url":"https://app.example.com/amo/callback?code=def50200)"),
            std::string::npos);
}

TEST_F(EndpointsTest, DenyRedirectsWithAccessDenied) {
  const auto response =
      ServeBrowserSide(ctx_,
                       Request("POST",
                               "127.0.0.1",
                               "/oauth/decision",
                               "client_id=" + integration_.client_id +
                                   "&state=s9&mode=post_message&account_id=31000001&decision=deny",
                               "application/x-www-form-urlencoded"));
  ASSERT_EQ(response.status, 302);
  const auto q = QueryOf(response.headers.Get("Location").value_or(""));
  EXPECT_EQ(q.at("error"), "access_denied");
  EXPECT_EQ(q.at("state"), "s9");
  EXPECT_EQ(q.at("client_id"), integration_.client_id);  // Kommo account chosen
  EXPECT_FALSE(q.contains("code"));

  const auto popup =
      ServeBrowserSide(ctx_,
                       Request("POST",
                               "127.0.0.1",
                               "/oauth/decision",
                               "client_id=" + integration_.client_id + "&mode=popup&decision=deny",
                               "application/x-www-form-urlencoded"));
  EXPECT_EQ(popup.status, 200);
  EXPECT_NE(popup.body.find(R"({"client_id":")" + integration_.client_id +
                            R"(","error":"access_denied"})"),
            std::string::npos);
}

TEST_F(EndpointsTest, CodeToTokensToApi) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  const auto response = Token("example.amocrm.ru", CodeGrant(code));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(ContentType(response), "application/json");
  const auto body = JsonOf(response);
  EXPECT_EQ(body.at("token_type"), "Bearer");
  EXPECT_EQ(body.at("expires_in"), 86400);
  EXPECT_FALSE(body.contains("server_time"));
  const std::string access_token(body.at("access_token").as_string());
  EXPECT_TRUE(body.at("refresh_token").as_string().starts_with("def50200"));

  const auto payload = signer_->Verify(access_token);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(payload->at("aud").as_string(), integration_.client_id);
  EXPECT_EQ(payload->at("sub"), "10000001");
  EXPECT_EQ(payload->at("account_id"), 30000001);
  EXPECT_EQ(payload->at("base_domain"), "amocrm.ru");
  EXPECT_EQ(payload->at("api_domain"), "api-b.amocrm.ru");
  EXPECT_EQ(payload->at("version"), 2);
  EXPECT_EQ(payload->at("grant_type"), "");
  EXPECT_EQ(payload->at("nbf"), payload->at("iat"));
  EXPECT_EQ(payload->at("exp").as_int64() - payload->at("iat").as_int64(), 86400);
  EXPECT_EQ(payload->at("jti").as_string().size(), 80U);
  EXPECT_EQ(payload->at("hash_uuid").as_string().size(), 36U);
  EXPECT_EQ(payload->at("scopes").as_array().size(), 2U);

  const auto account = Api("example.amocrm.ru:443", access_token);
  ASSERT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(ContentType(account), "application/hal+json");
  const auto info = JsonOf(account);
  EXPECT_EQ(info.at("id"), 30000001);
  EXPECT_EQ(info.at("subdomain"), "example");
  EXPECT_EQ(info.at("current_user_id"), 10000001);
  EXPECT_EQ(info.at("country"), "RU");
  EXPECT_EQ(info.at("_links").at("self").at("href"), "https://example.amocrm.ru/api/v4/account");

  // The token belongs to this account only.
  EXPECT_EQ(Api("example.kommo.com", access_token).status, 401);

  // An empty list is 204 with no body (protocol §7.4).
  const auto leads = Api("example.amocrm.ru", access_token, "/api/v4/leads?page=1");
  EXPECT_EQ(leads.status, 204);
  EXPECT_TRUE(leads.body.empty());
}

TEST_F(EndpointsTest, FormBodyRefreshRevokesTheOldAccessToken) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  const auto first = JsonOf(Token("example.amocrm.ru", CodeGrant(code)));
  const std::string old_access(first.at("access_token").as_string());

  const auto refreshed = ServeAmoSide(
      ctx_,
      Request("POST",
              "example.amocrm.ru",
              "/oauth2/access_token",
              "client_id=" + integration_.client_id + "&client_secret=" +
                  integration_.client_secret + "&grant_type=refresh_token&refresh_token=" +
                  std::string(first.at("refresh_token").as_string()) +
                  "&redirect_uri=https%3A%2F%2Fapp.example.com%2Famo%2Fcallback",
              "application/x-www-form-urlencoded"));
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  const std::string new_access(JsonOf(refreshed).at("access_token").as_string());

  EXPECT_EQ(Api("example.amocrm.ru", new_access).status, 200);
  const auto unauthorized = Api("example.amocrm.ru", old_access);
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(ContentType(unauthorized), "application/problem+json");
  EXPECT_EQ(boost::json::serialize(JsonOf(unauthorized)),
            R"({"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,)"
            R"("detail":"Неверный логин или пароль"})");

  const auto counters = ctx_.state.Journal().counters;
  EXPECT_EQ(counters.refreshes, 1U);
  EXPECT_EQ(counters.api_requests, 2U);
  EXPECT_EQ(counters.api_unauthorized, 1U);
}

TEST_F(EndpointsTest, TokenErrorsUseTheOAuthProblemEnvelope) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  ASSERT_EQ(Token("example.amocrm.ru", CodeGrant(code)).status, 200);
  const auto reused = Token("example.amocrm.ru", CodeGrant(code));
  EXPECT_EQ(reused.status, 400);
  EXPECT_EQ(ContentType(reused), "application/json");
  EXPECT_EQ(boost::json::serialize(JsonOf(reused)),
            R"({"hint":"Authorization code has been revoked","title":"Некорректный запрос",)"
            R"("type":"https://developers.amocrm.ru/v3/errors/OAuthProblemJson","status":400,)"
            R"("detail":"В запросе отсутствует ряд параметров или параметры невалидны"})");

  const auto garbage = ServeAmoSide(
      ctx_,
      Request(
          "POST", "example.amocrm.ru", "/oauth2/access_token", "{not json", "application/json"));
  EXPECT_EQ(JsonOf(garbage).at("hint"), "Check the `grant_type` parameter");
}

TEST_F(EndpointsTest, KommoResponseCarriesServerTime) {
  const std::string code = QueryOf(Allow(31000001)).at("code");
  const auto body = JsonOf(Token("example.kommo.com", CodeGrant(code)));
  ASSERT_TRUE(body.contains("server_time"));
  EXPECT_TRUE(body.at("server_time").is_int64());
}

TEST_F(EndpointsTest, CodeOnAnotherHostIsInvalidAccount) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  EXPECT_EQ(JsonOf(Token("example.kommo.com", CodeGrant(code))).at("hint"), "Invalid account");
}

TEST_F(EndpointsTest, HostDispatch) {
  EXPECT_EQ(ServeAmoSide(ctx_, Request("POST", "nobody.amocrm.ru", "/oauth2/access_token")).status,
            404);
  const auto wrong_method =
      ServeAmoSide(ctx_, Request("GET", "example.amocrm.ru", "/oauth2/access_token"));
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers.Get("Allow").value_or(""), "POST");
  EXPECT_EQ(ServeAmoSide(ctx_, Request("GET", "example.amocrm.ru", "/elsewhere")).status, 404);
  EXPECT_EQ(ServeAmoSide(ctx_, Request("POST", "api-b.amocrm.ru", "/oauth2/access_token")).status,
            404);
}

TEST_F(EndpointsTest, ApiEchoesForwardedRequests) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  const std::string access(
      JsonOf(Token("example.amocrm.ru", CodeGrant(code))).at("access_token").as_string());
  auto req = Request("PATCH",
                     "example.amocrm.ru",
                     "/api/v4/leads/42?with=contacts&page=2",
                     R"([{"price":1}])",
                     "application/json");
  req.headers.Set("Authorization", "Bearer " + access);
  const auto response = ServeAmoSide(ctx_, req);
  ASSERT_EQ(response.status, 200);
  const auto echo = JsonOf(response);
  EXPECT_EQ(echo.at("method"), "PATCH");
  EXPECT_EQ(echo.at("path"), "/api/v4/leads/42");
  EXPECT_EQ(echo.at("query"), "with=contacts&page=2");
  EXPECT_EQ(echo.at("body"), R"([{"price":1}])");
  EXPECT_TRUE(echo.at("_embedded").is_object());

  // The journal never keeps query strings.
  for (const auto& entry : ctx_.state.Journal().requests) {
    EXPECT_EQ(entry.path.find('?'), std::string::npos);
  }
}

TEST_F(EndpointsTest, CurrentSubdomainByRefreshToken) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  const std::string refresh(
      JsonOf(Token("example.amocrm.ru", CodeGrant(code))).at("refresh_token").as_string());
  auto req = Request("GET", "api-b.amocrm.ru", "/oauth2/account/current/subdomain");
  req.headers.Set("X-Refresh-Token", refresh);
  const auto response = ServeAmoSide(ctx_, req);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(boost::json::serialize(JsonOf(response)),
            R"({"id":30000001,"subdomain":"example","domain":"example.amocrm.ru",)"
            R"("top_level_domain":"ru"})");

  req.headers.Set("Host", "api-c.kommo.com");
  EXPECT_EQ(ServeAmoSide(ctx_, req).status, 401);
  req.headers.Set("Host", "api-b.amocrm.ru");
  req.headers.Set("X-Refresh-Token", "def50200nope");
  EXPECT_EQ(ServeAmoSide(ctx_, req).status, 401);
}

TEST_F(EndpointsTest, ControlApiRegistersIntegrations) {
  const auto created = ServeBrowserSide(
      ctx_,
      Request("POST",
              "127.0.0.1",
              "/sandbox/integrations",
              R"({"client_id":"fixed-id","redirect_uri":"https://x.example/cb","name":"X"})",
              "application/json"));
  ASSERT_EQ(created.status, 201) << created.body;
  const auto body = JsonOf(created);
  EXPECT_EQ(body.at("client_id"), "fixed-id");
  EXPECT_EQ(body.at("client_secret").as_string().size(), 64U);
  EXPECT_EQ(body.at("redirect_uri"), "https://x.example/cb");
  EXPECT_TRUE(ctx_.state.FindIntegration("fixed-id").has_value());

  const auto duplicate =
      ServeBrowserSide(ctx_,
                       Request("POST",
                               "127.0.0.1",
                               "/sandbox/integrations",
                               R"({"client_id":"fixed-id","redirect_uri":"https://x.example/cb"})",
                               "application/json"));
  EXPECT_EQ(duplicate.status, 409);
  const auto invalid = ServeBrowserSide(
      ctx_, Request("POST", "127.0.0.1", "/sandbox/integrations", R"({"name":"no redirect"})"));
  EXPECT_EQ(invalid.status, 400);
}

TEST_F(EndpointsTest, ControlApiAdvancesTheClock) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  const auto advanced = ServeBrowserSide(
      ctx_, Request("POST", "127.0.0.1", "/sandbox/clock/advance", R"({"seconds":1201})"));
  ASSERT_EQ(advanced.status, 200) << advanced.body;
  EXPECT_EQ(JsonOf(advanced).at("offset_seconds"), 1201);
  EXPECT_EQ(JsonOf(Token("example.amocrm.ru", CodeGrant(code))).at("hint"),
            "Authorization code has expired");
  EXPECT_EQ(ServeBrowserSide(
                ctx_, Request("POST", "127.0.0.1", "/sandbox/clock/advance", R"({"seconds":-5})"))
                .status,
            400);
}

TEST_F(EndpointsTest, JournalReportsCountersAndRequests) {
  const std::string code = QueryOf(Allow(30000001)).at("code");
  ASSERT_EQ(Token("example.amocrm.ru", CodeGrant(code)).status, 200);
  const auto journal = ServeBrowserSide(ctx_, Request("GET", "127.0.0.1", "/sandbox/journal"));
  ASSERT_EQ(journal.status, 200);
  const auto body = JsonOf(journal);
  const auto& counters = body.at("counters").as_object();
  EXPECT_EQ(counters.at("codes_issued"), 1);
  EXPECT_EQ(counters.at("codes_exchanged"), 1);
  EXPECT_EQ(counters.at("token_requests"), 1);
  for (const char* key :
       {"code_reuses", "refreshes", "refresh_token_reuses", "api_requests", "api_unauthorized"}) {
    EXPECT_EQ(counters.at(key), 0) << key;
  }
  const auto& requests = body.at("requests").as_array();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].at("path"), "/oauth/decision");
  EXPECT_EQ(requests[0].at("status"), 302);
  EXPECT_EQ(requests[1].at("host"), "example.amocrm.ru");
  EXPECT_EQ(requests[1].at("method"), "POST");
  EXPECT_EQ(requests[1].at("path"), "/oauth2/access_token");
  EXPECT_EQ(requests[1].at("status"), 200);
  EXPECT_EQ(body.at("requests").as_array().size(), 2U);
}

TEST_F(EndpointsTest, IndexListsAccountsWithoutSecrets) {
  const auto index = ServeBrowserSide(ctx_, Request("GET", "127.0.0.1:9", "/sandbox/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find(integration_.client_id), std::string::npos);
  EXPECT_EQ(index.body.find(integration_.client_secret), std::string::npos);
  EXPECT_NE(index.body.find("example.kommo.com"), std::string::npos);
}

// --- GET/POST /sandbox/config.

TEST_F(EndpointsTest, ConfigShowsEveryKnobWithItsDefault) {
  const auto response = Control("GET", "/sandbox/config");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(ContentType(response), "application/json");
  EXPECT_EQ(response.body,
            R"({"code_ttl_seconds":1200,"access_token_ttl_seconds":86400,)"
            R"("refresh_token_ttl_seconds":7776000,"rotation":"strict",)"
            R"("revoke_access_token_on_refresh":true,"api_rate_limit_rps":7,)"
            R"("api_block_after_violations":10,"api_violation_window_seconds":60,)"
            R"("api_block_seconds":900,"api_retry_after_seconds":1,"token_delay_ms":0,)"
            R"("exchange_hook_delay_ms":0,"secrets_delivery":"before_redirect",)"
            R"("secrets_delay_ms":0})");
}

TEST_F(EndpointsTest, ConfigChangesWhatIsGiven) {
  const auto changed =
      Control("POST",
              "/sandbox/config",
              R"({"access_token_ttl_seconds":3600,"rotation":"grace_until_new_used",)"
              R"("revoke_access_token_on_refresh":false,"api_rate_limit_rps":0})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  const auto body = JsonOf(changed);
  EXPECT_EQ(body.at("access_token_ttl_seconds"), 3600);
  EXPECT_EQ(body.at("rotation"), "grace_until_new_used");
  EXPECT_EQ(body.at("revoke_access_token_on_refresh"), false);
  EXPECT_EQ(body.at("api_rate_limit_rps"), 0);
  EXPECT_EQ(body.at("code_ttl_seconds"), 1200);  // untouched
  EXPECT_EQ(JsonOf(Control("GET", "/sandbox/config")), body);

  const auto tokens = Connect(31000001, "example.kommo.com");
  EXPECT_EQ(tokens.at("expires_in"), 3600);
  // Grace rotation and no access-token revocation are in force.
  const std::string refresh(tokens.at("refresh_token").as_string());
  ASSERT_EQ(Token("example.kommo.com", RefreshGrant(refresh)).status, 200);
  ASSERT_EQ(Token("example.kommo.com", RefreshGrant(refresh)).status, 200);
  EXPECT_EQ(Api("example.kommo.com", std::string(tokens.at("access_token").as_string())).status,
            200);
  EXPECT_EQ(Control("POST", "/sandbox/config", "{}").status, 200);
}

TEST_F(EndpointsTest, BadConfigIsRefusedAndChangesNothing) {
  const std::string before = Control("GET", "/sandbox/config").body;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "Expected a JSON object"},
      {"[1]", "Expected a JSON object"},
      {R"({"rotation":"loose"})", R"(rotation must be "strict" or "grace_until_new_used")"},
      {R"({"rotation":1})", "rotation must be"},
      {R"({"revoke_access_token_on_refresh":"yes"})", "must be true or false"},
      {R"({"api_rate_limit_rps":"7"})", "api_rate_limit_rps must be an integer"},
      {R"({"api_rate_limit_rps":1.5})", "api_rate_limit_rps must be an integer"},
      {R"({"api_rate_limit_rps":-1})", "api_rate_limit_rps must be an integer from 0 to 10000"},
      {R"({"code_ttl_seconds":0})", "code_ttl_seconds must be an integer from 1 to"},
      {R"({"refresh_token_ttl_seconds":99999999999999999999})", "refresh_token_ttl_seconds"},
      {R"({"api_block_seconds":true})", "api_block_seconds must be an integer"},
      {R"({"access_token_ttl":60})", R"(unknown field "access_token_ttl")"},
      // One bad field spoils the whole body: the good one is not applied either.
      {R"({"access_token_ttl_seconds":60,"api_violation_window_seconds":0})",
       "api_violation_window_seconds must be an integer from 1 to 86400"},
  };
  for (const auto& [body, message] : cases) {
    const auto response = Control("POST", "/sandbox/config", body);
    EXPECT_EQ(response.status, 400) << body;
    EXPECT_EQ(ContentType(response), "application/problem+json");
    const std::string detail(JsonOf(response).at("detail").as_string());
    EXPECT_NE(detail.find(message), std::string::npos) << body << " → " << detail;
  }
  EXPECT_EQ(Control("GET", "/sandbox/config").body, before);
  EXPECT_EQ(Control("PUT", "/sandbox/config", "{}").status, 405);
}

// --- POST /sandbox/accounts/{id}/revoke.

TEST_F(EndpointsTest, RevokeAccessThenAll) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string access(tokens.at("access_token").as_string());
  const std::string refresh(tokens.at("refresh_token").as_string());

  const auto revoked =
      Control("POST", "/sandbox/accounts/30000001/revoke", R"({"tokens":"access"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(revoked.body,
            R"({"account_id":30000001,"revoked_access_tokens":1,"revoked_refresh_tokens":0})");
  const auto unauthorized = Api("example.amocrm.ru", access);
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_EQ(ContentType(unauthorized), "application/problem+json");
  EXPECT_EQ(unauthorized.body,
            R"({"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,)"
            R"("detail":"Неверный логин или пароль"})");
  EXPECT_EQ(Lookup("api-b.amocrm.ru", refresh).status, 200);  // the refresh token lives

  const auto refreshed = Token("example.amocrm.ru", RefreshGrant(refresh));
  ASSERT_EQ(refreshed.status, 200);
  const std::string refresh2(JsonOf(refreshed).at("refresh_token").as_string());

  const auto all = Control("POST", "/sandbox/accounts/30000001/revoke", R"({"tokens":"all"})");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(JsonOf(all).at("revoked_access_tokens"), 1);
  EXPECT_EQ(JsonOf(all).at("revoked_refresh_tokens"), 1);
  const auto dead = Token("example.amocrm.ru", RefreshGrant(refresh2));
  EXPECT_EQ(dead.status, 401);
  EXPECT_EQ(JsonOf(dead).at("hint"), "Token has been revoked");
  const auto lookup = Lookup("api-b.amocrm.ru", refresh2);
  EXPECT_EQ(lookup.status, 401);
  EXPECT_EQ(ContentType(lookup), "application/problem+json");

  const auto counters = Counters();
  EXPECT_EQ(counters.at("refresh_token_reuses"), 0);  // revoked, never reused
  EXPECT_EQ(counters.at("subdomain_lookups"), 2);
  EXPECT_EQ(counters.at("api_unauthorized"), 1);
}

TEST_F(EndpointsTest, RevokeRefusesBadRequests) {
  EXPECT_EQ(Control("POST", "/sandbox/accounts/42/revoke", R"({"tokens":"all"})").status, 404);
  EXPECT_EQ(Control("POST", "/sandbox/accounts/abc/revoke", R"({"tokens":"all"})").status, 404);
  EXPECT_EQ(Control("POST", "/sandbox/accounts/30000001/revoke", R"({"tokens":"some"})").status,
            400);
  EXPECT_EQ(Control("POST", "/sandbox/accounts/30000001/revoke", "").status, 400);
  const auto wrong_method = Control("GET", "/sandbox/accounts/30000001/revoke");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers.Get("Allow").value_or(""), "POST");
  EXPECT_EQ(Control("POST", "/sandbox/accounts/30000001/promote", "{}").status, 404);
  EXPECT_EQ(Control("POST", "/sandbox/accounts//revoke", R"({"tokens":"all"})").status, 404);
  EXPECT_EQ(Control("POST", "/sandbox/accounts/30000001/revoke/", R"({"tokens":"all"})").status,
            404);
}

// --- POST /sandbox/accounts/{id}/rename.

TEST_F(EndpointsTest, RenameMovesTheAccountToANewHost) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string access(tokens.at("access_token").as_string());
  const std::string refresh(tokens.at("refresh_token").as_string());

  const auto renamed =
      Control("POST", "/sandbox/accounts/30000001/rename", R"({"subdomain":"new-name"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(JsonOf(renamed).at("host"), "new-name.amocrm.ru");

  // The old host is gone: 404 with no hint, on the token endpoint and the API.
  const auto old_token = Token("example.amocrm.ru", RefreshGrant(refresh));
  EXPECT_EQ(old_token.status, 404);
  EXPECT_EQ(ContentType(old_token), "application/problem+json");
  EXPECT_FALSE(JsonOf(old_token).contains("hint"));
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 404);

  // The shared host tells where the account went.
  const auto lookup = Lookup("api-b.amocrm.ru", refresh);
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  EXPECT_EQ(lookup.body,
            R"({"id":30000001,"subdomain":"new-name","domain":"new-name.amocrm.ru",)"
            R"("top_level_domain":"ru"})");

  // The tokens belong to the account: they work on the new host.
  const auto account = Api("new-name.amocrm.ru", access);
  ASSERT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(JsonOf(account).at("subdomain"), "new-name");
  EXPECT_EQ(JsonOf(account).at("_links").at("self").at("href"),
            "https://new-name.amocrm.ru/api/v4/account");
  EXPECT_EQ(Token("new-name.amocrm.ru", RefreshGrant(refresh)).status, 200);
  EXPECT_EQ(Counters().at("refresh_token_reuses"), 0);  // the 404 did not consume it
}

TEST_F(EndpointsTest, RenameRefusesTakenAndInvalidNames) {
  for (const char* body : {R"({"subdomain":"api-b"})",  // the shared API host
                           R"({"subdomain":"bad_name"})",
                           R"({"subdomain":"-x"})",
                           R"({"subdomain":"www"})",
                           R"({"subdomain":""})",
                           R"({"subdomain":7})",
                           R"({"name":"x"})",
                           "nope"}) {
    const auto response = Control("POST", "/sandbox/accounts/30000001/rename", body);
    EXPECT_EQ(response.status, 400) << body;
    EXPECT_EQ(ContentType(response), "application/problem+json") << body;
  }
  EXPECT_EQ(Control("POST", "/sandbox/accounts/42/rename", R"({"subdomain":"x"})").status, 404);
  EXPECT_EQ(ctx_.state.FindAccount(30000001)->subdomain, "example");
}

TEST(SandboxControlApi, RenameToAnotherAccountsSubdomainIsRefused) {
  auto signer = JwtSigner::Generate();
  ASSERT_TRUE(signer.has_value());
  std::vector<Account> accounts = DefaultAccounts();
  accounts.push_back(Account{30000002, "second", "Second", Flavor::kAmocrm, "", 10000002});
  SandboxContext ctx(StateConfig{}, accounts, *signer);
  const auto taken = ServeBrowserSide(
      ctx,
      Request(
          "POST", "127.0.0.1", "/sandbox/accounts/30000001/rename", R"({"subdomain":"second"})"));
  EXPECT_EQ(taken.status, 400);
  EXPECT_EQ(JsonOf(taken).at("detail"), R"(subdomain "second" is taken on this platform)");
  // The same name on the other platform is a different host.
  EXPECT_EQ(ServeBrowserSide(ctx,
                             Request("POST",
                                     "127.0.0.1",
                                     "/sandbox/accounts/31000001/rename",
                                     R"({"subdomain":"second"})"))
                .status,
            200);
}

// --- API rate limit (protocol §7.4).

TEST_F(EndpointsTest, RateLimitAnswers429ThenBlocksWith403Html) {
  const std::string access(Connect(30000001, "example.amocrm.ru").at("access_token").as_string());
  ASSERT_EQ(Control("POST", "/sandbox/config", R"({"api_block_after_violations":2})").status, 200);
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(Api("example.amocrm.ru", access).status, 200) << i;
  }
  const auto limited = Api("example.amocrm.ru", access);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(ContentType(limited), "application/problem+json");
  EXPECT_EQ(limited.headers.Get("Retry-After").value_or(""), "1");
  EXPECT_EQ(limited.body,
            R"({"title":"Too Many Requests","type":"https://httpstatus.es/429","status":429,)"
            R"("detail":"You have sent too many requests in a given amount of time. )"
            R"(Please try again later."})");
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 429);  // the second: the account is blocked

  const auto blocked = Api("example.amocrm.ru", access);
  EXPECT_EQ(blocked.status, 403);
  EXPECT_EQ(ContentType(blocked), "text/html");
  EXPECT_NE(blocked.body.find("<title>403 Forbidden</title>"), std::string::npos);
  EXPECT_NE(blocked.body.find("<center>nginx</center>"), std::string::npos);
  boost::system::error_code not_json;
  static_cast<void>(boost::json::parse(blocked.body, not_json));
  EXPECT_TRUE(not_json) << "a blocked account gets HTML, not JSON";

  // The token endpoint is not blocked; the API is, until the block ends (sandbox clock).
  EXPECT_EQ(Control("POST", "/sandbox/clock/advance", R"({"seconds":899})").status, 200);
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 403);
  EXPECT_EQ(Control("POST", "/sandbox/clock/advance", R"({"seconds":1})").status, 200);
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 200);

  const auto counters = Counters();
  EXPECT_EQ(counters.at("api_requests"), 12);
  EXPECT_EQ(counters.at("api_rate_limited"), 2);
  EXPECT_EQ(counters.at("api_blocked"), 2);
  EXPECT_EQ(counters.at("max_api_requests_per_second"), 10);
  const auto& mine = counters.at("accounts").at("30000001");
  EXPECT_EQ(mine.at("api_requests"), 12);
  EXPECT_EQ(mine.at("api_blocked"), 2);
  EXPECT_EQ(counters.at("accounts").at("31000001").at("api_requests"), 0);
}

TEST_F(EndpointsTest, KommoTooManyRequestsCarriesRetryAfter) {
  const std::string access(Connect(31000001, "example.kommo.com").at("access_token").as_string());
  ASSERT_EQ(
      Control(
          "POST", "/sandbox/config", R"({"api_rate_limit_rps":1,"api_retry_after_seconds":300})")
          .status,
      200);
  ASSERT_EQ(Api("example.kommo.com", access).status, 200);
  const auto limited = Api("example.kommo.com", access);
  ASSERT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers.Get("Retry-After").value_or(""), "300");
  EXPECT_EQ(JsonOf(limited).at("retry_after"), 300);
  EXPECT_EQ(JsonOf(limited).at("status"), 429);
}

TEST_F(EndpointsTest, SevenPerSecondNeverTripTheLimit) {
  const std::string access(Connect(30000001, "example.amocrm.ru").at("access_token").as_string());
  // Evenly spaced at 143 ms: any request and the seventh after it are >= 1 s apart. At 142 ms
  // they would be 994 ms apart, and the sliding window would count 8.
  for (int i = 0; i < 35; ++i) {
    ASSERT_EQ(Api("example.amocrm.ru", access).status, 200) << i;
    now_ += std::chrono::milliseconds{143};
  }
  const auto counters = Counters();
  EXPECT_EQ(counters.at("api_rate_limited"), 0);
  EXPECT_EQ(counters.at("max_api_requests_per_second"), 7);
  EXPECT_EQ(counters.at("accounts").at("30000001").at("max_api_requests_per_second"), 7);
}

// --- /sandbox/faults.

constexpr std::string_view kNoFaults =
    R"({"token_endpoint":null,"api":null,"subdomain":null,"exchange_api_key":null})";

TEST_F(EndpointsTest, StatusFaultsDoNotConsumeTokens) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string refresh(tokens.at("refresh_token").as_string());
  const auto scripted =
      Control("POST", "/sandbox/faults", R"({"token_endpoint":{"status":503,"times":2}})");
  ASSERT_EQ(scripted.status, 200) << scripted.body;
  EXPECT_EQ(scripted.body,
            R"({"token_endpoint":{"times":2,"status":503},"api":null,"subdomain":null,)"
            R"("exchange_api_key":null})");

  for (int i = 0; i < 2; ++i) {
    const auto failed = Token("example.amocrm.ru", RefreshGrant(refresh));
    EXPECT_EQ(failed.status, 503);
    EXPECT_EQ(ContentType(failed), "text/html");
    EXPECT_NE(failed.body.find("503 Service Temporarily Unavailable"), std::string::npos);
  }
  EXPECT_EQ(Control("GET", "/sandbox/faults").body, kNoFaults);
  // The same refresh token still works: the faults neither consumed nor rotated it.
  EXPECT_EQ(Token("example.amocrm.ru", RefreshGrant(refresh)).status, 200);

  // A code survives a fault too.
  ASSERT_EQ(Control("POST", "/sandbox/faults", R"({"token_endpoint":{"status":500}})").status, 200);
  const std::string code = QueryOf(Allow(30000001)).at("code");
  EXPECT_EQ(Token("example.amocrm.ru", CodeGrant(code)).status, 500);
  EXPECT_EQ(Token("example.amocrm.ru", CodeGrant(code)).status, 200);

  const auto counters = Counters();
  EXPECT_EQ(counters.at("token_endpoint_faults"), 3);
  EXPECT_EQ(counters.at("refreshes"), 1);
  EXPECT_EQ(counters.at("refresh_token_reuses"), 0);
  EXPECT_EQ(counters.at("codes_exchanged"), 2);
  EXPECT_EQ(counters.at("token_requests"), 3);  // faulted requests never reached validation
}

TEST_F(EndpointsTest, CloseFaultDropsTheConnection) {
  ASSERT_EQ(
      Control("POST", "/sandbox/faults", R"({"token_endpoint":{"close":true,"times":1}})").status,
      200);
  EXPECT_EQ(Control("GET", "/sandbox/faults").body,
            R"({"token_endpoint":{"times":1,"close":true},"api":null,"subdomain":null,)"
            R"("exchange_api_key":null})");
  const auto closed = Token("example.amocrm.ru", CodeGrant("def50200aa"));
  EXPECT_TRUE(closed.drop_connection);
  EXPECT_EQ(JsonOf(Token("example.amocrm.ru", CodeGrant("def50200aa"))).at("hint"),
            "Cannot decrypt the authorization code");
  EXPECT_EQ(Counters().at("token_requests"), 1) << "the dropped request was never handled";
}

TEST_F(EndpointsTest, EveryTargetAndKindIsScriptable) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string access(tokens.at("access_token").as_string());
  const std::string refresh(tokens.at("refresh_token").as_string());
  ASSERT_EQ(Control("POST",
                    "/sandbox/faults",
                    R"({"api":{"status":429,"times":2,"retry_after":7,"path":"/api/v4/leads"},)"
                    R"("subdomain":{"malformed":"wrong_types"},)"
                    R"("exchange_api_key":{"status":403}})")
                .status,
            200);
  // The API's 429 storm hits only its path, with the scripted Retry-After.
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 200) << "/api/v4/account is not matched";
  for (int i = 0; i < 2; ++i) {
    const auto limited = Api("example.amocrm.ru", access, "/api/v4/leads");
    EXPECT_EQ(limited.status, 429);
    EXPECT_EQ(limited.headers.Get("Retry-After").value_or(""), "7");
    EXPECT_EQ(ContentType(limited), "application/problem+json");
  }
  EXPECT_EQ(Api("example.amocrm.ru", access, "/api/v4/leads").status, 204) << "storm over";
  // A malformed domain lookup, and an HTML 403 from exchange_api_key.
  const auto lookup = Lookup("api-b.amocrm.ru", refresh);
  EXPECT_EQ(lookup.status, 200);
  EXPECT_EQ(JsonOf(lookup).at("id"), "30000001") << "a string where a number belongs";
  EXPECT_EQ(Lookup("api-b.amocrm.ru", refresh).status, 200);
  const auto counters = Counters();
  EXPECT_EQ(counters.at("faults"), 3);
  EXPECT_EQ(counters.at("api_requests"), 2) << "faulted API requests are not API requests";
  EXPECT_EQ(counters.at("subdomain_lookups"), 1);
  const auto pending = JsonOf(Control("GET", "/sandbox/faults"));
  EXPECT_EQ(pending.at("exchange_api_key").as_object().at("status"), 403);
  EXPECT_TRUE(pending.at("api").is_null());
}

TEST_F(EndpointsTest, MalformedStallAndSlowBodyFaults) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string refresh(tokens.at("refresh_token").as_string());
  for (const char* kind : {"truncated", "wrong_types", "html"}) {
    ASSERT_EQ(Control("POST",
                      "/sandbox/faults",
                      std::string(R"({"token_endpoint":{"malformed":")") + kind + R"("}})")
                  .status,
              200);
    const auto bad = Token("example.amocrm.ru", RefreshGrant(refresh));
    EXPECT_EQ(bad.status, 200) << kind;
    EXPECT_EQ(bad.headers.Get("X-Sandbox-Fault").value_or(""), "malformed");
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(bad.body, ec);
    if (std::string_view(kind) == "wrong_types") {
      ASSERT_FALSE(ec);
      EXPECT_TRUE(parsed.as_object().at("refresh_token").is_null());
    } else {
      EXPECT_TRUE(ec) << kind << ": not JSON at all";
    }
  }
  ASSERT_EQ(Control("POST", "/sandbox/faults", R"({"token_endpoint":{"stall_ms":1500}})").status,
            200);
  std::chrono::milliseconds stall{0};
  const auto stalled = ServeAmoSide(ctx_,
                                    Request("POST",
                                            "example.amocrm.ru",
                                            "/oauth2/access_token",
                                            boost::json::serialize(RefreshGrant(refresh)),
                                            "application/json"),
                                    &stall);
  EXPECT_TRUE(stalled.drop_connection);
  EXPECT_EQ(stall, std::chrono::milliseconds(1500));
  // Nothing was consumed: the same refresh token works, answered slowly when so scripted.
  ASSERT_EQ(
      Control(
          "POST", "/sandbox/faults", R"({"token_endpoint":{"slow_body_ms":5,"chunk_bytes":64}})")
          .status,
      200);
  const auto slow = Token("example.amocrm.ru", RefreshGrant(refresh));
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.trickle_bytes, 64U);
  EXPECT_EQ(slow.trickle_interval, std::chrono::milliseconds(5));
  EXPECT_EQ(slow.headers.Get("X-Sandbox-Fault").value_or(""), "slow_body");
  EXPECT_TRUE(JsonOf(slow).at("refresh_token").is_string());
  EXPECT_EQ(Counters().at("refreshes"), 1);
  EXPECT_EQ(Counters().at("faults"), 5);
}

TEST_F(EndpointsTest, FaultsAreValidatedAndCleared) {
  for (const char* body : {R"({})",
                           R"({"token_endpoint":{}})",
                           R"({"token_endpoint":{"status":200}})",
                           R"({"token_endpoint":{"status":600}})",
                           R"({"token_endpoint":{"status":503,"close":true}})",
                           R"({"token_endpoint":{"close":false}})",
                           R"({"token_endpoint":{"status":503,"times":0}})",
                           R"({"token_endpoint":{"status":503,"delay":5}})",
                           R"({"apis":{"status":503}})",
                           R"({"api":{"status":503,"retry_after":5}})",
                           R"({"api":{"status":429,"retry_after":-1}})",
                           R"({"api":{"malformed":"xml"}})",
                           R"({"api":{"stall_ms":0}})",
                           R"({"api":{"stall_ms":60001}})",
                           R"({"api":{"slow_body_ms":5,"chunk_bytes":0}})",
                           R"({"api":{"status":503,"path":"api"}})",
                           R"({"api":{"status":503},"subdomain":{"close":false}})",
                           R"({"token_endpoint":"503"})",
                           "garbage"}) {
    EXPECT_EQ(Control("POST", "/sandbox/faults", body).status, 400) << body;
  }
  EXPECT_EQ(Control("GET", "/sandbox/faults").body, kNoFaults);
  ASSERT_EQ(
      Control("POST", "/sandbox/faults", R"({"token_endpoint":{"status":503,"times":5}})").status,
      200);
  const auto cleared = Control("DELETE", "/sandbox/faults");
  EXPECT_EQ(cleared.status, 200);
  EXPECT_EQ(cleared.body, kNoFaults);
  EXPECT_EQ(JsonOf(Token("example.amocrm.ru", CodeGrant("def50200aa"))).at("status"), 400);
}

// --- /sandbox/journal.

TEST_F(EndpointsTest, JournalCountsPerAccountAndResets) {
  const auto tokens = Connect(30000001, "example.amocrm.ru");
  const std::string refresh(tokens.at("refresh_token").as_string());
  const auto refreshed = Token("example.amocrm.ru", RefreshGrant(refresh));
  ASSERT_EQ(refreshed.status, 200);
  const std::string access(JsonOf(refreshed).at("access_token").as_string());
  ASSERT_EQ(Token("example.amocrm.ru", RefreshGrant(refresh)).status, 401);
  ASSERT_EQ(Lookup("api-b.amocrm.ru", "def50200nope").status, 401);
  ASSERT_EQ(Api("example.amocrm.ru", "not-a-jwt").status, 401);

  const auto counters = Counters();
  EXPECT_EQ(counters.at("refreshes"), 1);
  EXPECT_EQ(counters.at("refresh_token_reuses"), 1);
  EXPECT_EQ(counters.at("subdomain_lookups"), 1);
  for (const char* key : {"api_rate_limited", "api_blocked", "token_endpoint_faults"}) {
    EXPECT_EQ(counters.at(key), 0) << key;
  }
  const auto& amo = counters.at("accounts").at("30000001").as_object();
  EXPECT_EQ(amo.at("refreshes"), 1);
  EXPECT_EQ(amo.at("refresh_token_reuses"), 1);
  EXPECT_EQ(amo.at("api_requests"), 1);
  EXPECT_EQ(amo.at("api_unauthorized"), 1);
  EXPECT_EQ(amo.at("token_requests"), 3);
  EXPECT_EQ(amo.at("subdomain_lookups"), 0);  // the token named no account
  EXPECT_EQ(counters.at("accounts").at("31000001").at("token_requests"), 0);

  const auto reset = Control("POST", "/sandbox/journal/reset");
  ASSERT_EQ(reset.status, 200);
  const auto after = JsonOf(reset);
  EXPECT_TRUE(after.at("requests").as_array().empty());
  for (const auto& [key, value] : after.at("counters").as_object()) {
    if (key != "accounts") {
      EXPECT_EQ(value, 0) << key;
    }
  }
  EXPECT_EQ(after.at("counters").at("accounts").at("30000001").at("refreshes"), 0);
  // Tokens survive a reset.
  EXPECT_EQ(Api("example.amocrm.ru", access).status, 200);
  EXPECT_EQ(Counters().at("api_requests"), 1);
  EXPECT_EQ(Control("GET", "/sandbox/journal/reset").status, 405);
}

TEST(ClientIdBody, TakesANonEmptyStringClientIdOrAnswers400) {
  const auto parse = [](std::string body) {
    net::HttpRequest req;
    req.body = std::move(body);
    return ClientIdBody(req);
  };
  const auto taken = parse(R"({"client_id": "abc", "other": 1})");
  ASSERT_TRUE(std::holds_alternative<std::string>(taken));
  EXPECT_EQ(std::get<std::string>(taken), "abc");
  for (const char* body :
       {"", "not json", "[]", "{}", R"({"client_id": ""})", R"({"client_id": 7})"}) {
    const auto refused = parse(body);
    ASSERT_TRUE(std::holds_alternative<net::HttpResponse>(refused)) << body;
    const auto& response = std::get<net::HttpResponse>(refused);
    EXPECT_EQ(response.status, 400) << body;
    EXPECT_EQ(ContentType(response), "application/problem+json");
    EXPECT_EQ(JsonOf(response).at("detail"), R"(Expected {"client_id": "…"})");
  }
}

}  // namespace
}  // namespace amoauth::sandbox
