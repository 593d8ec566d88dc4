#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
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

struct Counters {
  std::uint64_t token_requests = 0;
  std::uint64_t codes_issued = 0;
  std::uint64_t codes_exchanged = 0;
  std::uint64_t code_reuses = 0;
  std::uint64_t refreshes = 0;
  std::uint64_t refresh_token_reuses = 0;
  std::uint64_t api_requests = 0;
  std::uint64_t api_unauthorized = 0;
};

struct JournalSnapshot {
  Counters counters;
  std::vector<JournalEntry> requests;  ///< oldest first
};

struct StateConfig {
  std::chrono::seconds code_ttl{20 * 60};
  std::chrono::seconds access_token_ttl{24 * 60 * 60};
  std::chrono::seconds refresh_token_ttl{90 * 24 * 60 * 60};
  Rotation rotation = Rotation::kStrict;
  std::size_t journal_capacity = 1000;
};

/// "amocrm.ru" | "kommo.com".
[[nodiscard]] std::string_view BaseDomain(Flavor flavor);
/// "api-b.amocrm.ru" | "api-c.kommo.com".
[[nodiscard]] std::string_view DefaultApiDomain(Flavor flavor);
/// "{subdomain}.{base domain}".
[[nodiscard]] std::string AccountHost(const Account& account);
/// The two accounts used when Options.accounts is empty.
[[nodiscard]] std::vector<Account> DefaultAccounts();

class SandboxState {
 public:
  /// Accounts with an empty api_domain get the flavor's default. Integrations are Put().
  SandboxState(StateConfig config, std::vector<Account> accounts);
  SandboxState(const SandboxState&) = delete;
  SandboxState& operator=(const SandboxState&) = delete;

  // --- Clock: system_clock::now() + an offset that only moves forward.
  [[nodiscard]] TimePoint Now() const;
  void AdvanceClock(std::chrono::seconds by);
  [[nodiscard]] std::chrono::seconds ClockOffset() const;

  // --- Accounts.
  [[nodiscard]] std::vector<Account> Accounts() const;
  [[nodiscard]] std::optional<Account> FindAccount(std::int64_t id) const;
  /// `host` without port, any case: "{sub}.amocrm.ru", "{sub}.kommo.com" ({sub}.amocrm.com is
  /// Kommo's legacy alias) or an account's api_domain.
  [[nodiscard]] HostMatch ResolveHost(std::string_view host) const;

  // --- Integrations.
  /// Generates client_id (UUID v4) and client_secret (64 chars) when empty.
  /// Errors: Errc::kConflict when the client_id exists.
  [[nodiscard]] Result<Integration> AddIntegration(Integration integration);
  /// Like AddIntegration, but replaces an integration with the same client_id.
  Integration PutIntegration(Integration integration);
  [[nodiscard]] std::optional<Integration> FindIntegration(std::string_view client_id) const;
  [[nodiscard]] std::vector<Integration> Integrations() const;

  // --- Consent.
  /// A fresh single-use code bound to (client_id, account, account's user, redirect_uri).
  /// Errors: Errc::kNotFound for an unknown integration or account.
  [[nodiscard]] Result<std::string> IssueCode(std::string_view client_id, std::int64_t account_id);

  // --- Token endpoint (protocol §3), validated in the order of §10.2.
  /// `host_account_id` is the account whose host received the request.
  [[nodiscard]] TokenOutcome ExchangeToken(const TokenRequest& request,
                                           std::int64_t host_account_id);

  // --- API side.
  /// The user id when `jti` names a live (issued, unrevoked, unexpired) access token of this
  /// account.
  [[nodiscard]] std::optional<std::int64_t> CheckAccessToken(std::string_view jti,
                                                             std::int64_t account_id) const;
  /// The account of a live refresh token (protocol §7.2); does not consume it.
  [[nodiscard]] std::optional<Account> AccountOfRefreshToken(std::string_view refresh_token) const;

  // --- Journal.
  void Record(JournalEntry entry);
  void CountApiRequest(bool authorized);
  [[nodiscard]] JournalSnapshot Journal() const;

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
    bool revoked = false;
  };
  struct AccessToken {
    std::uint64_t grant_id = 0;
    TimePoint expires_at;
    bool revoked = false;
  };

  [[nodiscard]] TimePoint NowLocked() const;
  Integration NormalizeLocked(Integration integration) const;
  TokenOutcome ExchangeCodeLocked(const TokenRequest& request, std::int64_t host_account_id);
  TokenOutcome RefreshLocked(const TokenRequest& request, std::int64_t host_account_id);
  IssuedTokens IssueLocked(std::uint64_t grant_id, const std::string& parent_refresh_token);
  [[nodiscard]] const Account* FindAccountLocked(std::int64_t id) const;

  const StateConfig config_;
  mutable std::mutex mutex_;
  std::chrono::seconds clock_offset_{0};
  std::vector<Account> accounts_;
  std::map<std::string, Integration, std::less<>> integrations_;
  std::map<std::string, Code, std::less<>> codes_;
  std::map<std::uint64_t, Grant> grants_;
  std::uint64_t next_grant_id_ = 1;
  std::map<std::string, RefreshToken, std::less<>> refresh_tokens_;
  std::map<std::string, AccessToken, std::less<>> access_tokens_;
  Counters counters_;
  std::deque<JournalEntry> journal_;
};

}  // namespace amoauth::sandbox
