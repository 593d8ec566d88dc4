#pragma once

#include <optional>
#include <string>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// What became of a request to exchange an API key.
struct ApiKeyExchangeOutcome {
  /// True: amoCRM accepted it (202) and will send the code to the Redirect URI with
  /// from_exchange=1. False: throttled — amoCRM's limit of one exchange per 5 minutes per (user,
  /// integration) is still running (our copy of it, or amoCRM's own 429); nothing was sent.
  bool requested = false;
  /// When the next exchange for this (user, integration) is allowed.
  core::TimePoint next_allowed_at{};
};

/// What POST /v1/legacy-login answers (seed 004: a backend that accepts both API keys and OAuth).
struct LegacyLoginOutcome {
  /// The exchange; nullopt when it failed, and then `exchange_error` says why (amoCRM refused
  /// the key, was unreachable, …).
  std::optional<ApiKeyExchangeOutcome> exchange;
  boost::system::error_code exchange_error;
  /// This integration's stored connection for the account host, if any (any status).
  std::optional<core::Connection> connection;
};

/// Legacy API keys → OAuth (protocol §6, seeds 003 and 004). Holds amoCRM's limit locally, across
/// processes (ExchangeQuota), so amoCRM never sees a second call within 5 minutes from us.
/// The API key and the client secret go only to allow-listed account hosts, and never to a log.
/// Thread-safe; the ports must outlive it.
class ApiKeyExchange {
 public:
  ApiKeyExchange(Integration integration,
                 core::RefererPolicy referer_policy,
                 AmoClient& amo,
                 ExchangeQuota& quota,
                 ConnectionStore& connections,
                 const core::Clock& clock);

  /// POST https://{domain}/oauth2/exchange_api_key for our integration, unless the limit holds.
  /// Errors: Errc::kInvalidArgument (empty login or key), kRefererNotAllowed (domain),
  /// kAmoApiKeyRejected, kAmoApiKeyForbidden, kAmoServerError, kAmoRejected, kAmoUnreachable,
  /// the store's. A throttled call is not an error: `requested` is false.
  Task<Result<ApiKeyExchangeOutcome>> Request(std::string login,
                                              Secret api_key,
                                              std::string domain);

  /// Request, and this integration's connection for `domain`. Errors: only kInvalidArgument,
  /// kRefererNotAllowed and the store's; the exchange's own failure is in the outcome.
  Task<Result<LegacyLoginOutcome>> LegacyLogin(std::string login,
                                               Secret api_key,
                                               std::string domain);

 private:
  Integration integration_;
  core::RefererPolicy referer_policy_;
  AmoClient& amo_;
  ExchangeQuota& quota_;
  ConnectionStore& connections_;
  const core::Clock& clock_;
};

}  // namespace amoauth::service
