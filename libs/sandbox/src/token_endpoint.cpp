// POST https://{account host}/oauth2/access_token (protocol §3, §4).

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

#include "endpoints.hpp"
#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

std::string LowerContentType(const net::HttpRequest& req) {
  std::string type(req.headers.Get("Content-Type").value_or(""));
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return type;
}

bool LooksLikeJson(std::string_view body) {
  const auto first = body.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && body[first] == '{';
}

void FromJson(const std::string& body, TokenRequest& out) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    return;  // every field stays empty: the grant_type check refuses it
  }
  const auto field = [&v](std::string_view name) -> std::string {
    const auto* f = v.as_object().if_contains(name);
    return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  out.grant_type = field("grant_type");
  out.client_id = field("client_id");
  out.client_secret = field("client_secret");
  out.redirect_uri = field("redirect_uri");
  out.code = field("code");
  out.refresh_token = field("refresh_token");
}

void FromForm(const std::string& body, TokenRequest& out) {
  const auto params = net::ParseQuery(body);
  if (!params) {
    return;
  }
  const auto field = [&params](std::string_view name) {
    return std::string(net::Find(*params, name).value_or(""));
  };
  out.grant_type = field("grant_type");
  out.client_id = field("client_id");
  out.client_secret = field("client_secret");
  out.redirect_uri = field("redirect_uri");
  out.code = field("code");
  out.refresh_token = field("refresh_token");
}

/// JSON (what the docs send) and form (what League-based clients send) are both accepted
/// (protocol §3.1). Without a Content-Type the body's first character decides.
TokenRequest ParseTokenRequest(const net::HttpRequest& req) {
  TokenRequest out;
  const std::string type = LowerContentType(req);
  if (type.starts_with("application/json") || (type.empty() && LooksLikeJson(req.body))) {
    FromJson(req.body, out);
  } else if (type.starts_with("application/x-www-form-urlencoded") || type.empty()) {
    FromForm(req.body, out);
  }
  return out;
}

}  // namespace

Result<std::string> MintAccessToken(const JwtSigner& signer, const IssuedTokens& t) {
  boost::json::array scopes;
  for (const std::string& s : t.scopes) {
    scopes.emplace_back(s);
  }
  const boost::json::object header{{"typ", "JWT"}, {"alg", "RS256"}, {"jti", t.jti}};
  const boost::json::object payload{
      {"aud", t.client_id},
      {"jti", t.jti},
      {"iat", t.issued_at},
      {"nbf", t.issued_at},
      {"exp", t.expires_at},
      {"sub", std::to_string(t.user_id)},
      {"grant_type", ""},
      {"account_id", t.account_id},
      {"base_domain", t.base_domain},
      {"version", 2},
      {"scopes", std::move(scopes)},
      {"hash_uuid", t.hash_uuid},
      {"api_domain", t.api_domain},
  };
  return signer.Sign(header, payload);
}

net::HttpResponse ServeTokenEndpoint(SandboxContext& ctx,
                                     const Account& host_account,
                                     const net::HttpRequest& req) {
  const TokenRequest request = ParseTokenRequest(req);
  TokenOutcome outcome = ctx.state.ExchangeToken(request, host_account.id);
  if (const auto* error = std::get_if<OAuthError>(&outcome)) {
    SandboxLogger()->info("token request refused on {}: {} {} (client {})",
                          AccountHost(host_account),
                          error->status,
                          error->hint,
                          request.client_id);
    return OAuthProblemResponse(*error);
  }
  const auto& issued = std::get<IssuedTokens>(outcome);
  const auto access_token = MintAccessToken(ctx.signer, issued);
  if (!access_token) {
    SandboxLogger()->error("cannot sign an access token: {}", access_token.error().message());
    return ProblemResponse(500, "Internal Server Error", "The sandbox could not sign a token");
  }
  boost::json::object body{
      {"token_type", "Bearer"},
      {"expires_in", issued.expires_in},
      {"access_token", *access_token},
      {"refresh_token", issued.refresh_token},
  };
  if (issued.flavor == Flavor::kKommo) {
    body["server_time"] = issued.issued_at;  // K-TOK; not seen on amoCRM (§3.2)
  }
  SandboxLogger()->info("tokens issued on {}: grant_type {} client {} user {}",
                        AccountHost(host_account),
                        request.grant_type,
                        issued.client_id,
                        issued.user_id);
  net::HttpResponse response = JsonResponse(200, body);
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

}  // namespace amoauth::sandbox
