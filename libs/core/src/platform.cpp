#include "amoauth/core/platform.hpp"

namespace amoauth::core {

std::string_view ToString(Platform p) {
  switch (p) {
    case Platform::kAmocrm:
      return "amocrm";
    case Platform::kKommo:
      return "kommo";
  }
  return "unknown";
}

std::optional<Platform> ParsePlatform(std::string_view s) {
  if (s == "amocrm") {
    return Platform::kAmocrm;
  }
  if (s == "kommo") {
    return Platform::kKommo;
  }
  return std::nullopt;
}

std::string_view ProductName(Platform p) {
  return p == Platform::kKommo ? "Kommo" : "amoCRM";
}

Platform PlatformOfHost(std::string_view account_host) {
  return account_host.ends_with(".kommo.com") ? Platform::kKommo : Platform::kAmocrm;
}

std::string_view DefaultConsentUrl(Platform p) {
  switch (p) {
    case Platform::kAmocrm:
      return "https://www.amocrm.ru/oauth";
    case Platform::kKommo:
      return "https://www.kommo.com/oauth";
  }
  return {};
}

std::string_view DefaultButtonScriptUrl(Platform p) {
  switch (p) {
    case Platform::kAmocrm:
      return "https://www.amocrm.ru/auth/button.min.js";
    case Platform::kKommo:
      return "https://www.kommo.com/auth/button.min.js";
  }
  return {};
}

std::string_view ButtonScriptClass(Platform p) {
  switch (p) {
    case Platform::kAmocrm:
      return "amocrm_oauth";
    case Platform::kKommo:
      return "kommo_oauth";
  }
  return {};
}

std::string_view ToString(ConsentMode m) {
  switch (m) {
    case ConsentMode::kPopup:
      return "popup";
    case ConsentMode::kPostMessage:
      return "post_message";
  }
  return "unknown";
}

std::optional<ConsentMode> ParseConsentMode(std::string_view s) {
  if (s == "popup") {
    return ConsentMode::kPopup;
  }
  if (s == "post_message") {
    return ConsentMode::kPostMessage;
  }
  return std::nullopt;
}

}  // namespace amoauth::core
