#include "amoauth/service/account_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "fake_amo_client.hpp"
#include "fake_clock.hpp"
#include "in_memory_stores.hpp"
#include "run_co.hpp"

namespace amoauth::service {
namespace {

using testing::FakeAmoClient;
using testing::RunCo;

constexpr const char* kClient = "11111111-2222-3333-4444-555555555555";

class AccountServiceTest : public ::testing::Test {
 protected:
  AccountServiceTest()
      : stores(clock),
        amo(kClient),
        service(
            {.client_id = kClient, .client_secret = Secret("s"), .redirect_uri = "https://a/cb"},
            FlowSettings{.refresh_margin = std::chrono::minutes(5)},
            stores,
            amo,
            clock) {
    core::Connection c;
    c.account_id = 30000001;
    c.client_id = kClient;
    c.base_domain = "example.amocrm.ru";
    c.api_domain = "api-b.amocrm.ru";
    c.access_token = Secret("old-access");
    c.refresh_token = Secret("old-refresh");
    c.expires_at = clock.Now() + std::chrono::hours(24);
    RunCo(ioc, stores.Upsert(c)).value();
  }

  boost::asio::io_context ioc;
  testing::FakeClock clock;
  testing::InMemoryStores stores;
  FakeAmoClient amo;
  AccountService service;
};

TEST_F(AccountServiceTest, FreshTokenIsReturnedWithoutRefreshing) {
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_token.Reveal(), "old-access");
  EXPECT_EQ(amo.refreshes.load(), 0);
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(42)).error(), Errc::kNotFound));
}

TEST_F(AccountServiceTest, TokenInsideTheMarginIsRefreshedAndStored) {
  clock.Advance(std::chrono::hours(24) - std::chrono::minutes(4));
  auto c = RunCo(ioc, service.FreshToken(30000001));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(amo.refreshes.load(), 1);
  EXPECT_EQ(amo.last_refresh_token, "old-refresh");
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");
  EXPECT_EQ(c->refresh_token.Reveal(), "def50200refresh-refresh1");
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->expires_at, clock.Now() + std::chrono::hours(24));
  EXPECT_EQ(RunCo(ioc, service.Get(30000001))->access_token, c->access_token);
}

TEST_F(AccountServiceTest, ConcurrentCallersShareOneRefresh) {
  clock.Advance(std::chrono::hours(25));
  amo.gate.emplace(ioc, boost::asio::steady_timer::time_point::max());
  std::vector<std::optional<Result<core::Connection>>> results(10);
  for (auto& slot : results) {
    boost::asio::co_spawn(ioc,
                          service.FreshToken(30000001),
                          [&slot](std::exception_ptr e, Result<core::Connection> r) {
                            ASSERT_FALSE(e);
                            slot = std::move(r);
                          });
  }
  ioc.restart();  // RunCo in the fixture left the context stopped
  ioc.poll();     // every caller reaches its suspension point: one at the gate, nine waiting on it
  EXPECT_EQ(amo.refreshes.load(), 1);
  amo.gate->cancel();
  ioc.restart();
  ioc.run();
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(*r);
    EXPECT_EQ((*r)->refresh_token.Reveal(), "def50200refresh-refresh1");
  }
  EXPECT_EQ(amo.refreshes.load(), 1);
}

TEST_F(AccountServiceTest, DeadRefreshTokenMarksReauthRequiredAndIsNotRetried) {
  clock.Advance(std::chrono::hours(25));
  amo.refresh_error = Errc::kAmoTokenRevoked;
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kReauthRequired));
  EXPECT_EQ(RunCo(ioc, service.Get(30000001))->status, core::ConnectionStatus::kReauthRequired);
  EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), Errc::kReauthRequired));
  EXPECT_EQ(amo.refreshes.load(), 1);
}

TEST_F(AccountServiceTest, TransientFailureOrRejectedClientLeavesTheAccountActive) {
  clock.Advance(std::chrono::hours(25));
  for (Errc e : {Errc::kAmoUnreachable, Errc::kAmoServerError, Errc::kAmoInvalidClient}) {
    amo.refresh_error = e;
    EXPECT_TRUE(Is(RunCo(ioc, service.FreshToken(30000001)).error(), e));
    EXPECT_EQ(RunCo(ioc, service.Get(30000001))->status, core::ConnectionStatus::kActive);
  }
}

TEST_F(AccountServiceTest, ProxyRefreshesOnceAndReplaysOnceAfter401) {
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  amo.forward_statuses = {401, 200};
  auto r = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "/api/v4/account");
  EXPECT_EQ(amo.refreshes.load(), 1);
  ASSERT_EQ(amo.forwarded_tokens.size(), 2U);
  EXPECT_EQ(amo.forwarded_tokens[0], "old-access");
  EXPECT_NE(amo.forwarded_tokens[1], "old-access");

  // A second 401 after the replay is amoCRM's answer, not a loop.
  amo.forward_statuses = {401, 401};
  auto again = RunCo(ioc, service.Proxy(30000001, request));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_EQ(amo.forwards.load(), 4);
}

}  // namespace
}  // namespace amoauth::service
