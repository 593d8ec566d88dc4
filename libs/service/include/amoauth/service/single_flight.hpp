#pragma once

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace amoauth::service {

/// At most one `work` per key at a time within this process: a caller that arrives while the
/// key's work is running waits for it and receives the same result instead of starting its own.
/// This is what turns fifty concurrent "my token expired" calls into one refresh.
/// Thread-safe; callers may be on any executor and resume on their own. The mutex is never held
/// across a suspension point.
template <class Key, class T>
class SingleFlight {
 public:
  using Work = std::function<boost::asio::awaitable<T>()>;

  boost::asio::awaitable<T> Run(Key key, Work work) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      auto [it, inserted] = flights_.try_emplace(key);
      if (inserted) {
        it->second = std::make_shared<Flight>();
        leader = true;
      }
      flight = it->second;
    }
    if (!leader) {
      co_return co_await Wait(std::move(flight));
    }

    T result{};
    std::exception_ptr error;
    try {
      result = co_await work();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      flights_.erase(key);
    }
    Finish(*flight, result, error);
    if (error) {
      std::rethrow_exception(error);
    }
    co_return result;
  }

  /// Keys with work running now (for tests and metrics).
  [[nodiscard]] std::size_t InFlight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  struct Outcome {
    T value{};
    std::exception_ptr error;
  };
  struct Flight {
    std::mutex mutex;
    bool done = false;
    Outcome outcome;
    std::vector<std::function<void(const Outcome&)>> waiters;
  };

  static void Finish(Flight& flight, const T& result, std::exception_ptr error) {
    std::vector<std::function<void(const Outcome&)>> waiters;
    {
      std::lock_guard lock(flight.mutex);
      flight.done = true;
      flight.outcome = Outcome{result, error};
      waiters.swap(flight.waiters);
    }
    for (auto& waiter : waiters) {
      waiter(flight.outcome);
    }
  }

  static boost::asio::awaitable<T> Wait(std::shared_ptr<Flight> flight) {
    auto initiate = [flight](auto handler) {
      using Handler = decltype(handler);
      auto home = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                      boost::asio::execution::outstanding_work.tracked);
      // std::function needs a copyable callable; the handler is move-only.
      auto shared = std::make_shared<Handler>(std::move(handler));
      auto resume = [shared, home](const Outcome& outcome) {
        boost::asio::post(home, [shared, outcome]() mutable { std::move (*shared)(outcome); });
      };
      std::unique_lock lock(flight->mutex);
      if (flight->done) {
        Outcome outcome = flight->outcome;
        lock.unlock();
        resume(outcome);
        return;
      }
      flight->waiters.emplace_back(std::move(resume));
    };
    Outcome outcome =
        co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Outcome)>(
            initiate, boost::asio::use_awaitable);
    if (outcome.error) {
      std::rethrow_exception(outcome.error);
    }
    co_return std::move(outcome.value);
  }

  mutable std::mutex mutex_;
  std::map<Key, std::shared_ptr<Flight>> flights_;
};

}  // namespace amoauth::service
