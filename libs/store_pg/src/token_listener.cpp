#include "token_listener.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include "pg_connection.hpp"

namespace amoauth::store_pg::detail {

namespace {

/// How often the poll loop looks at the stop flag.
constexpr auto kPollTimeout = std::chrono::milliseconds(100);
/// Silence longer than this is checked with a query: a half-open TCP connection looks idle.
constexpr auto kPingAfter = std::chrono::seconds(30);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

/// "<accountId>/<clientId>" as written by PgStore's writes; nullopt if it is not that.
std::optional<core::AccountKey> ParsePayload(std::string_view payload) {
  const auto slash = payload.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return std::nullopt;
  }
  core::AccountKey key;
  const auto [end, ec] = std::from_chars(payload.data(), payload.data() + slash, key.account_id);
  if (ec != std::errc() || end != payload.data() + slash) {
    return std::nullopt;
  }
  key.client_id = std::string(payload.substr(slash + 1));
  return key;
}

}  // namespace

TokenListener::TokenListener(std::string url,
                             std::chrono::milliseconds connect_timeout,
                             std::shared_ptr<spdlog::logger> log,
                             service::ConnectionChanges::Listener listener)
    : url_(std::move(url)),
      connect_timeout_(connect_timeout),
      log_(std::move(log)),
      listener_(std::move(listener)),
      thread_([this] { Loop(); }) {}

TokenListener::~TokenListener() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_flag_.store(true);
  wake_.notify_all();
  thread_.join();
}

void TokenListener::Report(bool listening) {
  const int now = listening ? 1 : 0;
  if (reported_ == now) {
    return;
  }
  reported_ = now;
  if (listener_.continuity) {
    listener_.continuity(listening);
  }
}

bool TokenListener::Pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

void TokenListener::Loop() {
  auto backoff = std::chrono::milliseconds(kFirstBackoff);
  while (!stop_flag_.load()) {
    auto conn = Connection::Open(url_, connect_timeout_, log_);
    if (conn &&
        conn->Script("listen for token changes", fmt::format("LISTEN {}", kTokensChannel))) {
      log_->info("listening for token changes on PostgreSQL at {}", conn->Target());
      Report(true);
      backoff = kFirstBackoff;
      const int fd = PQsocket(conn->Get());
      auto last_heard = std::chrono::steady_clock::now();
      bool dropped = false;
      while (!dropped && !stop_flag_.load()) {
        pollfd watched{fd, POLLIN, 0};
        const int ready = ::poll(&watched, 1, static_cast<int>(kPollTimeout.count()));
        if (ready < 0 && errno != EINTR) {
          dropped = true;
          break;
        }
        if (ready <= 0) {
          if (std::chrono::steady_clock::now() - last_heard > kPingAfter) {
            dropped = !conn->Script("listener ping", "SELECT 1");
            last_heard = std::chrono::steady_clock::now();
          }
          continue;
        }
        last_heard = std::chrono::steady_clock::now();
        if (PQconsumeInput(conn->Get()) == 0) {
          dropped = true;
          break;
        }
        while (PGnotify* raw = PQnotifies(conn->Get())) {
          std::unique_ptr<PGnotify, void (*)(void*)> notify(raw, &PQfreemem);
          if (auto key = ParsePayload(notify->extra)) {
            if (listener_.changed) {
              listener_.changed(std::move(*key));
            }
          } else {
            log_->warn("ignoring a {} notification with a malformed payload", kTokensChannel);
          }
        }
      }
      if (stop_flag_.load()) {
        return;
      }
      // Commits from now until LISTEN runs again are not reported: say so at once.
      log_->warn("lost the token-change listener's connection to PostgreSQL at {}; reconnecting",
                 conn->Target());
      Report(false);
    } else {
      Report(false);  // the first report, when the first connection fails
    }
    if (!Pause(backoff)) {
      return;
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace amoauth::store_pg::detail
