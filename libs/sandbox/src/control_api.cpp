// /sandbox/…: the control API on the plain listener, for tests and humans.

#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "consent_pages.hpp"
#include "endpoints.hpp"
#include "faults.hpp"
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
      {"disconnect_hook_url", integration.disconnect_hook_url},
      // External integrations (metadata consent) belong to one account; null for the others.
      {"account_id",
       integration.owner_account_id != 0 ? boost::json::value(integration.owner_account_id)
                                         : boost::json::value(nullptr)},
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
      // One user per simulated account; its fake key is shown so tests can use it.
      {"users",
       boost::json::array{boost::json::object{{"id", account.user_id},
                                              {"login", account.user_login},
                                              {"api_key", account.user_api_key}}}},
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

std::string_view RotationName(Rotation rotation) {
  switch (rotation) {
    case Rotation::kStrict:
      return "strict";
    case Rotation::kGraceUntilNewUsed:
      return "grace_until_new_used";
  }
  return "strict";
}

std::string_view SecretsDeliveryName(SecretsDelivery delivery) {
  switch (delivery) {
    case SecretsDelivery::kBeforeRedirect:
      return "before_redirect";
    case SecretsDelivery::kAfterRedirect:
      return "after_redirect";
  }
  return "before_redirect";
}

boost::json::object ToJson(const Counters& c) {
  return boost::json::object{
      {"token_requests", c.token_requests},
      {"token_endpoint_faults", c.token_endpoint_faults},
      {"faults", c.faults},
      {"codes_issued", c.codes_issued},
      {"codes_exchanged", c.codes_exchanged},
      {"code_reuses", c.code_reuses},
      {"refreshes", c.refreshes},
      {"refresh_token_reuses", c.refresh_token_reuses},
      {"api_requests", c.api_requests},
      {"api_unauthorized", c.api_unauthorized},
      {"api_rate_limited", c.api_rate_limited},
      {"api_blocked", c.api_blocked},
      {"max_api_requests_per_second", c.max_api_requests_per_second},
      {"subdomain_lookups", c.subdomain_lookups},
      {"widget_installs", c.widget_installs},
      {"hooks_delivered", c.hooks_delivered},
      {"hooks_failed", c.hooks_failed},
      {"exchange_api_key_requests", c.exchange_api_key_requests},
      {"exchange_api_key_accepted", c.exchange_api_key_accepted},
      {"exchange_api_key_rate_limited", c.exchange_api_key_rate_limited},
      {"external_integrations_created", c.external_integrations_created},
      {"long_lived_tokens_issued", c.long_lived_tokens_issued},
  };
}

boost::json::object ToJson(const StateConfig& c) {
  return boost::json::object{
      {"code_ttl_seconds", c.code_ttl.count()},
      {"access_token_ttl_seconds", c.access_token_ttl.count()},
      {"refresh_token_ttl_seconds", c.refresh_token_ttl.count()},
      {"rotation", RotationName(c.rotation)},
      {"revoke_access_token_on_refresh", c.revoke_access_token_on_refresh},
      {"api_rate_limit_rps", c.api_rate_limit_rps},
      {"api_block_after_violations", c.api_block_after_violations},
      {"api_violation_window_seconds", c.api_violation_window.count()},
      {"api_block_seconds", c.api_block_duration.count()},
      {"api_retry_after_seconds", c.api_retry_after.count()},
      {"token_delay_ms", c.token_delay.count()},
      {"exchange_hook_delay_ms", c.exchange_hook_delay.count()},
      {"secrets_delivery", SecretsDeliveryName(c.secrets_delivery)},
      {"secrets_delay_ms", c.secrets_delay.count()},
  };
}

/// An integral JSON number (1 and 1.0 alike); nullopt for anything else.
std::optional<std::int64_t> Integer(const boost::json::value& v) {
  if (!v.is_number()) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  const auto n = v.to_number<std::int64_t>(ec);
  return ec ? std::nullopt : std::optional<std::int64_t>(n);
}

/// The POST /sandbox/config fields that hold whole seconds or counts, by their JSON names.
using SecondsField = std::optional<std::chrono::seconds> ConfigPatch::*;
using CountField = std::optional<std::int64_t> ConfigPatch::*;
constexpr std::array<std::pair<std::string_view, SecondsField>, 6> kSecondsFields{{
    {"code_ttl_seconds", &ConfigPatch::code_ttl},
    {"access_token_ttl_seconds", &ConfigPatch::access_token_ttl},
    {"refresh_token_ttl_seconds", &ConfigPatch::refresh_token_ttl},
    {"api_violation_window_seconds", &ConfigPatch::api_violation_window},
    {"api_block_seconds", &ConfigPatch::api_block_duration},
    {"api_retry_after_seconds", &ConfigPatch::api_retry_after},
}};
constexpr std::array<std::pair<std::string_view, CountField>, 2> kCountFields{{
    {"api_rate_limit_rps", &ConfigPatch::api_rate_limit_rps},
    {"api_block_after_violations", &ConfigPatch::api_block_after_violations},
}};

/// Fields in whole milliseconds (delays of the simulated amoCRM).
using MillisField = std::optional<std::chrono::milliseconds> ConfigPatch::*;
constexpr std::array<std::pair<std::string_view, MillisField>, 3> kMillisFields{{
    {"token_delay_ms", &ConfigPatch::token_delay},
    {"exchange_hook_delay_ms", &ConfigPatch::exchange_hook_delay},
    {"secrets_delay_ms", &ConfigPatch::secrets_delay},
}};

template <class Field, std::size_t N>
const Field* FindField(const std::array<std::pair<std::string_view, Field>, N>& fields,
                       std::string_view name) {
  for (const auto& [field_name, field] : fields) {
    if (field_name == name) {
      return &field;
    }
  }
  return nullptr;
}

/// The body of POST /sandbox/config, or why not. Types are checked here, ranges by the state.
std::variant<ConfigPatch, std::string> ParseConfigPatch(const boost::json::object& body) {
  ConfigPatch patch;
  for (const auto& [key, value] : body) {
    if (const auto* field = FindField(kSecondsFields, key)) {
      const auto n = Integer(value);
      if (!n) {
        return std::string(key) + " must be an integer";
      }
      patch.*(*field) = std::chrono::seconds{*n};
    } else if (const auto* count = FindField(kCountFields, key)) {
      const auto n = Integer(value);
      if (!n) {
        return std::string(key) + " must be an integer";
      }
      patch.*(*count) = *n;
    } else if (const auto* millis = FindField(kMillisFields, key)) {
      const auto n = Integer(value);
      if (!n) {
        return std::string(key) + " must be an integer";
      }
      patch.*(*millis) = std::chrono::milliseconds{*n};
    } else if (key == "rotation") {
      if (value == "strict") {
        patch.rotation = Rotation::kStrict;
      } else if (value == "grace_until_new_used") {
        patch.rotation = Rotation::kGraceUntilNewUsed;
      } else {
        return std::string(R"(rotation must be "strict" or "grace_until_new_used")");
      }
    } else if (key == "secrets_delivery") {
      if (value == "before_redirect") {
        patch.secrets_delivery = SecretsDelivery::kBeforeRedirect;
      } else if (value == "after_redirect") {
        patch.secrets_delivery = SecretsDelivery::kAfterRedirect;
      } else {
        return std::string(R"(secrets_delivery must be "before_redirect" or "after_redirect")");
      }
    } else if (key == "revoke_access_token_on_refresh") {
      if (!value.is_bool()) {
        return std::string("revoke_access_token_on_refresh must be true or false");
      }
      patch.revoke_access_token_on_refresh = value.get_bool();
    } else {
      return "unknown field \"" + std::string(key) + "\" (GET /sandbox/config lists the fields)";
    }
  }
  return patch;
}

net::HttpResponse AccountNotFound() {
  return ProblemResponse(404, "Not Found", "No such account in the amoauth sandbox");
}

}  // namespace

std::optional<std::int64_t> AccountIdParam(const net::HttpRequest& req) {
  const std::string_view text = req.PathParam("id");
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return id;
}

std::variant<std::string, net::HttpResponse> ClientIdBody(const net::HttpRequest& req) {
  const auto body = ParseJsonObject(req.body);
  const auto* client_id = body ? body->if_contains("client_id") : nullptr;
  if (client_id == nullptr || !client_id->is_string() || client_id->get_string().empty()) {
    return BadRequest(R"(Expected {"client_id": "…"})");
  }
  return std::string(client_id->get_string());
}

net::HttpResponse ServeIndex(SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string host(req.headers.Get("Host").value_or("localhost"));
  return HtmlResponse(
      200, RenderIndexPage(ctx.state.Accounts(), ctx.state.Integrations(), "http://" + host));
}

net::HttpResponse ServeJournal(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  const JournalSnapshot journal = ctx.state.Journal();
  boost::json::array requests;
  requests.reserve(journal.requests.size());
  for (const JournalEntry& e : journal.requests) {
    requests.push_back(boost::json::object{
        {"host", e.host}, {"method", e.method}, {"path", e.path}, {"status", e.status}});
  }
  boost::json::object accounts;
  for (const auto& [id, counters] : journal.accounts) {
    accounts[std::to_string(id)] = ToJson(counters);
  }
  boost::json::object counters = ToJson(journal.counters);
  counters["accounts"] = std::move(accounts);
  return JsonResponse(
      200,
      boost::json::object{{"counters", std::move(counters)}, {"requests", std::move(requests)}});
}

net::HttpResponse ServeJournalReset(SandboxContext& ctx, const net::HttpRequest& req) {
  ctx.state.ResetJournal();
  SandboxLogger()->info("journal reset");
  return ServeJournal(ctx, req);
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
  const auto disconnect_hook_url = StringMember(*body, "disconnect_hook_url");
  if (!client_id || !client_secret || !redirect_uri || !name || !disconnect_hook_url) {
    return BadRequest(
        "client_id, client_secret, redirect_uri, name and disconnect_hook_url must be strings");
  }
  const auto parsed = boost::urls::parse_absolute_uri(*redirect_uri);
  if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http")) {
    return BadRequest("redirect_uri must be an absolute http(s) URL");
  }
  if (!disconnect_hook_url->empty()) {
    const auto hook = boost::urls::parse_absolute_uri(*disconnect_hook_url);
    if (!hook || (hook->scheme() != "https" && hook->scheme() != "http")) {
      return BadRequest("disconnect_hook_url must be an absolute http(s) URL");
    }
  }
  Integration integration;
  integration.client_id = *client_id;
  integration.client_secret = *client_secret;
  integration.redirect_uri = *redirect_uri;
  integration.name = *name;
  integration.disconnect_hook_url = *disconnect_hook_url;
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
  // Accounts the integration is installed in from the start (exchange_api_key needs that).
  std::vector<std::int64_t> installed_in;
  if (const auto* accounts = body->if_contains("installed_in"); accounts != nullptr) {
    const auto* list = accounts->if_array();
    if (list == nullptr) {
      return BadRequest("installed_in must be an array of account ids");
    }
    for (const auto& id : *list) {
      const auto account = Integer(id);
      if (!account || !ctx.state.FindAccount(*account)) {
        return BadRequest("installed_in must list existing account ids");
      }
      installed_in.push_back(*account);
    }
  }
  const auto stored = ctx.state.AddIntegration(std::move(integration));
  if (!stored) {
    return ProblemResponse(409, "Conflict", "An integration with this client_id exists");
  }
  for (const std::int64_t account : installed_in) {
    (void)ctx.state.MarkInstalled(account, stored->client_id);  // both exist: checked above
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

net::HttpResponse ServeGetConfig(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  return JsonResponse(200, ToJson(ctx.state.Config()));
}

net::HttpResponse ServeSetConfig(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto body = ParseJsonObject(req.body);
  if (!body) {
    return BadRequest("Expected a JSON object with some of the fields GET /sandbox/config lists");
  }
  const auto patch = ParseConfigPatch(*body);
  if (const auto* error = std::get_if<std::string>(&patch)) {
    return BadRequest(*error);
  }
  if (const auto error = ctx.state.ApplyConfig(std::get<ConfigPatch>(patch))) {
    return BadRequest(*error);
  }
  const auto config = ToJson(ctx.state.Config());
  SandboxLogger()->info("config changed: {}", boost::json::serialize(config));
  return JsonResponse(200, config);
}

net::HttpResponse ServeRevokeTokens(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto id = AccountIdParam(req);
  if (!id) {
    return AccountNotFound();
  }
  const auto body = ParseJsonObject(req.body);
  const auto* tokens = body ? body->if_contains("tokens") : nullptr;
  if (tokens == nullptr || (*tokens != "access" && *tokens != "all")) {
    return BadRequest(R"(Expected {"tokens": "access"} or {"tokens": "all"})");
  }
  const RevokeScope scope = *tokens == "all" ? RevokeScope::kAll : RevokeScope::kAccess;
  const auto revoked = ctx.state.RevokeTokens(*id, scope);
  if (!revoked) {
    return AccountNotFound();
  }
  SandboxLogger()->info("account {}: revoked {} access and {} refresh token(s)",
                        *id,
                        revoked->access_tokens,
                        revoked->refresh_tokens);
  return JsonResponse(200,
                      boost::json::object{
                          {"account_id", *id},
                          {"revoked_access_tokens", revoked->access_tokens},
                          {"revoked_refresh_tokens", revoked->refresh_tokens},
                      });
}

net::HttpResponse ServeRenameAccount(SandboxContext& ctx, const net::HttpRequest& req) {
  const auto id = AccountIdParam(req);
  if (!id) {
    return AccountNotFound();
  }
  const auto body = ParseJsonObject(req.body);
  const auto subdomain = body ? StringMember(*body, "subdomain") : std::nullopt;
  if (!subdomain || subdomain->empty()) {
    return BadRequest(R"(Expected {"subdomain": "new-name"})");
  }
  const auto old = ctx.state.FindAccount(*id);
  const auto renamed = ctx.state.RenameAccount(*id, *subdomain);
  if (!renamed) {
    if (Is(renamed.error(), Errc::kNotFound)) {
      return AccountNotFound();
    }
    if (Is(renamed.error(), Errc::kConflict)) {
      return BadRequest("subdomain \"" + *subdomain + "\" is taken on this platform");
    }
    return BadRequest(
        "subdomain must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-', "
        "and not \"www\"");
  }
  SandboxLogger()->info("account {} renamed: {} -> {}",
                        *id,
                        old ? AccountHost(*old) : std::string("?"),
                        AccountHost(*renamed));
  return JsonResponse(200, ToJson(*renamed));
}

net::HttpResponse ServeGetFaults(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  return JsonResponse(200, FaultsJson(ctx.state.Faults()));
}

net::HttpResponse ServeSetFaults(SandboxContext& ctx, const net::HttpRequest& req) {
  auto parsed = ParseFaults(req.body);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    return BadRequest(*error);
  }
  const FaultSet& faults = std::get<FaultSet>(parsed);
  ctx.state.SetFaults(faults);
  for (std::size_t i = 0; i < kFaultTargets; ++i) {
    if (faults[i]) {
      SandboxLogger()->info("fault scripted: the next {} {} request(s) fail",
                            faults[i]->times,
                            FaultTargetName(static_cast<FaultTarget>(i)));
    }
  }
  return JsonResponse(200, FaultsJson(ctx.state.Faults()));
}

net::HttpResponse ServeClearFaults(SandboxContext& ctx, const net::HttpRequest& /*req*/) {
  ctx.state.ClearFaults();
  SandboxLogger()->info("faults cleared");
  return JsonResponse(200, FaultsJson(FaultSet{}));
}

net::HttpResponse ServeIssueLongLivedToken(SandboxContext& ctx, const net::HttpRequest& req) {
  const std::string usage = R"(Expected {"account_id": N, "days": D} with D from )" +
                            std::to_string(kLongLivedMinDays) + " to " +
                            std::to_string(kLongLivedMaxDays);
  const auto body = ParseJsonObject(req.body);
  const auto* account_id = body ? body->if_contains("account_id") : nullptr;
  const auto* days = body ? body->if_contains("days") : nullptr;
  const auto account = account_id != nullptr ? Integer(*account_id) : std::nullopt;
  const auto day_count = days != nullptr ? Integer(*days) : std::nullopt;
  if (!account || !day_count || *day_count < kLongLivedMinDays || *day_count > kLongLivedMaxDays) {
    return BadRequest(usage);
  }
  const std::string client_id(req.PathParam("client_id"));
  const auto issued = ctx.state.IssueLongLivedToken(client_id, *account, *day_count);
  if (!issued) {
    return ProblemResponse(
        404, "Not Found", "No such integration or account in the amoauth sandbox");
  }
  const auto token = MintAccessToken(ctx.signer, *issued);
  if (!token) {
    return ProblemResponse(500, "Internal Server Error", "The sandbox could not sign a token");
  }
  SandboxLogger()->info("long-lived token issued: client {} account {} until {}",
                        client_id,
                        *account,
                        issued->expires_at);
  net::HttpResponse response = JsonResponse(
      200, boost::json::object{{"access_token", *token}, {"expires_at", issued->expires_at}});
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

}  // namespace amoauth::sandbox
