#include "amoauth/core/platform.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(Platform, RoundTripsNames) {
  for (const Platform p : {Platform::kAmocrm, Platform::kKommo}) {
    EXPECT_EQ(ParsePlatform(ToString(p)), p);
  }
  EXPECT_EQ(ToString(Platform::kAmocrm), "amocrm");
  EXPECT_EQ(ToString(Platform::kKommo), "kommo");
  EXPECT_FALSE(ParsePlatform("").has_value());
  EXPECT_FALSE(ParsePlatform("amocrm.ru").has_value());
}

TEST(Platform, KnowsEachPlatformsHosts) {
  EXPECT_EQ(DefaultConsentUrl(Platform::kAmocrm), "https://www.amocrm.ru/oauth");
  EXPECT_EQ(DefaultConsentUrl(Platform::kKommo), "https://www.kommo.com/oauth");
  EXPECT_EQ(DefaultButtonScriptUrl(Platform::kAmocrm), "https://www.amocrm.ru/auth/button.min.js");
  EXPECT_EQ(DefaultButtonScriptUrl(Platform::kKommo), "https://www.kommo.com/auth/button.min.js");
  EXPECT_EQ(ButtonScriptClass(Platform::kAmocrm), "amocrm_oauth");
  EXPECT_EQ(ButtonScriptClass(Platform::kKommo), "kommo_oauth");
}

TEST(ConsentMode, RoundTripsNames) {
  for (const ConsentMode m : {ConsentMode::kPopup, ConsentMode::kPostMessage}) {
    EXPECT_EQ(ParseConsentMode(ToString(m)), m);
  }
  EXPECT_EQ(ToString(ConsentMode::kPostMessage), "post_message");
  EXPECT_FALSE(ParseConsentMode("post-message").has_value());
}

}  // namespace
TEST(Platform, PagesNameTheProductOfTheAccountsHost) {
  EXPECT_EQ(ProductName(PlatformOfHost("example.kommo.com")), "Kommo");
  EXPECT_EQ(ProductName(PlatformOfHost("example.amocrm.ru")), "amoCRM");
  EXPECT_EQ(ProductName(PlatformOfHost("example.amocrm.com")), "amoCRM");
  EXPECT_EQ(PlatformOfHost("kommo.com.evil.example"), Platform::kAmocrm);
}

}  // namespace amoauth::core
