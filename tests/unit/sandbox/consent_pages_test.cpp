#include "consent_pages.hpp"

#include <string>

#include <boost/json/object.hpp>
#include <gtest/gtest.h>

#include "sandbox_state.hpp"

namespace amoauth::sandbox {
namespace {

TEST(HtmlEscape, EscapesTheFiveCharacters) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("Интеграция"), "Интеграция");
}

TEST(ScriptJson, CannotCloseTheScriptElement) {
  const std::string out =
      ScriptJson(boost::json::object{{"url", "https://x/?a=1&b=</script><script>alert(1)"}});
  EXPECT_EQ(out.find("</script>"), std::string::npos);
  EXPECT_EQ(out.find('<'), std::string::npos);
  EXPECT_EQ(out.find('&'), std::string::npos);
  EXPECT_NE(out.find("\\u003c/script\\u003e"), std::string::npos);
  EXPECT_EQ(ScriptJson(boost::json::string("a\xE2\x80\xA8z")), "\"a\\u2028z\"");
}

TEST(ConsentPage, ShowsTheIntegrationAndBothButtons) {
  ConsentView view;
  view.integration.client_id = "cid-1";
  view.integration.client_secret = "must-not-appear";
  view.integration.name = "Shop <b>&</b>";
  view.integration.scopes = {"crm", "notifications"};
  view.accounts = DefaultAccounts();
  view.state = "st\"ate";
  view.mode = "popup";
  const std::string html = RenderConsentPage(view);
  EXPECT_NE(html.find("Shop &lt;b&gt;&amp;&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>&</b>"), std::string::npos);
  EXPECT_EQ(html.find("must-not-appear"), std::string::npos);
  EXPECT_NE(html.find(R"(<form method="post" action="/oauth/decision">)"), std::string::npos);
  EXPECT_NE(html.find(R"(name="client_id" value="cid-1")"), std::string::npos);
  EXPECT_NE(html.find(R"(name="state" value="st&quot;ate")"), std::string::npos);
  EXPECT_NE(html.find(R"(name="mode" value="popup")"), std::string::npos);
  EXPECT_NE(html.find(R"(<select name="account_id")"), std::string::npos);
  EXPECT_NE(html.find(R"(<option value="30000001">)"), std::string::npos);
  EXPECT_NE(html.find("example.amocrm.ru"), std::string::npos);
  EXPECT_NE(html.find("example.kommo.com"), std::string::npos);
  EXPECT_NE(html.find(R"(name="decision" value="allow" id="allow")"), std::string::npos);
  EXPECT_NE(html.find(R"(name="decision" value="deny" id="deny")"), std::string::npos);
  EXPECT_NE(html.find("<code>notifications</code>"), std::string::npos);
}

TEST(PopupHandoff, PostsToTheOpenerAndFallsBack) {
  const std::string html =
      RenderPopupHandoff(boost::json::object{{"url", "https://app/cb?code=1&state=2"}},
                         "https://app/cb?code=1&state=2");
  EXPECT_NE(html.find("window.opener.postMessage(message, \"*\")"), std::string::npos);
  EXPECT_NE(html.find("window.close()"), std::string::npos);
  EXPECT_NE(html.find(R"({"url":"https://app/cb?code=1\u0026state=2"})"), std::string::npos);
  EXPECT_NE(html.find("window.location = fallback"), std::string::npos);
}

TEST(ButtonScript, BehavesLikeAmoCrmsButton) {
  const std::string_view js = ButtonScript();
  for (const std::string_view needle : {
           std::string_view("script.amocrm_oauth, script.kommo_oauth"),
           std::string_view("Авторизоваться через amoCRM"),
           std::string_view("Предоставить доступ для интеграции"),
           std::string_view("scrollbars, status, resizable, width="),
           std::string_view("encodeURIComponent"),
           std::string_view("\"/oauth?\""),
           std::string_view("event.origin !== origin"),
           std::string_view("window.location = data.url"),
           std::string_view("d.errorCallback"),
           std::string_view("#339DC7"),
           std::string_view("Math.random().toString(36).substring(2)"),
       }) {
    EXPECT_NE(js.find(needle), std::string_view::npos) << needle;
  }
}

TEST(IndexPage, HidesSecrets) {
  Integration i;
  i.client_id = "cid";
  i.client_secret = "super-secret";
  i.redirect_uri = "https://app/cb";
  const std::string html = RenderIndexPage(DefaultAccounts(), {i}, "http://127.0.0.1:1");
  EXPECT_NE(html.find("cid"), std::string::npos);
  EXPECT_EQ(html.find("super-secret"), std::string::npos);
  EXPECT_NE(html.find("30000001"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::sandbox
