#include "pages.hpp"

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

net::HttpResponse Page(int status, std::string_view title, std::string_view body_html) {
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
  return response;
}

}  // namespace

net::HttpResponse Connect(std::string_view button_html) {
  return Page(200,
              "Connect amoCRM",
              fmt::format("<h1>Connect your amoCRM account</h1>\n"
                          "<p>Press the button, choose the account in the window that opens and "
                          "allow access. You will come back here when it is done.</p>\n"
                          "<div class=\"box\" id=\"connect\">{}</div>\n"
                          "<p class=\"muted\">The link in this button works once and for 20 "
                          "minutes; reload the page for a new one.</p>",
                          button_html));
}

net::HttpResponse Connected(const core::Connection& connection) {
  return Page(200,
              "Connected",
              fmt::format("<h1 id=\"result\">amoCRM account {} is connected</h1>\n"
                          "<div class=\"box\"><p>Account <b id=\"account-domain\">{}</b> "
                          "(id <span id=\"account-id\">{}</span>) is connected. amoauth keeps its "
                          "access fresh from now on.</p>\n<p class=\"muted\">Access token valid "
                          "until {}.</p></div>\n<p>You can close this page.</p>",
                          core::HtmlEscape(connection.base_domain),
                          core::HtmlEscape(connection.base_domain),
                          connection.account_id,
                          core::FormatIsoTime(connection.expires_at)));
}

net::HttpResponse Error(const ErrorView& view, std::string_view request_id) {
  return Page(view.status,
              view.title,
              fmt::format("<h1 id=\"result\">{}</h1>\n<div class=\"box\"><p id=\"advice\">{}</p>"
                          "</div>\n<p><a class=\"button\" href=\"/\">Start again</a></p>\n"
                          "<p class=\"muted\">Reference: {}</p>",
                          core::HtmlEscape(view.title),
                          core::HtmlEscape(view.advice),
                          core::HtmlEscape(request_id)));
}

}  // namespace amoauth::web::pages
