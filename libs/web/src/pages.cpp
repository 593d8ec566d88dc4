#include "pages.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include "amoauth/core/html_escape.hpp"
#include "amoauth/core/iso_time.hpp"

namespace amoauth::web::pages {
namespace {

constexpr std::string_view kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:40rem;
margin:4rem auto;padding:0 1rem;color:#1d2733;line-height:1.5}
h1{font-size:1.5rem} .muted{color:#5b6875} .box{border:1px solid #d5dde5;border-radius:.5rem;
padding:1rem 1.25rem;margin:1.5rem 0} a.button{display:inline-block;padding:.5rem 1rem;
border-radius:.375rem;background:#339dc7;color:#fff;text-decoration:none})";

/// Pages without scripts of their own: nothing runs, nothing loads, nobody frames them.
constexpr std::string_view kStrictCsp =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

}  // namespace

std::string ScriptJson(const boost::json::value& value) {
  const std::string json = boost::json::serialize(value);
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < json.size() && json[i + 1] == '\x80' &&
               (json[i + 2] == '\xA8' || json[i + 2] == '\xA9')) {
      out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

/// The post_message hand-back (protocol §2.4): tell the opener, to our origin only, and close.
/// Without an opener (the page was opened directly) the page simply stays, saying what happened.
std::string OpenerScript(const boost::json::object& message, const OpenerMessage& opener) {
  return fmt::format(
      "\n<script nonce=\"{}\">\n(function () {{\n"
      "  var message = {};\n"
      "  var target = {};\n"
      "  if (window.opener && !window.opener.closed) {{\n"
      "    window.opener.postMessage(message, target);\n"
      "    window.close();\n"
      "  }}\n"
      "}})();\n</script>",
      opener.nonce,
      ScriptJson(message),
      ScriptJson(boost::json::string(opener.target_origin)));
}

std::string ScriptCsp(std::string_view nonce) {
  return fmt::format(
      "default-src 'none'; script-src 'nonce-{}'; style-src 'unsafe-inline'; base-uri 'none'; "
      "form-action 'none'; frame-ancestors 'none'",
      nonce);
}

net::HttpResponse Page(int status,
                       std::string_view title,
                       std::string_view body_html,
                       std::string_view csp = kStrictCsp) {
  auto response = net::HttpResponse::Html(
      status,
      fmt::format(
          "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
          "<title>{} · amoauth</title><style>{}</style></head>\n<body>\n{}\n</body></html>\n",
          core::HtmlEscape(title),
          kStyle,
          body_html));
  // The callback URL carries a code: never let it leak through Referer or a cache.
  response.headers.Set("Referrer-Policy", "no-referrer");
  response.headers.Set("Cache-Control", "no-store");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  response.headers.Set("Content-Security-Policy", csp);
  return response;
}

}  // namespace

net::HttpResponse Connect(const ConnectPageView& view) {
  // The page's own script: the error callback the button names, and in post_message mode the
  // listener for the popup's result. Words reach the page through textContent only.
  const boost::json::object config{
      {"mode", std::string(core::ToString(view.mode))},
      {"client_id", view.client_id},
      {"error_callback", view.error_callback},
      {"callback_origin", view.callback_origin},
  };
  const std::string script = fmt::format(
      R"JS(<script nonce="{}">
(function () {{
  "use strict";
  var config = {};
  var box = document.getElementById("connect-status");
  function show(text, kind) {{
    box.textContent = text;
    box.className = "box " + kind;
    box.hidden = false;
  }}
  // The message the error callback last ran for: a metadata button has no data-client-id, so the
  // button script also takes the callback page's message (no client_id either) as its own deny.
  var reported = null;
  // Called by the button script when the consent window reports a refusal (popup mode), and by the
  // listener below (post_message mode), with {{client_id, error[, message]}}.
  window[config.error_callback] = function (data) {{
    reported = data;
    var error = data && data.error ? String(data.error) : "error";
    if (data && typeof data.message === "string" && data.message !== "") {{
      show(data.message, "failed");
    }} else if (error === "access_denied") {{
      show("Access was not granted: nothing was connected. Press the button to try again.",
           "failed");
    }} else {{
      show("The connection did not complete (" + error + "). Press the button to try again.",
           "failed");
    }}
    box.setAttribute("data-error", error);
  }};
  if (config.mode !== "post_message") {{
    return;
  }}
  window.addEventListener("message", function (event) {{
    if (event.origin !== config.callback_origin) {{
      return;
    }}
    var data = event.data;
    if (!data || typeof data !== "object") {{
      return;
    }}
    if (data.status === "ok") {{
      show("Account " + String(data.base_domain || "") + " (id " + String(data.account_id) +
           ") is connected. amoauth keeps its access fresh from now on.", "connected");
      box.setAttribute("data-account-id", String(data.account_id));
    }} else if (data.status === "error" && data !== reported) {{
      window[config.error_callback]({{client_id: config.client_id, error: data.error,
                                      message: data.message}});
    }}
  }});
}})();
</script>)JS",
      view.nonce,
      ScriptJson(config));
  // amoCRM's button script evals the error callback's name (protocol §2.3): 'unsafe-eval' for it;
  // inline scripts still need the nonce, so injected markup cannot run.
  const std::string csp = fmt::format(
      "script-src 'nonce-{}' {} 'unsafe-eval'; object-src 'none'; base-uri 'none'; "
      "form-action 'none'",
      view.nonce,
      view.script_origin);
  const std::string_view product = core::ProductName(view.platform);
  return Page(200,
              fmt::format("Connect {}", product),
              fmt::format("<h1>Connect your {} account</h1>\n"
                          "<p>Press the button, choose the account in the window that opens and "
                          "allow access. You will come back here when it is done.</p>\n"
                          "<div class=\"box\" id=\"connect\">{}</div>\n"
                          "<div id=\"connect-status\" role=\"status\" hidden></div>\n"
                          "<p class=\"muted\">The link in this button works once and for 20 "
                          "minutes; reload the page for a new one.</p>\n{}",
                          product,
                          view.button_html,
                          script),
              csp);
}

net::HttpResponse Connected(const core::Connection& connection,
                            const std::optional<OpenerMessage>& opener) {
  std::string script;
  if (opener) {
    script = OpenerScript(boost::json::object{{"status", "ok"},
                                              {"account_id", connection.account_id},
                                              {"base_domain", connection.base_domain}},
                          *opener);
  }
  return Page(200,
              "Connected",
              fmt::format("<h1 id=\"result\">{} account {} is connected</h1>\n"
                          "<div class=\"box\"><p>Account <b id=\"account-domain\">{}</b> "
                          "(id <span id=\"account-id\">{}</span>) is connected. amoauth keeps its "
                          "access fresh from now on.</p>\n<p class=\"muted\">Access token valid "
                          "until {}.</p></div>\n<p>You can close this page.</p>{}",
                          core::ProductName(core::PlatformOfHost(connection.base_domain)),
                          core::HtmlEscape(connection.base_domain),
                          core::HtmlEscape(connection.base_domain),
                          connection.account_id,
                          core::FormatIsoTime(connection.expires_at),
                          script),
              opener ? ScriptCsp(opener->nonce) : std::string(kStrictCsp));
}

net::HttpResponse Error(const ErrorView& view,
                        std::string_view request_id,
                        const std::optional<OpenerMessage>& opener) {
  std::string script;
  if (opener) {
    script = OpenerScript(
        boost::json::object{{"status", "error"},
                            {"error", view.code},
                            {"message", fmt::format("{}. {}", view.title, view.advice)}},
        *opener);
  }
  return Page(view.status,
              view.title,
              fmt::format("<h1 id=\"result\">{}</h1>\n<div class=\"box\"><p id=\"advice\">{}</p>"
                          "</div>\n<p><a class=\"button\" href=\"/\">Start again</a></p>\n"
                          "<p class=\"muted\">Reference: {}</p>{}",
                          core::HtmlEscape(view.title),
                          core::HtmlEscape(view.advice),
                          core::HtmlEscape(request_id),
                          script),
              opener ? ScriptCsp(opener->nonce) : std::string(kStrictCsp));
}

}  // namespace amoauth::web::pages
