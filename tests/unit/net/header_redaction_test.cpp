#include "amoauth/net/header_redaction.hpp"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace amoauth::net {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HeaderRedaction, CredentialHeadersKeepOnlyTheirScheme) {
  EXPECT_EQ(RedactedHeaderValue("Authorization", "Bearer eyJhbGciOi.payload.sig"), "Bearer ***");
  EXPECT_EQ(RedactedHeaderValue("authorization", "Basic dXNlcjpwYXNz"), "Basic ***");
  EXPECT_EQ(RedactedHeaderValue("AUTHORIZATION", "key-without-scheme"), "***");
  EXPECT_EQ(RedactedHeaderValue("Proxy-Authorization", "Bearer secret"), "Bearer ***");
  // A "scheme" that is not one (digits, punctuation) is not kept either.
  EXPECT_EQ(RedactedHeaderValue("Authorization", "s3cr3t more"), "***");
  EXPECT_EQ(RedactedHeaderValue("Authorization", " leading-space"), "***");
  // Cookies and API-key headers have no scheme: nothing of them is shown.
  EXPECT_EQ(RedactedHeaderValue("Cookie", "amoauth_session=abc; other=1"), "***");
  EXPECT_EQ(RedactedHeaderValue("set-cookie", "amoauth_session=abc; HttpOnly"), "***");
  EXPECT_EQ(RedactedHeaderValue("X-Api-Key", "Bearer looks-like-a-scheme"), "***");
  EXPECT_EQ(RedactedHeaderValue("x-api-key", "k"), "***");
  EXPECT_EQ(RedactedHeaderValue("Authorization", ""), "***");
}

TEST(HeaderRedaction, OtherHeadersAreShownAsTheyAre) {
  EXPECT_FALSE(IsCredentialHeader("Content-Type"));
  EXPECT_FALSE(IsCredentialHeader("X-Authorization-Hint"));
  EXPECT_FALSE(IsCredentialHeader("Authorizatio"));
  EXPECT_EQ(RedactedHeaderValue("Content-Type", "application/json"), "application/json");
  EXPECT_EQ(RedactedHeaderValue("X-Request-Id", "Bearer not-a-credential"),
            "Bearer not-a-credential");
}

TEST(HeaderRedaction, FormattedHeadersNeverShowACredential) {
  HttpHeaders headers;
  headers.Add("Host", "example.amocrm.ru");
  headers.Add("authorization", "Bearer TOKEN-marker-1");
  headers.Add("Cookie", "s=COOKIE-marker-2");
  headers.Add("Set-Cookie", "s=COOKIE-marker-3; Secure");
  headers.Add("X-Api-Key", "KEY-marker-4");
  const std::string line = FormatHeadersForLog(headers);
  EXPECT_EQ(line,
            "Host: example.amocrm.ru; authorization: Bearer ***; Cookie: ***; Set-Cookie: ***; "
            "X-Api-Key: ***");
  EXPECT_THAT(line, Not(HasSubstr("marker")));
  EXPECT_EQ(FormatHeadersForLog(HttpHeaders{}), "");
}

}  // namespace
}  // namespace amoauth::net
