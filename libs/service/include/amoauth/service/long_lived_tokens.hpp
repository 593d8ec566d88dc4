#pragma once

#include <string>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/core/secret.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/integration_directory.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// Adds long-lived tokens (protocol §7.5): made by an admin in a private or external integration's
/// "Keys" tab, valid until 00:00 UTC of a chosen day, with no refresh token. amoauth stores one as
/// an active connection that is never refreshed; AccountService hands it out until it expires and
/// the scheduler warns ahead of that (core/expiry_warnings.hpp). Thread-safe.
class LongLivedTokens {
 public:
  /// Everything must outlive this object.
  LongLivedTokens(IntegrationDirectory& integrations,
                  core::RefererPolicy referer_policy,
                  ConnectionStore& connections,
                  const EventFactory& events,
                  const core::Clock& clock);

  /// Reads the token's claims (its signature is not checked: amoCRM publishes no key, §4) and
  /// stores it for (account_id, aud) with expires_at = exp and the first expiry visit as
  /// next_refresh_at; account.connected (and token.expiring when it has 7 days or less left) go
  /// out in the same transaction. The account host is `domain` when given; otherwise the host the
  /// account already has in amoauth (the token carries only the platform, base_domain). Either
  /// must pass the referer policy and sit under the token's base_domain. Errors, nothing stored:
  /// kLongLivedTokenInvalid (not a JWT with account_id, aud and exp), kLongLivedTokenExpired,
  /// kIntegrationUnknown (aud is none of our integrations), kLongLivedTokenDomain,
  /// kLongLivedTokenReplacesOAuth (the account has an active OAuth connection through that
  /// integration), store failures.
  Task<Result<core::Connection>> Add(Secret token, std::string domain);

 private:
  /// The account host to store, or why there is none.
  Task<Result<std::string>> HostFor(std::int64_t account_id,
                                    std::string base_domain,
                                    std::string domain);

  IntegrationDirectory& integrations_;
  core::RefererPolicy referer_policy_;
  ConnectionStore& connections_;
  const EventFactory& events_;
  const core::Clock& clock_;
};

}  // namespace amoauth::service
