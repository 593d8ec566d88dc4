#include "amoauth/core/site_button.hpp"

#include <gmock/gmock.h>
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
  b.theme = "dark";
  b.locale = "es";
  b.mode = ConsentMode::kPostMessage;
  EXPECT_EQ(ValidateSiteButton(b), std::nullopt);
  EXPECT_EQ(RenderSiteButton(b),
            R"(<script class="kommo_oauth" charset="utf-8" )"
            R"(data-client-id="11111111-2222-3333-4444-555555555555" )"
            R"(data-compact="true" data-theme="dark" data-locale="es" data-state="abc" )"
            R"(data-mode="post_message" src="https://www.kommo.com/auth/button.min.js"></script>)");
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

SiteButton MetadataButton() {
  SiteButton b;
  b.script_url = "https://www.amocrm.ru/auth/button.min.js";
  b.variant = ButtonVariant::kMetadata;
  b.name = "My CRM sync";
  b.description = "Keeps deals in step";
  b.redirect_uri = "https://your.site/api/v1/integrations/amo-crm/callback";
  b.secrets_uri = "https://your.site/api/v1/integrations/amo-crm/secrets";
  b.state = "st";
  return b;
}

/// The field a refused button names, or "" when it is accepted.
std::string RefusedField(const SiteButton& b) {
  auto refused = ValidateSiteButton(b);
  return refused ? refused->field : std::string();
}

std::string RefusedOption(const ButtonOptionPairs& options, SiteButton b = BaseButton()) {
  if (auto refused = ApplyButtonOptions(options, b)) {
    return refused->field;
  }
  auto refused = ValidateSiteButton(b);
  return refused ? refused->field : std::string();
}

TEST(SiteButton, RendersTheMetadataVariantWithEveryAttribute) {
  SiteButton b = MetadataButton();
  b.logo = "https://your.site/logo.png";
  b.error_callback = "onAmoError";
  b.class_name = "big cta";
  b.color = "green";
  ASSERT_EQ(ValidateSiteButton(b), std::nullopt);
  EXPECT_EQ(RenderSiteButton(b),
            R"(<script class="amocrm_oauth" charset="utf-8" data-name="My CRM sync" )"
            R"(data-description="Keeps deals in step" )"
            R"(data-redirect_uri="https://your.site/api/v1/integrations/amo-crm/callback" )"
            R"(data-secrets_uri="https://your.site/api/v1/integrations/amo-crm/secrets" )"
            R"(data-logo="https://your.site/logo.png" data-scopes="crm,notifications" )"
            R"(data-compact="false" data-class-name="big cta" data-color="green" data-state="st" )"
            R"(data-error-callback="onAmoError" data-mode="popup" )"
            R"(src="https://www.amocrm.ru/auth/button.min.js"></script>)");
}

TEST(SiteButtonOptions, AppliesEveryOptionByItsSeedName) {
  SiteButton b;
  b.script_url = "https://www.amocrm.ru/auth/button.min.js";
  auto refused = ApplyButtonOptions({{"variant", "metadata"},
                                     {"title", "Connect"},
                                     {"compact", "true"},
                                     {"class-name", "a b"},
                                     {"color", "violet"},
                                     {"error-callback", "$cb_1"},
                                     {"mode", "post_message"},
                                     {"name", "N"},
                                     {"description", "D"},
                                     {"redirect_uri", "https://x.example/cb"},
                                     {"secrets_uri", "https://x.example/secrets"},
                                     {"logo", "https://x.example/l.png"},
                                     {"scopes", " notifications , crm,crm"}},
                                    b);
  ASSERT_EQ(refused, std::nullopt) << refused->message;
  EXPECT_EQ(b.variant, ButtonVariant::kMetadata);
  EXPECT_EQ(b.title, "Connect");
  EXPECT_TRUE(b.compact);
  EXPECT_EQ(b.class_name, "a b");
  EXPECT_EQ(b.color, "violet");
  EXPECT_EQ(b.error_callback, "$cb_1");
  EXPECT_EQ(b.mode, ConsentMode::kPostMessage);
  EXPECT_EQ(b.logo, "https://x.example/l.png");
  EXPECT_EQ(b.scopes, (std::vector<std::string>{"notifications", "crm"}));
  EXPECT_EQ(ValidateSiteButton(b), std::nullopt);
}

TEST(SiteButtonOptions, RefusesUnknownRepeatedAndAmoauthOwnedOptions) {
  EXPECT_EQ(RefusedOption({{"colour", "red"}}), "colour");
  EXPECT_EQ(RefusedOption({{"title", "a"}, {"title", "b"}}), "title");
  EXPECT_EQ(RefusedOption({{"class-name", "a"}, {"class_name", "b"}}), "class_name");
  EXPECT_EQ(RefusedOption({{"state", "mine"}}), "state");
  EXPECT_EQ(RefusedOption({{"client_id", "other"}}), "client_id");
  EXPECT_EQ(RefusedOption({{"variant", "both"}}), "variant");
  EXPECT_EQ(RefusedOption({{"compact", "yes"}}), "compact");
  EXPECT_EQ(RefusedOption({{"mode", "redirect"}}), "mode");
}

TEST(SiteButtonOptions, ColorIsOneOfTheSixAndTheMessageListsThem) {
  for (const char* color : {"default", "blue", "violet", "green", "orange", "red"}) {
    EXPECT_EQ(RefusedOption({{"color", color}}), "") << color;
  }
  SiteButton b = BaseButton();
  ASSERT_EQ(ApplyButtonOptions({{"color", "pink"}}, b), std::nullopt);
  auto refused = ValidateSiteButton(b);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->field, "color");
  EXPECT_EQ(refused->message, "color must be one of default, blue, violet, green, orange, red.");
}

TEST(SiteButtonOptions, ColorIsAmocrmsAndThemeLocaleAreKommos) {
  EXPECT_EQ(RefusedOption({{"theme", "dark"}}), "theme");
  EXPECT_EQ(RefusedOption({{"locale", "en"}}), "locale");
  SiteButton kommo = BaseButton();
  kommo.platform = Platform::kKommo;
  EXPECT_EQ(RefusedOption({{"color", "red"}}, kommo), "color");
  EXPECT_EQ(RefusedOption({{"theme", "light"}, {"locale", "pt"}}, kommo), "");
  EXPECT_EQ(RefusedOption({{"theme", "blue"}}, kommo), "theme");
  EXPECT_EQ(RefusedOption({{"locale", "ru"}}, kommo), "locale");
}

TEST(SiteButtonOptions, ErrorCallbackMustBeAJsIdentifier) {
  for (const char* ok : {"cb", "_cb", "$", "onAmoError2", "a_b$c"}) {
    EXPECT_EQ(RefusedOption({{"error_callback", ok}}), "") << ok;
  }
  for (const char* bad : {"1cb",
                          "alert(1)",
                          "window.cb",
                          "a-b",
                          "cb;alert(1)",
                          "\"><script>alert(1)</script>",
                          "cb ",
                          "é"}) {
    EXPECT_EQ(RefusedOption({{"error_callback", bad}}), "error_callback") << bad;
  }
  EXPECT_EQ(RefusedOption({{"error_callback", std::string(101, 'a')}}), "error_callback");
}

TEST(SiteButtonOptions, MetadataUrlsMustBeHttpsAndTheMessageNamesTheField) {
  for (const char* field : {"redirect_uri", "secrets_uri", "logo"}) {
    for (const char* bad : {"http://your.site/x",
                            "javascript:alert(1)",
                            "//your.site/x",
                            "/relative",
                            "ftp://your.site/x",
                            "data:text/html,<script>alert(1)</script>",
                            "https://"}) {
      SiteButton b = MetadataButton();
      b.redirect_uri = b.secrets_uri = "https://ok.example/x";
      ASSERT_EQ(ApplyButtonOptions({{field, bad}}, b), std::nullopt);
      auto refused = ValidateSiteButton(b);
      ASSERT_TRUE(refused) << field << " " << bad;
      EXPECT_EQ(refused->field, field);
      EXPECT_THAT(refused->message, ::testing::StartsWith(std::string(field) + " must be"));
      EXPECT_THAT(refused->message, ::testing::HasSubstr("https://"));
    }
  }
}

TEST(SiteButtonOptions, PlainHttpIsAcceptedOnLoopbackHostsOnly) {
  for (const char* ok : {"http://127.0.0.1:8080/cb", "http://[::1]:9/cb", "http://localhost/cb"}) {
    SiteButton b = MetadataButton();
    b.redirect_uri = b.secrets_uri = b.logo = ok;
    EXPECT_EQ(RefusedField(b), "") << ok;
  }
  SiteButton b = MetadataButton();
  b.secrets_uri = "http://127.0.0.2/cb";
  EXPECT_EQ(RefusedField(b), "secrets_uri");
  b.secrets_uri = "http://localhost.evil.example/cb";
  EXPECT_EQ(RefusedField(b), "secrets_uri");
}

TEST(SiteButtonOptions, MetadataNeedsNameDescriptionUrisAndKnownScopes) {
  auto without = [](auto change) {
    SiteButton b = MetadataButton();
    change(b);
    return RefusedField(b);
  };
  EXPECT_EQ(without([](SiteButton&) {}), "");
  EXPECT_EQ(without([](SiteButton& b) { b.name.clear(); }), "name");
  EXPECT_EQ(without([](SiteButton& b) { b.description.clear(); }), "description");
  EXPECT_EQ(without([](SiteButton& b) { b.redirect_uri.clear(); }), "redirect_uri");
  EXPECT_EQ(without([](SiteButton& b) { b.secrets_uri.clear(); }), "secrets_uri");
  EXPECT_EQ(without([](SiteButton& b) { b.scopes.clear(); }), "scopes");
  EXPECT_EQ(without([](SiteButton& b) { b.client_id = "x"; }), "client_id");
  EXPECT_EQ(without([](SiteButton& b) { b.name = "line\nbreak"; }), "name");
  EXPECT_EQ(RefusedOption({{"scopes", "crm,admin"}}, MetadataButton()), "scopes");
  EXPECT_EQ(RefusedOption({{"scopes", "notifications"}}, MetadataButton()), "");
}

TEST(SiteButtonOptions, MetadataOptionsOnTheExistingVariantAreRefused) {
  EXPECT_EQ(RefusedOption({{"name", "N"}}), "name");
  EXPECT_EQ(RefusedOption({{"secrets_uri", "https://x.example/s"}}), "secrets_uri");
  EXPECT_EQ(RefusedOption({{"logo", "https://x.example/l.png"}}), "logo");
}

TEST(SiteButtonOptions, ClassNameIsCssClassesOnly) {
  EXPECT_EQ(RefusedOption({{"class_name", "btn btn-primary my_btn"}}), "");
  EXPECT_EQ(RefusedOption({{"class_name", "a\" onclick=\"alert(1)"}}), "class_name");
  EXPECT_EQ(RefusedOption({{"class_name", "a<b"}}), "class_name");
}

TEST(SiteButtonOptions, InjectedTextIsAcceptedButComesOutEscaped) {
  // Titles and descriptions are free text: they may hold quotes and angle brackets, and the tag
  // must stay one tag.
  SiteButton b = MetadataButton();
  const std::string evil = R"("><script>alert(1)</script><x a=')";
  ASSERT_EQ(ApplyButtonOptions({{"title", evil}, {"name", evil}, {"description", evil}}, b),
            std::nullopt);
  ASSERT_EQ(ValidateSiteButton(b), std::nullopt);
  const std::string html = RenderSiteButton(b);
  EXPECT_EQ(html.find("<script", 1), std::string::npos);
  EXPECT_EQ(html.find("</script>"), html.size() - 9);
  EXPECT_EQ(html.find('\''), std::string::npos);
  EXPECT_THAT(html,
              ::testing::HasSubstr(
                  "data-title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;x a=&#39;\""));
}

}  // namespace
}  // namespace amoauth::core
