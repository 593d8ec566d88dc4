#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/clock.hpp"

/// The admin UI's login state: sessions and the limit on failed logins (docs/admin-ui.md).
namespace amoauth::web::admin {

/// Server-side sessions of the admin UI, in this process's memory. The cookie holds a random
/// 256-bit id; only its SHA-256 is kept, with the session's CSRF token and its end. A session
/// ends `ttl` after the login (no sliding), at logout, or when the process restarts; with several
/// instances a session is known only to the one that made it. Thread-safe.
class Sessions final {
 public:
  struct Created {
    std::string id;    ///< the cookie's value: never logged
    std::string csrf;  ///< the token every state-changing form carries
  };
  struct Session {
    std::string csrf;
    core::TimePoint expires_at{};
  };

  Sessions(const core::Clock& clock, std::chrono::seconds ttl, std::size_t max_sessions);

  /// A new session. At `max_sessions` the one ending first makes room.
  [[nodiscard]] Created Create();
  /// The live session with cookie value `id`; nullopt if unknown or ended (an ended one is
  /// forgotten).
  [[nodiscard]] std::optional<Session> Find(std::string_view id);
  /// Ends the session (logout). Unknown ids are ignored.
  void Remove(std::string_view id);
  [[nodiscard]] std::chrono::seconds Ttl() const { return ttl_; }

 private:
  const core::Clock& clock_;
  std::chrono::seconds ttl_;
  std::size_t max_sessions_;
  std::mutex mutex_;
  std::map<std::string, Session, std::less<>> by_hash_;  // GUARDED_BY(mutex_)
};

/// Failed logins per client address: after `max_failures` within `window` the address is refused
/// until the window ends, whatever the key; a good login clears its count. In memory, per
/// process; bounded (the oldest windows are dropped first). Thread-safe.
class LoginLimiter final {
 public:
  LoginLimiter(const core::Clock& clock,
               int max_failures,
               std::chrono::seconds window,
               std::size_t max_addresses);

  /// How long `address` must wait before it may try again; nullopt: it may try now.
  [[nodiscard]] std::optional<std::chrono::seconds> Refused(const std::string& address);
  void Failed(const std::string& address);
  void Succeeded(const std::string& address);

 private:
  struct Count {
    int failures = 0;
    core::TimePoint window_start{};
  };
  const core::Clock& clock_;
  int max_failures_;
  std::chrono::seconds window_;
  std::size_t max_addresses_;
  std::mutex mutex_;
  std::map<std::string, Count, std::less<>> counts_;  // GUARDED_BY(mutex_)
};

/// A random 256-bit token, hex: session ids and CSRF tokens.
[[nodiscard]] std::string RandomToken();

}  // namespace amoauth::web::admin
