#pragma once

#include <string>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "amoauth/net/http_message.hpp"
#include "consent_pages.hpp"
#include "hook_sender.hpp"
#include "sandbox_context.hpp"

/// External integrations (protocol §2.2, §5): the consent URL carries the integration's metadata
/// instead of a client_id; Allow creates a private integration in the chosen account and POSTs
/// its keys to secrets_uri before (or, by config, after) handing back the code.
namespace amoauth::sandbox {

/// Whether a consent query or form is the metadata variant: no client_id, and secrets_uri.
[[nodiscard]] bool IsExternalRequest(const net::QueryParams& params);

/// The metadata fields, or what is wrong (in Russian, for the page). All of name, description,
/// redirect_uri, secrets_uri and scopes are required (as button.js requires them); scopes come
/// as `scopes[]=crm&scopes[]=notifications` or `scopes=crm,notifications` and must be among crm,
/// notifications; redirect_uri, secrets_uri and logo must be absolute http(s) URLs.
[[nodiscard]] std::variant<ExternalRequest, std::string> ParseExternalRequest(
    const net::QueryParams& params);

/// GET /oauth with metadata: the consent page for an integration still to be created.
[[nodiscard]] net::HttpResponse ServeExternalConsentPage(SandboxContext& ctx,
                                                         const net::QueryParams& params);

/// POST /oauth/decision for the metadata variant. Allow: creates the integration, then
/// (secrets_delivery "before_redirect") POSTs {"client_id","client_secret","state"} to
/// secrets_uri and hands the code back only if it answered exactly 200 — otherwise an error page
/// "(Code NNN)" and no code; ("after_redirect") hands back first and POSTs secrets_delay_ms
/// later through ctx.send_later. The hand-back always carries the new client_id.
/// Deny: error=access_denied, like the standard variant.
[[nodiscard]] boost::asio::awaitable<net::HttpResponse> ServeExternalDecision(SandboxContext& ctx,
                                                                              HookSender& hooks,
                                                                              net::HttpRequest req);

}  // namespace amoauth::sandbox
