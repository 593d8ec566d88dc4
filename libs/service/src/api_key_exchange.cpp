#include "amoauth/service/api_key_exchange.hpp"

#include <spdlog/spdlog.h>

#include "amoauth/core/api_key_exchange.hpp"

namespace amoauth::service {

ApiKeyExchange::ApiKeyExchange(Integration integration,
                               core::RefererPolicy referer_policy,
                               AmoClient& amo,
                               ExchangeQuota& quota,
                               ConnectionStore& connections,
                               const core::Clock& clock)
    : integration_(std::move(integration)),
      referer_policy_(std::move(referer_policy)),
      amo_(amo),
      quota_(quota),
      connections_(connections),
      clock_(clock) {}

Task<Result<ApiKeyExchangeOutcome>> ApiKeyExchange::Request(std::string login,
                                                            Secret api_key,
                                                            std::string domain) {
  if (login.empty() || api_key.Empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  // The API key and our client secret go to this host: it must be an account host we trust.
  auto host = referer_policy_.Check(domain);
  if (!host) {
    co_return host.error();
  }
  const core::TimePoint now = clock_.Now();
  const core::Seconds interval = core::kApiKeyExchangeInterval;
  const std::string subject = core::ApiKeyExchangeSubject(login, integration_.client_id);
  std::string taking = subject;
  auto taken = co_await quota_.TryTake(std::move(taking), now, interval);
  if (!taken) {
    co_return taken.error();
  }
  if (*taken) {
    spdlog::info("exchange_api_key for {}: throttled locally until the 5-minute limit ends",
                 host->host);
    co_return ApiKeyExchangeOutcome{.requested = false, .next_allowed_at = **taken};
  }
  core::ApiKeyExchangeRequest request{
      .login = std::move(login),
      .api_key = std::move(api_key),
      .client_uuid = integration_.client_id,
      .client_secret = integration_.client_secret,
      .state = {},
  };
  std::string account_host = host->host;
  auto sent = co_await amo_.ExchangeApiKey(std::move(account_host), std::move(request));
  if (!sent) {
    if (Is(sent.error(), Errc::kAmoApiKeyTooOften)) {
      // amoCRM counted a call we did not make (another system, or a lost quota): its limit is
      // ours now too, and the slot we just took holds it.
      co_return ApiKeyExchangeOutcome{.requested = false, .next_allowed_at = now + interval};
    }
    if (Is(sent.error(), Errc::kAmoUnreachable) || Is(sent.error(), Errc::kAmoServerError)) {
      // amoCRM did not process the call (no answer, a timeout, a 5xx): it counted nothing, so
      // neither do we, and the caller may retry at once. A definite answer (400, 403, another
      // 4xx) keeps the slot: amoCRM saw the call.
      std::string giving = subject;
      if (auto given = co_await quota_.GiveBack(std::move(giving), now); !given) {
        spdlog::warn("exchange_api_key for {}: the 5-minute slot was not given back: {}",
                     host->host,
                     given.error().message());
      }
    }
    co_return sent.error();
  }
  spdlog::info("exchange_api_key for {}: accepted; the code follows to the Redirect URI",
               host->host);
  co_return ApiKeyExchangeOutcome{.requested = true, .next_allowed_at = now + interval};
}

Task<Result<LegacyLoginOutcome>> ApiKeyExchange::LegacyLogin(std::string login,
                                                             Secret api_key,
                                                             std::string domain) {
  if (login.empty() || api_key.Empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  auto host = referer_policy_.Check(domain);
  if (!host) {
    co_return host.error();
  }
  LegacyLoginOutcome outcome;
  std::string base_domain = host->host;
  auto rows = co_await connections_.FindByDomain(std::move(base_domain));
  if (!rows) {
    co_return rows.error();
  }
  for (core::Connection& row : *rows) {
    if (row.client_id == integration_.client_id) {
      outcome.connection = std::move(row);
      break;
    }
  }
  // Seed 004: convert on every call of the legacy login; the limit makes most of them no-ops.
  auto exchange = co_await Request(std::move(login), std::move(api_key), std::move(host->host));
  if (exchange) {
    outcome.exchange = *exchange;
  } else {
    outcome.exchange_error = exchange.error();
  }
  co_return outcome;
}

}  // namespace amoauth::service
