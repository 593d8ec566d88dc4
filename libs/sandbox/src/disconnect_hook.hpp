#pragma once

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "amoauth/net/http_message.hpp"
#include "hook_sender.hpp"
#include "sandbox_context.hpp"

/// The simulated amoCRM's disconnect ("access revoked") hook (protocol §7.1). Unlike the other
/// handlers this one suspends: it calls the integration's hook and answers with what it got.
namespace amoauth::sandbox {

/// lowercase hex HMAC-SHA256(key = client_secret, message = client_uuid + "|" + account_id),
/// computed here with OpenSSL: the sandbox signs on its own, so that a bug in amoauth's
/// verification is not mirrored in the simulator. Empty if OpenSSL fails.
[[nodiscard]] std::string SignDisconnectHook(std::string_view client_secret,
                                             std::string_view client_uuid,
                                             std::string_view account_id);

/// POST /sandbox/accounts/{id}/disconnect {"client_id":"…"} (path param "id"): revokes every
/// token of the integration in the account, then sends GET {disconnect_hook_url}?client_uuid=…
/// &account_id=…&signature=… through `hooks`. Answers with the hook's HTTP status and a JSON
/// report; 502 when the hook cannot be reached; 200 when the integration has no hook.
[[nodiscard]] boost::asio::awaitable<net::HttpResponse> ServeDisconnect(SandboxContext& ctx,
                                                                        HookSender& hooks,
                                                                        net::HttpRequest req);

}  // namespace amoauth::sandbox
