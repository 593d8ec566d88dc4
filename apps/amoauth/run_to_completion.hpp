#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace amoauth::app {

/// Runs `work` on `ioc` until it and everything else queued there has finished, and returns its
/// result: the one-shot commands' way into the coroutine ports. May be called again on the same
/// io_context.
template <class T>
T RunToCompletion(boost::asio::io_context& ioc, boost::asio::awaitable<T> work) {
  auto future = boost::asio::co_spawn(ioc, std::move(work), boost::asio::use_future);
  ioc.restart();
  ioc.run();
  return future.get();
}

}  // namespace amoauth::app
