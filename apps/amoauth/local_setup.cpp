#include "local_setup.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amoauth/crypto/random_bytes.hpp"
#include "log_format.hpp"

namespace amoauth::app {
namespace {

constexpr const char* kSandboxEnv = "sandbox.env";

void Merge(Variables& into, const Variables& from) {
  for (const auto& [k, v] : from) {
    into[k] = v;
  }
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

std::string RandomHex(std::size_t bytes) {
  std::vector<std::uint8_t> raw(bytes);
  crypto::FillRandom(raw);
  std::string hex;
  for (auto b : raw) {
    hex += fmt::format("{:02x}", b);
  }
  return hex;
}

}  // namespace

Checked<Config> LoadLayeredConfig(const CommonOptions& options) {
  auto file_vars = ReadEnvFile(options.env_file);
  if (!file_vars) {
    return file_vars.error();
  }
  Variables flags;
  if (!options.listen.empty()) {
    flags["AMOAUTH_LISTEN"] = options.listen;
  }
  if (!options.database_url.empty()) {
    flags["AMOAUTH_DATABASE_URL"] = options.database_url;
  }
  Variables vars = *file_vars;
  Merge(vars, ReadProcessEnvironment());
  Merge(vars, flags);

  if (options.sandbox && options.read_sandbox_env) {
    // Find the data directory first, then slot sandbox.env in above the .env file.
    auto probe = LoadConfig(vars, true);
    if (!probe) {
      return probe.error();
    }
    auto sandbox_vars =
        ReadEnvFile((std::filesystem::path(probe->DataDir()) / kSandboxEnv).string());
    if (!sandbox_vars) {
      return sandbox_vars.error();
    }
    Variables layered = *file_vars;
    Merge(layered, *sandbox_vars);
    Merge(layered, ReadProcessEnvironment());
    Merge(layered, flags);
    vars = std::move(layered);
  }
  return LoadConfig(vars, options.sandbox);
}

Checked<void> WritePrivateFile(const std::string& path, const std::string& text) {
  // Written beside and renamed into place: whoever waits for the file (a test harness, a script
  // polling for --ready-file) never reads it half-written, and a crash leaves the old one whole.
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fmt::format("cannot write {}: {}", temporary, std::strerror(errno));
  }
  ::fchmod(fd, 0600);
  std::size_t done = 0;
  while (done < text.size()) {
    const auto written = ::write(fd, text.data() + done, text.size() - done);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      return fmt::format("cannot write {}: {}", temporary, std::strerror(error));
    }
    done += static_cast<std::size_t>(written);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    return fmt::format("cannot write {}: {}", path, std::strerror(error));
  }
  return {};
}

Checked<void> EnsureSandboxSecrets(Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.DataDir(), ec);
  if (ec) {
    return fmt::format("cannot create {}: {}", config.DataDir(), ec.message());
  }
  if (!config.master_key) {
    const std::string path = (std::filesystem::path(config.DataDir()) / "master.key").string();
    if (std::filesystem::exists(path)) {
      config.master_key = crypto::MasterKey::FromBase64(ReadTrimmed(path));
      if (!config.master_key) {
        return fmt::format(
            "{} does not hold a base64 32-byte key; remove it or set AMOAUTH_MASTER_KEY", path);
      }
    } else {
      auto key = crypto::MasterKey::Generate();
      if (auto w = WritePrivateFile(path, key.ToBase64() + "\n"); !w) {
        return w.error();
      }
      config.master_key = key;
      spdlog::warn(
          "sandbox mode: generated a master key into {} (mode 0600). In production set "
          "AMOAUTH_MASTER_KEY instead.",
          path);
    }
  }
  if (config.api_key.Empty()) {
    const std::string path = (std::filesystem::path(config.DataDir()) / "api.key").string();
    if (std::filesystem::exists(path)) {
      config.api_key = Secret(ReadTrimmed(path));
    } else {
      config.api_key = Secret(RandomHex(24));
      if (auto w = WritePrivateFile(path, config.api_key.Reveal() + "\n"); !w) {
        return w.error();
      }
      spdlog::warn("sandbox mode: generated an internal API key into {} (mode 0600).", path);
    }
  }
  return {};
}

Checked<void> WriteSandboxEnv(const Config& config) {
  const std::string path = (std::filesystem::path(config.DataDir()) / kSandboxEnv).string();
  const std::string text = fmt::format(
      "# Written by `amoauth serve --sandbox`: how to reach the sandbox it runs.\n"
      "AMO_CLIENT_ID={}\nAMO_CLIENT_SECRET={}\nAMO_REDIRECT_URI={}\n"
      "AMOAUTH_AMO_CONNECT_TO={}\nAMOAUTH_AMO_CA_FILE={}\n"
      "AMOAUTH_CONSENT_URL={}\nAMOAUTH_BUTTON_SCRIPT_URL={}\n",
      config.client_id,
      config.client_secret.Reveal(),
      config.redirect_uri,
      config.amo_connect_to,
      std::filesystem::absolute(config.amo_ca_file).string(),
      config.consent_url,
      config.button_script_url);
  return WritePrivateFile(path, text);
}

void SetUpLogging(const std::string& level, const std::string& format) {
  // Every logger is a clone of this one and shares its sink, so the sink's formatter is theirs.
  auto logger =
      format == "json" ? spdlog::stderr_logger_mt("amoauth") : spdlog::stderr_color_mt("amoauth");
  logger->set_formatter(format == "json" ? MakeJsonLogFormatter() : MakeTextLogFormatter());
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

void ReportFatal(const std::string& format, const std::string& message) {
  if (format == "json") {
    spdlog::critical("{}", message);
  } else {
    fmt::print(stderr, "amoauth: {}\n", message);
  }
}

}  // namespace amoauth::app
