// /sandbox/…: the control API on the plain listener, for tests and humans.

#include <optional>
#include <string>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "consent_pages.hpp"
#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

std::string_view FlavorName(Flavor flavor) {
  switch (flavor) {
    case Flavor::kAmocrm:
      return "amocrm";
    case Flavor::kKommo:
      return "kommo";
  }
  return "amocrm";
}

boost::json::object ToJson(const Integration& integration) {
  boost::json::array scopes;
  for (const std::string& s : integration.scopes) {
    scopes.emplace_back(s);
  }
  return boost::json::object{
      {"client_id", integration.client_id},
      {"client_secret", integration.client_secret},  // a sandbox: tests need it back
      {"redirect_uri", integration.redirect_uri},
      {"name", integration.name},
      {"scopes", std::move(scopes)},
  };
}

boost::json::object ToJson(const Account& account) {
  return boost::json::object{
      {"id", account.id},
      {"subdomain", account.subdomain},
      {"name", account.name},
      {"platform", FlavorName(account.flavor)},
      {"host", AccountHost(account)},
      {"api_domain", account.api_domain},
      {"user_id", account.user_id},
  };
}

net::HttpResponse BadRequest(std::string_view detail) {
  return ProblemResponse(400, "Bad Request", detail);
}

std::optional<boost::json::object> ParseJsonObject(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.as_object());
}

/// A string member; absent is "", any other type is nullopt.
std::optional<std::string> StringMember(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) {
    return std::string();
  }
  if (!v->is_string()) {
    return std::nullopt;
  }
  return std::string(v->get_string());
}

}  // namespace

net::HttpResponse ServeIndex(SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string host(req.headers.Get("Host").value_or("localhost"));
  return HtmlResponse(
      200, RenderIndexPage(ctx.state.Accounts(), ctx.state.Integrations(), "http://" + host));
}

net::HttpResponse ServeJournal(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  const JournalSnapshot journal = ctx.state.Journal();
  const Counters& c = journal.counters;
  boost::json::array requests;
  requests.reserve(journal.requests.size());
  for (const JournalEntry& e : journal.requests) {
    requests.push_back(boost::json::object{
        {"host", e.host}, {"method", e.method}, {"path", e.path}, {"status", e.status}});
  }
  return JsonResponse(200,
                      boost::json::object{
                          {"counters",
                           boost::json::object{
                               {"token_requests", c.token_requests},
                               {"codes_issued", c.codes_issued},
                               {"codes_exchanged", c.codes_exchanged},
                               {"code_reuses", c.code_reuses},
                               {"refreshes", c.refreshes},
                               {"refresh_token_reuses", c.refresh_token_reuses},
                               {"api_requests", c.api_requests},
                               {"api_unauthorized", c.api_unauthorized},
                           }},
                          {"requests", std::move(requests)},
                      });
}

net::HttpResponse ServeClockAdvance(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto body = ParseJsonObject(req.body);
  const auto* seconds = body ? body->if_contains("seconds") : nullptr;
  if (seconds == nullptr || !seconds->is_number()) {
    return BadRequest("Expected {\"seconds\": N} with a non-negative integer N");
  }
  boost::system::error_code ec;
  const auto n = seconds->to_number<std::int64_t>(ec);
  if (ec || n < 0) {
    return BadRequest("Expected {\"seconds\": N} with a non-negative integer N");
  }
  ctx.state.AdvanceClock(std::chrono::seconds{n});
  SandboxLogger()->info("clock advanced by {} s", n);
  const auto now = ctx.state.Now();
  return JsonResponse(
      200,
      boost::json::object{
          {"offset_seconds", ctx.state.ClockOffset().count()},
          {"now", std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()},
      });
}

net::HttpResponse ServeListIntegrations(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  boost::json::array out;
  for (const Integration& i : ctx.state.Integrations()) {
    out.push_back(ToJson(i));
  }
  return JsonResponse(200, out);
}

net::HttpResponse ServeCreateIntegration(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto body = ParseJsonObject(req.body);
  if (!body) {
    return BadRequest("Expected a JSON object");
  }
  const auto client_id = StringMember(*body, "client_id");
  const auto client_secret = StringMember(*body, "client_secret");
  const auto redirect_uri = StringMember(*body, "redirect_uri");
  const auto name = StringMember(*body, "name");
  if (!client_id || !client_secret || !redirect_uri || !name) {
    return BadRequest("client_id, client_secret, redirect_uri and name must be strings");
  }
  const auto parsed = boost::urls::parse_absolute_uri(*redirect_uri);
  if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http")) {
    return BadRequest("redirect_uri must be an absolute http(s) URL");
  }
  Integration integration;
  integration.client_id = *client_id;
  integration.client_secret = *client_secret;
  integration.redirect_uri = *redirect_uri;
  integration.name = *name;
  if (const auto* scopes = body->if_contains("scopes"); scopes != nullptr) {
    if (!scopes->is_array()) {
      return BadRequest("scopes must be an array of strings");
    }
    integration.scopes.clear();
    for (const auto& s : scopes->get_array()) {
      if (!s.is_string()) {
        return BadRequest("scopes must be an array of strings");
      }
      integration.scopes.emplace_back(s.get_string());
    }
  }
  const auto stored = ctx.state.AddIntegration(std::move(integration));
  if (!stored) {
    return ProblemResponse(409, "Conflict", "An integration with this client_id exists");
  }
  SandboxLogger()->info("integration registered: client {}", stored->client_id);
  return JsonResponse(201, ToJson(*stored));
}

net::HttpResponse ServeListAccounts(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  boost::json::array out;
  for (const Account& a : ctx.state.Accounts()) {
    out.push_back(ToJson(a));
  }
  return JsonResponse(200, out);
}

}  // namespace amoauth::sandbox
