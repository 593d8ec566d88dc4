#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/object.hpp>

#include "amoauth/net/http_message.hpp"
#include "sandbox_context.hpp"

/// The simulated amoCRM's request handlers: plain request → response functions (no I/O, no
/// suspension), so they are unit-testable without sockets. sandbox.cpp adapts them to
/// http_server::Handler. Method checks happen in the dispatchers.
namespace amoauth::sandbox {

// --- dispatch.cpp: the two listeners' entry points; both write the journal.
/// Plain HTTP: what a browser opens (button script, consent) and the control API (/sandbox/…).
[[nodiscard]] net::HttpResponse ServeBrowserSide(SandboxContext& ctx, const net::HttpRequest& req);
/// TLS: dispatch on the Host header to an account host or a shared api host. A scripted fault
/// (POST /sandbox/faults) pending for the endpoint comes first (faults.hpp); for a stall the
/// answer drops the connection and `stall`, when given, gets how long to hold it first.
[[nodiscard]] net::HttpResponse ServeAmoSide(SandboxContext& ctx,
                                             const net::HttpRequest& req,
                                             std::chrono::milliseconds* stall = nullptr);
/// The Host header, lowercased, without the port.
[[nodiscard]] std::string HostOf(const net::HttpRequest& req);
/// The {id} path parameter of /sandbox/accounts/{id}/…, when it is a whole number.
[[nodiscard]] std::optional<std::int64_t> AccountIdParam(const net::HttpRequest& req);
/// The client id of a {"client_id": "…"} body (POST /sandbox/accounts/{id}/disconnect and
/// …/install-widget), or the 400 problem answer when the body is not a JSON object whose
/// "client_id" is a non-empty string.
[[nodiscard]] std::variant<std::string, net::HttpResponse> ClientIdBody(
    const net::HttpRequest& req);

// --- browser_endpoints.cpp (protocol §2).
[[nodiscard]] net::HttpResponse ServeButtonScript(const net::HttpRequest& req);
/// GET /oauth: the standard (client_id) variant of the consent page.
[[nodiscard]] net::HttpResponse ServeConsentPage(SandboxContext& ctx, const net::HttpRequest& req);
/// The end of a consent: `mode` "popup" posts `message` to the opener (a page that does so);
/// any other mode redirects the window to `url` (post_message).
[[nodiscard]] net::HttpResponse HandBack(std::string_view mode,
                                         const boost::json::object& message,
                                         const std::string& url);
/// An HTML page for a refused consent request.
[[nodiscard]] net::HttpResponse ConsentErrorPage(int status, std::string_view message);
/// POST /oauth/decision: Allow → code, Deny → access_denied; popup or redirect.
[[nodiscard]] net::HttpResponse ServeConsentDecision(SandboxContext& ctx,
                                                     const net::HttpRequest& req);

// --- token_endpoint.cpp (protocol §3).
/// The access token JWT: the §4 header and claims, in the order amoCRM's tokens carry them.
[[nodiscard]] Result<std::string> MintAccessToken(const JwtSigner& signer, const IssuedTokens& t);
/// POST https://{account host}/oauth2/access_token.
[[nodiscard]] net::HttpResponse ServeTokenEndpoint(SandboxContext& ctx,
                                                   const Account& host_account,
                                                   const net::HttpRequest& req);

// --- api_endpoints.cpp (protocol §7.2-7.4).
/// Any /api/v4/… on an account host: Bearer check, then /api/v4/account or an echo.
[[nodiscard]] net::HttpResponse ServeApi(SandboxContext& ctx,
                                         const Account& host_account,
                                         const net::HttpRequest& req);
/// GET https://{api_domain}/oauth2/account/current/subdomain with X-Refresh-Token.
[[nodiscard]] net::HttpResponse ServeCurrentSubdomain(SandboxContext& ctx,
                                                      const net::HttpRequest& req);

// --- control_api.cpp (/sandbox/…, for tests and humans).
[[nodiscard]] net::HttpResponse ServeIndex(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeJournal(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeClockAdvance(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeListIntegrations(SandboxContext& ctx,
                                                      const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeCreateIntegration(SandboxContext& ctx,
                                                       const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeListAccounts(SandboxContext& ctx, const net::HttpRequest& req);
/// POST /sandbox/journal/reset: zeroes the counters; answers like GET /sandbox/journal.
[[nodiscard]] net::HttpResponse ServeJournalReset(SandboxContext& ctx, const net::HttpRequest& req);
/// GET /sandbox/config; POST /sandbox/config {partial}: all applied, or 400 and none.
[[nodiscard]] net::HttpResponse ServeGetConfig(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeSetConfig(SandboxContext& ctx, const net::HttpRequest& req);
/// POST /sandbox/accounts/{id}/revoke {"tokens":"access"|"all"} (path param "id").
[[nodiscard]] net::HttpResponse ServeRevokeTokens(SandboxContext& ctx, const net::HttpRequest& req);
/// POST /sandbox/accounts/{id}/rename {"subdomain":"…"} (path param "id").
[[nodiscard]] net::HttpResponse ServeRenameAccount(SandboxContext& ctx,
                                                   const net::HttpRequest& req);
/// GET, POST and DELETE /sandbox/faults.
[[nodiscard]] net::HttpResponse ServeGetFaults(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeSetFaults(SandboxContext& ctx, const net::HttpRequest& req);
[[nodiscard]] net::HttpResponse ServeClearFaults(SandboxContext& ctx, const net::HttpRequest& req);
/// POST /sandbox/integrations/{client_id}/long-lived-tokens {"account_id":N,"days":D}
/// (path param "client_id"): {"access_token","expires_at"} (protocol §7.5).
[[nodiscard]] net::HttpResponse ServeIssueLongLivedToken(SandboxContext& ctx,
                                                         const net::HttpRequest& req);

}  // namespace amoauth::sandbox
