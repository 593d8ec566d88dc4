#include <algorithm>
#include <array>
#include <cctype>
#include <span>
#include <string_view>

#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

using Serve = net::HttpResponse (*)(SandboxContext&, const net::HttpRequest&);

struct Route {
  std::string_view method;
  std::string_view path;
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
    Route{"POST", "/oauth/decision", ServeConsentDecision},
    Route{"GET", "/sandbox", ServeIndex},
    Route{"GET", "/sandbox/", ServeIndex},
    Route{"GET", "/sandbox/journal", ServeJournal},
    Route{"POST", "/sandbox/clock/advance", ServeClockAdvance},
    Route{"GET", "/sandbox/integrations", ServeListIntegrations},
    Route{"POST", "/sandbox/integrations", ServeCreateIntegration},
    Route{"GET", "/sandbox/accounts", ServeListAccounts},
};

net::HttpResponse NotFound() {
  return ProblemResponse(404, "Not Found", "No such resource in the amoauth sandbox");
}

net::HttpResponse Dispatch(std::span<const Route> routes,
                           SandboxContext& ctx,
                           const net::HttpRequest& req) {
  const std::string_view path = req.Path();
  std::string allow;
  for (const auto& route : routes) {
    if (route.path != path) {
      continue;
    }
    if (route.method == req.method) {
      return route.serve(ctx, req);
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

net::HttpResponse ServeAmoSide(SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string host = HostOf(req);
  const HostMatch match = ctx.state.ResolveHost(host);
  net::HttpResponse response;
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
  ctx.state.Record(JournalEntry{host, req.method, std::string(req.Path()), response.status});
  return response;
}

}  // namespace amoauth::sandbox
