// The client's kept-alive connections: reused for idempotent requests, never for others, and a
// connection the server has closed meanwhile costs a retry, not a failure.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/net/one_thread_context.hpp"
#include "context_threads.hpp"
#include "run_co.hpp"

namespace amoauth::http_client {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

/// A keep-alive server that numbers its connections and answers "connection N". With
/// `close_after_answer` it promises keep-alive and then closes anyway, as a server closing an idle
/// connection does.
class CountingServer {
 public:
  CountingServer(asio::io_context& ioc, bool close_after_answer)
      : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        close_after_answer_(close_after_answer) {
    asio::co_spawn(ioc, Accept(), asio::detached);
  }
  [[nodiscard]] std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
           std::string(path);
  }
  std::atomic<int> connections{0};
  std::atomic<int> requests{0};

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) {
        co_return;
      }
      const int number = ++connections;
      asio::co_spawn(acceptor_.get_executor(), Serve(std::move(socket), number), asio::detached);
    }
  }
  asio::awaitable<void> Serve(tcp::socket socket, int number) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [read_ec, n] = co_await http::async_read(socket, buffer, req, kUseTuple);
      if (read_ec) {
        co_return;
      }
      ++requests;
      http::response<http::string_body> res(http::status::ok, 11);
      res.body() = "connection " + std::to_string(number);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [write_ec, m] = co_await http::async_write(socket, res, kUseTuple);
      if (write_ec || !req.keep_alive() || close_after_answer_) {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        co_return;
      }
    }
  }
  tcp::acceptor acceptor_;
  bool close_after_answer_;
};

Result<net::HttpResponse> Send(asio::io_context& ioc,
                               HttpClient& client,
                               std::string method,
                               std::string url) {
  ClientRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  return testing::RunCo(ioc, client.Send(std::move(request)), std::chrono::seconds(20));
}

TEST(HttpClientPool, IdempotentRequestsShareOneKeptAliveConnection) {
  asio::io_context ioc;
  CountingServer server(ioc, /*close_after_answer=*/false);
  auto client = HttpClient::Create(ioc.get_executor(), {}).value();
  for (int i = 0; i < 5; ++i) {
    auto r = Send(ioc, *client, "GET", server.Url("/x"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "connection 1");
  }
  EXPECT_EQ(server.connections.load(), 1);
}

TEST(HttpClientPool, OtherRequestsNeverTravelOnAReusedConnection) {
  asio::io_context ioc;
  CountingServer server(ioc, /*close_after_answer=*/false);
  auto client = HttpClient::Create(ioc.get_executor(), {}).value();
  ASSERT_TRUE(Send(ioc, *client, "GET", server.Url("/x")));
  // A token request may have been acted on even if its connection breaks: it always goes on a
  // fresh connection, and asks to close it.
  auto post = Send(ioc, *client, "POST", server.Url("/oauth2/access_token"));
  ASSERT_TRUE(post) << post.error().message();
  EXPECT_EQ(post->body, "connection 2");
  auto again = Send(ioc, *client, "POST", server.Url("/oauth2/access_token"));
  EXPECT_EQ(again->body, "connection 3");
  EXPECT_EQ(Send(ioc, *client, "GET", server.Url("/x"))->body, "connection 1");
}

TEST(HttpClientPool, AConnectionClosedByTheServerIsReplacedTransparently) {
  asio::io_context ioc;
  CountingServer server(ioc, /*close_after_answer=*/true);
  auto client = HttpClient::Create(ioc.get_executor(), {}).value();
  ASSERT_TRUE(Send(ioc, *client, "GET", server.Url("/x")));
  auto r = Send(ioc, *client, "GET", server.Url("/x"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "connection 2");
  EXPECT_EQ(server.requests.load(), 2) << "the dead connection carried nothing";
}

// serve runs an io_context per thread (ADR 0007): a call runs on its caller's context and reuses
// only connections opened there, so a caller never continues on another thread's connection.
TEST(HttpClientPool, CallersOnDifferentContextsKeepConnectionsOfTheirOwn) {
  asio::io_context server_context;
  asio::io_context first(1);
  asio::io_context second(1);
  CountingServer server(server_context, /*close_after_answer=*/false);
  auto client = HttpClient::Create(server_context.get_executor(), {}).value();
  const testing::ContextThreads running({&server_context, &first, &second});
  const auto get_from = [&](asio::io_context& caller) {
    ClientRequest request;
    request.url = server.Url("/x");
    auto answer = asio::co_spawn(caller, client->Send(std::move(request)), asio::use_future);
    if (answer.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      return std::string("no answer in 20 s");
    }
    auto response = answer.get();
    return response ? response->body : response.error().message();
  };
  EXPECT_EQ(get_from(first), "connection 1");
  EXPECT_EQ(get_from(first), "connection 1");
  EXPECT_EQ(get_from(second), "connection 2");
  EXPECT_EQ(get_from(second), "connection 2");
  EXPECT_EQ(get_from(first), "connection 1");
  EXPECT_EQ(server.connections.load(), 2);
}

// On a context marked as run by one thread (serve's), a call runs in its caller's coroutine with
// no strand: many callers at once on that context must each get their own answer, share the
// kept-alive connections of that context only, and resume on the context's thread every time.
TEST(HttpClientPool, CallsOnAContextRunByOneThreadShareItsConnectionsAndStayOnItsThread) {
  asio::io_context server_context;
  asio::io_context callers(1);
  net::MarkRunByOneThread(callers);
  ASSERT_TRUE(net::IsRunByOneThread(callers));
  EXPECT_FALSE(net::IsRunByOneThread(server_context));
  CountingServer server(server_context, /*close_after_answer=*/false);
  auto client = HttpClient::Create(server_context.get_executor(), {}).value();
  const testing::ContextThreads running({&server_context, &callers});

  constexpr int kCallers = 8;
  constexpr int kCallsEach = 5;
  std::atomic<int> answered{0};
  std::atomic<int> off_thread{0};
  std::promise<std::thread::id> callers_thread;
  asio::post(callers, [&] { callers_thread.set_value(std::this_thread::get_id()); });
  const std::thread::id thread = callers_thread.get_future().get();
  std::vector<std::future<void>> done;
  for (int i = 0; i < kCallers; ++i) {
    done.push_back(asio::co_spawn(
        callers,
        [&]() -> asio::awaitable<void> {
          for (int j = 0; j < kCallsEach; ++j) {
            ClientRequest request;
            request.url = server.Url("/x");
            auto response = co_await client->Send(std::move(request));
            if (std::this_thread::get_id() != thread) {
              ++off_thread;
            }
            if (response && response->body.starts_with("connection ")) {
              ++answered;
            }
          }
        },
        asio::use_future));
  }
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  }
  EXPECT_EQ(answered.load(), kCallers * kCallsEach);
  EXPECT_EQ(off_thread.load(), 0);
  EXPECT_EQ(server.requests.load(), kCallers * kCallsEach);
  EXPECT_LE(server.connections.load(), kCallers) << "kept-alive connections are reused";
}

}  // namespace
}  // namespace amoauth::http_client
