#include "amoauth/service/code_queue_worker.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/core/code_exchange_policy.hpp"
#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/refresh_policy.hpp"

namespace amoauth::service {

CodeQueueWorker::CodeQueueWorker(ConnectFlow& flow,
                                 CodeQueue& queue,
                                 const EventFactory& events,
                                 const core::Clock& clock,
                                 core::Random& random,
                                 const boost::asio::any_io_executor& executor,
                                 CodeQueueSettings settings)
    : flow_(flow),
      queue_(queue),
      events_(events),
      clock_(clock),
      random_(random),
      settings_(settings),
      strand_(boost::asio::make_strand(executor)),
      timer_(strand_) {}

Task<Result<void>> CodeQueueWorker::Accept(CallbackParams params) {
  if (!params.code || params.code->empty()) {
    co_return Fail(Errc::kInvalidArgument);
  }
  // Nothing is stored for a host we would never send the client secret to.
  auto host = flow_.GetRefererPolicy().Check(params.referer.value_or(""));
  if (!host) {
    spdlog::warn("code hook refused: referer is not an allowed amoCRM/Kommo account host");
    co_return host.error();
  }
  const core::TimePoint now = clock_.Now();
  QueuedCode entry;
  entry.code = Secret(std::move(*params.code));
  entry.account_host = host->host;
  // amoCRM RU may omit client_id (protocol §2.5): then the code is for our integration.
  entry.client_id = params.client_id && !params.client_id->empty()
                        ? std::move(*params.client_id)
                        : flow_.GetIntegration().client_id;
  entry.source = params.from_widget ? CodeSource::kWidget : CodeSource::kExchange;
  entry.received_at = now;
  entry.expires_at = now + core::kCodeLifetime;
  entry.next_attempt_at = now;
  const CodeSource source = entry.source;
  auto queued = co_await queue_.Enqueue(std::move(entry));
  if (!queued) {
    spdlog::error("code from the {} hook for {} could not be stored: {}",
                  ToString(source),
                  host->host,
                  queued.error().message());
    co_return queued.error();
  }
  spdlog::info("code from the {} hook for {} {}",
               ToString(source),
               host->host,
               *queued ? "queued" : "was already queued (a repeated delivery)");
  Wake();
  co_return Result<void>{};
}

Task<Result<std::size_t>> CodeQueueWorker::RunOnce() {
  const core::TimePoint now = clock_.Now();
  auto claimed = co_await queue_.ClaimDueCodes(now, now + settings_.claim_ttl, settings_.batch);
  if (!claimed) {
    co_return claimed.error();
  }
  for (QueuedCode& entry : *claimed) {
    if (stopped_) {
      break;
    }
    co_await Attempt(std::move(entry));
  }
  co_return claimed->size();
}

Task<void> CodeQueueWorker::Attempt(QueuedCode entry) {
  const bool first_attempt = entry.attempts <= 1;
  if (entry.code.Empty()) {  // sealed under another master key, or tampered with
    const boost::system::error_code unreadable = Fail(Errc::kCryptoFailure);
    co_await Abandon(entry, unreadable);
    co_return;
  }
  if (clock_.Now() >= entry.expires_at) {  // left too long (every process was down): dead
    const boost::system::error_code expired = Fail(Errc::kAmoCodeExpired);
    co_await Abandon(entry, expired);
    co_return;
  }
  auto host = flow_.GetRefererPolicy().Check(entry.account_host);
  if (!host) {  // the allow-list shrank since the code was queued
    const boost::system::error_code refused = host.error();
    co_await Abandon(entry, refused);
    co_return;
  }
  Secret code = entry.code;
  std::string client_id = entry.client_id;
  auto connected = co_await flow_.ExchangeQueuedCode(
      std::move(code), std::move(*host), std::move(client_id), first_attempt);
  if (connected) {
    if (auto done = co_await queue_.Finish(entry.id); !done) {
      // The row stays claimed and comes back; its retry meets the ledger's "already used" or
      // amoCRM's "revoked" and ends there. The account is connected either way.
      spdlog::warn("code {} exchanged, but not removed from the queue: {}",
                   entry.id,
                   done.error().message());
    }
    spdlog::info("code from the {} hook exchanged: account {} ({}) connected",
                 ToString(entry.source),
                 connected->account_id,
                 connected->base_domain);
    co_return;
  }
  const boost::system::error_code why = connected.error();
  if (core::ClassifyCodeFailure(why) == core::CodeFailure::kPermanent) {
    co_await Abandon(entry, why);
    co_return;
  }
  core::RefreshPolicy backoff;
  backoff.backoff_base = settings_.backoff_base;
  backoff.backoff_cap = settings_.backoff_cap;
  const core::TimePoint next =
      clock_.Now() + core::Backoff(entry.attempts, backoff, core::Jitter(random_));
  if (next >= entry.expires_at) {
    co_await Abandon(entry, why);
    co_return;
  }
  spdlog::warn("code {} from the {} hook for {}: attempt {} failed: {}; next at {}",
               entry.id,
               ToString(entry.source),
               entry.account_host,
               entry.attempts,
               why.message(),
               core::FormatIsoTime(next));
  std::string error(why.message());
  if (auto recorded = co_await queue_.Retry(entry.id, std::move(error), next); !recorded) {
    spdlog::warn("code {}: could not record the failure: {} (its claim ends by itself)",
                 entry.id,
                 recorded.error().message());
  }
}

Task<void> CodeQueueWorker::Abandon(QueuedCode entry, boost::system::error_code why) {
  spdlog::warn("code {} from the {} hook for {} given up after {} attempt(s): {}",
               entry.id,
               ToString(entry.source),
               entry.account_host,
               entry.attempts,
               why.message());
  const boost::json::object data{
      {"source", ToString(entry.source)},
      {"error", ErrorCode(why)},
      {"message", why.message()},
      {"attempts", entry.attempts},
      {"received_at", core::FormatIsoTime(entry.received_at)},
  };
  auto events = events_.MakeForHost(event_type::kCodeExchangeFailed,
                                    entry.account_host,
                                    entry.client_id,
                                    boost::json::serialize(data));
  if (auto done = co_await queue_.GiveUp(entry.id, std::move(events), clock_.Now()); !done) {
    spdlog::warn("code {}: could not give it up: {} (it comes back when its claim ends)",
                 entry.id,
                 done.error().message());
  }
}

void CodeQueueWorker::Wake() {
  wake_requested_ = true;
  // The timer is touched only on the strand Run() runs on.
  boost::asio::post(strand_, [this] { timer_.cancel(); });
}

void CodeQueueWorker::Stop() {
  stopped_ = true;
  Wake();
}

Task<void> CodeQueueWorker::Run() {
  for (;;) {
    busy_ = true;  // before stopped_ is read: see RefreshScheduler::Run
    if (stopped_) {
      busy_ = false;
      break;
    }
    auto done = co_await RunOnce();
    busy_ = false;
    if (!done) {
      spdlog::error("code queue: cannot read it: {}", done.error().message());
    }
    // A full batch may have more behind it; a wake-up may have come while we worked.
    const bool more = done && *done >= settings_.batch;
    if (wake_requested_.exchange(false) || more) {
      continue;
    }
    timer_.expires_after(settings_.interval);
    boost::system::error_code ec;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

}  // namespace amoauth::service
