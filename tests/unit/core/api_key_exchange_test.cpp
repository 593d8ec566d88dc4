#include "amoauth/core/api_key_exchange.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/code_exchange_policy.hpp"

namespace amoauth::core {
namespace {

TEST(ApiKeyExchange, BodyHasTheFourFieldsAndStateOnlyWhenGiven) {
  ApiKeyExchangeRequest r{.login = "user@example.com",
                          .api_key = Secret("key-1"),
                          .client_uuid = "client-1",
                          .client_secret = Secret("secret-1"),
                          .state = {}};
  auto body = boost::json::parse(SerializeApiKeyExchange(r)).as_object();
  EXPECT_EQ(body.size(), 4U);
  EXPECT_EQ(body.at("login").as_string(), "user@example.com");
  EXPECT_EQ(body.at("api_key").as_string(), "key-1");
  EXPECT_EQ(body.at("client_uuid").as_string(), "client-1");
  EXPECT_EQ(body.at("client_secret").as_string(), "secret-1");
  r.state = "s";
  EXPECT_EQ(boost::json::parse(SerializeApiKeyExchange(r)).as_object().at("state").as_string(),
            "s");
}

TEST(ApiKeyExchange, EachRefusalHasItsOwnError) {
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(400), Errc::kAmoApiKeyRejected);
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(403), Errc::kAmoApiKeyForbidden);
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(429), Errc::kAmoApiKeyTooOften);
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(502), Errc::kAmoServerError);
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(200), Errc::kAmoRejected);  // only 202 is success
  EXPECT_EQ(ClassifyApiKeyExchangeStatus(404), Errc::kAmoRejected);
}

TEST(ApiKeyExchange, SubjectIsAHashOfLoginAndIntegrationIgnoringCase) {
  const std::string subject = ApiKeyExchangeSubject("User@Example.com", "client-1");
  EXPECT_EQ(subject, ApiKeyExchangeSubject("user@example.com", "client-1"));
  EXPECT_NE(subject, ApiKeyExchangeSubject("user@example.com", "client-2"));
  EXPECT_NE(subject, ApiKeyExchangeSubject("other@example.com", "client-1"));
  EXPECT_EQ(subject.size(), 64U);
  EXPECT_EQ(subject.find("example"), std::string::npos);
}

TEST(CodeExchangePolicy, AmoCrmTroubleIsRetriedAndRefusalsAreFinal) {
  for (Errc e : {Errc::kAmoUnreachable,
                 Errc::kAmoServerError,
                 Errc::kAmoRateLimited,
                 Errc::kAmoBlocked,
                 Errc::kAmoMalformedResponse,
                 Errc::kStoreFailure}) {
    EXPECT_EQ(ClassifyCodeFailure(make_error_code(e)), CodeFailure::kTransient) << ErrcCode(e);
  }
  for (Errc e : {Errc::kAmoCodeExpired,
                 Errc::kAmoCodeRevoked,
                 Errc::kAmoCodeInvalid,
                 Errc::kAmoRedirectUriMismatch,
                 Errc::kAmoInvalidClient,
                 Errc::kAmoInvalidAccount,
                 Errc::kCodeAlreadyUsed,
                 Errc::kRefererNotAllowed}) {
    EXPECT_EQ(ClassifyCodeFailure(make_error_code(e)), CodeFailure::kPermanent) << ErrcCode(e);
  }
  // Timeouts and resets from the network stack are not ours: transient.
  EXPECT_EQ(
      ClassifyCodeFailure(boost::system::errc::make_error_code(boost::system::errc::timed_out)),
      CodeFailure::kTransient);
}

}  // namespace
}  // namespace amoauth::core
