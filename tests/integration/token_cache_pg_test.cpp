// The token cache over the real PostgreSQL engine: two instances (two PgStores, each with its own
// CachedConnectionStore) on one database, coherent through LISTEN/NOTIFY
// (docs/architecture.md, "The token cache").
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/cached_connection_store.hpp"
#include "amoauth/store_pg/pg_store.hpp"
#include "postgres_scratch.hpp"
#include "run_co.hpp"

namespace amoauth {
namespace {

using service::CachedConnectionStore;
using store_pg::PgStore;
using testing::RunCo;

constexpr std::int64_t kAccount = 30000001;
constexpr const char* kClient = "11111111-2222-3333-4444-555555555555";

/// Waits for `done` for up to 20 s, checking every 10 ms.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

core::Connection Row(const std::string& access) {
  core::Connection c;
  c.account_id = kAccount;
  c.client_id = kClient;
  c.base_domain = "example.amocrm.ru";
  c.status = core::ConnectionStatus::kActive;
  c.access_token = Secret(access);
  c.refresh_token = Secret("refresh-" + access);
  c.expires_at = core::FromUnixSeconds(1'900'000'000);
  c.last_refresh_at = core::FromUnixSeconds(1'800'000'000);
  return c;
}

class TokenCacheOnPostgres : public ::testing::Test {
 protected:
  TokenCacheOnPostgres() {
    const auto key = crypto::MasterKey::Generate();
    a_ = PgStore::Open({.url = database_.Url(), .pool_size = 2}, key).value();
    b_ = PgStore::Open({.url = database_.Url(), .pool_size = 2}, key).value();
    cache_a_ = std::make_unique<CachedConnectionStore>(*a_, *a_);
    cache_b_ = std::make_unique<CachedConnectionStore>(*b_, *b_);
    EXPECT_TRUE(WaitFor(
        [this] { return cache_a_->GetStats().listening && cache_b_->GetStats().listening; }));
  }

  std::string AccessTokenFrom(CachedConnectionStore& cache) {
    auto rows = RunCo(ioc_, cache.FindByAccount(kAccount)).value();
    return rows.size() == 1 ? rows.front().access_token.Reveal() : "";
  }

  testing::ScratchDatabase database_;
  boost::asio::io_context ioc_;
  std::unique_ptr<PgStore> a_;
  std::unique_ptr<PgStore> b_;
  std::unique_ptr<CachedConnectionStore> cache_a_;
  std::unique_ptr<CachedConnectionStore> cache_b_;
};

TEST_F(TokenCacheOnPostgres, ATokenRefreshedByOneInstanceIsServedByTheOtherFromItsCache) {
  auto connected = RunCo(ioc_, cache_b_->Upsert(Row("first"), {})).value();

  // A reads it, then serves it from memory (once B's own notification has come and gone).
  ASSERT_TRUE(WaitFor([&] {
    const auto hits = cache_a_->GetStats().hits;
    return AccessTokenFrom(*cache_a_) == "first" && cache_a_->GetStats().hits > hits;
  }));

  // B refreshes: A's entry is dropped by the notification and A reads the new row.
  auto refreshed = Row("second");
  ASSERT_TRUE(RunCo(ioc_, cache_b_->Replace(refreshed, connected.version, {})));
  EXPECT_TRUE(WaitFor([&] { return AccessTokenFrom(*cache_a_) == "second"; }));
  const auto hits = cache_a_->GetStats().hits;
  EXPECT_EQ(AccessTokenFrom(*cache_a_), "second");
  EXPECT_GT(cache_a_->GetStats().hits, hits);
}

}  // namespace
}  // namespace amoauth
