#include "amoauth/service/long_lived_tokens.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/core/access_token_claims.hpp"
#include "amoauth/core/expiry_warnings.hpp"
#include "amoauth/core/iso_time.hpp"

namespace amoauth::service {

LongLivedTokens::LongLivedTokens(IntegrationDirectory& integrations,
                                 core::RefererPolicy referer_policy,
                                 ConnectionStore& connections,
                                 const EventFactory& events,
                                 const core::Clock& clock)
    : integrations_(integrations),
      referer_policy_(std::move(referer_policy)),
      connections_(connections),
      events_(events),
      clock_(clock) {}

Task<Result<std::string>> LongLivedTokens::HostFor(std::int64_t account_id,
                                                   std::string base_domain,
                                                   std::string domain) {
  if (domain.empty()) {
    // The token names the platform, not the account; only an account we know already tells us
    // its host (the subdomain lookup of §7.2 needs a refresh token, which this kind has none of).
    auto rows = co_await connections_.FindByAccount(account_id);
    if (!rows) {
      co_return rows.error();
    }
    for (const auto& row : *rows) {
      if (!row.base_domain.empty()) {
        domain = row.base_domain;
        break;
      }
    }
    if (domain.empty()) {
      co_return Fail(Errc::kLongLivedTokenDomain);
    }
  }
  // The host receives this token as a Bearer credential on every proxied call: the same
  // allow-list as a referer, and on the platform the token was issued for.
  auto host = referer_policy_.Check(domain);
  if (!host || (!base_domain.empty() && host->domain != base_domain)) {
    co_return Fail(Errc::kLongLivedTokenDomain);
  }
  co_return host->host;
}

Task<Result<core::Connection>> LongLivedTokens::Add(Secret token, std::string domain) {
  auto claims = core::DecodeAccessTokenClaims(token.Reveal());
  if (!claims || claims->client_id.empty() || claims->expires_at <= 0) {
    co_return Fail(Errc::kLongLivedTokenInvalid);
  }
  const core::TimePoint now = clock_.Now();
  const core::TimePoint expires_at = core::FromUnixSeconds(claims->expires_at);
  if (expires_at <= now) {
    co_return Fail(Errc::kLongLivedTokenExpired);
  }
  auto integration = co_await integrations_.Resolve(claims->client_id);
  if (!integration) {
    co_return integration.error();
  }
  auto host = co_await HostFor(claims->account_id, claims->base_domain, std::move(domain));
  if (!host) {
    co_return host.error();
  }
  core::AccountKey key{claims->account_id, claims->client_id};
  auto existing = co_await connections_.Find(std::move(key));
  if (!existing) {
    co_return existing.error();
  }
  if (*existing && (*existing)->status == core::ConnectionStatus::kActive &&
      core::KindOf(**existing) == core::ConnectionKind::kOAuth) {
    // Replacing it would drop a refresh token that still works.
    co_return Fail(Errc::kLongLivedTokenReplacesOAuth);
  }

  core::Connection c;
  c.account_id = claims->account_id;
  c.client_id = claims->client_id;
  c.base_domain = std::move(*host);
  c.api_domain = claims->api_domain;
  c.user_id = claims->user_id;
  c.status = core::ConnectionStatus::kActive;
  c.access_token = std::move(token);
  c.expires_at = expires_at;
  c.created_at = now;
  // last_refresh_at stays unset: no refresh token was ever born (core::KindOf).
  c.next_refresh_at = core::NextExpiryVisit(expires_at, now);
  auto events = events_.Make(event_type::kAccountConnected, c);
  if (core::WarnAtOnce(expires_at, now)) {
    boost::json::object data{{"expires_at", core::FormatIsoTime(expires_at)},
                             {"days_left", core::DaysLeft(expires_at, now)}};
    auto warning = events_.Make(event_type::kTokenExpiring, c, boost::json::serialize(data));
    events.insert(events.end(), warning.begin(), warning.end());
  }
  auto stored = co_await connections_.Upsert(std::move(c), std::move(events));
  if (stored) {
    spdlog::info("account {} ({}): long-lived token of integration {} added, expires {}",
                 stored->account_id,
                 stored->base_domain,
                 stored->client_id,
                 core::FormatIsoTime(stored->expires_at));
  }
  co_return stored;
}

}  // namespace amoauth::service
