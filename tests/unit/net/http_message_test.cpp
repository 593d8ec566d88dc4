#include "amoauth/net/http_message.hpp"

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace amoauth::net {
namespace {

TEST(HttpHeaders, NamesCompareCaseInsensitively) {
  HttpHeaders headers;
  headers.Add("Content-Type", "text/plain");
  headers.Add("X-Thing", "one");
  headers.Add("x-thing", "two");
  EXPECT_EQ(headers.Get("content-type"), "text/plain");
  EXPECT_EQ(headers.Get("X-THING"), "one");
  EXPECT_FALSE(headers.Get("Missing").has_value());

  headers.Set("X-Thing", "three");
  ASSERT_EQ(headers.All().size(), 2U);
  EXPECT_EQ(headers.Get("x-thing"), "three");

  headers.Remove("CONTENT-TYPE");
  EXPECT_FALSE(headers.Get("Content-Type").has_value());
  EXPECT_EQ(headers.All().size(), 1U);
}

// The checks both the server (answers' fields) and the client (requests' fields) apply.
TEST(HttpFields, TokensAreTheCharactersOfRfc9110AndNothingElse) {
  EXPECT_TRUE(IsHttpToken("X-Request-Id"));
  EXPECT_TRUE(IsHttpToken("GET"));
  EXPECT_TRUE(IsHttpToken("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(IsHttpToken(""));
  // Separators, whitespace, controls, DEL, bytes above ASCII and an embedded NUL.
  constexpr char kNotToken[] = " \t\r\n\"(),/:;<=>?@[\\]{}\x7f\x80\xff\0";
  for (const char c : std::string_view(kNotToken, sizeof kNotToken - 1)) {
    EXPECT_FALSE(IsHttpToken(std::string("X-") + c)) << static_cast<int>(c);
  }
}

TEST(HttpFields, AValueIsSafeUnlessItHoldsCrLfOrNulAnywhere) {
  const std::string token = "Bearer " + std::string(1000, 'a');  // an access token's size
  EXPECT_TRUE(IsSafeFieldValue(token));
  EXPECT_TRUE(IsSafeFieldValue(""));
  EXPECT_TRUE(IsSafeFieldValue("tab\tand \x7f and кириллица"));
  for (const char bad : {'\r', '\n', '\0'}) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{500}, token.size() - 1}) {
      std::string value = token;
      value[at] = bad;
      EXPECT_FALSE(IsSafeFieldValue(value)) << static_cast<int>(bad) << " at " << at;
    }
  }
}

TEST(ParseQuery, DecodesPercentAndPlus) {
  auto params = ParseQuery("code=def%2F502&state=a+b%20c&flag&empty=");
  ASSERT_TRUE(params) << params.error().message();
  ASSERT_EQ(params->size(), 4U);
  EXPECT_EQ(Find(*params, "code"), "def/502");
  EXPECT_EQ(Find(*params, "state"), "a b c");
  EXPECT_EQ(Find(*params, "flag"), "");
  EXPECT_EQ(Find(*params, "empty"), "");
  EXPECT_FALSE(Find(*params, "missing").has_value());
}

TEST(ParseQuery, KeepsOrderAndDuplicates) {
  auto params = ParseQuery("a=1&b=2&a=3");
  ASSERT_TRUE(params);
  ASSERT_EQ(params->size(), 3U);
  EXPECT_EQ((*params)[2], (std::pair<std::string, std::string>("a", "3")));
  EXPECT_EQ(Find(*params, "a"), "1");
}

TEST(ParseQuery, DecodesKeysAndEncodedSeparators) {
  auto params = ParseQuery("k%3Dy=v%26w");
  ASSERT_TRUE(params);
  ASSERT_EQ(params->size(), 1U);
  EXPECT_EQ((*params)[0].first, "k=y");
  EXPECT_EQ((*params)[0].second, "v&w");
}

TEST(ParseQuery, EmptyAndBlankPartsYieldNothing) {
  auto empty = ParseQuery("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto blanks = ParseQuery("a=1&&b=2&");
  ASSERT_TRUE(blanks);
  EXPECT_EQ(blanks->size(), 2U);
}

TEST(ParseQuery, RejectsBadPercentEncoding) {
  for (const char* bad : {"a=%zz", "a=%", "a=%4", "%g1=x", "a=1&b=%zz[]"}) {
    auto params = ParseQuery(bad);
    ASSERT_FALSE(params) << bad;
    EXPECT_TRUE(Is(params.error(), Errc::kInvalidArgument)) << bad;
  }
}

TEST(ParseQuery, AcceptsCharactersRealClientsSendUnencoded) {
  auto params = ParseQuery("leads[add][0][id]=5&q=a|b{c}&s=x y");
  ASSERT_TRUE(params) << params.error().message();
  EXPECT_EQ(Find(*params, "leads[add][0][id]"), "5");
  EXPECT_EQ(Find(*params, "q"), "a|b{c}");
  EXPECT_EQ(Find(*params, "s"), "x y");
}

TEST(ParseQuery, DecodesUtf8) {
  auto params = ParseQuery("name=%D0%9C%D0%B8%D1%80");
  ASSERT_TRUE(params);
  EXPECT_EQ(Find(*params, "name"), "\xD0\x9C\xD0\xB8\xD1\x80");
}

// Found by fuzz/query_fuzzer.cpp: Boost.URL 1.81's parse_query measured its input with strlen,
// so a view into a longer buffer was parsed up to the buffer's NUL, past the view's end.
TEST(ParseQuery, ReadsOnlyTheViewItIsGiven) {
  const std::string buffer = "a=1&b=2&secret=s3cr3t";
  auto params = ParseQuery(std::string_view(buffer).substr(0, 3));
  ASSERT_TRUE(params) << params.error().message();
  ASSERT_EQ(params->size(), 1U);
  EXPECT_EQ(Find(*params, "a"), "1");
  EXPECT_FALSE(Find(*params, "secret"));
  // The same through the path that re-encodes characters a query may not hold literally.
  const std::string raw = "q=a|b&rest=x";
  auto raw_params = ParseQuery(std::string_view(raw).substr(0, 5));
  ASSERT_TRUE(raw_params) << raw_params.error().message();
  ASSERT_EQ(raw_params->size(), 1U);
  EXPECT_EQ(Find(*raw_params, "q"), "a|b");
}

// Found by fuzz/disconnect_hook_fuzzer.cpp: RawQuery() ends at '#', so every handler handed
// ParseQuery a view that is not NUL-terminated; Boost.URL 1.81 then parsed the fragment too, with a
// parameter count that did not match its view (ASan: SEGV in params_encoded_base::begin).
TEST(ParseQuery, StopsAtTheFragmentOfARequestTarget) {
  HttpRequest request;
  request.target = "/cb?account_id=1#a=co&signature=x;0%1";
  auto params = ParseQuery(request.RawQuery());
  ASSERT_TRUE(params) << params.error().message();
  ASSERT_EQ(params->size(), 1U);
  EXPECT_EQ(Find(*params, "account_id"), "1");
  EXPECT_FALSE(Find(*params, "signature"));
}

TEST(HttpRequest, SplitsTarget) {
  HttpRequest request;
  request.target = "/oauth/callback?code=x&state=y";
  EXPECT_EQ(request.Path(), "/oauth/callback");
  EXPECT_EQ(request.RawQuery(), "code=x&state=y");
  request.target = "/plain";
  EXPECT_EQ(request.Path(), "/plain");
  EXPECT_EQ(request.RawQuery(), "");
  request.target = "/empty?";
  EXPECT_EQ(request.Path(), "/empty");
  EXPECT_EQ(request.RawQuery(), "");
}

TEST(HttpRequest, PathParam) {
  HttpRequest request;
  request.path_params = {{"id", "42"}, {"rest", "a/b"}};
  EXPECT_EQ(request.PathParam("id"), "42");
  EXPECT_EQ(request.PathParam("rest"), "a/b");
  EXPECT_EQ(request.PathParam("nope"), "");
}

TEST(HttpResponse, FactoriesSetContentType) {
  const HttpResponse json = HttpResponse::Json(201, "{}");
  EXPECT_EQ(json.status, 201);
  EXPECT_EQ(json.body, "{}");
  EXPECT_EQ(json.headers.Get("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(HttpResponse::Html(200, "<p>").headers.Get("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(HttpResponse::Text(500, "x").headers.Get("Content-Type"), "text/plain; charset=utf-8");

  const HttpResponse redirect = HttpResponse::Redirect(302, "https://example.amocrm.ru/");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_EQ(redirect.headers.Get("Location"), "https://example.amocrm.ru/");
  EXPECT_TRUE(redirect.body.empty());
}

TEST(HttpResponse, JsonErrorEscapes) {
  const HttpResponse r = HttpResponse::JsonError(404, "not_found", "no \"such\"\nthing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/json; charset=utf-8");
  const auto parsed = boost::json::parse(r.body).as_object();
  EXPECT_EQ(parsed.at("error").as_string(), "not_found");
  EXPECT_EQ(parsed.at("message").as_string(), "no \"such\"\nthing");
}

}  // namespace
}  // namespace amoauth::net
