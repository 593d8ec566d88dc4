#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

/// The log context: which request (or background job) the code running on this thread works for,
/// so that every log line written for a request carries its id (docs/adr/0003-request-logging.md).
///
/// A coroutine hops threads at every co_await, so the id cannot be a thread_local set once. It
/// lives with the coroutine's *executor*: LogContextExecutor wraps an executor (a connection's
/// strand) and sets this thread's current id around every function the executor runs — every
/// resumption of a coroutine on it goes through its executor. RunBlocking carries the id to the
/// pool thread. The log formatter reads CurrentLogId().
namespace amoauth::net {

/// The id a LogContextExecutor installs: one per connection, changed (SetLogId) by the server
/// for each request it reads. Touched only by functions running on that connection's strand,
/// or immutable (background jobs), so it needs no lock.
struct LogSlot {
  std::shared_ptr<const std::string> id;
};

/// This thread's current id; nullptr outside any request or job. For the log formatter: valid
/// until the function running on this thread returns.
[[nodiscard]] const std::string* CurrentLogId() noexcept;
/// The same, shared (to carry it to another thread: RunBlocking).
[[nodiscard]] std::shared_ptr<const std::string> CurrentLogIdShared() noexcept;

/// Sets this thread's current id for its lifetime and restores the previous one at the end.
class LogScope final {
 public:
  explicit LogScope(std::shared_ptr<const std::string> id) noexcept;
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  std::shared_ptr<const std::string> previous_;
};

/// Sets `slot`'s id (the next resumptions of its executor's work log with it) and, when called
/// from a function run by that executor, this thread's current id at once. Empty `id`: none.
void SetLogId(LogSlot& slot, std::string id);

/// An incoming X-Request-Id we accept as ours: 1..64 characters, ASCII letters, digits and
/// `-._:~+/=@,;` (UUIDs, base64, trace ids); anything else is replaced by an id of ours.
[[nodiscard]] bool IsAcceptableRequestId(std::string_view id) noexcept;

/// An executor that runs everything on `Inner` with its slot's id as this thread's current id.
/// Satisfies the standard executor requirements by forwarding every property to `Inner`.
template <class Inner>
class LogContextExecutor {
 public:
  LogContextExecutor(Inner inner, std::shared_ptr<LogSlot> slot) noexcept
      : inner_(std::move(inner)), slot_(std::move(slot)) {}

  [[nodiscard]] const Inner& InnerExecutor() const noexcept { return inner_; }
  [[nodiscard]] const std::shared_ptr<LogSlot>& Slot() const noexcept { return slot_; }

  template <class Property,
            class = std::enable_if_t<boost::asio::can_query<const Inner&, Property>::value>>
  decltype(auto) query(const Property& p) const
      noexcept(boost::asio::is_nothrow_query<const Inner&, Property>::value) {
    return boost::asio::query(inner_, p);
  }

  template <class Property,
            class = std::enable_if_t<boost::asio::can_require<const Inner&, Property>::value>>
  auto require(const Property& p) const {
    using Next = std::decay_t<typename boost::asio::require_result<const Inner&, Property>::type>;
    return LogContextExecutor<Next>(boost::asio::require(inner_, p), slot_);
  }

  template <class Property,
            class = std::enable_if_t<boost::asio::can_prefer<const Inner&, Property>::value>>
  auto prefer(const Property& p) const {
    using Next = std::decay_t<typename boost::asio::prefer_result<const Inner&, Property>::type>;
    return LogContextExecutor<Next>(boost::asio::prefer(inner_, p), slot_);
  }

  template <class Function>
  void execute(Function&& f) const {
    inner_.execute(Bound<std::decay_t<Function>>{slot_, std::forward<Function>(f)});
  }

  friend bool operator==(const LogContextExecutor& a, const LogContextExecutor& b) noexcept {
    return a.inner_ == b.inner_ && a.slot_ == b.slot_;
  }
  friend bool operator!=(const LogContextExecutor& a, const LogContextExecutor& b) noexcept {
    return !(a == b);
  }

 private:
  template <class Function>
  struct Bound {
    std::shared_ptr<LogSlot> slot;
    Function function;
    void operator()() {
      const LogScope scope(slot->id);
      function();
    }
  };

  Inner inner_;
  std::shared_ptr<LogSlot> slot_;
};

/// `executor` with `slot`, as one type-erased executor (no second layer of type erasure when
/// `executor` is the io_context's own or a strand over it: those are wrapped directly).
template <class Executor>
[[nodiscard]] boost::asio::any_io_executor WithLogSlot(Executor executor,
                                                       std::shared_ptr<LogSlot> slot) {
  return LogContextExecutor<Executor>(std::move(executor), std::move(slot));
}

/// `executor` (any kind, already wrapped or not) logging with a fixed `id` instead of its own.
[[nodiscard]] boost::asio::any_io_executor WithLogId(const boost::asio::any_io_executor& executor,
                                                     std::shared_ptr<const std::string> id);

/// Runs `work` to completion on the caller's executor logging with `id` (a background job: the
/// scheduler's refresh of one account, one webhook delivery). Pass `work` as a named local.
template <class T>
boost::asio::awaitable<T> RunWithLogId(std::string id, boost::asio::awaitable<T> work) {
  auto shared = std::make_shared<const std::string>(std::move(id));
  const boost::asio::any_io_executor home = co_await boost::asio::this_coro::executor;
  const boost::asio::any_io_executor executor = WithLogId(home, std::move(shared));
  co_return co_await boost::asio::co_spawn(executor, std::move(work), boost::asio::use_awaitable);
}

}  // namespace amoauth::net
