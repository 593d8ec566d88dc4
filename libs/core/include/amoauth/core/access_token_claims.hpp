#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/result.hpp"

namespace amoauth::core {

/// The claims amoauth reads from amoCRM's access token (protocol §4). The token is a JWT whose
/// signature we do not (and cannot) verify: amoCRM publishes no key, and the token only matters to
/// amoCRM itself. Times in the token are not used for expiry (protocol §9 item 10).
struct AccessTokenClaims {
  std::int64_t account_id = 0;
  std::string client_id;    ///< `aud`
  std::string user_id;      ///< `sub` (a string in amoCRM tokens; numbers accepted too)
  std::string base_domain;  ///< "amocrm.ru" | "kommo.com" — the platform, not the account host
  std::string api_domain;   ///< "api-b.amocrm.ru"; empty in tokens issued before 2024-08-21
  std::int64_t expires_at = 0;  ///< `exp`, seconds; 0 when absent
  std::vector<std::string> scopes;
};

/// Decodes the payload (second dot-separated part, base64url) and reads the claims above.
/// Requires `account_id` (integer); everything else is optional. Errors:
/// Errc::kAmoMalformedResponse.
[[nodiscard]] Result<AccessTokenClaims> DecodeAccessTokenClaims(std::string_view jwt);

}  // namespace amoauth::core
