#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/platform.hpp"
#include "amoauth/net/http_message.hpp"
#include "amoauth/service/ports.hpp"

/// The admin UI's HTML (docs/admin-ui.md). Every value from the store or the request goes through
/// core::HtmlEscape; no inline script (the CSP allows only /admin/admin.js).
namespace amoauth::web::admin {

/// "in 23 h", "3 days ago", "in 5 min", "just now"; "never" for TimePoint{}. From the server's
/// (injected) clock, so pages are deterministic under test.
[[nodiscard]] std::string RelativeTime(core::TimePoint when, core::TimePoint now);

/// Sets the headers every admin response carries: CSP (scripts only from /admin/admin.js, no
/// framing, forms only to this origin), Referrer-Policy no-referrer, nosniff, no-store.
void SetSecurityHeaders(net::HttpResponse& response);

/// A message for the person after an action (fixed words, never echoed from the request).
struct Notice {
  bool ok = true;
  std::string text;
};

[[nodiscard]] net::HttpResponse LoginPage(int status, std::string_view error_message);

struct AccountsView {
  std::vector<core::Connection> rows;
  core::TimePoint now{};
  std::string csrf;
};
[[nodiscard]] net::HttpResponse AccountsPage(const AccountsView& view);

struct AccountView {
  std::int64_t account_id = 0;
  std::vector<core::Connection> rows;
  std::vector<service::AccountEvent> events;
  bool history_available = true;
  core::TimePoint now{};
  std::string csrf;
  std::optional<Notice> notice;
  /// Why the limiter holds the account back, if it does (seconds left).
  std::optional<std::int64_t> blocked_for_seconds;
};
[[nodiscard]] net::HttpResponse AccountPage(int status, const AccountView& view);

struct IntegrationRow {
  std::string client_id;
  std::string kind;  ///< "configured" | "external"
  core::TimePoint created_at{};
  std::size_t accounts = 0;
  std::size_t active = 0;
};
struct IntegrationsView {
  core::Platform platform = core::Platform::kAmocrm;
  std::string redirect_uri;
  std::vector<IntegrationRow> rows;
  bool external_available = true;
  core::TimePoint now{};
  std::string csrf;
};
[[nodiscard]] net::HttpResponse IntegrationsPage(const IntegrationsView& view);

/// A page with a title and words (refusals, errors), with the navigation when `csrf` is set.
[[nodiscard]] net::HttpResponse MessagePage(int status,
                                            std::string_view title,
                                            std::string_view text,
                                            std::string_view csrf = {});

/// GET /admin/admin.js: confirmations for the forms that change something.
[[nodiscard]] net::HttpResponse Script();

}  // namespace amoauth::web::admin
