#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "amoauth/core/result.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

/// A simulated amoCRM/Kommo (protocol §10.2), for offline development and for our own tests.
/// It is a separate implementation: it must not use amoauth::core's parsing or serialization,
/// so that a misreading of the protocol on our side is not mirrored here.
namespace amoauth::sandbox {

/// amoCRM (amocrm.ru) or Kommo (kommo.com): decides hosts, redirect parameters, server_time.
enum class Flavor { kAmocrm, kKommo };

/// What happens to a refresh token once it has been used (protocol §3.4).
enum class Rotation {
  kStrict,             ///< amoCRM: dead the moment it is used
  kGraceUntilNewUsed,  ///< Kommo: still valid until the new one is first presented
};

/// When an external integration's keys reach its secrets_uri (protocol §5: reported before the
/// redirect; not documented).
enum class SecretsDelivery {
  kBeforeRedirect,  ///< POST first; no code unless it answers exactly 200
  kAfterRedirect,   ///< hand the code back first, POST later; the answer is ignored
};

struct Account {
  std::int64_t id = 0;
  std::string subdomain;  ///< "example" → example.amocrm.ru
  std::string name;
  Flavor flavor = Flavor::kAmocrm;
  std::string api_domain;  ///< "api-b.amocrm.ru"; empty picks a default for the flavor
  std::int64_t user_id = 0;
  /// The user's login (an email) and legacy API key, for POST /oauth2/exchange_api_key
  /// (protocol §6). Empty: "admin@{host}" and 40 random hex characters.
  std::string user_login;
  std::string user_api_key;
};

struct Integration {
  std::string client_id;      ///< UUID; empty: generated
  std::string client_secret;  ///< 64 chars; empty: generated
  std::string redirect_uri;
  std::string name = "amoauth sandbox integration";
  std::vector<std::string> scopes = {"crm", "notifications"};
  /// The "access revoked" hook (protocol §7.1): POST /sandbox/accounts/{id}/disconnect sends
  /// GET {this}?client_uuid=…&account_id=…&signature=… here. Empty: the integration has none.
  std::string disconnect_hook_url;
  /// An external integration (protocol §2.2, §5) is private to the account it was created in;
  /// 0 for the others.
  std::int64_t owner_account_id = 0;
};

struct Options {
  std::string host = "127.0.0.1";
  /// Plain HTTP for what a browser opens (consent page, button script) and the control API.
  std::uint16_t http_port = 0;
  /// TLS for amoCRM's own hosts ({sub}.amocrm.ru, api-*.amocrm.ru…): token endpoint and API.
  std::uint16_t tls_port = 0;
  /// Where the sandbox writes its CA certificate (sandbox-ca.pem, see CaFile()). Must exist.
  std::string state_dir;
  /// Single-threaded io_contexts to spread the sandbox's connections over, as `serve` does with
  /// its own (http_server::HttpServer); empty: strands of Start()'s executor.
  std::vector<boost::asio::io_context*> connection_contexts;
  /// Empty: one account "example" (id 30000001) on amoCRM and one "example" on Kommo.
  std::vector<Account> accounts;
  std::vector<Integration> integrations;

  // The knobs below are the start values of what GET/POST /sandbox/config read and change at
  // run time (docs/sandbox.md). Durations are whole seconds on the sandbox clock. Start() fails
  // with Errc::kConfigInvalid when one is out of range.

  /// Authorization code lifetime (protocol §2, §3.4). REQUIRES: 1 s .. 10 years.
  std::chrono::seconds code_ttl{20 * 60};
  /// Access token lifetime, `expires_in` (§3.2). REQUIRES: 1 s .. 10 years.
  std::chrono::seconds access_token_ttl{24 * 60 * 60};
  /// Refresh token lifetime; each refresh issues a new one (§3.4). REQUIRES: 1 s .. 10 years.
  std::chrono::seconds refresh_token_ttl{90 * 24 * 60 * 60};
  Rotation rotation = Rotation::kStrict;
  /// A refresh revokes the access token issued before it for the same authorization (§3.4,
  /// §10.2; UNCONFIRMED for the real amoCRM). false: old access tokens live until they expire.
  bool revoke_access_token_on_refresh = true;
  /// Per-account API rate limit (§7.4): more than this many /api/v4 requests arriving within any
  /// sliding 1-second window get 429. 0: no limit. REQUIRES: 0 .. 10000.
  std::uint32_t api_rate_limit_rps = 7;
  /// This many 429s of one account within api_violation_window block the account.
  /// 0: never block. REQUIRES: 0 .. 1000000.
  std::uint32_t api_block_after_violations = 10;
  /// The window in which api_block_after_violations 429s block. REQUIRES: 1 s .. 1 day.
  std::chrono::seconds api_violation_window{60};
  /// How long a blocked account's API answers 403 (nginx HTML). REQUIRES: 1 s .. 10 years.
  std::chrono::seconds api_block_duration{15 * 60};
  /// A 429's Retry-After header (both flavors) and Kommo's `retry_after` body field.
  /// REQUIRES: 0 .. 1 day.
  std::chrono::seconds api_retry_after{1};
  /// POST /oauth2/access_token waits this long before it is handled (a slow amoCRM). Other
  /// requests are not held up: the wait is a timer. REQUIRES: 0 .. 60 s.
  std::chrono::milliseconds token_delay{0};
  /// How long after a 202 from /oauth2/exchange_api_key the code reaches the Redirect URI
  /// (from_exchange=1). REQUIRES: 0 .. 10 min.
  std::chrono::milliseconds exchange_hook_delay{0};
  /// External integrations (protocol §5): whether the secrets webhook is POSTed before the
  /// redirect (and must answer exactly 200), or after it, secrets_delay later, status ignored.
  SecretsDelivery secrets_delivery = SecretsDelivery::kBeforeRedirect;
  /// kAfterRedirect only. REQUIRES: 0 .. 10 min.
  std::chrono::milliseconds secrets_delay{0};
};

/// Runs on the given executor until Stop(). Thread-safe. docs/sandbox.md describes every route.
///
/// Plain HTTP (BrowserBaseUrl()):
///   GET /auth/button.js, /auth/button.min.js   the site button script
///   GET /oauth, /oauth/; POST /oauth/decision   consent page and its Allow / Deny
///   GET /sandbox/                               HTML index of accounts and integrations
///   GET /sandbox/journal                        counters (global and per account) + last 1000
///                                               requests (no queries)
///   POST /sandbox/journal/reset                 zeroes the counters, empties the request list
///   POST /sandbox/clock/advance {"seconds":N}   moves the sandbox clock forward
///   GET /sandbox/config                         lifetimes, rotation, rate limit, block knobs
///   POST /sandbox/config {partial JSON}         changes some of them (all or nothing; 400)
///   GET|POST /sandbox/integrations, GET /sandbox/accounts
///   POST /sandbox/accounts/{id}/revoke {"tokens":"access"|"all"}
///                                               revokes the account's live tokens
///   POST /sandbox/accounts/{id}/rename {"subdomain":"new-name"}
///                                               moves the account to a new host
///   POST /sandbox/accounts/{id}/disconnect {"client_id":"…"}
///                                               the account disconnects the integration:
///                                               its tokens are revoked and its disconnect hook
///                                               is sent; answers with the hook's status
///   POST /sandbox/accounts/{id}/install-widget {"client_id":"…"}
///                                               the widget-install hook (from_widget=1), sent
///                                               once; answers {"delivered","status","elapsed_ms"}
///   POST /sandbox/integrations/{client_id}/long-lived-tokens {"account_id":N,"days":D}
///                                               a long-lived token {"access_token","expires_at"}
///   GET /oauth without client_id (metadata)     external integration consent; Allow POSTs the
///                                               keys to secrets_uri (secrets_delivery)
///   GET|POST|DELETE /sandbox/faults             scripted failures of amoCRM's endpoints:
///                                               {TARGET: {KIND, "times":N, "path":"/prefix"}}
///                                               TARGET: token_endpoint | api | subdomain |
///                                                 exchange_api_key
///                                               KIND: "status":400..599 (429: problem JSON +
///                                                 Retry-After, "retry_after":S; else nginx HTML)
///                                                 | "malformed":"truncated"|"wrong_types"|"html"
///                                                 | "close":true (no answer)
///                                                 | "stall_ms":D (no answer for D ms, then close)
///                                                 | "slow_body_ms":M ("chunk_bytes":B at a time)
///                                               All but slow_body answer before the request is
///                                               handled: nothing consumed or rotated.
/// TLS (ConnectTo(), CaFile()), dispatched on Host:
///   {sub}.amocrm.ru, {sub}.kommo.com            POST /oauth2/exchange_api_key (202, then the
///                                               from_exchange=1 hook), POST /oauth2/access_token
///                                               (token_delay_ms), /api/v4/... (per
///                                               account: rate limit 429, then block 403 HTML);
///                                               scripted faults come first
///   api_domain hosts (api-b.amocrm.ru...)       GET /oauth2/account/current/subdomain
///   any other host (e.g. a renamed account's old one)  404 problem+json, no hint
class Sandbox {
 public:
  /// Generates its CA, server certificate and JWT signing key, binds both listeners, starts.
  [[nodiscard]] static Result<std::unique_ptr<Sandbox>> Start(boost::asio::any_io_executor executor,
                                                              Options options);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  /// Registers an integration (ids generated when empty) and returns it as stored.
  Integration AddIntegration(Integration integration);

  [[nodiscard]] std::uint16_t HttpPort() const;
  [[nodiscard]] std::uint16_t TlsPort() const;
  /// "http://127.0.0.1:{http}" — consent page at /oauth, button script at /auth/button.js.
  [[nodiscard]] std::string BrowserBaseUrl() const;
  /// "127.0.0.1:{tls}" — what amoauth's AMOAUTH_AMO_CONNECT_TO must be.
  [[nodiscard]] std::string ConnectTo() const;
  /// Path of the PEM CA file that signs the TLS certificate (AMOAUTH_AMO_CA_FILE).
  [[nodiscard]] std::string CaFile() const;

  void Stop();

 private:
  struct Impl;
  explicit Sandbox(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace amoauth::sandbox
