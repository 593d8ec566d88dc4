// HttpServer and HttpClient against each other over 127.0.0.1:0, plain and TLS.

#include "amoauth/http_server/http_server.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/net/certificate_authority.hpp"
#include "context_threads.hpp"
#include "run_co.hpp"

namespace amoauth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using http_client::ClientOptions;
using http_client::ClientRequest;
using http_client::HttpClient;
using http_server::HttpServer;
using http_server::Router;
using http_server::ServerOptions;
using net::HttpRequest;
using net::HttpResponse;

// ---- handlers (named functions: no capturing lambdas as coroutines) ----

asio::awaitable<HttpResponse> Hello(HttpRequest request) {
  HttpResponse response =
      HttpResponse::Text(200, "hello " + std::string(request.PathParam("name")));
  response.headers.Set("X-Seen-Request-Id", request.request_id);
  response.headers.Set("X-Remote", request.remote_address);
  response.headers.Set("X-Query", request.RawQuery());
  co_return response;
}

asio::awaitable<HttpResponse> Echo(HttpRequest request) {
  HttpResponse response = HttpResponse::Text(200, request.method + " " + request.body);
  if (auto custom = request.headers.Get("x-custom")) {
    response.headers.Set("X-Custom-Echo", *custom);
  }
  if (auto agent = request.headers.Get("user-agent")) {
    response.headers.Set("X-Agent", *agent);
  }
  if (auto host = request.headers.Get("host")) {
    response.headers.Set("X-Host", *host);
  }
  co_return response;
}

asio::awaitable<HttpResponse> Query(HttpRequest request) {
  auto params = net::ParseQuery(request.RawQuery());
  if (!params) {
    co_return HttpResponse::JsonError(400, "invalid_request", "bad query");
  }
  co_return HttpResponse::Text(200, std::string(net::Find(*params, "q").value_or("-")));
}

asio::awaitable<HttpResponse> Boom(HttpRequest request) {
  if (!request.method.empty()) {
    throw std::runtime_error("handler exploded");
  }
  co_return HttpResponse::Text(200, "unreachable");
}

// ---- helpers ----

std::string UniqueName() {
  std::random_device rd;
  return "amoauth-net-test-" + std::to_string(rd()) + "-" + std::to_string(rd());
}

/// A temporary directory removed with the object.
class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / UniqueName()) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string Write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream(file) << content;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    router_.Add("GET", "/hello/{name}", Hello);
    router_.Add("*", "/echo", Echo);
    router_.Add("GET", "/query", Query);
    router_.Add("GET", "/boom", Boom);
  }

  ~HttpServerTest() override {
    if (server_) {
      server_->Stop();
    }
  }

  std::uint16_t StartServer(ServerOptions options = {}) {
    server_ =
        std::make_unique<HttpServer>(ioc_.get_executor(), std::move(options), router_.AsHandler());
    auto port = server_->Listen("127.0.0.1", 0);
    if (!port) {
      throw std::runtime_error("Listen failed: " + port.error().message());
    }
    server_->Start();
    return *port;
  }

  std::unique_ptr<HttpClient> MakeClient(ClientOptions options = {}) {
    auto client = HttpClient::Create(ioc_.get_executor(), std::move(options));
    if (!client) {
      throw std::runtime_error("HttpClient::Create failed: " + client.error().message());
    }
    return std::move(*client);
  }

  Result<HttpResponse> Send(HttpClient& client, ClientRequest request) {
    return testing::RunCo(ioc_, client.Send(std::move(request)), std::chrono::seconds(20));
  }

  Result<HttpResponse> Get(HttpClient& client, std::string url) {
    ClientRequest request;
    request.url = std::move(url);
    return Send(client, std::move(request));
  }

  static std::string Url(std::uint16_t port, std::string_view path) {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
  }

  asio::io_context ioc_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

// ---- plain HTTP ----

TEST_F(HttpServerTest, ServesThroughRouter) {
  const auto port = StartServer();
  auto client = MakeClient();
  auto response = Get(*client, Url(port, "/hello/w%C3%B6rld?x=1&y=2"));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello w\xC3\xB6rld");
  EXPECT_EQ(response->headers.Get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(response->headers.Get("Server"), "amoauth");
  EXPECT_EQ(response->headers.Get("X-Remote"), "127.0.0.1");
  EXPECT_EQ(response->headers.Get("X-Query"), "x=1&y=2");
}

TEST_F(HttpServerTest, ResolvesHostNames) {
  const auto port = StartServer();
  auto client = MakeClient();
  // "localhost" may resolve to ::1 first; the client tries each address in turn.
  auto response = Get(*client, "http://localhost:" + std::to_string(port) + "/hello/dns");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "hello dns");
}

TEST_F(HttpServerTest, HeadGetsHeadersOnly) {
  const auto port = StartServer();
  auto client = MakeClient();
  ClientRequest head;
  head.method = "HEAD";
  head.url = Url(port, "/echo");
  auto response = Send(*client, std::move(head));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(response->body.empty());
  EXPECT_EQ(response->headers.Get("Content-Length"), "5");  // "HEAD "
}

/// Sends `request` on a raw socket and reads until the server closes the connection.
std::string RawExchange(std::uint16_t port, const std::string& request) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(socket, asio::buffer(request));
  std::string got;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(got), ec);  // until EOF
  return got;
}

/// The server writes each answer's head itself (not through Beast's serializer): the bytes must
/// be Beast's, for HTTP/1.0 and 1.1, keep-alive or not, HEAD and errors.
TEST_F(HttpServerTest, AnswersAreTheBytesBeastWouldWrite) {
  const auto port = StartServer();
  std::thread runner([this] { ioc_.run(); });
  const std::string requests[] = {
      "GET /hello/x HTTP/1.0\r\nX-Request-Id: fixed-1\r\n\r\n",
      "GET /hello/x HTTP/1.0\r\nX-Request-Id: fixed-2\r\nConnection: keep-alive\r\n\r\n"
      "GET /hello/y HTTP/1.0\r\nX-Request-Id: fixed-3\r\n\r\n",
      "GET /hello/x HTTP/1.1\r\nHost: a\r\nX-Request-Id: fixed-4\r\n\r\n"
      "GET /hello/z HTTP/1.1\r\nHost: a\r\nX-Request-Id: fixed-5\r\nConnection: close\r\n\r\n",
      "HEAD /echo HTTP/1.1\r\nHost: a\r\nX-Request-Id: fixed-6\r\nConnection: close\r\n\r\n",
      "GET /nothing HTTP/1.1\r\nHost: a\r\nX-Request-Id: fixed-7\r\nConnection: close\r\n\r\n",
  };
  for (const std::string& request : requests) {
    const std::string got = RawExchange(port, request);
    // Parse the answers back and have Beast serialise each again: the same bytes.
    std::string expected;
    std::string_view rest = got;
    int answers = 0;
    while (!rest.empty()) {
      boost::beast::http::response_parser<boost::beast::http::string_body> parser;
      parser.skip(request.starts_with("HEAD"));
      parser.eager(true);
      boost::system::error_code ec;
      const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
      ASSERT_FALSE(ec) << ec.message() << " in " << got;
      ASSERT_TRUE(parser.is_done()) << got;
      std::ostringstream again;
      again << parser.get();
      expected += again.str();
      rest.remove_prefix(used);
      ++answers;
    }
    EXPECT_EQ(
        answers,
        request.find("fixed-2") != std::string::npos || request.find("fixed-4") != std::string::npos
            ? 2
            : 1);
    EXPECT_EQ(got, expected);
    EXPECT_NE(got.find("X-Request-Id: fixed-"), std::string::npos) << got;
  }
  server_->Stop();
  ioc_.stop();
  runner.join();
}

/// Answers with every kind of field the server treats specially (its own ones, a CR/LF value,
/// repeated and lower-case names).
HttpResponse FieldsAnswer() {
  HttpResponse response = HttpResponse::Text(201, "created");
  response.headers.Add("x-custom", "a");
  response.headers.Add("X-Custom", "b");
  response.headers.Add("Server", "not ours");
  response.headers.Add("x-request-id", "spoofed");
  response.headers.Add("Connection", "upgrade");
  response.headers.Add("Content-Length", "999");
  response.headers.Add("X-Broken", "a\r\nInjected: yes");
  response.headers.Add("Cache-Control", "no-store");
  return response;
}

HttpResponse NosniffAnswer() {
  HttpResponse response = HttpResponse::Json(200, R"({"a":1})");
  response.headers.Set("x-content-type-options", "nosniff");
  return response;
}

HttpResponse NoContentAnswer() {
  HttpResponse response = HttpResponse::Text(204, "dropped: a 204 has no body");
  response.headers.Set("X-Kept", "yes");
  return response;
}

asio::awaitable<HttpResponse> Fields(HttpRequest /*request*/) {
  co_return FieldsAnswer();
}
asio::awaitable<HttpResponse> Nosniff(HttpRequest /*request*/) {
  co_return NosniffAnswer();
}
asio::awaitable<HttpResponse> NoContent(HttpRequest /*request*/) {
  co_return NoContentAnswer();
}

/// What the server sent before it wrote heads itself: Beast's message built from the handler's
/// answer, through Beast's serializer (but for a 204/304's Content-Length, below).
std::string BeastBytes(const HttpResponse& response,
                       unsigned version,
                       bool keep_alive,
                       bool head,
                       std::string_view request_id) {
  namespace http = boost::beast::http;
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(response.status));
  for (const auto& field : response.headers.All()) {
    const std::string_view name = field.name;
    const bool server_owned = boost::beast::iequals(name, "Content-Length") ||
                              boost::beast::iequals(name, "Connection") ||
                              boost::beast::iequals(name, "Server") ||
                              boost::beast::iequals(name, "X-Request-Id");
    if (server_owned || field.value.find_first_of("\r\n") != std::string::npos) {
      continue;
    }
    res.insert(name, field.value);
  }
  res.set(http::field::server, "amoauth");
  if (res.find("X-Content-Type-Options") == res.end()) {
    res.set("X-Content-Type-Options", "nosniff");
  }
  res.set("X-Request-Id", request_id);
  const bool bodiless = response.status == 204 || response.status == 304;
  res.body() = bodiless ? std::string() : response.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  if (bodiless) {
    // The one deliberate difference: Beast 1.81 writes "Content-Length: 0" on a 204, which RFC
    // 9110 §8.6 forbids (and on a 304 it would misstate the representation's length).
    res.erase(http::field::content_length);
  }
  if (head) {
    res.body().clear();
  }
  std::ostringstream out;
  out << res;
  return out.str();
}

// The server writes heads itself (ADR 0007): byte for byte what Beast's serializer wrote for the
// same answer, for each HTTP version and connection choice, HEAD, a 204, and the fields the
// server owns, drops or adds.
TEST_F(HttpServerTest, AnswerHeadsAreTheBytesOfBeastsMessage) {
  router_.Add("*", "/fields", Fields);
  router_.Add("GET", "/nosniff", Nosniff);
  router_.Add("GET", "/no-content", NoContent);
  const auto port = StartServer();
  std::thread runner([this] { ioc_.run(); });
  struct Case {
    std::string method;
    std::string path;
    unsigned version;
    std::string connection;  ///< the request's Connection field, if any
    bool keep_alive;         ///< what the answer should say
    HttpResponse (*answer)();
  };
  const Case cases[] = {
      {"GET", "/fields", 11, "close", false, FieldsAnswer},
      {"GET", "/fields", 10, "", false, FieldsAnswer},
      {"HEAD", "/fields", 11, "close", false, FieldsAnswer},
      {"GET", "/nosniff", 11, "close", false, NosniffAnswer},
      {"GET", "/no-content", 11, "close", false, NoContentAnswer},
      {"GET", "/no-content", 10, "", false, NoContentAnswer},
  };
  for (const Case& c : cases) {
    const std::string id = "case-" + c.method + c.path + std::to_string(c.version);
    std::string request = c.method + " " + c.path + " HTTP/" + std::to_string(c.version / 10) +
                          "." + std::to_string(c.version % 10) +
                          "\r\nHost: a\r\nX-Request-Id: " + id + "\r\n";
    if (!c.connection.empty()) {
      request += "Connection: " + c.connection + "\r\n";
    }
    request += "\r\n";
    EXPECT_EQ(RawExchange(port, request),
              BeastBytes(c.answer(), c.version, c.keep_alive, c.method == "HEAD", id))
        << request;
  }
  // Kept alive: HTTP/1.0 asks for it, HTTP/1.1 has it unasked; the second answer closes.
  const std::string kept_10 = RawExchange(port,
                                          "GET /nosniff HTTP/1.0\r\nX-Request-Id: k1\r\n"
                                          "Connection: keep-alive\r\n\r\n"
                                          "GET /nosniff HTTP/1.0\r\nX-Request-Id: k2\r\n\r\n");
  EXPECT_EQ(kept_10,
            BeastBytes(NosniffAnswer(), 10, true, false, "k1") +
                BeastBytes(NosniffAnswer(), 10, false, false, "k2"));
  const std::string kept_11 =
      RawExchange(port,
                  "GET /fields HTTP/1.1\r\nHost: a\r\nX-Request-Id: k3\r\n\r\n"
                  "GET /fields HTTP/1.1\r\nHost: a\r\nX-Request-Id: k4\r\n"
                  "Connection: close\r\n\r\n");
  EXPECT_EQ(kept_11,
            BeastBytes(FieldsAnswer(), 11, true, false, "k3") +
                BeastBytes(FieldsAnswer(), 11, false, false, "k4"));
  server_->Stop();
  ioc_.stop();
  runner.join();
}

TEST_F(HttpServerTest, AssignsUniqueRequestIds) {
  const auto port = StartServer();
  auto client = MakeClient();
  auto first = Get(*client, Url(port, "/hello/a"));
  auto second = Get(*client, Url(port, "/hello/b"));
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  const auto id1 = first->headers.Get("X-Request-Id");
  const auto id2 = second->headers.Get("X-Request-Id");
  ASSERT_TRUE(id1.has_value());
  ASSERT_TRUE(id2.has_value());
  // Six hex digits per server, then the count in at least six: "3fa9c0" "000001".
  ASSERT_EQ(id1->size(), 12U) << *id1;
  ASSERT_EQ(id2->size(), 12U) << *id2;
  EXPECT_EQ(id1->find_first_not_of("0123456789abcdef"), std::string_view::npos) << *id1;
  EXPECT_EQ(id1->substr(0, 6), id2->substr(0, 6));
  EXPECT_EQ(std::stoul(std::string(id2->substr(6)), nullptr, 16),
            std::stoul(std::string(id1->substr(6)), nullptr, 16) + 1);
  EXPECT_EQ(first->headers.Get("X-Seen-Request-Id"), *id1);  // the handler saw the same id
}

TEST_F(HttpServerTest, SendsMethodBodyAndHeaders) {
  const auto port = StartServer();
  auto client = MakeClient();
  ClientRequest request;
  request.method = "POST";
  request.url = Url(port, "/echo");
  request.body = "grant_type=refresh_token";
  request.headers.Set("X-Custom", "yes");
  request.headers.Set("Content-Type", "application/x-www-form-urlencoded");
  auto response = Send(*client, std::move(request));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "POST grant_type=refresh_token");
  EXPECT_EQ(response->headers.Get("X-Custom-Echo"), "yes");
  EXPECT_EQ(response->headers.Get("X-Agent"), "amoauth/0.1");
  EXPECT_EQ(response->headers.Get("X-Host"), "127.0.0.1:" + std::to_string(port));
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  const auto port = StartServer();
  auto client = MakeClient();
  auto missing = Get(*client, Url(port, "/nope"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(boost::json::parse(missing->body).at("error").as_string(), "not_found");

  ClientRequest post;
  post.method = "POST";
  post.url = Url(port, "/hello/x");
  auto wrong = Send(*client, std::move(post));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers.Get("Allow"), "GET");
  EXPECT_EQ(boost::json::parse(wrong->body).at("error").as_string(), "method_not_allowed");
}

TEST_F(HttpServerTest, HandlerParsesQuery) {
  const auto port = StartServer();
  auto client = MakeClient();
  auto response = Get(*client, Url(port, "/query?q=a+b%21"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "a b!");
}

TEST_F(HttpServerTest, BodyOverLimitIs413) {
  ServerOptions options;
  options.body_limit = 16;
  const auto port = StartServer(options);
  auto client = MakeClient();
  ClientRequest request;
  request.method = "POST";
  request.url = Url(port, "/echo");
  request.body = std::string(100000, 'x');
  auto response = Send(*client, std::move(request));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->headers.Get("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(boost::json::parse(response->body).at("error").as_string(), "payload_too_large");
  EXPECT_TRUE(response->headers.Get("X-Request-Id").has_value());

  // At the limit is fine.
  ClientRequest small;
  small.method = "POST";
  small.url = Url(port, "/echo");
  small.body = std::string(16, 'y');
  auto ok = Send(*client, std::move(small));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, HugeHeadersAre431) {
  const auto port = StartServer();
  auto client = MakeClient();
  ClientRequest request;
  request.url = Url(port, "/hello/x");
  request.headers.Set("X-Big", std::string(20000, 'h'));
  auto response = Send(*client, std::move(request));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 431);
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndServerKeepsServing) {
  const auto port = StartServer();
  auto client = MakeClient();
  auto response = Get(*client, Url(port, "/boom"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  const auto id = response->headers.Get("X-Request-Id");
  ASSERT_TRUE(id.has_value());
  const auto body = boost::json::parse(response->body).as_object();
  EXPECT_EQ(body.at("error").as_string(), "internal_error");
  EXPECT_EQ(body.at("message").as_string(), "internal error (request " + std::string(*id) + ")");

  auto after = Get(*client, Url(port, "/hello/again"));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

asio::awaitable<boost::system::error_code> ReadUntilClosed(tcp::socket& socket) {
  char byte = 0;
  auto [ec, n] =
      co_await socket.async_read_some(asio::buffer(&byte, 1), asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

asio::awaitable<HttpResponse> Hold(std::shared_ptr<tcp::socket> socket,
                                   std::string address,
                                   std::uint16_t port) {
  co_await socket->async_connect(tcp::endpoint(asio::ip::make_address(address), port),
                                 asio::use_awaitable);
  co_return HttpResponse{};
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndListener) {
  const auto port = StartServer();
  auto client = MakeClient();
  ASSERT_TRUE(Get(*client, Url(port, "/hello/warmup")));  // the accept loop is running

  auto idle = std::make_shared<tcp::socket>(ioc_);
  testing::RunCo(ioc_, Hold(idle, "127.0.0.1", port));
  std::thread stopper([this] { server_->Stop(); });  // from another thread
  stopper.join();
  const auto ec = testing::RunCo(ioc_, ReadUntilClosed(*idle), std::chrono::seconds(10));
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();

  auto refused = Get(*client, Url(port, "/hello/late"));
  EXPECT_FALSE(refused);
}

/// A handler that holds its request until the test opens the gate.
struct Gate {
  explicit Gate(asio::io_context& ioc) : timer(ioc, asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;  ///< cancelled to open
  std::atomic<bool> entered{false};
};

asio::awaitable<HttpResponse> WaitAtGate(std::shared_ptr<Gate> gate, HttpRequest /*request*/) {
  gate->entered = true;
  auto [ec] = co_await gate->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  static_cast<void>(ec);  // operation_aborted: the gate opened
  co_return HttpResponse::Text(200, "through");
}

template <class T>
T GetWithin(std::future<T>& future, std::chrono::seconds timeout) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    throw std::runtime_error("no result in time");
  }
  return future.get();
}

TEST_F(HttpServerTest, DrainAnswersTheRequestInFlightWithCloseAndShutsTheRest) {
  auto gate = std::make_shared<Gate>(ioc_);
  router_.Add(
      "GET", "/gate", [gate](HttpRequest request) { return WaitAtGate(gate, std::move(request)); });
  const auto port = StartServer();
  auto client = MakeClient();
  auto work = asio::make_work_guard(ioc_);
  std::thread runner([this] { ioc_.run(); });
  struct Join {
    std::thread& thread;
    asio::io_context& ioc;
    ~Join() {
      ioc.stop();
      thread.join();
    }
  } join{runner, ioc_};

  ClientRequest held;
  held.url = Url(port, "/gate");
  auto answer = asio::co_spawn(ioc_, client->Send(std::move(held)), asio::use_future);
  auto idle = std::make_shared<tcp::socket>(ioc_);
  auto connected = asio::co_spawn(ioc_, Hold(idle, "127.0.0.1", port), asio::use_future);
  GetWithin(connected, std::chrono::seconds(10));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!gate->entered && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(gate->entered);
  EXPECT_EQ(server_->InFlight(), 1U);

  server_->Drain();
  // The connection between requests closes; the listener is shut.
  auto closed = asio::co_spawn(ioc_, ReadUntilClosed(*idle), asio::use_future);
  const auto ec = GetWithin(closed, std::chrono::seconds(10));
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  ClientRequest late;
  late.url = Url(port, "/hello/late");
  auto refused = asio::co_spawn(ioc_, client->Send(std::move(late)), asio::use_future);
  EXPECT_FALSE(GetWithin(refused, std::chrono::seconds(10)));
  EXPECT_EQ(server_->InFlight(), 1U);

  // The request in flight is answered, and told that its connection ends.
  asio::post(ioc_, [gate] { gate->timer.cancel(); });
  const auto response = GetWithin(answer, std::chrono::seconds(10));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "through");
  EXPECT_EQ(response->headers.Get("Connection").value_or(""), "close");
  // The count drops once the server's side of the exchange has ended, just after the client's.
  const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->InFlight() != 0 && std::chrono::steady_clock::now() < settle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(server_->InFlight(), 0U);
}

TEST_F(HttpServerTest, ListenRejectsBadHostAndTlsMaterial) {
  HttpServer bad_host(ioc_.get_executor(), {}, router_.AsHandler());
  auto host = bad_host.Listen("not an address", 0);
  ASSERT_FALSE(host);
  EXPECT_TRUE(Is(host.error(), Errc::kConfigInvalid));

  auto a = net::IssueCertificate({"localhost"}, {});
  auto b = net::IssueCertificate({"localhost"}, {});
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  ServerOptions mismatched;
  mismatched.tls_certificate_chain_pem = a->certificate_chain_pem;
  mismatched.tls_private_key_pem = b->private_key_pem;
  HttpServer bad_key(ioc_.get_executor(), mismatched, router_.AsHandler());
  auto key = bad_key.Listen("127.0.0.1", 0);
  ASSERT_FALSE(key);
  EXPECT_TRUE(Is(key.error(), Errc::kConfigInvalid));

  ServerOptions garbage;
  garbage.tls_certificate_chain_pem = "not a pem";
  garbage.tls_private_key_pem = "nor this";
  HttpServer bad_pem(ioc_.get_executor(), garbage, router_.AsHandler());
  auto pem = bad_pem.Listen("127.0.0.1", 0);
  ASSERT_FALSE(pem);
  EXPECT_TRUE(Is(pem.error(), Errc::kConfigInvalid));
}

// ---- TLS ----

class HttpsTest : public HttpServerTest {
 protected:
  std::uint16_t StartTls(const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
    auto issued = net::IssueCertificate(dns, ips);
    if (!issued) {
      throw std::runtime_error("IssueCertificate: " + issued.error().message());
    }
    ca_file_ = dir_.Write("ca-" + UniqueName() + ".pem", issued->ca_certificate_pem);
    ServerOptions options;
    options.tls_certificate_chain_pem = issued->certificate_chain_pem;
    options.tls_private_key_pem = issued->private_key_pem;
    return StartServer(std::move(options));
  }

  TempDir dir_;
  std::string ca_file_;
};

TEST_F(HttpsTest, VerifiesCaAndHostViaConnectTo) {
  const auto port = StartTls({"localhost", "*.amocrm.ru"}, {"127.0.0.1"});
  ClientOptions options;
  options.ca_file = ca_file_;
  options.connect_to = "127.0.0.1:" + std::to_string(port);
  auto client = MakeClient(options);
  auto response = Get(*client, "https://example.amocrm.ru/hello/tls?x=1");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello tls");
  EXPECT_TRUE(response->headers.Get("X-Request-Id").has_value());

  // The URL's port is not used with connect_to; Host keeps what the URL says.
  ClientRequest echo;
  echo.url = "https://example.amocrm.ru/echo";
  auto echoed = Send(*client, std::move(echo));
  ASSERT_TRUE(echoed) << echoed.error().message();
  EXPECT_EQ(echoed->headers.Get("X-Host"), "example.amocrm.ru");
}

TEST_F(HttpsTest, VerifiesIpAddressUrls) {
  const auto port = StartTls({"localhost"}, {"127.0.0.1"});
  ClientOptions options;
  options.ca_file = ca_file_;
  auto client = MakeClient(options);
  auto response = Get(*client, "https://127.0.0.1:" + std::to_string(port) + "/hello/ip");
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "hello ip");
}

TEST_F(HttpsTest, UnknownCaFailsVerification) {
  const auto port = StartTls({"*.amocrm.ru"}, {});
  ClientOptions options;  // no ca_file: system store only
  options.connect_to = "127.0.0.1:" + std::to_string(port);
  auto client = MakeClient(options);
  auto response = Get(*client, "https://example.amocrm.ru/hello/x");
  ASSERT_FALSE(response);
  EXPECT_EQ(&response.error().category(), &http_client::TlsVerifyCategory())
      << response.error().message();
  EXPECT_TRUE(response.error().value() == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
              response.error().value() == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
      << response.error().message();

  // The server survives a failed handshake.
  ClientOptions trusted;
  trusted.ca_file = ca_file_;
  trusted.connect_to = options.connect_to;
  auto good = Get(*MakeClient(trusted), "https://example.amocrm.ru/hello/x");
  ASSERT_TRUE(good) << good.error().message();
}

TEST_F(HttpsTest, OtherNamesFailHostCheck) {
  const auto port = StartTls({"other.example", "*.amocrm.ru"}, {"127.0.0.2"});
  ClientOptions options;
  options.ca_file = ca_file_;
  options.connect_to = "127.0.0.1:" + std::to_string(port);
  auto client = MakeClient(options);
  for (const char* url : {"https://example.kommo.com/hello/x",
                          "https://a.b.amocrm.ru/hello/x",  // wildcards cover one label
                          "https://amocrm.ru/hello/x"}) {
    auto response = Get(*client, url);
    ASSERT_FALSE(response) << url;
    EXPECT_EQ(&response.error().category(), &http_client::TlsVerifyCategory()) << url;
    EXPECT_EQ(response.error().value(), X509_V_ERR_HOSTNAME_MISMATCH) << response.error().message();
  }
  auto ip = Get(*client, "https://127.0.0.1:" + std::to_string(port) + "/hello/x");
  ASSERT_FALSE(ip);
  EXPECT_EQ(ip.error().value(), X509_V_ERR_IP_ADDRESS_MISMATCH) << ip.error().message();
}

// ---- client edge cases ----

TEST_F(HttpServerTest, ClientTimesOutAgainstSilentServer) {
  // Listens, never accepts, never answers: the kernel completes the TCP handshake anyway.
  tcp::acceptor silent(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = silent.local_endpoint().port();
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(300);
  auto client = MakeClient(options);
  for (const char* scheme : {"http", "https"}) {
    const auto started = std::chrono::steady_clock::now();
    auto response =
        Get(*client, std::string(scheme) + "://127.0.0.1:" + std::to_string(port) + "/");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(response) << scheme;
    EXPECT_EQ(response.error(), boost::beast::error::timeout) << response.error().message();
    EXPECT_GE(elapsed, std::chrono::milliseconds(250)) << scheme;
    EXPECT_LT(elapsed, std::chrono::seconds(5)) << scheme;
  }
}

TEST_F(HttpServerTest, ClientReportsConnectionRefused) {
  std::uint16_t port = 0;
  {
    tcp::acceptor closed(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto client = MakeClient();
  auto response = Get(*client, Url(port, "/"));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), asio::error::connection_refused) << response.error().message();
}

TEST_F(HttpServerTest, ClientRejectsBadUrls) {
  auto client = MakeClient();
  for (const char* url : {"ftp://example.com/",
                          "/relative",
                          "not a url",
                          "http:///nohost",
                          "https://example.com:99999/",
                          "http://example.com/%zz"}) {
    auto response = Get(*client, url);
    ASSERT_FALSE(response) << url;
    EXPECT_TRUE(Is(response.error(), Errc::kInvalidArgument))
        << url << ": " << response.error().message();
  }
  ClientRequest injected;
  injected.url = "http://127.0.0.1:1/";
  injected.headers.Set("X-Evil", "a\r\nInjected: yes");
  auto response = Send(*client, std::move(injected));
  ASSERT_FALSE(response);
  EXPECT_TRUE(Is(response.error(), Errc::kInvalidArgument));
}

asio::awaitable<Result<HttpResponse>> Fetch(HttpClient& client, std::string url) {
  ClientRequest request;
  request.url = std::move(url);
  co_return co_await client.Send(std::move(request));
}

// One io_context on several threads, as in production: strands keep each connection and each
// request's own objects single-threaded (run under TSan too).
TEST(HttpServerThreads, ServesConcurrentRequestsOnSeveralThreads) {
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  Router router;
  router.Add("GET", "/hello/{name}", Hello);
  HttpServer server(ioc.get_executor(), {}, router.AsHandler());
  auto port = server.Listen("127.0.0.1", 0);
  ASSERT_TRUE(port);
  server.Start();
  auto client = HttpClient::Create(ioc.get_executor(), {});
  ASSERT_TRUE(client);

  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&ioc] { ioc.run(); });
  }
  std::vector<std::future<Result<HttpResponse>>> responses;
  constexpr int kRequests = 24;
  for (int i = 0; i < kRequests; ++i) {
    const std::string url =
        "http://127.0.0.1:" + std::to_string(*port) + "/hello/n" + std::to_string(i);
    responses.push_back(asio::co_spawn(ioc, Fetch(**client, url), asio::use_future));
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(responses[static_cast<std::size_t>(i)].wait_for(std::chrono::seconds(30)),
              std::future_status::ready);
    auto response = responses[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->body, "hello n" + std::to_string(i));
  }
  server.Stop();
  work.reset();
  ioc.stop();
  for (auto& thread : threads) {
    thread.join();
  }
}

/// This thread, as text a handler can answer with.
std::string ThreadTag() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

asio::awaitable<HttpResponse> WhichThread(HttpRequest /*request*/) {
  co_return HttpResponse::Text(200, ThreadTag());
}

/// The tag of the one thread running `context`.
std::string TagOf(asio::io_context& context) {
  std::promise<std::string> tag;
  asio::post(context, [&tag] { tag.set_value(ThreadTag()); });
  return tag.get_future().get();
}

// As `serve` runs it: an io_context per thread, the connections spread over them in turn and
// served there without a strand; Stop() reaches connections on every context (run under TSan).
TEST(HttpServerThreads, SpreadsConnectionsOverItsContextsInTurnAndStopsThemAll) {
  asio::io_context main_context(1);
  asio::io_context first(1);
  asio::io_context second(1);
  Router router;
  router.Add("GET", "/thread", WhichThread);
  HttpServer server(main_context.get_executor(), {&first, &second}, {}, router.AsHandler());
  auto port = server.Listen("127.0.0.1", 0);
  ASSERT_TRUE(port);
  server.Start();
  const testing::ContextThreads running({&main_context, &first, &second});
  const std::string first_tag = TagOf(first);
  const std::string second_tag = TagOf(second);
  ASSERT_NE(first_tag, second_tag);

  std::vector<std::string> served_on;
  for (int i = 0; i < 4; ++i) {
    const std::string answer =
        RawExchange(*port, "GET /thread HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answer;
    served_on.push_back(answer.substr(answer.find("\r\n\r\n") + 4));
  }
  EXPECT_EQ(served_on, (std::vector<std::string>{first_tag, second_tag, first_tag, second_tag}));

  // Two idle keep-alive connections, one on each context: Stop() closes both.
  asio::io_context client_context;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 2; ++i) {
    tcp::socket& socket = idle.emplace_back(client_context);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), *port));
    asio::write(socket, asio::buffer(std::string_view("GET /thread HTTP/1.1\r\nHost: x\r\n\r\n")));
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> response;
    beast::http::read(socket, buffer, response);
    ASSERT_EQ(response.result_int(), 200U);
    ASSERT_TRUE(response.keep_alive());
    const timeval wait{.tv_sec = 20, .tv_usec = 0};  // a read that never ends fails the test
    ASSERT_EQ(::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait), 0);
  }
  server.Stop();
  for (tcp::socket& socket : idle) {
    std::array<char, 64> scratch{};
    boost::system::error_code ec;
    socket.read_some(asio::buffer(scratch), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  }
}

TEST(HttpClientCreate, RejectsBadOptions) {
  asio::io_context ioc;
  ClientOptions missing_ca;
  missing_ca.ca_file = "/nonexistent/" + UniqueName() + ".pem";
  auto a = HttpClient::Create(ioc.get_executor(), missing_ca);
  ASSERT_FALSE(a);
  EXPECT_TRUE(Is(a.error(), Errc::kConfigInvalid));

  for (const char* connect_to :
       {"127.0.0.1", "127.0.0.1:", ":443", "host:0", "host:70000", "host:x"}) {
    ClientOptions options;
    options.connect_to = connect_to;
    auto b = HttpClient::Create(ioc.get_executor(), options);
    ASSERT_FALSE(b) << connect_to;
    EXPECT_TRUE(Is(b.error(), Errc::kConfigInvalid)) << connect_to;
  }
  ClientOptions ipv6;
  ipv6.connect_to = "[::1]:8443";
  EXPECT_TRUE(HttpClient::Create(ioc.get_executor(), ipv6));
}

}  // namespace
}  // namespace amoauth
