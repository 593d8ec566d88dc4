#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "amoauth/sandbox/sandbox.hpp"

/// What the simulated amoCRM shows a browser: HTML pages and the button script. Pure text
/// rendering; every value that reaches HTML goes through HtmlEscape, every value that reaches a
/// <script> through ScriptJson.
namespace amoauth::sandbox {

/// Escapes & < > " ' for HTML text and double- or single-quoted attribute values.
[[nodiscard]] std::string HtmlEscape(std::string_view text);

/// `value` as JSON that is also safe inside an HTML <script> element (no "<", ">", "&",
/// U+2028 or U+2029 left unescaped).
[[nodiscard]] std::string ScriptJson(const boost::json::value& value);

/// The stand-in for https://www.amocrm.ru/auth/button.js (protocol §2.3).
[[nodiscard]] std::string_view ButtonScript();

/// The metadata variant of the consent URL (protocol §2.2): an integration to be created.
struct ExternalRequest {
  std::string name;
  std::string description;
  std::string redirect_uri;
  std::string secrets_uri;
  std::string logo;  ///< optional
  std::vector<std::string> scopes;
};

struct ConsentView {
  Integration integration;  ///< the secret is never rendered
  std::vector<Account> accounts;
  std::string state;
  std::string mode;
  /// Set for the metadata variant: the form then carries these fields instead of client_id.
  std::optional<ExternalRequest> external;
};
/// GET /oauth: integration name, scopes, account choice, Allow / Deny posting to /oauth/decision.
[[nodiscard]] std::string RenderConsentPage(const ConsentView& view);

/// A small page for refusals (unknown client_id…).
[[nodiscard]] std::string RenderErrorPage(std::string_view title, std::string_view message);

/// The consent window's last page in popup mode: posts `message` to window.opener (target "*")
/// and closes; without an opener it navigates to `fallback_url` itself.
[[nodiscard]] std::string RenderPopupHandoff(const boost::json::value& message,
                                             std::string_view fallback_url);

/// GET /sandbox/: accounts and integrations (secrets hidden), links to the other tools.
[[nodiscard]] std::string RenderIndexPage(const std::vector<Account>& accounts,
                                          const std::vector<Integration>& integrations,
                                          std::string_view browser_base_url);

}  // namespace amoauth::sandbox
