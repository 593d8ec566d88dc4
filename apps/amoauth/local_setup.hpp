#pragma once

#include <string>

#include "checked.hpp"
#include "commands.hpp"
#include "config.hpp"

namespace amoauth::app {

/// Merges the configuration layers of CommonOptions (see there) and validates them.
[[nodiscard]] Checked<Config> LoadLayeredConfig(const CommonOptions& options);

/// Sandbox mode only: a master key and an API key that were not configured are read from — or
/// generated into — the data directory (master.key, api.key; mode 0600), so that `make run`
/// needs no setup and restarts keep reading the same database. Logs what it did.
[[nodiscard]] Checked<void> EnsureSandboxSecrets(Config& config);

/// Writes {data_dir}/sandbox.env (mode 0600): what other commands need to reach the sandbox a
/// running `serve --sandbox` started.
[[nodiscard]] Checked<void> WriteSandboxEnv(const Config& config);

/// Writes `text` to `path` readable by the owner only, atomically (a temporary file renamed into
/// place): a reader sees the old file or the whole new one.
[[nodiscard]] Checked<void> WritePrivateFile(const std::string& path, const std::string& text);

/// Sets up the default spdlog logger on stderr at `level`, in `format` (AMOAUTH_LOG_FORMAT:
/// "text" or "json", log_format.hpp).
void SetUpLogging(const std::string& level, const std::string& format = "text");

/// Why the command stops, after SetUpLogging: a critical log line in the json format (so every
/// line stays JSON), else "amoauth: <message>" on stderr.
void ReportFatal(const std::string& format, const std::string& message);

}  // namespace amoauth::app
