#include "amoauth/service/connect_flow.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
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

namespace {

/// How often a redirect that came before its secrets looks again (across processes the store is
/// the only channel, so this is a poll; it ends as soon as the keys are there).
constexpr std::chrono::milliseconds kSecretsPoll{50};

/// amoCRM's client ids are UUIDs; accept any short id of letters, digits and dashes.
bool LooksLikeClientId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
  });
}

/// A secret is printable ASCII of sane length: it goes into JSON bodies and HMAC keys.
bool LooksLikeClientSecret(std::string_view secret) {
  return !secret.empty() && secret.size() <= 512 &&
         std::all_of(secret.begin(), secret.end(), [](char c) { return c > ' ' && c < 127; });
}

}  // namespace

ConnectFlow::ConnectFlow(IntegrationDirectory& integrations,
                         FlowSettings settings,
                         core::RefererPolicy referer_policy,
                         StateStore& states,
                         CodeLedger& codes,
                         ConnectionStore& connections,
                         AmoClient& amo,
                         const EventFactory& events,
                         const core::Clock& clock,
                         core::Random& random)
    : integrations_(integrations),
      settings_(settings),
      referer_policy_(std::move(referer_policy)),
      states_(states),
      codes_(codes),
      connections_(connections),
      amo_(amo),
      events_(events),
      clock_(clock),
      random_(random) {}

bool LooksLikeFlowReference(std::string_view reference) {
  constexpr std::size_t kMaxReference = 200;
  if (reference.empty() || reference.size() > kMaxReference) {
    return false;
  }
  return std::none_of(reference.begin(), reference.end(), [](char ch) {
    const auto byte = static_cast<unsigned char>(ch);
    return byte < 0x20 || byte == 0x7f;
  });
}

Task<Result<ConnectStart>> ConnectFlow::Start(core::ConsentMode mode,
                                              StatePurpose purpose,
                                              std::string reference) {
  if (!reference.empty() && !LooksLikeFlowReference(reference)) {
    co_return Fail(Errc::kInvalidArgument);
  }
  const auto now = clock_.Now();
  const Integration& integration = integrations_.Primary();
  std::string state = core::GenerateState(random_);
  PendingState pending{
      .state_hash = core::HashState(state),
      .client_id = integration.client_id,
      .mode = mode,
      .purpose = purpose,
      .created_at = now,
      .expires_at = now + settings_.state_ttl,
      .reference = reference,
  };
  const auto expires_at = pending.expires_at;
  auto stored = co_await states_.Put(std::move(pending), now);
  if (!stored) {
    co_return stored.error();
  }
  std::string url;
  if (purpose == StatePurpose::kConnect) {
    url = core::BuildAuthorizeUrl({
        .consent_url = integration.consent_url,
        .client_id = integration.client_id,
        .state = state,
        .mode = mode,
    });
  }
  co_return ConnectStart{std::move(url), std::move(state), expires_at, std::move(reference)};
}

Task<CallbackOutcome> ConnectFlow::CompleteCallback(CallbackParams params) {
  CallbackOutcome outcome;
  if (params.error) {
    // The person said no. Consume the state so the link cannot be replayed, then report.
    if (params.state && core::LooksLikeState(*params.state)) {
      std::string hash = core::HashState(*params.state);
      auto taken = co_await states_.Take(std::move(hash), clock_.Now());
      // A failure here changes nothing for the person: access was not granted.
      if (taken && *taken) {
        outcome.mode = (*taken)->mode;
      }
    }
    outcome.connection = Fail(Errc::kAccessDenied);
    co_return outcome;
  }
  if (!params.code || params.code->empty()) {
    outcome.connection = Fail(Errc::kInvalidArgument);
    co_return outcome;
  }
  // The referer decides where client_secret goes: check it before anything else leaves.
  auto host = referer_policy_.Check(params.referer.value_or(""));
  if (!host) {
    spdlog::warn("callback refused: referer is not an allowed amoCRM/Kommo account host");
    outcome.connection = host.error();
    co_return outcome;
  }
  if (!params.state || !core::LooksLikeState(*params.state)) {
    outcome.connection = Fail(Errc::kStateInvalid);
    co_return outcome;
  }
  std::string state_hash = core::HashState(*params.state);
  // A metadata state must stay pending while its redirect waits for the keys: the secrets
  // webhook accepts keys only for a pending state. So look first, wait, and take it after.
  std::optional<Integration> created;
  auto peeked = co_await states_.Peek(state_hash, clock_.Now());
  if (!peeked) {
    outcome.connection = peeked.error();
    co_return outcome;
  }
  if (*peeked && (*peeked)->purpose == StatePurpose::kCreateIntegration) {
    outcome.mode = (*peeked)->mode;
    auto keys = co_await WaitForSecrets(state_hash);
    if (!keys) {
      spdlog::warn("callback for a new external integration: {}", keys.error().message());
      outcome.connection = keys.error();
      co_return outcome;
    }
    created = std::move(*keys);
  }
  auto pending = co_await states_.Take(std::move(state_hash), clock_.Now());
  if (!pending) {
    outcome.connection = pending.error();
    co_return outcome;
  }
  if (!*pending || (*pending)->client_id != integrations_.Primary().client_id) {
    outcome.connection = Fail(Errc::kStateInvalid);
    co_return outcome;
  }
  outcome.mode = (*pending)->mode;
  Secret code(std::move(*params.code));
  if ((*pending)->purpose == StatePurpose::kConnect) {
    outcome.connection = co_await Exchange(
        std::move(*host), std::move(code), GetIntegration(), std::move((*pending)->reference));
    co_return outcome;
  }
  if (!created) {
    // Issued for a metadata button, but seen as something else a moment ago: refuse.
    outcome.connection = Fail(Errc::kStateInvalid);
    co_return outcome;
  }
  if (params.client_id && *params.client_id != created->client_id) {
    // amoCRM names the integration the code is for; it must be the one whose keys we hold.
    spdlog::warn("callback refused: its client_id is not the integration created for its state");
    outcome.connection = Fail(Errc::kStateInvalid);
    co_return outcome;
  }
  outcome.connection = co_await Exchange(
      std::move(*host), std::move(code), *created, std::move((*pending)->reference));
  co_return outcome;
}

Task<Result<Integration>> ConnectFlow::WaitForSecrets(std::string state_hash) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + settings_.secrets_wait;
  for (;;) {
    auto found = co_await integrations_.ForState(state_hash);
    if (!found) {
      co_return found.error();
    }
    if (*found) {
      co_return std::move(**found);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      co_return Fail(Errc::kSecretsNotReceived);
    }
    timer.expires_after(
        std::min<std::chrono::steady_clock::duration>(kSecretsPoll, deadline - now));
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

Task<Result<void>> ConnectFlow::AcceptSecrets(SecretsDelivery delivery) {
  if (!LooksLikeClientId(delivery.client_id) ||
      !LooksLikeClientSecret(delivery.client_secret.Reveal())) {
    co_return Fail(Errc::kInvalidArgument);
  }
  if (!core::LooksLikeState(delivery.state)) {
    co_return Fail(Errc::kStateInvalid);
  }
  std::string state_hash = core::HashState(delivery.state);
  const auto now = clock_.Now();
  auto pending = co_await states_.Peek(state_hash, now);
  if (!pending) {
    co_return pending.error();
  }
  if (!*pending || (*pending)->purpose != StatePurpose::kCreateIntegration ||
      (*pending)->client_id != integrations_.Primary().client_id) {
    co_return Fail(Errc::kStateInvalid);
  }
  ExternalIntegration external{
      .client_id = std::move(delivery.client_id),
      .client_secret = std::move(delivery.client_secret),
      .state_hash = std::move(state_hash),
      .created_at = now,
  };
  const std::string client_id = external.client_id;
  auto added = co_await integrations_.Add(std::move(external));
  if (added) {
    spdlog::info("external integration {} created by amoCRM; its keys are stored", client_id);
  }
  co_return added;
}

Task<Result<core::Connection>> ConnectFlow::ExchangePastedCode(Secret code, std::string referer) {
  if (code.Empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  auto host = referer_policy_.Check(referer);
  if (!host) {
    co_return host.error();
  }
  co_return co_await Exchange(std::move(*host), std::move(code), GetIntegration());
}

Task<Result<core::Connection>> ConnectFlow::Exchange(core::AccountHost host,
                                                     Secret code,
                                                     const Integration& integration,
                                                     std::string reference) {
  // Each code goes to amoCRM at most once, whatever reloads or duplicate deliveries happen.
  std::string code_hash = crypto::Sha256Hex(code.Reveal());
  auto first_use = co_await codes_.MarkUsed(std::move(code_hash), clock_.Now());
  if (!first_use) {
    co_return first_use.error();
  }
  if (!*first_use) {
    co_return Fail(Errc::kCodeAlreadyUsed);
  }
  co_return co_await ExchangeAndStore(
      std::move(host), std::move(code), integration, std::move(reference));
}

Task<Result<core::Connection>> ConnectFlow::ExchangeAndStore(core::AccountHost host,
                                                             Secret code,
                                                             const Integration& integration,
                                                             std::string reference) {
  core::AuthorizationCodeGrant request{
      .client_id = integration.client_id,
      .client_secret = integration.client_secret,
      .code = std::move(code),
      .redirect_uri = integration.redirect_uri,
  };
  std::string account_host = host.host;
  auto grant = co_await amo_.ExchangeCode(std::move(account_host), std::move(request));
  if (!grant) {
    co_return grant.error();
  }
  auto connection = BuildConnection(*grant, host.host, integration.client_id, clock_.Now());
  if (!connection) {
    co_return connection.error();
  }
  connection->last_refresh_at = connection->created_at = clock_.Now();
  connection->next_refresh_at = core::NextRefreshAt(*connection, settings_.refresh);
  // The flow's reference tells the backend whose flow this was (security.md, threat 1).
  const std::string data =
      reference.empty()
          ? std::string()
          : boost::json::serialize(boost::json::object{{"reference", std::move(reference)}});
  auto events = events_.Make(event_type::kAccountConnected, *connection, data);
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
  // The widget hook goes to the configured integration's Redirect URI, but amoCRM may name an
  // external integration of ours (Kommo adds client_id): exchange with that one's keys.
  auto integration = co_await integrations_.Resolve(client_id);
  if (!integration) {
    spdlog::warn("queued code for {} refused: it was issued to integration {}, which is not ours",
                 host.host,
                 client_id);
    co_return integration.error();
  }
  if (first_attempt) {
    co_return co_await Exchange(std::move(host), std::move(code), *integration);
  }
  // A retry: the ledger has held this code since the first attempt, which was ours (the queue
  // claims each entry for one worker at a time).
  co_return co_await ExchangeAndStore(std::move(host), std::move(code), *integration);
}

}  // namespace amoauth::service
