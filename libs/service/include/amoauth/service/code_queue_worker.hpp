#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/service/connect_flow.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

struct CodeQueueSettings {
  /// Codes claimed per round.
  std::size_t batch = 8;
  /// A claimed code stays this process's this long; then another process (or this one after a
  /// restart) may take it. Longer than one exchange can take (the amoCRM timeout).
  std::chrono::seconds claim_ttl{30};
  /// How often Run() looks for codes another process (or a dead one) left due. A code enqueued
  /// in this process wakes it at once.
  std::chrono::milliseconds interval{1000};
  /// Transient failures are retried after base * 2^(attempts-1), at most cap, with jitter —
  /// while the code lives (20 minutes from its arrival).
  std::chrono::seconds backoff_base{5};
  std::chrono::seconds backoff_cap{120};
};

/// Codes that arrive without a person — amoCRM's widget-install hook (protocol §2.6: 3 seconds,
/// no retry) and the exchange_api_key hook (§6) — are stored by Accept and exchanged here in the
/// background, so the hook is answered as soon as the code is durable, whatever amoCRM's token
/// endpoint is doing. Transient failures are retried with backoff until the code expires;
/// permanent ones end at once; either end sends code.exchange_failed. The queue is in the store,
/// so a restart or a SIGKILL loses nothing; several processes may share it (claims).
/// Thread-safe. Run() must be co_spawned on Executor().
class CodeQueueWorker {
 public:
  CodeQueueWorker(ConnectFlow& flow,
                  CodeQueue& queue,
                  const EventFactory& events,
                  const core::Clock& clock,
                  core::Random& random,
                  const boost::asio::any_io_executor& executor,
                  CodeQueueSettings settings);

  /// A hook with from_widget or from_exchange: checks the code is there and the referer is an
  /// allowed account host (before anything is stored), queues the code and wakes the worker.
  /// Never calls amoCRM. Errors: Errc::kInvalidArgument (no code), kRefererNotAllowed, the
  /// store's.
  Task<Result<void>> Accept(CallbackParams params);

  /// Claims the codes due now and tries each once; returns how many it tried.
  Task<Result<std::size_t>> RunOnce();
  /// RunOnce whenever woken, and every interval, until Stop().
  Task<void> Run();
  /// No new exchange starts after it (codes claimed and not yet tried come back when their
  /// claims end); an exchange already running finishes, its outcome stored. Thread-safe.
  void Stop();
  /// Run() is in a round, not waiting for the next one.
  [[nodiscard]] bool Busy() const { return busy_; }

  [[nodiscard]] boost::asio::any_io_executor Executor() const { return strand_; }

 private:
  Task<void> Attempt(QueuedCode entry);
  Task<void> Abandon(QueuedCode entry, boost::system::error_code why);
  void Wake();

  ConnectFlow& flow_;
  CodeQueue& queue_;
  const EventFactory& events_;
  const core::Clock& clock_;
  core::Random& random_;
  CodeQueueSettings settings_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer timer_;  ///< Run's wait; touched only on strand_
  std::atomic<bool> wake_requested_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> busy_{false};
};

}  // namespace amoauth::service
