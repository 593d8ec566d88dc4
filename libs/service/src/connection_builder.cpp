#include "amoauth/service/connection_builder.hpp"

#include <spdlog/spdlog.h>

#include "amoauth/core/access_token_claims.hpp"

namespace amoauth::service {

Result<core::Connection> BuildConnection(const core::TokenGrant& grant,
                                         const std::string& account_host,
                                         const std::string& client_id,
                                         core::TimePoint received_at) {
  auto claims = core::DecodeAccessTokenClaims(grant.access_token.Reveal());
  if (!claims) {
    spdlog::warn("amoCRM returned an access token whose claims cannot be read ({})", account_host);
    return claims.error();
  }
  if (!claims->client_id.empty() && claims->client_id != client_id) {
    // The token belongs to another integration: storing it under ours would mislabel it.
    spdlog::warn("amoCRM returned a token for another integration ({})", account_host);
    return Fail(Errc::kAmoMalformedResponse);
  }
  core::Connection c;
  c.account_id = claims->account_id;
  c.client_id = client_id;
  c.base_domain = account_host;
  c.api_domain = claims->api_domain;
  c.user_id = claims->user_id;
  c.status = core::ConnectionStatus::kActive;
  c.access_token = grant.access_token;
  c.refresh_token = grant.refresh_token;
  c.expires_at = received_at + core::Seconds{grant.expires_in};
  return c;
}

}  // namespace amoauth::service
