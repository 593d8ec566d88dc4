#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amoauth/core/platform.hpp"
#include "amoauth/core/secret.hpp"
#include "amoauth/core/site_button.hpp"
#include "amoauth/crypto/aead.hpp"
#include "checked.hpp"
#include "database_url.hpp"

namespace amoauth::app {

/// Every option amoauth reads, typed and validated once at start-up. docs/configuration.md lists
/// each with its default; keep the two in step.
struct Config {
  // The integration (names as in seed 003's .env).
  std::string client_id;  ///< AMO_CLIENT_ID. REQUIRES: set, unless --sandbox.
  Secret client_secret;   ///< AMO_CLIENT_SECRET. REQUIRES: set, unless --sandbox.
  std::string
      redirect_uri;  ///< AMO_REDIRECT_URI. REQUIRES: absolute http(s) URL, unless --sandbox.
  core::Platform platform = core::Platform::kAmocrm;  ///< AMOAUTH_PLATFORM: amocrm | kommo.

  // Serving.
  std::string listen_host = "127.0.0.1";  ///< AMOAUTH_LISTEN host part (default 127.0.0.1:8080).
  std::uint16_t listen_port = 8080;       ///< AMOAUTH_LISTEN port part; 0 picks a free port.
  std::string callback_path = "/api/v1/integrations/amo-crm/callback";  ///< AMOAUTH_CALLBACK_PATH.
  /// AMOAUTH_DISCONNECT_PATH: where amoCRM's disconnect hook is served (protocol §7.1).
  std::string disconnect_path = "/api/v1/integrations/amo-crm/disconnect";
  /// AMOAUTH_SECRETS_WAIT_MS: how long a metadata-button redirect waits for those keys.
  std::chrono::milliseconds secrets_wait{10000};
  Secret api_key;   ///< AMOAUTH_API_KEY: bearer key of the internal API. REQUIRES: ≥ 16 chars,
                    ///< unless --sandbox.
  int threads = 2;  ///< AMOAUTH_THREADS: I/O threads, 1..64.
  /// AMOAUTH_SHUTDOWN_GRACE_MS, 0..600000: how long SIGTERM/SIGINT waits for requests and
  /// refreshes in flight before cutting them; 0 stops at once.
  std::chrono::milliseconds shutdown_grace{15000};

  // Storage.
  /// AMOAUTH_DATABASE_URL (sqlite://PATH, default sqlite://./data/amoauth.db, or postgresql://…)
  /// and AMOAUTH_DATABASE_POOL.
  DatabaseConfig database;
  std::optional<crypto::MasterKey> master_key;  ///< AMOAUTH_MASTER_KEY: base64 of 32 bytes.
  /// AMOAUTH_MASTER_KEY_PREVIOUS: during a key rotation, the key being retired; rows it sealed
  /// are still read, every write uses master_key (docs/operations.md, "Rotating the master key").
  std::optional<crypto::MasterKey> previous_master_key;

  // Talking to amoCRM.
  std::vector<std::string> allowed_domains = {
      "amocrm.ru", "amocrm.com", "kommo.com"};  ///< AMOAUTH_ALLOWED_DOMAINS.
  std::string amo_connect_to;  ///< AMOAUTH_AMO_CONNECT_TO: HOST:PORT for every amoCRM connection;
                               ///< empty in production.
  std::string amo_ca_file;     ///< AMOAUTH_AMO_CA_FILE: extra trusted CA (PEM).
  std::string consent_url;     ///< AMOAUTH_CONSENT_URL; default amoCRM's/Kommo's own.
  std::string button_script_url;  ///< AMOAUTH_BUTTON_SCRIPT_URL; default amoCRM's/Kommo's own.
  std::chrono::milliseconds amo_timeout{15000};  ///< AMOAUTH_AMO_TIMEOUT_MS, 100..120000.

  // Keeping tokens alive (core::RefreshPolicy).
  std::chrono::seconds refresh_margin{300};   ///< AMOAUTH_REFRESH_MARGIN seconds, 0..43200.
  std::chrono::seconds refresh_ahead{3600};   ///< AMOAUTH_REFRESH_AHEAD seconds, 0..43200.
  std::chrono::seconds keepalive{7 * 86400};  ///< AMOAUTH_KEEPALIVE seconds, 3600..5184000.
  std::chrono::milliseconds scheduler_interval{1000};  ///< AMOAUTH_SCHEDULER_INTERVAL_MS.

  // Keeping to amoCRM's limits (service::LimiterSettings).
  int rate_limit_rps = 7;                                ///< AMOAUTH_RATE_LIMIT_RPS, 0 (off)..1000.
  std::chrono::milliseconds rate_limit_max_wait{10000};  ///< AMOAUTH_RATE_LIMIT_MAX_WAIT_MS.
  std::chrono::seconds block_cooloff{900};  ///< AMOAUTH_BLOCK_COOLOFF seconds after a 403.

  /// AMOAUTH_TOKEN_CACHE_ENTRIES, 0..10000000: accounts whose rows this instance keeps in memory
  /// (service::CachedConnectionStore) when the engine has a change feed (PostgreSQL); 0: no cache.
  std::size_t token_cache_entries = 100'000;
  /// AMOAUTH_METRICS_PUBLIC=1: GET /metrics answers without the API key (for a scraper on a
  /// private network); 0 (the default): it needs `Authorization: Bearer <API key>` like /v1.
  bool metrics_public = false;

  // Telling the backend (service::WebhookDispatcher).
  std::string webhook_url;  ///< AMOAUTH_WEBHOOK_URL; empty: no webhooks, nothing queued.
  Secret webhook_secret;    ///< AMOAUTH_WEBHOOK_SECRET. REQUIRES: ≥ 16 chars when the URL is set.
  std::chrono::milliseconds webhook_timeout{10000};  ///< AMOAUTH_WEBHOOK_TIMEOUT_MS.

  std::string log_level = "info";  ///< AMOAUTH_LOG_LEVEL: trace|debug|info|warn|error.
  /// AMOAUTH_LOG_FORMAT: text (one line for people) | json (one object per line); both carry the
  /// request id of the line's request (docs/operations.md, "Logs").
  std::string log_format = "text";

  // The site button and the pages around it.
  /// AMOAUTH_SECRETS_PATH: where amoCRM posts a new external integration's keys (protocol §5);
  /// the metadata button's secrets_uri is the Redirect URI's origin + this path.
  std::string secrets_path = "/api/v1/integrations/amo-crm/secrets";
  /// AMOAUTH_POST_MESSAGE_ORIGIN: the callback page's postMessage targetOrigin in post_message
  /// mode (scheme://host[:port]); empty: the origin of AMO_REDIRECT_URI.
  std::string post_message_origin;
  /// AMOAUTH_BUTTON_VARIANT, _TITLE, _COMPACT, _CLASS_NAME, _COLOR, _THEME, _LOCALE, _MODE, _NAME,
  /// _DESCRIPTION, _LOGO, _SCOPES: the /connect page's button, as core::ApplyButtonOptions names
  /// them (checked at start-up).
  core::ButtonOptionPairs connect_button;

  // HTTP server limits (http_server::ServerOptions).
  std::size_t http_body_limit = 1024 * 1024;    ///< AMOAUTH_HTTP_BODY_LIMIT bytes, 1024..67108864.
  std::uint32_t http_header_limit = 16 * 1024;  ///< AMOAUTH_HTTP_HEADER_LIMIT bytes, 1024..1048576.
  std::size_t http_max_header_fields = 100;     ///< AMOAUTH_HTTP_MAX_HEADER_FIELDS, 8..10000.
  /// AMOAUTH_HTTP_HEADER_TIMEOUT_MS, 100..600000: a request's line and headers must arrive within.
  std::chrono::milliseconds http_header_timeout{20000};
  /// AMOAUTH_HTTP_BODY_TIMEOUT_MS, 100..600000: a request's body must arrive within.
  std::chrono::milliseconds http_body_timeout{30000};
  /// AMOAUTH_HTTP_IDLE_TIMEOUT_MS, 100..3600000: a keep-alive connection idles at most this.
  std::chrono::milliseconds http_idle_timeout{30000};
  /// AMOAUTH_HTTP_WRITE_TIMEOUT_MS, 100..600000: each write of an answer finishes within.
  std::chrono::milliseconds http_write_timeout{30000};
  std::size_t http_max_connections = 512;  ///< AMOAUTH_HTTP_MAX_CONNECTIONS, 0 (no cap)..1000000.
  /// AMOAUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS, 0 (no cap)..1000000: per peer address (behind a
  /// reverse proxy, the proxy's).
  std::size_t http_max_connections_per_address = 0;

  // Per-client limits (web::WebSettings); the client is the peer, or what a trusted proxy says.
  /// AMOAUTH_TRUSTED_PROXIES: addresses or CIDR networks whose X-Forwarded-For names the client;
  /// "none" trusts nobody. Default: loopback, where a reverse proxy on the same machine connects
  /// from.
  std::vector<std::string> trusted_proxies = {"127.0.0.1", "::1"};
  /// AMOAUTH_API_KEY_FAILURE_LIMIT, 0 (off)..100000: wrong API keys per client per 15 minutes.
  std::size_t api_key_failure_limit = 10;
  /// AMOAUTH_CONNECT_LIMIT, 0 (off)..1000000: /connect pages (pending states) per client per
  /// 20 minutes (a state's lifetime).
  std::size_t connect_limit = 30;
  /// AMOAUTH_HOOK_LIMIT, 0 (off)..1000000: widget and exchange hooks (queued codes) per client
  /// per 20 minutes (a code's lifetime).
  std::size_t hook_limit = 100;

  /// The folder the SQLite file lives in (./data with PostgreSQL); sandbox mode keeps its
  /// generated keys there too.
  [[nodiscard]] std::string DataDir() const;
};

using Variables = std::map<std::string, std::string>;

/// Reads KEY=VALUE lines (# comments, blank lines, optional `export `, single or double quotes).
/// A missing file yields no variables. Errors: a line that is not KEY=VALUE, naming its number.
[[nodiscard]] Checked<Variables> ReadEnvFile(const std::string& path);

/// The process environment, only names starting with AMO.
[[nodiscard]] Variables ReadProcessEnvironment();

/// Builds the Config from `vars` (later layers already merged over earlier ones by the caller).
/// `sandbox` relaxes what the sandbox supplies itself. Errors: one sentence naming the variable.
[[nodiscard]] Checked<Config> LoadConfig(const Variables& vars, bool sandbox);

}  // namespace amoauth::app
