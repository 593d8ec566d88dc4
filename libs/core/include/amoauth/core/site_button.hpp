#pragma once

#include <string>

#include "amoauth/core/platform.hpp"

namespace amoauth::core {

/// The amoCRM site button for an existing integration (seed 002, first table; protocol §2.3):
///   <script class="amocrm_oauth" charset="utf-8" data-client-id="…" data-title="…"
///           data-compact="false" data-color="default" data-state="…" data-mode="popup"
///           src="{script_url}"></script>
/// Every attribute value is HTML-escaped. Issue 4 adds the metadata variant beside it.
struct SiteButton {
  Platform platform = Platform::kAmocrm;
  std::string
      script_url;  ///< DefaultButtonScriptUrl() in production, the sandbox's in sandbox mode
  std::string client_id;
  std::string title;  ///< empty: the script's default text
  bool compact = false;
  std::string color = "default";
  std::string state;
  ConsentMode mode = ConsentMode::kPopup;
};

[[nodiscard]] std::string RenderSiteButton(const SiteButton& b);

}  // namespace amoauth::core
