#include "amoauth/service/connect_flow.hpp"

#include <spdlog/spdlog.h>

#include "amoauth/core/access_token_claims.hpp"
#include "amoauth/core/authorize_url.hpp"
#include "amoauth/core/state_token.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/service/connection_builder.hpp"

namespace amoauth::service {

bool CallbackParams::IsProbe() const {
  return !code && !referer && !state && !error && !platform && !client_id && !from_widget &&
         !from_exchange;
}

ConnectFlow::ConnectFlow(Integration integration,
                         FlowSettings settings,
                         core::RefererPolicy referer_policy,
                         StateStore& states,
                         CodeLedger& codes,
                         ConnectionStore& connections,
                         AmoClient& amo,
                         const EventFactory& events,
                         const core::Clock& clock,
                         core::Random& random)
    : integration_(std::move(integration)),
      settings_(settings),
      referer_policy_(std::move(referer_policy)),
      states_(states),
      codes_(codes),
      connections_(connections),
      amo_(amo),
      events_(events),
      clock_(clock),
      random_(random) {}

Task<Result<ConnectStart>> ConnectFlow::Start(core::ConsentMode mode) {
  const auto now = clock_.Now();
  std::string state = core::GenerateState(random_);
  PendingState pending{
      .state_hash = core::HashState(state),
      .client_id = integration_.client_id,
      .mode = mode,
      .created_at = now,
      .expires_at = now + settings_.state_ttl,
  };
  const auto expires_at = pending.expires_at;
  auto stored = co_await states_.Put(std::move(pending), now);
  if (!stored) {
    co_return stored.error();
  }
  std::string url = core::BuildAuthorizeUrl({
      .consent_url = integration_.consent_url,
      .client_id = integration_.client_id,
      .state = state,
      .mode = mode,
  });
  co_return ConnectStart{std::move(url), std::move(state), expires_at};
}

Task<Result<core::Connection>> ConnectFlow::CompleteCallback(CallbackParams params) {
  if (params.error) {
    // The person said no. Consume the state so the link cannot be replayed, then report.
    if (params.state && core::LooksLikeState(*params.state)) {
      std::string hash = core::HashState(*params.state);
      auto taken = co_await states_.Take(std::move(hash), clock_.Now());
      (void)taken;  // a failure here changes nothing for the person: access was not granted
    }
    co_return Fail(Errc::kAccessDenied);
  }
  if (!params.code || params.code->empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  // The referer decides where client_secret goes: check it before anything else leaves.
  auto host = referer_policy_.Check(params.referer.value_or(""));
  if (!host) {
    spdlog::warn("callback refused: referer is not an allowed amoCRM/Kommo account host");
    co_return host.error();
  }
  if (!params.state || !core::LooksLikeState(*params.state)) {
    co_return Fail(Errc::kStateInvalid);
  }
  std::string state_hash = core::HashState(*params.state);
  auto pending = co_await states_.Take(std::move(state_hash), clock_.Now());
  if (!pending) {
    co_return pending.error();
  }
  if (!*pending || (*pending)->client_id != integration_.client_id) {
    co_return Fail(Errc::kStateInvalid);
  }
  Secret code(std::move(*params.code));
  co_return co_await Exchange(std::move(*host), std::move(code));
}

Task<Result<core::Connection>> ConnectFlow::ExchangePastedCode(Secret code, std::string referer) {
  if (code.Empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  auto host = referer_policy_.Check(referer);
  if (!host) {
    co_return host.error();
  }
  co_return co_await Exchange(std::move(*host), std::move(code));
}

Task<Result<core::Connection>> ConnectFlow::Exchange(core::AccountHost host, Secret code) {
  // Each code goes to amoCRM at most once, whatever reloads or duplicate deliveries happen.
  std::string code_hash = crypto::Sha256Hex(code.Reveal());
  auto first_use = co_await codes_.MarkUsed(std::move(code_hash), clock_.Now());
  if (!first_use) {
    co_return first_use.error();
  }
  if (!*first_use) {
    co_return Fail(Errc::kCodeAlreadyUsed);
  }
  co_return co_await ExchangeAndStore(std::move(host), std::move(code));
}

Task<Result<core::Connection>> ConnectFlow::ExchangeAndStore(core::AccountHost host, Secret code) {
  core::AuthorizationCodeGrant request{
      .client_id = integration_.client_id,
      .client_secret = integration_.client_secret,
      .code = std::move(code),
      .redirect_uri = integration_.redirect_uri,
  };
  std::string account_host = host.host;
  auto grant = co_await amo_.ExchangeCode(std::move(account_host), std::move(request));
  if (!grant) {
    co_return grant.error();
  }
  auto connection = BuildConnection(*grant, host.host, integration_.client_id, clock_.Now());
  if (!connection) {
    co_return connection.error();
  }
  connection->last_refresh_at = connection->created_at = clock_.Now();
  connection->next_refresh_at = core::NextRefreshAt(*connection, settings_.refresh);
  auto events = events_.Make(event_type::kAccountConnected, *connection);
  auto stored = co_await connections_.Upsert(std::move(*connection), std::move(events));
  if (stored) {
    spdlog::info("account {} ({}) connected", stored->account_id, stored->base_domain);
  }
  co_return stored;
}

Task<Result<core::Connection>> ConnectFlow::ExchangeQueuedCode(Secret code,
                                                               core::AccountHost host,
                                                               std::string client_id,
                                                               bool first_attempt) {
  if (code.Empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  if (client_id != integration_.client_id) {
    spdlog::warn("queued code for {} refused: it was issued to integration {}, not ours ({})",
                 host.host,
                 client_id,
                 integration_.client_id);
    co_return Fail(Errc::kInvalidArgument);
  }
  if (first_attempt) {
    co_return co_await Exchange(std::move(host), std::move(code));
  }
  // A retry: the ledger has held this code since the first attempt, which was ours (the queue
  // claims each entry for one worker at a time).
  co_return co_await ExchangeAndStore(std::move(host), std::move(code));
}

}  // namespace amoauth::service
