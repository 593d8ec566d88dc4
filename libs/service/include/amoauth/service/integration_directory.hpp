#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "amoauth/service/integration.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// Every integration amoauth acts for: the configured one (AMO_CLIENT_ID…) and the external
/// integrations amoCRM created through metadata buttons (protocol §2.2, §5). Tokens are keyed by
/// (account, integration), so refreshing or verifying a hook first finds the row's integration
/// here. External integrations share the configured one's platform, Redirect URI and consent page;
/// only the client id and secret differ. Thread-safe.
class IntegrationDirectory {
 public:
  /// `store` must outlive the directory.
  IntegrationDirectory(Integration primary, IntegrationStore& store);

  /// The configured integration: the one that issues states and receives the widget hook.
  [[nodiscard]] const Integration& Primary() const { return primary_; }

  /// The integration with `client_id`. Errors: Errc::kIntegrationUnknown, store failures.
  Task<Result<Integration>> Resolve(std::string client_id);

  /// The integration an external integration's keys make.
  [[nodiscard]] Integration External(const ExternalIntegration& external) const;

  /// Stores a new external integration (the secrets webhook). On the way, forgets those created
  /// over kUnusedIntegrationLifetime before it that no connection uses: anyone can have a
  /// metadata state minted and deliver keys for it, so rows nobody connected must not pile up.
  /// Errors: those of IntegrationStore::AddIntegration.
  Task<Result<void>> Add(ExternalIntegration external);

  /// How long an external integration may stay without a connection: far beyond its state's
  /// 20 minutes and the redirect's wait for the keys.
  static constexpr std::chrono::hours kUnusedIntegrationLifetime{1};

  /// The external integration created for `state_hash`, if its keys have arrived.
  Task<Result<std::optional<Integration>>> ForState(std::string state_hash);

 private:
  Integration primary_;
  IntegrationStore& store_;
  // An external integration's credentials never change once stored, so a found one is kept.
  std::mutex mutex_;
  std::map<std::string, Integration, std::less<>> known_;
};

}  // namespace amoauth::service
