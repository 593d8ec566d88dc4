#include "amoauth/core/token_exchange.hpp"

#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

namespace json = boost::json;

constexpr std::string_view kBadRequestTitle = "Некорректный запрос";
constexpr std::string_view kBadRequestDetail =
    "В запросе отсутствует ряд параметров или параметры невалидны";

std::string ProblemBody(std::string_view hint,
                        std::string_view title = kBadRequestTitle,
                        std::string_view detail = kBadRequestDetail,
                        int status = 400) {
  json::object o;
  if (!hint.empty()) {
    o["hint"] = hint;
  }
  o["title"] = title;
  o["type"] = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson";
  o["status"] = status;
  o["detail"] = detail;
  return json::serialize(o);
}

// --- SerializeGrant -----------------------------------------------------------------------------

TEST(TokenExchange, SerializesAuthorizationCodeGrant) {
  const AuthorizationCodeGrant grant{.client_id = "client",
                                     .client_secret = Secret("secret\"\\"),
                                     .code = Secret("def50200abc"),
                                     .redirect_uri = "https://gw.example/callback"};
  const json::value v = json::parse(SerializeGrant(grant));
  EXPECT_EQ(v,
            json::parse(R"({"client_id":"client","client_secret":"secret\"\\",)"
                        R"("grant_type":"authorization_code","code":"def50200abc",)"
                        R"("redirect_uri":"https://gw.example/callback"})"));
}

TEST(TokenExchange, SerializesRefreshTokenGrant) {
  const RefreshTokenGrant grant{.client_id = "client",
                                .client_secret = Secret("secret"),
                                .refresh_token = Secret("def50200refresh"),
                                .redirect_uri = "https://gw.example/callback"};
  const json::value v = json::parse(SerializeGrant(grant));
  EXPECT_EQ(v,
            json::parse(R"({"client_id":"client","client_secret":"secret",)"
                        R"("grant_type":"refresh_token","refresh_token":"def50200refresh",)"
                        R"("redirect_uri":"https://gw.example/callback"})"));
}

// --- ParseTokenGrant ----------------------------------------------------------------------------

::testing::AssertionResult Malformed(std::string_view body) {
  const auto r = ParseTokenGrant(body);
  if (r.has_value()) {
    return ::testing::AssertionFailure() << "parsed " << body;
  }
  if (!Is(r.error(), Errc::kAmoMalformedResponse)) {
    return ::testing::AssertionFailure() << "wrong error: " << r.error().message();
  }
  return ::testing::AssertionSuccess();
}

TEST(TokenExchange, ParsesAmocrmGrant) {
  const auto r =
      ParseTokenGrant(R"({"token_type":"Bearer","expires_in":86400,"access_token":"eyJ.a.b",)"
                      R"("refresh_token":"def50200ff"})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->token_type, "Bearer");
  EXPECT_EQ(r->expires_in, 86400);
  EXPECT_EQ(r->access_token.Reveal(), "eyJ.a.b");
  EXPECT_EQ(r->refresh_token.Reveal(), "def50200ff");
  EXPECT_FALSE(r->server_time.has_value());
}

TEST(TokenExchange, ParsesKommoServerTimeAndIgnoresUnknownFields) {
  const auto r = ParseTokenGrant(
      R"({"token_type":"Bearer","expires_in":86400,"access_token":"a","refresh_token":"r",)"
      R"("server_time":1760000000,"something_new":{"x":1}})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->server_time, 1760000000);
}

TEST(TokenExchange, IgnoresMalformedServerTime) {
  const auto r = ParseTokenGrant(
      R"({"expires_in":86400,"access_token":"a","refresh_token":"r","server_time":"now"})");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->server_time.has_value());
  EXPECT_TRUE(r->token_type.empty());
}

TEST(TokenExchange, RejectsMissingOrEmptyTokens) {
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":"a"})"));
  EXPECT_TRUE(Malformed(R"({"access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":"","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":"a","refresh_token":""})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":1,"refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":"a","refresh_token":null})"));
}

TEST(TokenExchange, RejectsBadExpiresIn) {
  EXPECT_TRUE(Malformed(R"({"expires_in":0,"access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":-1,"access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":"86400","access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400.5,"access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(Malformed(R"({"expires_in":null,"access_token":"a","refresh_token":"r"})"));
  EXPECT_TRUE(
      Malformed(R"({"expires_in":18446744073709551615,"access_token":"a","refresh_token":"r"})"));
}

TEST(TokenExchange, RejectsNonObjectBodies) {
  EXPECT_TRUE(Malformed(""));
  EXPECT_TRUE(Malformed("<html>ok</html>"));
  EXPECT_TRUE(Malformed("[]"));
  EXPECT_TRUE(Malformed("null"));
  EXPECT_TRUE(Malformed(R"({"expires_in":86400,"access_token":"a","refresh_token":"r")"));
}

// --- ClassifyAmoFailure -------------------------------------------------------------------------

struct HintCase {
  int status;
  std::string_view hint;
  Errc expected;
};

// Every hint of protocol §3.3, at the status it was observed with.
constexpr HintCase kHintCases[] = {
    {400, "Authorization code has been revoked", Errc::kAmoCodeRevoked},
    {400, "Authorization code has expired", Errc::kAmoCodeExpired},
    {401, "Authorization code has expired", Errc::kAmoCodeExpired},
    {400, "Cannot decrypt the authorization code", Errc::kAmoCodeInvalid},
    {400, "Check the `client_id` parameter", Errc::kAmoInvalidClient},
    {400, "Check the `client_secret` parameter", Errc::kAmoInvalidClient},
    {400, "Redirect URI is not associated with client", Errc::kAmoRedirectUriMismatch},
    {400, "Invalid account", Errc::kAmoInvalidAccount},
    {401, "Token has been revoked", Errc::kAmoTokenRevoked},
    {401, "Token is not linked to client", Errc::kAmoTokenNotLinked},
    {400, "Invalid refresh token", Errc::kAmoTokenRevoked},
    {401, "Invalid refresh token", Errc::kAmoTokenRevoked},
    {401, "Cannot decrypt the refresh token", Errc::kAmoTokenRevoked},
    {401, "Token has expired", Errc::kAmoTokenExpired},
};

TEST(ClassifyAmoFailure, ClassifiesEveryKnownHint) {
  for (const HintCase& c : kHintCases) {
    const AmoFailure f = ClassifyAmoFailure(c.status, ProblemBody(c.hint));
    EXPECT_EQ(f.code, c.expected) << c.status << " " << c.hint;
    EXPECT_EQ(f.status, c.status);
    EXPECT_EQ(f.hint, c.hint);
    EXPECT_EQ(f.title, kBadRequestTitle);
    EXPECT_EQ(f.detail, kBadRequestDetail);
  }
}

TEST(ClassifyAmoFailure, MatchesHintsLooselyAgainstRewording) {
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("AUTHORIZATION CODE HAS EXPIRED")).code,
            Errc::kAmoCodeExpired);
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("The authorization code has expired.")).code,
            Errc::kAmoCodeExpired);
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("Check the client_id parameter")).code,
            Errc::kAmoInvalidClient);
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("Check the \"client_secret\"  parameter")).code,
            Errc::kAmoInvalidClient);
  EXPECT_EQ(ClassifyAmoFailure(401, ProblemBody("Refresh token has been revoked")).code,
            Errc::kAmoTokenRevoked);
}

TEST(ClassifyAmoFailure, UnauthorizedClientWithoutHint) {
  // amocrm-api-php#235.
  const AmoFailure f = ClassifyAmoFailure(
      401, ProblemBody("", "Некорректный клиент", "Авторизация клиента не прошла", 401));
  EXPECT_EQ(f.code, Errc::kAmoInvalidClient);
  EXPECT_TRUE(f.hint.empty());
  EXPECT_EQ(f.title, "Некорректный клиент");
  EXPECT_EQ(f.detail, "Авторизация клиента не прошла");
  EXPECT_EQ(ClassifyAmoFailure(401, ProblemBody("", "НЕКОРРЕКТНЫЙ КЛИЕНТ", "", 401)).code,
            Errc::kAmoInvalidClient);
  EXPECT_EQ(
      ClassifyAmoFailure(401, ProblemBody("", "Unauthorized", "Client authentication failed", 401))
          .code,
      Errc::kAmoInvalidClient);
}

TEST(ClassifyAmoFailure, OtherUnauthorizedAnswers) {
  EXPECT_EQ(ClassifyAmoFailure(401, "").code, Errc::kAmoUnauthorized);
  EXPECT_EQ(ClassifyAmoFailure(401, ProblemBody("", "Unauthorized", "", 401)).code,
            Errc::kAmoUnauthorized);
  EXPECT_EQ(ClassifyAmoFailure(401, ProblemBody("Something new")).code, Errc::kAmoUnauthorized);
}

TEST(ClassifyAmoFailure, BlockedHtmlPage) {
  const AmoFailure f = ClassifyAmoFailure(
      403,
      "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
      "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
      "</html>\r\n");
  EXPECT_EQ(f.code, Errc::kAmoBlocked);
  EXPECT_EQ(f.status, 403);
  EXPECT_EQ(f.title, "403 Forbidden");
  EXPECT_TRUE(f.hint.empty());
}

TEST(ClassifyAmoFailure, StatusDecidesWhenThereIsNoHint) {
  EXPECT_EQ(ClassifyAmoFailure(500, "").code, Errc::kAmoServerError);
  EXPECT_EQ(ClassifyAmoFailure(502, "<html>Bad Gateway</html>").code, Errc::kAmoServerError);
  EXPECT_EQ(ClassifyAmoFailure(429, R"({"retry_after":5})").code, Errc::kAmoRateLimited);
  EXPECT_EQ(ClassifyAmoFailure(409, "").code, Errc::kAmoRejected);
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("Something new")).code, Errc::kAmoRejected);
  EXPECT_EQ(ClassifyAmoFailure(302, "").code, Errc::kAmoMalformedResponse);
  EXPECT_EQ(ClassifyAmoFailure(0, "").code, Errc::kAmoMalformedResponse);
}

TEST(ClassifyAmoFailure, StatusWinsOverHintForBlocksLimitsAndOutages) {
  EXPECT_EQ(ClassifyAmoFailure(403, ProblemBody("Token has been revoked")).code, Errc::kAmoBlocked);
  EXPECT_EQ(ClassifyAmoFailure(429, ProblemBody("Token has been revoked")).code,
            Errc::kAmoRateLimited);
  EXPECT_EQ(ClassifyAmoFailure(503, ProblemBody("Token has been revoked")).code,
            Errc::kAmoServerError);
}

TEST(ClassifyAmoFailure, EmptyServerErrorKeepsNothing) {
  const AmoFailure f = ClassifyAmoFailure(500, "");
  EXPECT_EQ(f.status, 500);
  EXPECT_TRUE(f.hint.empty());
  EXPECT_TRUE(f.title.empty());
  EXPECT_TRUE(f.detail.empty());
}

TEST(ClassifyAmoFailure, NeverFailsOnOddBodies) {
  for (const std::string_view body : {std::string_view("null"),
                                      std::string_view("[1,2]"),
                                      std::string_view("\"Token has been revoked\""),
                                      std::string_view("{\"hint\":"),
                                      std::string_view("{\"hint\":42,\"title\":null}"),
                                      std::string_view("\xff\xfe"),
                                      std::string_view("<title>unterminated")}) {
    const AmoFailure f = ClassifyAmoFailure(400, body);
    EXPECT_EQ(f.code, Errc::kAmoRejected) << body;
    EXPECT_TRUE(f.hint.empty()) << body;
  }
}

TEST(ClassifyAmoFailure, KeepsPlainTextAsDetail) {
  const AmoFailure f = ClassifyAmoFailure(502, "upstream\nconnect error");
  EXPECT_EQ(f.detail, "upstream connect error");
}

TEST(ClassifyAmoFailure, TruncatesLongFieldsWithoutSplittingUtf8) {
  const std::string long_ascii(1000, 'x');
  std::string long_cyrillic;
  for (int i = 0; i < 500; ++i) {
    long_cyrillic += "ж";  // two bytes
  }
  const AmoFailure f =
      ClassifyAmoFailure(400, ProblemBody(long_ascii + " Invalid account", long_cyrillic, "x y"));
  EXPECT_EQ(f.hint, std::string(300, 'x'));
  EXPECT_EQ(f.title.size(), 300U);
  EXPECT_EQ(f.title.substr(0, 4), "жж");
  // The hint is matched before truncation.
  EXPECT_EQ(f.code, Errc::kAmoInvalidAccount);

  std::string odd_cut(299, 'a');
  odd_cut += "жжж";
  EXPECT_EQ(ClassifyAmoFailure(400, ProblemBody("", odd_cut)).title, std::string(299, 'a'));
}

TEST(AccountDomain, ParsesTheLookupAnswer) {
  auto d = ParseAccountDomain(
      R"({"id":30000001,"subdomain":"renamed","domain":"renamed.amocrm.ru","top_level_domain":"ru"})");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->id, 30000001);
  EXPECT_EQ(d->subdomain, "renamed");
  EXPECT_EQ(d->domain, "renamed.amocrm.ru");
}

TEST(AccountDomain, RefusesAnswersWithoutIdOrDomain) {
  EXPECT_FALSE(ParseAccountDomain(R"({"subdomain":"x","domain":"x.amocrm.ru"})"));
  EXPECT_FALSE(ParseAccountDomain(R"({"id":1,"domain":""})"));
  EXPECT_FALSE(ParseAccountDomain(R"({"id":-5,"domain":"x.amocrm.ru"})"));
  EXPECT_FALSE(ParseAccountDomain("<html>403</html>"));
}

TEST(ClassifyAmoFailure, A404WithoutHintMayMeanARenamedAccount) {
  EXPECT_EQ(ClassifyAmoFailure(404, "").code, Errc::kAmoNotFound);
  EXPECT_EQ(ClassifyAmoFailure(404, "<html>Not Found</html>").code, Errc::kAmoNotFound);
}

}  // namespace
}  // namespace amoauth::core
