#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/core/site_button.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/integration_directory.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// What a backend needs to send a person to amoCRM's consent page.
struct ConnectStart {
  std::string authorize_url;
  std::string state;
  core::TimePoint expires_at{};
  std::string reference;  ///< the backend's own, as given to Start (empty: none)
};

/// A backend's reference for a connect flow: 1 to 200 bytes of UTF-8 text without control
/// characters (it travels in JSON, logs never show it). Form only; its meaning is the backend's.
[[nodiscard]] bool LooksLikeFlowReference(std::string_view reference);

/// The decoded query of a request to the Redirect URI (protocol §2.5). Absent parameters are
/// nullopt; amoCRM's availability probe sends none at all.
struct CallbackParams {
  std::optional<std::string> code;
  std::optional<std::string> referer;
  std::optional<std::string> state;
  std::optional<std::string> error;
  std::optional<std::string> platform;
  std::optional<std::string> client_id;
  std::optional<std::string> from_widget;
  std::optional<std::string> from_exchange;

  /// No parameter at all: amoCRM checking that the Redirect URI answers.
  [[nodiscard]] bool IsProbe() const;
};

/// What a button's state is for: a metadata button makes amoCRM create an external integration.
[[nodiscard]] inline StatePurpose PurposeOf(core::ButtonVariant variant) {
  return variant == core::ButtonVariant::kMetadata ? StatePurpose::kCreateIntegration
                                                   : StatePurpose::kConnect;
}

/// The body of amoCRM's secrets webhook (protocol §5): the keys of the external integration it
/// created for the authorization that carried `state`.
struct SecretsDelivery {
  std::string client_id;
  Secret client_secret;
  std::string state;
};

/// How a callback ended, and in which mode the person's consent window was opened (the state's
/// mode; popup when no state of ours came back). The page answers differently per mode.
struct CallbackOutcome {
  core::ConsentMode mode = core::ConsentMode::kPopup;
  Result<core::Connection> connection = Fail(Errc::kStateInvalid);
};

/// Connect → exchange → store: every way a code becomes a stored connection.
/// Thread-safe; holds references to ports that must outlive it.
class ConnectFlow {
 public:
  ConnectFlow(IntegrationDirectory& integrations,
              FlowSettings settings,
              core::RefererPolicy referer_policy,
              StateStore& states,
              CodeLedger& codes,
              ConnectionStore& connections,
              AmoClient& amo,
              const EventFactory& events,
              const core::Clock& clock,
              core::Random& random);

  /// Mints a single-use state (stored by hash, expiring after settings.state_ttl) and, for
  /// kConnect, the consent URL carrying it (a metadata button builds its own URL: authorize_url
  /// is empty for kCreateIntegration). `reference`, the backend's own name for this flow (its
  /// user's id, say; LooksLikeFlowReference), is kept with the state and handed back in
  /// account.connected's data when the flow connects an account.
  /// Errors: Errc::kInvalidArgument (a reference of the wrong form), Errc::kBusy,
  /// Errc::kStoreFailure.
  Task<Result<ConnectStart>> Start(core::ConsentMode mode,
                                   StatePurpose purpose = StatePurpose::kConnect,
                                   std::string reference = {});

  /// A person came back from the consent page. Checks, in this order and before anything goes
  /// out: error=… (→ kAccessDenied, the state is consumed), a code is present
  /// (kInvalidArgument), the referer is an allowed account host (kRefererNotAllowed), the state is
  /// one we issued and have not seen (kStateInvalid, consumed now). Then exchanges the code once,
  /// for a metadata state with the keys of the integration amoCRM created for it — waiting up to
  /// settings.secrets_wait for them if the code came first (kSecretsNotReceived).
  Task<CallbackOutcome> CompleteCallback(CallbackParams params);

  /// amoCRM's secrets webhook (protocol §5). Accepted only for a pending state we issued for a
  /// metadata button (else kStateInvalid: forged, expired, or already used by its redirect), and
  /// only once per state (kSecretsAlreadyReceived); malformed keys are kInvalidArgument. The
  /// client secret is stored sealed.
  Task<Result<void>> AcceptSecrets(SecretsDelivery delivery);

  /// A code copied from the integration's window (seed 001, way 2): no state exists.
  Task<Result<core::Connection>> ExchangePastedCode(Secret code, std::string referer);

  /// A code from the durable queue (the widget-install or exchange_api_key hook; no state
  /// exists). `host` was allowed by the RefererPolicy before the code was queued; `client_id` is
  /// the integration it was issued to (kIntegrationUnknown if it is none of ours: nothing is
  /// sent). The first attempt goes through the CodeLedger like every code; a retry skips it (the
  /// ledger holds the code since the first attempt, which was the queue's own).
  Task<Result<core::Connection>> ExchangeQueuedCode(Secret code,
                                                    core::AccountHost host,
                                                    std::string client_id,
                                                    bool first_attempt);

  /// The configured integration.
  [[nodiscard]] const Integration& GetIntegration() const { return integrations_.Primary(); }
  [[nodiscard]] const core::RefererPolicy& GetRefererPolicy() const { return referer_policy_; }

 private:
  /// Each code goes to amoCRM at most once (the CodeLedger), then ExchangeAndStore.
  Task<Result<core::Connection>> Exchange(core::AccountHost host,
                                          Secret code,
                                          const Integration& integration,
                                          std::string reference = {});
  /// Exchange without the ledger: amoCRM, then the row and account.connected (whose data names
  /// `reference`, the flow's, when there is one).
  Task<Result<core::Connection>> ExchangeAndStore(core::AccountHost host,
                                                  Secret code,
                                                  const Integration& integration,
                                                  std::string reference = {});
  /// The integration amoCRM created for a metadata state, once its keys are stored.
  Task<Result<Integration>> WaitForSecrets(std::string state_hash);

  IntegrationDirectory& integrations_;
  FlowSettings settings_;
  core::RefererPolicy referer_policy_;
  StateStore& states_;
  CodeLedger& codes_;
  ConnectionStore& connections_;
  AmoClient& amo_;
  const EventFactory& events_;
  const core::Clock& clock_;
  core::Random& random_;
};

}  // namespace amoauth::service
