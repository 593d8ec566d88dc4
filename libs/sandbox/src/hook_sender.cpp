#include "hook_sender.hpp"

#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "sandbox_context.hpp"

namespace amoauth::sandbox {
namespace {

namespace asio = boost::asio;

// A named coroutine taking its parameters by value (no capturing coroutine lambdas).
asio::awaitable<HookDelivery> SendAfterDelay(std::shared_ptr<HookSender> sender,
                                             OutgoingHook hook) {
  if (hook.delay.count() > 0) {
    asio::steady_timer timer(sender->Executor(), hook.delay);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return co_await sender->Send(std::move(hook));
}

}  // namespace

Result<std::shared_ptr<HookSender>> HookSender::Create(asio::any_io_executor executor,
                                                       std::chrono::milliseconds timeout) {
  http_client::ClientOptions options;
  options.timeout = timeout;
  options.user_agent = std::string(kHookUserAgent);
  auto client = http_client::HttpClient::Create(executor, std::move(options));
  if (!client) {
    return client.error();
  }
  return std::shared_ptr<HookSender>(new HookSender(std::move(executor), std::move(*client)));
}

HookSender::HookSender(asio::any_io_executor executor,
                       std::unique_ptr<http_client::HttpClient> client)
    : executor_(std::move(executor)), client_(std::move(client)) {}

asio::awaitable<HookDelivery> HookSender::Send(OutgoingHook hook) {
  http_client::ClientRequest request;
  request.method = hook.method;
  request.url = std::move(hook.url);
  request.headers.Set("User-Agent", std::string(kHookUserAgent));
  if (!hook.content_type.empty()) {
    request.headers.Set("Content-Type", hook.content_type);
  }
  request.body = std::move(hook.body);
  const auto started = std::chrono::steady_clock::now();
  auto answer = co_await client_->Send(std::move(request));
  HookDelivery out;
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (!answer) {
    out.error = answer.error().message();
    SandboxLogger()->warn("account {}: {} to {} failed after {} ms: {}",
                          hook.account_id,
                          hook.what,
                          hook.log_url,
                          out.elapsed.count(),
                          out.error);
    co_return out;
  }
  out.delivered = true;
  out.status = answer->status;
  out.body = std::move(answer->body);
  SandboxLogger()->info("account {}: {} to {} answered {} in {} ms",
                        hook.account_id,
                        hook.what,
                        hook.log_url,
                        out.status,
                        out.elapsed.count());
  co_return out;
}

void SendLater(std::shared_ptr<HookSender> sender,
               OutgoingHook hook,
               std::function<void(const HookDelivery&)> done) {
  const asio::any_io_executor executor = sender->Executor();
  asio::co_spawn(
      executor,
      SendAfterDelay(std::move(sender), std::move(hook)),
      [done = std::move(done)](const std::exception_ptr& error, const HookDelivery& delivery) {
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            SandboxLogger()->error("a background hook failed: {}", e.what());
          } catch (...) {
            SandboxLogger()->error("a background hook failed");
          }
          return;
        }
        if (done) {
          done(delivery);
        }
      });
}

}  // namespace amoauth::sandbox
