#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "amoauth/core/result.hpp"
#include "amoauth/sandbox/sandbox.hpp"

/// The simulated amoCRM's memory: accounts, integrations, codes, tokens, the clock and the
/// journal. Pure: no I/O, no logging, no HTTP. Every public member locks one std::mutex for its
/// whole (short, non-suspending) body, so each call is atomic and the class is thread-safe.
namespace amoauth::sandbox {

using TimePoint = std::chrono::system_clock::time_point;

/// The `hint` strings of protocol §3.3 (league/oauth2-server wording), in one place.
namespace hint {
inline constexpr std::string_view kGrantType = "Check the `grant_type` parameter";
inline constexpr std::string_view kClientId = "Check the `client_id` parameter";
inline constexpr std::string_view kClientSecret = "Check the `client_secret` parameter";
inline constexpr std::string_view kCodeParam = "Check the `code` parameter";
inline constexpr std::string_view kRefreshTokenParam = "Check the `refresh_token` parameter";
inline constexpr std::string_view kRedirectUri = "Redirect URI is not associated with client";
inline constexpr std::string_view kCodeUndecryptable = "Cannot decrypt the authorization code";
inline constexpr std::string_view kInvalidAccount = "Invalid account";
inline constexpr std::string_view kCodeRevoked = "Authorization code has been revoked";
inline constexpr std::string_view kCodeExpired = "Authorization code has expired";
inline constexpr std::string_view kInvalidRefreshToken = "Invalid refresh token";
inline constexpr std::string_view kTokenNotLinked = "Token is not linked to client";
inline constexpr std::string_view kTokenRevoked = "Token has been revoked";
inline constexpr std::string_view kTokenExpired = "Token has expired";
}  // namespace hint

/// A refusal of the token endpoint: HTTP status + hint (the body is built by the endpoint).
struct OAuthError {
  int status = 400;
  std::string hint;
};

/// The fields of a token request, whatever the body encoding. Absent and empty are the same.
struct TokenRequest {
  std::string grant_type;
  std::string client_id;
  std::string client_secret;
  std::string redirect_uri;
  std::string code;
  std::string refresh_token;
};

/// Everything the endpoint needs to mint the JWT and answer (protocol §3.2, §4).
struct IssuedTokens {
  // Access-token claims.
  std::string jti;  ///< 80 lowercase hex
  std::string client_id;
  std::int64_t account_id = 0;
  std::int64_t user_id = 0;
  std::int64_t issued_at = 0;   ///< unix seconds (iat = nbf)
  std::int64_t expires_at = 0;  ///< unix seconds (exp)
  std::string base_domain;      ///< "amocrm.ru" | "kommo.com"
  std::string api_domain;
  std::string hash_uuid;
  std::vector<std::string> scopes;
  // The rest of the response.
  std::string refresh_token;
  std::int64_t expires_in = 0;
  Flavor flavor = Flavor::kAmocrm;  ///< kKommo adds server_time
};

using TokenOutcome = std::variant<IssuedTokens, OAuthError>;

/// A POST /oauth2/exchange_api_key body (protocol §6). Absent and empty are the same.
struct ApiKeyExchange {
  std::string login;
  std::string api_key;
  std::string client_uuid;
  std::string client_secret;
  std::string state;
};

/// What exchange_api_key answers: 202 and a code for the hook, or a refusal in words.
struct ApiKeyExchangeOutcome {
  int status = 202;    ///< 202, 400, 403 or 429
  std::string detail;  ///< a refusal's reason
  std::string code;    ///< 202: the code the hook carries
  std::string redirect_uri;
  std::chrono::seconds retry_after{0};  ///< 429: until the next call is allowed
};

/// amoCRM's limit on exchange_api_key: one call per 5 minutes per (user, integration) (§6).
inline constexpr std::chrono::seconds kApiKeyExchangeInterval{5 * 60};

/// A long-lived token's lifetime in days: 1 day to 5 years (protocol §7.5).
inline constexpr std::int64_t kLongLivedMinDays = 1;
inline constexpr std::int64_t kLongLivedMaxDays = 5 * 365;

/// What a Host header names.
enum class HostKind { kUnknown, kAccount, kApi };
struct HostMatch {
  HostKind kind = HostKind::kUnknown;
  Account account;  ///< valid for kAccount
};

struct JournalEntry {
  std::string host;
  std::string method;
  std::string path;  ///< never the query
  int status = 0;
};

/// What GET /sandbox/journal reports, globally and per account. Each event counts once, for the
/// account it belongs to (a refresh token's or code's account, the host's account for the API).
struct Counters {
  std::uint64_t token_requests = 0;         ///< token-endpoint requests that reached validation
  std::uint64_t token_endpoint_faults = 0;  ///< token-endpoint requests answered by a fault
  std::uint64_t faults = 0;                 ///< requests of any endpoint that met a scripted fault
  std::uint64_t codes_issued = 0;
  std::uint64_t codes_exchanged = 0;
  std::uint64_t code_reuses = 0;
  std::uint64_t refreshes = 0;
  /// Presentations of a refresh token that was used before and is dead now (strict: any second
  /// presentation; grace: presentations after the grace ended). Not counted: presentations
  /// during the grace, and of tokens revoked through the control API without being used.
  std::uint64_t refresh_token_reuses = 0;
  std::uint64_t api_requests = 0;      ///< every /api/v4 arrival on a known account host
  std::uint64_t api_unauthorized = 0;  ///< 401s
  std::uint64_t api_rate_limited = 0;  ///< 429s
  std::uint64_t api_blocked = 0;       ///< 403s while blocked
  /// The most /api/v4 requests that arrived for one account within one sliding 1 s window.
  /// A maximum, not a sum.
  std::uint64_t max_api_requests_per_second = 0;
  std::uint64_t subdomain_lookups = 0;  ///< GET {api_domain}/oauth2/account/current/subdomain
  std::uint64_t widget_installs = 0;    ///< POST /sandbox/accounts/{id}/install-widget
  /// Calls to integrations (code hooks, secrets webhook, disconnect hook) that got an HTTP
  /// answer, whatever its status; and those that did not (timeout, refused connection).
  std::uint64_t hooks_delivered = 0;
  std::uint64_t hooks_failed = 0;
  /// POST /oauth2/exchange_api_key requests (per account: the host's); the 202s; the 429s.
  std::uint64_t exchange_api_key_requests = 0;
  std::uint64_t exchange_api_key_accepted = 0;
  std::uint64_t exchange_api_key_rate_limited = 0;
  /// Integrations created through the metadata consent (protocol §2.2, §5).
  std::uint64_t external_integrations_created = 0;
  std::uint64_t long_lived_tokens_issued = 0;  ///< protocol §7.5
};

struct JournalSnapshot {
  Counters counters;
  std::map<std::int64_t, Counters> accounts;  ///< every account, by id
  std::vector<JournalEntry> requests;         ///< oldest first
};

/// The knobs of sandbox::Options that GET/POST /sandbox/config expose (docs/sandbox.md).
struct StateConfig {
  std::chrono::seconds code_ttl{20 * 60};
  std::chrono::seconds access_token_ttl{24 * 60 * 60};
  std::chrono::seconds refresh_token_ttl{90 * 24 * 60 * 60};
  Rotation rotation = Rotation::kStrict;
  bool revoke_access_token_on_refresh = true;
  std::uint32_t api_rate_limit_rps = 7;           ///< 0: off
  std::uint32_t api_block_after_violations = 10;  ///< 0: never block
  std::chrono::seconds api_violation_window{60};
  std::chrono::seconds api_block_duration{15 * 60};
  std::chrono::seconds api_retry_after{1};
  std::chrono::milliseconds token_delay{0};
  std::chrono::milliseconds exchange_hook_delay{0};
  SecretsDelivery secrets_delivery = SecretsDelivery::kBeforeRedirect;
  std::chrono::milliseconds secrets_delay{0};
  std::size_t journal_capacity = 1000;  ///< not changeable at run time
};

/// A POST /sandbox/config body: the fields it sets.
struct ConfigPatch {
  std::optional<std::chrono::seconds> code_ttl;
  std::optional<std::chrono::seconds> access_token_ttl;
  std::optional<std::chrono::seconds> refresh_token_ttl;
  std::optional<Rotation> rotation;
  std::optional<bool> revoke_access_token_on_refresh;
  std::optional<std::int64_t> api_rate_limit_rps;
  std::optional<std::int64_t> api_block_after_violations;
  std::optional<std::chrono::seconds> api_violation_window;
  std::optional<std::chrono::seconds> api_block_duration;
  std::optional<std::chrono::seconds> api_retry_after;
  std::optional<std::chrono::milliseconds> token_delay;
  std::optional<std::chrono::milliseconds> exchange_hook_delay;
  std::optional<SecretsDelivery> secrets_delivery;
  std::optional<std::chrono::milliseconds> secrets_delay;
};

/// The Options knobs as a StateConfig.
[[nodiscard]] StateConfig ConfigFromOptions(const Options& options);
/// Why `config` is unusable, naming the field as GET /sandbox/config does; nullopt when fine.
[[nodiscard]] std::optional<std::string> ValidateConfig(const StateConfig& config);

/// What the API answers (protocol §7.4), decided in this order: block, rate limit, token.
enum class ApiVerdict { kAllowed, kBlocked, kRateLimited, kUnauthorized };
struct ApiAdmission {
  ApiVerdict verdict = ApiVerdict::kUnauthorized;
  std::int64_t user_id = 0;             ///< kAllowed: the token's user
  std::chrono::seconds retry_after{0};  ///< kRateLimited
  bool block_started = false;  ///< kRateLimited: this 429 was the one that blocked the account
};

/// Which of amoCRM's endpoints a scripted fault (POST /sandbox/faults) hits.
enum class FaultTarget {
  kTokenEndpoint,   ///< POST {account host}/oauth2/access_token
  kApi,             ///< {account host}/api/v4/...
  kSubdomain,       ///< GET {api_domain}/oauth2/account/current/subdomain
  kExchangeApiKey,  ///< POST {account host}/oauth2/exchange_api_key
};
inline constexpr std::size_t kFaultTargets = 4;

enum class FaultKind {
  kStatus,     ///< answer `status` at once: 429 as problem JSON with Retry-After, else nginx HTML
  kClose,      ///< drop the connection without answering
  kMalformed,  ///< 200 whose body is not what the protocol says (`malformed`)
  kStall,      ///< hold the request `stall`, then drop the connection unanswered
  kSlowBody,   ///< handle the request, then send the body `chunk_bytes` at a time, `interval` apart
};

enum class MalformedBody {
  kTruncated,   ///< the right Content-Type, the JSON cut off halfway
  kWrongTypes,  ///< well-formed JSON whose fields have the wrong types
  kHtml,        ///< an HTML page where JSON is expected
};

/// A scripted failure (POST /sandbox/faults). Every kind but kSlowBody answers before the request
/// is handled: nothing is consumed, rotated or counted as a request of its endpoint.
struct Fault {
  FaultKind kind = FaultKind::kStatus;
  int status = 503;  ///< kStatus: 400..599
  MalformedBody malformed = MalformedBody::kTruncated;
  std::chrono::milliseconds stall{0};     ///< kStall: 1 ms .. 60 s
  std::chrono::milliseconds interval{0};  ///< kSlowBody: 1 ms .. 10 s between pieces
  std::size_t chunk_bytes = 16;           ///< kSlowBody: 1 .. 65536
  /// kStatus 429: the Retry-After header (and Kommo's retry_after); nullopt: the config's.
  std::optional<std::int64_t> retry_after;
  /// Only requests whose path starts with this; empty: every request of the target.
  std::string path_prefix;
  std::uint32_t times = 1;  ///< 1..1000000: the next this many matching requests
};

/// POST /sandbox/accounts/{id}/revoke.
enum class RevokeScope { kAccess, kAll };
struct RevokeCount {
  std::uint64_t access_tokens = 0;
  std::uint64_t refresh_tokens = 0;
};

/// "amocrm.ru" | "kommo.com".
[[nodiscard]] std::string_view BaseDomain(Flavor flavor);
/// "api-b.amocrm.ru" | "api-c.kommo.com".
[[nodiscard]] std::string_view DefaultApiDomain(Flavor flavor);
/// "{subdomain}.{base domain}".
[[nodiscard]] std::string AccountHost(const Account& account);
/// The two accounts used when Options.accounts is empty.
[[nodiscard]] std::vector<Account> DefaultAccounts();
/// A DNS label an account may be renamed to: 1-63 of [a-z0-9-], not starting or ending with '-'.
[[nodiscard]] bool IsValidSubdomain(std::string_view subdomain);

/// Where SandboxState's clock starts from; the sandbox clock adds its offset. Tests inject one.
using BaseClock = std::function<TimePoint()>;

class SandboxState {
 public:
  /// Accounts with an empty api_domain get the flavor's default. Integrations are Put().
  /// REQUIRES: ValidateConfig(config) is nullopt. An empty `base_clock` is system_clock::now.
  SandboxState(StateConfig config, std::vector<Account> accounts, BaseClock base_clock = {});
  SandboxState(const SandboxState&) = delete;
  SandboxState& operator=(const SandboxState&) = delete;

  // --- Clock: system_clock::now() + an offset that only moves forward.
  [[nodiscard]] TimePoint Now() const;
  void AdvanceClock(std::chrono::seconds by);
  [[nodiscard]] std::chrono::seconds ClockOffset() const;

  // --- Configuration (GET/POST /sandbox/config). Changes apply to what happens next: codes and
  // tokens keep the lifetimes they were issued with.
  [[nodiscard]] StateConfig Config() const;
  /// Applies every field of `patch` or none: the error names the first bad field.
  [[nodiscard]] std::optional<std::string> ApplyConfig(const ConfigPatch& patch);

  // --- Accounts.
  [[nodiscard]] std::vector<Account> Accounts() const;
  [[nodiscard]] std::optional<Account> FindAccount(std::int64_t id) const;
  /// `host` without port, any case: "{sub}.amocrm.ru", "{sub}.kommo.com" ({sub}.amocrm.com is
  /// Kommo's legacy alias) or an account's api_domain.
  [[nodiscard]] HostMatch ResolveHost(std::string_view host) const;
  /// Moves the account to "{subdomain}.{base domain}"; its tokens stay valid, the old host is
  /// gone. Same name: no change. Errors: Errc::kNotFound (no such account),
  /// Errc::kInvalidArgument (!IsValidSubdomain, or "www"), Errc::kConflict (the host is taken by
  /// another account or is an api_domain).
  [[nodiscard]] Result<Account> RenameAccount(std::int64_t id, std::string_view subdomain);
  /// Revokes the account's live access tokens, and with kAll its live refresh tokens.
  /// Errors: Errc::kNotFound.
  [[nodiscard]] Result<RevokeCount> RevokeTokens(std::int64_t account_id, RevokeScope scope);
  /// The account disconnects the integration (protocol §7.1): every live access and refresh
  /// token of `client_id` in the account is revoked, whatever grant issued it.
  /// Errors: Errc::kNotFound (no such account or integration).
  [[nodiscard]] Result<RevokeCount> DisconnectIntegration(std::int64_t account_id,
                                                          std::string_view client_id);

  // --- Integrations.
  /// Generates client_id (UUID v4) and client_secret (64 chars) when empty.
  /// Errors: Errc::kConflict when the client_id exists.
  [[nodiscard]] Result<Integration> AddIntegration(Integration integration);
  /// Like AddIntegration, but replaces an integration with the same client_id.
  Integration PutIntegration(Integration integration);
  /// The account creates an external integration (protocol §2.2): fresh client_id and secret,
  /// owner_account_id = `account_id`. Not installed until a code is issued for it. Its
  /// disconnect hook is that of a registered integration with the same redirect_uri, if any.
  /// Errors: Errc::kNotFound (no such account).
  [[nodiscard]] Result<Integration> AddExternalIntegration(Integration integration,
                                                           std::int64_t account_id);
  [[nodiscard]] std::optional<Integration> FindIntegration(std::string_view client_id) const;
  [[nodiscard]] std::vector<Integration> Integrations() const;

  // --- Consent.
  /// A fresh single-use code bound to (client_id, account, account's user, redirect_uri); the
  /// account has now installed the integration (consent granted). Errors: Errc::kNotFound for an
  /// unknown integration or account.
  [[nodiscard]] Result<std::string> IssueCode(std::string_view client_id, std::int64_t account_id);

  /// The account installs the integration without a consent (a test's shortcut).
  /// Errors: Errc::kNotFound.
  [[nodiscard]] Result<void> MarkInstalled(std::int64_t account_id, std::string_view client_id);
  /// Whether the account has installed the integration: granted it on the consent page, or
  /// installed its widget.
  [[nodiscard]] bool IsInstalled(std::int64_t account_id, std::string_view client_id) const;
  /// The account installs the integration's widget (protocol §2.6): it is installed, and a code
  /// is issued as IssueCode does. Errors: Errc::kNotFound.
  [[nodiscard]] Result<std::string> InstallWidget(std::int64_t account_id,
                                                  std::string_view client_id);
  /// Counts one call to an integration for `account_id`: answered (any status) or not.
  void CountHook(std::int64_t account_id, bool delivered);

  /// POST https://{host}/oauth2/exchange_api_key on the host of `host_account_id` (protocol §6),
  /// checked in this order: 400 a field missing; 403 login or api_key not the account user's;
  /// 403 unknown client_uuid or wrong client_secret; 403 the integration is not installed in the
  /// account; 429 the same (user, integration) got a 202 less than 5 minutes ago (sandbox
  /// clock). Then 202 with a fresh code.
  [[nodiscard]] ApiKeyExchangeOutcome ExchangeApiKey(const ApiKeyExchange& request,
                                                     std::int64_t host_account_id);

  // --- Token endpoint (protocol §3), validated in the order of §10.2.
  /// `host_account_id` is the account whose host received the request.
  [[nodiscard]] TokenOutcome ExchangeToken(const TokenRequest& request,
                                           std::int64_t host_account_id);

  /// A long-lived token (protocol §7.5): an access token of a new authorization of
  /// (client, account, account's user) that expires at 00:00 UTC `days` days from today
  /// (sandbox clock), with no refresh token (IssuedTokens::refresh_token stays empty). Revoked
  /// like any access token. Errors: Errc::kNotFound (integration or account),
  /// Errc::kInvalidArgument (`days` outside kLongLivedDays).
  [[nodiscard]] Result<IssuedTokens> IssueLongLivedToken(std::string_view client_id,
                                                         std::int64_t account_id,
                                                         std::int64_t days);

  // --- API side.
  /// The user id when `jti` names a live (issued, unrevoked, unexpired) access token of this
  /// account.
  [[nodiscard]] std::optional<std::int64_t> CheckAccessToken(std::string_view jti,
                                                             std::int64_t account_id) const;
  /// One /api/v4 request arriving on the host of `account_id`, `jti` from its verified Bearer
  /// JWT ("" when there is none): counts it, then applies the block, the rate limit (every
  /// arrival counts, refused ones too) and the token check, in that order.
  [[nodiscard]] ApiAdmission AdmitApiRequest(std::int64_t account_id, std::string_view jti);
  /// The account of a live refresh token (protocol §7.2); does not consume it.
  [[nodiscard]] std::optional<Account> AccountOfRefreshToken(std::string_view refresh_token) const;
  /// AccountOfRefreshToken, counted as a subdomain lookup.
  [[nodiscard]] std::optional<Account> LookUpSubdomain(std::string_view refresh_token);

  // --- Faults (POST/DELETE /sandbox/faults).
  /// Sets the pending fault of each target that has one in `faults`; the others keep theirs.
  void SetFaults(const std::array<std::optional<Fault>, kFaultTargets>& faults);
  void ClearFaults();
  /// The pending fault of every target (nullopt: none).
  [[nodiscard]] std::array<std::optional<Fault>, kFaultTargets> Faults() const;
  /// When a fault is pending for `target` and `path` starts with its path prefix: consumes one
  /// time of it (counted for `host_account_id`, 0: no account) and returns it.
  [[nodiscard]] std::optional<Fault> TakeFault(FaultTarget target,
                                               std::int64_t host_account_id,
                                               std::string_view path);

  // --- Journal.
  void Record(JournalEntry entry);
  [[nodiscard]] JournalSnapshot Journal() const;
  /// Zeroes every counter and empties the request list. Tokens, blocks and rate-limit windows
  /// stay.
  void ResetJournal();

 private:
  struct Code {
    std::string client_id;
    std::int64_t account_id = 0;
    std::int64_t user_id = 0;
    std::string redirect_uri;
    TimePoint expires_at;
    bool used = false;
  };
  /// One authorization of (client, account, user): the chain of tokens it produced.
  struct Grant {
    std::string client_id;
    std::int64_t account_id = 0;
    std::int64_t user_id = 0;
    std::string hash_uuid;
    std::string current_access_jti;
  };
  struct RefreshToken {
    std::uint64_t grant_id = 0;
    TimePoint expires_at;
    /// The token this one was issued for; under kGraceUntilNewUsed it dies when this one is used.
    std::string parent;
    bool used = false;  ///< presented successfully at least once
    bool revoked = false;
  };
  struct AccessToken {
    std::uint64_t grant_id = 0;
    TimePoint expires_at;
    bool revoked = false;
  };

  /// Per account: API arrivals of the last second, recent 429s, and the block.
  struct ApiLimiter {
    std::deque<TimePoint> arrivals;    ///< within (now - 1 s, now]
    std::deque<TimePoint> violations;  ///< 429s within (now - api_violation_window, now]
    TimePoint blocked_until;
  };

  [[nodiscard]] TimePoint NowLocked() const;
  [[nodiscard]] bool RefreshTokenLiveLocked(const RefreshToken& token) const;
  [[nodiscard]] std::optional<Account> AccountOfRefreshTokenLocked(
      std::string_view refresh_token) const;
  /// ++field, globally and for `account_id`.
  void CountLocked(std::int64_t account_id, std::uint64_t Counters::*field);
  Integration NormalizeLocked(Integration integration) const;
  TokenOutcome ExchangeCodeLocked(const TokenRequest& request, std::int64_t host_account_id);
  TokenOutcome RefreshLocked(const TokenRequest& request, std::int64_t host_account_id);
  IssuedTokens IssueLocked(std::uint64_t grant_id, const std::string& parent_refresh_token);
  [[nodiscard]] const Account* FindAccountLocked(std::int64_t id) const;
  Result<std::string> IssueCodeLocked(std::string_view client_id, std::int64_t account_id);
  /// Revokes the account's live tokens (of `client_id` only, when not empty).
  RevokeCount RevokeLocked(std::int64_t account_id, RevokeScope scope, std::string_view client_id);

  const BaseClock base_clock_;
  mutable std::mutex mutex_;
  StateConfig config_;
  std::chrono::seconds clock_offset_{0};
  std::vector<Account> accounts_;
  std::map<std::string, Integration, std::less<>> integrations_;
  std::map<std::string, Code, std::less<>> codes_;
  /// (account, client_id) pairs: the integration is installed in the account.
  std::set<std::pair<std::int64_t, std::string>> installed_;
  /// (user, client_id) → the last exchange_api_key call answered 202.
  std::map<std::pair<std::int64_t, std::string>, TimePoint> api_key_exchanges_;
  std::map<std::uint64_t, Grant> grants_;
  std::uint64_t next_grant_id_ = 1;
  std::map<std::string, RefreshToken, std::less<>> refresh_tokens_;
  std::map<std::string, AccessToken, std::less<>> access_tokens_;
  std::map<std::int64_t, ApiLimiter> limiters_;
  std::array<std::optional<Fault>, kFaultTargets> faults_;
  Counters counters_;
  std::map<std::int64_t, Counters> account_counters_;
  std::deque<JournalEntry> journal_;
};

}  // namespace amoauth::sandbox
