#pragma once

#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace amoauth::testing {

/// Runs each io_context on a thread of its own, as `serve` does (ADR 0007), until destroyed: then
/// stops them and joins, also when an assertion ends the test early.
class ContextThreads final {
 public:
  explicit ContextThreads(std::vector<boost::asio::io_context*> contexts)
      : contexts_(std::move(contexts)) {
    for (boost::asio::io_context* context : contexts_) {
      threads_.emplace_back([context] {
        auto work = boost::asio::make_work_guard(*context);
        context->run();
      });
    }
  }
  ContextThreads(const ContextThreads&) = delete;
  ContextThreads& operator=(const ContextThreads&) = delete;
  ~ContextThreads() {
    for (boost::asio::io_context* context : contexts_) {
      context->stop();
    }
    for (std::thread& thread : threads_) {
      thread.join();
    }
  }

 private:
  std::vector<boost::asio::io_context*> contexts_;
  std::vector<std::thread> threads_;
};

}  // namespace amoauth::testing
