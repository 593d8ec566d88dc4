#include "consent_pages.hpp"

#include <boost/json/serialize.hpp>

#include "sandbox_state.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::string_view kStyle = R"CSS(
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef2f5;color:#1f2d3d;margin:0}
main{max-width:640px;margin:40px auto;background:#fff;border-radius:8px;padding:28px 32px;box-shadow:0 2px 10px rgba(0,0,0,.08)}
.brand{color:#339dc7;font-weight:600;margin:0 0 12px}
h1{font-size:22px;margin:0 0 16px}
label{display:block;margin:16px 0 6px;font-weight:600}
select{width:100%;padding:8px;font:inherit}
.actions{margin-top:24px;display:flex;gap:12px}
button{font:inherit;padding:10px 22px;border-radius:4px;border:1px solid #339dc7;cursor:pointer}
#allow{background:#339dc7;color:#fff}
#deny{background:#fff;color:#339dc7}
table{border-collapse:collapse;width:100%;margin:8px 0 20px}
td,th{border-bottom:1px solid #e3e8ec;padding:6px 8px;text-align:left;font-size:14px}
code{font-size:13px}
.muted{color:#6b7a89;font-size:13px}
)CSS";

constexpr std::string_view kButtonScript =
    R"JS(/* amoauth sandbox: a stand-in for https://www.amocrm.ru/auth/button.js (protocol §2.3). */
(function () {
  "use strict";
  var COLORS = {
    "default": "#339DC7",
    blue: "#2A6FD6",
    violet: "#8A5CD1",
    green: "#3AAA5C",
    orange: "#F08C2E",
    red: "#E0474C"
  };
  var POPUP_WIDTH = 750;
  var POPUP_HEIGHT = 580;
  var POPUP_TITLE = "Предоставить доступ для интеграции";
  var IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  // Kommo: data-locale picks the consent page's language path (protocol §2.3, §8).
  var KOMMO_LOCALE_PATHS = { es: "/es", pt: "/br", id: "/id" };
  var KOMMO_THEMES = { light: "#4C8BF7", dark: "#0C1F35" };
  var registry = window.__amoauthSandboxOAuth ||
      (window.__amoauthSandboxOAuth = { scripts: [], origins: {} });

  function randomState() {
    return Math.random().toString(36).substring(2);
  }

  function originOf(script) {
    try {
      return new URL(script.src, window.location.href).origin;
    } catch (e) {
      return window.location.origin;
    }
  }

  function has(value) {
    return typeof value === "string" && value !== "";
  }

  function popupUrl(script, origin, state, mode) {
    var d = script.dataset;
    var params = [];
    function add(name, value) {
      params.push(encodeURIComponent(name) + "=" + encodeURIComponent(value));
    }
    var metadata = !has(d.clientId) && has(d.name) && has(d.description) &&
        has(d.redirect_uri) && has(d.secrets_uri) && has(d.scopes);
    if (!metadata) {
      add("client_id", d.clientId || "");
    }
    add("state", state);
    add("mode", mode);
    add("origin", window.location.href);
    if (metadata) {
      add("name", d.name);
      add("description", d.description);
      add("redirect_uri", d.redirect_uri);
      add("secrets_uri", d.secrets_uri);
      if (has(d.logo)) {
        add("logo", d.logo);
      }
      d.scopes.split(",").forEach(function (scope) {
        scope = scope.trim();
        if (scope !== "") {
          add("scopes[]", scope);
        }
      });
    }
    var prefix = "";
    if (script.classList.contains("kommo_oauth") &&
        Object.prototype.hasOwnProperty.call(KOMMO_LOCALE_PATHS, d.locale)) {
      prefix = KOMMO_LOCALE_PATHS[d.locale];
    }
    return origin + prefix + "/oauth?" + params.join("&");
  }

  function openCentered(url) {
    var screenLeft = window.screenX !== undefined ? window.screenX : window.screenLeft;
    var screenTop = window.screenY !== undefined ? window.screenY : window.screenTop;
    var width = window.outerWidth || document.documentElement.clientWidth || screen.width;
    var height = window.outerHeight || document.documentElement.clientHeight || screen.height;
    var left = Math.max(0, Math.round(screenLeft + (width - POPUP_WIDTH) / 2));
    var top = Math.max(0, Math.round(screenTop + (height - POPUP_HEIGHT) / 2));
    return window.open(url, POPUP_TITLE,
        "scrollbars, status, resizable, width=" + POPUP_WIDTH + ", height=" + POPUP_HEIGHT +
        ", top=" + top + ", left=" + left);
  }

  function listenForLocation(origin) {
    if (registry.origins[origin]) {
      return;
    }
    registry.origins[origin] = true;
    window.addEventListener("message", function receiveNewLocation(event) {
      if (event.origin !== origin) {
        return;
      }
      var data = event.data;
      if (data && typeof data === "object" && typeof data.url === "string") {
        window.location = data.url;
      }
    });
  }

  function listenForError(script) {
    window.addEventListener("message", function receiveOAuthMessage(event) {
      var data = event.data;
      var d = script.dataset;
      if (!data || typeof data !== "object" || !data.error || data.client_id !== d.clientId) {
        return;
      }
      d.error = data.error;
      // amoCRM eval()s the name; an identifier check first keeps that from running code.
      var name = d.errorCallback;
      if (!has(name) || !IDENTIFIER.test(name)) {
        return;
      }
      var callback = window[name];
      if (typeof callback !== "function") {
        try {
          callback = (0, eval)(name);  // global let/const bindings are not window properties
        } catch (e) {
          return;
        }
      }
      if (typeof callback === "function") {
        callback(data);
      }
    });
  }

  function render(script) {
    var d = script.dataset;
    var kommo = script.classList.contains("kommo_oauth");
    var title = has(d.title) ? d.title :
        (kommo ? "Авторизоваться через Kommo" : "Авторизоваться через amoCRM");
    var color = Object.prototype.hasOwnProperty.call(COLORS, d.color) ? COLORS[d.color] :
        COLORS["default"];
    if (kommo) {
      color = Object.prototype.hasOwnProperty.call(KOMMO_THEMES, d.theme) ?
          KOMMO_THEMES[d.theme] : KOMMO_THEMES.light;
    }
    var origin = originOf(script);
    var state = has(d.state) ? d.state : randomState();
    var mode = has(d.mode) ? d.mode : "popup";

    var button = document.createElement("button");
    button.type = "button";
    if (has(d.className)) {
      button.className = d.className;
    }
    button.style.cssText = "display:inline-flex;align-items:center;gap:8px;border:0;" +
        "border-radius:4px;padding:8px 16px;cursor:pointer;color:#fff;" +
        "font:600 14px/1.2 system-ui,sans-serif;background:" + color;
    var logo = document.createElement("span");
    logo.textContent = kommo ? "K" : "amo";
    logo.style.cssText = "font-weight:800;letter-spacing:-0.5px";
    var text = document.createElement("span");
    text.textContent = title;
    if (d.compact === "true") {
      text.style.display = "none";
      button.title = title;
      button.setAttribute("aria-label", title);
    }
    button.appendChild(logo);
    button.appendChild(text);
    button.addEventListener("click", function (event) {
      event.preventDefault();
      openCentered(popupUrl(script, origin, state, mode));
    });
    script.parentNode.insertBefore(button, script.nextSibling);

    listenForLocation(origin);
    listenForError(script);
  }

  function renderAll() {
    var scripts = document.querySelectorAll("script.amocrm_oauth, script.kommo_oauth");
    for (var i = 0; i < scripts.length; i++) {
      if (registry.scripts.indexOf(scripts[i]) === -1 && scripts[i].parentNode) {
        registry.scripts.push(scripts[i]);
        render(scripts[i]);
      }
    }
  }

  renderAll();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  }
})();
)JS";

std::string Page(std::string_view title, std::string_view body) {
  std::string out;
  out += "<!doctype html>\n<html lang=\"ru\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  out += HtmlEscape(title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<main>\n";
  out += "<p class=\"brand\">amoauth sandbox &middot; simulated amoCRM / Kommo</p>\n";
  out += body;
  out += "</main>\n</body>\n</html>\n";
  return out;
}

std::string FlavorName(Flavor flavor) {
  switch (flavor) {
    case Flavor::kAmocrm:
      return "amoCRM";
    case Flavor::kKommo:
      return "Kommo";
  }
  return "amoCRM";
}

std::string Hidden(std::string_view name, std::string_view value) {
  return "<input type=\"hidden\" name=\"" + HtmlEscape(name) + "\" value=\"" + HtmlEscape(value) +
         "\">\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

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
      out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";  // line separators end JS lines
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string_view ButtonScript() {
  return kButtonScript;
}

std::string RenderConsentPage(const ConsentView& view) {
  const Integration& integration = view.integration;
  std::string body;
  if (view.external && !view.external->logo.empty()) {
    body += "<p><img id=\"integration-logo\" alt=\"\" width=\"64\" height=\"64\" src=\"" +
            HtmlEscape(view.external->logo) + "\"></p>\n";
  }
  body += "<h1 id=\"integration-name\">" + HtmlEscape(integration.name) + "</h1>\n";
  if (view.external) {
    body += "<p id=\"integration-description\">" + HtmlEscape(view.external->description) +
            "</p>\n<p class=\"muted\">Будет создана новая внешняя интеграция; её ключи получит "
            "<code>" +
            HtmlEscape(view.external->secrets_uri) + "</code>.</p>\n";
  }
  body += "<p>Интеграция запрашивает доступ к вашему аккаунту:</p>\n<ul id=\"scopes\">\n";
  for (const std::string& scope : integration.scopes) {
    body += "<li><code>" + HtmlEscape(scope) + "</code></li>\n";
  }
  body += "</ul>\n<form method=\"post\" action=\"/oauth/decision\">\n";
  if (view.external) {
    const ExternalRequest& e = *view.external;
    body += Hidden("name", e.name);
    body += Hidden("description", e.description);
    body += Hidden("redirect_uri", e.redirect_uri);
    body += Hidden("secrets_uri", e.secrets_uri);
    body += Hidden("logo", e.logo);
    for (const std::string& scope : e.scopes) {
      body += Hidden("scopes[]", scope);
    }
  } else {
    body += Hidden("client_id", integration.client_id);
  }
  body += Hidden("state", view.state);
  body += Hidden("mode", view.mode);
  body += "<label for=\"account_id\">Аккаунт</label>\n";
  body += "<select name=\"account_id\" id=\"account_id\">\n";
  for (const Account& account : view.accounts) {
    body += "<option value=\"" + std::to_string(account.id) + "\">" + HtmlEscape(account.name) +
            " &mdash; " + HtmlEscape(AccountHost(account)) + " (" + FlavorName(account.flavor) +
            ")</option>\n";
  }
  body += "</select>\n<div class=\"actions\">\n";
  body +=
      "<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Разрешить</button>\n";
  body +=
      "<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Отказать</button>\n";
  body += "</div>\n</form>\n";
  body += "<p class=\"muted\">Redirect URI: <code>" + HtmlEscape(integration.redirect_uri) +
          "</code></p>\n";
  return Page("Предоставить доступ для интеграции — " + integration.name, body);
}

std::string RenderErrorPage(std::string_view title, std::string_view message) {
  std::string body;
  body += "<h1>" + HtmlEscape(title) + "</h1>\n";
  body += "<p id=\"error\">" + HtmlEscape(message) + "</p>\n";
  return Page(title, body);
}

std::string RenderPopupHandoff(const boost::json::value& message, std::string_view fallback_url) {
  std::string body;
  body += "<p>Возвращаемся на сайт интеграции&hellip;</p>\n<script>\n(function () {\n";
  body += "  var message = " + ScriptJson(message) + ";\n";
  body += "  var fallback = " + ScriptJson(boost::json::string(fallback_url)) + ";\n";
  body += "  if (window.opener && !window.opener.closed) {\n";
  body += "    window.opener.postMessage(message, \"*\");\n";
  body += "    window.close();\n";
  body += "  } else {\n";
  body += "    window.location = fallback;\n";
  body += "  }\n})();\n</script>\n";
  return Page("Предоставить доступ для интеграции", body);
}

std::string RenderIndexPage(const std::vector<Account>& accounts,
                            const std::vector<Integration>& integrations,
                            std::string_view browser_base_url) {
  std::string body;
  body += "<h1>amoauth sandbox</h1>\n";
  body += "<p>Consent page: <code>" + HtmlEscape(browser_base_url) +
          "/oauth?client_id=&hellip;</code><br>Button script: <code>" +
          HtmlEscape(browser_base_url) + "/auth/button.js</code><br>Journal: <a href=\"" +
          HtmlEscape(browser_base_url) + "/sandbox/journal\">/sandbox/journal</a></p>\n";
  body +=
      "<h2>Accounts</h2>\n<table>\n<tr><th>id</th><th>name</th><th>host</th><th>api "
      "domain</th><th>user</th></tr>\n";
  for (const Account& a : accounts) {
    body += "<tr><td>" + std::to_string(a.id) + "</td><td>" + HtmlEscape(a.name) +
            "</td><td><code>" + HtmlEscape(AccountHost(a)) + "</code> (" + FlavorName(a.flavor) +
            ")</td><td><code>" + HtmlEscape(a.api_domain) + "</code></td><td>" +
            std::to_string(a.user_id) + "</td></tr>\n";
  }
  body += "</table>\n<h2>Integrations</h2>\n";
  if (integrations.empty()) {
    body += "<p class=\"muted\">None yet: POST /sandbox/integrations {\"redirect_uri\": …}</p>\n";
  } else {
    body +=
        "<table>\n<tr><th>client_id</th><th>name</th><th>redirect_uri</th><th>scopes</th>"
        "<th>secret</th></tr>\n";
    for (const Integration& i : integrations) {
      std::string scopes;
      for (const std::string& s : i.scopes) {
        scopes += (scopes.empty() ? "" : ", ") + s;
      }
      body += "<tr><td><code>" + HtmlEscape(i.client_id) + "</code></td><td>" + HtmlEscape(i.name) +
              "</td><td><code>" + HtmlEscape(i.redirect_uri) + "</code></td><td>" +
              HtmlEscape(scopes) + "</td><td>&bull;&bull;&bull;</td></tr>\n";
    }
    body += "</table>\n";
  }
  return Page("amoauth sandbox", body);
}

}  // namespace amoauth::sandbox
