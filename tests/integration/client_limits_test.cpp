// Per-client limits on amoauth's HTTP surface (issue 6, items 6 and the public-path lockouts of
// docs/security.md threat 8): failed API-key attempts, /connect pages, and the widget/exchange
// hooks are counted per client address, so one address hitting its limit gets 429 while another
// still gets through. Clients at other addresses are raw sockets bound to 127.0.0.x (any of
// 127/8 is loopback on Linux), or — through a trusted proxy — X-Forwarded-For.
#include <array>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kCallbackPath = "/api/v1/integrations/amo-crm/callback";

/// One answer read off a raw socket.
struct RawAnswer {
  int status = 0;
  std::string head;  ///< status line and header fields
  std::string body;

  [[nodiscard]] bool Has(std::string_view field_line) const {
    return head.find(std::string("\r\n") + std::string(field_line) + "\r\n") != std::string::npos;
  }
};

/// One HTTP/1.1 request from a socket bound to `from`, `Connection: close`, read to the end.
RawAnswer CallFrom(std::string_view from,
                   const std::string& base_url,
                   const std::string& method,
                   const std::string& target,
                   const std::vector<std::string>& header_lines = {},
                   const std::string& body = {}) {
  const auto port = static_cast<std::uint16_t>(std::stoi(base_url.substr(base_url.rfind(':') + 1)));
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.open(asio::ip::tcp::v4());
  socket.bind(asio::ip::tcp::endpoint(asio::ip::make_address(from), 0));
  socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: amoauth\r\n";
  for (const auto& line : header_lines) {
    request += line + "\r\n";
  }
  if (!body.empty()) {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "Connection: close\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request));
  std::string all;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(all), ec);  // to EOF
  RawAnswer answer;
  const auto end = all.find("\r\n\r\n");
  answer.head = all.substr(0, end == std::string::npos ? all.size() : end + 2);
  answer.body = end == std::string::npos ? std::string() : all.substr(end + 4);
  if (all.rfind("HTTP/1.1 ", 0) == 0 && all.size() >= 12) {
    answer.status = std::stoi(all.substr(9, 3));
  }
  return answer;
}

ServiceHarness::Options Limits(service::AttemptLimits api_key_failures,
                               service::AttemptLimits connect_pages,
                               service::AttemptLimits code_hooks,
                               std::vector<std::string> trusted_proxies = {}) {
  ServiceHarness::Options options;
  options.api_key_failures = api_key_failures;
  options.connect_pages = connect_pages;
  options.code_hooks = code_hooks;
  options.trusted_proxies = std::move(trusted_proxies);
  return options;
}

TEST(ClientLimitsTest, WrongApiKeysFromOneAddressAre429EvenWithTheRightKeyAndOthersGetIn) {
  ServiceHarness h(Limits({.max_attempts = 3, .window = std::chrono::minutes(15)}, {}, {}));
  const std::string wrong = "Authorization: Bearer wrong-key-wrong-key-wrong";
  const std::string right = "Authorization: Bearer " + h.ApiKey();
  for (int i = 0; i < 3; ++i) {
    auto refused = CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {wrong});
    EXPECT_EQ(refused.status, 401) << i << refused.head;
  }
  auto blocked = CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {wrong});
  EXPECT_EQ(blocked.status, 429) << blocked.head;
  EXPECT_TRUE(blocked.Has("Retry-After: 900")) << blocked.head;
  const auto body = boost::json::parse(blocked.body).as_object();
  EXPECT_EQ(body.at("error").as_string(), "too_many_requests");
  EXPECT_THAT(std::string(body.at("message").as_string()),
              HasSubstr("Too many requests with a wrong API key from this address"));
  // The right key from the blocked address is not even compared.
  auto right_but_blocked = CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {right});
  EXPECT_EQ(right_but_blocked.status, 429);
  EXPECT_THAT(right_but_blocked.body, Not(HasSubstr("account_id")));

  // Another address: its own wrong key is a 401, its right key works; that success resets
  // nothing for 127.0.0.2.
  EXPECT_EQ(CallFrom("127.0.0.3", h.BaseUrl(), "GET", "/v1/accounts", {wrong}).status, 401);
  EXPECT_EQ(CallFrom("127.0.0.3", h.BaseUrl(), "GET", "/v1/accounts", {right}).status, 200);
  EXPECT_EQ(h.Call("GET", "/v1/accounts").status, 200);
  EXPECT_EQ(CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {right}).status, 429);

  // No Authorization at all guesses nothing and is not counted.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(CallFrom("127.0.0.4", h.BaseUrl(), "GET", "/v1/accounts").status, 401) << i;
  }
  EXPECT_EQ(CallFrom("127.0.0.4", h.BaseUrl(), "GET", "/v1/accounts", {right}).status, 200);
}

TEST(ClientLimitsTest, WrongKeysOnTheApiAndOnTheAdminLoginCountTogether) {
  ServiceHarness h(Limits({.max_attempts = 3, .window = std::chrono::minutes(15)}, {}, {}));
  const std::string form = "Content-Type: application/x-www-form-urlencoded";
  const std::string wrong = "Authorization: Bearer wrong-key-wrong-key-wrong";
  // Two wrong keys through the API and one through the login form: the address is at its limit.
  EXPECT_EQ(CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {wrong}).status, 401);
  EXPECT_EQ(CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {wrong}).status, 401);
  EXPECT_EQ(
      CallFrom("127.0.0.2", h.BaseUrl(), "POST", "/admin/login", {form}, "api_key=wrong").status,
      401);
  // The right key is now refused on both surfaces; no session is opened.
  auto login =
      CallFrom("127.0.0.2", h.BaseUrl(), "POST", "/admin/login", {form}, "api_key=" + h.ApiKey());
  EXPECT_EQ(login.status, 429) << login.head;
  EXPECT_FALSE(login.head.find("Set-Cookie") != std::string::npos) << login.head;
  const std::string right = "Authorization: Bearer " + h.ApiKey();
  EXPECT_EQ(CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/v1/accounts", {right}).status, 429);
  // Another address logs in.
  EXPECT_EQ(
      CallFrom("127.0.0.3", h.BaseUrl(), "POST", "/admin/login", {form}, "api_key=" + h.ApiKey())
          .status,
      303);
}

TEST(ClientLimitsTest, ConnectPagesPerAddressCannotFillThePendingStates) {
  ServiceHarness h(Limits({}, {.max_attempts = 2, .window = std::chrono::minutes(20)}, {}));
  for (int i = 0; i < 2; ++i) {
    auto page = CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/connect");
    EXPECT_EQ(page.status, 200) << i << page.head;
    EXPECT_THAT(page.body, HasSubstr("data-state="));
  }
  auto refused = CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/");
  EXPECT_EQ(refused.status, 429) << refused.head;
  EXPECT_TRUE(refused.Has("Retry-After: 1200")) << refused.head;
  EXPECT_TRUE(refused.Has("Content-Type: text/html; charset=utf-8")) << refused.head;
  EXPECT_THAT(refused.body, HasSubstr("Too many attempts"));
  EXPECT_THAT(refused.body, Not(HasSubstr("data-state=")));
  // Another address still gets its page, and a state.
  auto other = CallFrom("127.0.0.3", h.BaseUrl(), "GET", "/connect");
  EXPECT_EQ(other.status, 200) << other.head;
  EXPECT_THAT(other.body, HasSubstr("data-state="));
  // The internal API's connect is the backend's, behind the key: not limited.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(h.Call("POST", "/v1/connect").status, 201);
  }
}

TEST(ClientLimitsTest, CodeHooksPerAddressCannotFillTheCodeQueue) {
  ServiceHarness h(Limits({}, {}, {.max_attempts = 2, .window = std::chrono::minutes(20)}));
  const std::string hook =
      std::string(kCallbackPath) + "?referer=example.amocrm.ru&from_widget=1&code=";
  for (int i = 0; i < 2; ++i) {
    auto accepted =
        CallFrom("127.0.0.2", h.BaseUrl(), "GET", hook + "def502000forged" + std::to_string(i));
    EXPECT_EQ(accepted.status, 200) << i << accepted.body;
  }
  auto refused = CallFrom("127.0.0.2", h.BaseUrl(), "GET", hook + "def502000forged9");
  EXPECT_EQ(refused.status, 429) << refused.head;
  EXPECT_TRUE(refused.Has("Retry-After: 1200")) << refused.head;
  EXPECT_EQ(boost::json::parse(refused.body).at("error").as_string(), "too_many_requests");
  // Another address's hook is taken.
  auto other = CallFrom("127.0.0.3",
                        h.BaseUrl(),
                        "GET",
                        std::string(kCallbackPath) +
                            "?referer=example.amocrm.ru&from_exchange=1&code=def502000other");
  EXPECT_EQ(other.status, 200) << other.body;
  // The person's own callback (with a state) is not a hook and is not counted.
  auto probe = CallFrom("127.0.0.2", h.BaseUrl(), "GET", std::string(kCallbackPath));
  EXPECT_EQ(probe.status, 200);
}

TEST(ClientLimitsTest, BehindATrustedProxyTheForwardedClientIsCountedAndCannotBeForged) {
  ServiceHarness h(Limits({.max_attempts = 2, .window = std::chrono::minutes(15)},
                          {.max_attempts = 1, .window = std::chrono::minutes(20)},
                          {},
                          {"127.0.0.1"}));
  auto connect_as = [&h](const std::string& forwarded_for) {
    http_client::ClientRequest request{.method = "GET", .url = h.BaseUrl() + "/connect"};
    request.headers.Set("X-Forwarded-For", forwarded_for);
    return h.Send(std::move(request)).status;
  };
  EXPECT_EQ(connect_as("198.51.100.1"), 200);
  EXPECT_EQ(connect_as("198.51.100.1"), 429);
  EXPECT_EQ(connect_as("198.51.100.2"), 200);
  // What the client writes itself lands left of what the proxy appends: still 198.51.100.1.
  EXPECT_EQ(connect_as("203.0.113.9, 198.51.100.1"), 429);
  // A chain of trusted proxies is walked past (127.0.0.1 is trusted here).
  EXPECT_EQ(connect_as("198.51.100.3, 127.0.0.1"), 200);
  EXPECT_EQ(connect_as("198.51.100.3"), 429);

  // An untrusted peer's X-Forwarded-For is ignored: 127.0.0.2 is counted, whatever it claims.
  EXPECT_EQ(
      CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/connect", {"X-Forwarded-For: 192.0.2.1"}).status,
      200);
  EXPECT_EQ(
      CallFrom("127.0.0.2", h.BaseUrl(), "GET", "/connect", {"X-Forwarded-For: 192.0.2.2"}).status,
      429);

  // The API-key failures of one forwarded client do not block the proxy's other clients.
  auto call_as = [&h](const std::string& forwarded_for, const std::string& key) {
    http_client::ClientRequest request{.method = "GET", .url = h.BaseUrl() + "/v1/accounts"};
    request.headers.Set("X-Forwarded-For", forwarded_for);
    request.headers.Set("Authorization", "Bearer " + key);
    return h.Send(std::move(request)).status;
  };
  EXPECT_EQ(call_as("198.51.100.7", "wrong-key-wrong-key"), 401);
  EXPECT_EQ(call_as("198.51.100.7", "wrong-key-wrong-key"), 401);
  EXPECT_EQ(call_as("198.51.100.7", h.ApiKey()), 429);
  EXPECT_EQ(call_as("198.51.100.8", h.ApiKey()), 200);
  EXPECT_EQ(h.Call("GET", "/v1/accounts").status, 200);  // the proxy itself, no header
}

TEST(TokenHeadersTest, TokenAnswerIsJsonNoStoreAndNosniffAndSoAreRefusals) {
  ServiceHarness h;
  h.Connect(30000001);
  auto token = h.Call("GET", "/v1/accounts/30000001/token");
  ASSERT_EQ(token.status, 200) << token.body;
  EXPECT_TRUE(boost::json::parse(token.body).as_object().contains("access_token"));
  EXPECT_EQ(token.headers.Get("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(token.headers.Get("Cache-Control"), "no-store");
  EXPECT_EQ(token.headers.Get("X-Content-Type-Options"), "nosniff");

  auto refused = h.Call("GET", "/v1/accounts/30000001/token", {}, std::string("wrong-key-wrong"));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.headers.Get("X-Content-Type-Options"), "nosniff");
  auto unknown = h.Call("GET", "/v1/accounts/424242/token");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.headers.Get("X-Content-Type-Options"), "nosniff");
  auto health = h.Get(h.BaseUrl() + "/healthz");
  EXPECT_EQ(health.headers.Get("X-Content-Type-Options"), "nosniff");
}

}  // namespace
}  // namespace amoauth::testing
