// `amoauth doctor`: checks what amoauth needs — configuration, database, master key, API key,
// amoCRM's hosts — and says in words what is wrong. Read-only but for the schema migration that
// opening the store performs, as `serve` would.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include "amoauth/core/errc.hpp"
#include "amoauth/http_client/http_client.hpp"
#include "commands.hpp"
#include "local_setup.hpp"
#include "run_to_completion.hpp"
#include "store_factory.hpp"

namespace amoauth::app {
namespace {

/// Prints one line per check and the verdict.
class Report {
 public:
  void Ok(std::string_view what, std::string_view words) {
    ++checks_;
    fmt::print("ok   {}: {}\n", what, words);
  }
  void Fail(std::string_view what, std::string_view words) {
    ++checks_;
    ++failures_;
    fmt::print("FAIL {}: {}\n", what, words);
  }
  int Verdict() const {
    if (failures_ == 0) {
      fmt::print("doctor: all {} checks passed.\n", checks_);
      return 0;
    }
    fmt::print("doctor: {} of {} checks failed.\n", failures_, checks_);
    return 1;
  }

 private:
  int checks_ = 0;
  int failures_ = 0;
};

/// The key ids the amo_tokens rows of a SQLite file were sealed under (read-only, outside the
/// store: the ports never expose them). Empty when unknown (PostgreSQL, or the query failed).
std::vector<std::string> SqliteTokenKeyIds(const std::string& path) {
  std::vector<std::string> ids;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db,
                           R"sql(SELECT DISTINCT "keyId" FROM amo_tokens ORDER BY 1 LIMIT 5)sql",
                           -1,
                           &stmt,
                           nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(stmt, 0);
        ids.emplace_back(text == nullptr ? "" : reinterpret_cast<const char*>(text));
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return ids;
}

std::string KeyMismatch(const Config& config, std::string_view what) {
  std::vector<std::string> ids;
  if (config.database.engine == DatabaseEngine::kSqlite) {
    ids = SqliteTokenKeyIds(config.database.sqlite_path);
    std::erase(ids, config.master_key->Id());
  }
  return fmt::format(
      "the master key does not open the stored {} (key id {}, rows written under {})",
      what,
      config.master_key->Id(),
      ids.empty() ? std::string("another key") : fmt::format("{}", fmt::join(ids, ", ")));
}

/// During a rotation (AMOAUTH_MASTER_KEY_PREVIOUS set): how many sealed rows the previous key
/// still holds, and what to do next. Empty otherwise.
std::string PreviousKeyNote(const Config& config,
                            service::Store& store,
                            boost::asio::io_context& ioc) {
  auto* rotation = dynamic_cast<service::KeyRotation*>(&store);
  if (!config.previous_master_key || rotation == nullptr) {
    return {};
  }
  auto counts = RunToCompletion(ioc, rotation->CountByKeyId());
  if (!counts) {
    return {};
  }
  std::int64_t left = 0;
  for (const auto& [id, rows] : *counts) {
    if (id == config.previous_master_key->Id()) {
      left = rows;
    }
  }
  if (left == 0) {
    return fmt::format(
        "; no row is under the previous key id {}: AMOAUTH_MASTER_KEY_PREVIOUS can be removed",
        config.previous_master_key->Id());
  }
  return fmt::format(
      "; {} sealed row(s) still under the previous key id {}: run `amoauth "
      "rotate-key`",
      left,
      config.previous_master_key->Id());
}

void CheckMasterKey(Report& report,
                    const Config& config,
                    service::Store& store,
                    boost::asio::io_context& ioc) {
  auto connections = RunToCompletion(ioc, store.List());
  if (!connections) {
    report.Fail(
        "master key",
        connections.error() == Errc::kCryptoFailure
            ? KeyMismatch(config, "tokens")
            : fmt::format("cannot read the stored tokens: {}", connections.error().message()));
    return;
  }
  auto integrations = RunToCompletion(ioc, store.ListIntegrations());
  if (!integrations) {
    report.Fail("master key",
                integrations.error() == Errc::kCryptoFailure
                    ? KeyMismatch(config, "integration secrets")
                    : fmt::format("cannot read the stored integration secrets: {}",
                                  integrations.error().message()));
    return;
  }
  if (connections->empty() && integrations->empty()) {
    report.Ok(
        "master key",
        fmt::format("key id {}; nothing is stored yet to try it on", config.master_key->Id()));
    return;
  }
  report.Ok("master key",
            fmt::format("key id {} opens all {} stored token row(s) and {} integration secret(s)",
                        config.master_key->Id(),
                        connections->size(),
                        integrations->size()) +
                PreviousKeyNote(config, store, ioc));
}

/// A GET / to www.{domain} for every allow-listed domain, through AMOAUTH_AMO_CONNECT_TO and
/// AMOAUTH_AMO_CA_FILE as every amoCRM call: any HTTP answer means TCP and TLS work.
void CheckAmoHosts(Report& report, const Config& config, boost::asio::io_context& ioc) {
  const auto timeout = std::min(config.amo_timeout, std::chrono::milliseconds(5000));
  auto client = http_client::HttpClient::Create(
      ioc.get_executor(),
      {.connect_to = config.amo_connect_to, .ca_file = config.amo_ca_file, .timeout = timeout});
  if (!client) {
    report.Fail("amoCRM hosts",
                "cannot set up the HTTPS client: check AMOAUTH_AMO_CA_FILE and "
                "AMOAUTH_AMO_CONNECT_TO");
    return;
  }
  const std::string via =
      config.amo_connect_to.empty() ? std::string() : " via " + config.amo_connect_to;
  for (const auto& domain : config.allowed_domains) {
    const std::string host = "www." + domain;
    http_client::ClientRequest request{.method = "GET", .url = "https://" + host + "/"};
    auto answer = RunToCompletion(ioc, (*client)->Send(std::move(request)));
    const std::string what = "amoCRM host " + host;
    if (answer) {
      report.Ok(what, fmt::format("reachable{} (TLS verified, HTTP {})", via, answer->status));
    } else {
      report.Fail(what, fmt::format("not reachable{}: {}", via, answer.error().message()));
    }
  }
}

}  // namespace

int RunDoctor(const CommonOptions& options) {
  Report report;
  auto loaded = LoadLayeredConfig(options);
  if (!loaded) {
    report.Fail("configuration", loaded.error());
    return report.Verdict();
  }
  Config& config = *loaded;
  SetUpLogging(config.log_level == "info" ? "warn" : config.log_level, config.log_format);
  if (options.sandbox) {
    if (auto ok = EnsureSandboxSecrets(config); !ok) {
      report.Fail("configuration", ok.error());
      return report.Verdict();
    }
  }
  report.Ok("configuration",
            fmt::format("complete; {}, {} platform",
                        config.database.Describe(),
                        core::ToString(config.platform)));

  if (config.api_key.Reveal().size() >= 16) {
    report.Ok("API key", "AMOAUTH_API_KEY is set");
  } else {
    report.Fail("API key", "AMOAUTH_API_KEY is not set to at least 16 characters");
  }

  boost::asio::io_context ioc;
  const core::SystemClock clock;
  auto store = OpenStore(config, clock);
  if (!store) {
    report.Fail("database", store.error());
    report.Fail("master key", "not checked: the database did not open");
  } else {
    report.Ok("database",
              fmt::format("{} opens; schema version {} (this build's)",
                          config.database.Describe(),
                          (*store)->SchemaVersion()));
    CheckMasterKey(report, config, **store, ioc);
  }

  CheckAmoHosts(report, config, ioc);
  return report.Verdict();
}

}  // namespace amoauth::app
