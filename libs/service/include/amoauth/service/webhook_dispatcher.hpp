#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/core/secret.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

struct WebhookSettings {
  /// AMOAUTH_WEBHOOK_SECRET: the HMAC key of X-Amoauth-Signature.
  Secret secret;
  std::size_t batch = 50;
  /// An entry handed to this process stays ours this long; then another process (or this one
  /// after a restart) may send it again. Longer than one delivery can take.
  std::chrono::seconds claim_ttl{30};
  std::chrono::milliseconds interval{1000};
  /// Failed deliveries are retried after base * 2^(attempts-1), at most cap, with jitter.
  std::chrono::seconds backoff_base{5};
  std::chrono::seconds backoff_cap{60 * 60};
};

/// Delivers the outbox to the integrator's backend: signed POSTs, at least once, in order of
/// enqueueing per round, retried with backoff until a 2xx. Survives restarts because the outbox
/// is in the store.
class WebhookDispatcher {
 public:
  WebhookDispatcher(EventOutbox& outbox,
                    WebhookSender& sender,
                    const core::Clock& clock,
                    core::Random& random,
                    WebhookSettings settings);

  /// Claims and sends everything due now; returns how many were delivered.
  Task<Result<std::size_t>> RunOnce();
  Task<void> Run();
  /// No new delivery starts after it (entries claimed and not yet sent go out again when their
  /// claims end); a delivery being sent finishes and is marked. Thread-safe.
  void Stop() { stopped_ = true; }
  /// Run() is in a round, not waiting for the next one.
  [[nodiscard]] bool Busy() const { return busy_; }

 private:
  EventOutbox& outbox_;
  WebhookSender& sender_;
  const core::Clock& clock_;
  core::Random& random_;
  WebhookSettings settings_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> busy_{false};
};

}  // namespace amoauth::service
