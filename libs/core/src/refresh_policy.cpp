#include "amoauth/core/refresh_policy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "amoauth/core/errc.hpp"

namespace amoauth::core {

TimePoint NextRefreshAt(const Connection& c, const RefreshPolicy& policy) {
  if (c.status != ConnectionStatus::kActive || c.refresh_token.Empty()) {
    return TimePoint{};
  }
  TimePoint next = c.last_refresh_at + policy.keepalive;
  if (policy.ahead > Seconds{0}) {
    next = std::min(next, c.expires_at - policy.ahead);
  }
  return next;
}

Seconds Backoff(int failures, const RefreshPolicy& policy, double jitter) {
  const int exponent = std::clamp(failures, 1, 30) - 1;
  const double full = std::min(static_cast<double>(policy.backoff_base.count()) *
                                   std::pow(2.0, static_cast<double>(exponent)),
                               static_cast<double>(policy.backoff_cap.count()));
  const double spread = std::clamp(jitter, 0.0, 1.0);
  const double delay = full / 2.0 + (full / 2.0) * spread;
  return Seconds{std::max<std::int64_t>(1, static_cast<std::int64_t>(delay))};
}

double Jitter(Random& random) {
  std::array<std::uint8_t, 4> bytes{};
  random.Fill(bytes);
  std::uint32_t v = 0;
  for (std::uint8_t b : bytes) {
    v = (v << 8U) | b;
  }
  return static_cast<double>(v) / 4294967296.0;
}

RefreshFailure ClassifyRefreshFailure(const boost::system::error_code& ec) {
  if (!IsAmoauth(ec)) {
    return RefreshFailure::kTransient;  // transport errors from Asio/Beast/SSL
  }
  switch (static_cast<Errc>(ec.value())) {
    case Errc::kAmoTokenRevoked:
    case Errc::kAmoTokenNotLinked:
    case Errc::kAmoTokenExpired:
    case Errc::kReauthRequired:
      return RefreshFailure::kDead;
    case Errc::kAmoUnauthorized:
    case Errc::kAmoNotFound:
    case Errc::kAmoInvalidAccount:
      return RefreshFailure::kHostMoved;
    case Errc::kAmoInvalidClient:
    case Errc::kAmoRedirectUriMismatch:
    case Errc::kIntegrationUnknown:  // the row's integration has no keys here
      // Our configuration, not the account: marking accounts dead over a typo in
      // AMO_CLIENT_SECRET would be unforgivable. Retry slowly until someone fixes it.
      return RefreshFailure::kMisconfigured;
    case Errc::kInvalidArgument:
    case Errc::kUnauthorized:
    case Errc::kNotFound:
    case Errc::kConflict:
    case Errc::kBusy:
    case Errc::kConfigInvalid:
    case Errc::kStateInvalid:
    case Errc::kSignatureInvalid:
    case Errc::kRefererNotAllowed:
    case Errc::kAccessDenied:
    case Errc::kCodeAlreadyUsed:
    case Errc::kAccountDisconnected:  // never from a refresh: amoauth's own answer
    case Errc::kRefreshDeferred:
    case Errc::kThrottled:
    case Errc::kIntegrationAmbiguous:
    case Errc::kSecretsNotReceived:
    case Errc::kSecretsAlreadyReceived:
    case Errc::kAmoCodeExpired:
    case Errc::kAmoCodeRevoked:
    case Errc::kAmoCodeInvalid:
    case Errc::kAmoRejected:
    case Errc::kAmoRateLimited:
    case Errc::kAmoBlocked:
    case Errc::kAmoServerError:
    case Errc::kAmoUnreachable:
    case Errc::kAmoMalformedResponse:
    case Errc::kStoreFailure:
    case Errc::kCryptoFailure:
    case Errc::kAmoApiKeyRejected:  // never from a refresh: exchange_api_key's answers
    case Errc::kAmoApiKeyForbidden:
    case Errc::kAmoApiKeyTooOften:
    case Errc::kExchangeTooSoon:
      return RefreshFailure::kTransient;
    // Never from a refresh: a long-lived token has no refresh token (protocol §7.5).
    case Errc::kLongLivedTokenExpired:
    case Errc::kLongLivedTokenRejected:
      return RefreshFailure::kDead;
    case Errc::kLongLivedTokenInvalid:
    case Errc::kLongLivedTokenDomain:
    case Errc::kLongLivedTokenNotRefreshable:
    case Errc::kLongLivedTokenReplacesOAuth:
      return RefreshFailure::kTransient;
  }
  return RefreshFailure::kTransient;
}

}  // namespace amoauth::core
