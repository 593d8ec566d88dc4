#include "amoauth/core/authorize_url.hpp"

#include <map>
#include <string>

#include <boost/url.hpp>
#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

namespace urls = boost::urls;

std::multimap<std::string, std::string> DecodedParams(const std::string& url) {
  const auto parsed = urls::parse_uri(url);
  EXPECT_TRUE(parsed.has_value()) << url;
  std::multimap<std::string, std::string> out;
  if (parsed) {
    for (const auto& param : parsed->params()) {
      out.emplace(param.key, param.value);
    }
  }
  return out;
}

TEST(AuthorizeUrl, BuildsTheStandardVariant) {
  const std::string url = BuildAuthorizeUrl({.consent_url = "https://www.amocrm.ru/oauth",
                                             .client_id = "11111111-2222-3333-4444-555555555555",
                                             .state = "abcDEF123-_",
                                             .mode = ConsentMode::kPopup});
  EXPECT_EQ(url,
            "https://www.amocrm.ru/oauth?client_id=11111111-2222-3333-4444-555555555555"
            "&state=abcDEF123-_&mode=popup");
}

TEST(AuthorizeUrl, PercentEncodesEveryReservedCharacter) {
  const std::string state = "a b&c=d+e/f?g#h%i";
  const std::string url = BuildAuthorizeUrl({.consent_url = "https://www.kommo.com/oauth",
                                             .client_id = "id&mode=evil",
                                             .state = state,
                                             .mode = ConsentMode::kPostMessage});
  EXPECT_EQ(url,
            "https://www.kommo.com/oauth?client_id=id%26mode%3Devil"
            "&state=a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25i&mode=post_message");
  const auto params = DecodedParams(url);
  EXPECT_EQ(params.count("mode"), 1U);
  EXPECT_EQ(params.find("state")->second, state);
  EXPECT_EQ(params.find("client_id")->second, "id&mode=evil");
  EXPECT_EQ(params.find("mode")->second, "post_message");
}

TEST(AuthorizeUrl, KeepsAnExistingQuery) {
  const std::string url = BuildAuthorizeUrl({.consent_url = "http://127.0.0.1:8080/oauth?lang=ru",
                                             .client_id = "c",
                                             .state = "s",
                                             .mode = ConsentMode::kPopup});
  EXPECT_EQ(url, "http://127.0.0.1:8080/oauth?lang=ru&client_id=c&state=s&mode=popup");
}

TEST(AuthorizeUrl, EncodesNonAsciiAsUtf8) {
  const std::string url = BuildAuthorizeUrl(
      {.consent_url = "https://www.amocrm.ru/oauth", .client_id = "c", .state = "ё"});
  EXPECT_EQ(url, "https://www.amocrm.ru/oauth?client_id=c&state=%D1%91&mode=popup");
}

TEST(AuthorizeUrl, InvalidConsentUrlGivesEmptyString) {
  EXPECT_EQ(BuildAuthorizeUrl({.consent_url = "not a url", .client_id = "c", .state = "s"}), "");
}

}  // namespace
}  // namespace amoauth::core
