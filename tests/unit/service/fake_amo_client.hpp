#pragma once

#include <atomic>
#include <deque>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "amoauth/crypto/base64.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::testing {

/// A JWT-shaped access token with amoCRM's claims (unsigned: amoauth never verifies it).
inline std::string MakeAccessToken(std::int64_t account_id,
                                   const std::string& client_id,
                                   const std::string& tag) {
  boost::json::object payload{{"aud", client_id},
                              {"jti", tag},
                              {"sub", "10000001"},
                              {"account_id", account_id},
                              {"base_domain", "amocrm.ru"},
                              {"api_domain", "api-b.amocrm.ru"}};
  return crypto::Base64UrlEncode(R"({"typ":"JWT","alg":"RS256"})") + "." +
         crypto::Base64UrlEncode(boost::json::serialize(payload)) + ".sig";
}

/// amoCRM as a script: counts calls, answers what the test says, and can hold refreshes at a gate
/// until the test opens it (to make callers overlap without sleeping).
class FakeAmoClient final : public service::AmoClient {
 public:
  explicit FakeAmoClient(std::string client_id) : client_id_(std::move(client_id)) {}

  service::Task<Result<core::TokenGrant>> ExchangeCode(std::string host,
                                                       core::AuthorizationCodeGrant g) override {
    ++exchanges;
    last_host = host;
    last_secret = g.client_secret.Reveal();
    if (exchange_error) {
      co_return Fail(*exchange_error);
    }
    co_return Grant("exchange" + std::to_string(exchanges.load()));
  }

  service::Task<Result<core::TokenGrant>> Refresh(std::string host,
                                                  core::RefreshTokenGrant g) override {
    ++refreshes;
    last_host = host;
    last_refresh_token = g.refresh_token.Reveal();
    if (gate) {
      auto [ec] = co_await gate->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;
    }
    if (refresh_error) {
      co_return Fail(*refresh_error);
    }
    co_return Grant("refresh" + std::to_string(refreshes.load()));
  }

  service::Task<Result<net::HttpResponse>> Forward(std::string host,
                                                   net::HttpRequest request,
                                                   Secret token) override {
    ++forwards;
    last_host = host;
    forwarded_tokens.push_back(token.Reveal());
    net::HttpResponse r;
    r.status = forward_statuses.empty() ? 200 : forward_statuses.front();
    if (!forward_statuses.empty()) {
      forward_statuses.pop_front();
    }
    r.body = request.target;
    co_return r;
  }

  core::TokenGrant Grant(const std::string& tag) {
    core::TokenGrant g;
    g.token_type = "Bearer";
    g.expires_in = 86400;
    g.access_token = Secret(MakeAccessToken(account_id, token_client_id.value_or(client_id_), tag));
    g.refresh_token = Secret("def50200refresh-" + tag);
    return g;
  }

  std::int64_t account_id = 30000001;
  std::optional<std::string> token_client_id;  ///< aud of issued tokens; default our client
  std::optional<Errc> exchange_error;
  std::optional<Errc> refresh_error;
  std::deque<int> forward_statuses;
  std::optional<boost::asio::steady_timer> gate;
  std::atomic<int> exchanges{0};
  std::atomic<int> refreshes{0};
  std::atomic<int> forwards{0};
  std::string last_host;
  std::string last_secret;
  std::string last_refresh_token;
  std::vector<std::string> forwarded_tokens;

 private:
  std::string client_id_;
};

}  // namespace amoauth::testing
