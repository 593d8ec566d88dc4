#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/ports.hpp"
#include "amoauth/service/single_flight.hpp"

namespace amoauth::service {

/// Using a connection: listing accounts, handing out a valid access token, proxying API calls.
/// Refreshes are single-flight per (account, integration) within the process and committed with
/// compare-and-swap on the row version. Thread-safe.
class AccountService {
 public:
  AccountService(Integration integration,
                 FlowSettings settings,
                 ConnectionStore& connections,
                 AmoClient& amo,
                 const core::Clock& clock);

  Task<Result<std::vector<core::Connection>>> List();

  /// The account's connection for our integration. Errors: kNotFound.
  Task<Result<core::Connection>> Get(std::int64_t account_id);

  /// A connection whose access token is valid for at least the refresh margin, refreshing first
  /// if needed. Errors: kNotFound, kReauthRequired (refresh token dead or account disconnected),
  /// the Amo* errors of a failed refresh.
  Task<Result<core::Connection>> FreshToken(std::int64_t account_id);

  /// Sends `request` (its target is the amoCRM path + query, e.g. "/api/v4/account?with=users")
  /// to the account's host with a fresh token. On a 401 it refreshes once (single-flight) and
  /// replays once. amoCRM's answer comes back whatever its status.
  Task<Result<net::HttpResponse>> Proxy(std::int64_t account_id, net::HttpRequest request);

 private:
  using Key = std::pair<std::int64_t, std::string>;

  /// Refreshes unless the stored row moved past `seen_version` already (someone else refreshed).
  Task<Result<core::Connection>> Refresh(core::Connection seen);
  Task<Result<core::Connection>> RefreshLeader(core::AccountKey key, std::int64_t seen_version);
  Task<Result<core::Connection>> MarkReauthRequired(core::Connection connection);
  [[nodiscard]] bool NeedsRefresh(const core::Connection& c) const;

  Integration integration_;
  FlowSettings settings_;
  ConnectionStore& connections_;
  AmoClient& amo_;
  const core::Clock& clock_;
  SingleFlight<Key, Result<core::Connection>> refreshes_;
};

}  // namespace amoauth::service
