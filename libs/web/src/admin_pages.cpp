#include "admin_pages.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "amoauth/core/html_escape.hpp"
#include "amoauth/core/iso_time.hpp"

namespace amoauth::web::admin {
namespace {

using core::HtmlEscape;

constexpr std::string_view kCsp =
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

constexpr std::string_view kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
line-height:1.45;background:#f6f8fa} header{background:#1d2733;color:#fff;padding:.6rem 1.5rem;
display:flex;gap:1.25rem;align-items:center} header a{color:#fff;text-decoration:none}
header .brand{font-weight:600;margin-right:1rem} header form{margin-left:auto}
main{max-width:72rem;margin:1.5rem auto;padding:0 1.5rem} h1{font-size:1.4rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5dde5}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e4e9ee;vertical-align:top}
th{background:#eef2f6;font-weight:600;font-size:.9rem} .muted{color:#5b6875}
.status{display:inline-block;padding:0 .5rem;border-radius:.75rem;font-size:.85rem}
.status-active{background:#dff3e4;color:#17692f} .status-reauth_required{background:#fde8c8;
color:#8a4b00} .status-disconnected{background:#e8e8e8;color:#444}
.error{color:#a1261b} .notice{padding:.6rem 1rem;border-radius:.4rem;margin:1rem 0}
.notice.ok{background:#dff3e4} .notice.failed{background:#fbe3e0}
.box{background:#fff;border:1px solid #d5dde5;border-radius:.5rem;padding:1rem 1.25rem;
margin:1rem 0} button,a.button{font:inherit;padding:.35rem .8rem;border-radius:.35rem;
border:1px solid #339dc7;background:#339dc7;color:#fff;cursor:pointer;text-decoration:none}
button.danger{background:#fff;color:#a1261b;border-color:#a1261b} header button{background:none;
border-color:#8fa3b5} form.inline{display:inline} dl{display:grid;grid-template-columns:12rem 1fr;
gap:.25rem 1rem} dt{color:#5b6875} dd{margin:0} code{font-size:.9em})";

std::string Time(core::TimePoint when, core::TimePoint now) {
  if (when == core::TimePoint{}) {
    return "<span class=\"muted\">never</span>";
  }
  const std::string iso = core::FormatIsoTime(when);
  return fmt::format(
      "<time datetime=\"{0}\" title=\"{0}\">{1}</time>", HtmlEscape(iso), RelativeTime(when, now));
}

std::string Status(core::ConnectionStatus status) {
  const std::string_view name = core::ToString(status);
  return fmt::format("<span class=\"status status-{0}\">{0}</span>", name);
}

std::string CsrfField(std::string_view csrf) {
  return fmt::format("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", HtmlEscape(csrf));
}

/// The page frame; `csrf` empty: no navigation (the login page).
net::HttpResponse Frame(int status,
                        std::string_view title,
                        std::string_view body_html,
                        std::string_view csrf) {
  std::string nav;
  if (!csrf.empty()) {
    nav = fmt::format(
        "<header><span class=\"brand\">amoauth admin</span>"
        "<a href=\"/admin\" id=\"nav-accounts\">Accounts</a>"
        "<a href=\"/admin/integrations\" id=\"nav-integrations\">Integrations</a>"
        "<a href=\"/connect\" id=\"nav-connect\">Connect a new account</a>"
        "<form method=\"post\" action=\"/admin/logout\">{}"
        "<button type=\"submit\" id=\"logout\">Log out</button></form></header>\n",
        CsrfField(csrf));
  }
  auto response = net::HttpResponse::Html(
      status,
      fmt::format("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                  "<title>{} · amoauth admin</title><style>{}</style>"
                  "<script src=\"/admin/admin.js\" defer></script></head>\n<body>\n{}"
                  "<main>\n{}\n</main>\n</body></html>\n",
                  HtmlEscape(title),
                  kStyle,
                  nav,
                  body_html));
  SetSecurityHeaders(response);
  return response;
}

/// The `data` of an event's JSON envelope, as "key: value" words.
std::string EventDetails(const std::string& body) {
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(body, ec);
  const auto* object = ec ? nullptr : parsed.if_object();
  const auto* data = object != nullptr ? object->if_contains("data") : nullptr;
  const auto* fields = data != nullptr ? data->if_object() : nullptr;
  if (fields == nullptr || fields->empty()) {
    return {};
  }
  std::string out;
  for (const auto& [key, value] : *fields) {
    if (!out.empty()) {
      out += "; ";
    }
    const std::string text =
        value.is_string() ? std::string(value.get_string()) : boost::json::serialize(value);
    out += fmt::format("{}: {}", HtmlEscape(key), HtmlEscape(text));
  }
  return out;
}

}  // namespace

std::string RelativeTime(core::TimePoint when, core::TimePoint now) {
  if (when == core::TimePoint{}) {
    return "never";
  }
  const auto delta = std::chrono::duration_cast<std::chrono::seconds>(when - now).count();
  const long long magnitude = std::llabs(delta);
  if (magnitude < 45) {
    return "just now";
  }
  std::string amount;
  if (magnitude < 90 * 60) {
    amount = fmt::format("{} min", std::max(1LL, (magnitude + 30) / 60));
  } else if (magnitude < 36 * 3600) {
    amount = fmt::format("{} h", (magnitude + 1800) / 3600);
  } else {
    const long long days = (magnitude + 43200) / 86400;
    amount = fmt::format("{} {}", days, days == 1 ? "day" : "days");
  }
  return delta > 0 ? fmt::format("in {}", amount) : fmt::format("{} ago", amount);
}

void SetSecurityHeaders(net::HttpResponse& response) {
  response.headers.Set("Content-Security-Policy", kCsp);
  response.headers.Set("Referrer-Policy", "no-referrer");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  response.headers.Set("X-Frame-Options", "DENY");
  response.headers.Set("Cache-Control", "no-store");
}

net::HttpResponse LoginPage(int status, std::string_view error_message) {
  std::string error;
  if (!error_message.empty()) {
    error = fmt::format("<p class=\"notice failed\" id=\"login-error\" role=\"alert\">{}</p>\n",
                        HtmlEscape(error_message));
  }
  return Frame(status,
               "Log in",
               fmt::format("<h1>amoauth admin</h1>\n{}<div class=\"box\">"
                           "<form method=\"post\" action=\"/admin/login\">"
                           "<p><label for=\"api_key\">API key (AMOAUTH_API_KEY)</label><br>"
                           "<input type=\"password\" id=\"api_key\" name=\"api_key\" size=\"50\" "
                           "autocomplete=\"current-password\" required autofocus></p>"
                           "<p><button type=\"submit\" id=\"login\">Log in</button></p></form>"
                           "</div>\n<p class=\"muted\">The key is sent in the body of this form, "
                           "never in an address.</p>",
                           error),
               {});
}

net::HttpResponse AccountsPage(const AccountsView& view) {
  std::string rows;
  for (const auto& c : view.rows) {
    const bool long_lived = core::KindOf(c) == core::ConnectionKind::kLongLived;
    rows += fmt::format(
        "<tr data-account-id=\"{0}\" data-client-id=\"{1}\">"
        "<td><a href=\"/admin/accounts/{0}\" class=\"account-link\">{0}</a></td>"
        "<td class=\"domain\">{2}</td><td class=\"status-cell\">{3}</td>"
        "<td class=\"integration\"><code>{1}</code>{4}</td>"
        "<td class=\"expires\">{5}</td><td class=\"last-refresh\">{6}</td>"
        "<td class=\"last-error\">{7}</td></tr>\n",
        c.account_id,
        HtmlEscape(c.client_id),
        HtmlEscape(c.base_domain),
        Status(c.status),
        long_lived ? " <span class=\"muted\">(long-lived token)</span>" : "",
        c.status == core::ConnectionStatus::kDisconnected
            ? std::string("<span class=\"muted\">erased</span>")
            : Time(c.expires_at, view.now),
        Time(c.last_refresh_at, view.now),
        c.last_error.empty() ? std::string("<span class=\"muted\">none</span>")
                             : fmt::format("<span class=\"error\">{}</span> {}",
                                           HtmlEscape(c.last_error),
                                           Time(c.last_error_at, view.now)));
  }
  std::string table;
  if (view.rows.empty()) {
    table =
        "<p class=\"box\" id=\"no-accounts\">No account is connected yet. "
        "<a href=\"/connect\">Connect one</a>.</p>";
  } else {
    table = fmt::format(
        "<table id=\"accounts\"><thead><tr><th>Account</th><th>Domain</th><th>Status</th>"
        "<th>Integration</th><th>Access token expires</th><th>Last refresh</th>"
        "<th>Last error</th></tr></thead>\n<tbody>\n{}</tbody></table>",
        rows);
  }
  return Frame(200,
               "Accounts",
               fmt::format("<h1>Accounts</h1>\n<p><a class=\"button\" href=\"/connect\" "
                           "id=\"connect-new\">Connect a new account</a></p>\n{}\n"
                           "<p class=\"muted\">{} connection(s). Times are relative to the "
                           "server's clock ({}).</p>",
                           table,
                           view.rows.size(),
                           HtmlEscape(core::FormatIsoTime(view.now))),
               view.csrf);
}

net::HttpResponse AccountPage(int status, const AccountView& view) {
  std::string notice;
  if (view.notice) {
    notice = fmt::format("<p class=\"notice {}\" id=\"notice\" role=\"status\">{}</p>\n",
                         view.notice->ok ? "ok" : "failed",
                         HtmlEscape(view.notice->text));
  }
  std::string rows;
  std::string domain;
  for (const auto& c : view.rows) {
    if (domain.empty()) {
      domain = c.base_domain;
    }
    const bool long_lived = core::KindOf(c) == core::ConnectionKind::kLongLived;
    const std::string key_fields =
        fmt::format("{}<input type=\"hidden\" name=\"client_id\" value=\"{}\">",
                    CsrfField(view.csrf),
                    HtmlEscape(c.client_id));
    std::string actions;
    if (c.status == core::ConnectionStatus::kActive && !long_lived) {
      actions += fmt::format(
          "<form method=\"post\" class=\"inline\" action=\"/admin/accounts/{}/refresh\">{}"
          "<button type=\"submit\" class=\"refresh\">Force a refresh</button></form> ",
          c.account_id,
          key_fields);
    }
    if (c.status != core::ConnectionStatus::kDisconnected) {
      actions += fmt::format(
          "<form method=\"post\" class=\"inline\" action=\"/admin/accounts/{0}/disconnect\" "
          "data-confirm=\"Disconnect account {0} ({1})? Its tokens are erased; a person must "
          "connect it again.\">{2}<button type=\"submit\" class=\"danger disconnect\">"
          "Disconnect</button></form>",
          c.account_id,
          HtmlEscape(c.base_domain),
          key_fields);
    }
    if (actions.empty()) {
      actions = "<span class=\"muted\">Connect it again to use it.</span>";
    }
    rows += fmt::format(
        "<section class=\"box connection\" data-client-id=\"{0}\">"
        "<h2>Integration <code>{0}</code></h2><dl>"
        "<dt>Status</dt><dd class=\"status-cell\">{1}</dd>"
        "<dt>Domain</dt><dd class=\"domain\">{2}</dd>"
        "<dt>API domain</dt><dd>{3}</dd><dt>Granted by user</dt><dd>{4}</dd>"
        "<dt>Kind</dt><dd>{5}</dd>"
        "<dt>Access token expires</dt><dd class=\"expires\">{6}</dd>"
        "<dt>Last refresh</dt><dd class=\"last-refresh\">{7}</dd>"
        "<dt>Next refresh</dt><dd class=\"next-refresh\">{8}</dd>"
        "<dt>Failed attempts</dt><dd>{9}</dd>"
        "<dt>Last error</dt><dd class=\"last-error\">{10}</dd>"
        "<dt>Connected</dt><dd>{11}</dd></dl>\n<p class=\"actions\">{12}</p></section>\n",
        HtmlEscape(c.client_id),
        Status(c.status),
        HtmlEscape(c.base_domain),
        HtmlEscape(c.api_domain),
        HtmlEscape(c.user_id),
        long_lived ? "long-lived token (never refreshed)" : "OAuth (refreshed by amoauth)",
        c.status == core::ConnectionStatus::kDisconnected
            ? std::string("<span class=\"muted\">erased</span>")
            : Time(c.expires_at, view.now),
        Time(c.last_refresh_at, view.now),
        Time(c.next_refresh_at, view.now),
        c.refresh_failures,
        c.last_error.empty() ? std::string("<span class=\"muted\">none</span>")
                             : fmt::format("<span class=\"error\">{}</span> {}",
                                           HtmlEscape(c.last_error),
                                           Time(c.last_error_at, view.now)),
        Time(c.created_at, view.now),
        actions);
  }
  if (view.rows.empty()) {
    rows = "<p class=\"box\">amoauth has no connection of this account.</p>";
  }
  std::string blocked;
  if (view.blocked_for_seconds) {
    blocked = fmt::format(
        "<p class=\"notice failed\">amoCRM blocked this account's API calls (403): amoauth sends "
        "none for {} s more.</p>",
        *view.blocked_for_seconds);
  }
  std::string history;
  if (!view.history_available) {
    history = "<p class=\"muted\">This store keeps no history.</p>";
  } else if (view.events.empty()) {
    history = "<p class=\"muted\" id=\"no-events\">Nothing recorded yet.</p>";
  } else {
    for (const auto& e : view.events) {
      history += fmt::format(
          "<tr class=\"event\" data-type=\"{0}\"><td>{1}</td><td><code>{0}</code></td>"
          "<td><code>{2}</code></td><td>{3}</td></tr>\n",
          HtmlEscape(e.type),
          Time(e.created_at, view.now),
          HtmlEscape(e.client_id),
          EventDetails(e.body));
    }
    history = fmt::format(
        "<table id=\"events\"><thead><tr><th>When</th><th>Event</th><th>Integration</th>"
        "<th>Details</th></tr></thead>\n<tbody>\n{}</tbody></table>",
        history);
  }
  return Frame(status,
               fmt::format("Account {}", view.account_id),
               fmt::format("<p><a href=\"/admin\">← Accounts</a></p>\n"
                           "<h1 id=\"account-title\">Account {} <span class=\"muted\">{}</span>"
                           "</h1>\n{}{}{}\n<h2>History</h2>\n{}\n"
                           "<p class=\"muted\">Newest first; the newest 200 events of each "
                           "integration are kept.</p>",
                           view.account_id,
                           HtmlEscape(domain),
                           notice,
                           blocked,
                           rows,
                           history),
               view.csrf);
}

net::HttpResponse IntegrationsPage(const IntegrationsView& view) {
  std::string rows;
  for (const auto& r : view.rows) {
    rows += fmt::format(
        "<tr data-client-id=\"{0}\"><td><code>{0}</code></td><td>{1}</td><td>{2}</td>"
        "<td>{3}</td><td>{4}</td></tr>\n",
        HtmlEscape(r.client_id),
        HtmlEscape(r.kind),
        r.kind == "configured" ? std::string("<span class=\"muted\">configuration</span>")
                               : Time(r.created_at, view.now),
        r.accounts,
        r.active);
  }
  std::string note;
  if (!view.external_available) {
    note = "<p class=\"muted\">External integrations are not listed: no store.</p>";
  }
  return Frame(
      200,
      "Integrations",
      fmt::format(
          "<h1>Integrations</h1>\n<div class=\"box\"><dl><dt>Platform</dt><dd>{}</dd>"
          "<dt>Redirect URI</dt><dd><code>{}</code></dd></dl></div>\n"
          "<table id=\"integrations\"><thead><tr><th>Client id</th><th>Kind</th><th>Added</th>"
          "<th>Accounts</th><th>Active</th></tr></thead>\n<tbody>\n{}</tbody></table>\n{}"
          "<p class=\"muted\">The configured integration comes from AMO_CLIENT_ID; external ones "
          "were created by amoCRM through a metadata button. Secrets are never shown.</p>",
          HtmlEscape(core::ProductName(view.platform)),
          HtmlEscape(view.redirect_uri),
          rows,
          note),
      view.csrf);
}

net::HttpResponse MessagePage(int status,
                              std::string_view title,
                              std::string_view text,
                              std::string_view csrf) {
  return Frame(status,
               title,
               fmt::format("<h1 id=\"message-title\">{}</h1>\n<p class=\"box\" id=\"message\">{}"
                           "</p>\n<p><a href=\"/admin\">Back to the accounts</a></p>",
                           HtmlEscape(title),
                           HtmlEscape(text)),
               csrf);
}

net::HttpResponse Script() {
  // Asks before a form marked data-confirm is sent. Nothing else: the pages work without it.
  auto response =
      net::HttpResponse::Text(200,
                              "\"use strict\";\n"
                              "document.addEventListener(\"submit\", function (event) {\n"
                              "  var form = event.target;\n"
                              "  var question = form.getAttribute(\"data-confirm\");\n"
                              "  if (question && !window.confirm(question)) {\n"
                              "    event.preventDefault();\n"
                              "  }\n"
                              "});\n");
  response.headers.Set("Content-Type", "text/javascript; charset=utf-8");
  SetSecurityHeaders(response);
  response.headers.Set("Cache-Control", "no-cache");
  return response;
}

}  // namespace amoauth::web::admin
