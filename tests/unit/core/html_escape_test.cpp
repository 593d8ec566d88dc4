#include "amoauth/core/html_escape.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(HtmlEscape, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x" title='y'>&</a>)"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
}

TEST(HtmlEscape, LeavesOtherTextAlone) {
  EXPECT_EQ(HtmlEscape(""), "");
  EXPECT_EQ(HtmlEscape("Подключить amoCRM"), "Подключить amoCRM");
}

TEST(HtmlEscape, EscapesAmpersandsOnlyOnce) {
  EXPECT_EQ(HtmlEscape("&amp;"), "&amp;amp;");
}

}  // namespace
}  // namespace amoauth::core
