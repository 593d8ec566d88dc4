#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "amoauth/core/platform.hpp"

namespace amoauth::core {

/// Which of amoCRM's two site buttons (seed 002; protocol §2.2–2.3).
enum class ButtonVariant {
  kExisting,  ///< installs an integration that exists: data-client-id
  kMetadata,  ///< creates a new external integration from metadata (name, secrets_uri, …)
};
[[nodiscard]] std::string_view ToString(ButtonVariant v);  // "existing" | "metadata"

/// The amoCRM/Kommo site button, either variant:
///   <script class="amocrm_oauth" charset="utf-8" data-client-id="…" data-title="…"
///           data-compact="false" data-color="default" data-state="…" data-mode="popup"
///           src="{script_url}"></script>
/// Empty optional fields are left out of the tag (the script then uses its own default).
/// Every attribute value is HTML-escaped when rendered; ValidateSiteButton says whether the values
/// are acceptable at all.
struct SiteButton {
  Platform platform = Platform::kAmocrm;
  std::string
      script_url;  ///< DefaultButtonScriptUrl() in production, the sandbox's in sandbox mode
  ButtonVariant variant = ButtonVariant::kExisting;
  std::string client_id;  ///< existing variant only
  std::string title;      ///< empty: the script's default text
  bool compact = false;
  std::string class_name;  ///< CSS class(es) of the button element
  std::string color;       ///< amoCRM only: default|blue|violet|green|orange|red; empty: default
  std::string theme;       ///< Kommo only: light|dark
  std::string locale;      ///< Kommo only: en|es|pt|id
  std::string state;
  std::string error_callback;  ///< name of a global function: a JS identifier
  ConsentMode mode = ConsentMode::kPopup;

  // The metadata variant (seed 002, second table).
  std::string name;
  std::string description;
  std::string redirect_uri;  ///< https (or http on a loopback host)
  std::string secrets_uri;   ///< https (or http on a loopback host)
  std::string logo;          ///< optional; https (or http on a loopback host)
  std::vector<std::string> scopes = {"crm", "notifications"};  ///< a subset of these two
};

/// Why a button option was refused: the option's name as the caller spelled it in the request
/// (e.g. "color") and a sentence naming it and the allowed values.
struct ButtonOptionError {
  std::string field;
  std::string message;
};

/// Options as a caller gives them: query parameters, CLI flags, AMOAUTH_BUTTON_* settings.
using ButtonOptionPairs = std::vector<std::pair<std::string, std::string>>;

/// Applies `options` over `button`. Names are the seed's attribute names without "data-";
/// `-` and `_` are interchangeable (class-name = class_name). Accepted: variant
/// (existing|metadata), title, compact (true|false), class_name, color, theme, locale,
/// error_callback, mode (popup|post_message), name, description, redirect_uri, secrets_uri,
/// logo, scopes (comma-separated). client_id and state are amoauth's to set; they, unknown names
/// and a name given twice are refused. Stops at the first refused option; values are checked
/// as a whole by ValidateSiteButton afterwards.
[[nodiscard]] std::optional<ButtonOptionError> ApplyButtonOptions(const ButtonOptionPairs& options,
                                                                  SiteButton& button);

/// Checks every value of `button` for its variant and platform: colors, theme, locale, mode,
/// the error callback (a JS identifier), required metadata, https URLs (http only on 127.0.0.1,
/// ::1 or localhost), scopes. nullopt when the button may be rendered.
[[nodiscard]] std::optional<ButtonOptionError> ValidateSiteButton(const SiteButton& button);

/// What amoauth itself puts on the buttons it renders.
struct ButtonContext {
  Platform platform = Platform::kAmocrm;
  std::string script_url;
  std::string client_id;     ///< amoauth's integration (existing variant)
  std::string redirect_uri;  ///< its Redirect URI: the metadata variant's default redirect_uri
  /// AMOAUTH_SECRETS_PATH: the metadata variant's default secrets_uri is the Redirect URI's
  /// origin + this path.
  std::string secrets_path;
};

/// `button` (its defaults, e.g. a title, set by the caller) with `context` put in, `options`
/// applied, the metadata variant's redirect_uri and secrets_uri defaulted to amoauth's own, and
/// the whole validated. nullopt when `button` may be rendered (once it has a state).
[[nodiscard]] std::optional<ButtonOptionError> MakeSiteButton(const ButtonContext& context,
                                                              const ButtonOptionPairs& options,
                                                              SiteButton& button);

/// The <script> tag. Renders whatever it is given, escaped; validate first.
[[nodiscard]] std::string RenderSiteButton(const SiteButton& b);

}  // namespace amoauth::core
