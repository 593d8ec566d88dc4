#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
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
    last_client_id = g.client_id;
    last_secret = g.client_secret.Reveal();
    if (!exchange_errors.empty()) {
      const Errc next = exchange_errors.front();
      exchange_errors.pop_front();
      co_return Fail(next);
    }
    if (exchange_error) {
      co_return Fail(*exchange_error);
    }
    co_return Grant("exchange" + std::to_string(exchanges.load()));
  }

  service::Task<Result<core::TokenGrant>> Refresh(std::string host,
                                                  core::RefreshTokenGrant g) override {
    ++refreshes;
    last_host = host;
    last_client_id = g.client_id;
    last_secret = g.client_secret.Reveal();
    last_refresh_token = g.refresh_token.Reveal();
    if (gate && !gate_opened) {
      auto [ec] = co_await gate->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;
    }
    {
      std::lock_guard lock(mutex);
      refresh_hosts.push_back(host);
      if (auto it = refresh_error_by_host.find(host); it != refresh_error_by_host.end()) {
        co_return Fail(it->second);
      }
      if (!refresh_script.empty()) {
        const std::optional<Errc> next = refresh_script.front();
        refresh_script.pop_front();
        if (next) {
          co_return Fail(*next);
        }
        co_return Grant("refresh" + std::to_string(refreshes.load()));
      }
    }
    if (refresh_error) {
      co_return Fail(*refresh_error);
    }
    if (account_for_host) {
      co_return GrantFor(account_for_host(host), "refresh" + std::to_string(refreshes.load()));
    }
    co_return Grant("refresh" + std::to_string(refreshes.load()));
  }

  service::Task<Result<net::HttpResponse>> Forward(std::string host,
                                                   const net::HttpRequest& request,
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
    if (!forward_content_type.empty()) {
      r.headers.Set("Content-Type", forward_content_type);
    }
    if (!forward_headers_retry_after.empty()) {
      r.headers.Set("Retry-After", forward_headers_retry_after.front());
      forward_headers_retry_after.pop_front();
    }
    co_return r;
  }

  service::Task<Result<core::AccountDomain>> LookupDomain(std::string api_domain,
                                                          Secret refresh_token) override {
    ++lookups;
    last_lookup_host = api_domain;
    last_lookup_token = refresh_token.Reveal();
    if (lookup_error) {
      co_return Fail(*lookup_error);
    }
    if (!domain_answer) {
      co_return Fail(Errc::kAmoUnauthorized);
    }
    co_return *domain_answer;
  }

  service::Task<Result<void>> ExchangeApiKey(std::string host,
                                             core::ApiKeyExchangeRequest request) override {
    ++api_key_exchanges;
    last_host = host;
    last_secret = request.client_secret.Reveal();
    last_api_key_request = request;
    if (api_key_error) {
      co_return Fail(*api_key_error);
    }
    co_return Result<void>{};
  }

  core::TokenGrant Grant(const std::string& tag) { return GrantFor(account_id, tag); }

  core::TokenGrant GrantFor(std::int64_t account, const std::string& tag) {
    core::TokenGrant g;
    g.token_type = "Bearer";
    g.expires_in = 86400;
    g.access_token = Secret(MakeAccessToken(account, token_client_id.value_or(client_id_), tag));
    g.refresh_token = Secret("def50200refresh-" + tag);
    return g;
  }

  std::int64_t account_id = 30000001;
  /// When set, refreshes answer with a token of the account this gives for the host.
  std::function<std::int64_t(const std::string& host)> account_for_host;
  std::optional<std::string> token_client_id;  ///< aud of issued tokens; default our client
  std::optional<Errc> exchange_error;
  /// Answers of ExchangeCode in turn before exchange_error applies (transient then success, …).
  std::deque<Errc> exchange_errors;
  std::optional<Errc> api_key_error;
  std::atomic<int> api_key_exchanges{0};
  std::optional<core::ApiKeyExchangeRequest> last_api_key_request;
  std::optional<Errc> refresh_error;
  /// Answers of the next refreshes, in order, before refresh_error (nullopt: a new pair).
  std::deque<std::optional<Errc>> refresh_script;
  std::deque<int> forward_statuses;
  std::optional<boost::asio::steady_timer> gate;
  /// Set before cancelling the gate: later refreshes pass it without waiting.
  bool gate_opened = false;
  std::atomic<int> exchanges{0};
  std::atomic<int> refreshes{0};
  std::atomic<int> forwards{0};
  std::string last_host;
  std::string last_client_id;  ///< of the last exchange or refresh
  std::string last_secret;     ///< of the last exchange or refresh
  std::string last_refresh_token;
  std::vector<std::string> forwarded_tokens;
  std::deque<std::string> forward_headers_retry_after;
  std::string forward_content_type;  ///< of every forwarded answer; empty: none  ///< Retry-After
                                     ///< per forwarded answer
  // Domain lookup (protocol §7.2) and per-host refresh failures (a renamed account).
  std::optional<core::AccountDomain> domain_answer;
  std::optional<Errc> lookup_error;
  std::atomic<int> lookups{0};
  std::string last_lookup_host;
  std::string last_lookup_token;
  std::map<std::string, Errc> refresh_error_by_host;
  std::vector<std::string> refresh_hosts;
  std::mutex mutex;

 private:
  std::string client_id_;
};

}  // namespace amoauth::testing
