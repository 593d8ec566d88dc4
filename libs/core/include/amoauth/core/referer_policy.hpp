#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/result.hpp"

namespace amoauth::core {

/// An amoCRM/Kommo account host we are willing to send client_secret to.
struct AccountHost {
  std::string host;       ///< "example.amocrm.ru" (lower case)
  std::string subdomain;  ///< "example"
  std::string domain;     ///< the allow-listed domain it sits under: "amocrm.ru"
};

/// Decides whether a `referer` from the callback (a bare host, protocol §2.5) names an account
/// host under one of the allowed domains. This check is what keeps client_secret from being sent
/// to an attacker's host, so it is strict: exactly one DNS label ([a-z0-9-], 1..63, no leading or
/// trailing '-') in front of an allowed domain; no scheme, userinfo, port, path, query, trailing
/// dot or whitespace. Upper-case letters are folded. Anything else → Errc::kRefererNotAllowed.
/// Thread-safe (immutable after construction).
class RefererPolicy {
 public:
  /// `allowed_domains` like {"amocrm.ru", "amocrm.com", "kommo.com"}; lower-cased on entry.
  explicit RefererPolicy(std::vector<std::string> allowed_domains);

  [[nodiscard]] Result<AccountHost> Check(std::string_view referer) const;
  [[nodiscard]] const std::vector<std::string>& AllowedDomains() const { return allowed_; }

 private:
  std::vector<std::string> allowed_;
};

}  // namespace amoauth::core
