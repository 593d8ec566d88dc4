#include "code_hooks.hpp"

#include <string>
#include <utility>
#include <variant>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

#include "code_redirect.hpp"
#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 429:
      return "Too Many Requests";
    default:
      return "Error";
  }
}

}  // namespace

boost::asio::awaitable<net::HttpResponse> ServeInstallWidget(SandboxContext& ctx,
                                                             HookSender& hooks,
                                                             net::HttpRequest req) {
  const auto id = AccountIdParam(req);
  const auto account = id ? ctx.state.FindAccount(*id) : std::nullopt;
  if (!account) {
    co_return ProblemResponse(404, "Not Found", "No such account in the amoauth sandbox");
  }
  auto client_id = ClientIdBody(req);
  if (auto* refusal = std::get_if<net::HttpResponse>(&client_id)) {
    co_return std::move(*refusal);
  }
  const std::string client = std::move(std::get<std::string>(client_id));
  const auto integration = ctx.state.FindIntegration(client);
  if (!integration) {
    co_return ProblemResponse(404, "Not Found", "No such integration in the amoauth sandbox");
  }
  const auto code = ctx.state.InstallWidget(account->id, client);
  if (!code) {
    co_return ProblemResponse(404, "Not Found", "No such account or integration");
  }
  UrlParams params = CodeParams(*account, client, *code, {});
  params.emplace_back("from_widget", "1");
  auto url = WithParams(integration->redirect_uri, params);
  if (!url) {
    co_return ProblemResponse(
        500, "Internal Server Error", "The integration's redirect_uri is not a URL");
  }
  OutgoingHook hook;
  hook.url = std::move(*url);
  hook.log_url = integration->redirect_uri;
  hook.what = "widget hook";
  hook.account_id = account->id;
  const HookDelivery delivery = co_await hooks.Send(std::move(hook));
  ctx.state.CountHook(account->id, delivery.delivered);

  boost::json::object report{
      {"delivered", delivery.delivered},
      {"status", nullptr},
      {"elapsed_ms", delivery.elapsed.count()},
  };
  if (delivery.delivered) {
    report["status"] = delivery.status;
  } else {
    report["error"] = delivery.error;
  }
  co_return JsonResponse(200, report);
}

net::HttpResponse ServeExchangeApiKey(SandboxContext& ctx,
                                      const Account& host_account,
                                      const net::HttpRequest& req) {
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(req.body, ec);
  if (ec || !body.is_object()) {
    return ProblemResponse(
        400,
        "Bad Request",
        "Expected a JSON object {login, api_key, client_uuid, client_secret, state?}");
  }
  ApiKeyExchange request;
  for (const auto& [name, field] : {std::pair{"login", &request.login},
                                    std::pair{"api_key", &request.api_key},
                                    std::pair{"client_uuid", &request.client_uuid},
                                    std::pair{"client_secret", &request.client_secret},
                                    std::pair{"state", &request.state}}) {
    const auto* value = body.as_object().if_contains(name);
    if (value != nullptr && !value->is_null()) {
      if (!value->is_string()) {
        return ProblemResponse(400, "Bad Request", std::string(name) + " must be a string");
      }
      *field = std::string(value->get_string());
    }
  }
  ApiKeyExchangeOutcome outcome = ctx.state.ExchangeApiKey(request, host_account.id);
  if (outcome.status != 202) {
    SandboxLogger()->info("exchange_api_key on {} refused: {} {}",
                          AccountHost(host_account),
                          outcome.status,
                          outcome.detail);
    net::HttpResponse refusal =
        ProblemResponse(outcome.status, ReasonPhrase(outcome.status), outcome.detail);
    if (outcome.status == 429) {
      refusal.headers.Set("Retry-After", std::to_string(outcome.retry_after.count()));
    }
    return refusal;
  }
  UrlParams params = CodeParams(host_account, request.client_uuid, outcome.code, request.state);
  params.emplace_back("from_exchange", "1");
  auto url = WithParams(outcome.redirect_uri, params);
  if (url && ctx.send_later) {
    OutgoingHook hook;
    hook.url = std::move(*url);
    hook.log_url = outcome.redirect_uri;
    hook.what = "exchange_api_key hook";
    hook.account_id = host_account.id;
    hook.delay = ctx.state.Config().exchange_hook_delay;
    ctx.send_later(std::move(hook));
  }
  SandboxLogger()->info(
      "exchange_api_key on {} accepted: client {}", AccountHost(host_account), request.client_uuid);
  net::HttpResponse accepted;
  accepted.status = 202;
  return accepted;
}

}  // namespace amoauth::sandbox
