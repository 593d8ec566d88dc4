#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/secret.hpp"

namespace amoauth::core {

enum class ConnectionStatus {
  kActive,          ///< tokens are good (or refreshable)
  kReauthRequired,  ///< the refresh token is dead; a person must connect again
  kDisconnected,    ///< the account disconnected the integration; tokens erased
};
[[nodiscard]] std::string_view ToString(
    ConnectionStatus s);  // "active" | "reauth_required" | "disconnected"
[[nodiscard]] std::optional<ConnectionStatus> ParseConnectionStatus(std::string_view s);

/// Tokens are keyed by (account, integration): one integration may be installed in many accounts
/// and one account may install many integrations (protocol §3.4).
struct AccountKey {
  std::int64_t account_id = 0;
  std::string client_id;
  friend bool operator==(const AccountKey&, const AccountKey&) = default;
};

/// One account's access for one integration: the row of amo_tokens.
struct Connection {
  std::int64_t account_id = 0;
  std::string client_id;
  std::string base_domain;  ///< the account host: "example.amocrm.ru" (the callback's referer)
  std::string api_domain;   ///< shared API host from the token ("api-b.amocrm.ru"); may be empty
  std::string user_id;      ///< who granted access (JWT `sub`)
  ConnectionStatus status = ConnectionStatus::kActive;
  Secret access_token;
  Secret refresh_token;    ///< empty for a long-lived token
  TimePoint expires_at{};  ///< access token expiry: local receipt time + expires_in
  TimePoint created_at{};
  TimePoint updated_at{};
  std::int64_t version = 0;  ///< bumped by every write; guards compare-and-swap

  // Refresh bookkeeping: what the scheduler acts on and GET /v1/accounts/{id} shows.
  TimePoint last_refresh_at{};  ///< last exchange or refresh: the refresh token's birth
  TimePoint next_refresh_at{};  ///< when the scheduler refreshes next; TimePoint{}: never
  int refresh_failures = 0;     ///< consecutive failed refresh attempts; 0 when healthy
  std::string last_error;       ///< the last failure in words, for people; empty when healthy
  TimePoint last_error_at{};

  [[nodiscard]] AccountKey Key() const { return {account_id, client_id}; }
};

/// How the access was handed over: an OAuth pair (refreshed by amoauth), or a long-lived token
/// made in the integration's "Keys" tab (protocol §7.5), which nobody can refresh.
enum class ConnectionKind { kOAuth, kLongLived };
[[nodiscard]] std::string_view ToString(ConnectionKind k);  // "oauth" | "long_lived"

/// A long-lived row has no refresh token and was never exchanged or refreshed (last_refresh_at is
/// the refresh token's birth, so it stays unset). Both hold after a disconnect erased the tokens,
/// so the kind survives it; an OAuth row always has last_refresh_at set.
[[nodiscard]] ConnectionKind KindOf(const Connection& c);

}  // namespace amoauth::core
