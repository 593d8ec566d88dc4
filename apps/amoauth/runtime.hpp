#pragma once

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "amoauth/amo_client/amo_http_client.hpp"
#include "amoauth/core/clock.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/http_client/http_client.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/api_key_exchange.hpp"
#include "amoauth/service/api_limiter.hpp"
#include "amoauth/service/cached_connection_store.hpp"
#include "amoauth/service/code_queue_worker.hpp"
#include "amoauth/service/connect_flow.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/long_lived_tokens.hpp"
#include "amoauth/service/metrics.hpp"
#include "amoauth/service/ports.hpp"
#include "amoauth/service/refresh_scheduler.hpp"
#include "amoauth/service/webhook_dispatcher.hpp"
#include "amoauth/webhook_client/http_webhook_sender.hpp"
#include "checked.hpp"
#include "config.hpp"
#include "process_identity.hpp"

namespace amoauth::app {

/// The composition root: turns a Config into the wired object graph the server and the CLI
/// commands use. Owns every object; destroy it after the io_context has stopped.
class Runtime {
 public:
  /// Opens the store (migrating it) and builds the amoCRM client and the use cases.
  /// Errors: one sentence for the operator.
  [[nodiscard]] static Checked<std::unique_ptr<Runtime>> Build(
      Config config, boost::asio::any_io_executor executor);

  [[nodiscard]] const Config& GetConfig() const { return config_; }
  [[nodiscard]] service::ConnectFlow& Flow() { return *flow_; }
  [[nodiscard]] service::AccountService& Accounts() { return *accounts_; }
  [[nodiscard]] service::RefreshScheduler& Scheduler() { return *scheduler_; }
  [[nodiscard]] service::LongLivedTokens& LongLived() { return *long_lived_; }
  /// nullptr when webhooks are off (no AMOAUTH_WEBHOOK_URL).
  [[nodiscard]] service::WebhookDispatcher* Webhooks() { return webhooks_.get(); }
  /// Exchanges the codes of the widget-install and exchange_api_key hooks in the background.
  [[nodiscard]] service::CodeQueueWorker& Codes() { return *codes_; }
  [[nodiscard]] service::ApiKeyExchange& ApiKeys() { return *api_keys_; }
  /// What GET /metrics shows: this process's counters and the store's gauges.
  [[nodiscard]] service::MetricsReader& MetricsReport() { return *metrics_reader_; }
  /// This process's name in refresh leases.
  [[nodiscard]] const std::string& InstanceId() const { return instance_id_; }
  [[nodiscard]] const core::Clock& Clock() const { return clock_; }
  /// The store itself (the admin UI reads account history and integrations from it).
  [[nodiscard]] service::Store& StoreForAdmin() { return *store_; }

 private:
  explicit Runtime(Config config) : config_(std::move(config)) {}

  Config config_;
  core::SystemClock clock_;
  core::SystemRandom random_;
  std::unique_ptr<service::Store> store_;  ///< whichever engine the configuration chose
  std::unique_ptr<http_client::HttpClient> http_;
  std::unique_ptr<amo_client::AmoHttpClient> amo_;
  std::unique_ptr<http_client::HttpClient> webhook_http_;
  std::unique_ptr<webhook_client::HttpWebhookSender> webhook_sender_;
  std::string instance_id_;
  LocalProcessLiveness liveness_;  ///< tells other instances' dead lease holders
  std::unique_ptr<service::EventFactory> events_;
  std::unique_ptr<service::ApiLimiter> limiter_;
  service::Metrics metrics_;
  std::unique_ptr<service::MetricsReader> metrics_reader_;
  /// nullptr without a change feed (SQLite) or with AMOAUTH_TOKEN_CACHE_ENTRIES=0.
  std::unique_ptr<service::CachedConnectionStore> token_cache_;
  std::unique_ptr<service::IntegrationDirectory> integrations_;
  std::unique_ptr<service::ConnectFlow> flow_;
  std::unique_ptr<service::AccountService> accounts_;
  std::unique_ptr<service::RefreshScheduler> scheduler_;
  std::unique_ptr<service::LongLivedTokens> long_lived_;
  std::unique_ptr<service::WebhookDispatcher> webhooks_;
  std::unique_ptr<service::CodeQueueWorker> codes_;
  std::unique_ptr<service::ApiKeyExchange> api_keys_;
};

}  // namespace amoauth::app
