// The metadata variant of the consent URL (protocol §2.2): parsing and the page, no sockets.

#include "external_integration.hpp"

#include <string>

#include <gtest/gtest.h>

namespace amoauth::sandbox {
namespace {

net::QueryParams Query(std::string_view encoded) {
  auto parsed = net::ParseQuery(encoded);
  EXPECT_TRUE(parsed.has_value());
  return parsed ? *parsed : net::QueryParams{};
}

constexpr std::string_view kBase =
    "name=Shop&description=Sells&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"
    "&secrets_uri=https%3A%2F%2Fapp.example.com%2Fsecrets";

TEST(ExternalRequest, TakesPhpArrayScopesAndCommaScopes) {
  auto parsed = ParseExternalRequest(
      Query(std::string(kBase) + "&scopes%5B%5D=crm&scopes[]=notifications&logo=https://x/l.png"));
  ASSERT_TRUE(std::holds_alternative<ExternalRequest>(parsed)) << std::get<std::string>(parsed);
  const auto& request = std::get<ExternalRequest>(parsed);
  EXPECT_EQ(request.scopes, (std::vector<std::string>{"crm", "notifications"}));
  EXPECT_EQ(request.redirect_uri, "https://app.example.com/cb");
  EXPECT_EQ(request.logo, "https://x/l.png");

  parsed = ParseExternalRequest(Query(std::string(kBase) + "&scopes=crm,%20notifications"));
  ASSERT_TRUE(std::holds_alternative<ExternalRequest>(parsed));
  EXPECT_EQ(std::get<ExternalRequest>(parsed).scopes,
            (std::vector<std::string>{"crm", "notifications"}));
}

TEST(ExternalRequest, SaysWhatIsMissingOrWrong) {
  auto parsed = ParseExternalRequest(Query("name=Shop&secrets_uri=https://a/s"));
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_NE(std::get<std::string>(parsed).find("description, redirect_uri, scopes"),
            std::string::npos)
      << std::get<std::string>(parsed);

  parsed = ParseExternalRequest(Query(std::string(kBase) + "&scopes[]=crm&scopes[]=files"));
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_NE(std::get<std::string>(parsed).find("files"), std::string::npos);

  parsed = ParseExternalRequest(
      Query("name=a&description=b&redirect_uri=javascript:alert(1)&secrets_uri=https://a/s"
            "&scopes[]=crm"));
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_NE(std::get<std::string>(parsed).find("redirect_uri"), std::string::npos);

  parsed = ParseExternalRequest(Query(std::string(kBase) + "&scopes[]=crm&logo=data:x"));
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_NE(std::get<std::string>(parsed).find("logo"), std::string::npos);
}

TEST(ExternalRequest, IsTheMetadataVariantOnlyWithoutClientId) {
  EXPECT_TRUE(IsExternalRequest(Query(kBase)));
  EXPECT_FALSE(IsExternalRequest(Query(std::string(kBase) + "&client_id=x")));
  EXPECT_FALSE(IsExternalRequest(Query("name=Shop")));
}

TEST(ExternalConsentPage, EscapesEveryMetadataValue) {
  ConsentView view;
  view.integration.name = "<script>alert(1)</script>";
  view.integration.scopes = {"crm"};
  view.accounts = DefaultAccounts();
  view.mode = "popup";
  view.external = ExternalRequest{"<script>alert(1)</script>",
                                  "a \"quoted\" <b>description</b> & more",
                                  "https://app.example.com/cb?a=1&b=2",
                                  "https://app.example.com/secrets",
                                  "https://app.example.com/logo.png\" onerror=\"alert(1)",
                                  {"crm"}};
  const std::string page = RenderConsentPage(view);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.find("<b>description"), std::string::npos);
  EXPECT_EQ(page.find("\" onerror=\""), std::string::npos);
  EXPECT_NE(page.find("&lt;b&gt;description&lt;/b&gt; &amp; more"), std::string::npos);
  EXPECT_NE(page.find(R"(name="secrets_uri" value="https://app.example.com/secrets")"),
            std::string::npos);
  EXPECT_NE(page.find(R"(name="scopes[]" value="crm")"), std::string::npos);
  EXPECT_EQ(page.find(R"(name="client_id")"), std::string::npos);
}

}  // namespace
}  // namespace amoauth::sandbox
