#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "amoauth/service/ports.hpp"

namespace amoauth::store_pg::detail {

/// The channel every amo_tokens write notifies, with the payload "<accountId>/<clientId>".
inline constexpr std::string_view kTokensChannel = "amoauth_tokens";

/// LISTEN amoauth_tokens on a connection and a thread of its own (never one of the pool's), and
/// report to a service::ConnectionChanges::Listener. The thread waits on the socket with poll()
/// and a short timeout, so destruction is prompt. A dropped connection is reported at once
/// (continuity(false)), then reconnected with a bounded backoff and LISTENed again
/// (continuity(true)). The listener is called from that thread, with no lock held.
class TokenListener final {
 public:
  TokenListener(std::string url,
                std::chrono::milliseconds connect_timeout,
                std::shared_ptr<spdlog::logger> log,
                service::ConnectionChanges::Listener listener);
  TokenListener(const TokenListener&) = delete;
  TokenListener& operator=(const TokenListener&) = delete;
  /// Stops the thread (within about one poll timeout, or one connect attempt).
  ~TokenListener();

 private:
  void Loop();
  /// Reports `listening` if it differs from what was last reported (or nothing was yet).
  void Report(bool listening);
  /// Waits `delay` unless stopping; false when stopping.
  bool Pause(std::chrono::milliseconds delay);

  std::string url_;
  std::chrono::milliseconds connect_timeout_;
  std::shared_ptr<spdlog::logger> log_;
  service::ConnectionChanges::Listener listener_;
  int reported_ = -1;  // -1 nothing yet, 0 not listening, 1 listening (listener thread only)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;               // guarded by mutex_
  std::atomic<bool> stop_flag_{false};  // read by the poll loop without the mutex
  std::thread thread_;                  // last: started after everything above exists
};

}  // namespace amoauth::store_pg::detail
