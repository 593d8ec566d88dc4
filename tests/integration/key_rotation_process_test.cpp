// `amoauth rotate-key` run as the operator runs it (docs/operations.md, "Rotating the master
// key"): real `serve` instances keep answering and refreshing while the command re-seals every
// row under the new key, on SQLite and on PostgreSQL.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "command_runner.hpp"
#include "postgres_scratch.hpp"
#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kMasterKey = "AMOAUTH_MASTER_KEY";
constexpr const char* kPreviousKey = "AMOAUTH_MASTER_KEY_PREVIOUS";
/// The key rotated to, and a key that sealed nothing here (bytes 32..63 and 64..95).
constexpr const char* kNewKey = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
constexpr const char* kUnrelatedKey = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";

std::string Value(const Environment& env, const std::string& name) {
  for (const auto& [n, v] : env) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

std::string TokenPath(std::int64_t account) {
  return "/v1/accounts/" + std::to_string(account) + "/token";
}

std::string RefreshPath(std::int64_t account) {
  return "/v1/accounts/" + std::to_string(account) + "/refresh";
}

enum class Engine { kSqlite, kPostgres };

void PrintTo(Engine engine, std::ostream* out) {
  *out << (engine == Engine::kPostgres ? "PostgreSQL" : "SQLite");
}

class KeyRotationProcess : public ::testing::TestWithParam<Engine> {};

TEST_P(KeyRotationProcess, RotatesWhileTwoInstancesKeepAnsweringAndRefreshing) {
  // Before the harness, so that its processes are gone when the database is dropped.
  std::optional<ScratchDatabase> postgres;
  ProcessHarness::Options options{.processes = 2};
  if (GetParam() == Engine::kPostgres) {
    postgres.emplace();
    options.database_url = postgres->Url();
  }
  ProcessHarness h(options);
  const std::int64_t first = h.Connect(0);
  std::int64_t second = 0;
  const auto accounts = boost::json::parse(h.Get(h.SandboxUrl() + "/sandbox/accounts").body);
  for (const auto& a : accounts.as_array()) {
    if (a.at("id").as_int64() != first) {
      second = a.at("id").as_int64();
    }
  }
  ASSERT_NE(second, 0) << "the sandbox has a second account";
  h.Connect(1, second);
  const std::string old_key = Value(h.Env(0), kMasterKey);

  // Wrong keys are refused before anything is written.
  auto no_previous = RunCommand(h, {"rotate-key"}, h.Env(0), {{kMasterKey, kNewKey}});
  EXPECT_EQ(no_previous.exit_code, 2) << no_previous.err;
  EXPECT_THAT(no_previous.err, HasSubstr("set AMOAUTH_MASTER_KEY_PREVIOUS"));
  auto wrong_previous = RunCommand(
      h, {"rotate-key"}, h.Env(0), {{kMasterKey, kNewKey}, {kPreviousKey, kUnrelatedKey}});
  EXPECT_EQ(wrong_previous.exit_code, 1) << wrong_previous.err;
  EXPECT_THAT(wrong_previous.err, HasSubstr("2 sealed row(s) are under key id"));
  EXPECT_THAT(wrong_previous.err, HasSubstr("a wrong key was given; nothing changed"));
  auto swapped = RunCommand(
      h, {"rotate-key"}, h.Env(0), {{kMasterKey, kUnrelatedKey}, {kPreviousKey, kNewKey}});
  EXPECT_EQ(swapped.exit_code, 1) << swapped.err;
  EXPECT_THAT(swapped.err, HasSubstr("nothing changed"));
  auto same =
      RunCommand(h, {"rotate-key"}, h.Env(0), {{kMasterKey, old_key}, {kPreviousKey, old_key}});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_THAT(same.err, HasSubstr("is the same key as AMOAUTH_MASTER_KEY"));
  for (const auto& refused : {no_previous, wrong_previous, swapped, same}) {
    EXPECT_THAT(refused.out + refused.err, ::testing::Not(HasSubstr(old_key)));
  }
  // Nothing changed: the running instances (old key only) still read every row.
  const std::string first_token = h.AccessToken(0, first);
  EXPECT_FALSE(h.AccessToken(1, second).empty());

  // Step 1: every instance restarts, one at a time, with the new key and the old one as previous.
  for (std::size_t i = 0; i < h.Size(); ++i) {
    h.SetEnv(i, kMasterKey, kNewKey);
    h.SetEnv(i, kPreviousKey, old_key);
    h.Restart(i);
    EXPECT_EQ(h.AccessToken(i, first), first_token) << "process " << i << " reads the old rows";
  }

  // Step 2, interrupted: one batch of one row, then the command stops; run again, it goes on.
  auto partial = RunCommand(h, {"rotate-key", "--batch-size", "1", "--max-batches", "1"}, h.Env(0));
  EXPECT_EQ(partial.exit_code, 0) << partial.err;
  EXPECT_THAT(partial.out, HasSubstr("2 sealed row(s) under the previous key id"));
  EXPECT_THAT(partial.out, HasSubstr("Re-sealed 1 row(s)"));
  EXPECT_THAT(partial.out, HasSubstr("1 row(s) are still under key id"));
  auto doctor_midway = RunCommand(h, {"doctor"}, h.Env(0));
  EXPECT_THAT(doctor_midway.out, HasSubstr("1 sealed row(s) still under the previous key id"));

  // The rest while both instances keep answering /token and refreshing both accounts.
  const auto refreshes_before = h.SandboxCounter("refreshes");
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::map<std::string, int> answers;  // "GET /token 200" → count
  std::thread load([&] {
    for (std::size_t round = 0; !stop.load() || round < 4; ++round) {
      const std::size_t process = round % 2;
      const std::int64_t account = (round / 2) % 2 == 0 ? first : second;
      const auto token = h.Call(process, "GET", TokenPath(account));
      const auto refresh = h.Call(process, "POST", RefreshPath(account));
      const std::lock_guard lock(mutex);
      ++answers["token " + std::to_string(token.status)];
      ++answers["refresh " + std::to_string(refresh.status)];
    }
  });
  auto rest = RunCommand(h, {"rotate-key", "--batch-size", "1"}, h.Env(1));
  stop = true;
  load.join();
  EXPECT_EQ(rest.exit_code, 0) << rest.out << rest.err;
  EXPECT_THAT(rest.out, HasSubstr("No row is under key id"));
  EXPECT_THAT(rest.out, HasSubstr("remove AMOAUTH_MASTER_KEY_PREVIOUS"));
  for (const auto& [what, count] : answers) {
    EXPECT_THAT(what, ::testing::EndsWith(" 200")) << count << " x " << what;
  }
  EXPECT_GE(answers["token 200"], 4);
  // Each account is refreshed twice in a row from the two processes; the second may find the
  // first one's lease not yet released and take its result instead of refreshing again.
  EXPECT_GE(h.SandboxCounter("refreshes") - refreshes_before, 2);
  auto doctor = RunCommand(h, {"doctor"}, h.Env(0));
  EXPECT_THAT(doctor.out, HasSubstr("no row is under the previous key id"));

  // Step 3: the previous key goes; the new key alone reads everything, and no refresh token was
  // lost (a stale one would be a reuse now, and the account would need reconnecting).
  for (std::size_t i = 0; i < h.Size(); ++i) {
    h.SetEnv(i, kPreviousKey, "");
    h.Restart(i);
  }
  for (const std::int64_t account : {first, second}) {
    EXPECT_EQ(h.Call(0, "POST", RefreshPath(account)).status, 200) << account;
    EXPECT_FALSE(h.AccessToken(1, account).empty());
  }
  EXPECT_EQ(h.SandboxCounter("refresh_token_reuses"), 0);
  auto old_alone = RunCommand(h, {"accounts"}, h.Env(0), {{kMasterKey, old_key}});
  EXPECT_EQ(old_alone.exit_code, 1) << "the old key opens nothing any more";
}

INSTANTIATE_TEST_SUITE_P(Engines,
                         KeyRotationProcess,
                         ::testing::Values(Engine::kSqlite, Engine::kPostgres),
                         [](const ::testing::TestParamInfo<Engine>& param) {
                           return param.param == Engine::kPostgres ? "Postgres" : "Sqlite";
                         });

}  // namespace
}  // namespace amoauth::testing
