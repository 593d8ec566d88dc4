#include "disconnect_hook.hpp"

#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
std::string SignDisconnectHook(std::string_view client_secret,
                               std::string_view client_uuid,
                               std::string_view account_id) {
  std::string message;
  message.append(client_uuid).append("|").append(account_id);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha256(),
           client_secret.data(),
           static_cast<int>(client_secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()),  // NOLINT: OpenSSL's bytes
           message.size(),
           mac.data(),
           &mac_size) == nullptr) {
    return {};
  }
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * mac_size);
  for (unsigned int i = 0; i < mac_size; ++i) {
    hex.push_back(kHex[mac[i] >> 4U]);
    hex.push_back(kHex[mac[i] & 0x0fU]);
  }
  return hex;
}

boost::asio::awaitable<net::HttpResponse> ServeDisconnect(SandboxContext& ctx,
                                                          HookSender& hooks,
                                                          net::HttpRequest req) {
  const auto id = AccountIdParam(req);
  if (!id) {
    co_return ProblemResponse(404, "Not Found", "No such account in the amoauth sandbox");
  }
  auto client_id = ClientIdBody(req);
  if (auto* refusal = std::get_if<net::HttpResponse>(&client_id)) {
    co_return std::move(*refusal);
  }
  const std::string client_uuid = std::move(std::get<std::string>(client_id));
  const auto integration = ctx.state.FindIntegration(client_uuid);
  const auto revoked = ctx.state.DisconnectIntegration(*id, client_uuid);
  if (!integration || !revoked) {
    co_return ProblemResponse(
        404, "Not Found", "No such account or integration in the amoauth sandbox");
  }
  SandboxLogger()->info(
      "account {} disconnected client {}: revoked {} access and {} refresh token(s)",
      *id,
      client_uuid,
      revoked->access_tokens,
      revoked->refresh_tokens);
  boost::json::object report{
      {"account_id", *id},
      {"client_id", client_uuid},
      {"revoked_access_tokens", revoked->access_tokens},
      {"revoked_refresh_tokens", revoked->refresh_tokens},
      {"hook_url", nullptr},
      {"hook_status", nullptr},
  };
  if (integration->disconnect_hook_url.empty()) {
    co_return JsonResponse(200, report);
  }
  auto parsed = boost::urls::parse_absolute_uri(integration->disconnect_hook_url);
  if (!parsed) {
    co_return ProblemResponse(
        500, "Internal Server Error", "The integration's disconnect_hook_url is not a URL");
  }
  const std::string account_text = std::to_string(*id);
  boost::urls::url url(*parsed);
  url.params().append({"client_uuid", client_uuid});
  url.params().append({"account_id", account_text});
  url.params().append(
      {"signature", SignDisconnectHook(integration->client_secret, client_uuid, account_text)});
  report["hook_url"] = integration->disconnect_hook_url;  // without the signed query

  OutgoingHook hook;
  hook.url = std::string(url.buffer());
  hook.log_url = integration->disconnect_hook_url;
  hook.what = "disconnect hook";
  hook.account_id = *id;
  const HookDelivery answer = co_await hooks.Send(std::move(hook));
  ctx.state.CountHook(*id, answer.delivered);
  if (!answer.delivered) {
    co_return ProblemResponse(
        502, "Bad Gateway", "The disconnect hook could not be reached: " + answer.error);
  }
  report["hook_status"] = answer.status;
  report["hook_body"] = answer.body;
  co_return JsonResponse(answer.status, report);
}

}  // namespace amoauth::sandbox
