#pragma once

#include <string_view>
#include <type_traits>

#include <boost/system/error_code.hpp>

namespace amoauth {

/// Every failure amoauth's own code reports. Asio, Beast, JSON and URL report boost::system
/// error_codes too, so one Result type carries all of them (docs/adr/0001-stack.md).
/// Adding an enumerator: give it a message in errc.cpp and a mapping in
/// libs/web/src/error_mapping.cpp; both switch without `default:`, so -Wswitch names every place
/// that must learn about it.
enum class Errc {
  // Caller and configuration mistakes.
  kInvalidArgument = 1,  ///< a request or parameter is malformed
  kUnauthorized,         ///< internal API called without the right API key
  kNotFound,             ///< no such account / resource
  kConflict,             ///< the stored row changed under us (compare-and-swap lost)
  kBusy,                 ///< a bounded resource is full (pending states, queues)
  kConfigInvalid,        ///< a configuration value is unusable

  // The OAuth dance on our side.
  kStateInvalid,         ///< state missing, unknown, expired or already used
  kSignatureInvalid,     ///< a hook from amoCRM whose signature does not verify (protocol §7.1)
  kRefererNotAllowed,    ///< referer is not an allow-listed amoCRM/Kommo account host
  kAccessDenied,         ///< the user pressed "Deny" on amoCRM's consent page
  kCodeAlreadyUsed,      ///< this authorization code was exchanged before
  kReauthRequired,       ///< the account's refresh token is dead; a person must connect again
  kAccountDisconnected,  ///< the account disconnected the integration; it must be connected again
  kRefreshDeferred,      ///< the last refresh failed; the next attempt waits for its backoff
  kThrottled,  ///< the account's request queue (amoCRM's rate limit) is longer than allowed
  kIntegrationUnknown,      ///< no integration with this client id (configured or external)
  kIntegrationAmbiguous,    ///< the account has several integrations; the caller must pick one
  kSecretsNotReceived,      ///< the external integration's keys did not arrive in time (§5)
  kSecretsAlreadyReceived,  ///< a second secrets webhook for one authorization (a replay)

  // amoCRM answered, and said no (classified from HTTP status + `hint`, protocol §3.3).
  kAmoCodeExpired,          ///< "Authorization code has expired"
  kAmoCodeRevoked,          ///< "Authorization code has been revoked" (used before)
  kAmoCodeInvalid,          ///< "Cannot decrypt the authorization code"
  kAmoRedirectUriMismatch,  ///< "Redirect URI is not associated with client"
  kAmoInvalidClient,        ///< client_id / client_secret rejected
  kAmoInvalidAccount,       ///< code or token presented on another account's host
  kAmoTokenRevoked,         ///< refresh token used before, or access revoked
  kAmoTokenNotLinked,       ///< refresh token belongs to another integration
  kAmoTokenExpired,         ///< refresh token past its three months
  kAmoUnauthorized,         ///< 401 with no hint we know
  kAmoNotFound,             ///< 404 with no hint: the account host may have been renamed
  kAmoRejected,             ///< any other 4xx
  kAmoRateLimited,          ///< 429
  kAmoBlocked,              ///< 403: account or IP blocked for abuse
  kAmoServerError,          ///< 5xx
  kAmoUnreachable,          ///< connection, TLS or timeout failure talking to amoCRM
  kAmoMalformedResponse,    ///< 2xx whose body is not what the protocol says

  // Our own machinery.
  kStoreFailure,   ///< the database failed
  kCryptoFailure,  ///< a stored secret does not decrypt (wrong master key or tampering)

  // Exchanging a legacy API key for a code (protocol §6).
  kAmoApiKeyRejected,   ///< exchange_api_key answered 400: login, API key or request refused
  kAmoApiKeyForbidden,  ///< exchange_api_key answered 403: the user lacks the rights
  kAmoApiKeyTooOften,   ///< exchange_api_key answered 429: amoCRM's own once-per-5-minutes limit
  kExchangeTooSoon,     ///< our local copy of that limit: the next call is allowed later

  // Long-lived tokens (protocol §7.5).
  kLongLivedTokenInvalid,         ///< not an amoCRM access token (a JWT with account_id and aud)
  kLongLivedTokenDomain,          ///< no usable account host: none given, or not the token's
  kLongLivedTokenExpired,         ///< its exp has passed; a person must generate a new one
  kLongLivedTokenRejected,        ///< amoCRM answered 401 before its exp (revoked)
  kLongLivedTokenNotRefreshable,  ///< a refresh was asked for a token that has no refresh token
  kLongLivedTokenReplacesOAuth,   ///< it would replace an active OAuth connection
};

[[nodiscard]] const boost::system::error_category& AmoauthCategory() noexcept;

/// The stable machine code of `e` — "amo_server_error", "reauth_required" — as the internal API's
/// {"error": …} and the webhook events' data carry it.
[[nodiscard]] std::string_view ErrcCode(Errc e) noexcept;
/// ErrcCode for ours; "transport" for foreign failures (Asio, Beast, OpenSSL).
[[nodiscard]] std::string_view ErrorCode(const boost::system::error_code& ec) noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(
    Errc e) noexcept {  // NOLINT: ADL name
  return {static_cast<int>(e), AmoauthCategory()};
}

/// True when `ec` is one of ours and equals `e`.
[[nodiscard]] inline bool Is(const boost::system::error_code& ec, Errc e) noexcept {
  return ec == make_error_code(e);
}

/// True when `ec` comes from amoauth (so `static_cast<Errc>(ec.value())` is meaningful).
[[nodiscard]] inline bool IsAmoauth(const boost::system::error_code& ec) noexcept {
  return &ec.category() == &AmoauthCategory();
}

}  // namespace amoauth

template <>
struct boost::system::is_error_code_enum<amoauth::Errc> : std::true_type {};
