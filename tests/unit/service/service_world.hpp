// The in-memory world the service tests run in: one io_context, a fake clock and randomness,
// in-memory stores, a fake amoCRM, the limiter, the event factory, the configured integration,
// and the two use cases built over them (ConnectFlow, AccountService).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "amoauth/core/refresh_policy.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/api_limiter.hpp"
#include "amoauth/service/connect_flow.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/integration_directory.hpp"
#include "fake_amo_client.hpp"
#include "fake_clock.hpp"
#include "in_memory_stores.hpp"
#include "run_co.hpp"

namespace amoauth::testing {

/// The configured integration's client id.
inline constexpr const char* kClient = "11111111-2222-3333-4444-555555555555";
/// An external integration (made by a metadata button): none of the worlds knows it until a
/// test adds it.
inline constexpr const char* kExternal = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// What a test may change in its world. The defaults are the connect tests' world.
struct WorldOptions {
  service::Integration integration{.platform = core::Platform::kAmocrm,
                                   .client_id = kClient,
                                   .client_secret = Secret("s3cr3t"),
                                   .redirect_uri = "https://app.example/callback",
                                   .consent_url = "https://www.amocrm.ru/oauth"};
  service::FlowSettings flow;
  std::vector<std::string> referers{"amocrm.ru", "kommo.com"};
  service::LimiterSettings limiter;
  /// The limiter reads ServiceWorld::steady_now (moved by the test) instead of the steady clock.
  bool manual_steady_time = false;
  /// EventFactory's switch: false builds no events at all (webhooks off).
  bool events = true;
};

/// The account tests' world: client secret "s" (what amoCRM signs the disconnect hook with),
/// refresh leases of 2 s, and a limiter that lets 7 requests through and never queues a caller.
inline WorldOptions AccountWorld() {
  using std::chrono::hours;
  return {.integration = {.client_id = kClient,
                          .client_secret = Secret("s"),
                          .redirect_uri = "https://a/cb"},
          .flow = {.refresh = {.margin = std::chrono::minutes(5),
                               .ahead = hours(1),
                               .keepalive = hours(24 * 7)},
                   .lease_ttl = std::chrono::seconds(2),
                   .instance_id = "this-process"},
          .limiter = {.rps = 7, .max_wait = std::chrono::milliseconds(0)}};
}

/// A connection row a test starts from. The defaults are the standard account: 30000001 through
/// kClient on example.amocrm.ru, its token good for a day.
struct ConnectionSpec {
  std::int64_t account_id = 30000001;
  std::string base_domain = "example.amocrm.ru";
  std::string api_domain = "api-b.amocrm.ru";
  std::string access_token = "old-access";
  /// Empty: a token that cannot be refreshed (a long-lived token), so never scheduled.
  std::string refresh_token = "old-refresh";
  std::chrono::seconds expires_in = std::chrono::hours(24);
};

/// Construct one per test (as a fixture base: `class FooTest : public ::testing::Test, protected
/// ServiceWorld`). Not thread-safe; everything runs on `ioc` from the test's thread.
struct ServiceWorld {
  explicit ServiceWorld(WorldOptions options = {})
      : limiter(options.limiter, ioc.get_executor(), LimiterClock(options.manual_steady_time)),
        events(options.events, clock, random),
        directory(std::move(options.integration), stores),
        flow(NewFlow(directory, options.flow, core::RefererPolicy(options.referers))),
        accounts(directory, options.flow, core::RefererPolicy(options.referers), Ports()) {}

  /// A ConnectFlow over this world's stores, amoCRM, events, clock and randomness.
  service::ConnectFlow NewFlow(service::IntegrationDirectory& integrations,
                               service::FlowSettings settings,
                               core::RefererPolicy referers) {
    return {integrations,
            std::move(settings),
            std::move(referers),
            stores,
            stores,
            stores,
            amo,
            events,
            clock,
            random};
  }

  /// AccountService's ports: `connections` and the rest of this world.
  service::AccountPorts Ports(service::ConnectionStore& connections) {
    return {.connections = connections,
            .leases = stores,
            .outbox = stores,
            .amo = amo,
            .limiter = limiter,
            .events = events,
            .clock = clock,
            .random = random};
  }
  service::AccountPorts Ports() { return Ports(stores); }

  /// The row `spec` describes, as the connect flow stores it: refreshed just now, the next
  /// refresh where the default policy puts it (an hour before expiry).
  [[nodiscard]] core::Connection ConnectionRow(ConnectionSpec spec = {}) const {
    core::Connection c;
    c.account_id = spec.account_id;
    c.client_id = kClient;
    c.base_domain = std::move(spec.base_domain);
    c.api_domain = std::move(spec.api_domain);
    c.access_token = Secret(std::move(spec.access_token));
    c.refresh_token = Secret(std::move(spec.refresh_token));
    c.expires_at = clock.Now() + spec.expires_in;
    c.last_refresh_at = clock.Now();
    c.next_refresh_at = core::NextRefreshAt(c, core::RefreshPolicy{});
    return c;
  }

  /// Stores ConnectionRow(spec) straight into the stores (no event).
  void SeedConnection(ConnectionSpec spec = {}) {
    RunCo(ioc, stores.Upsert(ConnectionRow(std::move(spec)), {})).value();
  }

  /// Makes kExternal one of our integrations (secret "external-secret"), as the secrets webhook
  /// of a metadata button does.
  [[nodiscard]] Result<void> AddExternalIntegration() {
    return RunCo(ioc,
                 stores.AddIntegration({.client_id = kExternal,
                                        .client_secret = Secret("external-secret"),
                                        .state_hash = "h",
                                        .created_at = clock.Now()}));
  }

  boost::asio::io_context ioc;
  FakeClock clock;
  CountingRandom random;
  InMemoryStores stores{clock};
  FakeAmoClient amo{kClient};
  service::ApiLimiter::SteadyClock::time_point steady_now = service::ApiLimiter::SteadyClock::now();
  service::ApiLimiter limiter;
  service::EventFactory events;
  service::IntegrationDirectory directory;
  service::ConnectFlow flow;
  service::AccountService accounts;

 private:
  service::ApiLimiter::NowFn LimiterClock(bool manual) {
    if (manual) {
      return [this] { return steady_now; };
    }
    return &service::ApiLimiter::SteadyClock::now;
  }
};

}  // namespace amoauth::testing
