#include "amoauth/net/run_blocking.hpp"

#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

#include "run_co.hpp"

namespace amoauth::net {
namespace {

namespace asio = boost::asio;

struct Observed {
  std::thread::id before;
  std::thread::id inside;
  std::thread::id after;
  bool inside_pool = false;
  bool after_on_io = false;
  int value = 0;
};

asio::awaitable<Observed> Probe(asio::thread_pool& pool, asio::io_context& ioc) {
  Observed seen;
  seen.before = std::this_thread::get_id();
  auto work = [&seen, &pool] {
    seen.inside = std::this_thread::get_id();
    seen.inside_pool = pool.get_executor().running_in_this_thread();
    return 42;
  };
  seen.value = co_await RunBlocking(pool, work);
  seen.after = std::this_thread::get_id();
  seen.after_on_io = ioc.get_executor().running_in_this_thread();
  co_return seen;
}

asio::awaitable<int> Throwing(asio::thread_pool& pool) {
  auto work = []() -> int { throw std::runtime_error("disk on fire"); };
  co_return co_await RunBlocking(pool, work);
}

TEST(RunBlocking, RunsOnPoolAndResumesOnIoThread) {
  asio::io_context ioc;
  asio::thread_pool pool(1);
  const Observed seen = testing::RunCo(ioc, Probe(pool, ioc));
  EXPECT_EQ(seen.value, 42);
  EXPECT_EQ(seen.before, std::this_thread::get_id());  // RunCo drives ioc on this thread
  EXPECT_NE(seen.inside, seen.before);
  EXPECT_TRUE(seen.inside_pool);
  EXPECT_EQ(seen.after, seen.before);
  EXPECT_TRUE(seen.after_on_io);
  pool.join();
}

TEST(RunBlocking, PropagatesExceptions) {
  asio::io_context ioc;
  asio::thread_pool pool(1);
  try {
    static_cast<void>(testing::RunCo(ioc, Throwing(pool)));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
  }
  pool.join();
}

}  // namespace
}  // namespace amoauth::net
