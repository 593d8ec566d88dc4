#pragma once

#include <optional>
#include <string>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// What a backend needs to send a person to amoCRM's consent page.
struct ConnectStart {
  std::string authorize_url;
  std::string state;
  core::TimePoint expires_at{};
};

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

/// Connect → exchange → store: every way a code becomes a stored connection.
/// Thread-safe; holds references to ports that must outlive it.
class ConnectFlow {
 public:
  ConnectFlow(Integration integration,
              FlowSettings settings,
              core::RefererPolicy referer_policy,
              StateStore& states,
              CodeLedger& codes,
              ConnectionStore& connections,
              AmoClient& amo,
              const EventFactory& events,
              const core::Clock& clock,
              core::Random& random);

  /// Mints a single-use state (stored by hash, expiring after settings.state_ttl) and the
  /// consent URL carrying it. Errors: Errc::kBusy, Errc::kStoreFailure.
  Task<Result<ConnectStart>> Start(core::ConsentMode mode);

  /// A person came back from the consent page. Checks, in this order and before anything goes
  /// out: error=… (→ kAccessDenied, the state is consumed), a code is present
  /// (kInvalidArgument), the referer is an allowed account host (kRefererNotAllowed), the state is
  /// one we issued and have not seen (kStateInvalid, consumed now). Then exchanges the code once.
  Task<Result<core::Connection>> CompleteCallback(CallbackParams params);

  /// A code copied from the integration's window (seed 001, way 2): no state exists.
  Task<Result<core::Connection>> ExchangePastedCode(Secret code, std::string referer);

  /// A code from the durable queue (the widget-install or exchange_api_key hook; no state
  /// exists). `host` was allowed by the RefererPolicy before the code was queued; `client_id` is
  /// the integration it was issued to (kInvalidArgument if that is not ours: nothing is sent). The
  /// first attempt
  /// goes through the CodeLedger like every code; a retry skips it (the ledger holds the code
  /// since the first attempt, which was the queue's own).
  Task<Result<core::Connection>> ExchangeQueuedCode(Secret code,
                                                    core::AccountHost host,
                                                    std::string client_id,
                                                    bool first_attempt);

  [[nodiscard]] const Integration& GetIntegration() const { return integration_; }
  [[nodiscard]] const core::RefererPolicy& GetRefererPolicy() const { return referer_policy_; }

 private:
  Task<Result<core::Connection>> Exchange(core::AccountHost host, Secret code);
  /// Exchange without the ledger: amoCRM, then the row and account.connected.
  Task<Result<core::Connection>> ExchangeAndStore(core::AccountHost host, Secret code);

  Integration integration_;
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
