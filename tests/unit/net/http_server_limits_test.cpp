// HttpServer's limits (ServerOptions): deadlines for headers, bodies and idle keep-alive
// connections, header size and count, connection caps — and, above all, that a well-behaved
// client keeps getting its answers while other clients misbehave. Raw sockets play the
// misbehaving clients; every wait is bounded and the server's timeouts are made short.

#include <array>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/http_server/router.hpp"
#include "run_co.hpp"

namespace amoauth {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using http_client::ClientRequest;
using http_client::HttpClient;
using http_server::HttpServer;
using http_server::Router;
using http_server::ServerOptions;
using net::HttpRequest;
using net::HttpResponse;
using std::chrono::milliseconds;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<HttpResponse> Hello(HttpRequest request) {
  co_return HttpResponse::Text(200, "hello " + std::string(request.PathParam("name")));
}

asio::awaitable<HttpResponse> Echo(HttpRequest request) {
  co_return HttpResponse::Text(200, request.body);
}

/// A client on a raw socket: what it sent, what came back, and when the server closed on it.
struct RawPeer {
  explicit RawPeer(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  std::string received;
  bool done = false;  ///< the server closed (or reset) the connection
  Clock::time_point opened;
  Clock::time_point closed;

  [[nodiscard]] Clock::duration Lived() const { return closed - opened; }
};

asio::awaitable<void> ReadUntilClosed(std::shared_ptr<RawPeer> peer) {
  std::array<char, 4096> chunk{};
  for (;;) {
    auto buffer = asio::buffer(chunk);
    auto [ec, n] = co_await peer->socket.async_read_some(buffer, kTuple);
    peer->received.append(chunk.data(), n);
    if (ec) {
      break;
    }
  }
  peer->closed = Clock::now();
  peer->done = true;
}

/// Sends `bytes` one at a time, one every `every`, over and over, until the server closes.
asio::awaitable<void> Dribble(std::shared_ptr<RawPeer> peer,
                              std::string bytes,
                              milliseconds every) {
  asio::steady_timer timer(peer->socket.get_executor());
  for (std::size_t i = 0; !peer->done; i = (i + 1) % bytes.size()) {
    timer.expires_after(every);
    auto [wait_ec] = co_await timer.async_wait(kTuple);
    static_cast<void>(wait_ec);
    if (peer->done) {
      break;
    }
    auto one = asio::buffer(&bytes[i], 1);
    auto [ec, n] = co_await asio::async_write(peer->socket, one, kTuple);
    if (ec) {
      break;
    }
  }
}

void Rethrow(const std::exception_ptr& error) {
  if (error) {
    std::rethrow_exception(error);
  }
}

class HttpServerLimitsTest : public ::testing::Test {
 protected:
  HttpServerLimitsTest() {
    router_.Add("GET", "/hello/{name}", Hello);
    router_.Add("POST", "/echo", Echo);
  }
  ~HttpServerLimitsTest() override {
    if (server_) {
      server_->Stop();
    }
  }

  void StartServer(ServerOptions options) {
    server_ =
        std::make_unique<HttpServer>(ioc_.get_executor(), std::move(options), router_.AsHandler());
    auto port = server_->Listen("127.0.0.1", 0);
    if (!port) {
      throw std::runtime_error("Listen failed: " + port.error().message());
    }
    port_ = *port;
    server_->Start();
  }

  /// Connects from `from` (any 127.0.0.x works on Linux without setup), sends `first` and starts
  /// reading whatever comes back.
  std::shared_ptr<RawPeer> Open(std::string_view from, const std::string& first) {
    auto peer = std::make_shared<RawPeer>(ioc_);
    peer->socket.open(tcp::v4());
    peer->socket.bind(tcp::endpoint(asio::ip::make_address(from), 0));
    peer->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    peer->opened = Clock::now();
    if (!first.empty()) {
      asio::write(peer->socket, asio::buffer(first));
    }
    asio::co_spawn(ioc_, ReadUntilClosed(peer), Rethrow);
    return peer;
  }

  void StartDribbling(const std::shared_ptr<RawPeer>& peer, std::string bytes, milliseconds every) {
    asio::co_spawn(ioc_, Dribble(peer, std::move(bytes), every), Rethrow);
  }

  /// Runs the io_context until `done()` or `limit` passes; false on the limit.
  template <class Pred>
  bool RunUntil(Pred done, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) {
        return false;
      }
      ioc_.restart();
      ioc_.run_for(milliseconds(10));
    }
    return true;
  }

  std::unique_ptr<HttpClient> MakeClient() {
    auto client = HttpClient::Create(ioc_.get_executor(), {});
    if (!client) {
      throw std::runtime_error("HttpClient::Create failed");
    }
    return std::move(*client);
  }

  Result<HttpResponse> Get(HttpClient& client, std::string_view path) {
    ClientRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    return testing::RunCo(ioc_, client.Send(std::move(request)), std::chrono::seconds(20));
  }

  asio::io_context ioc_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

std::string ManyFields(int count) {
  std::string request = "GET /hello/many HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < count; ++i) {
    request += "X-Field-" + std::to_string(i) + ": v\r\n";
  }
  return request + "\r\n";
}

TEST_F(HttpServerLimitsTest, AWellBehavedClientIsAnsweredWhileOthersMisbehave) {
  ServerOptions options;
  options.header_timeout = milliseconds(3000);
  options.body_timeout = milliseconds(3000);
  options.idle_timeout = milliseconds(1000);
  options.header_limit = 2048;
  options.max_header_fields = 20;
  StartServer(options);

  // A slowloris: a request line, then one header byte every 50 ms, never the blank line.
  auto slow_headers = Open("127.0.0.1", "GET /hello/x HTTP/1.1\r\nHost: a\r\n");
  StartDribbling(slow_headers, "X-Slow: abc\r\n", milliseconds(50));
  // Headers promptly, then a body of 1000 bytes one byte every 50 ms.
  auto slow_body =
      Open("127.0.0.1", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nab");
  StartDribbling(slow_body, "x", milliseconds(50));
  // Connects and says nothing.
  auto silent = Open("127.0.0.1", "");
  // One request, answered, then an idle keep-alive connection.
  auto idle = Open("127.0.0.1", "GET /hello/idle HTTP/1.1\r\nHost: a\r\n\r\n");
  // Headers over the byte limit, and too many header fields.
  auto huge =
      Open("127.0.0.1",
           "GET /hello/x HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n");
  auto many = Open("127.0.0.1", ManyFields(30));

  // The well-behaved client is answered at once, every time, while they hang on.
  auto client = MakeClient();
  const auto started = Clock::now();
  for (int i = 0; i < 10; ++i) {
    auto response = Get(*client, "/hello/good" + std::to_string(i));
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "hello good" + std::to_string(i));
  }
  EXPECT_LT(Clock::now() - started, options.header_timeout);
  EXPECT_FALSE(slow_headers->done) << "the slowloris was cut before the good client finished";
  EXPECT_FALSE(slow_body->done);
  EXPECT_FALSE(silent->done);

  ASSERT_TRUE(RunUntil([&] {
    return slow_headers->done && slow_body->done && silent->done && idle->done && huge->done &&
           many->done;
  })) << "a misbehaving client was never cut off";

  EXPECT_EQ(slow_headers->received.rfind("HTTP/1.1 408 ", 0), 0U) << slow_headers->received;
  EXPECT_NE(slow_headers->received.find("\"request_timeout\""), std::string::npos);
  EXPECT_NE(slow_headers->received.find("headers did not arrive within 3000 ms"), std::string::npos)
      << slow_headers->received;
  EXPECT_GE(slow_headers->Lived(), options.header_timeout);

  EXPECT_EQ(slow_body->received.rfind("HTTP/1.1 408 ", 0), 0U) << slow_body->received;
  EXPECT_NE(slow_body->received.find("body did not arrive within 3000 ms"), std::string::npos)
      << slow_body->received;
  EXPECT_GE(slow_body->Lived(), options.body_timeout);

  // Nothing to answer: closed without a word once the headers' time is up.
  EXPECT_EQ(silent->received, "");
  EXPECT_GE(silent->Lived(), options.header_timeout);

  // Answered, then closed after idle_timeout — its own setting, shorter than the headers' here.
  EXPECT_EQ(idle->received.rfind("HTTP/1.1 200 ", 0), 0U) << idle->received;
  EXPECT_NE(idle->received.find("hello idle"), std::string::npos);
  EXPECT_GE(idle->Lived(), options.idle_timeout);
  EXPECT_LT(idle->Lived(), options.header_timeout);

  EXPECT_EQ(huge->received.rfind("HTTP/1.1 431 ", 0), 0U) << huge->received;
  EXPECT_NE(huge->received.find("request headers exceed 2048 bytes"), std::string::npos);
  EXPECT_EQ(many->received.rfind("HTTP/1.1 431 ", 0), 0U) << many->received;
  EXPECT_NE(many->received.find("request has 31 header fields; at most 20 are accepted"),
            std::string::npos)
      << many->received;

  // And the good client's connection is still fine.
  auto after = Get(*client, "/hello/after");
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after->status, 200);
}

TEST_F(HttpServerLimitsTest, HeaderFieldsUpToTheLimitAreServed) {
  ServerOptions options;
  options.max_header_fields = 20;
  StartServer(options);
  auto exact = Open("127.0.0.1", ManyFields(19));  // + Host = 20
  ASSERT_TRUE(RunUntil([&] { return exact->received.find("hello many") != std::string::npos; }));
  EXPECT_EQ(exact->received.rfind("HTTP/1.1 200 ", 0), 0U) << exact->received;
}

TEST_F(HttpServerLimitsTest, ConnectionsBeyondTheCapGet503AndOneGetsInWhenAnotherCloses) {
  ServerOptions options;
  options.max_connections = 3;
  StartServer(options);
  std::vector<std::shared_ptr<RawPeer>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Open("127.0.0.1", ""));
  }
  ASSERT_TRUE(RunUntil([&] { return server_->OpenConnections() == 3; }));

  auto refused = Open("127.0.0.1", "");
  ASSERT_TRUE(RunUntil([&] { return refused->done; }));
  EXPECT_EQ(refused->received.rfind("HTTP/1.1 503 ", 0), 0U) << refused->received;
  EXPECT_NE(refused->received.find("too many open connections"), std::string::npos);
  EXPECT_EQ(server_->RefusedConnections(), 1U);
  EXPECT_EQ(server_->OpenConnections(), 3U);

  held.front()->socket.close();
  ASSERT_TRUE(RunUntil([&] { return server_->OpenConnections() == 2; }));
  auto client = MakeClient();
  auto response = Get(*client, "/hello/in");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(server_->RefusedConnections(), 1U);
}

TEST_F(HttpServerLimitsTest, OneAddressCannotTakeEveryConnection) {
  ServerOptions options;
  options.max_connections_per_address = 2;
  StartServer(options);
  auto first = Open("127.0.0.2", "");
  auto second = Open("127.0.0.2", "");
  ASSERT_TRUE(RunUntil([&] { return server_->OpenConnections() == 2; }));
  auto third = Open("127.0.0.2", "GET /hello/third HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return third->done; }));
  EXPECT_EQ(third->received.rfind("HTTP/1.1 503 ", 0), 0U) << third->received;

  // Another address still gets in.
  auto client = MakeClient();
  auto response = Get(*client, "/hello/other");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(server_->RefusedConnections(), 1U);
}

TEST_F(HttpServerLimitsTest, EveryAnswerSaysNosniff) {
  StartServer({});
  auto client = MakeClient();
  auto ok = Get(*client, "/hello/x");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->headers.Get("X-Content-Type-Options"), "nosniff");
  auto missing = Get(*client, "/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->headers.Get("X-Content-Type-Options"), "nosniff");
}

}  // namespace
}  // namespace amoauth
