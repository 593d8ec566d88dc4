// The handlers driven directly, request in, response out: no sockets.

#include "endpoints.hpp"

#include <map>
#include <memory>
#include <string>

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

  EndpointsTest() : ctx_(StateConfig{}, DefaultAccounts(), *signer_) {
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

  static std::unique_ptr<JwtSigner> signer_;
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

}  // namespace
}  // namespace amoauth::sandbox
