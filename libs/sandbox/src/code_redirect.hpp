#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "amoauth/sandbox/sandbox.hpp"

/// The query amoCRM appends to an integration's Redirect URI when it hands over a code, whether
/// the browser follows it (consent, protocol §2.5) or amoCRM calls it itself (widget install
/// §2.6, exchange_api_key §6).
namespace amoauth::sandbox {

using UrlParams = std::vector<std::pair<std::string, std::string>>;

/// `url` with `params` appended after any query it already has, values percent-encoded.
/// nullopt when `url` is not a URI reference.
[[nodiscard]] std::optional<std::string> WithParams(std::string_view url, const UrlParams& params);

/// code, referer, [state], then platform=1 on amoCRM or client_id on Kommo (protocol §2.5, §8).
/// `always_client_id` adds client_id on amoCRM too (the metadata variant: the integration is
/// new, so the integrator needs its id).
[[nodiscard]] UrlParams CodeParams(const Account& account,
                                   std::string_view client_id,
                                   std::string_view code,
                                   std::string_view state,
                                   bool always_client_id = false);

}  // namespace amoauth::sandbox
