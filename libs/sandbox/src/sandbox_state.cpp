#include "sandbox_state.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include <openssl/crypto.h>

#include "random_ids.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::string_view kCodePrefix = "def50200";
constexpr std::size_t kCodeRandomBytes = 512;     // 1024 hex chars after the prefix
constexpr std::size_t kRefreshRandomBytes = 496;  // 992 hex chars after the prefix
constexpr std::size_t kJtiBytes = 40;             // 80 hex chars
constexpr std::size_t kSecretLength = 64;

std::int64_t ToUnix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint FromUnix(std::int64_t s) {
  return TimePoint{std::chrono::seconds{s}};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
}

/// Constant time in the content; the length is not secret (a 64-char secret either way).
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

OAuthError Refuse(int status, std::string_view hint_text) {
  return OAuthError{status, std::string(hint_text)};
}

constexpr std::chrono::seconds kOneSecond{1};
constexpr std::chrono::seconds kOneDay{24 * 60 * 60};
constexpr std::chrono::seconds kTenYears{10 * 365 * 24 * 60 * 60};
constexpr std::chrono::milliseconds kOneMinuteMs{60 * 1000};
constexpr std::chrono::milliseconds kTenMinutesMs{10 * 60 * 1000};
constexpr std::size_t kApiKeyBytes = 20;  // 40 hex characters
constexpr std::uint32_t kMaxRps = 10000;
constexpr std::uint32_t kMaxViolations = 1000000;

std::optional<std::string> CheckRange(std::string_view name,
                                      std::int64_t value,
                                      std::int64_t min,
                                      std::int64_t max) {
  if (value < min || value > max) {
    return std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
           std::to_string(max);
  }
  return std::nullopt;
}

std::optional<std::string> CheckSeconds(std::string_view name,
                                        std::chrono::seconds value,
                                        std::chrono::seconds min,
                                        std::chrono::seconds max) {
  return CheckRange(name, value.count(), min.count(), max.count());
}

}  // namespace

StateConfig ConfigFromOptions(const Options& options) {
  StateConfig config;
  config.code_ttl = options.code_ttl;
  config.access_token_ttl = options.access_token_ttl;
  config.refresh_token_ttl = options.refresh_token_ttl;
  config.rotation = options.rotation;
  config.revoke_access_token_on_refresh = options.revoke_access_token_on_refresh;
  config.api_rate_limit_rps = options.api_rate_limit_rps;
  config.api_block_after_violations = options.api_block_after_violations;
  config.api_violation_window = options.api_violation_window;
  config.api_block_duration = options.api_block_duration;
  config.api_retry_after = options.api_retry_after;
  config.token_delay = options.token_delay;
  config.exchange_hook_delay = options.exchange_hook_delay;
  config.secrets_delivery = options.secrets_delivery;
  config.secrets_delay = options.secrets_delay;
  return config;
}

std::optional<std::string> ValidateConfig(const StateConfig& c) {
  const std::array checks = {
      CheckSeconds("code_ttl_seconds", c.code_ttl, kOneSecond, kTenYears),
      CheckSeconds("access_token_ttl_seconds", c.access_token_ttl, kOneSecond, kTenYears),
      CheckSeconds("refresh_token_ttl_seconds", c.refresh_token_ttl, kOneSecond, kTenYears),
      CheckRange("api_rate_limit_rps", c.api_rate_limit_rps, 0, kMaxRps),
      CheckRange("api_block_after_violations", c.api_block_after_violations, 0, kMaxViolations),
      CheckSeconds("api_violation_window_seconds", c.api_violation_window, kOneSecond, kOneDay),
      CheckSeconds("api_block_seconds", c.api_block_duration, kOneSecond, kTenYears),
      CheckSeconds("api_retry_after_seconds", c.api_retry_after, std::chrono::seconds{0}, kOneDay),
      CheckRange("token_delay_ms", c.token_delay.count(), 0, kOneMinuteMs.count()),
      CheckRange("exchange_hook_delay_ms", c.exchange_hook_delay.count(), 0, kTenMinutesMs.count()),
      CheckRange("secrets_delay_ms", c.secrets_delay.count(), 0, kTenMinutesMs.count()),
  };
  for (const auto& check : checks) {
    if (check) {
      return check;
    }
  }
  if (c.journal_capacity == 0) {
    return "journal_capacity must be positive";
  }
  return std::nullopt;
}

std::string_view BaseDomain(Flavor flavor) {
  switch (flavor) {
    case Flavor::kAmocrm:
      return "amocrm.ru";
    case Flavor::kKommo:
      return "kommo.com";
  }
  return "amocrm.ru";
}

std::string_view DefaultApiDomain(Flavor flavor) {
  switch (flavor) {
    case Flavor::kAmocrm:
      return "api-b.amocrm.ru";
    case Flavor::kKommo:
      return "api-c.kommo.com";
  }
  return "api-b.amocrm.ru";
}

std::string AccountHost(const Account& account) {
  return account.subdomain + "." + std::string(BaseDomain(account.flavor));
}

std::vector<Account> DefaultAccounts() {
  return {
      Account{30000001, "example", "Example", Flavor::kAmocrm, "api-b.amocrm.ru", 10000001},
      Account{31000001, "example", "Example Kommo", Flavor::kKommo, "api-c.kommo.com", 11000001},
  };
}

bool IsValidSubdomain(std::string_view subdomain) {
  if (subdomain.empty() || subdomain.size() > 63 || subdomain.front() == '-' ||
      subdomain.back() == '-') {
    return false;
  }
  return std::all_of(subdomain.begin(), subdomain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

SandboxState::SandboxState(StateConfig config, std::vector<Account> accounts, BaseClock base_clock)
    : base_clock_(std::move(base_clock)), config_(config), accounts_(std::move(accounts)) {
  for (Account& a : accounts_) {
    a.subdomain = Lower(a.subdomain);
    if (a.api_domain.empty()) {
      a.api_domain = std::string(DefaultApiDomain(a.flavor));
    }
    a.api_domain = Lower(a.api_domain);
    if (a.user_login.empty()) {
      a.user_login = "admin@" + AccountHost(a);
    }
    if (a.user_api_key.empty()) {
      a.user_api_key = RandomHex(kApiKeyBytes);
    }
  }
}

// --- Clock.

TimePoint SandboxState::NowLocked() const {
  const TimePoint base = base_clock_ ? base_clock_() : std::chrono::system_clock::now();
  return std::chrono::time_point_cast<TimePoint::duration>(base + clock_offset_);
}

TimePoint SandboxState::Now() const {
  const std::lock_guard lock(mutex_);
  return NowLocked();
}

void SandboxState::AdvanceClock(std::chrono::seconds by) {
  const std::lock_guard lock(mutex_);
  if (by.count() > 0) {
    clock_offset_ += by;
  }
}

std::chrono::seconds SandboxState::ClockOffset() const {
  const std::lock_guard lock(mutex_);
  return clock_offset_;
}

// --- Configuration.

StateConfig SandboxState::Config() const {
  const std::lock_guard lock(mutex_);
  return config_;
}

std::optional<std::string> SandboxState::ApplyConfig(const ConfigPatch& patch) {
  // Wide integers are range-checked before they are narrowed into the config.
  const auto narrow = [](const std::optional<std::int64_t>& value,
                         std::string_view name,
                         std::int64_t max,
                         std::uint32_t& out) -> std::optional<std::string> {
    if (!value) {
      return std::nullopt;
    }
    if (auto error = CheckRange(name, *value, 0, max)) {
      return error;
    }
    out = static_cast<std::uint32_t>(*value);
    return std::nullopt;
  };
  const std::lock_guard lock(mutex_);
  StateConfig next = config_;
  next.code_ttl = patch.code_ttl.value_or(next.code_ttl);
  next.access_token_ttl = patch.access_token_ttl.value_or(next.access_token_ttl);
  next.refresh_token_ttl = patch.refresh_token_ttl.value_or(next.refresh_token_ttl);
  next.rotation = patch.rotation.value_or(next.rotation);
  next.revoke_access_token_on_refresh =
      patch.revoke_access_token_on_refresh.value_or(next.revoke_access_token_on_refresh);
  if (auto error = narrow(
          patch.api_rate_limit_rps, "api_rate_limit_rps", kMaxRps, next.api_rate_limit_rps)) {
    return error;
  }
  if (auto error = narrow(patch.api_block_after_violations,
                          "api_block_after_violations",
                          kMaxViolations,
                          next.api_block_after_violations)) {
    return error;
  }
  next.api_violation_window = patch.api_violation_window.value_or(next.api_violation_window);
  next.api_block_duration = patch.api_block_duration.value_or(next.api_block_duration);
  next.api_retry_after = patch.api_retry_after.value_or(next.api_retry_after);
  next.token_delay = patch.token_delay.value_or(next.token_delay);
  next.exchange_hook_delay = patch.exchange_hook_delay.value_or(next.exchange_hook_delay);
  next.secrets_delivery = patch.secrets_delivery.value_or(next.secrets_delivery);
  next.secrets_delay = patch.secrets_delay.value_or(next.secrets_delay);
  if (auto error = ValidateConfig(next)) {
    return error;
  }
  config_ = next;
  return std::nullopt;
}

// --- Accounts.

std::vector<Account> SandboxState::Accounts() const {
  const std::lock_guard lock(mutex_);
  return accounts_;
}

const Account* SandboxState::FindAccountLocked(std::int64_t id) const {
  const auto it = std::find_if(
      accounts_.begin(), accounts_.end(), [id](const Account& a) { return a.id == id; });
  return it == accounts_.end() ? nullptr : &*it;
}

std::optional<Account> SandboxState::FindAccount(std::int64_t id) const {
  const std::lock_guard lock(mutex_);
  const Account* a = FindAccountLocked(id);
  return a == nullptr ? std::nullopt : std::optional<Account>(*a);
}

HostMatch SandboxState::ResolveHost(std::string_view host) const {
  std::string h = Lower(host);
  if (!h.empty() && h.back() == '.') {
    h.pop_back();
  }
  const std::lock_guard lock(mutex_);
  for (const Account& a : accounts_) {
    const bool legacy_kommo = a.flavor == Flavor::kKommo && h == a.subdomain + ".amocrm.com";
    if (h == AccountHost(a) || legacy_kommo) {
      return HostMatch{HostKind::kAccount, a};
    }
  }
  for (const Account& a : accounts_) {
    if (h == a.api_domain) {
      return HostMatch{HostKind::kApi, Account{}};
    }
  }
  return HostMatch{};
}

Result<Account> SandboxState::RenameAccount(std::int64_t id, std::string_view subdomain) {
  const std::string name = Lower(subdomain);
  if (!IsValidSubdomain(name) || name == "www") {
    return Fail(Errc::kInvalidArgument);
  }
  const std::lock_guard lock(mutex_);
  const auto it = std::find_if(
      accounts_.begin(), accounts_.end(), [id](const Account& a) { return a.id == id; });
  if (it == accounts_.end()) {
    return Fail(Errc::kNotFound);
  }
  if (it->subdomain == name) {
    return *it;
  }
  Account renamed = *it;
  renamed.subdomain = name;
  const std::string host = AccountHost(renamed);
  for (const Account& a : accounts_) {
    if ((a.id != id && AccountHost(a) == host) || a.api_domain == host) {
      return Fail(Errc::kConflict);
    }
  }
  *it = renamed;
  return renamed;
}

Result<RevokeCount> SandboxState::RevokeTokens(std::int64_t account_id, RevokeScope scope) {
  const std::lock_guard lock(mutex_);
  if (FindAccountLocked(account_id) == nullptr) {
    return Fail(Errc::kNotFound);
  }
  return RevokeLocked(account_id, scope, {});
}

Result<RevokeCount> SandboxState::DisconnectIntegration(std::int64_t account_id,
                                                        std::string_view client_id) {
  const std::lock_guard lock(mutex_);
  if (FindAccountLocked(account_id) == nullptr || !integrations_.contains(client_id)) {
    return Fail(Errc::kNotFound);
  }
  return RevokeLocked(account_id, RevokeScope::kAll, client_id);
}

RevokeCount SandboxState::RevokeLocked(std::int64_t account_id,
                                       RevokeScope scope,
                                       std::string_view client_id) {
  const TimePoint now = NowLocked();
  const auto in_scope = [&](std::uint64_t grant_id) {
    const Grant& grant = grants_.at(grant_id);
    return grant.account_id == account_id && (client_id.empty() || grant.client_id == client_id);
  };
  RevokeCount count;
  for (auto& [jti, token] : access_tokens_) {
    if (!token.revoked && now < token.expires_at && in_scope(token.grant_id)) {
      token.revoked = true;
      ++count.access_tokens;
    }
  }
  if (scope == RevokeScope::kAll) {
    for (auto& [value, token] : refresh_tokens_) {
      if (RefreshTokenLiveLocked(token) && in_scope(token.grant_id)) {
        token.revoked = true;
        ++count.refresh_tokens;
      }
    }
  }
  return count;
}

// --- Integrations.

Integration SandboxState::NormalizeLocked(Integration integration) const {
  if (integration.client_id.empty()) {
    integration.client_id = RandomUuid();
  }
  if (integration.client_secret.empty()) {
    integration.client_secret = RandomAlphanumeric(kSecretLength);
  }
  if (integration.name.empty()) {
    integration.name = Integration{}.name;
  }
  if (integration.scopes.empty()) {
    integration.scopes = Integration{}.scopes;
  }
  return integration;
}

Result<Integration> SandboxState::AddIntegration(Integration integration) {
  const std::lock_guard lock(mutex_);
  integration = NormalizeLocked(std::move(integration));
  if (integrations_.contains(integration.client_id)) {
    return Fail(Errc::kConflict);
  }
  integrations_.emplace(integration.client_id, integration);
  return integration;
}

Result<Integration> SandboxState::AddExternalIntegration(Integration integration,
                                                         std::int64_t account_id) {
  const std::lock_guard lock(mutex_);
  if (FindAccountLocked(account_id) == nullptr) {
    return Fail(Errc::kNotFound);
  }
  integration.client_id.clear();
  integration.client_secret.clear();
  integration.owner_account_id = account_id;
  // amoCRM's docs do not say who sets an external integration's "access revoked" hook. The
  // sandbox gives it the hook of the registered integration with the same Redirect URI (the same
  // backend), so that its disconnect can be tested. UNCONFIRMED (docs/sandbox.md §6).
  integration.disconnect_hook_url.clear();
  for (const auto& [id, registered] : integrations_) {
    if (registered.owner_account_id == 0 && registered.redirect_uri == integration.redirect_uri &&
        !registered.disconnect_hook_url.empty()) {
      integration.disconnect_hook_url = registered.disconnect_hook_url;
      break;
    }
  }
  integration = NormalizeLocked(std::move(integration));
  integrations_.emplace(integration.client_id, integration);
  CountLocked(account_id, &Counters::external_integrations_created);
  return integration;
}

Integration SandboxState::PutIntegration(Integration integration) {
  const std::lock_guard lock(mutex_);
  integration = NormalizeLocked(std::move(integration));
  integrations_.insert_or_assign(integration.client_id, integration);
  return integration;
}

std::optional<Integration> SandboxState::FindIntegration(std::string_view client_id) const {
  const std::lock_guard lock(mutex_);
  const auto it = integrations_.find(client_id);
  return it == integrations_.end() ? std::nullopt : std::optional<Integration>(it->second);
}

std::vector<Integration> SandboxState::Integrations() const {
  const std::lock_guard lock(mutex_);
  std::vector<Integration> out;
  out.reserve(integrations_.size());
  for (const auto& [id, integration] : integrations_) {
    out.push_back(integration);
  }
  return out;
}

// --- Consent.

Result<std::string> SandboxState::IssueCode(std::string_view client_id, std::int64_t account_id) {
  const std::lock_guard lock(mutex_);
  return IssueCodeLocked(client_id, account_id);
}

Result<std::string> SandboxState::IssueCodeLocked(std::string_view client_id,
                                                  std::int64_t account_id) {
  const auto integration = integrations_.find(client_id);
  const Account* account = FindAccountLocked(account_id);
  if (integration == integrations_.end() || account == nullptr) {
    return Fail(Errc::kNotFound);
  }
  std::string code = std::string(kCodePrefix) + RandomHex(kCodeRandomBytes);
  codes_.emplace(code,
                 Code{integration->second.client_id,
                      account->id,
                      account->user_id,
                      integration->second.redirect_uri,
                      NowLocked() + config_.code_ttl,
                      false});
  installed_.emplace(account->id, integration->second.client_id);
  CountLocked(account->id, &Counters::codes_issued);
  return code;
}

Result<void> SandboxState::MarkInstalled(std::int64_t account_id, std::string_view client_id) {
  const std::lock_guard lock(mutex_);
  if (FindAccountLocked(account_id) == nullptr || !integrations_.contains(client_id)) {
    return Fail(Errc::kNotFound);
  }
  installed_.emplace(account_id, std::string(client_id));
  return {};
}

bool SandboxState::IsInstalled(std::int64_t account_id, std::string_view client_id) const {
  const std::lock_guard lock(mutex_);
  return installed_.contains({account_id, std::string(client_id)});
}

Result<std::string> SandboxState::InstallWidget(std::int64_t account_id,
                                                std::string_view client_id) {
  const std::lock_guard lock(mutex_);
  auto code = IssueCodeLocked(client_id, account_id);
  if (code) {
    CountLocked(account_id, &Counters::widget_installs);
  }
  return code;
}

void SandboxState::CountHook(std::int64_t account_id, bool delivered) {
  const std::lock_guard lock(mutex_);
  CountLocked(account_id, delivered ? &Counters::hooks_delivered : &Counters::hooks_failed);
}

ApiKeyExchangeOutcome SandboxState::ExchangeApiKey(const ApiKeyExchange& request,
                                                   std::int64_t host_account_id) {
  const auto refuse = [](int status, std::string detail) {
    ApiKeyExchangeOutcome out;
    out.status = status;
    out.detail = std::move(detail);
    return out;
  };
  const std::lock_guard lock(mutex_);
  CountLocked(host_account_id, &Counters::exchange_api_key_requests);
  std::string missing;
  for (const auto& [name, value] : {std::pair{"login", &request.login},
                                    std::pair{"api_key", &request.api_key},
                                    std::pair{"client_uuid", &request.client_uuid},
                                    std::pair{"client_secret", &request.client_secret}}) {
    if (value->empty()) {
      missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
  }
  if (!missing.empty()) {
    return refuse(400, "Missing or empty: " + missing);
  }
  const Account* account = FindAccountLocked(host_account_id);
  // The login is an email: case does not matter. The key is a secret: constant time.
  if (account == nullptr || Lower(request.login) != Lower(account->user_login) ||
      !ConstantTimeEquals(request.api_key, account->user_api_key)) {
    return refuse(403, "Wrong login or api_key for this account");
  }
  const auto integration = integrations_.find(request.client_uuid);
  if (integration == integrations_.end() ||
      !ConstantTimeEquals(request.client_secret, integration->second.client_secret)) {
    return refuse(403, "Wrong client_uuid or client_secret");
  }
  if (!installed_.contains({account->id, integration->second.client_id})) {
    return refuse(403, "The integration is not installed in this account");
  }
  const TimePoint now = NowLocked();
  const auto key = std::pair{account->user_id, integration->second.client_id};
  if (const auto last = api_key_exchanges_.find(key);
      last != api_key_exchanges_.end() && now < last->second + kApiKeyExchangeInterval) {
    CountLocked(account->id, &Counters::exchange_api_key_rate_limited);
    auto out = refuse(429, "At most one call per 5 minutes for this user and integration");
    out.retry_after =
        std::chrono::ceil<std::chrono::seconds>(last->second + kApiKeyExchangeInterval - now);
    return out;
  }
  auto code = IssueCodeLocked(integration->second.client_id, account->id);
  if (!code) {
    return refuse(403, "The integration is not installed in this account");
  }
  api_key_exchanges_[key] = now;
  CountLocked(account->id, &Counters::exchange_api_key_accepted);
  ApiKeyExchangeOutcome out;
  out.code = std::move(*code);
  out.redirect_uri = integration->second.redirect_uri;
  return out;
}

// --- Token endpoint.

TokenOutcome SandboxState::ExchangeToken(const TokenRequest& request,
                                         std::int64_t host_account_id) {
  const std::lock_guard lock(mutex_);
  CountLocked(host_account_id, &Counters::token_requests);
  const bool by_code = request.grant_type == "authorization_code";
  if (!by_code && request.grant_type != "refresh_token") {
    return Refuse(400, hint::kGrantType);
  }
  const auto integration = integrations_.find(request.client_id);
  if (request.client_id.empty() || integration == integrations_.end()) {
    return Refuse(400, hint::kClientId);
  }
  if (!ConstantTimeEquals(request.client_secret, integration->second.client_secret)) {
    return Refuse(400, hint::kClientSecret);
  }
  if (request.redirect_uri != integration->second.redirect_uri) {
    return Refuse(400, hint::kRedirectUri);
  }
  return by_code ? ExchangeCodeLocked(request, host_account_id)
                 : RefreshLocked(request, host_account_id);
}

TokenOutcome SandboxState::ExchangeCodeLocked(const TokenRequest& request,
                                              std::int64_t host_account_id) {
  if (request.code.empty()) {
    return Refuse(400, hint::kCodeParam);
  }
  const auto it = codes_.find(request.code);
  // Real codes are encrypted blobs: unknown and another client's look the same ("cannot decrypt").
  if (it == codes_.end() || it->second.client_id != request.client_id) {
    return Refuse(400, hint::kCodeUndecryptable);
  }
  Code& code = it->second;
  if (code.redirect_uri != request.redirect_uri) {
    return Refuse(400, hint::kRedirectUri);
  }
  if (code.account_id != host_account_id) {
    return Refuse(400, hint::kInvalidAccount);
  }
  if (code.used) {
    CountLocked(code.account_id, &Counters::code_reuses);
    return Refuse(400, hint::kCodeRevoked);
  }
  if (NowLocked() >= code.expires_at) {
    return Refuse(400, hint::kCodeExpired);
  }
  code.used = true;
  CountLocked(code.account_id, &Counters::codes_exchanged);
  const std::uint64_t grant_id = next_grant_id_++;
  grants_.emplace(
      grant_id, Grant{code.client_id, code.account_id, code.user_id, RandomUuid(), std::string()});
  return IssueLocked(grant_id, std::string());
}

TokenOutcome SandboxState::RefreshLocked(const TokenRequest& request,
                                         std::int64_t host_account_id) {
  if (request.refresh_token.empty()) {
    return Refuse(400, hint::kRefreshTokenParam);
  }
  const auto it = refresh_tokens_.find(request.refresh_token);
  if (it == refresh_tokens_.end()) {
    return Refuse(400, hint::kInvalidRefreshToken);
  }
  RefreshToken& token = it->second;
  const Grant& grant = grants_.at(token.grant_id);
  if (grant.client_id != request.client_id) {
    return Refuse(401, hint::kTokenNotLinked);
  }
  // Dead because it was used (strict, or its grace ended): a reuse (protocol §9.1). Dead because
  // the control API revoked it: the same answer, but not a reuse.
  const bool used_up = token.used && config_.rotation == Rotation::kStrict;
  if (token.revoked || used_up) {
    if (token.used) {
      CountLocked(grant.account_id, &Counters::refresh_token_reuses);
    }
    return Refuse(401, hint::kTokenRevoked);
  }
  if (NowLocked() >= token.expires_at) {
    return Refuse(401, hint::kTokenExpired);
  }
  if (grant.account_id != host_account_id) {
    return Refuse(400, hint::kInvalidAccount);
  }
  token.used = true;
  switch (config_.rotation) {
    case Rotation::kStrict:
      token.revoked = true;
      break;
    case Rotation::kGraceUntilNewUsed:
      break;  // stays valid until the token issued now is first presented
  }
  // Presenting this token ends the grace of the one it replaced (already dead under kStrict).
  if (const auto parent = refresh_tokens_.find(token.parent); parent != refresh_tokens_.end()) {
    parent->second.revoked = true;
  }
  CountLocked(grant.account_id, &Counters::refreshes);
  return IssueLocked(token.grant_id, request.refresh_token);
}

IssuedTokens SandboxState::IssueLocked(std::uint64_t grant_id,
                                       const std::string& parent_refresh_token) {
  Grant& grant = grants_.at(grant_id);
  // A new pair revokes the grant's previous access token (league/oauth2-server does), unless
  // switched off (protocol §3.4: UNCONFIRMED).
  if (const auto old = access_tokens_.find(grant.current_access_jti);
      config_.revoke_access_token_on_refresh && old != access_tokens_.end()) {
    old->second.revoked = true;
  }
  const Account* account = FindAccountLocked(grant.account_id);
  const auto integration = integrations_.find(grant.client_id);

  IssuedTokens out;
  out.jti = RandomHex(kJtiBytes);
  out.client_id = grant.client_id;
  out.account_id = grant.account_id;
  out.user_id = grant.user_id;
  out.issued_at = ToUnix(NowLocked());
  out.expires_in = config_.access_token_ttl.count();
  out.expires_at = out.issued_at + out.expires_in;
  if (account != nullptr) {
    out.base_domain = std::string(BaseDomain(account->flavor));
    out.api_domain = account->api_domain;
    out.flavor = account->flavor;
  }
  out.hash_uuid = grant.hash_uuid;
  if (integration != integrations_.end()) {
    out.scopes = integration->second.scopes;
  }
  out.refresh_token = std::string(kCodePrefix) + RandomHex(kRefreshRandomBytes);

  access_tokens_.emplace(out.jti, AccessToken{grant_id, FromUnix(out.expires_at), false});
  refresh_tokens_.emplace(out.refresh_token,
                          RefreshToken{grant_id,
                                       FromUnix(out.issued_at) + config_.refresh_token_ttl,
                                       parent_refresh_token,
                                       false});
  grant.current_access_jti = out.jti;
  return out;
}

Result<IssuedTokens> SandboxState::IssueLongLivedToken(std::string_view client_id,
                                                       std::int64_t account_id,
                                                       std::int64_t days) {
  if (days < kLongLivedMinDays || days > kLongLivedMaxDays) {
    return Fail(Errc::kInvalidArgument);
  }
  const std::lock_guard lock(mutex_);
  const auto integration = integrations_.find(client_id);
  const Account* account = FindAccountLocked(account_id);
  if (integration == integrations_.end() || account == nullptr) {
    return Fail(Errc::kNotFound);
  }
  constexpr std::int64_t kDay = 24 * 60 * 60;
  const std::int64_t now = ToUnix(NowLocked());
  const std::uint64_t grant_id = next_grant_id_++;
  Grant& grant = grants_
                     .emplace(grant_id,
                              Grant{integration->second.client_id,
                                    account->id,
                                    account->user_id,
                                    RandomUuid(),
                                    std::string()})
                     .first->second;
  IssuedTokens out;
  out.jti = RandomHex(kJtiBytes);
  out.client_id = grant.client_id;
  out.account_id = account->id;
  out.user_id = account->user_id;
  out.issued_at = now;
  out.expires_at = (now / kDay + days) * kDay;  // 00:00 UTC of the chosen day
  out.expires_in = out.expires_at - now;
  out.base_domain = std::string(BaseDomain(account->flavor));
  out.api_domain = account->api_domain;
  out.flavor = account->flavor;
  out.hash_uuid = grant.hash_uuid;
  out.scopes = integration->second.scopes;
  access_tokens_.emplace(out.jti, AccessToken{grant_id, FromUnix(out.expires_at), false});
  grant.current_access_jti = out.jti;
  CountLocked(account->id, &Counters::long_lived_tokens_issued);
  return out;
}

// --- API side.

std::optional<std::int64_t> SandboxState::CheckAccessToken(std::string_view jti,
                                                           std::int64_t account_id) const {
  const std::lock_guard lock(mutex_);
  const auto it = access_tokens_.find(jti);
  if (it == access_tokens_.end() || it->second.revoked || NowLocked() >= it->second.expires_at) {
    return std::nullopt;
  }
  const Grant& grant = grants_.at(it->second.grant_id);
  if (grant.account_id != account_id) {
    return std::nullopt;
  }
  return grant.user_id;
}

ApiAdmission SandboxState::AdmitApiRequest(std::int64_t account_id, std::string_view jti) {
  const std::lock_guard lock(mutex_);
  const TimePoint now = NowLocked();
  CountLocked(account_id, &Counters::api_requests);

  // Every arrival enters the sliding window (now - 1 s, now], refused ones too.
  ApiLimiter& limiter = limiters_[account_id];
  while (!limiter.arrivals.empty() && limiter.arrivals.front() <= now - kOneSecond) {
    limiter.arrivals.pop_front();
  }
  limiter.arrivals.push_back(now);
  const std::uint64_t in_window = limiter.arrivals.size();
  counters_.max_api_requests_per_second =
      std::max(counters_.max_api_requests_per_second, in_window);
  Counters& mine = account_counters_[account_id];
  mine.max_api_requests_per_second = std::max(mine.max_api_requests_per_second, in_window);

  ApiAdmission out;
  if (now < limiter.blocked_until) {
    CountLocked(account_id, &Counters::api_blocked);
    out.verdict = ApiVerdict::kBlocked;
    return out;
  }
  if (config_.api_rate_limit_rps > 0 && in_window > config_.api_rate_limit_rps) {
    CountLocked(account_id, &Counters::api_rate_limited);
    out.verdict = ApiVerdict::kRateLimited;
    out.retry_after = config_.api_retry_after;
    while (!limiter.violations.empty() &&
           limiter.violations.front() <= now - config_.api_violation_window) {
      limiter.violations.pop_front();
    }
    limiter.violations.push_back(now);
    if (config_.api_block_after_violations > 0 &&
        limiter.violations.size() >= config_.api_block_after_violations) {
      limiter.blocked_until = now + config_.api_block_duration;
      limiter.violations.clear();
      out.block_started = true;
    }
    return out;
  }
  const auto token = access_tokens_.find(jti);
  if (jti.empty() || token == access_tokens_.end() || token->second.revoked ||
      now >= token->second.expires_at ||
      grants_.at(token->second.grant_id).account_id != account_id) {
    CountLocked(account_id, &Counters::api_unauthorized);
    out.verdict = ApiVerdict::kUnauthorized;
    return out;
  }
  out.verdict = ApiVerdict::kAllowed;
  out.user_id = grants_.at(token->second.grant_id).user_id;
  return out;
}

bool SandboxState::RefreshTokenLiveLocked(const RefreshToken& token) const {
  // A used token that survived a switch from grace to strict is dead under strict.
  const bool used_up = token.used && config_.rotation == Rotation::kStrict;
  return !token.revoked && !used_up && NowLocked() < token.expires_at;
}

std::optional<Account> SandboxState::AccountOfRefreshTokenLocked(
    std::string_view refresh_token) const {
  const auto it = refresh_tokens_.find(refresh_token);
  if (it == refresh_tokens_.end() || !RefreshTokenLiveLocked(it->second)) {
    return std::nullopt;
  }
  const Account* account = FindAccountLocked(grants_.at(it->second.grant_id).account_id);
  return account == nullptr ? std::nullopt : std::optional<Account>(*account);
}

std::optional<Account> SandboxState::AccountOfRefreshToken(std::string_view refresh_token) const {
  const std::lock_guard lock(mutex_);
  return AccountOfRefreshTokenLocked(refresh_token);
}

std::optional<Account> SandboxState::LookUpSubdomain(std::string_view refresh_token) {
  const std::lock_guard lock(mutex_);
  auto account = AccountOfRefreshTokenLocked(refresh_token);
  CountLocked(account ? account->id : 0, &Counters::subdomain_lookups);
  return account;
}

// --- Faults.

void SandboxState::SetFaults(const std::array<std::optional<Fault>, kFaultTargets>& faults) {
  const std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < kFaultTargets; ++i) {
    if (faults[i]) {
      faults_[i] = faults[i];
    }
  }
}

void SandboxState::ClearFaults() {
  const std::lock_guard lock(mutex_);
  faults_ = {};
}

std::array<std::optional<Fault>, kFaultTargets> SandboxState::Faults() const {
  const std::lock_guard lock(mutex_);
  return faults_;
}

std::optional<Fault> SandboxState::TakeFault(FaultTarget target,
                                             std::int64_t host_account_id,
                                             std::string_view path) {
  const std::lock_guard lock(mutex_);
  std::optional<Fault>& pending = faults_[static_cast<std::size_t>(target)];
  if (!pending || pending->times == 0) {
    pending.reset();
    return std::nullopt;
  }
  if (!path.starts_with(pending->path_prefix)) {
    return std::nullopt;
  }
  Fault taken = *pending;
  taken.times = 1;
  if (--pending->times == 0) {
    pending.reset();
  }
  if (target == FaultTarget::kTokenEndpoint) {
    CountLocked(host_account_id, &Counters::token_endpoint_faults);
  }
  CountLocked(host_account_id, &Counters::faults);
  return taken;
}

// --- Journal.

void SandboxState::Record(JournalEntry entry) {
  const std::lock_guard lock(mutex_);
  journal_.push_back(std::move(entry));
  while (journal_.size() > config_.journal_capacity) {
    journal_.pop_front();
  }
}

JournalSnapshot SandboxState::Journal() const {
  const std::lock_guard lock(mutex_);
  JournalSnapshot out{counters_, {}, std::vector<JournalEntry>(journal_.begin(), journal_.end())};
  for (const Account& a : accounts_) {
    const auto it = account_counters_.find(a.id);
    out.accounts[a.id] = it == account_counters_.end() ? Counters{} : it->second;
  }
  return out;
}

void SandboxState::ResetJournal() {
  const std::lock_guard lock(mutex_);
  counters_ = Counters{};
  account_counters_.clear();
  journal_.clear();
}

void SandboxState::CountLocked(std::int64_t account_id, std::uint64_t Counters::*field) {
  ++(counters_.*field);
  if (account_id != 0) {
    ++(account_counters_[account_id].*field);
  }
}

}  // namespace amoauth::sandbox
