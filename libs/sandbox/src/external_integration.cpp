#include "external_integration.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "code_redirect.hpp"
#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::array<std::string_view, 2> kExternalScopes = {"crm", "notifications"};

std::string Param(const net::QueryParams& params, std::string_view name) {
  return std::string(net::Find(params, name).value_or(""));
}

bool IsHttpUrl(std::string_view text) {
  const auto url = boost::urls::parse_absolute_uri(text);
  return url && (url->scheme() == "https" || url->scheme() == "http") && !url->host().empty();
}

/// `scopes[]` repeated (PHP array syntax, what button.js sends), else `scopes` split on commas.
std::vector<std::string> Scopes(const net::QueryParams& params) {
  std::vector<std::string> out;
  const auto add = [&out](std::string_view scope) {
    while (!scope.empty() && scope.front() == ' ') {
      scope.remove_prefix(1);
    }
    while (!scope.empty() && scope.back() == ' ') {
      scope.remove_suffix(1);
    }
    if (!scope.empty() && std::find(out.begin(), out.end(), scope) == out.end()) {
      out.emplace_back(scope);
    }
  };
  for (const auto& [key, value] : params) {
    if (key == "scopes[]" || key == "scopes") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = std::min(rest.find(','), rest.size());
        add(rest.substr(0, comma));
        rest.remove_prefix(std::min(comma + 1, rest.size()));
      }
    }
  }
  return out;
}

std::optional<std::int64_t> ParseId(std::string_view text) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return id;
}

net::HttpResponse CreationFailedPage(int code) {
  // amoCRM's words when the secrets webhook does not answer 200 (protocol §5, §9.9).
  return ConsentErrorPage(
      502,
      "Произошла ошибка создания, обратитесь к разработчику интеграции. (Code " +
          std::to_string(code) + ")");
}

}  // namespace

bool IsExternalRequest(const net::QueryParams& params) {
  return Param(params, "client_id").empty() && net::Find(params, "secrets_uri").has_value();
}

std::variant<ExternalRequest, std::string> ParseExternalRequest(const net::QueryParams& params) {
  ExternalRequest out;
  out.name = Param(params, "name");
  out.description = Param(params, "description");
  out.redirect_uri = Param(params, "redirect_uri");
  out.secrets_uri = Param(params, "secrets_uri");
  out.logo = Param(params, "logo");
  out.scopes = Scopes(params);
  std::string missing;
  for (const auto& [name, empty] : {std::pair{"name", out.name.empty()},
                                    std::pair{"description", out.description.empty()},
                                    std::pair{"redirect_uri", out.redirect_uri.empty()},
                                    std::pair{"secrets_uri", out.secrets_uri.empty()},
                                    std::pair{"scopes", out.scopes.empty()}}) {
    if (empty) {
      missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
  }
  if (!missing.empty()) {
    return "Для создания внешней интеграции не хватает параметров: " + missing + ".";
  }
  if (!IsHttpUrl(out.redirect_uri)) {
    return std::string("redirect_uri должен быть абсолютным http(s) URL.");
  }
  if (!IsHttpUrl(out.secrets_uri)) {
    return std::string("secrets_uri должен быть абсолютным http(s) URL.");
  }
  if (!out.logo.empty() && !IsHttpUrl(out.logo)) {
    return std::string("logo должен быть абсолютным http(s) URL.");
  }
  for (const std::string& scope : out.scopes) {
    if (std::find(kExternalScopes.begin(), kExternalScopes.end(), scope) == kExternalScopes.end()) {
      return "Неизвестный scope «" + scope + "»: допустимы crm и notifications.";
    }
  }
  return out;
}

net::HttpResponse ServeExternalConsentPage(SandboxContext& ctx, const net::QueryParams& params) {
  auto parsed = ParseExternalRequest(params);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    return ConsentErrorPage(400, *error);
  }
  ExternalRequest& request = std::get<ExternalRequest>(parsed);
  ConsentView view;
  view.integration.name = request.name;
  view.integration.scopes = request.scopes;
  view.integration.redirect_uri = request.redirect_uri;
  view.accounts = ctx.state.Accounts();
  view.state = Param(params, "state");
  view.mode = Param(params, "mode");
  view.external = std::move(request);
  return HtmlResponse(200, RenderConsentPage(view));
}

boost::asio::awaitable<net::HttpResponse> ServeExternalDecision(SandboxContext& ctx,
                                                                HookSender& hooks,
                                                                net::HttpRequest req) {
  const auto form = net::ParseQuery(req.body);
  if (!form) {
    co_return ConsentErrorPage(400, "Некорректное тело формы.");
  }
  auto parsed = ParseExternalRequest(*form);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    co_return ConsentErrorPage(400, *error);
  }
  const ExternalRequest request = std::get<ExternalRequest>(std::move(parsed));
  const std::string state = Param(*form, "state");
  const std::string mode = Param(*form, "mode");
  const std::string decision = Param(*form, "decision");

  if (decision == "deny") {
    UrlParams params{{"error", "access_denied"}};
    if (!state.empty()) {
      params.emplace_back("state", state);
    }
    const auto url = WithParams(request.redirect_uri, params);
    SandboxLogger()->info("external integration consent denied");
    // No client_id exists yet: button.js matches the message to a button without data-client-id.
    co_return HandBack(mode, boost::json::object{{"error", "access_denied"}}, url.value_or(""));
  }
  if (decision != "allow") {
    co_return ConsentErrorPage(400, "Неизвестное решение: ожидается allow или deny.");
  }
  const auto account_id = ParseId(Param(*form, "account_id"));
  const auto account = account_id ? ctx.state.FindAccount(*account_id) : std::nullopt;
  if (!account) {
    co_return ConsentErrorPage(400, "Выберите аккаунт.");
  }
  Integration wanted;
  wanted.name = request.name;
  wanted.redirect_uri = request.redirect_uri;
  wanted.scopes = request.scopes;
  const auto created = ctx.state.AddExternalIntegration(std::move(wanted), account->id);
  if (!created) {
    co_return ConsentErrorPage(400, "Выберите аккаунт.");
  }
  SandboxLogger()->info(
      "external integration {} created in account {}", created->client_id, account->id);

  OutgoingHook secrets;
  secrets.method = "POST";
  secrets.url = request.secrets_uri;
  secrets.content_type = "application/json";
  secrets.body = boost::json::serialize(boost::json::object{
      {"client_id", created->client_id},
      {"client_secret", created->client_secret},
      {"state", state.empty() ? boost::json::value(nullptr) : boost::json::value(state)},
  });
  secrets.log_url = request.secrets_uri;
  secrets.what = "secrets webhook";
  secrets.account_id = account->id;

  const StateConfig config = ctx.state.Config();
  if (config.secrets_delivery == SecretsDelivery::kBeforeRedirect) {
    const HookDelivery delivery = co_await hooks.Send(std::move(secrets));
    ctx.state.CountHook(account->id, delivery.delivered);
    if (!delivery.delivered || delivery.status != 200) {
      co_return CreationFailedPage(delivery.delivered ? delivery.status : 0);
    }
  }
  const auto code = ctx.state.IssueCode(created->client_id, account->id);
  if (!code) {
    co_return ConsentErrorPage(500, "Не удалось выдать код авторизации.");
  }
  const UrlParams params =
      CodeParams(*account, created->client_id, *code, state, /*always_client_id=*/true);
  const auto url = WithParams(created->redirect_uri, params);
  if (!url) {
    co_return ConsentErrorPage(400, "redirect_uri не является корректным URL.");
  }
  if (config.secrets_delivery == SecretsDelivery::kAfterRedirect && ctx.send_later) {
    secrets.delay = config.secrets_delay;
    ctx.send_later(std::move(secrets));
  }
  co_return HandBack(mode, boost::json::object{{"url", *url}}, *url);
}

}  // namespace amoauth::sandbox
