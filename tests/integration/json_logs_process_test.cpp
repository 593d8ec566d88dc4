// AMOAUTH_LOG_FORMAT=json on the real binary: every line of stdout and stderr is one JSON object,
// and every line logged while serving a request — the access log, the service layer's refresh,
// the amoCRM client under the proxy — carries that request's id.

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

std::vector<std::string> Lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("---- start ", 0) != 0) {  // the harness marks each start of the process
      lines.push_back(line);
    }
  }
  return lines;
}

/// Makes every row due for the scheduler now (the harness's SQLite file).
void MakeDue(const std::string& database) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  const int rc = sqlite3_exec(db,
                              R"(UPDATE amo_tokens SET "nextRefreshAt" = '2000-01-01T00:00:00Z')",
                              nullptr,
                              nullptr,
                              nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

std::string RequestId(const CallResult& result) {
  return std::string(result.headers.Get("X-Request-Id").value_or(""));
}

TEST(JsonLogs, EveryLineIsJsonAndCarriesItsRequestId) {
  ProcessHarness::Options options;
  options.processes = 1;
  options.log_level = "debug";  // the amoCRM client's per-call line is a debug line
  options.extra_env = {{"AMOAUTH_LOG_FORMAT", "json"}};
  ProcessHarness harness(options);
  harness.Connect(0);
  const std::string account = std::to_string(kSandboxAccountId);

  // /token on an expired access token: the service layer refreshes it and logs so.
  ASSERT_EQ(harness.ExpireAccessTokens(), 1);
  const CallResult token = harness.Call(0, "GET", "/v1/accounts/" + account + "/token");
  ASSERT_EQ(token.status, 200) << token.body;
  // The proxy: the amoCRM client's call runs on a strand of its own.
  const CallResult proxy =
      harness.Call(0, "GET", "/v1/accounts/" + account + "/proxy/api/v4/account");
  ASSERT_EQ(proxy.status, 200) << proxy.body;
  const std::string token_id = RequestId(token);
  const std::string proxy_id = RequestId(proxy);
  ASSERT_FALSE(token_id.empty());
  ASSERT_FALSE(proxy_id.empty());
  ASSERT_NE(token_id, proxy_id);
  const std::string access_token =
      std::string(boost::json::parse(token.body).at("access_token").as_string());
  // A refresh by the scheduler: its lines carry the job's id, "refresh-{account}".
  const std::int64_t refreshes = harness.SandboxCounter("refreshes");
  MakeDue(harness.DatabasePath());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (harness.SandboxCounter("refreshes") == refreshes &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(harness.SandboxCounter("refreshes"), refreshes) << "the scheduler did not refresh";
  ASSERT_EQ(harness.Stop(0), 0);

  std::vector<std::string> lines = Lines(harness.Dir() / "amoauth-0.stderr");
  for (std::string& line : Lines(harness.Dir() / "amoauth-0.stdout")) {
    lines.push_back(std::move(line));
  }
  ASSERT_GT(lines.size(), 5U);
  std::map<std::string, std::vector<boost::json::object>> by_request;
  for (const std::string& line : lines) {
    boost::system::error_code ec;
    boost::json::value parsed = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    ASSERT_TRUE(parsed.is_object()) << line;
    const boost::json::object& object = parsed.as_object();
    for (const char* field : {"ts", "level", "logger", "msg"}) {
      ASSERT_TRUE(object.contains(field) && object.at(field).is_string()) << field << ": " << line;
    }
    if (const auto* id = object.if_contains("request_id")) {
      by_request[std::string(id->as_string())].push_back(object);
    }
    EXPECT_EQ(line.find(harness.ApiKey()), std::string::npos) << "the API key in a log line";
    EXPECT_EQ(line.find(access_token), std::string::npos) << "an access token in a log line";
  }

  auto has = [&by_request](
                 const std::string& id, const std::string& logger, const std::string& text) {
    for (const boost::json::object& line : by_request[id]) {
      if (line.at("logger").as_string() == logger &&
          std::string_view(line.at("msg").as_string()).find(text) != std::string_view::npos) {
        return true;
      }
    }
    return false;
  };
  // The access log line and the service layer's refresh, under the /token call's id.
  EXPECT_TRUE(has(token_id, "http", "/v1/accounts/" + account + "/token -> 200"));
  EXPECT_TRUE(has(token_id, "amoauth", "access token refreshed")) << token_id;
  // The proxy's access log line and the amoCRM client's call (another strand) under its id.
  EXPECT_TRUE(has(proxy_id, "http", "/proxy/api/v4/account -> 200"));
  EXPECT_TRUE(has(proxy_id, "client", " -> 200 (")) << proxy_id;
  // The scheduler's refresh, down to the amoCRM client, under the job's id.
  EXPECT_TRUE(has("refresh-" + account, "amoauth", "access token refreshed"));
  EXPECT_TRUE(has("refresh-" + account, "client", "POST example.amocrm.ru -> 200"));
  // No line of one request carries the other's id.
  for (const boost::json::object& line : by_request[token_id]) {
    EXPECT_EQ(std::string_view(line.at("msg").as_string()).find("/proxy/"), std::string_view::npos);
  }
}

}  // namespace
}  // namespace amoauth::testing
