#include "amoauth/core/access_token_claims.hpp"

#include <string>

#include <gtest/gtest.h>

#include "amoauth/crypto/base64.hpp"

namespace amoauth::core {
namespace {

// The synthetic payload of protocol §4, as amoCRM lays it out.
constexpr std::string_view kPayload =
    R"({"aud":"11111111-2222-3333-4444-555555555555","jti":"0123abcd","iat":1760000000,)"
    R"("nbf":1760000000,"exp":1760086400,"sub":"10000001","grant_type":"","account_id":30000001,)"
    R"("base_domain":"amocrm.ru","version":2,)"
    R"("scopes":["push_notifications","files","crm","files_delete","notifications"],)"
    R"("hash_uuid":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","api_domain":"api-b.amocrm.ru"})";

std::string MakeJwt(std::string_view payload_json) {
  return crypto::Base64UrlEncode(R"({"typ":"JWT","alg":"RS256","jti":"0123abcd"})") + "." +
         crypto::Base64UrlEncode(payload_json) + "." + crypto::Base64UrlEncode("not a signature");
}

::testing::AssertionResult Malformed(std::string_view jwt) {
  const auto r = DecodeAccessTokenClaims(jwt);
  if (r.has_value()) {
    return ::testing::AssertionFailure() << "decoded account " << r->account_id;
  }
  if (!Is(r.error(), Errc::kAmoMalformedResponse)) {
    return ::testing::AssertionFailure() << "wrong error: " << r.error().message();
  }
  return ::testing::AssertionSuccess();
}

TEST(AccessTokenClaims, ReadsAnAmocrmToken) {
  const auto r = DecodeAccessTokenClaims(MakeJwt(kPayload));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->account_id, 30000001);
  EXPECT_EQ(r->client_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(r->user_id, "10000001");
  EXPECT_EQ(r->base_domain, "amocrm.ru");
  EXPECT_EQ(r->api_domain, "api-b.amocrm.ru");
  EXPECT_EQ(r->expires_at, 1760086400);
  EXPECT_EQ(r->scopes,
            (std::vector<std::string>{
                "push_notifications", "files", "crm", "files_delete", "notifications"}));
}

TEST(AccessTokenClaims, ApiDomainIsOptional) {
  // Tokens issued before 2024-08-21 carry no api_domain.
  const auto r = DecodeAccessTokenClaims(MakeJwt(
      R"({"aud":"c","sub":"7","account_id":1,"base_domain":"kommo.com","exp":1700000000})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->account_id, 1);
  EXPECT_EQ(r->base_domain, "kommo.com");
  EXPECT_TRUE(r->api_domain.empty());
}

TEST(AccessTokenClaims, OnlyAccountIdIsRequired) {
  const auto r = DecodeAccessTokenClaims(MakeJwt(R"({"account_id":5})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->account_id, 5);
  EXPECT_TRUE(r->client_id.empty());
  EXPECT_TRUE(r->user_id.empty());
  EXPECT_EQ(r->expires_at, 0);
  EXPECT_TRUE(r->scopes.empty());
}

TEST(AccessTokenClaims, AcceptsAccountIdAsDigitString) {
  const auto r = DecodeAccessTokenClaims(MakeJwt(R"({"account_id":"30000001"})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->account_id, 30000001);
}

TEST(AccessTokenClaims, AcceptsNumericSub) {
  const auto r = DecodeAccessTokenClaims(MakeJwt(R"({"account_id":1,"sub":10000001})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->user_id, "10000001");
}

TEST(AccessTokenClaims, AcceptsAudienceArray) {
  const auto r = DecodeAccessTokenClaims(MakeJwt(R"({"account_id":1,"aud":["c1","c2"]})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->client_id, "c1");
}

TEST(AccessTokenClaims, ToleratesUnknownAndOddlyTypedOptionalClaims) {
  const auto r = DecodeAccessTokenClaims(
      MakeJwt(R"({"account_id":1,"user_flags":0,"new_claim":{"x":[1,2]},"api_domain":7,)"
              R"("scopes":["crm",3,null],"exp":"soon"})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->api_domain.empty());
  EXPECT_EQ(r->scopes, std::vector<std::string>{"crm"});
  EXPECT_EQ(r->expires_at, 0);
}

TEST(AccessTokenClaims, AcceptsAnEmptySignature) {
  EXPECT_TRUE(DecodeAccessTokenClaims(crypto::Base64UrlEncode("{}") + "." +
                                      crypto::Base64UrlEncode(R"({"account_id":1})") + ".")
                  .has_value());
}

TEST(AccessTokenClaims, RejectsGarbageAndWrongShapes) {
  EXPECT_TRUE(Malformed(""));
  EXPECT_TRUE(Malformed("garbage"));
  EXPECT_TRUE(Malformed(crypto::Base64UrlEncode(kPayload)));                 // one part
  EXPECT_TRUE(Malformed("a." + crypto::Base64UrlEncode(kPayload)));          // two parts
  EXPECT_TRUE(Malformed(MakeJwt(kPayload) + ".extra"));                      // four parts
  EXPECT_TRUE(Malformed("a..c"));                                            // empty payload
  EXPECT_TRUE(Malformed("a.!!!!.c"));                                        // bad base64
  EXPECT_TRUE(Malformed("a." + crypto::Base64Encode("\xfb\xff{}") + ".c"));  // standard alphabet
  EXPECT_TRUE(Malformed(MakeJwt("not json")));
  EXPECT_TRUE(Malformed(MakeJwt(R"([{"account_id":1}])")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":1)")));  // truncated
}

TEST(AccessTokenClaims, RejectsMissingOrNonIntegerAccountId) {
  EXPECT_TRUE(Malformed(MakeJwt(R"({"sub":"1"})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":null})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":1.5})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":true})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":0})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":-5})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":18446744073709551615})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":""})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":"-5"})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":"+5"})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":"12a"})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":" 12"})")));
  EXPECT_TRUE(Malformed(MakeJwt(R"({"account_id":"99999999999999999999"})")));
}

}  // namespace
}  // namespace amoauth::core
