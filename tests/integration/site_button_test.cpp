// The site button through the real service (issue 4, items 1 and 5): GET /v1/button, GET /connect,
// and the callback page's answer per consent mode — what the browser tests then click.
#include <regex>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

boost::json::object JsonOf(const net::HttpResponse& r) {
  return boost::json::parse(r.body).as_object();
}

std::string StringAt(const boost::json::object& o, std::string_view key) {
  return std::string(o.at(key).as_string());
}

/// The button's state, as minted for it.
std::string ButtonState(const boost::json::object& button) {
  return StringAt(button, "state");
}

/// The nonce the page's CSP allows, and the nonce of its inline script, must be the same one.
std::string CspNonce(const net::HttpResponse& r) {
  std::smatch m;
  const std::string csp(r.headers.Get("Content-Security-Policy").value_or(""));
  return std::regex_search(csp, m, std::regex("'nonce-([^']+)'")) ? m[1].str() : std::string();
}

class SiteButtonTest : public ::testing::Test {
 protected:
  ServiceHarness h;
};

TEST_F(SiteButtonTest, ButtonEndpointRendersTheExistingVariantWithAFreshUsableState) {
  auto r =
      h.Call("GET", "/v1/button?title=Connect%20us&color=green&mode=post_message&compact=true");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.Get("Cache-Control"), "no-store");
  auto body = JsonOf(r);
  EXPECT_EQ(StringAt(body, "variant"), "existing");
  EXPECT_EQ(StringAt(body, "mode"), "post_message");
  EXPECT_FALSE(StringAt(body, "expires_at").empty());
  const std::string html = StringAt(body, "html");
  EXPECT_THAT(html, HasSubstr("class=\"amocrm_oauth\""));
  EXPECT_THAT(html, HasSubstr("data-client-id=\"" + h.SandboxIntegration().client_id + "\""));
  EXPECT_THAT(html, HasSubstr("data-title=\"Connect us\""));
  EXPECT_THAT(html, HasSubstr("data-color=\"green\""));
  EXPECT_THAT(html, HasSubstr("data-compact=\"true\""));
  EXPECT_THAT(html, HasSubstr("data-mode=\"post_message\""));
  EXPECT_THAT(html, HasSubstr("data-state=\"" + ButtonState(body) + "\""));

  // The state is one of ours: the callback accepts it once.
  const std::string location = h.Decide(ButtonState(body), "allow");
  EXPECT_EQ(h.Get(location).status, 200);
  EXPECT_EQ(h.Get(location).status, 400);
}

TEST_F(SiteButtonTest, ButtonEndpointRendersTheMetadataVariantPointingBackAtAmoauth) {
  auto r = h.Call("GET",
                  "/v1/button?variant=metadata&name=Sync&description=Deals%20in%20step"
                  "&logo=https%3A%2F%2Fcdn.example%2Flogo.png&scopes=crm");
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = JsonOf(r);
  EXPECT_EQ(StringAt(body, "variant"), "metadata");
  const std::string html = StringAt(body, "html");
  EXPECT_THAT(html, Not(HasSubstr("data-client-id")));
  EXPECT_THAT(html, HasSubstr("data-name=\"Sync\""));
  EXPECT_THAT(html, HasSubstr("data-description=\"Deals in step\""));
  EXPECT_THAT(
      html,
      HasSubstr("data-redirect_uri=\"" + h.BaseUrl() + "/api/v1/integrations/amo-crm/callback\""));
  EXPECT_THAT(
      html,
      HasSubstr("data-secrets_uri=\"" + h.BaseUrl() + "/api/v1/integrations/amo-crm/secrets\""));
  EXPECT_THAT(html, HasSubstr("data-logo=\"https://cdn.example/logo.png\""));
  EXPECT_THAT(html, HasSubstr("data-scopes=\"crm\""));
}

TEST_F(SiteButtonTest, ButtonEndpointRefusesBadOptionsNamingTheFieldAndMintsNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/button?color=pink", "color"},
      {"/v1/button?mode=sideways", "mode"},
      {"/v1/button?error_callback=alert(1)", "error_callback"},
      {"/v1/button?state=mine", "state"},
      {"/v1/button?colour=red", "colour"},
      {"/v1/button?variant=metadata&name=N&description=D&logo=javascript:alert(1)", "logo"},
      {"/v1/button?variant=metadata&name=N&description=D&secrets_uri=http%3A%2F%2Fx.example%2Fs",
       "secrets_uri"},
      {"/v1/button?variant=metadata&description=D", "name"},
      {"/v1/button?name=N", "name"},
  };
  for (const auto& [target, field] : cases) {
    auto r = h.Call("GET", target);
    ASSERT_EQ(r.status, 400) << target;
    auto body = JsonOf(r);
    EXPECT_EQ(StringAt(body, "error"), "invalid_request");
    EXPECT_EQ(StringAt(body, "field"), field) << target;
    EXPECT_THAT(StringAt(body, "message"), HasSubstr(field)) << target;
    EXPECT_FALSE(StringAt(body, "request_id").empty());
  }
  EXPECT_EQ(h.Call("GET", "/v1/button", {}, std::string("wrong-key-wrong-key")).status, 401);
}

TEST_F(SiteButtonTest, InjectedMarkupInOptionsComesOutEscaped) {
  auto r = h.Call("GET",
                  "/v1/button?title=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E"
                  "&class_name=a%20b");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string html = StringAt(JsonOf(r), "html");
  EXPECT_THAT(html, HasSubstr("data-title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
  EXPECT_EQ(html.find("<script", 1), std::string::npos);
}

TEST_F(SiteButtonTest, ConnectPageRendersTheButtonInTheModeTheLinkAsksFor) {
  for (const std::string path : {"/connect", "/"}) {
    auto page = h.Get(h.BaseUrl() + path);
    ASSERT_EQ(page.status, 200) << path;
    EXPECT_THAT(page.body, HasSubstr("data-mode=\"popup\""));
    EXPECT_THAT(page.body, HasSubstr("data-error-callback=\"amoauthConnectFailed\""));
    EXPECT_THAT(page.body, HasSubstr("data-title=\"Connect amoCRM\""));
  }
  auto page = h.Get(h.BaseUrl() + "/connect?mode=post_message");
  ASSERT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("data-mode=\"post_message\""));
  // The page's script runs under its nonce; the button script's origin is the only other source.
  const std::string nonce = CspNonce(page);
  ASSERT_FALSE(nonce.empty());
  EXPECT_THAT(page.body, HasSubstr("<script nonce=\"" + nonce + "\">"));
  EXPECT_THAT(page.headers.Get("Content-Security-Policy").value_or(""),
              HasSubstr("script-src 'nonce-" + nonce + "' http://127.0.0.1:"));
  EXPECT_NE(CspNonce(h.Get(h.BaseUrl() + "/connect?mode=post_message")), nonce);
  // It listens to the callback page's origin only.
  EXPECT_THAT(page.body, HasSubstr("\"callback_origin\":\"" + h.BaseUrl() + "\""));

  EXPECT_EQ(h.Get(h.BaseUrl() + "/connect?mode=sideways").status, 400);
}

TEST_F(SiteButtonTest, PostMessageCallbackPostsTheAccountToTheOpenerOnlyAtOurOrigin) {
  auto body = JsonOf(h.Call("GET", "/v1/button?mode=post_message"));
  auto page = h.Get(h.Decide(ButtonState(body), "allow"));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("is connected"));  // the words stay, in case there's no opener
  EXPECT_THAT(page.body,
              HasSubstr(R"(var message = {"status":"ok","account_id":30000001,)"
                        R"("base_domain":"example.amocrm.ru"};)"));
  EXPECT_THAT(page.body, HasSubstr("var target = \"" + h.BaseUrl() + "\";"));
  EXPECT_THAT(page.body, HasSubstr("window.opener.postMessage(message, target);"));
  EXPECT_THAT(page.body, HasSubstr("window.close();"));
  EXPECT_THAT(page.body, Not(HasSubstr("\"*\"")));
  const std::string nonce = CspNonce(page);
  ASSERT_FALSE(nonce.empty());
  EXPECT_THAT(page.body, HasSubstr("<script nonce=\"" + nonce + "\">"));
  EXPECT_THAT(page.headers.Get("Content-Security-Policy").value_or(""),
              HasSubstr("default-src 'none'; script-src 'nonce-" + nonce + "'"));
}

TEST_F(SiteButtonTest, PostMessageDenyPostsTheErrorToTheOpener) {
  auto body = JsonOf(h.Call("GET", "/v1/button?mode=post_message"));
  const std::string location = h.Decide(ButtonState(body), "deny");
  ASSERT_THAT(location, HasSubstr("error=access_denied"));
  auto page = h.Get(location);
  EXPECT_EQ(page.status, 403);
  EXPECT_THAT(page.body, HasSubstr("Access was not granted"));
  EXPECT_THAT(page.body,
              HasSubstr(R"(var message = {"status":"error","error":"access_denied","message":)"
                        R"("Access was not granted. )"));
  EXPECT_THAT(page.body, HasSubstr("var target = \"" + h.BaseUrl() + "\";"));
}

TEST_F(SiteButtonTest, PopupCallbackLandsOnThePlainPageWithNoScript) {
  auto body = JsonOf(h.Call("GET", "/v1/button?mode=popup"));
  auto page = h.Get(h.Decide(ButtonState(body), "allow"));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("is connected"));
  EXPECT_THAT(page.body, Not(HasSubstr("<script")));
  EXPECT_EQ(page.headers.Get("Content-Security-Policy").value_or("").find("script-src"),
            std::string::npos);

  auto denied = JsonOf(h.Call("GET", "/v1/button?mode=popup"));
  auto refusal = h.Get(h.Decide(ButtonState(denied), "deny"));
  EXPECT_EQ(refusal.status, 403);
  EXPECT_THAT(refusal.body, HasSubstr("Access was not granted"));
  EXPECT_THAT(refusal.body, Not(HasSubstr("<script")));
}

TEST(SiteButtonOrigin, TheConfiguredPostMessageOriginIsTheTarget) {
  ServiceHarness h({.post_message_origin = "https://app.your.site"});
  auto body = JsonOf(h.Call("GET", "/v1/button?mode=post_message"));
  auto page = h.Get(h.Decide(ButtonState(body), "allow"));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("var target = \"https://app.your.site\";"));
}

}  // namespace
}  // namespace amoauth::testing
