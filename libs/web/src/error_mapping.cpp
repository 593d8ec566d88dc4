#include "error_mapping.hpp"

#include "amoauth/core/errc.hpp"

namespace amoauth::web {
namespace {

constexpr std::string_view kRetry = "Please try again in a few minutes.";
constexpr std::string_view kStartAgain = "Please start connecting again.";

ErrorView ViewOfErrc(Errc e) {
  switch (e) {
    case Errc::kInvalidArgument:
      return {400,
              ErrcCode(e),
              "The request is malformed or misses a parameter.",
              "This link is incomplete",
              "The address is missing something amoCRM should have sent. Please start connecting "
              "again."};
    case Errc::kUnauthorized:
      return {401,
              ErrcCode(e),
              "Missing or wrong API key: send Authorization: Bearer <AMOAUTH_API_KEY>.",
              "Not allowed",
              "This page needs the amoauth API key."};
    case Errc::kNotFound:
      return {404,
              ErrcCode(e),
              "No connected account with this id.",
              "Not found",
              "There is no connected account with this id."};
    case Errc::kConflict:
      return {409,
              ErrcCode(e),
              "The account changed while this request ran; retry it.",
              "Something changed meanwhile",
              kRetry};
    case Errc::kBusy:
      return {
          503, ErrcCode(e), "amoauth is at a capacity limit; retry shortly.", "Too busy", kRetry};
    case Errc::kConfigInvalid:
      return {500,
              ErrcCode(e),
              "amoauth is misconfigured; see its log.",
              "amoauth is misconfigured",
              "Tell the people who run this service."};
    case Errc::kStateInvalid:
      return {400,
              ErrcCode(e),
              "The state is missing, unknown, expired or was already used.",
              "This sign-in link has expired or was already used",
              "Sign-in links work once and for 20 minutes. Please start connecting again."};
    case Errc::kSignatureInvalid:
      return {403,
              ErrcCode(e),
              "The hook's signature does not verify for this integration.",
              "Not allowed",
              "This request does not come from amoCRM."};
    case Errc::kRefererNotAllowed:
      return {400,
              ErrcCode(e),
              "The referer is not an allowed amoCRM/Kommo account host.",
              "This does not come from an amoCRM account",
              "The account address in this link is not an amoCRM or Kommo account, so nothing "
              "was sent to it. Please start connecting again from this site."};
    case Errc::kAccessDenied:
      return {403,
              ErrcCode(e),
              "The user did not grant access.",
              "Access was not granted",
              "You chose not to give access to your amoCRM account. Nothing was connected; you "
              "can start again whenever you like."};
    case Errc::kCodeAlreadyUsed:
      return {409,
              ErrcCode(e),
              "This authorization code was already exchanged.",
              "This sign-in was already used",
              "amoCRM's codes work once. If the account is not connected yet, please start "
              "connecting again."};
    case Errc::kReauthRequired:
      return {409,
              ErrcCode(e),
              "amoCRM no longer accepts this account's refresh token; connect the account again.",
              "The account must be connected again",
              kStartAgain};
    case Errc::kAccountDisconnected:
      return {409,
              ErrcCode(e),
              "The account disconnected the integration in amoCRM and its tokens were erased; "
              "connect the account again.",
              "The account disconnected this integration",
              kStartAgain};
    case Errc::kRefreshDeferred:
      return {503,
              ErrcCode(e),
              "The access token expired and the last refresh failed; amoauth retries after a "
              "backoff (GET /v1/accounts/{id} shows the error and the next attempt).",
              "amoCRM could not be reached",
              kRetry};
    case Errc::kThrottled:
      return {503,
              ErrcCode(e),
              "Too many requests are waiting for this account under amoCRM's limit of requests "
              "per second; slow down or retry later.",
              "Too busy",
              kRetry};
    case Errc::kIntegrationUnknown:
      return {404,
              ErrcCode(e),
              "No integration with this client_id: neither AMO_CLIENT_ID nor an external "
              "integration created through a metadata button.",
              "Unknown integration",
              kStartAgain};
    case Errc::kIntegrationAmbiguous:
      return {409,
              ErrcCode(e),
              "This account is connected through several integrations; name one with the "
              "client_id query parameter or the X-Amoauth-Client-Id header.",
              "Several integrations",
              kStartAgain};
    case Errc::kSecretsNotReceived:
      return {504,
              ErrcCode(e),
              "amoCRM created the integration but its keys (the secrets webhook) did not arrive "
              "in time, so the code could not be exchanged.",
              "amoCRM did not finish creating the integration",
              "amoCRM did not send the new integration's keys to this site in time. Please start "
              "connecting again; if it happens again, tell the people who run this service."};
    case Errc::kSecretsAlreadyReceived:
      return {409,
              ErrcCode(e),
              "The keys for this authorization were received already; a second delivery is "
              "refused.",
              "Already done",
              kStartAgain};
    case Errc::kAmoCodeExpired:
      return {502,
              ErrcCode(e),
              "amoCRM says the authorization code has expired.",
              "The sign-in took too long",
              "amoCRM's codes live 20 minutes and this one expired. Please start connecting "
              "again."};
    case Errc::kAmoCodeRevoked:
      return {502,
              ErrcCode(e),
              "amoCRM says the authorization code was already used.",
              "This sign-in was already used",
              "amoCRM says this code was used before. Please start connecting again."};
    case Errc::kAmoCodeInvalid:
      return {502,
              ErrcCode(e),
              "amoCRM cannot read the authorization code.",
              "amoCRM did not recognise the sign-in",
              "The code in this link is not one amoCRM issued for this account. Please start "
              "connecting again."};
    case Errc::kAmoRedirectUriMismatch:
      return {502,
              ErrcCode(e),
              "amoCRM says the redirect_uri does not match the integration's Redirect URI "
              "(AMO_REDIRECT_URI must equal it byte for byte).",
              "The integration is set up inconsistently",
              "amoCRM and this service disagree on the integration's Redirect URI. Tell the "
              "people who run this service: AMO_REDIRECT_URI must match the integration's "
              "settings exactly."};
    case Errc::kAmoInvalidClient:
      return {502,
              ErrcCode(e),
              "amoCRM rejected the client id or secret (AMO_CLIENT_ID / AMO_CLIENT_SECRET).",
              "The integration's keys were rejected",
              "amoCRM does not accept this service's integration keys. Tell the people who run "
              "it."};
    case Errc::kAmoInvalidAccount:
      return {502,
              ErrcCode(e),
              "amoCRM says the code belongs to another account.",
              "The code does not belong to this account",
              kStartAgain};
    case Errc::kAmoTokenRevoked:
      return {502,
              ErrcCode(e),
              "amoCRM says the refresh token was revoked.",
              "Access was revoked",
              kStartAgain};
    case Errc::kAmoTokenNotLinked:
      return {502,
              ErrcCode(e),
              "amoCRM says the refresh token belongs to another integration.",
              "Access belongs to another integration",
              kStartAgain};
    case Errc::kAmoTokenExpired:
      return {502,
              ErrcCode(e),
              "amoCRM says the refresh token has expired.",
              "Access has expired",
              kStartAgain};
    case Errc::kAmoUnauthorized:
      return {502, ErrcCode(e), "amoCRM answered 401 Unauthorized.", "amoCRM said no", kStartAgain};
    case Errc::kAmoNotFound:
      return {502,
              ErrcCode(e),
              "amoCRM answered 404 Not Found for the account's host: the account may have been "
              "renamed or deleted.",
              "amoCRM does not know this account",
              kStartAgain};
    case Errc::kAmoRejected:
      return {502, ErrcCode(e), "amoCRM rejected the request.", "amoCRM said no", kStartAgain};
    case Errc::kAmoRateLimited:
      return {
          503, ErrcCode(e), "amoCRM is rate-limiting requests (429).", "amoCRM is busy", kRetry};
    case Errc::kAmoBlocked:
      return {503,
              ErrcCode(e),
              "amoCRM answered 403: the account or this server's IP is blocked.",
              "amoCRM refused access",
              "amoCRM is refusing requests for now. Please try again later."};
    case Errc::kAmoServerError:
      return {502,
              ErrcCode(e),
              "amoCRM answered with a server error (5xx).",
              "amoCRM had a problem",
              kRetry};
    case Errc::kAmoUnreachable:
      return {504,
              ErrcCode(e),
              "amoCRM could not be reached (network, TLS or timeout).",
              "amoCRM could not be reached",
              kRetry};
    case Errc::kAmoMalformedResponse:
      return {502,
              ErrcCode(e),
              "amoCRM answered something amoauth cannot read.",
              "amoCRM answered unexpectedly",
              kRetry};
    case Errc::kStoreFailure:
      return {500,
              ErrcCode(e),
              "amoauth's database failed; see its log.",
              "Something went wrong on our side",
              kRetry};
    case Errc::kCryptoFailure:
      return {500,
              ErrcCode(e),
              "A stored secret does not decrypt (wrong AMOAUTH_MASTER_KEY?); see the log.",
              "Something went wrong on our side",
              "Tell the people who run this service."};
    case Errc::kAmoApiKeyRejected:
      return {502,
              ErrcCode(e),
              "amoCRM refused to exchange the API key (400): check the login, the API key and "
              "the domain.",
              "amoCRM refused the API key",
              "Check the login and the API key."};
    case Errc::kAmoApiKeyForbidden:
      return {502,
              ErrcCode(e),
              "amoCRM refused to exchange the API key (403): the user lacks the rights, or the "
              "integration is not installed in this account.",
              "amoCRM refused the API key",
              "Install the integration in the account first."};
    case Errc::kAmoApiKeyTooOften:
      return {429,
              ErrcCode(e),
              "amoCRM answered 429: this user's API key was exchanged for this integration less "
              "than 5 minutes ago.",
              "Too soon",
              "Please try again in 5 minutes."};
    case Errc::kExchangeTooSoon:
      return {429,
              ErrcCode(e),
              "This user's API key was exchanged for this integration less than 5 minutes ago "
              "(amoCRM allows one exchange per 5 minutes); retry_at says when the next is "
              "allowed.",
              "Too soon",
              "Please try again in 5 minutes."};
    case Errc::kLongLivedTokenInvalid:
      return {400,
              ErrcCode(e),
              "The token is not an amoCRM access token: expected a JWT (three dot-separated "
              "parts) whose payload has account_id and aud, as the integration's Keys tab gives.",
              "This is not an amoCRM token",
              "Copy the long-lived token from the integration's Keys tab in amoCRM again."};
    case Errc::kLongLivedTokenDomain:
      return {400,
              ErrcCode(e),
              "Give domain, the account's host (e.g. example.amocrm.ru): the token names only its "
              "platform, and the host must be an allowed amoCRM/Kommo account host on the "
              "token's platform (its base_domain).",
              "The account's address is missing",
              "Give the address of the amoCRM account the token belongs to."};
    case Errc::kLongLivedTokenExpired:
      return {409,
              ErrcCode(e),
              "The long-lived token has expired; generate a new one in the integration's Keys "
              "tab and add it (POST /v1/long-lived-tokens).",
              "The token has expired",
              "Generate a new long-lived token in the integration's Keys tab in amoCRM."};
    case Errc::kLongLivedTokenRejected:
      return {409,
              ErrcCode(e),
              "amoCRM no longer accepts the account's long-lived token (revoked or expired); "
              "generate a new one in the integration's Keys tab and add it.",
              "amoCRM no longer accepts the token",
              "Generate a new long-lived token in the integration's Keys tab in amoCRM."};
    case Errc::kLongLivedTokenNotRefreshable:
      return {409,
              ErrcCode(e),
              "Long-lived tokens cannot be refreshed; add a new one (POST /v1/long-lived-tokens) "
              "before this one expires.",
              "This token cannot be refreshed",
              "Generate a new long-lived token in the integration's Keys tab in amoCRM."};
    case Errc::kLongLivedTokenReplacesOAuth:
      return {409,
              ErrcCode(e),
              "The account is connected through OAuth for this integration, with a refresh token "
              "amoauth keeps fresh; a long-lived token replaces only a long-lived token or a "
              "connection that is no longer active.",
              "Already connected",
              "This account is connected already; nothing was changed."};
  }
  return {500, ErrcCode(e), "Internal error.", "Something went wrong on our side", kRetry};
}

}  // namespace

ErrorView ViewOf(const boost::system::error_code& ec) {
  if (IsAmoauth(ec)) {
    return ViewOfErrc(static_cast<Errc>(ec.value()));
  }
  return {500,
          "internal_error",
          "Internal error; see amoauth's log.",
          "Something went wrong on our side",
          kRetry};
}

}  // namespace amoauth::web
