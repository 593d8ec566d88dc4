#include "sandbox_state.hpp"

#include <array>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

namespace amoauth::sandbox {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::int64_t kAmoAccount = 30000001;
constexpr std::int64_t kKommoAccount = 31000001;
constexpr std::string_view kRedirect = "https://app.example.com/oauth/callback";

class SandboxStateTest : public ::testing::Test {
 protected:
  explicit SandboxStateTest(Rotation rotation = Rotation::kStrict)
      : state_(Config(rotation), DefaultAccounts()) {
    Integration i;
    i.client_id = "11111111-2222-4333-8444-555555555555";
    i.client_secret = std::string(64, 's');
    i.redirect_uri = std::string(kRedirect);
    integration_ = state_.PutIntegration(i);
    Integration other;
    other.redirect_uri = std::string(kRedirect);
    other_ = state_.PutIntegration(other);
  }

  static StateConfig Config(Rotation rotation) {
    StateConfig c;
    c.rotation = rotation;
    return c;
  }

  TokenRequest CodeRequest(const std::string& code) const {
    return TokenRequest{"authorization_code",
                        integration_.client_id,
                        integration_.client_secret,
                        integration_.redirect_uri,
                        code,
                        ""};
  }

  TokenRequest RefreshRequest(const std::string& refresh_token) const {
    return TokenRequest{"refresh_token",
                        integration_.client_id,
                        integration_.client_secret,
                        integration_.redirect_uri,
                        "",
                        refresh_token};
  }

  std::string NewCode(std::int64_t account = kAmoAccount) {
    auto code = state_.IssueCode(integration_.client_id, account);
    EXPECT_TRUE(code.has_value());
    return code.has_value() ? *code : std::string();
  }

  IssuedTokens Exchange(std::int64_t account = kAmoAccount) {
    const TokenOutcome out = state_.ExchangeToken(CodeRequest(NewCode(account)), account);
    EXPECT_TRUE(std::holds_alternative<IssuedTokens>(out));
    return std::holds_alternative<IssuedTokens>(out) ? std::get<IssuedTokens>(out) : IssuedTokens{};
  }

  SandboxState state_;
  Integration integration_;
  Integration other_;
};

class GraceRotationTest : public SandboxStateTest {
 protected:
  GraceRotationTest() : SandboxStateTest(Rotation::kGraceUntilNewUsed) {}
};

::testing::AssertionResult Refused(const TokenOutcome& out, int status, std::string_view hint) {
  const auto* error = std::get_if<OAuthError>(&out);
  if (error == nullptr) {
    return ::testing::AssertionFailure() << "tokens were issued";
  }
  if (error->status != status || error->hint != hint) {
    return ::testing::AssertionFailure() << "got " << error->status << " '" << error->hint << "'";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(SandboxStateTest, DefaultsAndGeneratedIds) {
  EXPECT_EQ(other_.client_id.size(), 36U);
  EXPECT_EQ(other_.client_id[14], '4');
  EXPECT_EQ(other_.client_secret.size(), 64U);
  const auto accounts = state_.Accounts();
  ASSERT_EQ(accounts.size(), 2U);
  EXPECT_EQ(AccountHost(accounts[0]), "example.amocrm.ru");
  EXPECT_EQ(accounts[0].api_domain, "api-b.amocrm.ru");
  EXPECT_EQ(accounts[0].user_id, 10000001);
  EXPECT_EQ(AccountHost(accounts[1]), "example.kommo.com");
  EXPECT_EQ(accounts[1].api_domain, "api-c.kommo.com");
  EXPECT_EQ(accounts[1].user_id, 11000001);
}

TEST_F(SandboxStateTest, AddIntegrationRefusesDuplicateClientId) {
  Integration dup;
  dup.client_id = integration_.client_id;
  EXPECT_TRUE(Is(state_.AddIntegration(dup).error(), Errc::kConflict));
}

TEST_F(SandboxStateTest, ResolvesHosts) {
  EXPECT_EQ(state_.ResolveHost("example.amocrm.ru").kind, HostKind::kAccount);
  EXPECT_EQ(state_.ResolveHost("EXAMPLE.amocrm.ru").account.id, kAmoAccount);
  EXPECT_EQ(state_.ResolveHost("example.kommo.com").account.id, kKommoAccount);
  EXPECT_EQ(state_.ResolveHost("example.amocrm.com").account.id, kKommoAccount);
  EXPECT_EQ(state_.ResolveHost("api-b.amocrm.ru").kind, HostKind::kApi);
  EXPECT_EQ(state_.ResolveHost("api-c.kommo.com").kind, HostKind::kApi);
  EXPECT_EQ(state_.ResolveHost("other.amocrm.ru").kind, HostKind::kUnknown);
  EXPECT_EQ(state_.ResolveHost("www.amocrm.ru").kind, HostKind::kUnknown);
}

TEST_F(SandboxStateTest, CodeLooksLikeAmoCrms) {
  const std::string code = NewCode();
  EXPECT_TRUE(code.starts_with("def50200"));
  EXPECT_GE(code.size(), 1008U);
  EXPECT_EQ(code.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(SandboxStateTest, ExchangesCodeOnce) {
  const std::string code = NewCode();
  const TokenOutcome first = state_.ExchangeToken(CodeRequest(code), kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(first));
  const auto& tokens = std::get<IssuedTokens>(first);
  EXPECT_EQ(tokens.jti.size(), 80U);
  EXPECT_EQ(tokens.client_id, integration_.client_id);
  EXPECT_EQ(tokens.account_id, kAmoAccount);
  EXPECT_EQ(tokens.user_id, 10000001);
  EXPECT_EQ(tokens.expires_in, 86400);
  EXPECT_EQ(tokens.expires_at - tokens.issued_at, 86400);
  EXPECT_EQ(tokens.base_domain, "amocrm.ru");
  EXPECT_EQ(tokens.api_domain, "api-b.amocrm.ru");
  EXPECT_EQ(tokens.scopes, integration_.scopes);
  EXPECT_TRUE(tokens.refresh_token.starts_with("def50200"));
  EXPECT_EQ(tokens.flavor, Flavor::kAmocrm);

  EXPECT_TRUE(
      Refused(state_.ExchangeToken(CodeRequest(code), kAmoAccount), 400, hint::kCodeRevoked));
  const auto journal = state_.Journal();
  EXPECT_EQ(journal.counters.codes_issued, 1U);
  EXPECT_EQ(journal.counters.codes_exchanged, 1U);
  EXPECT_EQ(journal.counters.code_reuses, 1U);
  EXPECT_EQ(journal.counters.token_requests, 2U);
}

TEST_F(SandboxStateTest, CodeExpiresAfterTwentyMinutes) {
  const std::string code = NewCode();
  state_.AdvanceClock(seconds{20 * 60 + 1});
  EXPECT_TRUE(
      Refused(state_.ExchangeToken(CodeRequest(code), kAmoAccount), 400, hint::kCodeExpired));
}

TEST_F(SandboxStateTest, CodeStillValidJustBeforeExpiry) {
  const std::string code = NewCode();
  state_.AdvanceClock(seconds{19 * 60});
  EXPECT_TRUE(
      std::holds_alternative<IssuedTokens>(state_.ExchangeToken(CodeRequest(code), kAmoAccount)));
}

TEST_F(SandboxStateTest, ValidatesInTheDocumentedOrder) {
  const std::string code = NewCode();
  TokenRequest r = CodeRequest(code);

  r.grant_type = "password";
  r.client_id.clear();  // grant_type is checked first
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kGrantType));
  r.grant_type = "authorization_code";
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kClientId));
  r.client_id = "no-such-client";
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kClientId));
  r.client_id = integration_.client_id;
  r.client_secret = std::string(64, 'x');
  r.redirect_uri = "https://elsewhere.example.com/";
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kClientSecret));
  r.client_secret = integration_.client_secret + "x";
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kClientSecret));
  r.client_secret = integration_.client_secret;
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kRedirectUri));
  r.redirect_uri = std::string(kRedirect) + "/";  // byte for byte, trailing slash included
  EXPECT_TRUE(Refused(state_.ExchangeToken(r, kAmoAccount), 400, hint::kRedirectUri));
  r.redirect_uri = std::string(kRedirect);
  // None of the refusals above consumed the code.
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(state_.ExchangeToken(r, kAmoAccount)));
}

TEST_F(SandboxStateTest, RefusesGarbageForeignAndMissingCodes) {
  EXPECT_TRUE(Refused(state_.ExchangeToken(CodeRequest("def50200abc"), kAmoAccount),
                      400,
                      hint::kCodeUndecryptable));
  EXPECT_TRUE(Refused(state_.ExchangeToken(CodeRequest(""), kAmoAccount), 400, hint::kCodeParam));

  // A code issued to another integration cannot be "decrypted" with this client's keys.
  const auto foreign = state_.IssueCode(other_.client_id, kAmoAccount);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_TRUE(Refused(
      state_.ExchangeToken(CodeRequest(*foreign), kAmoAccount), 400, hint::kCodeUndecryptable));
}

TEST_F(SandboxStateTest, CodeOnAnotherAccountsHostIsInvalidAccount) {
  const std::string code = NewCode(kAmoAccount);
  EXPECT_TRUE(
      Refused(state_.ExchangeToken(CodeRequest(code), kKommoAccount), 400, hint::kInvalidAccount));
  // The refusal did not consume it.
  EXPECT_TRUE(
      std::holds_alternative<IssuedTokens>(state_.ExchangeToken(CodeRequest(code), kAmoAccount)));
}

TEST_F(SandboxStateTest, StrictRotationKillsTheUsedRefreshTokenAtOnce) {
  const IssuedTokens first = Exchange();
  const TokenOutcome second =
      state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(second));
  EXPECT_NE(std::get<IssuedTokens>(second).refresh_token, first.refresh_token);

  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount),
                      401,
                      hint::kTokenRevoked));
  const auto third = state_.ExchangeToken(
      RefreshRequest(std::get<IssuedTokens>(second).refresh_token), kAmoAccount);
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(third));

  const auto counters = state_.Journal().counters;
  EXPECT_EQ(counters.refreshes, 2U);
  EXPECT_EQ(counters.refresh_token_reuses, 1U);
}

TEST_F(GraceRotationTest, OldRefreshTokenLivesUntilTheNewOneIsUsed) {
  const IssuedTokens first = Exchange(kKommoAccount);
  const auto second = state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(second));
  // A lost response: the client retries with the old token, and it still works.
  const auto retry = state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(retry));
  // The new one is presented: the old one dies.
  const auto third = state_.ExchangeToken(
      RefreshRequest(std::get<IssuedTokens>(retry).refresh_token), kKommoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(third));
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount),
                      401,
                      hint::kTokenRevoked));
}

TEST_F(SandboxStateTest, RefreshRefusals) {
  const IssuedTokens tokens = Exchange();
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest("def50200ff"), kAmoAccount),
                      400,
                      hint::kInvalidRefreshToken));
  EXPECT_TRUE(Refused(
      state_.ExchangeToken(RefreshRequest(""), kAmoAccount), 400, hint::kRefreshTokenParam));

  TokenRequest foreign = RefreshRequest(tokens.refresh_token);
  foreign.client_id = other_.client_id;
  foreign.client_secret = other_.client_secret;
  EXPECT_TRUE(Refused(state_.ExchangeToken(foreign, kAmoAccount), 401, hint::kTokenNotLinked));

  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(tokens.refresh_token), kKommoAccount),
                      400,
                      hint::kInvalidAccount));

  TokenRequest wrong_redirect = RefreshRequest(tokens.refresh_token);
  wrong_redirect.redirect_uri = "https://app.example.com/";
  EXPECT_TRUE(Refused(state_.ExchangeToken(wrong_redirect, kAmoAccount), 400, hint::kRedirectUri));

  // None of these consumed the token.
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(tokens.refresh_token), kAmoAccount)));
}

TEST_F(SandboxStateTest, RefreshTokenExpires) {
  const IssuedTokens tokens = Exchange();
  state_.AdvanceClock(seconds{90 * 24 * 60 * 60 + 1});
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(tokens.refresh_token), kAmoAccount),
                      401,
                      hint::kTokenExpired));
}

TEST_F(SandboxStateTest, AccessTokenLivesForItsTtlOnItsOwnAccount) {
  const IssuedTokens tokens = Exchange();
  EXPECT_EQ(state_.CheckAccessToken(tokens.jti, kAmoAccount), 10000001);
  EXPECT_EQ(state_.CheckAccessToken(tokens.jti, kKommoAccount), std::nullopt);
  EXPECT_EQ(state_.CheckAccessToken("unknown", kAmoAccount), std::nullopt);
  state_.AdvanceClock(seconds{86400});
  EXPECT_EQ(state_.CheckAccessToken(tokens.jti, kAmoAccount), std::nullopt);
}

TEST_F(SandboxStateTest, RefreshRevokesThePreviousAccessToken) {
  const IssuedTokens first = Exchange();
  const auto second = state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(second));
  EXPECT_EQ(state_.CheckAccessToken(first.jti, kAmoAccount), std::nullopt);
  EXPECT_TRUE(state_.CheckAccessToken(std::get<IssuedTokens>(second).jti, kAmoAccount));
}

TEST_F(SandboxStateTest, AccountOfRefreshTokenDoesNotConsumeIt) {
  const IssuedTokens tokens = Exchange(kKommoAccount);
  const auto account = state_.AccountOfRefreshToken(tokens.refresh_token);
  ASSERT_TRUE(account.has_value());
  EXPECT_EQ(account->id, kKommoAccount);
  EXPECT_EQ(tokens.flavor, Flavor::kKommo);
  EXPECT_EQ(tokens.base_domain, "kommo.com");
  EXPECT_FALSE(state_.AccountOfRefreshToken("nope").has_value());
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(tokens.refresh_token), kKommoAccount)));
  EXPECT_FALSE(state_.AccountOfRefreshToken(tokens.refresh_token).has_value());
}

TEST_F(SandboxStateTest, ClockOnlyMovesForward) {
  const auto before = state_.Now();
  state_.AdvanceClock(seconds{-100});
  EXPECT_EQ(state_.ClockOffset(), seconds{0});
  state_.AdvanceClock(seconds{3600});
  EXPECT_EQ(state_.ClockOffset(), seconds{3600});
  EXPECT_GE(state_.Now() - before, seconds{3600});
}

TEST(SandboxStateJournal, KeepsTheLastThousandRequests) {
  SandboxState state(StateConfig{}, DefaultAccounts());
  for (int i = 0; i < 1005; ++i) {
    state.Record(JournalEntry{"example.amocrm.ru", "GET", "/api/v4/" + std::to_string(i), 200});
  }
  const auto journal = state.Journal();
  ASSERT_EQ(journal.requests.size(), 1000U);
  EXPECT_EQ(journal.requests.front().path, "/api/v4/5");
  EXPECT_EQ(journal.requests.back().path, "/api/v4/1004");
}

// --- Configuration.

TEST(SandboxStateConfig, DefaultsMatchOptionsAndAreValid) {
  const StateConfig from_options = ConfigFromOptions(Options{});
  const StateConfig defaults;
  EXPECT_EQ(from_options.code_ttl, defaults.code_ttl);
  EXPECT_EQ(from_options.access_token_ttl, defaults.access_token_ttl);
  EXPECT_EQ(from_options.refresh_token_ttl, defaults.refresh_token_ttl);
  EXPECT_EQ(from_options.rotation, defaults.rotation);
  EXPECT_EQ(from_options.revoke_access_token_on_refresh, defaults.revoke_access_token_on_refresh);
  EXPECT_EQ(from_options.api_rate_limit_rps, defaults.api_rate_limit_rps);
  EXPECT_EQ(from_options.api_block_after_violations, defaults.api_block_after_violations);
  EXPECT_EQ(from_options.api_violation_window, defaults.api_violation_window);
  EXPECT_EQ(from_options.api_block_duration, defaults.api_block_duration);
  EXPECT_EQ(from_options.api_retry_after, defaults.api_retry_after);
  EXPECT_EQ(ValidateConfig(defaults), std::nullopt);
  EXPECT_EQ(defaults.api_rate_limit_rps, 7U);
  EXPECT_EQ(defaults.api_block_duration, seconds{15 * 60});
  EXPECT_TRUE(defaults.revoke_access_token_on_refresh);
}

TEST(SandboxStateConfig, ValidateNamesTheBadField) {
  StateConfig c;
  c.code_ttl = seconds{0};
  EXPECT_EQ(ValidateConfig(c), "code_ttl_seconds must be an integer from 1 to 315360000");
  c = StateConfig{};
  c.api_rate_limit_rps = 10001;
  EXPECT_EQ(ValidateConfig(c), "api_rate_limit_rps must be an integer from 0 to 10000");
  c = StateConfig{};
  c.api_violation_window = seconds{0};
  EXPECT_TRUE(ValidateConfig(c).value_or("").starts_with("api_violation_window_seconds"));
  c = StateConfig{};
  c.api_retry_after = seconds{-1};
  EXPECT_TRUE(ValidateConfig(c).value_or("").starts_with("api_retry_after_seconds"));
  c = StateConfig{};
  c.api_retry_after = seconds{0};
  c.api_rate_limit_rps = 0;
  c.api_block_after_violations = 0;
  EXPECT_EQ(ValidateConfig(c), std::nullopt);
}

TEST_F(SandboxStateTest, ApplyConfigIsAllOrNothing) {
  ConfigPatch bad;
  bad.access_token_ttl = seconds{60};
  bad.rotation = Rotation::kGraceUntilNewUsed;
  bad.api_block_after_violations = -1;
  EXPECT_EQ(state_.ApplyConfig(bad),
            "api_block_after_violations must be an integer from 0 to 1000000");
  EXPECT_EQ(state_.Config().access_token_ttl, seconds{86400});
  EXPECT_EQ(state_.Config().rotation, Rotation::kStrict);

  ConfigPatch huge;
  huge.api_rate_limit_rps = std::int64_t{1} << 40;  // would wrap in a uint32
  EXPECT_TRUE(state_.ApplyConfig(huge).has_value());
  EXPECT_EQ(state_.Config().api_rate_limit_rps, 7U);

  ConfigPatch good;
  good.access_token_ttl = seconds{60};
  good.api_rate_limit_rps = 0;
  EXPECT_EQ(state_.ApplyConfig(good), std::nullopt);
  EXPECT_EQ(state_.Config().access_token_ttl, seconds{60});
  EXPECT_EQ(state_.Config().api_rate_limit_rps, 0U);
  EXPECT_EQ(state_.Config().code_ttl, seconds{20 * 60});  // untouched
}

TEST_F(SandboxStateTest, LifetimesApplyToWhatIsIssuedNext) {
  const IssuedTokens before = Exchange();
  const std::string old_code = NewCode();
  ConfigPatch patch;
  patch.code_ttl = seconds{30};
  patch.access_token_ttl = seconds{120};
  patch.refresh_token_ttl = seconds{600};
  ASSERT_EQ(state_.ApplyConfig(patch), std::nullopt);

  const IssuedTokens after = Exchange();
  EXPECT_EQ(after.expires_in, 120);
  EXPECT_EQ(after.expires_at - after.issued_at, 120);
  const std::string new_code = NewCode();

  state_.AdvanceClock(seconds{121});
  EXPECT_EQ(state_.CheckAccessToken(after.jti, kAmoAccount), std::nullopt);
  EXPECT_TRUE(state_.CheckAccessToken(before.jti, kAmoAccount).has_value());  // issued at 24 h
  EXPECT_TRUE(
      Refused(state_.ExchangeToken(CodeRequest(new_code), kAmoAccount), 400, hint::kCodeExpired));
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(CodeRequest(old_code), kAmoAccount)));

  state_.AdvanceClock(seconds{600});
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(after.refresh_token), kAmoAccount),
                      401,
                      hint::kTokenExpired));
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(before.refresh_token), kAmoAccount)));
}

TEST_F(SandboxStateTest, RefreshCanLeaveTheOldAccessTokenAlive) {
  ConfigPatch patch;
  patch.revoke_access_token_on_refresh = false;
  ASSERT_EQ(state_.ApplyConfig(patch), std::nullopt);
  const IssuedTokens first = Exchange();
  const auto second = state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(second));
  EXPECT_TRUE(state_.CheckAccessToken(first.jti, kAmoAccount).has_value());
  EXPECT_TRUE(state_.CheckAccessToken(std::get<IssuedTokens>(second).jti, kAmoAccount));
  // It still expires on time.
  state_.AdvanceClock(seconds{86400});
  EXPECT_EQ(state_.CheckAccessToken(first.jti, kAmoAccount), std::nullopt);
}

// --- refresh_token_reuses is exact.

TEST_F(SandboxStateTest, EveryPresentationOfAUsedTokenIsAReuse) {
  const IssuedTokens first = Exchange();
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kAmoAccount),
                        401,
                        hint::kTokenRevoked));
  }
  // On the wrong host it is still a reuse: the token is dead before the host is looked at.
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount),
                      401,
                      hint::kTokenRevoked));
  EXPECT_EQ(state_.Journal().counters.refresh_token_reuses, 4U);
  EXPECT_EQ(state_.Journal().accounts.at(kAmoAccount).refresh_token_reuses, 4U);
  EXPECT_EQ(state_.Journal().accounts.at(kKommoAccount).refresh_token_reuses, 0U);
}

TEST_F(GraceRotationTest, PresentationsDuringTheGraceAreNotReuses) {
  const IssuedTokens first = Exchange(kKommoAccount);
  const auto second = state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(second));
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount)));
  EXPECT_EQ(state_.Journal().counters.refresh_token_reuses, 0U);
  EXPECT_EQ(state_.Journal().counters.refreshes, 2U);

  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(state_.ExchangeToken(
      RefreshRequest(std::get<IssuedTokens>(second).refresh_token), kKommoAccount)));
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount),
                      401,
                      hint::kTokenRevoked));
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount),
                      401,
                      hint::kTokenRevoked));
  EXPECT_EQ(state_.Journal().counters.refresh_token_reuses, 2U);
}

TEST_F(GraceRotationTest, SwitchingToStrictEndsEveryGrace) {
  const IssuedTokens first = Exchange(kKommoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount)));
  ConfigPatch strict;
  strict.rotation = Rotation::kStrict;
  ASSERT_EQ(state_.ApplyConfig(strict), std::nullopt);
  EXPECT_FALSE(state_.AccountOfRefreshToken(first.refresh_token).has_value());
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(first.refresh_token), kKommoAccount),
                      401,
                      hint::kTokenRevoked));
  EXPECT_EQ(state_.Journal().counters.refresh_token_reuses, 1U);
}

// --- Revocation.

TEST_F(SandboxStateTest, RevokeAccessLeavesRefreshTokensAlone) {
  const IssuedTokens a = Exchange();
  const IssuedTokens b = Exchange();
  const IssuedTokens kommo = Exchange(kKommoAccount);
  const auto revoked = state_.RevokeTokens(kAmoAccount, RevokeScope::kAccess);
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->access_tokens, 2U);
  EXPECT_EQ(revoked->refresh_tokens, 0U);
  EXPECT_EQ(state_.CheckAccessToken(a.jti, kAmoAccount), std::nullopt);
  EXPECT_EQ(state_.CheckAccessToken(b.jti, kAmoAccount), std::nullopt);
  EXPECT_TRUE(state_.CheckAccessToken(kommo.jti, kKommoAccount).has_value());
  // The refresh token still works and its new access token is live.
  const auto refreshed = state_.ExchangeToken(RefreshRequest(a.refresh_token), kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(refreshed));
  EXPECT_TRUE(state_.CheckAccessToken(std::get<IssuedTokens>(refreshed).jti, kAmoAccount));
  // Nothing left to revoke twice.
  EXPECT_EQ(state_.RevokeTokens(kAmoAccount, RevokeScope::kAccess)->access_tokens, 1U);
  EXPECT_EQ(state_.RevokeTokens(kAmoAccount, RevokeScope::kAccess)->access_tokens, 0U);
}

TEST_F(SandboxStateTest, RevokeAllKillsRefreshTokensWithoutCountingReuses) {
  const IssuedTokens a = Exchange();
  const IssuedTokens kommo = Exchange(kKommoAccount);
  const auto revoked = state_.RevokeTokens(kAmoAccount, RevokeScope::kAll);
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->access_tokens, 1U);
  EXPECT_EQ(revoked->refresh_tokens, 1U);
  EXPECT_TRUE(Refused(state_.ExchangeToken(RefreshRequest(a.refresh_token), kAmoAccount),
                      401,
                      hint::kTokenRevoked));
  EXPECT_FALSE(state_.AccountOfRefreshToken(a.refresh_token).has_value());
  EXPECT_EQ(state_.Journal().counters.refresh_token_reuses, 0U);
  EXPECT_TRUE(state_.AccountOfRefreshToken(kommo.refresh_token).has_value());
  EXPECT_TRUE(Is(state_.RevokeTokens(42, RevokeScope::kAll).error(), Errc::kNotFound));
}

TEST_F(SandboxStateTest, DisconnectRevokesOnlyThatIntegrationsTokensInThatAccount) {
  const IssuedTokens a = Exchange();
  const IssuedTokens b = Exchange();
  const IssuedTokens kommo = Exchange(kKommoAccount);
  Integration other_integration;
  other_integration.redirect_uri = std::string(kRedirect);
  other_integration = state_.PutIntegration(other_integration);
  const auto other_code = state_.IssueCode(other_integration.client_id, kAmoAccount);
  ASSERT_TRUE(other_code.has_value());
  const TokenOutcome other = state_.ExchangeToken(TokenRequest{"authorization_code",
                                                               other_integration.client_id,
                                                               other_integration.client_secret,
                                                               other_integration.redirect_uri,
                                                               *other_code,
                                                               ""},
                                                  kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(other));

  const auto revoked = state_.DisconnectIntegration(kAmoAccount, integration_.client_id);
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->access_tokens, 2U);
  EXPECT_EQ(revoked->refresh_tokens, 2U);
  EXPECT_EQ(state_.CheckAccessToken(a.jti, kAmoAccount), std::nullopt);
  EXPECT_EQ(state_.CheckAccessToken(b.jti, kAmoAccount), std::nullopt);
  EXPECT_FALSE(state_.AccountOfRefreshToken(b.refresh_token).has_value());
  // Another account, and another integration in the same account, keep theirs.
  EXPECT_TRUE(state_.CheckAccessToken(kommo.jti, kKommoAccount).has_value());
  EXPECT_TRUE(state_.CheckAccessToken(std::get<IssuedTokens>(other).jti, kAmoAccount).has_value());
  EXPECT_TRUE(
      Is(state_.DisconnectIntegration(42, integration_.client_id).error(), Errc::kNotFound));
  EXPECT_TRUE(
      Is(state_.DisconnectIntegration(kAmoAccount, "no-such-client").error(), Errc::kNotFound));
}

// --- Renaming.

TEST(SandboxStateExternal, TakesTheDisconnectHookOfTheIntegrationWithItsRedirectUri) {
  SandboxState state(StateConfig{}, DefaultAccounts());
  Integration registered;
  registered.redirect_uri = std::string(kRedirect);
  registered.disconnect_hook_url = "https://app.example.com/oauth/disconnect";
  state.PutIntegration(registered);
  Integration elsewhere;
  elsewhere.redirect_uri = "https://other.example.com/cb";
  elsewhere.disconnect_hook_url = "https://other.example.com/disconnect";
  state.PutIntegration(elsewhere);

  Integration wanted;
  wanted.redirect_uri = std::string(kRedirect);
  wanted.disconnect_hook_url = "https://attacker.example/hook";  // not the consent's to choose
  auto created = state.AddExternalIntegration(wanted, kAmoAccount);
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->disconnect_hook_url, "https://app.example.com/oauth/disconnect");
  EXPECT_EQ(state.FindIntegration(created->client_id)->disconnect_hook_url,
            "https://app.example.com/oauth/disconnect");

  wanted.redirect_uri = "https://nobody.example/cb";
  auto orphan = state.AddExternalIntegration(wanted, kAmoAccount);
  ASSERT_TRUE(orphan.has_value());
  EXPECT_EQ(orphan->disconnect_hook_url, "");
}

TEST(SandboxStateRename, MovesTheHostAndKeepsTokens) {
  std::vector<Account> accounts = DefaultAccounts();
  accounts.push_back(Account{30000002, "taken", "Taken", Flavor::kAmocrm, "", 10000002});
  SandboxState state(StateConfig{}, accounts);
  Integration i;
  i.redirect_uri = std::string(kRedirect);
  i = state.PutIntegration(i);
  const auto code = state.IssueCode(i.client_id, kAmoAccount);
  ASSERT_TRUE(code.has_value());
  const TokenOutcome out = state.ExchangeToken(
      TokenRequest{"authorization_code", i.client_id, i.client_secret, i.redirect_uri, *code, ""},
      kAmoAccount);
  ASSERT_TRUE(std::holds_alternative<IssuedTokens>(out));
  const auto& tokens = std::get<IssuedTokens>(out);

  const auto renamed = state.RenameAccount(kAmoAccount, "New-Name");
  ASSERT_TRUE(renamed.has_value());
  EXPECT_EQ(renamed->subdomain, "new-name");
  EXPECT_EQ(state.ResolveHost("example.amocrm.ru").kind, HostKind::kUnknown);
  EXPECT_EQ(state.ResolveHost("new-name.amocrm.ru").account.id, kAmoAccount);
  EXPECT_EQ(state.ResolveHost("example.kommo.com").account.id, kKommoAccount);  // other platform
  EXPECT_TRUE(state.CheckAccessToken(tokens.jti, kAmoAccount).has_value());
  EXPECT_EQ(state.AccountOfRefreshToken(tokens.refresh_token)->subdomain, "new-name");

  EXPECT_TRUE(Is(state.RenameAccount(kAmoAccount, "taken").error(), Errc::kConflict));
  EXPECT_TRUE(Is(state.RenameAccount(kAmoAccount, "api-b").error(), Errc::kConflict));
  for (const char* bad : {"", "-x", "x-", "under_score", "dot.ted", "www", "ünï"}) {
    EXPECT_TRUE(Is(state.RenameAccount(kAmoAccount, bad).error(), Errc::kInvalidArgument)) << bad;
  }
  EXPECT_TRUE(Is(state.RenameAccount(42, "fine").error(), Errc::kNotFound));
  EXPECT_TRUE(state.RenameAccount(kAmoAccount, "new-name").has_value());  // same name: no-op
  // The Kommo account may take a name used on amoCRM: hosts differ.
  EXPECT_TRUE(state.RenameAccount(kKommoAccount, "taken").has_value());
  EXPECT_EQ(state.ResolveHost("taken.amocrm.com").account.id, kKommoAccount);  // legacy alias
  EXPECT_EQ(state.ResolveHost("example.amocrm.com").kind, HostKind::kUnknown);
}

TEST(SandboxStateRename, ValidSubdomains) {
  EXPECT_TRUE(IsValidSubdomain("a"));
  EXPECT_TRUE(IsValidSubdomain("shop-2024"));
  EXPECT_TRUE(IsValidSubdomain(std::string(63, 'a')));
  EXPECT_FALSE(IsValidSubdomain(std::string(64, 'a')));
  EXPECT_FALSE(IsValidSubdomain("Upper"));  // RenameAccount lowercases first
}

// --- API rate limit and block, on a hand-driven clock.

class ApiLimitTest : public ::testing::Test {
 protected:
  ApiLimitTest() : state_(StateConfig{}, DefaultAccounts(), [this] { return now_; }) {
    Integration i;
    i.redirect_uri = std::string(kRedirect);
    i = state_.PutIntegration(i);
    const auto code = state_.IssueCode(i.client_id, kAmoAccount);
    const TokenOutcome out = state_.ExchangeToken(
        TokenRequest{
            "authorization_code", i.client_id, i.client_secret, i.redirect_uri, code.value(), ""},
        kAmoAccount);
    jti_ = std::get<IssuedTokens>(out).jti;
  }

  void Configure(std::int64_t rps,
                 std::int64_t block_after,
                 seconds window = seconds{60},
                 seconds block = seconds{900}) {
    ConfigPatch patch;
    patch.api_rate_limit_rps = rps;
    patch.api_block_after_violations = block_after;
    patch.api_violation_window = window;
    patch.api_block_duration = block;
    ASSERT_EQ(state_.ApplyConfig(patch), std::nullopt);
  }

  ApiVerdict Call(std::int64_t account = kAmoAccount) {
    return state_.AdmitApiRequest(account, account == kAmoAccount ? jti_ : "").verdict;
  }

  TimePoint now_ = TimePoint{} + seconds{1760000000};
  SandboxState state_;
  std::string jti_;
};

TEST_F(ApiLimitTest, SevenPerSecondPassTheEighthIsLimited) {
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Call(), ApiVerdict::kAllowed) << i;
  }
  const ApiAdmission eighth = state_.AdmitApiRequest(kAmoAccount, jti_);
  EXPECT_EQ(eighth.verdict, ApiVerdict::kRateLimited);
  EXPECT_EQ(eighth.retry_after, seconds{1});
  EXPECT_FALSE(eighth.block_started);
  now_ += seconds{1};  // all seven left the window
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  const auto journal = state_.Journal();
  EXPECT_EQ(journal.counters.api_requests, 9U);
  EXPECT_EQ(journal.counters.api_rate_limited, 1U);
  EXPECT_EQ(journal.counters.max_api_requests_per_second, 8U);
  EXPECT_EQ(journal.accounts.at(kAmoAccount).max_api_requests_per_second, 8U);
  EXPECT_EQ(journal.accounts.at(kKommoAccount).api_requests, 0U);
}

TEST_F(ApiLimitTest, TheWindowSlides) {
  Configure(2, 0);
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);  // t = 0
  now_ += milliseconds{600};
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);  // t = 0.6
  now_ += milliseconds{400};
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);  // t = 1.0: (0, 1.0] holds 0.6 and 1.0
  now_ += milliseconds{500};
  // t = 1.5: (0.5, 1.5] holds 0.6, 1.0, 1.5. Fixed per-second buckets would let this through.
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  now_ += milliseconds{999};
  // t = 2.499: (1.499, 2.499] holds 1.5 (refused, but it arrived) and 2.499.
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  EXPECT_EQ(state_.Journal().counters.max_api_requests_per_second, 3U);
}

TEST_F(ApiLimitTest, RefusedArrivalsCountToo) {
  Configure(1, 0);
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  now_ += milliseconds{900};
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  now_ += milliseconds{900};  // the first left, the refused one is still in the window
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  // Unauthenticated requests are limited before their token is looked at.
  EXPECT_EQ(state_.AdmitApiRequest(kAmoAccount, "").verdict, ApiVerdict::kRateLimited);
  now_ += seconds{1};
  EXPECT_EQ(state_.AdmitApiRequest(kAmoAccount, "").verdict, ApiVerdict::kUnauthorized);
}

TEST_F(ApiLimitTest, ViolationsWithinTheWindowBlockTheAccount) {
  Configure(1, 3, seconds{60}, seconds{900});
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  const ApiAdmission third = state_.AdmitApiRequest(kAmoAccount, jti_);
  EXPECT_EQ(third.verdict, ApiVerdict::kRateLimited);
  EXPECT_TRUE(third.block_started);
  EXPECT_EQ(Call(), ApiVerdict::kBlocked);
  EXPECT_EQ(Call(kKommoAccount), ApiVerdict::kUnauthorized);  // other accounts are not blocked
  now_ += seconds{899};
  EXPECT_EQ(Call(), ApiVerdict::kBlocked);
  now_ += seconds{1};
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);

  const auto counters = state_.Journal().counters;
  EXPECT_EQ(counters.api_requests, 8U);
  EXPECT_EQ(counters.api_rate_limited, 3U);
  EXPECT_EQ(counters.api_blocked, 2U);
  EXPECT_EQ(counters.api_unauthorized, 1U);
}

TEST_F(ApiLimitTest, ViolationsOutsideTheWindowDoNotAddUp) {
  Configure(1, 2, seconds{10});
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);
  now_ += seconds{10};
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);  // the first 429 is 10 s old: out of the window
  EXPECT_EQ(Call(), ApiVerdict::kRateLimited);  // the second within 10 s: blocked from now on
  EXPECT_EQ(Call(), ApiVerdict::kBlocked);
}

TEST_F(ApiLimitTest, ZeroTurnsTheLimitOrTheBlockOff) {
  Configure(0, 1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Call(), ApiVerdict::kAllowed) << i;
  }
  EXPECT_EQ(state_.Journal().counters.max_api_requests_per_second, 100U);
  now_ += seconds{1};
  Configure(1, 0);
  EXPECT_EQ(Call(), ApiVerdict::kAllowed);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(Call(), ApiVerdict::kRateLimited) << i;
  }
}

TEST_F(ApiLimitTest, RevokedOrForeignTokensAreUnauthorized) {
  EXPECT_EQ(state_.AdmitApiRequest(kKommoAccount, jti_).verdict, ApiVerdict::kUnauthorized);
  ASSERT_TRUE(state_.RevokeTokens(kAmoAccount, RevokeScope::kAccess).has_value());
  EXPECT_EQ(Call(), ApiVerdict::kUnauthorized);
  EXPECT_EQ(state_.Journal().accounts.at(kAmoAccount).api_unauthorized, 1U);
}

// --- Faults and the journal.

TEST_F(SandboxStateTest, FaultsAreTakenOneAtATime) {
  constexpr auto kToken = FaultTarget::kTokenEndpoint;
  constexpr std::string_view kPath = "/oauth2/access_token";
  const auto pending = [this] {
    return state_.Faults()[static_cast<std::size_t>(FaultTarget::kTokenEndpoint)];
  };
  EXPECT_FALSE(state_.TakeFault(kToken, kAmoAccount, kPath).has_value());
  std::array<std::optional<Fault>, kFaultTargets> faults;
  faults[static_cast<std::size_t>(kToken)] = Fault{.status = 503, .times = 2};
  state_.SetFaults(faults);
  EXPECT_EQ(pending()->times, 2U);
  const auto first = state_.TakeFault(kToken, kAmoAccount, kPath);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 503);
  EXPECT_EQ(pending()->times, 1U);
  EXPECT_FALSE(state_.TakeFault(FaultTarget::kApi, kAmoAccount, "/api/v4/account").has_value())
      << "another target";
  EXPECT_TRUE(state_.TakeFault(kToken, kKommoAccount, kPath).has_value());
  EXPECT_FALSE(pending().has_value());
  EXPECT_FALSE(state_.TakeFault(kToken, kAmoAccount, kPath).has_value());

  // A path prefix narrows it; a new POST of one target leaves the others.
  faults = {};
  faults[static_cast<std::size_t>(FaultTarget::kApi)] =
      Fault{.kind = FaultKind::kClose, .path_prefix = "/api/v4/leads", .times = 1};
  state_.SetFaults(faults);
  EXPECT_FALSE(state_.TakeFault(FaultTarget::kApi, kAmoAccount, "/api/v4/account").has_value());
  faults = {};
  faults[static_cast<std::size_t>(kToken)] = Fault{.kind = FaultKind::kClose, .times = 5};
  state_.SetFaults(faults);
  const auto leads = state_.TakeFault(FaultTarget::kApi, kAmoAccount, "/api/v4/leads/7");
  ASSERT_TRUE(leads.has_value());
  EXPECT_EQ(leads->kind, FaultKind::kClose);
  state_.ClearFaults();
  EXPECT_FALSE(state_.TakeFault(kToken, kAmoAccount, kPath).has_value());
  const auto journal = state_.Journal();
  EXPECT_EQ(journal.counters.token_endpoint_faults, 2U);
  EXPECT_EQ(journal.counters.faults, 3U);
  EXPECT_EQ(journal.accounts.at(kAmoAccount).token_endpoint_faults, 1U);
  EXPECT_EQ(journal.accounts.at(kKommoAccount).token_endpoint_faults, 1U);
}

TEST_F(SandboxStateTest, ResetJournalKeepsTokens) {
  const IssuedTokens tokens = Exchange();
  state_.Record(JournalEntry{"example.amocrm.ru", "GET", "/api/v4/account", 200});
  ASSERT_EQ(state_.AdmitApiRequest(kAmoAccount, tokens.jti).verdict, ApiVerdict::kAllowed);
  ASSERT_TRUE(state_.LookUpSubdomain(tokens.refresh_token).has_value());
  EXPECT_FALSE(state_.LookUpSubdomain("nope").has_value());
  auto journal = state_.Journal();
  EXPECT_EQ(journal.counters.subdomain_lookups, 2U);
  EXPECT_EQ(journal.accounts.at(kAmoAccount).subdomain_lookups, 1U);
  EXPECT_EQ(journal.accounts.at(kAmoAccount).codes_exchanged, 1U);

  state_.ResetJournal();
  journal = state_.Journal();
  EXPECT_EQ(journal.counters.codes_exchanged, 0U);
  EXPECT_EQ(journal.counters.api_requests, 0U);
  EXPECT_EQ(journal.counters.max_api_requests_per_second, 0U);
  EXPECT_TRUE(journal.requests.empty());
  ASSERT_EQ(journal.accounts.size(), 2U);
  EXPECT_EQ(journal.accounts.at(kAmoAccount).api_requests, 0U);
  EXPECT_EQ(state_.AdmitApiRequest(kAmoAccount, tokens.jti).verdict, ApiVerdict::kAllowed);
  EXPECT_TRUE(std::holds_alternative<IssuedTokens>(
      state_.ExchangeToken(RefreshRequest(tokens.refresh_token), kAmoAccount)));
}

}  // namespace
}  // namespace amoauth::sandbox
