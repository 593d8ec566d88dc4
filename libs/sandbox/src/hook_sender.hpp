#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "amoauth/core/result.hpp"
#include "amoauth/http_client/http_client.hpp"

/// The simulated amoCRM's server-to-server calls to an integration: the widget-install and
/// exchange_api_key code hooks (protocol §2.6, §6), the secrets webhook (§5) and the disconnect
/// hook (§7.1). One attempt each, a short deadline, no retry — as amoCRM does.
namespace amoauth::sandbox {

/// The User-Agent amoCRM's hooks are seen with (protocol §7.1; assumed for the others).
inline constexpr std::string_view kHookUserAgent = "amoService-oAuth-Code-Sender/1.0";
/// amoCRM's limit on the widget hook (protocol §2.6), used for every hook.
inline constexpr std::chrono::milliseconds kHookTimeout{3000};

/// One call to an integration's URL.
struct OutgoingHook {
  std::string method = "GET";
  /// With its query. It may carry a code: never logged (log_url is).
  std::string url;
  std::string content_type;  ///< for a body
  std::string body;          ///< may carry a client_secret: never logged
  /// What logs and reports may show: the URL without the query the sandbox added.
  std::string log_url;
  std::string what;  ///< "widget hook", "secrets webhook"…, for logs
  std::int64_t account_id = 0;
  std::chrono::milliseconds delay{0};  ///< SendLater only
};

/// What came of one attempt.
struct HookDelivery {
  bool delivered = false;  ///< an HTTP answer came back, whatever its status
  int status = 0;          ///< when delivered
  std::string body;        ///< what the hook answered, when delivered
  std::chrono::milliseconds elapsed{0};
  std::string error;  ///< when not delivered: the transport failure in words
};

/// Sends hooks over its own HTTP client (User-Agent kHookUserAgent). Thread-safe.
class HookSender final {
 public:
  /// Errors: those of http_client::HttpClient::Create.
  [[nodiscard]] static Result<std::shared_ptr<HookSender>> Create(
      boost::asio::any_io_executor executor, std::chrono::milliseconds timeout = kHookTimeout);

  /// One attempt; never throws for a transport failure (it is reported in the delivery).
  [[nodiscard]] boost::asio::awaitable<HookDelivery> Send(OutgoingHook hook);

  [[nodiscard]] const boost::asio::any_io_executor& Executor() const { return executor_; }

 private:
  HookSender(boost::asio::any_io_executor executor,
             std::unique_ptr<http_client::HttpClient> client);
  boost::asio::any_io_executor executor_;
  std::unique_ptr<http_client::HttpClient> client_;
};

/// Sends `hook` after hook.delay in the background (one attempt) and hands the outcome to `done`
/// (may be empty). Returns at once; `sender` is kept alive until the attempt ends.
void SendLater(std::shared_ptr<HookSender> sender,
               OutgoingHook hook,
               std::function<void(const HookDelivery&)> done);

}  // namespace amoauth::sandbox
