// `amoauth sandbox`'s flags as RunSandbox checks them (main.cpp only binds them with CLI11).
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "commands.hpp"

namespace amoauth::app {
namespace {

using ::testing::HasSubstr;

TEST(SandboxOptions, DefaultsAreTheSimulatorsOwn) {
  auto o = ToSandboxOptions(SandboxOptions{});
  ASSERT_TRUE(o) << o.error();
  const sandbox::Options expected;
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->http_port, 8090);
  EXPECT_EQ(o->tls_port, 8443);
  EXPECT_EQ(o->state_dir, "./data/sandbox");
  EXPECT_EQ(o->code_ttl, expected.code_ttl);
  EXPECT_EQ(o->access_token_ttl, expected.access_token_ttl);
  EXPECT_EQ(o->refresh_token_ttl, expected.refresh_token_ttl);
  EXPECT_EQ(o->rotation, expected.rotation);
  EXPECT_EQ(o->revoke_access_token_on_refresh, expected.revoke_access_token_on_refresh);
  EXPECT_EQ(o->api_rate_limit_rps, expected.api_rate_limit_rps);
  EXPECT_EQ(o->api_block_after_violations, expected.api_block_after_violations);
  EXPECT_EQ(o->api_violation_window, expected.api_violation_window);
  EXPECT_EQ(o->api_block_duration, expected.api_block_duration);
  EXPECT_EQ(o->api_retry_after, expected.api_retry_after);
  EXPECT_EQ(o->token_delay, expected.token_delay);
  EXPECT_EQ(o->exchange_hook_delay, expected.exchange_hook_delay);
  EXPECT_EQ(o->secrets_delivery, expected.secrets_delivery);
  EXPECT_EQ(o->secrets_delay, expected.secrets_delay);
}

TEST(SandboxOptions, CarriesEveryKnob) {
  SandboxOptions flags;
  flags.http_listen = "127.0.0.1:0";
  flags.tls_listen = "127.0.0.1:0";
  flags.code_ttl_seconds = 30;
  flags.access_token_ttl_seconds = 60;
  flags.refresh_token_ttl_seconds = 120;
  flags.rotation = "grace_until_new_used";
  flags.keep_access_on_refresh = true;
  flags.api_rate_limit_rps = 0;
  flags.api_block_after_violations = 3;
  flags.api_violation_window_seconds = 5;
  flags.api_block_seconds = 9;
  flags.api_retry_after_seconds = 0;
  flags.token_delay_ms = 5000;
  flags.exchange_hook_delay_ms = 2000;
  flags.secrets_delivery = "after_redirect";
  flags.secrets_delay_ms = 500;
  auto o = ToSandboxOptions(flags);
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->http_port, 0);
  EXPECT_EQ(o->tls_port, 0);
  EXPECT_EQ(o->code_ttl, std::chrono::seconds(30));
  EXPECT_EQ(o->access_token_ttl, std::chrono::seconds(60));
  EXPECT_EQ(o->refresh_token_ttl, std::chrono::seconds(120));
  EXPECT_EQ(o->rotation, sandbox::Rotation::kGraceUntilNewUsed);
  EXPECT_FALSE(o->revoke_access_token_on_refresh);
  EXPECT_EQ(o->api_rate_limit_rps, 0U);
  EXPECT_EQ(o->api_block_after_violations, 3U);
  EXPECT_EQ(o->api_violation_window, std::chrono::seconds(5));
  EXPECT_EQ(o->api_block_duration, std::chrono::seconds(9));
  EXPECT_EQ(o->api_retry_after, std::chrono::seconds(0));
  EXPECT_EQ(o->token_delay, std::chrono::milliseconds(5000));
  EXPECT_EQ(o->exchange_hook_delay, std::chrono::milliseconds(2000));
  EXPECT_EQ(o->secrets_delivery, sandbox::SecretsDelivery::kAfterRedirect);
  EXPECT_EQ(o->secrets_delay, std::chrono::milliseconds(500));
}

/// The simulator's own ranges (docs/sandbox.md §4): the ends are accepted.
TEST(SandboxOptions, AcceptsTheEndsOfEachRange) {
  constexpr std::int64_t kTenYears = 10LL * 365 * 86400;
  SandboxOptions low;
  low.code_ttl_seconds = low.access_token_ttl_seconds = low.refresh_token_ttl_seconds = 1;
  low.api_rate_limit_rps = low.api_block_after_violations = 0;
  low.api_violation_window_seconds = low.api_block_seconds = 1;
  low.api_retry_after_seconds = 0;
  low.token_delay_ms = low.exchange_hook_delay_ms = low.secrets_delay_ms = 0;
  auto lo = ToSandboxOptions(low);
  EXPECT_TRUE(lo) << lo.error();
  SandboxOptions high;
  high.code_ttl_seconds = high.access_token_ttl_seconds = high.refresh_token_ttl_seconds =
      kTenYears;
  high.api_rate_limit_rps = 10000;
  high.api_block_after_violations = 1000000;
  high.api_violation_window_seconds = 86400;
  high.api_block_seconds = kTenYears;
  high.api_retry_after_seconds = 86400;
  high.token_delay_ms = 60000;
  high.exchange_hook_delay_ms = high.secrets_delay_ms = 600000;
  auto hi = ToSandboxOptions(high);
  EXPECT_TRUE(hi) << hi.error();
}

/// Every bad value stops start-up with a sentence naming its flag.
TEST(SandboxOptions, BadValuesNameTheirFlag) {
  constexpr std::int64_t kTenYears = 10LL * 365 * 86400;
  using Set = void (*)(SandboxOptions&);
  const std::vector<std::pair<std::string, Set>> cases = {
      {"--http-listen", [](SandboxOptions& o) { o.http_listen = "8090"; }},
      {"--http-listen", [](SandboxOptions& o) { o.http_listen = "127.0.0.1:65536"; }},
      {"--tls-listen", [](SandboxOptions& o) { o.tls_listen = "0.0.0.0:8443"; }},
      {"--code-ttl", [](SandboxOptions& o) { o.code_ttl_seconds = 0; }},
      {"--access-token-ttl", [](SandboxOptions& o) { o.access_token_ttl_seconds = -60; }},
      {"--access-token-ttl", [](SandboxOptions& o) { o.access_token_ttl_seconds = kTenYears + 1; }},
      {"--refresh-token-ttl", [](SandboxOptions& o) { o.refresh_token_ttl_seconds = 0; }},
      {"--rotation", [](SandboxOptions& o) { o.rotation = "lax"; }},
      {"--rotation", [](SandboxOptions& o) { o.rotation = "Strict"; }},
      {"--api-rate-limit", [](SandboxOptions& o) { o.api_rate_limit_rps = -1; }},
      {"--api-rate-limit", [](SandboxOptions& o) { o.api_rate_limit_rps = 10001; }},
      {"--api-block-after", [](SandboxOptions& o) { o.api_block_after_violations = 1000001; }},
      {"--api-violation-window", [](SandboxOptions& o) { o.api_violation_window_seconds = 0; }},
      {"--api-violation-window", [](SandboxOptions& o) { o.api_violation_window_seconds = 86401; }},
      {"--api-block-seconds", [](SandboxOptions& o) { o.api_block_seconds = 0; }},
      {"--api-retry-after", [](SandboxOptions& o) { o.api_retry_after_seconds = -1; }},
      {"--api-retry-after", [](SandboxOptions& o) { o.api_retry_after_seconds = 86401; }},
      {"--token-delay-ms", [](SandboxOptions& o) { o.token_delay_ms = -1; }},
      {"--token-delay-ms", [](SandboxOptions& o) { o.token_delay_ms = 60001; }},
      {"--exchange-hook-delay-ms", [](SandboxOptions& o) { o.exchange_hook_delay_ms = 600001; }},
      {"--secrets-delivery", [](SandboxOptions& o) { o.secrets_delivery = "later"; }},
      {"--secrets-delay-ms", [](SandboxOptions& o) { o.secrets_delay_ms = -5; }},
      {"--secrets-delay-ms", [](SandboxOptions& o) { o.secrets_delay_ms = 600001; }},
  };
  for (const auto& [flag, set] : cases) {
    SandboxOptions flags;
    set(flags);
    auto o = ToSandboxOptions(flags);
    ASSERT_FALSE(o) << flag;
    EXPECT_THAT(o.error(), HasSubstr(flag));
  }
}

}  // namespace
}  // namespace amoauth::app
