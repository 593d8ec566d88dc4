#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "amoauth/net/log_context.hpp"

namespace amoauth::net {

/// The one audited way to run blocking work (SQLite, file I/O) from a coroutine: `fn` runs on
/// `pool`, and the coroutine resumes on its own executor with fn's result. The I/O threads never
/// block. `fn` must return a default-constructible value (our Result<T> types are) and must not
/// throw; an exception escaping it is rethrown in the coroutine. `fn` logs with the caller's
/// log id (CurrentLogId).
///
/// Pass `fn` as a named local, not as a lambda written inside the co_await expression: GCC 12
/// miscompiles temporaries with captures there (asio#858, asio#1027).
template <class Fn>
boost::asio::awaitable<std::invoke_result_t<Fn&>> RunBlocking(boost::asio::thread_pool& pool,
                                                              Fn fn) {
  using R = std::invoke_result_t<Fn&>;
  struct Outcome {
    R value{};
    std::exception_ptr error;
  };
  auto initiate = [&pool](auto handler, Fn work) {
    // Keep the caller's executor alive while the pool works, then complete on it.
    auto home = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                    boost::asio::execution::outstanding_work.tracked);
    // Initiation runs in the coroutine, on its thread: the log id is the caller's.
    std::shared_ptr<const std::string> log_id = CurrentLogIdShared();
    boost::asio::post(pool,
                      [handler = std::move(handler),
                       work = std::move(work),
                       home,
                       log_id = std::move(log_id)]() mutable {
                        Outcome out;
                        const LogScope scope(std::move(log_id));
                        try {
                          out.value = work();
                        } catch (...) {
                          out.error = std::current_exception();
                        }
                        boost::asio::dispatch(
                            home, [handler = std::move(handler), out = std::move(out)]() mutable {
                              std::move(handler)(std::move(out));
                            });
                      });
  };
  Outcome out =
      co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Outcome)>(
          initiate, boost::asio::use_awaitable, std::move(fn));
  if (out.error) {
    std::rethrow_exception(out.error);
  }
  co_return std::move(out.value);
}

}  // namespace amoauth::net
