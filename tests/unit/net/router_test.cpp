#include "amoauth/http_server/router.hpp"

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "run_co.hpp"

namespace amoauth::http_server {
namespace {

namespace asio = boost::asio;

/// Answers "<tag> k1=v1 k2=v2" from the path params.
asio::awaitable<net::HttpResponse> Describe(std::string tag, net::HttpRequest request) {
  std::string body = tag;
  for (const auto& [name, value] : request.path_params) {
    body += " " + name + "=" + value;
  }
  co_return net::HttpResponse::Text(200, body);
}

asio::awaitable<net::HttpResponse> First(net::HttpRequest request) {
  return Describe("first", std::move(request));
}
asio::awaitable<net::HttpResponse> Second(net::HttpRequest request) {
  return Describe("second", std::move(request));
}
asio::awaitable<net::HttpResponse> Account(net::HttpRequest request) {
  return Describe("account", std::move(request));
}
asio::awaitable<net::HttpResponse> Update(net::HttpRequest request) {
  return Describe("update", std::move(request));
}
asio::awaitable<net::HttpResponse> Static(net::HttpRequest request) {
  return Describe("static", std::move(request));
}
asio::awaitable<net::HttpResponse> Any(net::HttpRequest request) {
  return Describe("any", std::move(request));
}
asio::awaitable<net::HttpResponse> Root(net::HttpRequest request) {
  return Describe("root", std::move(request));
}
asio::awaitable<net::HttpResponse> Fallback(net::HttpRequest request) {
  return Describe("fallback", std::move(request));
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_.Add("GET", "/", Root);
    router_.Add("GET", "/accounts/{id}", Account);
    router_.Add("POST", "/accounts/{id}", Update);
    router_.Add("GET", "/accounts/{id}/tokens/{kind}", Account);
    router_.Add("GET", "/static/{rest*}", Static);
    router_.Add("*", "/any", Any);
    router_.Add("GET", "/dup", First);
    router_.Add("GET", "/dup", Second);
  }

  net::HttpResponse Call(std::string method, std::string target) {
    net::HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    return testing::RunCo(ioc_, router_.Dispatch(std::move(request)));
  }

  asio::io_context ioc_;
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralAndParamSegments) {
  EXPECT_EQ(Call("GET", "/").body, "root");
  EXPECT_EQ(Call("GET", "/accounts/42").body, "account id=42");
  EXPECT_EQ(Call("POST", "/accounts/42?x=1").body, "update id=42");
  EXPECT_EQ(Call("GET", "/accounts/7/tokens/refresh").body, "account id=7 kind=refresh");
}

TEST_F(RouterTest, DecodesParamSegments) {
  EXPECT_EQ(Call("GET", "/accounts/a%20b%2Fc").body, "account id=a b/c");
  EXPECT_EQ(Call("GET", "/accounts/a+b").body, "account id=a+b");  // '+' is not a space in paths
}

TEST_F(RouterTest, ParamNeedsANonEmptySegment) {
  EXPECT_EQ(Call("GET", "/accounts/").status, 404);
  EXPECT_EQ(Call("GET", "/accounts").status, 404);
  EXPECT_EQ(Call("GET", "/accounts/1/2").status, 404);
}

TEST_F(RouterTest, BadEscapeInParamDoesNotMatch) {
  EXPECT_EQ(Call("GET", "/accounts/%zz").status, 404);
}

TEST_F(RouterTest, RestParamTakesTheRestStillEncoded) {
  EXPECT_EQ(Call("GET", "/static/a/b%20c.js").body, "static rest=a/b%20c.js");
  EXPECT_EQ(Call("GET", "/static/").body, "static rest=");
  EXPECT_EQ(Call("GET", "/static").body, "static rest=");
}

TEST_F(RouterTest, StarMatchesAnyMethod) {
  EXPECT_EQ(Call("DELETE", "/any").body, "any");
  EXPECT_EQ(Call("PATCH", "/any").body, "any");
}

TEST_F(RouterTest, FirstMatchWins) {
  EXPECT_EQ(Call("GET", "/dup").body, "first");
}

TEST_F(RouterTest, UnknownPathIs404Json) {
  const net::HttpResponse r = Call("GET", "/nope?secret=1");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/json; charset=utf-8");
  const auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body.at("error").as_string(), "not_found");
  EXPECT_EQ(body.at("message").as_string(), "no such endpoint: /nope");
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  const net::HttpResponse r = Call("DELETE", "/accounts/1");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.Get("Allow"), "GET, POST");
  const auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body.at("error").as_string(), "method_not_allowed");
}

TEST_F(RouterTest, FallbackReplaces404) {
  router_.SetFallback(Fallback);
  EXPECT_EQ(Call("GET", "/nope").body, "fallback");
  EXPECT_EQ(Call("PUT", "/accounts/1").status, 405);  // a known path still says 405
}

TEST_F(RouterTest, AsHandlerDispatches) {
  const Handler handler = router_.AsHandler();
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/accounts/9";
  EXPECT_EQ(testing::RunCo(ioc_, handler(std::move(request))).body, "account id=9");
}

}  // namespace
}  // namespace amoauth::http_server
