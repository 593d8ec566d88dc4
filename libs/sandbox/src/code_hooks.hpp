#pragma once

#include <boost/asio/awaitable.hpp>

#include "amoauth/net/http_message.hpp"
#include "hook_sender.hpp"
#include "sandbox_context.hpp"

/// Codes amoCRM sends to an integration's Redirect URI by itself, server to server: the
/// widget-install hook (protocol §2.6) and the exchange_api_key hook (§6).
namespace amoauth::sandbox {

/// POST /sandbox/accounts/{id}/install-widget {"client_id":"…"} (path param "id"): the account
/// installs the integration's widget. A code is issued and sent once, as
/// GET {redirect_uri}?code=…&referer=…&platform=1|client_id=…&from_widget=1, 3 s deadline, no
/// retry, status ignored. Answers {"delivered","status","elapsed_ms"[,"error"]}, never the code.
[[nodiscard]] boost::asio::awaitable<net::HttpResponse> ServeInstallWidget(SandboxContext& ctx,
                                                                           HookSender& hooks,
                                                                           net::HttpRequest req);

/// POST https://{account host}/oauth2/exchange_api_key, JSON {login, api_key, client_uuid,
/// client_secret, state?} (protocol §6): 202 with no body, then — exchange_hook_delay_ms later,
/// through ctx.send_later — GET {redirect_uri}?code=…&referer=…&platform=1|client_id=…
/// [&state=…]&from_exchange=1, no retry. Refusals (SandboxState::ExchangeApiKey) are
/// application/problem+json; a 429 carries Retry-After.
[[nodiscard]] net::HttpResponse ServeExchangeApiKey(SandboxContext& ctx,
                                                    const Account& host_account,
                                                    const net::HttpRequest& req);

}  // namespace amoauth::sandbox
