// The API side of the simulated amoCRM (protocol §7.2-7.4).

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <spdlog/spdlog.h>

#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::string_view kHalJson = "application/hal+json";

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const auto a = static_cast<unsigned char>(text[i]);
    const auto b = static_cast<unsigned char>(prefix[i]);
    if (std::tolower(a) != std::tolower(b)) {
      return false;
    }
  }
  return true;
}

/// The `jti` of `Authorization: Bearer <jwt>` when the JWT is ours (signature checked); "" when
/// there is none. Whether it names a live token of this account is the state's call.
std::string BearerJti(const SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string_view header = req.headers.Get("Authorization").value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  if (!StartsWithNoCase(header, kBearer)) {
    return {};
  }
  const auto payload = ctx.signer.Verify(header.substr(kBearer.size()));
  if (!payload) {
    return {};
  }
  const auto* jti = payload->if_contains("jti");
  if (jti == nullptr || !jti->is_string()) {
    return {};
  }
  return std::string(jti->get_string());
}

net::HttpResponse AccountInfo(const Account& account, std::int64_t user_id) {
  const std::string host = AccountHost(account);
  return JsonResponse(
      200,
      boost::json::object{
          {"id", account.id},
          {"name", account.name},
          {"subdomain", account.subdomain},
          {"current_user_id", user_id},
          {"country", "RU"},
          {"customers_mode", "disabled"},
          {"is_unsorted_on", true},
          {"is_loss_reason_enabled", true},
          {"is_helpbot_enabled", false},
          {"is_technical_account", false},
          {"contact_name_display_order", 1},
          {"_links",
           boost::json::object{
               {"self", boost::json::object{{"href", "https://" + host + "/api/v4/account"}}}}},
      },
      kHalJson);
}

/// Any other method: proves the request arrived intact (a proxy test forwards arbitrary paths).
net::HttpResponse Echo(const net::HttpRequest& req) {
  return JsonResponse(200,
                      boost::json::object{
                          {"_embedded", boost::json::object{}},
                          {"method", req.method},
                          {"path", req.Path()},
                          {"query", req.RawQuery()},
                          {"body", req.body},
                      },
                      kHalJson);
}

}  // namespace

net::HttpResponse ServeApi(SandboxContext& ctx,
                           const Account& host_account,
                           const net::HttpRequest& req) {
  const ApiAdmission admission = ctx.state.AdmitApiRequest(host_account.id, BearerJti(ctx, req));
  switch (admission.verdict) {
    case ApiVerdict::kBlocked:
      return NginxErrorResponse(403);
    case ApiVerdict::kRateLimited:
      if (admission.block_started) {
        SandboxLogger()->warn(
            "account {} ({}) blocked: too many 429s", host_account.id, AccountHost(host_account));
      }
      return TooManyRequestsResponse(host_account.flavor, admission.retry_after);
    case ApiVerdict::kUnauthorized:
      return UnauthorizedResponse();
    case ApiVerdict::kAllowed:
      break;
  }
  if (req.Path() == "/api/v4/account" && req.method == "GET") {
    return AccountInfo(host_account, admission.user_id);
  }
  // The sandbox keeps no entities, and amoCRM answers an empty list with 204 No Content and no
  // body (protocol §7.4): what a client must pass through as it is.
  for (std::string_view list :
       {"/api/v4/leads", "/api/v4/contacts", "/api/v4/companies", "/api/v4/tasks"}) {
    if (req.Path() == list && req.method == "GET") {
      net::HttpResponse empty;
      empty.status = 204;
      return empty;
    }
  }
  return Echo(req);
}

net::HttpResponse ServeCurrentSubdomain(SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string_view refresh_token = req.headers.Get("X-Refresh-Token").value_or("");
  const auto account = ctx.state.LookUpSubdomain(refresh_token);
  // The shared host answers for its own accounts only (the JWT's api_domain names it).
  if (!account || account->api_domain != HostOf(req)) {
    return UnauthorizedResponse();
  }
  const std::string_view base = BaseDomain(account->flavor);
  return JsonResponse(200,
                      boost::json::object{
                          {"id", account->id},
                          {"subdomain", account->subdomain},
                          {"domain", AccountHost(*account)},
                          {"top_level_domain", base.substr(base.rfind('.') + 1)},
                      });
}

}  // namespace amoauth::sandbox
