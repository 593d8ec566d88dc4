#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "amoauth/core/errc.hpp"
#include "amoauth/core/secret.hpp"

/// POST /oauth2/exchange_api_key (protocol §6): a user's legacy API key becomes an authorization
/// code, which amoCRM sends later to the Redirect URI with from_exchange=1.
namespace amoauth::core {

/// amoCRM's limit: one exchange per 5 minutes per (user, integration) (protocol §6).
inline constexpr std::chrono::minutes kApiKeyExchangeInterval{5};

struct ApiKeyExchangeRequest {
  std::string login;  ///< the user's login (e-mail)
  Secret api_key;
  std::string client_uuid;  ///< the integration that receives the code
  Secret client_secret;
  std::string state;  ///< optional; empty: not sent
};

/// The JSON body, as amoCRM's docs and library send it.
[[nodiscard]] std::string SerializeApiKeyExchange(const ApiKeyExchangeRequest& r);

/// Why an answer other than 202 (amoCRM's only success) failed: 400, 403 and 429 have their own
/// errors; 5xx is kAmoServerError; anything else kAmoRejected.
[[nodiscard]] Errc ClassifyApiKeyExchangeStatus(int status);

/// The quota subject of (login, integration): a hash, so the store never holds the login.
/// Logins are e-mails and compared case-insensitively.
[[nodiscard]] std::string ApiKeyExchangeSubject(std::string_view login, std::string_view client_id);

}  // namespace amoauth::core
