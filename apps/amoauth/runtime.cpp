#include "runtime.hpp"

#include <array>

#include <fmt/format.h>
#include <unistd.h>

#include "amoauth/core/referer_policy.hpp"
#include "process_identity.hpp"
#include "store_factory.hpp"

namespace amoauth::app {

Checked<std::unique_ptr<Runtime>> Runtime::Build(Config config,
                                                 boost::asio::any_io_executor executor) {
  std::unique_ptr<Runtime> rt(new Runtime(std::move(config)));
  const Config& c = rt->config_;

  auto store = OpenStore(c, rt->clock_);
  if (!store) {
    return store.error();
  }
  rt->store_ = std::move(*store);

  auto http = http_client::HttpClient::Create(executor,
                                              {
                                                  .connect_to = c.amo_connect_to,
                                                  .ca_file = c.amo_ca_file,
                                                  .timeout = c.amo_timeout,
                                              });
  if (!http) {
    return std::string(
        "cannot set up the HTTPS client: check AMOAUTH_AMO_CA_FILE and "
        "AMOAUTH_AMO_CONNECT_TO");
  }
  rt->http_ = std::move(*http);
  rt->amo_ = std::make_unique<amo_client::AmoHttpClient>(*rt->http_);

  service::Integration integration{
      .platform = c.platform,
      .client_id = c.client_id,
      .client_secret = c.client_secret,
      .redirect_uri = c.redirect_uri,
      .consent_url = c.consent_url,
  };
  // Webhooks have their own client: AMOAUTH_AMO_CONNECT_TO and the sandbox CA are for amoCRM's
  // hosts only, never for the integrator's backend.
  if (!c.webhook_url.empty()) {
    auto webhook_http = http_client::HttpClient::Create(executor, {.timeout = c.webhook_timeout});
    if (!webhook_http) {
      return std::string("cannot set up the webhook HTTP client");
    }
    rt->webhook_http_ = std::move(*webhook_http);
    rt->webhook_sender_ =
        std::make_unique<webhook_client::HttpWebhookSender>(*rt->webhook_http_, c.webhook_url);
  }

  std::array<std::uint8_t, 6> salt{};
  rt->random_.Fill(salt);
  rt->instance_id_ = MakeInstanceId(salt);

  service::FlowSettings settings{
      .refresh = {.margin = c.refresh_margin, .ahead = c.refresh_ahead, .keepalive = c.keepalive},
      // A refresh ends within the amoCRM timeout twice over (refresh + domain lookup + retry);
      // the lease must outlast it.
      .lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(c.amo_timeout * 3) +
                   std::chrono::seconds(5),
      .dead_holder_grace = c.amo_timeout,
      .secrets_wait = c.secrets_wait,
      .instance_id = rt->instance_id_,
  };
  rt->events_ =
      std::make_unique<service::EventFactory>(!c.webhook_url.empty(), rt->clock_, rt->random_);
  rt->limiter_ = std::make_unique<service::ApiLimiter>(
      service::LimiterSettings{
          .rps = static_cast<std::size_t>(c.rate_limit_rps),
          .max_wait = c.rate_limit_max_wait,
          .block_cooloff = c.block_cooloff,
      },
      executor);
  core::RefererPolicy referer_policy(c.allowed_domains);
  // A per-instance token cache, kept coherent by what the engine offers: PostgreSQL reports
  // every instance's writes (LISTEN/NOTIFY); SQLite counts commits (PRAGMA data_version), which
  // the cache checks on every read.
  service::ConnectionStore* connections = rt->store_.get();
  const service::TokenCacheOptions cache_options{.max_entries = c.token_cache_entries};
  if (c.token_cache_entries > 0) {
    if (auto* changes = dynamic_cast<service::ConnectionChanges*>(rt->store_.get())) {
      rt->token_cache_ =
          std::make_unique<service::CachedConnectionStore>(*rt->store_, *changes, cache_options);
    } else if (auto* counter = dynamic_cast<service::CommitCounter*>(rt->store_.get())) {
      rt->token_cache_ =
          std::make_unique<service::CachedConnectionStore>(*rt->store_, *counter, cache_options);
    }
  }
  if (rt->token_cache_) {
    connections = rt->token_cache_.get();
  }
  rt->integrations_ = std::make_unique<service::IntegrationDirectory>(integration, *rt->store_);
  rt->flow_ = std::make_unique<service::ConnectFlow>(*rt->integrations_,
                                                     settings,
                                                     referer_policy,
                                                     *rt->store_,
                                                     *rt->store_,
                                                     *connections,
                                                     *rt->amo_,
                                                     *rt->events_,
                                                     rt->clock_,
                                                     rt->random_);
  rt->accounts_ = std::make_unique<service::AccountService>(*rt->integrations_,
                                                            settings,
                                                            referer_policy,
                                                            service::AccountPorts{
                                                                .connections = *connections,
                                                                .leases = *rt->store_,
                                                                .outbox = *rt->store_,
                                                                .amo = *rt->amo_,
                                                                .limiter = *rt->limiter_,
                                                                .events = *rt->events_,
                                                                .clock = rt->clock_,
                                                                .random = rt->random_,
                                                                .latest = rt->store_.get(),
                                                                .metrics = &rt->metrics_,
                                                                .liveness = &rt->liveness_,
                                                            });
  rt->metrics_reader_ = std::make_unique<service::MetricsReader>(service::MetricsPorts{
      .counters = rt->metrics_,
      .statistics = *rt->store_,
      .outbox = *rt->store_,
      .codes = *rt->store_,
      .limiter = *rt->limiter_,
      .clock = rt->clock_,
  });
  rt->long_lived_ = std::make_unique<service::LongLivedTokens>(
      *rt->integrations_, referer_policy, *connections, *rt->events_, rt->clock_);
  rt->scheduler_ = std::make_unique<service::RefreshScheduler>(
      *rt->accounts_,
      *rt->store_,
      rt->clock_,
      service::SchedulerSettings{.interval = c.scheduler_interval});
  if (rt->webhook_sender_) {
    rt->webhooks_ = std::make_unique<service::WebhookDispatcher>(
        *rt->store_,
        *rt->webhook_sender_,
        rt->clock_,
        rt->random_,
        service::WebhookSettings{
            .secret = c.webhook_secret,
            .claim_ttl = std::chrono::duration_cast<std::chrono::seconds>(c.webhook_timeout) +
                         std::chrono::seconds(5),
        });
  }
  rt->codes_ = std::make_unique<service::CodeQueueWorker>(
      *rt->flow_,
      *rt->store_,
      *rt->events_,
      rt->clock_,
      rt->random_,
      executor,
      service::CodeQueueSettings{
          // An exchange ends within the amoCRM timeout; the claim must outlast it.
          .claim_ttl = std::chrono::duration_cast<std::chrono::seconds>(c.amo_timeout * 2) +
                       std::chrono::seconds(5),
      });
  rt->api_keys_ = std::make_unique<service::ApiKeyExchange>(
      integration, referer_policy, *rt->amo_, *rt->store_, *rt->store_, rt->clock_);
  return rt;
}

}  // namespace amoauth::app
