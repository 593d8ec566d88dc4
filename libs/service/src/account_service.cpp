#include "amoauth/service/account_service.hpp"

#include <spdlog/spdlog.h>

#include "amoauth/service/connection_builder.hpp"

namespace amoauth::service {
namespace {

/// amoCRM's answers that mean the refresh token will never work again (protocol §3.3, §9.11).
/// A rejected client secret is deliberately not among them: that is our configuration, and
/// marking every account dead because of a typo in AMO_CLIENT_SECRET would be unforgivable.
bool IsDeadRefreshToken(const boost::system::error_code& ec) {
  return Is(ec, Errc::kAmoTokenRevoked) || Is(ec, Errc::kAmoTokenNotLinked) ||
         Is(ec, Errc::kAmoTokenExpired);
}

}  // namespace

AccountService::AccountService(Integration integration,
                               FlowSettings settings,
                               ConnectionStore& connections,
                               AmoClient& amo,
                               const core::Clock& clock)
    : integration_(std::move(integration)),
      settings_(settings),
      connections_(connections),
      amo_(amo),
      clock_(clock) {}

Task<Result<std::vector<core::Connection>>> AccountService::List() {
  co_return co_await connections_.List();
}

Task<Result<core::Connection>> AccountService::Get(std::int64_t account_id) {
  core::AccountKey key{account_id, integration_.client_id};
  auto found = co_await connections_.Find(std::move(key));
  if (!found) {
    co_return found.error();
  }
  if (!*found) {
    co_return Fail(Errc::kNotFound);
  }
  co_return std::move(**found);
}

bool AccountService::NeedsRefresh(const core::Connection& c) const {
  return c.expires_at - settings_.refresh_margin <= clock_.Now();
}

Task<Result<core::Connection>> AccountService::FreshToken(std::int64_t account_id) {
  auto connection = co_await Get(account_id);
  if (!connection) {
    co_return connection;
  }
  if (connection->status != core::ConnectionStatus::kActive) {
    co_return Fail(Errc::kReauthRequired);
  }
  if (!NeedsRefresh(*connection)) {
    co_return connection;
  }
  co_return co_await Refresh(std::move(*connection));
}

Task<Result<core::Connection>> AccountService::Refresh(core::Connection seen) {
  Key key{seen.account_id, seen.client_id};
  const core::AccountKey account_key = seen.Key();
  const std::int64_t seen_version = seen.version;
  SingleFlight<Key, Result<core::Connection>>::Work work = [this, account_key, seen_version]() {
    return RefreshLeader(account_key, seen_version);
  };
  co_return co_await refreshes_.Run(std::move(key), std::move(work));
}

Task<Result<core::Connection>> AccountService::RefreshLeader(core::AccountKey key,
                                                             std::int64_t seen_version) {
  // Re-read: a refresh that finished just before we got here already did the work.
  auto current = co_await connections_.Find(key);
  if (!current) {
    co_return current.error();
  }
  if (!*current) {
    co_return Fail(Errc::kNotFound);
  }
  core::Connection row = std::move(**current);
  if (row.status != core::ConnectionStatus::kActive) {
    co_return Fail(Errc::kReauthRequired);
  }
  if (row.version != seen_version && !NeedsRefresh(row)) {
    co_return row;
  }
  if (row.refresh_token.Empty()) {
    // A long-lived token cannot be refreshed; once amoCRM refuses it a person must act.
    co_return co_await MarkReauthRequired(std::move(row));
  }

  core::RefreshTokenGrant request{
      .client_id = integration_.client_id,
      .client_secret = integration_.client_secret,
      .refresh_token = row.refresh_token,
      .redirect_uri = integration_.redirect_uri,
  };
  std::string host = row.base_domain;
  auto grant = co_await amo_.Refresh(std::move(host), std::move(request));
  if (!grant) {
    if (IsDeadRefreshToken(grant.error())) {
      spdlog::warn("account {}: amoCRM refused the refresh token ({}); reauthorization required",
                   row.account_id,
                   grant.error().message());
      co_return co_await MarkReauthRequired(std::move(row));
    }
    co_return grant.error();
  }
  auto fresh = BuildConnection(*grant, row.base_domain, row.client_id, clock_.Now());
  if (!fresh) {
    co_return fresh.error();
  }
  // Keep what the token does not tell us again.
  if (fresh->api_domain.empty()) {
    fresh->api_domain = row.api_domain;
  }
  auto stored = co_await connections_.Replace(std::move(*fresh), row.version);
  if (!stored && Is(stored.error(), Errc::kConflict)) {
    // Another writer changed the row between our read and our write. Our new pair is the one
    // amoCRM now honours, so losing it would kill the connection: say so loudly.
    spdlog::error("account {}: token row changed during refresh; the refreshed pair was not stored",
                  row.account_id);
  }
  if (stored) {
    spdlog::info("account {}: access token refreshed", stored->account_id);
  }
  co_return stored;
}

Task<Result<core::Connection>> AccountService::MarkReauthRequired(core::Connection connection) {
  const std::int64_t version = connection.version;
  connection.status = core::ConnectionStatus::kReauthRequired;
  auto stored = co_await connections_.Replace(std::move(connection), version);
  if (!stored && !Is(stored.error(), Errc::kConflict)) {
    co_return stored.error();
  }
  co_return Fail(Errc::kReauthRequired);
}

Task<Result<net::HttpResponse>> AccountService::Proxy(std::int64_t account_id,
                                                      net::HttpRequest request) {
  auto connection = co_await FreshToken(account_id);
  if (!connection) {
    co_return connection.error();
  }
  net::HttpRequest replay = request;
  std::string host = connection->base_domain;
  Secret token = connection->access_token;
  auto response = co_await amo_.Forward(std::move(host), std::move(request), std::move(token));
  if (!response || response->status != 401) {
    co_return response;
  }
  // amoCRM no longer accepts the token (revoked, or refreshed elsewhere): refresh once, replay
  // once.
  auto refreshed = co_await Refresh(std::move(*connection));
  if (!refreshed) {
    co_return refreshed.error();
  }
  std::string replay_host = refreshed->base_domain;
  Secret replay_token = refreshed->access_token;
  co_return co_await amo_.Forward(
      std::move(replay_host), std::move(replay), std::move(replay_token));
}

}  // namespace amoauth::service
