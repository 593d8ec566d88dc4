#pragma once

#include <cstdint>
#include <string>

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

struct SandboxOptions {
  std::string http_listen = "127.0.0.1:8090";
  std::string tls_listen = "127.0.0.1:8443";
  std::string state_dir = "./data/sandbox";
  std::string redirect_uri;  ///< registers one integration with this Redirect URI
  std::string client_id;
  std::string client_secret;
  std::string ready_file;
};

/// Each returns the process exit code: 0 ok, 1 the operation failed, 2 bad configuration.
int RunServe(const ServeOptions& options);
int RunSandbox(const SandboxOptions& options);
int RunExchangeCode(const CommonOptions& options,
                    const std::string& code,
                    const std::string& referer);
int RunAccounts(const CommonOptions& options);
int RunToken(const CommonOptions& options, std::int64_t account_id);

}  // namespace amoauth::app
