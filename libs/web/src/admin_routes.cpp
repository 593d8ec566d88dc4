// The admin UI (docs/admin-ui.md): a login with the API key that sets a session cookie, the
// accounts, an account's history and actions, the integrations. Server-rendered; the only script
// is /admin/admin.js.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "admin_pages.hpp"
#include "admin_sessions.hpp"
#include "amoauth/crypto/constant_time.hpp"
#include "amoauth/web/web_app.hpp"
#include "error_mapping.hpp"

namespace amoauth::web {
namespace {

using net::HttpRequest;
using net::HttpResponse;

constexpr std::string_view kCookieName = "amoauth_admin";
/// How many history entries the account page shows.
constexpr std::size_t kHistoryShown = 100;

/// The value of cookie `name` in the request's Cookie header(s).
std::optional<std::string> CookieValue(const HttpRequest& request, std::string_view name) {
  for (const auto& field : request.headers.All()) {
    if (field.name.size() != 6 ||
        !std::equal(field.name.begin(), field.name.end(), "cookie", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      continue;
    }
    std::string_view rest = field.value;
    while (!rest.empty()) {
      const auto semicolon = rest.find(';');
      std::string_view pair = rest.substr(0, semicolon);
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      while (!pair.empty() && pair.front() == ' ') {
        pair.remove_prefix(1);
      }
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        return std::string(pair.substr(eq + 1));
      }
    }
  }
  return std::nullopt;
}

HttpResponse SeeOther(std::string_view location) {
  auto response = HttpResponse::Redirect(303, location);
  admin::SetSecurityHeaders(response);
  return response;
}

std::optional<std::int64_t> ParseId(std::string_view text) {
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return std::nullopt;
  }
  return id;
}

/// An Origin header naming a site must name this host (whatever the scheme: a proxy may end TLS).
/// No Origin, or "null", passes: the pages' Referrer-Policy: no-referrer makes browsers send
/// "null" on the UI's own forms; the session's CSRF token and SameSite=Strict still decide.
bool SameOrigin(const HttpRequest& request) {
  const auto origin = request.headers.Get("Origin");
  if (!origin || *origin == "null") {
    return true;
  }
  const auto host = request.headers.Get("Host").value_or("");
  const auto scheme_end = origin->find("://");
  if (scheme_end == std::string_view::npos || host.empty()) {
    return false;
  }
  return origin->substr(scheme_end + 3) == host;
}

std::optional<admin::Notice> NoticeFromQuery(std::string_view raw_query) {
  auto query = net::ParseQuery(raw_query);
  if (!query) {
    return std::nullopt;
  }
  const auto done = net::Find(*query, "done");
  if (done == "refreshed") {
    return admin::Notice{.ok = true, .text = "Refreshed: a new access token is stored."};
  }
  if (done == "disconnected") {
    return admin::Notice{.ok = true,
                         .text =
                             "Disconnected: its tokens are erased. Connect the account again "
                             "to use it."};
  }
  return std::nullopt;
}

}  // namespace

void WebApp::AddAdminRoutes(http_server::Router& router) {
  router.Add("GET", "/admin", [this](HttpRequest r) { return AdminAccounts(std::move(r)); });
  router.Add("GET", "/admin/", [this](HttpRequest r) { return AdminAccounts(std::move(r)); });
  router.Add("GET", "/admin/login", [this](HttpRequest r) { return AdminLoginForm(std::move(r)); });
  router.Add("POST", "/admin/login", [this](HttpRequest r) { return AdminLogin(std::move(r)); });
  router.Add("POST", "/admin/logout", [this](HttpRequest r) { return AdminLogout(std::move(r)); });
  router.Add("GET", "/admin/admin.js", [this](HttpRequest r) { return AdminScript(std::move(r)); });
  router.Add("GET", "/admin/integrations", [this](HttpRequest r) {
    return AdminIntegrations(std::move(r));
  });
  router.Add(
      "GET", "/admin/accounts/{id}", [this](HttpRequest r) { return AdminAccount(std::move(r)); });
  router.Add("POST", "/admin/accounts/{id}/refresh", [this](HttpRequest r) {
    return AdminRefresh(std::move(r));
  });
  router.Add("POST", "/admin/accounts/{id}/disconnect", [this](HttpRequest r) {
    return AdminDisconnect(std::move(r));
  });
}

WebApp::LoginVerdict WebApp::CheckAdminLogin(const std::string& address,
                                             std::string_view key,
                                             std::chrono::seconds& retry_after) {
  // Two counts: the login's own, and the one /v1 keeps of wrong keys. A guesser gains nothing by
  // switching between the login form and the API: a wrong key on either counts on both.
  if (auto wait = login_limiter_->Refused(address)) {
    retry_after = *wait;
    return LoginVerdict::kTooManyFailures;
  }
  if (auto wait = api_key_failures_.Blocked(address)) {
    retry_after = *wait;
    return LoginVerdict::kTooManyFailures;
  }
  const bool ok = !settings_.api_key.Empty() && !key.empty() &&
                  crypto::ConstantTimeEquals(key, settings_.api_key.Reveal());
  if (!ok) {
    login_limiter_->Failed(address);
    api_key_failures_.Record(address);
    return LoginVerdict::kWrongKey;
  }
  login_limiter_->Succeeded(address);
  return LoginVerdict::kOk;
}

std::optional<WebApp::AdminCaller> WebApp::AdminSession(const Request& request) const {
  auto id = CookieValue(request, kCookieName);
  if (!id) {
    return std::nullopt;
  }
  auto session = admin_sessions_->Find(*id);
  if (!session) {
    return std::nullopt;
  }
  return AdminCaller{.session_id = std::move(*id), .csrf = std::move(session->csrf)};
}

std::optional<net::HttpResponse> WebApp::RejectAdminPost(const Request& request,
                                                         const net::QueryParams& form,
                                                         std::optional<AdminCaller>& caller) const {
  caller = AdminSession(request);
  if (!caller) {
    return SeeOther("/admin/login");
  }
  const auto token = net::Find(form, "csrf").value_or("");
  if (!SameOrigin(request) || token.empty() || !crypto::ConstantTimeEquals(token, caller->csrf)) {
    spdlog::warn("admin: a form without this session's CSRF token was refused");
    return admin::MessagePage(403,
                              "This form has expired",
                              "The request did not come from a page of this admin session, so "
                              "nothing was changed. Reload the page and try again.",
                              caller->csrf);
  }
  return std::nullopt;
}

std::string WebApp::SessionCookie(std::string_view value, std::chrono::seconds max_age) const {
  const bool secure =
      settings_.admin_cookie_secure || flow_.GetIntegration().redirect_uri.starts_with("https://");
  return fmt::format("{}={}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
                     kCookieName,
                     value,
                     max_age.count(),
                     secure ? "; Secure" : "");
}

WebApp::Task WebApp::AdminLoginForm(Request request) {
  if (AdminSession(request)) {
    co_return SeeOther("/admin");
  }
  co_return admin::LoginPage(200, {});
}

WebApp::Task WebApp::AdminLogin(Request request) {
  if (!SameOrigin(request)) {
    co_return admin::LoginPage(403, "This login form was not sent from this site.");
  }
  auto form = net::ParseQuery(request.body);
  const std::string key = form ? std::string(net::Find(*form, "api_key").value_or("")) : "";
  std::chrono::seconds retry_after{0};
  switch (CheckAdminLogin(settings_.client_addresses.LimitKeyOf(request), key, retry_after)) {
    case LoginVerdict::kOk:
      break;
    case LoginVerdict::kWrongKey: {
      spdlog::warn("admin: a login with a wrong API key from {}", request.remote_address);
      co_return admin::LoginPage(
          401, "That is not the API key (AMOAUTH_API_KEY). Nothing was opened; try again.");
    }
    case LoginVerdict::kTooManyFailures: {
      spdlog::warn("admin: logins from {} refused for {} s after repeated failures",
                   request.remote_address,
                   retry_after.count());
      auto refused = admin::LoginPage(
          429,
          fmt::format("Too many wrong keys from this address. Try again in {} min.",
                      (retry_after.count() + 59) / 60));
      refused.headers.Set("Retry-After", std::to_string(retry_after.count()));
      co_return refused;
    }
  }
  auto created = admin_sessions_->Create();
  spdlog::info("admin: logged in from {}", request.remote_address);
  auto response = SeeOther("/admin");
  response.headers.Set("Set-Cookie", SessionCookie(created.id, admin_sessions_->Ttl()));
  co_return response;
}

WebApp::Task WebApp::AdminLogout(Request request) {
  auto form = net::ParseQuery(request.body);
  const net::QueryParams fields = form ? std::move(*form) : net::QueryParams{};
  std::optional<AdminCaller> caller;
  if (auto rejected = RejectAdminPost(request, fields, caller)) {
    co_return std::move(*rejected);
  }
  admin_sessions_->Remove(caller->session_id);
  auto response = SeeOther("/admin/login");
  response.headers.Set("Set-Cookie", SessionCookie("", std::chrono::seconds{0}));
  co_return response;
}

WebApp::Task WebApp::AdminScript(Request /*request*/) {
  co_return admin::Script();
}

WebApp::Task WebApp::AdminAccounts(Request request) {
  auto caller = AdminSession(request);
  if (!caller) {
    co_return SeeOther("/admin/login");
  }
  auto all = co_await accounts_.List();
  if (!all) {
    const ErrorView view = ViewOf(all.error());
    co_return admin::MessagePage(view.status, view.title, view.advice, caller->csrf);
  }
  admin::AccountsView view{.rows = std::move(*all), .now = clock_.Now(), .csrf = caller->csrf};
  co_return admin::AccountsPage(view);
}

WebApp::Task WebApp::AdminAccount(Request request) {
  auto caller = AdminSession(request);
  if (!caller) {
    co_return SeeOther("/admin/login");
  }
  auto id = ParseId(request.PathParam("id"));
  if (!id) {
    co_return admin::MessagePage(
        404, "No such account", "An account id is a positive number.", caller->csrf);
  }
  auto rows = co_await accounts_.ListAccount(*id);
  if (!rows) {
    const ErrorView view = ViewOf(rows.error());
    co_return admin::MessagePage(view.status, view.title, view.advice, caller->csrf);
  }
  if (rows->empty()) {
    co_return admin::MessagePage(404,
                                 "No such account",
                                 fmt::format("amoauth has no connection of account {}.", *id),
                                 caller->csrf);
  }
  admin::AccountView view{.account_id = *id,
                          .rows = std::move(*rows),
                          .history_available = history_ != nullptr,
                          .now = clock_.Now(),
                          .csrf = caller->csrf,
                          .notice = NoticeFromQuery(request.RawQuery())};
  if (history_ != nullptr) {
    auto events = co_await history_->ListAccountEvents(*id, kHistoryShown);
    if (!events) {
      const ErrorView error = ViewOf(events.error());
      co_return admin::MessagePage(error.status, error.title, error.advice, caller->csrf);
    }
    view.events = std::move(*events);
  }
  if (auto blocked = accounts_.Limiter().BlockedFor(*id)) {
    view.blocked_for_seconds = blocked->count();
  }
  co_return admin::AccountPage(200, view);
}

WebApp::Task WebApp::AdminRefresh(Request request) {
  auto form = net::ParseQuery(request.body);
  const net::QueryParams fields = form ? std::move(*form) : net::QueryParams{};
  std::optional<AdminCaller> caller;
  if (auto rejected = RejectAdminPost(request, fields, caller)) {
    co_return std::move(*rejected);
  }
  auto id = ParseId(request.PathParam("id"));
  const auto client_id = net::Find(fields, "client_id");
  if (!id || !client_id || client_id->empty()) {
    co_return admin::MessagePage(
        400, "Nothing was refreshed", "The form names no account and integration.", caller->csrf);
  }
  std::optional<std::string> integration = std::string(*client_id);
  auto refreshed = co_await accounts_.ForceRefresh(*id, std::move(integration));
  if (refreshed) {
    spdlog::info("admin: forced a refresh of account {}", *id);
    co_return SeeOther(fmt::format("/admin/accounts/{}?done=refreshed", *id));
  }
  const ErrorView error = ViewOf(refreshed.error());
  spdlog::warn(
      "admin: the forced refresh of account {} failed: {}", *id, refreshed.error().message());
  auto rows = co_await accounts_.ListAccount(*id);
  admin::AccountView view{
      .account_id = *id,
      .history_available = history_ != nullptr,
      .now = clock_.Now(),
      .csrf = caller->csrf,
      .notice = admin::Notice{
          .ok = false,
          .text = fmt::format(
              "The refresh failed ({}): {} {}", error.code, error.title, error.advice)}};
  if (rows) {
    view.rows = std::move(*rows);
  }
  if (history_ != nullptr) {
    if (auto events = co_await history_->ListAccountEvents(*id, kHistoryShown)) {
      view.events = std::move(*events);
    }
  }
  co_return admin::AccountPage(error.status, view);
}

WebApp::Task WebApp::AdminDisconnect(Request request) {
  auto form = net::ParseQuery(request.body);
  const net::QueryParams fields = form ? std::move(*form) : net::QueryParams{};
  std::optional<AdminCaller> caller;
  if (auto rejected = RejectAdminPost(request, fields, caller)) {
    co_return std::move(*rejected);
  }
  auto id = ParseId(request.PathParam("id"));
  const auto client_id = net::Find(fields, "client_id");
  if (!id || !client_id || client_id->empty()) {
    co_return admin::MessagePage(400,
                                 "Nothing was disconnected",
                                 "The form names no account and integration.",
                                 caller->csrf);
  }
  std::string integration(*client_id);
  auto done = co_await accounts_.DisconnectByOperator(*id, std::move(integration));
  if (!done) {
    const ErrorView error = ViewOf(done.error());
    co_return admin::MessagePage(error.status, error.title, error.advice, caller->csrf);
  }
  spdlog::info("admin: disconnected account {}", *id);
  co_return SeeOther(fmt::format("/admin/accounts/{}?done=disconnected", *id));
}

WebApp::Task WebApp::AdminIntegrations(Request request) {
  auto caller = AdminSession(request);
  if (!caller) {
    co_return SeeOther("/admin/login");
  }
  auto all = co_await accounts_.List();
  if (!all) {
    const ErrorView view = ViewOf(all.error());
    co_return admin::MessagePage(view.status, view.title, view.advice, caller->csrf);
  }
  std::map<std::string, std::pair<std::size_t, std::size_t>> counts;  // client id: rows, active
  for (const auto& c : *all) {
    auto& [rows, active] = counts[c.client_id];
    ++rows;
    active += c.status == core::ConnectionStatus::kActive ? 1 : 0;
  }
  admin::IntegrationsView view{.platform = settings_.platform,
                               .redirect_uri = flow_.GetIntegration().redirect_uri,
                               .external_available = integrations_ != nullptr,
                               .now = clock_.Now(),
                               .csrf = caller->csrf};
  const std::string& primary = flow_.GetIntegration().client_id;
  view.rows.push_back({.client_id = primary,
                       .kind = "configured",
                       .accounts = counts[primary].first,
                       .active = counts[primary].second});
  if (integrations_ != nullptr) {
    auto external = co_await integrations_->ListIntegrations();
    if (!external) {
      const ErrorView error = ViewOf(external.error());
      co_return admin::MessagePage(error.status, error.title, error.advice, caller->csrf);
    }
    for (const auto& integration : *external) {
      view.rows.push_back({.client_id = integration.client_id,
                           .kind = "external",
                           .created_at = integration.created_at,
                           .accounts = counts[integration.client_id].first,
                           .active = counts[integration.client_id].second});
    }
  }
  co_return admin::IntegrationsPage(view);
}

}  // namespace amoauth::web
