// `amoauth doctor`, `export` and `import` run as the operator runs them: the real binary, against
// a store a real `amoauth serve` filled from the sandbox.
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "command_runner.hpp"
#include "postgres_scratch.hpp"
#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Value(const Environment& env, const std::string& name) {
  for (const auto& [n, v] : env) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

/// The secrets a command must never print.
void ExpectNoSecrets(const ProcessHarness& h, const CommandResult& r) {
  for (const std::string& secret :
       {h.ApiKey(), Value(h.Env(0), "AMOAUTH_MASTER_KEY"), h.SandboxIntegration().client_secret}) {
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(secret)));
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

std::string OtherMasterKey() {
  return "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
}

TEST(DoctorCommand, AllOkAgainstTheSandbox) {
  ProcessHarness h({.processes = 1});
  h.Connect(0);
  const auto r = RunCommand(h, {"doctor"}, h.Env(0));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 7U) << r.out;  // config, API key, database, key, 3 hosts, verdict
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_THAT(lines[i], ::testing::StartsWith("ok ")) << lines[i];
  }
  EXPECT_THAT(r.out, HasSubstr("amoCRM host www.amocrm.ru: reachable"));
  EXPECT_THAT(r.out, HasSubstr("opens all 1 stored token row(s)"));
  EXPECT_THAT(lines.back(), HasSubstr("all"));
  ExpectNoSecrets(h, r);
}

TEST(DoctorCommand, AWrongMasterKeyIsNamed) {
  ProcessHarness h({.processes = 1});
  h.Connect(0);
  const auto r = RunCommand(h, {"doctor"}, h.Env(0), {{"AMOAUTH_MASTER_KEY", OtherMasterKey()}});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("FAIL master key: the master key does not open the stored tokens (key id"));
  // The SQLite rows' own key id is named, not "another key".
  EXPECT_THAT(r.out, HasSubstr("rows written under "));
  EXPECT_THAT(r.out, Not(HasSubstr("under another key")));
  EXPECT_THAT(r.out, HasSubstr("checks failed"));
  ExpectNoSecrets(h, r);
}

TEST(DoctorCommand, AnUnreachableAmoHostFails) {
  ProcessHarness h({.processes = 1});
  const auto r = RunCommand(
      h,
      {"doctor"},
      h.Env(0),
      {{"AMOAUTH_AMO_CONNECT_TO", "127.0.0.1:1"}, {"AMOAUTH_ALLOWED_DOMAINS", "amocrm.ru"}});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAIL amoCRM host www.amocrm.ru: not reachable via 127.0.0.1:1"));
  EXPECT_THAT(r.out, HasSubstr("ok   database"));
  ExpectNoSecrets(h, r);
}

TEST(DoctorCommand, AnUnusableConfigurationIsSaidInWords) {
  ProcessHarness h({.processes = 1});
  const auto r = RunCommand(h, {"doctor"}, h.Env(0), {{"AMOAUTH_API_KEY", ""}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL configuration: AMOAUTH_API_KEY must be set"));
}

/// The engine a SQLite install's export is imported into: another SQLite file, or PostgreSQL (the
/// move docs/operations.md describes).
enum class Target { kSqlite, kPostgres };

// For gtest's messages: the engine's name, not "4-byte object <00-00 00-00>".
void PrintTo(Target target, std::ostream* out) {
  *out << (target == Target::kPostgres ? "PostgreSQL" : "SQLite");
}

class ExportImport : public ::testing::TestWithParam<Target> {};

/// The export/import round trip moves every row from a SQLite install into the target engine.
TEST_P(ExportImport, MovesEveryConnectionWithoutReauthorizing) {
  // Before the harness, so that its processes are gone when the database is dropped.
  std::optional<ScratchDatabase> postgres;
  if (GetParam() == Target::kPostgres) {
    postgres.emplace();
  }
  ProcessHarness h({.processes = 1});
  // Two accounts: one stays active; the other (Kommo) has its tokens revoked: reauth_required.
  h.Connect(0);
  const auto accounts = boost::json::parse(h.Get(h.SandboxUrl() + "/sandbox/accounts").body);
  std::int64_t second = 0;
  for (const auto& a : accounts.as_array()) {
    if (a.at("id").as_int64() != kSandboxAccountId) {
      second = a.at("id").as_int64();
      break;
    }
  }
  ASSERT_NE(second, 0) << "the sandbox has a second account";
  h.Connect(0, second);
  ASSERT_EQ(h.SandboxPost("/sandbox/accounts/" + std::to_string(second) + "/revoke",
                          "application/json",
                          R"({"tokens":"all"})")
                .status,
            200);
  h.Call(0, "POST", "/v1/accounts/" + std::to_string(second) + "/refresh");
  const std::string token = h.AccessToken(0);
  const auto before = boost::json::parse(h.Call(0, "GET", "/v1/accounts").body);
  ASSERT_THAT(boost::json::serialize(before), HasSubstr("reauth_required"));
  const auto token_requests = h.SandboxCounter("token_requests");
  EXPECT_EQ(h.Stop(0), 0);

  const auto file = h.Dir() / "amoauth.export";
  auto exported = RunCommand(h, {"export", "--out", file.string()}, h.Env(0));
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_THAT(exported.out, HasSubstr("Exported 2 connection(s)"));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  const std::string text = ReadAll(file);
  EXPECT_THAT(text, Not(HasSubstr(token))) << "no plaintext token in the file";
  EXPECT_THAT(text, Not(HasSubstr(h.SandboxIntegration().client_secret)));
  EXPECT_THAT(text, HasSubstr(R"("connections":2)"));
  ExpectNoSecrets(h, exported);

  const std::string target_url =
      postgres ? postgres->Url() : "sqlite://" + (h.Dir() / "imported.db").string();
  // A wrong key opens nothing and writes nothing…
  auto refused =
      RunCommand(h,
                 {"import", "--in", file.string()},
                 h.Env(0),
                 {{"AMOAUTH_DATABASE_URL", target_url}, {"AMOAUTH_MASTER_KEY", OtherMasterKey()}});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("the master key does not open this export"));
  // …so the right one then finds no conflicting rows.
  auto imported = RunCommand(
      h, {"import", "--in", file.string()}, h.Env(0), {{"AMOAUTH_DATABASE_URL", target_url}});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(imported.out, HasSubstr("Imported 2 connection(s)"));
  auto again = RunCommand(
      h, {"import", "--in", file.string()}, h.Env(0), {{"AMOAUTH_DATABASE_URL", target_url}});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("is already stored there"));
  auto replaced = RunCommand(h,
                             {"import", "--in", file.string(), "--replace"},
                             h.Env(0),
                             {{"AMOAUTH_DATABASE_URL", target_url}});
  EXPECT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_THAT(replaced.out, HasSubstr("(2 replaced)"));

  // amoauth on the imported store: same accounts, same token, nobody re-authorized.
  h.SetEnv(0, "AMOAUTH_DATABASE_URL", target_url);
  h.Restart(0);
  auto after = boost::json::parse(h.Call(0, "GET", "/v1/accounts").body);
  const auto& rows_before = before.as_object().at("accounts").as_array();
  const auto& rows_after = after.as_object().at("accounts").as_array();
  ASSERT_EQ(rows_before.size(), rows_after.size());
  for (std::size_t i = 0; i < rows_before.size(); ++i) {
    auto a = rows_before[i].as_object();
    auto b = rows_after[i].as_object();
    // The store stamps these on every write; everything else moves as it was.
    for (const char* restamped : {"created_at", "updated_at", "version"}) {
      a.erase(restamped);
      b.erase(restamped);
    }
    EXPECT_EQ(boost::json::serialize(a), boost::json::serialize(b));
  }
  EXPECT_EQ(h.AccessToken(0), token);
  EXPECT_EQ(h.SandboxCounter("token_requests"), token_requests);
  EXPECT_EQ(h.SandboxCounter("refresh_token_reuses"), 0);
}

INSTANTIATE_TEST_SUITE_P(Engines,
                         ExportImport,
                         ::testing::Values(Target::kSqlite, Target::kPostgres),
                         [](const ::testing::TestParamInfo<Target>& param) {
                           return param.param == Target::kPostgres ? "Postgres" : "Sqlite";
                         });

}  // namespace
}  // namespace amoauth::testing
