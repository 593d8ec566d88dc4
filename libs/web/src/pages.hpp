#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "amoauth/core/connection.hpp"
#include "amoauth/core/platform.hpp"
#include "amoauth/net/http_message.hpp"
#include "error_mapping.hpp"

/// The HTML a person sees. Every dynamic value goes through core::HtmlEscape.
namespace amoauth::web::pages {

/// What the /connect page needs besides its button.
struct ConnectPageView {
  core::Platform platform = core::Platform::kAmocrm;  ///< names the product on the page
  std::string button_html;  ///< core::RenderSiteButton, already carrying a fresh state
  core::ConsentMode mode = core::ConsentMode::kPopup;
  std::string client_id;  ///< passed to the error callback, as amoCRM's script does
  /// The name of the page's own error callback (the button's data-error-callback).
  std::string error_callback;
  /// Where the popup's result page runs (the Redirect URI's origin): in post_message mode the page
  /// listens only to messages from there.
  std::string callback_origin;
  /// Where the button script comes from: the only script origin the page's CSP allows.
  std::string script_origin;
  std::string nonce;  ///< the inline script's CSP nonce, fresh per response
};

/// In post_message mode the callback page also tells the window that opened it, and closes.
struct OpenerMessage {
  std::string target_origin;  ///< postMessage's targetOrigin: exactly one origin, never "*"
  std::string nonce;          ///< the inline script's CSP nonce, fresh per response
};

/// GET /connect (and /): the site button, already carrying a fresh state.
[[nodiscard]] net::HttpResponse Connect(const ConnectPageView& view);
/// The callback succeeded. With `opener`, the page posts {status: "ok", account_id, base_domain}
/// to window.opener and closes itself.
[[nodiscard]] net::HttpResponse Connected(const core::Connection& connection,
                                          const std::optional<OpenerMessage>& opener = {});
/// Anything that went wrong, in words, with a link to start again. With `opener`, the page posts
/// {status: "error", error: code, message} to window.opener and closes itself.
[[nodiscard]] net::HttpResponse Error(const ErrorView& view,
                                      std::string_view request_id,
                                      const std::optional<OpenerMessage>& opener = {});

/// `value` as JSON that is safe inside a <script> element: `<`, `>` and `&` become \u escapes,
/// so no "</script>" or "<!--" can end or bend the element, and U+2028/2029 cannot end a line.
[[nodiscard]] std::string ScriptJson(const boost::json::value& value);

}  // namespace amoauth::web::pages
