#pragma once

#include <string>

#include "amoauth/core/platform.hpp"

namespace amoauth::core {

/// The standard (client_id) variant of the consent URL, protocol §2.1:
///   {consent_url}?client_id=…&state=…&mode=popup|post_message
/// Every value is percent-encoded (Boost.URL). `consent_url` is DefaultConsentUrl() in
/// production and the sandbox's /oauth in sandbox mode; it may already carry a query.
struct AuthorizeUrlParams {
  std::string consent_url;
  std::string client_id;
  std::string state;
  ConsentMode mode = ConsentMode::kPopup;
};

[[nodiscard]] std::string BuildAuthorizeUrl(const AuthorizeUrlParams& p);

}  // namespace amoauth::core
