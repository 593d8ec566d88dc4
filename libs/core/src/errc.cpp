#include "amoauth/core/errc.hpp"

#include <string>

namespace amoauth {
namespace {

// boost::system::error_category's destructor is protected and non-virtual by design: categories are
// function-local statics, never deleted through a base pointer. -Wnon-virtual-dtor cannot tell.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class AmoauthErrorCategory final : public boost::system::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "amoauth"; }

  [[nodiscard]] std::string message(int ev) const override {
    // No `default:`: -Wswitch must name any enumerator that lacks a message.
    switch (static_cast<Errc>(ev)) {
      case Errc::kInvalidArgument:
        return "The request or one of its parameters is malformed.";
      case Errc::kUnauthorized:
        return "The internal API was called without a valid API key.";
      case Errc::kNotFound:
        return "No such account or resource exists.";
      case Errc::kConflict:
        return "The stored record changed concurrently; the update was not applied.";
      case Errc::kBusy:
        return "A bounded resource is full; try again later.";
      case Errc::kConfigInvalid:
        return "A configuration value is unusable.";
      case Errc::kStateInvalid:
        return "The OAuth state is missing, unknown, expired or already used.";
      case Errc::kSignatureInvalid:
        return "The hook's signature does not verify.";
      case Errc::kRefererNotAllowed:
        return "The referer is not an allowed amoCRM or Kommo account host.";
      case Errc::kAccessDenied:
        return "The user denied access on the amoCRM consent page.";
      case Errc::kCodeAlreadyUsed:
        return "This authorization code has already been exchanged.";
      case Errc::kReauthRequired:
        return "The account's refresh token is no longer valid; the account must be connected "
               "again.";
      case Errc::kAccountDisconnected:
        return "The account disconnected the integration; it must be connected again.";
      case Errc::kRefreshDeferred:
        return "The last refresh of this account failed; the next attempt waits for its backoff.";
      case Errc::kThrottled:
        return "Too many requests are queued for this account under amoCRM's rate limit.";
      case Errc::kIntegrationUnknown:
        return "No integration with this client id.";
      case Errc::kIntegrationAmbiguous:
        return "The account is connected through several integrations; say which (client_id).";
      case Errc::kSecretsNotReceived:
        return "amoCRM did not send the new integration's keys in time.";
      case Errc::kSecretsAlreadyReceived:
        return "The keys for this authorization were received already.";
      case Errc::kAmoCodeExpired:
        return "amoCRM rejected the authorization code because it has expired.";
      case Errc::kAmoCodeRevoked:
        return "amoCRM rejected the authorization code because it was already used.";
      case Errc::kAmoCodeInvalid:
        return "amoCRM could not decrypt the authorization code.";
      case Errc::kAmoRedirectUriMismatch:
        return "amoCRM says the redirect URI does not match the integration's settings.";
      case Errc::kAmoInvalidClient:
        return "amoCRM rejected the client ID or client secret.";
      case Errc::kAmoInvalidAccount:
        return "amoCRM says the code or token belongs to a different account.";
      case Errc::kAmoTokenRevoked:
        return "amoCRM says the refresh token was revoked or already used.";
      case Errc::kAmoTokenNotLinked:
        return "amoCRM says the refresh token belongs to a different integration.";
      case Errc::kAmoTokenExpired:
        return "amoCRM says the refresh token has expired.";
      case Errc::kAmoUnauthorized:
        return "amoCRM answered 401 Unauthorized.";
      case Errc::kAmoNotFound:
        return "amoCRM answered 404 Not Found: the account may have been renamed.";
      case Errc::kAmoRejected:
        return "amoCRM rejected the request.";
      case Errc::kAmoRateLimited:
        return "amoCRM rate-limited the request (429).";
      case Errc::kAmoBlocked:
        return "amoCRM blocked the account or IP address (403).";
      case Errc::kAmoServerError:
        return "amoCRM answered with a server error (5xx).";
      case Errc::kAmoUnreachable:
        return "amoCRM could not be reached (connection, TLS or timeout failure).";
      case Errc::kAmoMalformedResponse:
        return "amoCRM's response does not have the expected format.";
      case Errc::kStoreFailure:
        return "The token store failed.";
      case Errc::kCryptoFailure:
        return "A stored secret could not be decrypted (wrong master key or tampering).";
      case Errc::kAmoApiKeyRejected:
        return "amoCRM refused to exchange the API key: the login, the API key or the request is "
               "wrong.";
      case Errc::kAmoApiKeyForbidden:
        return "amoCRM refused to exchange the API key: the user lacks the rights, or the "
               "integration is not installed in the account.";
      case Errc::kAmoApiKeyTooOften:
        return "amoCRM says the API key of this user was exchanged for this integration less "
               "than 5 minutes ago.";
      case Errc::kExchangeTooSoon:
        return "The API key of this user was exchanged for this integration less than 5 minutes "
               "ago; amoCRM allows one exchange per 5 minutes.";
      case Errc::kLongLivedTokenInvalid:
        return "The token is not an amoCRM access token: expected a JWT whose payload has "
               "account_id, aud and exp, as the integration's Keys tab gives it.";
      case Errc::kLongLivedTokenDomain:
        return "The long-lived token names only its platform: give the account host (domain, e.g. "
               "example.amocrm.ru), an allowed amoCRM/Kommo account host on the token's "
               "platform.";
      case Errc::kLongLivedTokenExpired:
        return "The long-lived token has expired; generate a new one in the integration's Keys "
               "tab.";
      case Errc::kLongLivedTokenRejected:
        return "amoCRM no longer accepts the long-lived token (revoked or expired).";
      case Errc::kLongLivedTokenNotRefreshable:
        return "A long-lived token cannot be refreshed; add a new one before it expires.";
      case Errc::kLongLivedTokenReplacesOAuth:
        return "The account is connected through OAuth for this integration already; a "
               "long-lived token does not replace a working refresh token.";
    }
    // error_code can carry any int, not only our enumerators.
    return "Unknown amoauth error " + std::to_string(ev) + ".";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& AmoauthCategory() noexcept {
  static const AmoauthErrorCategory category;
  return category;
}

std::string_view ErrcCode(Errc e) noexcept {
  switch (e) {
    case Errc::kInvalidArgument:
      return "invalid_request";
    case Errc::kUnauthorized:
      return "unauthorized";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kConflict:
      return "conflict";
    case Errc::kBusy:
      return "busy";
    case Errc::kConfigInvalid:
      return "config_invalid";
    case Errc::kStateInvalid:
      return "state_invalid";
    case Errc::kSignatureInvalid:
      return "signature_invalid";
    case Errc::kRefererNotAllowed:
      return "referer_not_allowed";
    case Errc::kAccessDenied:
      return "access_denied";
    case Errc::kCodeAlreadyUsed:
      return "code_already_used";
    case Errc::kReauthRequired:
      return "reauth_required";
    case Errc::kAccountDisconnected:
      return "account_disconnected";
    case Errc::kRefreshDeferred:
      return "refresh_deferred";
    case Errc::kThrottled:
      return "throttled";
    case Errc::kIntegrationUnknown:
      return "integration_unknown";
    case Errc::kIntegrationAmbiguous:
      return "integration_ambiguous";
    case Errc::kSecretsNotReceived:
      return "secrets_not_received";
    case Errc::kSecretsAlreadyReceived:
      return "secrets_already_received";
    case Errc::kAmoCodeExpired:
      return "amo_code_expired";
    case Errc::kAmoCodeRevoked:
      return "amo_code_revoked";
    case Errc::kAmoCodeInvalid:
      return "amo_code_invalid";
    case Errc::kAmoRedirectUriMismatch:
      return "amo_redirect_uri_mismatch";
    case Errc::kAmoInvalidClient:
      return "amo_invalid_client";
    case Errc::kAmoInvalidAccount:
      return "amo_invalid_account";
    case Errc::kAmoTokenRevoked:
      return "amo_token_revoked";
    case Errc::kAmoTokenNotLinked:
      return "amo_token_not_linked";
    case Errc::kAmoTokenExpired:
      return "amo_token_expired";
    case Errc::kAmoUnauthorized:
      return "amo_unauthorized";
    case Errc::kAmoNotFound:
      return "amo_not_found";
    case Errc::kAmoRejected:
      return "amo_rejected";
    case Errc::kAmoRateLimited:
      return "amo_rate_limited";
    case Errc::kAmoBlocked:
      return "amo_blocked";
    case Errc::kAmoServerError:
      return "amo_server_error";
    case Errc::kAmoUnreachable:
      return "amo_unreachable";
    case Errc::kAmoMalformedResponse:
      return "amo_malformed_response";
    case Errc::kStoreFailure:
      return "store_failure";
    case Errc::kCryptoFailure:
      return "crypto_failure";
    case Errc::kAmoApiKeyRejected:
      return "amo_api_key_rejected";
    case Errc::kAmoApiKeyForbidden:
      return "amo_api_key_forbidden";
    case Errc::kAmoApiKeyTooOften:
      return "amo_api_key_too_often";
    case Errc::kExchangeTooSoon:
      return "exchange_too_soon";
    case Errc::kLongLivedTokenInvalid:
      return "long_lived_token_invalid";
    case Errc::kLongLivedTokenDomain:
      return "long_lived_token_domain";
    case Errc::kLongLivedTokenExpired:
      return "long_lived_token_expired";
    case Errc::kLongLivedTokenRejected:
      return "long_lived_token_rejected";
    case Errc::kLongLivedTokenNotRefreshable:
      return "long_lived_token_not_refreshable";
    case Errc::kLongLivedTokenReplacesOAuth:
      return "long_lived_token_replaces_oauth";
  }
  return "internal_error";
}

std::string_view ErrorCode(const boost::system::error_code& ec) noexcept {
  if (IsAmoauth(ec)) {
    return ErrcCode(static_cast<Errc>(ec.value()));
  }
  // Foreign codes come from Asio, Beast and OpenSSL: the network.
  return ec ? "transport" : "internal_error";
}

}  // namespace amoauth
