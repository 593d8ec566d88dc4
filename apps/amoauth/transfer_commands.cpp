// `amoauth export` and `amoauth import`: moving every connection and external integration from
// one store to another (SQLite → PostgreSQL) without re-authorizing any account.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "amoauth/crypto/constant_time.hpp"
#include "commands.hpp"
#include "export_file.hpp"
#include "run_to_completion.hpp"
#include "store_command.hpp"

namespace amoauth::app {
namespace {

/// Writes `text` to `path` (mode 0600) through a temporary file in the same directory and a
/// rename, so that the path holds either the old file or the whole new one, never a part.
Checked<void> WriteFileAtomically(const std::string& path, const std::string& text) {
  const auto target = std::filesystem::absolute(path);
  std::string temp = (target.parent_path() / ("." + target.filename().string() + ".XXXXXX"));
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) {
    return fmt::format("cannot write {}: {}", path, std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), target.c_str()) != 0) {
    const std::string reason = std::strerror(ok ? errno : saved);
    ::unlink(temp.c_str());
    return fmt::format("cannot write {}: {}", path, reason);
  }
  // The rename itself must survive a crash.
  if (const int dir = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

std::string KeyText(const core::AccountKey& key) {
  return fmt::format("account {} (integration {})", key.account_id, key.client_id);
}

bool SameIntegration(const service::ExternalIntegration& a, const service::ExternalIntegration& b) {
  return a.client_id == b.client_id && a.state_hash == b.state_hash &&
         crypto::ConstantTimeEquals(a.client_secret.Reveal(), b.client_secret.Reveal());
}

}  // namespace

int RunExport(const CommonOptions& options, const ExportOptions& export_options) {
  int exit_code = 0;
  auto command = OpenCommandStore(options, exit_code);
  if (!command) {
    return exit_code;
  }
  service::Store& store = *command->store;
  const std::string from = command->config.database.Describe();
  boost::asio::io_context ioc;

  auto pending_events = RunToCompletion(ioc, store.CountPending());
  auto queued_codes = RunToCompletion(ioc, store.CountQueued());
  if (!pending_events || !queued_codes) {
    fmt::print(stderr, "amoauth: cannot read the queues of the {}\n", from);
    return 1;
  }
  if (*pending_events > 0 || *queued_codes > 0) {
    const std::string what = fmt::format(
        "{} webhook event(s) and {} widget/exchange code(s) are still queued in the {}, and an "
        "export does not carry them",
        *pending_events,
        *queued_codes,
        from);
    if (!export_options.allow_pending) {
      fmt::print(stderr,
                 "amoauth: {}. Let amoauth deliver them first (start it, wait until they are "
                 "gone, stop it), or pass --allow-pending to export without them.\n",
                 what);
      return 1;
    }
    fmt::print(stderr, "amoauth: WARNING: {}; they are left behind (--allow-pending).\n", what);
  }

  auto connections = RunToCompletion(ioc, store.List());
  if (!connections) {
    fmt::print(stderr,
               "amoauth: cannot read the stored tokens of the {}: {}\n",
               from,
               connections.error().message());
    return 1;
  }
  auto integrations = RunToCompletion(ioc, store.ListIntegrations());
  if (!integrations) {
    fmt::print(stderr,
               "amoauth: cannot read the external integrations of the {}: {}\n",
               from,
               integrations.error().message());
    return 1;
  }
  ExportContents contents{.connections = std::move(*connections),
                          .integrations = std::move(*integrations)};
  const std::string text = SealExport(contents,
                                      *command->config.master_key,
                                      command->clock.Now(),
                                      store.Engine(),
                                      store.SchemaVersion());
  if (auto written = WriteFileAtomically(export_options.out, text); !written) {
    fmt::print(stderr, "amoauth: {}\n", written.error());
    return 1;
  }
  fmt::print(
      "Exported {} connection(s) and {} external integration(s) from the {} to {}, sealed under "
      "master key id {}. Keep amoauth stopped until they are imported: a refresh after the "
      "export would leave the file's refresh tokens used up.\n",
      contents.connections.size(),
      contents.integrations.size(),
      from,
      export_options.out,
      command->config.master_key->Id());
  return 0;
}

int RunImport(const CommonOptions& options, const ImportOptions& import_options) {
  std::ifstream in(import_options.in, std::ios::binary);
  if (!in) {
    fmt::print(stderr, "amoauth: cannot read {}: {}\n", import_options.in, std::strerror(errno));
    return 1;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (auto header = ReadExportHeader(text); !header) {
    fmt::print(stderr, "amoauth: {}: {}\n", import_options.in, header.error());
    return 1;
  }

  int exit_code = 0;
  auto command = OpenCommandStore(options, exit_code);
  if (!command) {
    return exit_code;
  }
  service::Store& store = *command->store;
  const std::string into = command->config.database.Describe();
  auto contents = OpenExport(text, *command->config.master_key);
  if (!contents) {
    fmt::print(
        stderr, "amoauth: {}: {}; nothing was imported.\n", import_options.in, contents.error());
    return 1;
  }
  boost::asio::io_context ioc;

  // Check every row first, so that a refusal leaves the target untouched.
  std::vector<std::string> problems;
  std::size_t replacing = 0;
  for (const auto& c : contents->connections) {
    if (c.account_id <= 0 || c.client_id.empty()) {
      problems.push_back(fmt::format("a connection has no account id or integration"));
      continue;
    }
    auto existing = RunToCompletion(ioc, store.Find(c.Key()));
    if (!existing) {
      problems.push_back(fmt::format(
          "cannot read {} in the target: {}", KeyText(c.Key()), existing.error().message()));
    } else if (existing->has_value()) {
      if (import_options.replace) {
        ++replacing;
      } else {
        problems.push_back(
            fmt::format("{} is already stored there (--replace overwrites it)", KeyText(c.Key())));
      }
    }
  }
  std::vector<const service::ExternalIntegration*> new_integrations;
  for (const auto& i : contents->integrations) {
    auto by_id = RunToCompletion(ioc, store.FindIntegration(i.client_id));
    auto by_state = RunToCompletion(ioc, store.FindIntegrationByState(i.state_hash));
    if (!by_id || !by_state) {
      problems.push_back(
          fmt::format("cannot read external integration {} in the target", i.client_id));
    } else if (!by_id->has_value() && !by_state->has_value()) {
      new_integrations.push_back(&i);
    } else if (!by_id->has_value() || !SameIntegration(**by_id, i)) {
      // The ports cannot overwrite an integration's keys, and nothing should need to.
      problems.push_back(fmt::format(
          "external integration {} is stored there already with other keys or another state",
          i.client_id));
    }
  }
  if (!problems.empty()) {
    fmt::print(stderr, "amoauth: nothing was imported into the {}:\n", into);
    for (std::size_t n = 0; n < problems.size() && n < 20; ++n) {
      fmt::print(stderr, "  - {}\n", problems[n]);
    }
    if (problems.size() > 20) {
      fmt::print(stderr, "  … and {} more\n", problems.size() - 20);
    }
    return 1;
  }

  std::size_t integrations_written = 0;
  for (const auto* i : new_integrations) {
    auto added = RunToCompletion(ioc, store.AddIntegration(*i));
    if (!added) {
      fmt::print(stderr,
                 "amoauth: storing external integration {} failed ({}); {} of {} integrations and "
                 "no connections were written. Fix the cause and import again.\n",
                 i->client_id,
                 added.error().message(),
                 integrations_written,
                 new_integrations.size());
      return 1;
    }
    ++integrations_written;
  }
  std::size_t connections_written = 0;
  for (const auto& c : contents->connections) {
    auto stored = RunToCompletion(ioc, store.Upsert(c, {}));
    if (!stored) {
      fmt::print(stderr,
                 "amoauth: storing {} failed ({}); {} of {} connections were written. Fix the "
                 "cause and import again with --replace.\n",
                 KeyText(c.Key()),
                 stored.error().message(),
                 connections_written,
                 contents->connections.size());
      return 1;
    }
    ++connections_written;
  }
  fmt::print(
      "Imported {} connection(s) ({} replaced) and {} external integration(s) ({} already "
      "there) into the {}.\n",
      connections_written,
      replacing,
      integrations_written,
      contents->integrations.size() - integrations_written,
      into);
  return 0;
}

}  // namespace amoauth::app
