#include "amoauth/service/webhook_dispatcher.hpp"

#include <array>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/refresh_policy.hpp"
#include "amoauth/core/webhook_signature.hpp"

namespace amoauth::service {
WebhookDispatcher::WebhookDispatcher(EventOutbox& outbox,
                                     WebhookSender& sender,
                                     const core::Clock& clock,
                                     core::Random& random,
                                     WebhookSettings settings)
    : outbox_(outbox),
      sender_(sender),
      clock_(clock),
      random_(random),
      settings_(std::move(settings)) {}

Task<Result<std::size_t>> WebhookDispatcher::RunOnce() {
  const core::TimePoint now = clock_.Now();
  auto claimed = co_await outbox_.ClaimDue(now, now + settings_.claim_ttl, settings_.batch);
  if (!claimed) {
    co_return claimed.error();
  }
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < claimed->size() && !stopped_; ++i) {
    OutboxEntry& entry = (*claimed)[i];
    net::HttpHeaders headers;
    headers.Set(std::string(core::kWebhookSignatureHeader),
                core::SignWebhook(
                    settings_.secret.Reveal(), core::ToUnixSeconds(clock_.Now()), entry.body));
    headers.Set("X-Amoauth-Event", entry.type);
    headers.Set("X-Amoauth-Attempt", std::to_string(entry.attempts));
    std::string body = entry.body;
    auto status = co_await sender_.Post(std::move(body), std::move(headers));
    if (status && *status >= 200 && *status <= 299) {
      if (auto marked = co_await outbox_.MarkDelivered(entry.id, clock_.Now()); !marked) {
        spdlog::warn("webhook {}: delivered, but not marked so: {} (it will be sent again)",
                     entry.id,
                     marked.error().message());
      }
      ++delivered;
      continue;
    }
    std::string error =
        status ? fmt::format("HTTP {}", *status) : std::string(status.error().message());
    // The same schedule as refresh backoff, in its own units.
    core::RefreshPolicy backoff;
    backoff.backoff_base = settings_.backoff_base;
    backoff.backoff_cap = settings_.backoff_cap;
    const core::TimePoint next =
        clock_.Now() + core::Backoff(entry.attempts, backoff, core::Jitter(random_));
    spdlog::warn("webhook {} ({}): attempt {} failed: {}; next at {}",
                 entry.id,
                 entry.type,
                 entry.attempts,
                 error,
                 core::FormatIsoTime(next));
    if (auto marked = co_await outbox_.MarkFailed(entry.id, error, next); !marked) {
      spdlog::warn(
          "webhook {}: could not record the failure: {}", entry.id, marked.error().message());
    }
    // The backend is down or refusing: do not knock with the rest of the batch (each would wait
    // out the timeout); they go with this one's retry.
    for (std::size_t rest = i + 1; rest < claimed->size(); ++rest) {
      std::string postponed = "not sent: delivering an earlier event failed (" + error + ")";
      if (auto marked =
              co_await outbox_.MarkFailed((*claimed)[rest].id, std::move(postponed), next);
          !marked) {
        spdlog::warn(
            "webhook {}: could not postpone: {}", (*claimed)[rest].id, marked.error().message());
      }
    }
    break;
  }
  co_return delivered;
}

Task<void> WebhookDispatcher::Run() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    busy_ = true;  // before stopped_ is read: see RefreshScheduler::Run
    if (stopped_) {
      busy_ = false;
      break;
    }
    auto done = co_await RunOnce();
    busy_ = false;
    if (!done) {
      spdlog::error("webhooks: cannot read the outbox: {}", done.error().message());
    }
    timer.expires_after(settings_.interval);
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

}  // namespace amoauth::service
