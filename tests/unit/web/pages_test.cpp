// docs/security.md, threat 7: data placed inside amoauth's own <script> elements cannot end them,
// open a comment in them or break their lines (ScriptJson), whatever the account or amoCRM says.
#include "pages.hpp"

#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace amoauth::web::pages {
namespace {

TEST(ScriptJson, EscapesEverythingThatCouldEndOrBendAScriptElement) {
  const std::string hostile =
      "</script><script>alert(1)</script> </SCRIPT <!-- --> <![CDATA[ ]]> & \xE2\x80\xA8 "
      "\xE2\x80\xA9";
  const std::string out = ScriptJson(boost::json::string(hostile));
  for (const char* forbidden : {"<", ">", "&", "\xE2\x80\xA8", "\xE2\x80\xA9"}) {
    EXPECT_EQ(out.find(forbidden), std::string::npos) << forbidden << " in " << out;
  }
  EXPECT_NE(out.find("\\u003c/script\\u003e"), std::string::npos) << out;
  EXPECT_NE(out.find("\\u0026"), std::string::npos) << out;
  EXPECT_NE(out.find("\\u2028"), std::string::npos) << out;
  EXPECT_NE(out.find("\\u2029"), std::string::npos) << out;
  // Still JSON, and the same value: the page's script reads what the account said.
  EXPECT_EQ(boost::json::parse(out).as_string(), hostile);

  const boost::json::object nested{{"<key>", boost::json::array{"</script>", 1}}};
  const std::string object_out = ScriptJson(nested);
  EXPECT_EQ(object_out.find('<'), std::string::npos) << object_out;
  EXPECT_EQ(boost::json::parse(object_out), nested);
}

TEST(ScriptJson, ThePostMessagePageCarriesAHostileAccountHostInsideItsOneScript) {
  core::Connection connection;
  connection.account_id = 30000001;
  connection.base_domain = "x</script><script>alert(document.domain)</script><!--.amocrm.ru";
  const auto page =
      Connected(connection, OpenerMessage{.target_origin = "https://app.example", .nonce = "n0"});
  const std::string& html = page.body;
  const auto open = html.find("<script nonce=\"n0\">");
  ASSERT_NE(open, std::string::npos) << html;
  const auto close = html.find("</script", open);
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ(html.find("<script", open + 1), std::string::npos) << "a second script: " << html;
  EXPECT_EQ(html.find("</script", close + 1), std::string::npos) << "the element was ended early";
  const std::string script = html.substr(open, close - open);
  EXPECT_EQ(script.find("<!--"), std::string::npos) << script;
  EXPECT_NE(script.find("\\u003c/script\\u003e"), std::string::npos) << script;
}

}  // namespace
}  // namespace amoauth::web::pages
