#include "amoauth/core/code_exchange_policy.hpp"

#include "amoauth/core/errc.hpp"

namespace amoauth::core {

CodeFailure ClassifyCodeFailure(const boost::system::error_code& ec) {
  if (!IsAmoauth(ec)) {
    return CodeFailure::kTransient;
  }
  // No `default:`: -Wswitch names every new Errc, so each is decided here on purpose.
  switch (static_cast<Errc>(ec.value())) {
    case Errc::kAmoUnreachable:
    case Errc::kAmoServerError:
    case Errc::kAmoRateLimited:
    case Errc::kAmoBlocked:  // the block ends; the code may outlive it
    case Errc::kStoreFailure:
    case Errc::kBusy:
    case Errc::kConflict:
    case Errc::kThrottled:
    case Errc::kRefreshDeferred:
    // amoCRM answered 200 with something unreadable: a fault of amoCRM's, like a 5xx. It may
    // have spent the code, or not; a retry within the code's lifetime finds out: a spent code
    // is answered invalid_grant ("revoked", permanent, reported then), an unspent one connects.
    case Errc::kAmoMalformedResponse:
      return CodeFailure::kTransient;
    case Errc::kAmoCodeExpired:
    case Errc::kAmoCodeRevoked:
    case Errc::kAmoCodeInvalid:
    case Errc::kAmoRedirectUriMismatch:
    case Errc::kAmoInvalidClient:
    case Errc::kAmoInvalidAccount:
    case Errc::kAmoUnauthorized:
    case Errc::kAmoNotFound:
    case Errc::kAmoRejected:
    case Errc::kAmoTokenRevoked:
    case Errc::kAmoTokenNotLinked:
    case Errc::kAmoTokenExpired:
    case Errc::kCodeAlreadyUsed:
    case Errc::kRefererNotAllowed:
    case Errc::kInvalidArgument:
    case Errc::kNotFound:
    case Errc::kUnauthorized:
    case Errc::kConfigInvalid:
    case Errc::kStateInvalid:
    case Errc::kSignatureInvalid:
    case Errc::kAccessDenied:
    case Errc::kReauthRequired:
    case Errc::kAccountDisconnected:
    // A code sealed under another master key will not open however often we try.
    case Errc::kCryptoFailure:
    case Errc::kAmoApiKeyRejected:
    case Errc::kAmoApiKeyForbidden:
    case Errc::kAmoApiKeyTooOften:
    case Errc::kExchangeTooSoon:
    case Errc::kIntegrationUnknown:
    case Errc::kIntegrationAmbiguous:
    case Errc::kSecretsNotReceived:
    case Errc::kSecretsAlreadyReceived:
    // Never from a code exchange: errors about long-lived tokens.
    case Errc::kLongLivedTokenInvalid:
    case Errc::kLongLivedTokenDomain:
    case Errc::kLongLivedTokenExpired:
    case Errc::kLongLivedTokenRejected:
    case Errc::kLongLivedTokenNotRefreshable:
    case Errc::kLongLivedTokenReplacesOAuth:
      return CodeFailure::kPermanent;
  }
  return CodeFailure::kTransient;
}

}  // namespace amoauth::core
