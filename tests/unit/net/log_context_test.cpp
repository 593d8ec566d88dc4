// The log context (net::LogContextExecutor): a coroutine's log id survives every hop between
// threads, reaches RunBlocking's pool, and never leaks to other work on the same threads.

#include "amoauth/net/log_context.hpp"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/net/run_blocking.hpp"

namespace amoauth {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string CurrentOrDash() {
  const std::string* id = net::CurrentLogId();
  return id != nullptr ? *id : std::string("-");
}

/// An io_context run by two threads, so that a coroutine resumes on either.
class TwoThreads {
 public:
  TwoThreads() {
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }
  ~TwoThreads() {
    work_.reset();
    ioc_.stop();
    for (auto& thread : threads_) {
      thread.join();
    }
  }
  TwoThreads(const TwoThreads&) = delete;
  TwoThreads& operator=(const TwoThreads&) = delete;

  asio::io_context& Context() { return ioc_; }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::vector<std::thread> threads_;
};

std::shared_ptr<net::LogSlot> SlotWith(const std::string& id) {
  auto slot = std::make_shared<net::LogSlot>();
  slot->id = std::make_shared<const std::string>(id);
  return slot;
}

/// What the log id is at each step: start, after a timer, inside RunBlocking, after it, after a
/// completion posted from the pool.
asio::awaitable<std::vector<std::string>> Hops(asio::thread_pool& pool) {
  std::vector<std::string> seen;
  seen.push_back(CurrentOrDash());
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(0ms);
  co_await timer.async_wait(asio::use_awaitable);
  seen.push_back(CurrentOrDash());
  auto blocking = [] { return CurrentOrDash(); };
  seen.push_back(co_await net::RunBlocking(pool, blocking));
  seen.push_back(CurrentOrDash());
  co_await asio::post(pool, asio::use_awaitable);  // completes through our executor
  seen.push_back(CurrentOrDash());
  co_return seen;
}

TEST(LogContext, FollowsTheCoroutineAcrossThreadsAndIntoRunBlocking) {
  TwoThreads io;
  asio::thread_pool pool(1);
  const auto executor = net::WithLogSlot(asio::make_strand(io.Context()), SlotWith("req-1"));
  auto seen = asio::co_spawn(executor, Hops(pool), asio::use_future).get();
  EXPECT_EQ(seen, std::vector<std::string>(5, "req-1"));

  // Without a log context nothing carries an id, and none leaked to the threads.
  auto bare = asio::co_spawn(asio::make_strand(io.Context()), Hops(pool), asio::use_future).get();
  EXPECT_EQ(bare, std::vector<std::string>(5, "-"));
  auto pool_id = asio::post(pool, std::packaged_task<std::string()>(CurrentOrDash)).get();
  EXPECT_EQ(pool_id, "-");
}

asio::awaitable<int> Interleave(std::string expected) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  int wrong = 0;
  for (int i = 0; i < 200; ++i) {
    timer.expires_after(0ms);
    co_await timer.async_wait(asio::use_awaitable);
    if (CurrentOrDash() != expected) {
      ++wrong;
    }
  }
  co_return wrong;
}

TEST(LogContext, ConcurrentCoroutinesKeepTheirOwnIds) {
  TwoThreads io;
  std::vector<std::future<int>> runs;
  for (int i = 0; i < 8; ++i) {
    const std::string id = "req-" + std::to_string(i);
    const auto executor = net::WithLogSlot(asio::make_strand(io.Context()), SlotWith(id));
    runs.push_back(asio::co_spawn(executor, Interleave(id), asio::use_future));
  }
  for (auto& run : runs) {
    EXPECT_EQ(run.get(), 0);
  }
}

asio::awaitable<std::vector<std::string>> ChangeId(std::shared_ptr<net::LogSlot> slot) {
  std::vector<std::string> seen;
  seen.push_back(CurrentOrDash());
  net::SetLogId(*slot, "second");
  seen.push_back(CurrentOrDash());  // at once, not only from the next resumption
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(0ms);
  co_await timer.async_wait(asio::use_awaitable);
  seen.push_back(CurrentOrDash());
  net::SetLogId(*slot, "");
  seen.push_back(CurrentOrDash());
  co_return seen;
}

TEST(LogContext, SetLogIdTakesEffectAtOnce) {
  TwoThreads io;
  auto slot = SlotWith("first");
  const auto executor = net::WithLogSlot(asio::make_strand(io.Context()), slot);
  auto seen = asio::co_spawn(executor, ChangeId(slot), asio::use_future).get();
  EXPECT_EQ(seen, (std::vector<std::string>{"first", "second", "second", "-"}));
}

asio::awaitable<std::string> ReadId() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(0ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return CurrentOrDash();
}

asio::awaitable<std::vector<std::string>> Job() {
  std::vector<std::string> seen;
  auto inner = ReadId();
  seen.push_back(co_await net::RunWithLogId("refresh-42", std::move(inner)));
  seen.push_back(CurrentOrDash());
  co_return seen;
}

TEST(LogContext, RunWithLogIdGivesAJobItsOwnId) {
  TwoThreads io;
  const auto executor = net::WithLogSlot(asio::make_strand(io.Context()), SlotWith("scheduler"));
  auto seen = asio::co_spawn(executor, Job(), asio::use_future).get();
  EXPECT_EQ(seen, (std::vector<std::string>{"refresh-42", "scheduler"}));
}

TEST(LogContext, AcceptsOnlyShortPlainRequestIds) {
  EXPECT_TRUE(net::IsAcceptableRequestId("0f8a3c"));
  EXPECT_TRUE(net::IsAcceptableRequestId("123e4567-e89b-12d3-a456-426614174000"));
  EXPECT_TRUE(net::IsAcceptableRequestId("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c"));
  EXPECT_TRUE(net::IsAcceptableRequestId(std::string(64, 'a')));
  EXPECT_FALSE(net::IsAcceptableRequestId(""));
  EXPECT_FALSE(net::IsAcceptableRequestId(std::string(65, 'a')));
  EXPECT_FALSE(net::IsAcceptableRequestId("a b"));
  EXPECT_FALSE(net::IsAcceptableRequestId("a\"b"));
  EXPECT_FALSE(net::IsAcceptableRequestId("<script>"));
  EXPECT_FALSE(net::IsAcceptableRequestId("a\x01"));
  EXPECT_FALSE(net::IsAcceptableRequestId("caf\xc3\xa9"));
}

// ---- through the HTTP server: every line of a request carries its id ----

asio::awaitable<net::HttpResponse> LogIdBody(asio::thread_pool& pool, net::HttpRequest request) {
  const std::string before = CurrentOrDash();
  auto blocking = [] { return CurrentOrDash(); };
  const std::string in_pool = co_await net::RunBlocking(pool, blocking);
  co_return net::HttpResponse::Text(200, before + " " + in_pool + " " + request.request_id);
}

class LogContextServerTest : public ::testing::Test {
 protected:
  LogContextServerTest() {
    router_.Add("GET", "/id", [this](net::HttpRequest request) {
      return LogIdBody(pool_, std::move(request));
    });
    server_ = std::make_unique<http_server::HttpServer>(
        io_.Context().get_executor(), http_server::ServerOptions{}, router_.AsHandler());
    auto port = server_->Listen("127.0.0.1", 0);
    EXPECT_TRUE(port);
    port_ = port ? *port : 0;
    server_->Start();
    auto client = http_client::HttpClient::Create(io_.Context().get_executor(), {});
    EXPECT_TRUE(client);
    client_ = std::move(*client);
  }
  ~LogContextServerTest() override { server_->Stop(); }

  Result<net::HttpResponse> Get(const std::string& request_id) {
    http_client::ClientRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(port_) + "/id";
    if (!request_id.empty()) {
      request.headers.Set("X-Request-Id", request_id);
    }
    return asio::co_spawn(io_.Context(), client_->Send(std::move(request)), asio::use_future).get();
  }

  asio::thread_pool pool_{1};
  TwoThreads io_;
  http_server::Router router_;
  std::unique_ptr<http_server::HttpServer> server_;
  std::unique_ptr<http_client::HttpClient> client_;
  std::uint16_t port_ = 0;
};

TEST_F(LogContextServerTest, HandlerLogsWithTheRequestIdItEchoes) {
  auto ours = Get("");
  ASSERT_TRUE(ours);
  const auto id = ours->headers.Get("X-Request-Id");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(ours->body, fmt::format("{0} {0} {0}", *id));

  auto theirs = Get("client-trace-7");
  ASSERT_TRUE(theirs);
  EXPECT_EQ(theirs->headers.Get("X-Request-Id"), "client-trace-7");
  EXPECT_EQ(theirs->body, "client-trace-7 client-trace-7 client-trace-7");

  auto refused = Get("has space");
  ASSERT_TRUE(refused);
  const auto replaced = refused->headers.Get("X-Request-Id");
  ASSERT_TRUE(replaced.has_value());
  EXPECT_NE(*replaced, "has space");
  EXPECT_EQ(refused->body, fmt::format("{0} {0} {0}", *replaced));
}

}  // namespace
}  // namespace amoauth
