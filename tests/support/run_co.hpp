#pragma once

#include <chrono>
#include <stdexcept>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace amoauth::testing {

/// Runs `make()`'s coroutine on `ioc` until it finishes and returns its value (rethrowing its
/// exception). `ioc` may already have other work (servers); it is run only until the coroutine
/// completes, bounded by `limit` so a hung test fails instead of hanging CI.
template <class T>
T RunCo(boost::asio::io_context& ioc,
        boost::asio::awaitable<T> aw,
        std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto fut = boost::asio::co_spawn(ioc, std::move(aw), boost::asio::use_future);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("RunCo: coroutine did not finish in time");
    }
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(20));
  }
  return fut.get();
}

}  // namespace amoauth::testing
