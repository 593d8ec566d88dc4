#pragma once

#include <optional>
#include <string_view>

namespace amoauth::core {

/// amoCRM (Russia) and Kommo (global) are separate platforms: separate hosts, databases and
/// integrations (protocol §1, §8).
enum class Platform { kAmocrm, kKommo };

[[nodiscard]] std::string_view ToString(Platform p);  // "amocrm" | "kommo"
[[nodiscard]] std::optional<Platform> ParsePlatform(std::string_view s);
/// The product's name as people read it: "amoCRM" | "Kommo".
[[nodiscard]] std::string_view ProductName(Platform p);
/// The platform of an account host: Kommo for *.kommo.com, amoCRM otherwise.
[[nodiscard]] Platform PlatformOfHost(std::string_view account_host);

/// The consent page base URL amoCRM / Kommo serve: https://www.amocrm.ru/oauth,
/// https://www.kommo.com/oauth.
[[nodiscard]] std::string_view DefaultConsentUrl(Platform p);
/// The site button script: https://www.amocrm.ru/auth/button.min.js,
/// https://www.kommo.com/auth/button.min.js.
[[nodiscard]] std::string_view DefaultButtonScriptUrl(Platform p);
/// The <script> class the button script looks for: amocrm_oauth | kommo_oauth.
[[nodiscard]] std::string_view ButtonScriptClass(Platform p);

/// How the consent window hands the user back (protocol §2.4).
enum class ConsentMode { kPopup, kPostMessage };
[[nodiscard]] std::string_view ToString(ConsentMode m);  // "popup" | "post_message"
[[nodiscard]] std::optional<ConsentMode> ParseConsentMode(std::string_view s);

}  // namespace amoauth::core
