#pragma once

#include <cstdint>
#include <future>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/connection.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/service/ports.hpp"

/// Values and checks shared by the store contract and the engine-only store tests.
namespace amoauth::testing::store {

inline constexpr std::int64_t kNow = 1'760'000'000;  // 2025-10-09T08:53:20Z

/// Rows as an operator's SQL client shows them: every value as text, NULL as "NULL".
using Rows = std::vector<std::vector<std::string>>;

/// kNow + `seconds`: the tests' times are fixed, never the wall clock.
inline core::TimePoint At(std::int64_t seconds) {
  return core::FromUnixSeconds(kNow + seconds);
}

template <class T>
T Unwrap(Result<T> r) {
  if (!r) {
    ADD_FAILURE() << "unexpected error: " << r.error().message();
  }
  return std::move(r).value();  // throws on error, which fails the test
}

inline void ExpectError(const boost::system::error_code& ec, Errc expected) {
  EXPECT_EQ(ec, make_error_code(expected)) << ec.message();
}

inline core::Connection MakeConnection(std::int64_t account_id,
                                       std::string client_id,
                                       std::string access = "access-token-plaintext-0123456789",
                                       std::string refresh = "refresh-token-plaintext-9876543210") {
  core::Connection c;
  c.account_id = account_id;
  c.client_id = std::move(client_id);
  c.base_domain = "example.amocrm.ru";
  c.api_domain = "api-b.amocrm.ru";
  c.user_id = "8765432";
  c.status = core::ConnectionStatus::kActive;
  c.access_token = Secret(std::move(access));
  c.refresh_token = Secret(std::move(refresh));
  c.expires_at = core::FromUnixSeconds(kNow + 86'400);
  return c;
}

inline void ExpectSameContent(const core::Connection& actual, const core::Connection& expected) {
  EXPECT_EQ(actual.account_id, expected.account_id);
  EXPECT_EQ(actual.client_id, expected.client_id);
  EXPECT_EQ(actual.base_domain, expected.base_domain);
  EXPECT_EQ(actual.api_domain, expected.api_domain);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.access_token, expected.access_token);
  EXPECT_EQ(actual.refresh_token, expected.refresh_token);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
}

inline std::vector<service::Event> MakeEvents(std::initializer_list<std::string> types) {
  std::vector<service::Event> events;
  for (const auto& type : types) {
    events.push_back({type, R"({"event":")" + type + R"("})"});
  }
  return events;
}

inline std::vector<std::int64_t> Ids(const std::vector<service::OutboxEntry>& entries) {
  std::vector<std::int64_t> ids;
  for (const auto& e : entries) {
    ids.push_back(e.id);
  }
  return ids;
}

inline std::vector<std::string> Clients(const std::vector<core::Connection>& rows) {
  std::vector<std::string> clients;
  for (const auto& c : rows) {
    clients.push_back(c.client_id);
  }
  return clients;
}

/// Runs every task at once on two threads (a stand-in for two processes' request handlers) and
/// returns their results in task order.
template <class T>
std::vector<T> RunConcurrently(std::vector<boost::asio::awaitable<T>> tasks) {
  boost::asio::io_context ioc(2);
  std::vector<std::future<T>> futures;
  futures.reserve(tasks.size());
  for (auto& task : tasks) {
    futures.push_back(boost::asio::co_spawn(ioc, std::move(task), boost::asio::use_future));
  }
  std::thread second([&ioc] { ioc.run(); });
  ioc.run();
  second.join();
  std::vector<T> results;
  results.reserve(futures.size());
  for (auto& f : futures) {
    results.push_back(f.get());
  }
  return results;
}

inline service::PendingState MakeState(std::string hash,
                                       std::int64_t created,
                                       std::int64_t lifetime = 600) {
  service::PendingState s;
  s.state_hash = std::move(hash);
  s.client_id = "client-uuid";
  s.mode = core::ConsentMode::kPostMessage;
  s.created_at = core::FromUnixSeconds(created);
  s.expires_at = core::FromUnixSeconds(created + lifetime);
  return s;
}

inline service::QueuedCode MakeQueuedCode(std::string code, std::int64_t at_seconds = 0) {
  service::QueuedCode c;
  c.code = Secret(std::move(code));
  c.account_host = "example.amocrm.ru";
  c.client_id = "client-a";
  c.source = service::CodeSource::kWidget;
  c.received_at = At(at_seconds);
  c.expires_at = At(at_seconds + 1200);
  c.next_attempt_at = At(at_seconds);
  return c;
}

}  // namespace amoauth::testing::store
