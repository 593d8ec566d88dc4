#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "code_hooks.hpp"
#include "endpoints.hpp"
#include "faults.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

using Serve = net::HttpResponse (*)(SandboxContext&, const net::HttpRequest&);

struct Route {
  std::string_view method;
  std::string_view path;  ///< literal segments, and "{name}" matching one non-empty segment
  Serve serve;
};

net::HttpResponse ServeRoot(SandboxContext& /*ctx*/, const net::HttpRequest& /*req*/) {
  return RedirectResponse("/sandbox/");
}

net::HttpResponse ServeButton(SandboxContext& /*ctx*/, const net::HttpRequest& req) {
  return ServeButtonScript(req);
}

constexpr std::array kBrowserRoutes = {
    Route{"GET", "/", ServeRoot},
    Route{"GET", "/auth/button.js", ServeButton},
    Route{"GET", "/auth/button.min.js", ServeButton},
    Route{"GET", "/oauth", ServeConsentPage},
    Route{"GET", "/oauth/", ServeConsentPage},
    // Kommo's localized consent paths (protocol §1, §8): the same page.
    Route{"GET", "/es/oauth", ServeConsentPage},
    Route{"GET", "/es/oauth/", ServeConsentPage},
    Route{"GET", "/br/oauth", ServeConsentPage},
    Route{"GET", "/br/oauth/", ServeConsentPage},
    Route{"GET", "/id/oauth", ServeConsentPage},
    Route{"GET", "/id/oauth/", ServeConsentPage},
    Route{"POST", "/oauth/decision", ServeConsentDecision},
    Route{"GET", "/sandbox", ServeIndex},
    Route{"GET", "/sandbox/", ServeIndex},
    Route{"GET", "/sandbox/journal", ServeJournal},
    Route{"POST", "/sandbox/journal/reset", ServeJournalReset},
    Route{"POST", "/sandbox/clock/advance", ServeClockAdvance},
    Route{"GET", "/sandbox/config", ServeGetConfig},
    Route{"POST", "/sandbox/config", ServeSetConfig},
    Route{"GET", "/sandbox/integrations", ServeListIntegrations},
    Route{"POST", "/sandbox/integrations", ServeCreateIntegration},
    Route{"POST", "/sandbox/integrations/{client_id}/long-lived-tokens", ServeIssueLongLivedToken},
    Route{"GET", "/sandbox/accounts", ServeListAccounts},
    Route{"POST", "/sandbox/accounts/{id}/revoke", ServeRevokeTokens},
    Route{"POST", "/sandbox/accounts/{id}/rename", ServeRenameAccount},
    Route{"GET", "/sandbox/faults", ServeGetFaults},
    Route{"POST", "/sandbox/faults", ServeSetFaults},
    Route{"DELETE", "/sandbox/faults", ServeClearFaults},
};

net::HttpResponse NotFound() {
  return ProblemResponse(404, "Not Found", "No such resource in the amoauth sandbox");
}

/// Whether `path` matches `pattern`; "{name}" segments land in `params`.
bool Matches(std::string_view pattern,
             std::string_view path,
             std::vector<std::pair<std::string, std::string>>& params) {
  params.clear();
  if (pattern.find('{') == std::string_view::npos) {
    return pattern == path;
  }
  while (!pattern.empty() && !path.empty()) {
    const auto pattern_end = std::min(pattern.find('/', 1), pattern.size());
    const auto path_end = std::min(path.find('/', 1), path.size());
    const std::string_view want = pattern.substr(0, pattern_end);
    const std::string_view got = path.substr(0, path_end);
    if (want.starts_with("/{") && want.ends_with('}')) {
      if (got.size() < 2) {
        return false;  // "{name}" needs a non-empty segment
      }
      params.emplace_back(std::string(want.substr(2, want.size() - 3)), std::string(got.substr(1)));
    } else if (want != got) {
      return false;
    }
    pattern.remove_prefix(pattern_end);
    path.remove_prefix(path_end);
  }
  return pattern.empty() && path.empty();
}

net::HttpResponse Dispatch(std::span<const Route> routes,
                           SandboxContext& ctx,
                           const net::HttpRequest& req) {
  const std::string_view path = req.Path();
  std::string allow;
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& route : routes) {
    if (!Matches(route.path, path, params)) {
      continue;
    }
    if (route.method == req.method) {
      if (params.empty()) {
        return route.serve(ctx, req);
      }
      net::HttpRequest with_params = req;
      with_params.path_params = std::move(params);
      return route.serve(ctx, with_params);
    }
    allow += (allow.empty() ? "" : ", ") + std::string(route.method);
  }
  return allow.empty() ? NotFound() : MethodNotAllowedResponse(allow);
}

net::HttpResponse ServeAccountHost(SandboxContext& ctx,
                                   const Account& account,
                                   const net::HttpRequest& req) {
  const std::string_view path = req.Path();
  if (path == "/oauth2/access_token") {
    return req.method == "POST" ? ServeTokenEndpoint(ctx, account, req)
                                : MethodNotAllowedResponse("POST");
  }
  if (path == "/oauth2/exchange_api_key") {
    return req.method == "POST" ? ServeExchangeApiKey(ctx, account, req)
                                : MethodNotAllowedResponse("POST");
  }
  if (path.starts_with("/api/v4/")) {
    return ServeApi(ctx, account, req);
  }
  return NotFound();
}

net::HttpResponse ServeApiHost(SandboxContext& ctx, const net::HttpRequest& req) {
  if (req.Path() == "/oauth2/account/current/subdomain") {
    return req.method == "GET" ? ServeCurrentSubdomain(ctx, req) : MethodNotAllowedResponse("GET");
  }
  return NotFound();
}

/// The endpoint a request of amoCRM's hosts is, for scripted faults; nullopt: none of them.
std::optional<FaultTarget> FaultTargetOf(const HostMatch& match, const net::HttpRequest& req) {
  const std::string_view path = req.Path();
  if (match.kind == HostKind::kAccount) {
    if (path == "/oauth2/access_token" && req.method == "POST") {
      return FaultTarget::kTokenEndpoint;
    }
    if (path == "/oauth2/exchange_api_key" && req.method == "POST") {
      return FaultTarget::kExchangeApiKey;
    }
    if (path.starts_with("/api/v4/")) {
      return FaultTarget::kApi;
    }
  } else if (match.kind == HostKind::kApi && path == "/oauth2/account/current/subdomain") {
    return FaultTarget::kSubdomain;
  }
  return std::nullopt;
}

}  // namespace

std::string HostOf(const net::HttpRequest& req) {
  std::string host(req.headers.Get("Host").value_or(""));
  if (host.starts_with('[')) {  // IPv6 literal: keep the brackets, drop ":port"
    host = host.substr(0, host.find(']') == std::string::npos ? host.size() : host.find(']') + 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return host;
}

net::HttpResponse ServeBrowserSide(SandboxContext& ctx, const net::HttpRequest& req) {
  net::HttpResponse response = Dispatch(kBrowserRoutes, ctx, req);
  // The control API would drown the journal in its own polling; everything else is recorded.
  if (!(req.Path() == "/sandbox" || req.Path().starts_with("/sandbox/"))) {
    ctx.state.Record(
        JournalEntry{HostOf(req), req.method, std::string(req.Path()), response.status});
  }
  return response;
}

net::HttpResponse ServeAmoSide(SandboxContext& ctx,
                               const net::HttpRequest& req,
                               std::chrono::milliseconds* stall) {
  const std::string host = HostOf(req);
  const HostMatch match = ctx.state.ResolveHost(host);
  const std::optional<FaultTarget> target = FaultTargetOf(match, req);
  const std::int64_t account_id = match.kind == HostKind::kAccount ? match.account.id : 0;
  std::optional<Fault> fault;
  if (target) {
    fault = ctx.state.TakeFault(*target, account_id, req.Path());
  }
  net::HttpResponse response;
  if (fault && fault->kind != FaultKind::kSlowBody) {
    // Answered before the request is handled: nothing is consumed, rotated or counted.
    SandboxLogger()->info("{} {} on {}: scripted fault", req.method, req.Path(), host);
    const Flavor flavor = match.kind == HostKind::kAccount ? match.account.flavor : Flavor::kAmocrm;
    response = FaultAnswer(*fault, *target, flavor, ctx.state.Config().api_retry_after);
    if (fault->kind == FaultKind::kStall && stall != nullptr) {
      *stall = fault->stall;
    }
    // Status 0 in the journal: no answer at all.
    ctx.state.Record(JournalEntry{
        host, req.method, std::string(req.Path()), response.drop_connection ? 0 : response.status});
    return response;
  }
  switch (match.kind) {
    case HostKind::kAccount:
      response = ServeAccountHost(ctx, match.account, req);
      break;
    case HostKind::kApi:
      response = ServeApiHost(ctx, req);
      break;
    case HostKind::kUnknown:
      response = ProblemResponse(404, "Not Found", "Account not found");
      break;
  }
  if (fault) {
    SandboxLogger()->info(
        "{} {} on {}: answered slowly (scripted fault)", req.method, req.Path(), host);
    SlowDown(*fault, response);
  }
  ctx.state.Record(JournalEntry{host, req.method, std::string(req.Path()), response.status});
  return response;
}

}  // namespace amoauth::sandbox
