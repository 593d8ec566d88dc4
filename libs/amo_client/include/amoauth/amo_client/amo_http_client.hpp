#pragma once

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::amo_client {

/// service::AmoClient over HTTPS: amoCRM's token endpoint and API (protocol §3, §7.4).
/// Bodies are JSON as amoCRM's docs send them; failures are classified by status + hint
/// (core::ClassifyAmoFailure) and logged with the hint — never with a secret, code or token.
/// Thread-safe; `http` must outlive it.
class AmoHttpClient final : public service::AmoClient {
 public:
  explicit AmoHttpClient(http_client::HttpClient& http) : http_(http) {}

  service::Task<Result<core::TokenGrant>> ExchangeCode(std::string account_host,
                                                       core::AuthorizationCodeGrant grant) override;
  service::Task<Result<core::TokenGrant>> Refresh(std::string account_host,
                                                  core::RefreshTokenGrant grant) override;
  service::Task<Result<net::HttpResponse>> Forward(std::string account_host,
                                                   const net::HttpRequest& request,
                                                   Secret access_token) override;
  service::Task<Result<core::AccountDomain>> LookupDomain(std::string api_domain,
                                                          Secret refresh_token) override;
  service::Task<Result<void>> ExchangeApiKey(std::string account_host,
                                             core::ApiKeyExchangeRequest request) override;

 private:
  service::Task<Result<core::TokenGrant>> PostToken(std::string account_host, std::string body);

  http_client::HttpClient& http_;
};

}  // namespace amoauth::amo_client
