#pragma once

#include <chrono>
#include <string>

#include "amoauth/core/platform.hpp"
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
  /// /token and the proxy refresh an access token this close to its expiry.
  std::chrono::seconds refresh_margin{5 * 60};
};

}  // namespace amoauth::service
