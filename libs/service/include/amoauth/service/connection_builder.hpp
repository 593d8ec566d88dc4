#pragma once

#include <string>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/core/token_exchange.hpp"

namespace amoauth::service {

/// Turns amoCRM's token answer into the row we store: account and user from the access token's
/// claims, `account_host` as the base domain, expiry from our receipt time + expires_in (never
/// from the token's own clock, protocol §9.10). Errors: Errc::kAmoMalformedResponse.
[[nodiscard]] Result<core::Connection> BuildConnection(const core::TokenGrant& grant,
                                                       const std::string& account_host,
                                                       const std::string& client_id,
                                                       core::TimePoint received_at);

}  // namespace amoauth::service
