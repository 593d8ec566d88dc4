#include "amoauth/amo_client/amo_http_client.hpp"

#include <array>
#include <string_view>

#include <spdlog/spdlog.h>

#include "amoauth/core/api_key_exchange.hpp"
#include "amoauth/core/token_exchange.hpp"

namespace amoauth::amo_client {
namespace {

// What the proxy passes from the caller to amoCRM, and back. Everything else — Authorization,
// cookies, hop-by-hop and framing headers — stays on its own side.
constexpr std::array<std::string_view, 6> kForwardedRequestHeaders = {"Content-Type",
                                                                      "Accept",
                                                                      "Accept-Language",
                                                                      "If-Modified-Since",
                                                                      "X-Context-User-ID",
                                                                      "X-Client-UUID"};
constexpr std::array<std::string_view, 5> kReturnedResponseHeaders = {
    "Content-Type", "Retry-After", "Last-Modified", "Cache-Control", "Content-Language"};

/// A JSON POST to one of amoCRM's OAuth endpoints on the account's host. The body holds secrets
/// (client secret, code, refresh token, API key): never log the request.
http_client::ClientRequest OAuthPost(std::string_view account_host,
                                     std::string_view path,
                                     std::string body) {
  http_client::ClientRequest request;
  request.method = "POST";
  request.url = "https://" + std::string(account_host) + std::string(path);
  request.headers.Set("Content-Type", "application/json");
  request.headers.Set("Accept", "application/json");
  request.body = std::move(body);
  return request;
}

}  // namespace

service::Task<Result<core::TokenGrant>> AmoHttpClient::ExchangeCode(
    std::string account_host, core::AuthorizationCodeGrant grant) {
  std::string body = core::SerializeGrant(grant);
  co_return co_await PostToken(std::move(account_host), std::move(body));
}

service::Task<Result<core::TokenGrant>> AmoHttpClient::Refresh(std::string account_host,
                                                               core::RefreshTokenGrant grant) {
  std::string body = core::SerializeGrant(grant);
  co_return co_await PostToken(std::move(account_host), std::move(body));
}

service::Task<Result<core::TokenGrant>> AmoHttpClient::PostToken(std::string account_host,
                                                                 std::string body) {
  http_client::ClientRequest request =
      OAuthPost(account_host, "/oauth2/access_token", std::move(body));

  auto response = co_await http_.Send(std::move(request));
  if (!response) {
    spdlog::warn("token endpoint of {} unreachable: {}", account_host, response.error().message());
    co_return Fail(Errc::kAmoUnreachable);
  }
  if (response->status == 200) {
    auto grant = core::ParseTokenGrant(response->body);
    if (!grant) {
      spdlog::warn("token endpoint of {} answered 200 with a body that is not a token response",
                   account_host);
    }
    co_return grant;
  }
  const core::AmoFailure failure = core::ClassifyAmoFailure(response->status, response->body);
  spdlog::warn("token endpoint of {} answered {}: {} / {} (hint: {})",
               account_host,
               failure.status,
               failure.title,
               failure.detail,
               failure.hint.empty() ? "none" : failure.hint);
  co_return Fail(failure.code);
}

service::Task<Result<net::HttpResponse>> AmoHttpClient::Forward(std::string account_host,
                                                                const net::HttpRequest& request,
                                                                Secret access_token) {
  http_client::ClientRequest out;
  out.method = request.method;
  out.url = "https://" + account_host + request.target;
  for (std::string_view name : kForwardedRequestHeaders) {
    if (auto value = request.headers.Get(name)) {
      out.headers.Set(name, *value);
    }
  }
  out.headers.Set("Authorization", "Bearer " + access_token.Reveal());
  out.body = request.body;

  auto answer = co_await http_.Send(std::move(out));
  if (!answer) {
    spdlog::warn("API of {} unreachable: {}", account_host, answer.error().message());
    co_return Fail(Errc::kAmoUnreachable);
  }
  net::HttpResponse response;
  response.status = answer->status;
  response.body = std::move(answer->body);
  for (std::string_view name : kReturnedResponseHeaders) {
    if (auto value = answer->headers.Get(name)) {
      response.headers.Set(name, *value);
    }
  }
  co_return response;
}

service::Task<Result<core::AccountDomain>> AmoHttpClient::LookupDomain(std::string api_domain,
                                                                       Secret refresh_token) {
  http_client::ClientRequest request;
  request.method = "GET";
  request.url = "https://" + api_domain + "/oauth2/account/current/subdomain";
  request.headers.Set("Accept", "application/json");
  request.headers.Set("X-Refresh-Token", refresh_token.Reveal());

  auto response = co_await http_.Send(std::move(request));
  if (!response) {
    spdlog::warn("domain lookup at {} unreachable: {}", api_domain, response.error().message());
    co_return Fail(Errc::kAmoUnreachable);
  }
  if (response->status == 200) {
    co_return core::ParseAccountDomain(response->body);
  }
  const core::AmoFailure failure = core::ClassifyAmoFailure(response->status, response->body);
  spdlog::warn("domain lookup at {} answered {} (hint: {})",
               api_domain,
               failure.status,
               failure.hint.empty() ? "none" : failure.hint);
  co_return Fail(failure.code);
}

service::Task<Result<void>> AmoHttpClient::ExchangeApiKey(std::string account_host,
                                                          core::ApiKeyExchangeRequest exchange) {
  http_client::ClientRequest request =
      OAuthPost(account_host, "/oauth2/exchange_api_key", core::SerializeApiKeyExchange(exchange));

  auto response = co_await http_.Send(std::move(request));
  if (!response) {
    spdlog::warn(
        "exchange_api_key of {} unreachable: {}", account_host, response.error().message());
    co_return Fail(Errc::kAmoUnreachable);
  }
  if (response->status == 202) {
    co_return Result<void>{};
  }
  // The body is problem JSON at best; its hint is worth logging, the request never is (it holds
  // the API key and the client secret).
  const core::AmoFailure failure = core::ClassifyAmoFailure(response->status, response->body);
  spdlog::warn("exchange_api_key of {} answered {}: {} / {} (hint: {})",
               account_host,
               response->status,
               failure.title,
               failure.detail,
               failure.hint.empty() ? "none" : failure.hint);
  co_return Fail(core::ClassifyApiKeyExchangeStatus(response->status));
}

}  // namespace amoauth::amo_client
