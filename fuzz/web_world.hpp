// amoauth's HTTP surface (WebApp behind its Router) over in-memory stores, a fake amoCRM, a fake
// clock and counting randomness: the service tests' ServiceWorld plus the remaining use cases the
// WebApp needs. No network, no threads, no real time: one world per fuzz input, so every input
// runs alone and the same way twice. Log lines go to a buffer the targets search for secrets.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "amoauth/http_server/router.hpp"
#include "amoauth/service/api_key_exchange.hpp"
#include "amoauth/service/code_queue_worker.hpp"
#include "amoauth/service/long_lived_tokens.hpp"
#include "amoauth/web/web_app.hpp"
#include "fuzz_check.hpp"
#include "service_world.hpp"

namespace amoauth::fuzz {

/// The world's integration secret, the tokens FakeAmoClient issues and the seeded connection's:
/// none may ever appear in an answer or a log line.
inline constexpr std::string_view kClientSecret = "s3cr3t-of-the-integration";
inline constexpr std::string_view kApiKey = "fuzz-api-key-0123456789abcdef";
inline constexpr std::string_view kIssuedRefreshPrefix = "def50200refresh-";
/// Base64url of {"typ":"JWT", the start of every access token FakeAmoClient issues.
inline constexpr std::string_view kIssuedAccessPrefix = "eyJ0eXAiOiJKV1Qi";
inline constexpr std::string_view kSeededAccess = "seeded-access-token-30000001";
inline constexpr std::string_view kSeededRefresh = "seeded-refresh-token-30000001";

/// Every log line of the process, for the current input only (Clear() per input).
class LogCapture {
 public:
  static LogCapture& Instance() {
    static LogCapture capture;
    return capture;
  }
  void Clear() {
    stream_.str({});
    stream_.clear();
  }
  [[nodiscard]] std::string Text() const { return stream_.str(); }

 private:
  LogCapture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream_);
    auto logger = std::make_shared<spdlog::logger>("fuzz", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  std::ostringstream stream_;
};

inline testing::WorldOptions WebWorldOptions() {
  testing::WorldOptions options;
  options.integration.client_secret = Secret(std::string(kClientSecret));
  return options;
}

struct WebWorld : testing::ServiceWorld {
  WebWorld()
      : ServiceWorld(WebWorldOptions()),
        codes(flow, stores, events, clock, random, ioc.get_executor(), {}),
        api_keys(flow.GetIntegration(), flow.GetRefererPolicy(), amo, stores, stores, clock),
        long_lived(directory, flow.GetRefererPolicy(), stores, events, clock),
        web(web::WebSettings{.api_key = Secret(std::string(kApiKey)),
                             .button_script_url = "https://www.amocrm.ru/auth/button.min.js"},
            web::WebServices{.flow = flow,
                             .accounts = accounts,
                             .codes = codes,
                             .api_keys = api_keys,
                             .long_lived = long_lived,
                             .clock = clock}) {
    LogCapture::Instance().Clear();
    web.AddRoutes(router);
  }

  net::HttpResponse Send(std::string method, std::string target, std::string body = {}) {
    net::HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.remote_address = "127.0.0.1";
    request.request_id = "fuzz-request";
    return testing::RunCo(ioc, router.Dispatch(std::move(request)));
  }

  /// A connection like the one the connect flow stores, with the seeded tokens.
  void SeedAccount() {
    SeedConnection(
        {.access_token = std::string(kSeededAccess), .refresh_token = std::string(kSeededRefresh)});
  }

  /// Every row is whole: a key, a host, and (unless disconnected) a token that expires.
  [[nodiscard]] bool RowsAreWhole() {
    auto rows = testing::RunCo(ioc, stores.List());
    if (!rows) {
      return false;
    }
    for (const core::Connection& c : *rows) {
      if (c.account_id <= 0 || c.client_id.empty() || c.base_domain.empty() || c.version <= 0) {
        return false;
      }
      if (c.status == core::ConnectionStatus::kActive &&
          (c.access_token.Empty() || c.expires_at == core::TimePoint{})) {
        return false;
      }
    }
    return true;
  }

  /// No secret the world holds is in `text`, unless the input itself carried it: the fuzzer learns
  /// the secrets from these very comparisons and puts them where an echo is fine (a client_id).
  [[nodiscard]] static bool HoldsNoWorldSecret(std::string_view text, std::string_view input) {
    for (std::string_view s : {kClientSecret,
                               kApiKey,
                               kIssuedRefreshPrefix,
                               kIssuedAccessPrefix,
                               kSeededAccess,
                               kSeededRefresh}) {
      if (input.find(s) == std::string_view::npos && text.find(s) != std::string_view::npos) {
        return false;
      }
    }
    return true;
  }

  service::CodeQueueWorker codes;
  service::ApiKeyExchange api_keys;
  service::LongLivedTokens long_lived;
  web::WebApp web;
  http_server::Router router;
};

/// The invariants every public handler keeps, whatever the input: no 5xx for bad input (the
/// world's stores and amoCRM never fail), no secret in the answer or the logs, no half-written row.
/// `input` is the request as the fuzzer made it.
inline void CheckAnswer(WebWorld& world,
                        const net::HttpResponse& response,
                        std::string_view input) {
  FUZZ_CHECK(response.status >= 200 && response.status < 500);
  FUZZ_CHECK(WebWorld::HoldsNoWorldSecret(response.body, input));
  for (const auto& field : response.headers.All()) {
    FUZZ_CHECK(WebWorld::HoldsNoWorldSecret(field.value, input));
  }
  FUZZ_CHECK(WebWorld::HoldsNoWorldSecret(LogCapture::Instance().Text(), input));
  FUZZ_CHECK(world.RowsAreWhole());
}

/// `text` with every `placeholder` replaced by `value`.
inline std::string Substitute(std::string text,
                              std::string_view placeholder,
                              std::string_view value) {
  for (auto at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + value.size())) {
    text.replace(at, placeholder.size(), value);
  }
  return text;
}

}  // namespace amoauth::fuzz
