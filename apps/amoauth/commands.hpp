#pragma once

#include <cstdint>
#include <string>

#include "amoauth/core/site_button.hpp"
#include "amoauth/sandbox/sandbox.hpp"
#include "checked.hpp"

namespace amoauth::app {

/// Where configuration comes from, lowest first: --env-file (default ./.env), in sandbox mode the
/// data directory's sandbox.env, the process environment, then the flags here.
struct CommonOptions {
  std::string env_file = ".env";
  bool sandbox = false;
  std::string listen;            ///< --listen overrides AMOAUTH_LISTEN
  std::string database_url;      ///< --database-url overrides AMOAUTH_DATABASE_URL
  bool read_sandbox_env = true;  ///< with `sandbox`: read the sandbox.env a running serve wrote
};

struct ServeOptions {
  CommonOptions common;
  std::string ready_file;  ///< written once listening: {"url", "sandbox_url"} (for tests)
};

/// `amoauth sandbox`'s flags, as typed (main.cpp binds them); ToSandboxOptions checks them.
struct SandboxOptions {
  std::string http_listen = "127.0.0.1:8090";
  std::string tls_listen = "127.0.0.1:8443";
  std::string state_dir = "./data/sandbox";
  std::string redirect_uri;  ///< registers one integration with this Redirect URI
  std::string client_id;
  std::string client_secret;
  std::string disconnect_hook_url;  ///< its disconnect hook (protocol §7.1); empty: none
  std::string ready_file;

  // Start values of the simulator's knobs (docs/sandbox.md §4; POST /sandbox/config changes them
  // at run time). Defaults equal sandbox::Options' (tests/unit/app checks). Whole seconds.
  std::int64_t code_ttl_seconds = 20 * 60;                  ///< --code-ttl
  std::int64_t access_token_ttl_seconds = 24 * 60 * 60;     ///< --access-token-ttl
  std::int64_t refresh_token_ttl_seconds = 90 * 24 * 3600;  ///< --refresh-token-ttl
  std::string rotation = "strict";                 ///< --rotation: strict | grace_until_new_used
  bool keep_access_on_refresh = false;             ///< --keep-access-on-refresh
  std::int64_t api_rate_limit_rps = 7;             ///< --api-rate-limit; 0: no limit
  std::int64_t api_block_after_violations = 10;    ///< --api-block-after; 0: never block
  std::int64_t api_violation_window_seconds = 60;  ///< --api-violation-window
  std::int64_t api_block_seconds = 15 * 60;        ///< --api-block-seconds
  std::int64_t api_retry_after_seconds = 1;        ///< --api-retry-after

  // Milliseconds, and the external integrations' keys: before_redirect | after_redirect.
  std::int64_t token_delay_ms = 0;                   ///< --token-delay-ms
  std::int64_t exchange_hook_delay_ms = 0;           ///< --exchange-hook-delay-ms
  std::string secrets_delivery = "before_redirect";  ///< --secrets-delivery
  std::int64_t secrets_delay_ms = 0;                 ///< --secrets-delay-ms
};

/// Checks `options` and turns them into the simulator's Options, `state_dir` included (it is not
/// created here). Errors: one sentence naming the flag and its allowed range.
[[nodiscard]] Checked<sandbox::Options> ToSandboxOptions(const SandboxOptions& options);

/// Each returns the process exit code: 0 ok, 1 the operation failed, 2 bad configuration.
int RunServe(const ServeOptions& options);
int RunSandbox(const SandboxOptions& options);
/// The code comes from `code_file` ("-": standard input; its first line) or, deprecated, from
/// `code` (the command line, where `ps` and the shell history see it: a warning says so).
int RunExchangeCode(const CommonOptions& options,
                    std::string code,
                    const std::string& code_file,
                    const std::string& referer);
/// `api_key` empty: read from the first line of standard input (so it need not sit in the shell
/// history or the process list).
int RunExchangeApiKey(const CommonOptions& options,
                      const std::string& login,
                      std::string api_key,
                      const std::string& domain);
int RunAccounts(const CommonOptions& options);
/// `token` "-": read from the first line of standard input (out of the shell history and the
/// process list). Never printed.
int RunAddLongLivedToken(const CommonOptions& options,
                         std::string token,
                         const std::string& domain);
int RunToken(const CommonOptions& options, std::int64_t account_id);
/// `amoauth button`: prints the site button's HTML carrying a fresh single-use state. `button`
/// holds the options given on the command line (core::ApplyButtonOptions names); a refused one
/// exits with 2 and the sentence naming it.
int RunButton(const CommonOptions& options, const core::ButtonOptionPairs& button);

/// `amoauth migrate`: opens (so migrates) the configured store; prints the engine and version.
int RunMigrate(const CommonOptions& options);
/// `amoauth doctor`: one `ok|FAIL <what>: <words>` line per check, then a verdict; 0 only if all
/// passed (docs/operations.md).
int RunDoctor(const CommonOptions& options);

struct ExportOptions {
  std::string out;             ///< --out FILE
  bool allow_pending = false;  ///< --allow-pending: export although events or codes are queued
};
struct ImportOptions {
  std::string in;        ///< --in FILE
  bool replace = false;  ///< --replace: overwrite rows the target has already
};
struct RotateKeyOptions {
  std::int64_t batch_size = 100;  ///< --batch-size: rows of each table per batch
  std::int64_t max_batches = 0;   ///< --max-batches: stop after this many (0: until done)
};
/// `amoauth rotate-key`: re-seals under AMOAUTH_MASTER_KEY every row AMOAUTH_MASTER_KEY_PREVIOUS
/// sealed, while instances run; 0 when none is left under the previous key (or --max-batches
/// stopped it), 1 when rows remain or a key id neither key names is found (then nothing is
/// written), 2 when AMOAUTH_MASTER_KEY_PREVIOUS is not set.
int RunRotateKey(const CommonOptions& options, const RotateKeyOptions& rotate);

/// `amoauth export`: every connection and external integration, sealed under the master key.
int RunExport(const CommonOptions& options, const ExportOptions& export_options);
/// `amoauth import`: writes an export into the configured store (checked first, then written).
int RunImport(const CommonOptions& options, const ImportOptions& import_options);

}  // namespace amoauth::app
