#include "amoauth/core/web_origin.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(WebOrigin, IsSchemeHostAndPortOfTheUrl) {
  EXPECT_EQ(WebOrigin("https://your.site/api/v1/integrations/amo-crm/callback?x=1"),
            "https://your.site");
  EXPECT_EQ(WebOrigin("http://127.0.0.1:8080/cb"), "http://127.0.0.1:8080");
  EXPECT_EQ(WebOrigin("HTTPS://Your.Site:8443/"), "https://your.site:8443");
  EXPECT_EQ(WebOrigin("http://[::1]:9000/x"), "http://[::1]:9000");
}

TEST(WebOrigin, LeavesOutTheDefaultPortAsBrowsersDo) {
  EXPECT_EQ(WebOrigin("https://your.site:443/cb"), "https://your.site");
  EXPECT_EQ(WebOrigin("http://your.site:80/cb"), "http://your.site");
}

TEST(WebOrigin, RefusesWhatIsNotAnHttpUrl) {
  EXPECT_EQ(WebOrigin("javascript:alert(1)"), std::nullopt);
  EXPECT_EQ(WebOrigin("/relative/path"), std::nullopt);
  EXPECT_EQ(WebOrigin("ftp://host/"), std::nullopt);
  EXPECT_EQ(WebOrigin("https://user:pw@host/"), std::nullopt);
  EXPECT_EQ(WebOrigin("*"), std::nullopt);
  EXPECT_EQ(WebOrigin(""), std::nullopt);
}

}  // namespace
}  // namespace amoauth::core
