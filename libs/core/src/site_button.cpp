#include "amoauth/core/site_button.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <string_view>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "amoauth/core/html_escape.hpp"
#include "amoauth/core/web_origin.hpp"

namespace amoauth::core {
namespace {

constexpr std::array<std::string_view, 6> kColors = {
    "default", "blue", "violet", "green", "orange", "red"};
constexpr std::array<std::string_view, 2> kThemes = {"light", "dark"};
constexpr std::array<std::string_view, 4> kLocales = {"en", "es", "pt", "id"};
constexpr std::array<std::string_view, 2> kScopes = {"crm", "notifications"};

constexpr std::size_t kMaxTitle = 200;
constexpr std::size_t kMaxName = 255;
constexpr std::size_t kMaxDescription = 2000;
constexpr std::size_t kMaxUrl = 2000;
constexpr std::size_t kMaxClassName = 200;
constexpr std::size_t kMaxIdentifier = 100;

template <std::size_t N>
bool OneOf(const std::array<std::string_view, N>& allowed, std::string_view value) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

template <std::size_t N>
std::string ListOf(const std::array<std::string_view, N>& allowed) {
  return fmt::format("{}", fmt::join(allowed, ", "));
}

ButtonOptionError Refuse(std::string_view field, std::string message) {
  return {std::string(field), std::move(message)};
}

bool HasControlCharacters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

/// Free text shown to a person (title, name, description): bounded, one line of printable text.
std::optional<ButtonOptionError> CheckText(std::string_view field,
                                           std::string_view value,
                                           std::size_t max) {
  if (value.size() > max) {
    return Refuse(field, fmt::format("{} must be at most {} characters long.", field, max));
  }
  if (HasControlCharacters(value)) {
    return Refuse(field, fmt::format("{} must not contain control characters.", field));
  }
  return std::nullopt;
}

/// A JS identifier, checked by hand: [A-Za-z_$][A-Za-z0-9_$]*. The button script calls
/// window[name] (amoCRM's evals it), so nothing else may get through.
bool IsJsIdentifier(std::string_view s) {
  auto start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
  };
  auto rest = [&start](char c) { return start(c) || (c >= '0' && c <= '9'); };
  return !s.empty() && s.size() <= kMaxIdentifier && start(s.front()) &&
         std::all_of(s.begin() + 1, s.end(), rest);
}

bool IsClassList(std::string_view s) {
  return s.size() <= kMaxClassName && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == ' ';
         });
}

bool IsLoopbackHost(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return lower == "127.0.0.1" || lower == "::1" || lower == "localhost";
}

/// amoCRM wants public https URLs for the metadata button (seed 002). http is let through on a
/// loopback host only, so that the sandbox and local development work (docs/api.md).
std::optional<ButtonOptionError> CheckHttpsUrl(std::string_view field, std::string_view value) {
  const std::string must = fmt::format(
      "{} must be an absolute https:// URL (http:// only on 127.0.0.1, ::1 or localhost).", field);
  if (value.size() > kMaxUrl) {
    return Refuse(field, fmt::format("{} must be at most {} characters long.", field, kMaxUrl));
  }
  auto url = boost::urls::parse_absolute_uri(value);
  if (!url || !url->has_authority() || url->host_address().empty()) {
    return Refuse(field, must);
  }
  const bool https = url->scheme_id() == boost::urls::scheme::https;
  const bool local_http =
      url->scheme_id() == boost::urls::scheme::http && IsLoopbackHost(url->host_address());
  if (!https && !local_http) {
    return Refuse(field, must);
  }
  return std::nullopt;
}

std::optional<ButtonOptionError> ParseScopes(std::string_view value,
                                             std::vector<std::string>& scopes) {
  scopes.clear();
  while (!value.empty()) {
    const auto comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') {
      item.remove_prefix(1);
    }
    while (!item.empty() && item.back() == ' ') {
      item.remove_suffix(1);
    }
    if (item.empty()) {
      continue;
    }
    if (!OneOf(kScopes, item)) {
      return Refuse("scopes",
                    fmt::format("scopes must be a comma-separated list of {}.", ListOf(kScopes)));
    }
    if (std::find(scopes.begin(), scopes.end(), item) == scopes.end()) {
      scopes.emplace_back(item);
    }
  }
  return std::nullopt;
}

std::string Canonical(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

void AppendAttribute(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  out += HtmlEscape(value);
  out += '"';
}

}  // namespace

std::string_view ToString(ButtonVariant v) {
  switch (v) {
    case ButtonVariant::kExisting:
      return "existing";
    case ButtonVariant::kMetadata:
      return "metadata";
  }
  return "unknown";
}

std::optional<ButtonOptionError> ApplyButtonOptions(const ButtonOptionPairs& options,
                                                    SiteButton& button) {
  std::set<std::string> seen;
  for (const auto& [raw_name, value] : options) {
    const std::string name = Canonical(raw_name);
    if (!seen.insert(name).second) {
      return Refuse(name, fmt::format("{} is given more than once.", name));
    }
    if (name == "variant") {
      if (value == "existing") {
        button.variant = ButtonVariant::kExisting;
      } else if (value == "metadata") {
        button.variant = ButtonVariant::kMetadata;
      } else {
        return Refuse(name, "variant must be existing or metadata.");
      }
    } else if (name == "title") {
      button.title = value;
    } else if (name == "compact") {
      if (value != "true" && value != "false") {
        return Refuse(name, "compact must be true or false.");
      }
      button.compact = value == "true";
    } else if (name == "class_name") {
      button.class_name = value;
    } else if (name == "color") {
      button.color = value;
    } else if (name == "theme") {
      button.theme = value;
    } else if (name == "locale") {
      button.locale = value;
    } else if (name == "error_callback") {
      button.error_callback = value;
    } else if (name == "mode") {
      auto mode = ParseConsentMode(value);
      if (!mode) {
        return Refuse(name, "mode must be popup or post_message.");
      }
      button.mode = *mode;
    } else if (name == "name") {
      button.name = value;
    } else if (name == "description") {
      button.description = value;
    } else if (name == "redirect_uri") {
      button.redirect_uri = value;
    } else if (name == "secrets_uri") {
      button.secrets_uri = value;
    } else if (name == "logo") {
      button.logo = value;
    } else if (name == "scopes") {
      if (auto refused = ParseScopes(value, button.scopes)) {
        return refused;
      }
    } else if (name == "client_id" || name == "state") {
      return Refuse(name,
                    fmt::format("{} is set by amoauth (its integration and a fresh single-use "
                                "state); it cannot be chosen.",
                                name));
    } else {
      return Refuse(name,
                    fmt::format("{} is not a button option; the options are variant, title, "
                                "compact, class_name, color, theme, locale, error_callback, mode, "
                                "name, description, redirect_uri, secrets_uri, logo, scopes.",
                                name));
    }
  }
  return std::nullopt;
}

std::optional<ButtonOptionError> ValidateSiteButton(const SiteButton& b) {
  if (auto bad = CheckText("title", b.title, kMaxTitle)) {
    return bad;
  }
  if (!IsClassList(b.class_name)) {
    return Refuse("class_name",
                  fmt::format("class_name must be CSS class names (letters, digits, - and _, "
                              "separated by spaces), at most {} characters.",
                              kMaxClassName));
  }
  if (b.platform == Platform::kAmocrm) {
    if (!b.color.empty() && !OneOf(kColors, b.color)) {
      return Refuse("color", fmt::format("color must be one of {}.", ListOf(kColors)));
    }
    if (!b.theme.empty()) {
      return Refuse("theme", "theme is an option of Kommo's button; amoCRM's has color instead.");
    }
    if (!b.locale.empty()) {
      return Refuse("locale", "locale is an option of Kommo's button, not amoCRM's.");
    }
  } else {
    if (!b.color.empty()) {
      return Refuse("color", "color is an option of amoCRM's button; Kommo's has theme instead.");
    }
    if (!b.theme.empty() && !OneOf(kThemes, b.theme)) {
      return Refuse("theme", fmt::format("theme must be one of {}.", ListOf(kThemes)));
    }
    if (!b.locale.empty() && !OneOf(kLocales, b.locale)) {
      return Refuse("locale", fmt::format("locale must be one of {}.", ListOf(kLocales)));
    }
  }
  if (!b.error_callback.empty() && !IsJsIdentifier(b.error_callback)) {
    return Refuse("error_callback",
                  fmt::format("error_callback must be the name of a global JavaScript function: "
                              "a letter, _ or $, then letters, digits, _ or $ (at most {}).",
                              kMaxIdentifier));
  }

  if (b.variant == ButtonVariant::kExisting) {
    // Metadata on an existing-integration button would be ignored by amoCRM: say so instead.
    const std::array<std::pair<std::string_view, bool>, 5> metadata_only = {{
        {"name", !b.name.empty()},
        {"description", !b.description.empty()},
        {"secrets_uri", !b.secrets_uri.empty()},
        {"logo", !b.logo.empty()},
        {"redirect_uri", !b.redirect_uri.empty()},
    }};
    for (const auto& [field, given] : metadata_only) {
      if (given) {
        return Refuse(
            field,
            fmt::format("{} is an option of the metadata button (variant=metadata).", field));
      }
    }
    return std::nullopt;
  }

  if (!b.client_id.empty()) {
    return Refuse("client_id", "the metadata button creates a new integration: no client_id.");
  }
  if (b.name.empty()) {
    return Refuse("name", "name (the new integration's name) is required for variant=metadata.");
  }
  if (auto bad = CheckText("name", b.name, kMaxName)) {
    return bad;
  }
  if (b.description.empty()) {
    return Refuse("description", "description is required for variant=metadata.");
  }
  if (auto bad = CheckText("description", b.description, kMaxDescription)) {
    return bad;
  }
  if (auto bad = CheckHttpsUrl("redirect_uri", b.redirect_uri)) {
    return bad;
  }
  if (auto bad = CheckHttpsUrl("secrets_uri", b.secrets_uri)) {
    return bad;
  }
  if (!b.logo.empty()) {
    if (auto bad = CheckHttpsUrl("logo", b.logo)) {
      return bad;
    }
  }
  if (b.scopes.empty()) {
    return Refuse("scopes", fmt::format("scopes must name at least one of {}.", ListOf(kScopes)));
  }
  for (const std::string& scope : b.scopes) {
    if (!OneOf(kScopes, scope)) {
      return Refuse("scopes",
                    fmt::format("scopes must be a comma-separated list of {}.", ListOf(kScopes)));
    }
  }
  return std::nullopt;
}

std::optional<ButtonOptionError> MakeSiteButton(const ButtonContext& context,
                                                const ButtonOptionPairs& options,
                                                SiteButton& button) {
  button.platform = context.platform;
  button.script_url = context.script_url;
  button.client_id = context.client_id;
  if (auto refused = ApplyButtonOptions(options, button)) {
    return refused;
  }
  if (button.variant == ButtonVariant::kMetadata) {
    // The new integration's code and keys come back to this amoauth unless the caller says where.
    button.client_id.clear();
    if (button.redirect_uri.empty()) {
      button.redirect_uri = context.redirect_uri;
    }
    if (button.secrets_uri.empty()) {
      if (auto origin = WebOrigin(context.redirect_uri)) {
        button.secrets_uri = *origin + context.secrets_path;
      }
    }
  }
  return ValidateSiteButton(button);
}

std::string RenderSiteButton(const SiteButton& b) {
  std::string out = "<script";
  AppendAttribute(out, "class", ButtonScriptClass(b.platform));
  AppendAttribute(out, "charset", "utf-8");
  if (b.variant == ButtonVariant::kExisting) {
    AppendAttribute(out, "data-client-id", b.client_id);
  } else {
    // The attribute names as amoCRM's script reads them (with underscores, seed 002).
    AppendAttribute(out, "data-name", b.name);
    AppendAttribute(out, "data-description", b.description);
    AppendAttribute(out, "data-redirect_uri", b.redirect_uri);
    AppendAttribute(out, "data-secrets_uri", b.secrets_uri);
    if (!b.logo.empty()) {
      AppendAttribute(out, "data-logo", b.logo);
    }
    AppendAttribute(out, "data-scopes", fmt::format("{}", fmt::join(b.scopes, ",")));
  }
  // The script falls back to its own text only when the attribute is absent; an empty value would
  // render an empty button.
  if (!b.title.empty()) {
    AppendAttribute(out, "data-title", b.title);
  }
  AppendAttribute(out, "data-compact", b.compact ? "true" : "false");
  if (!b.class_name.empty()) {
    AppendAttribute(out, "data-class-name", b.class_name);
  }
  if (b.platform == Platform::kAmocrm) {
    AppendAttribute(out, "data-color", b.color.empty() ? std::string_view("default") : b.color);
  } else {
    if (!b.theme.empty()) {
      AppendAttribute(out, "data-theme", b.theme);
    }
    if (!b.locale.empty()) {
      AppendAttribute(out, "data-locale", b.locale);
    }
  }
  AppendAttribute(out, "data-state", b.state);
  if (!b.error_callback.empty()) {
    AppendAttribute(out, "data-error-callback", b.error_callback);
  }
  AppendAttribute(out, "data-mode", ToString(b.mode));
  AppendAttribute(out, "src", b.script_url);
  out += "></script>";
  return out;
}

}  // namespace amoauth::core
