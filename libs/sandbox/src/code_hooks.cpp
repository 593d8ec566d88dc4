#include "code_hooks.hpp"

#include <string>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

#include "code_redirect.hpp"
#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {

boost::asio::awaitable<net::HttpResponse> ServeInstallWidget(SandboxContext& ctx,
                                                             HookSender& hooks,
                                                             net::HttpRequest req) {
  const auto id = AccountIdParam(req);
  const auto account = id ? ctx.state.FindAccount(*id) : std::nullopt;
  if (!account) {
    co_return ProblemResponse(404, "Not Found", "No such account in the amoauth sandbox");
  }
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(req.body, ec);
  const auto* object = ec ? nullptr : body.if_object();
  const auto* client_id = object != nullptr ? object->if_contains("client_id") : nullptr;
  if (client_id == nullptr || !client_id->is_string() || client_id->get_string().empty()) {
    co_return ProblemResponse(400, "Bad Request", R"(Expected {"client_id": "…"})");
  }
  const std::string client(client_id->get_string());
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

}  // namespace amoauth::sandbox
