#include "sandbox_state.hpp"

#include <algorithm>
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

}  // namespace

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

SandboxState::SandboxState(StateConfig config, std::vector<Account> accounts)
    : config_(config), accounts_(std::move(accounts)) {
  for (Account& a : accounts_) {
    a.subdomain = Lower(a.subdomain);
    if (a.api_domain.empty()) {
      a.api_domain = std::string(DefaultApiDomain(a.flavor));
    }
    a.api_domain = Lower(a.api_domain);
  }
}

// --- Clock.

TimePoint SandboxState::NowLocked() const {
  return std::chrono::time_point_cast<TimePoint::duration>(std::chrono::system_clock::now() +
                                                           clock_offset_);
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
  ++counters_.codes_issued;
  return code;
}

// --- Token endpoint.

TokenOutcome SandboxState::ExchangeToken(const TokenRequest& request,
                                         std::int64_t host_account_id) {
  const std::lock_guard lock(mutex_);
  ++counters_.token_requests;
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
    ++counters_.code_reuses;
    return Refuse(400, hint::kCodeRevoked);
  }
  if (NowLocked() >= code.expires_at) {
    return Refuse(400, hint::kCodeExpired);
  }
  code.used = true;
  ++counters_.codes_exchanged;
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
  if (token.revoked) {
    ++counters_.refresh_token_reuses;
    return Refuse(401, hint::kTokenRevoked);
  }
  if (NowLocked() >= token.expires_at) {
    return Refuse(401, hint::kTokenExpired);
  }
  if (grant.account_id != host_account_id) {
    return Refuse(400, hint::kInvalidAccount);
  }
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
  ++counters_.refreshes;
  return IssueLocked(token.grant_id, request.refresh_token);
}

IssuedTokens SandboxState::IssueLocked(std::uint64_t grant_id,
                                       const std::string& parent_refresh_token) {
  Grant& grant = grants_.at(grant_id);
  // A new pair revokes the grant's previous access token (league/oauth2-server does).
  if (const auto old = access_tokens_.find(grant.current_access_jti); old != access_tokens_.end()) {
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

std::optional<Account> SandboxState::AccountOfRefreshToken(std::string_view refresh_token) const {
  const std::lock_guard lock(mutex_);
  const auto it = refresh_tokens_.find(refresh_token);
  if (it == refresh_tokens_.end() || it->second.revoked || NowLocked() >= it->second.expires_at) {
    return std::nullopt;
  }
  const Account* account = FindAccountLocked(grants_.at(it->second.grant_id).account_id);
  return account == nullptr ? std::nullopt : std::optional<Account>(*account);
}

// --- Journal.

void SandboxState::Record(JournalEntry entry) {
  const std::lock_guard lock(mutex_);
  journal_.push_back(std::move(entry));
  while (journal_.size() > config_.journal_capacity) {
    journal_.pop_front();
  }
}

void SandboxState::CountApiRequest(bool authorized) {
  const std::lock_guard lock(mutex_);
  ++counters_.api_requests;
  if (!authorized) {
    ++counters_.api_unauthorized;
  }
}

JournalSnapshot SandboxState::Journal() const {
  const std::lock_guard lock(mutex_);
  return JournalSnapshot{counters_, std::vector<JournalEntry>(journal_.begin(), journal_.end())};
}

}  // namespace amoauth::sandbox
