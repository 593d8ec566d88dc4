// The browser side of the simulated amoCRM (protocol §2): button script, consent page, decision.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <spdlog/spdlog.h>

#include "code_redirect.hpp"
#include "consent_pages.hpp"
#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

std::string Param(const net::QueryParams& params, std::string_view name) {
  return std::string(net::Find(params, name).value_or(""));
}

std::optional<std::int64_t> ParseId(std::string_view text) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return id;
}

net::HttpResponse BadRequestPage(std::string_view message) {
  return HtmlResponse(400, RenderErrorPage("Ошибка запроса", message));
}

/// What the consent window does with the outcome: popup posts `message` to the opener; any other
/// mode redirects the window itself (post_message).
net::HttpResponse HandBack(std::string_view mode,
                           const boost::json::object& message,
                           const std::string& url) {
  if (mode == "popup") {
    return HtmlResponse(200, RenderPopupHandoff(message, url));
  }
  return RedirectResponse(url);
}

}  // namespace

net::HttpResponse ServeButtonScript(const net::HttpRequest& /*req*/) {
  net::HttpResponse response;
  response.headers.Set("Content-Type", "application/javascript; charset=utf-8");
  response.headers.Set("Cache-Control", "no-cache");
  response.body = std::string(ButtonScript());
  return response;
}

net::HttpResponse ServeConsentPage(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto params = net::ParseQuery(req.RawQuery());
  if (!params) {
    return BadRequestPage("Некорректная строка запроса.");
  }
  // Unknown parameters (response_type, approval_prompt, scope, redirect_uri, origin…) are ignored.
  const std::string client_id = Param(*params, "client_id");
  if (client_id.empty()) {
    const bool metadata = net::Find(*params, "secrets_uri").has_value();
    return BadRequestPage(metadata ? "Кнопка с метаданными (внешняя интеграция) в песочнице пока "
                                     "не поддерживается: передайте client_id."
                                   : "Не передан client_id интеграции.");
  }
  const auto integration = ctx.state.FindIntegration(client_id);
  if (!integration) {
    return BadRequestPage("Интеграция с client_id «" + client_id + "» не найдена.");
  }
  ConsentView view;
  view.integration = *integration;
  view.integration.client_secret.clear();
  view.accounts = ctx.state.Accounts();
  view.state = Param(*params, "state");
  view.mode = Param(*params, "mode");
  return HtmlResponse(200, RenderConsentPage(view));
}

net::HttpResponse ServeConsentDecision(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto form = net::ParseQuery(req.body);
  if (!form) {
    return BadRequestPage("Некорректное тело формы.");
  }
  const std::string client_id = Param(*form, "client_id");
  const auto integration = ctx.state.FindIntegration(client_id);
  if (!integration) {
    return BadRequestPage("Интеграция с client_id «" + client_id + "» не найдена.");
  }
  const std::string state = Param(*form, "state");
  const std::string mode = Param(*form, "mode");
  const std::string decision = Param(*form, "decision");
  const auto account_id = ParseId(Param(*form, "account_id"));
  const auto account = account_id ? ctx.state.FindAccount(*account_id) : std::nullopt;

  if (decision == "deny") {
    // Deny needs no account; it only picks which platform's parameters come back.
    const bool kommo = account && account->flavor == Flavor::kKommo;
    UrlParams params{{"error", "access_denied"}};
    if (!state.empty()) {
      params.emplace_back("state", state);
    }
    if (kommo) {
      params.emplace_back("client_id", client_id);
    }
    const auto url = WithParams(integration->redirect_uri, params);
    if (!url) {
      return BadRequestPage("Redirect URI интеграции не является корректным URL.");
    }
    SandboxLogger()->info("consent denied: client {}", client_id);
    return HandBack(
        mode, boost::json::object{{"client_id", client_id}, {"error", "access_denied"}}, *url);
  }
  if (decision != "allow") {
    return BadRequestPage("Неизвестное решение: ожидается allow или deny.");
  }
  if (!account) {
    return BadRequestPage("Выберите аккаунт.");
  }
  const auto code = ctx.state.IssueCode(client_id, account->id);
  if (!code) {
    return BadRequestPage("Не удалось выдать код авторизации.");
  }
  const UrlParams params = CodeParams(*account, client_id, *code, state);
  const auto url = WithParams(integration->redirect_uri, params);
  if (!url) {
    return BadRequestPage("Redirect URI интеграции не является корректным URL.");
  }
  SandboxLogger()->info("consent allowed: client {} account {} mode {}",
                        client_id,
                        account->id,
                        mode.empty() ? "(none)" : mode);
  return HandBack(mode, boost::json::object{{"url", *url}}, *url);
}

}  // namespace amoauth::sandbox
