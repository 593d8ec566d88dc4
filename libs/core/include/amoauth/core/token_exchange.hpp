#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/result.hpp"
#include "amoauth/core/secret.hpp"

namespace amoauth::core {

/// The body of POST /oauth2/access_token (protocol §3.1), sent as JSON like amoCRM's docs.
struct AuthorizationCodeGrant {
  std::string client_id;
  Secret client_secret;
  Secret code;
  std::string redirect_uri;
};
struct RefreshTokenGrant {
  std::string client_id;
  Secret client_secret;
  Secret refresh_token;
  std::string redirect_uri;
};

[[nodiscard]] std::string SerializeGrant(const AuthorizationCodeGrant& g);
[[nodiscard]] std::string SerializeGrant(const RefreshTokenGrant& g);

/// A successful token response (protocol §3.2). `server_time` is Kommo's; absent on amoCRM.
struct TokenGrant {
  std::string token_type;  ///< "Bearer"
  std::int64_t expires_in = 0;
  Secret access_token;
  Secret refresh_token;
  std::optional<std::int64_t> server_time;
};

/// Parses a 200 body. Requires access_token, refresh_token (non-empty strings) and expires_in
/// (positive integer); tolerates unknown fields. Errors: Errc::kAmoMalformedResponse.
[[nodiscard]] Result<TokenGrant> ParseTokenGrant(std::string_view body);

/// GET /oauth2/account/current/subdomain's answer (protocol §7.2).
struct AccountDomain {
  std::int64_t id = 0;
  std::string subdomain;  ///< "example"
  std::string domain;     ///< "example.amocrm.ru": the account host to use from now on
};

/// Parses a 200 body of the domain lookup. Requires id (positive integer) and domain (non-empty
/// string); subdomain may be absent. Errors: Errc::kAmoMalformedResponse.
[[nodiscard]] Result<AccountDomain> ParseAccountDomain(std::string_view body);

/// Why amoCRM said no (protocol §3.3): HTTP status + `hint` decide `code`; title and detail are
/// kept for the log. Never contains the request's secrets (amoCRM does not echo them).
struct AmoFailure {
  Errc code = Errc::kAmoRejected;
  int status = 0;
  std::string hint;
  std::string title;
  std::string detail;
};

/// Classifies any non-2xx answer from amoCRM's token endpoint or API. The body may be JSON,
/// problem+json, HTML (the 403 block page) or empty; it never fails.
[[nodiscard]] AmoFailure ClassifyAmoFailure(int status, std::string_view body);

}  // namespace amoauth::core
