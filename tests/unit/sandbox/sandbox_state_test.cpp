#include "sandbox_state.hpp"

#include <string>
#include <variant>

#include <gtest/gtest.h>

namespace amoauth::sandbox {
namespace {

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

}  // namespace
}  // namespace amoauth::sandbox
