#pragma once

#include <chrono>
#include <string>

#include "amoauth/core/platform.hpp"
#include "amoauth/core/refresh_policy.hpp"
#include "amoauth/core/secret.hpp"

namespace amoauth::service {

/// The integration amoauth acts for (AMO_CLIENT_ID, AMO_CLIENT_SECRET, AMO_REDIRECT_URI).
struct Integration {
  core::Platform platform = core::Platform::kAmocrm;
  std::string client_id;
  Secret client_secret;
  /// Must equal the Redirect URI in the integration's settings byte for byte (protocol §9.4).
  std::string redirect_uri;
  /// Consent page the authorize URL points to: amoCRM's in production, the sandbox's in sandbox
  /// mode.
  std::string consent_url;
};

struct FlowSettings {
  /// How long a state we issued stays usable; amoCRM's codes live 20 minutes, so longer is useless.
  std::chrono::seconds state_ttl{20 * 60};
  /// When tokens are refreshed: on demand (margin), ahead of expiry, keepalive, backoff.
  core::RefreshPolicy refresh;
  /// How long one process may hold an account's refresh lease. Longer than a refresh can take
  /// (the amoCRM request timeout), so that a lease never ends under a live refresh.
  std::chrono::seconds lease_ttl{60};
  /// How long after its holder is seen dead (HolderLiveness) a lease is taken over, before its
  /// end: the time a refresh the holder sent just before it died takes to reach amoCRM and be
  /// answered (the amoCRM request timeout), so that it cannot race the one we send.
  std::chrono::milliseconds dead_holder_grace{15'000};
  /// How long a redirect for a metadata-button state waits for the new integration's keys (the
  /// secrets webhook, protocol §5) when the code arrives first.
  std::chrono::milliseconds secrets_wait{10'000};
  /// Names this process in refresh leases (HolderLiveness's form); unique per process.
  std::string instance_id = "amoauth";
};

}  // namespace amoauth::service
