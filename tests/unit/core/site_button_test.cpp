#include "amoauth/core/site_button.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

SiteButton BaseButton() {
  SiteButton b;
  b.platform = Platform::kAmocrm;
  b.script_url = "https://www.amocrm.ru/auth/button.min.js";
  b.client_id = "11111111-2222-3333-4444-555555555555";
  b.title = "Connect";
  b.state = "abc";
  return b;
}

TEST(SiteButton, RendersTheDocumentedTag) {
  EXPECT_EQ(RenderSiteButton(BaseButton()),
            R"(<script class="amocrm_oauth" charset="utf-8" )"
            R"(data-client-id="11111111-2222-3333-4444-555555555555" data-title="Connect" )"
            R"(data-compact="false" data-color="default" data-state="abc" data-mode="popup" )"
            R"(src="https://www.amocrm.ru/auth/button.min.js"></script>)");
}

TEST(SiteButton, KommoCompactPostMessageWithoutTitle) {
  SiteButton b = BaseButton();
  b.platform = Platform::kKommo;
  b.script_url = "https://www.kommo.com/auth/button.min.js";
  b.title.clear();
  b.compact = true;
  b.color = "blue";
  b.mode = ConsentMode::kPostMessage;
  EXPECT_EQ(RenderSiteButton(b),
            R"(<script class="kommo_oauth" charset="utf-8" )"
            R"(data-client-id="11111111-2222-3333-4444-555555555555" )"
            R"(data-compact="true" data-color="blue" data-state="abc" data-mode="post_message" )"
            R"(src="https://www.kommo.com/auth/button.min.js"></script>)");
}

TEST(SiteButton, EscapesEveryValue) {
  const std::string evil = R"("><script>alert(1)</script>)";
  const std::string escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;";
  SiteButton b;
  b.script_url = evil;
  b.client_id = evil;
  b.title = evil;
  b.color = evil;
  b.state = evil;
  const std::string html = RenderSiteButton(b);
  EXPECT_EQ(html,
            R"(<script class="amocrm_oauth" charset="utf-8" data-client-id=")" + escaped +
                R"(" data-title=")" + escaped + R"(" data-compact="false" data-color=")" + escaped +
                R"(" data-state=")" + escaped + R"(" data-mode="popup" src=")" + escaped +
                R"("></script>)");
  // Only the tag's own <script and </script> remain.
  EXPECT_EQ(html.find("<script", 1), std::string::npos);
  EXPECT_EQ(html.find("</script>"), html.size() - 9);
}

TEST(SiteButton, EscapesSingleQuotesToo) {
  SiteButton b = BaseButton();
  b.title = "Tom's";
  EXPECT_NE(RenderSiteButton(b).find(R"(data-title="Tom&#39;s")"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::core
