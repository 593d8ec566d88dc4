#include "amoauth/service/long_lived_tokens.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/base64.hpp"
#include "amoauth/service/account_service.hpp"
#include "amoauth/service/refresh_scheduler.hpp"
#include "service_world.hpp"

namespace amoauth::service {
namespace {

using std::chrono::days;
using testing::AccountWorld;
using testing::kClient;
using testing::kExternal;
using testing::RunCo;
using testing::ServiceWorld;
constexpr std::int64_t kAccount = 30000001;
constexpr std::int64_t kDay = 24 * 60 * 60;

/// A long-lived token as amoCRM's Keys tab makes it (§4, §7.5): unsigned here, as amoauth never
/// checks the signature.
std::string MakeLongLivedToken(boost::json::object payload) {
  return crypto::Base64UrlEncode(R"({"typ":"JWT","alg":"RS256"})") + "." +
         crypto::Base64UrlEncode(boost::json::serialize(payload)) + ".signature";
}

boost::json::object Claims(std::int64_t exp, const std::string& aud = kClient) {
  return {{"aud", aud},
          {"jti", "0123456789abcdef"},
          {"iat", exp - 400 * kDay},
          {"nbf", exp - 400 * kDay},
          {"exp", exp},
          {"sub", "10000001"},
          {"grant_type", ""},
          {"account_id", kAccount},
          {"base_domain", "amocrm.ru"},
          {"version", 2},
          {"scopes", boost::json::array{"crm", "notifications"}},
          {"api_domain", "api-b.amocrm.ru"}};
}

class LongLivedTokensTest : public ::testing::Test, protected ServiceWorld {
 protected:
  LongLivedTokensTest()
      : ServiceWorld(AccountWorld()),
        tokens(directory, core::RefererPolicy({"amocrm.ru", "kommo.com"}), stores, events, clock),
        scheduler(accounts, stores, clock, SchedulerSettings{}) {}

  /// 00:00 UTC, `n` days after today on the test clock (how amoCRM sets exp).
  std::int64_t MidnightIn(int n) const {
    return (core::ToUnixSeconds(clock.Now()) / kDay + n) * kDay;
  }

  Result<core::Connection> Add(const std::string& token, std::string domain = "example.amocrm.ru") {
    return RunCo(ioc, tokens.Add(Secret(token), std::move(domain)));
  }

  std::vector<Event> EventsOf(std::string_view type) {
    std::vector<Event> out;
    for (auto& e : stores.EnqueuedEvents()) {
      if (e.type == type) {
        out.push_back(std::move(e));
      }
    }
    return out;
  }

  static boost::json::object DataOf(const Event& e) {
    return boost::json::parse(e.body).as_object().at("data").as_object();
  }

  core::Connection Row(const std::string& client = kClient) {
    return RunCo(ioc, accounts.Get(kAccount, client)).value();
  }

  void ConnectThroughOAuth() {
    SeedConnection({.account_id = kAccount,
                    .api_domain = "",
                    .access_token = "oauth-access",
                    .refresh_token = "oauth-refresh"});
  }

  LongLivedTokens tokens;
  RefreshScheduler scheduler;
};

TEST_F(LongLivedTokensTest, TheTokensClaimsMakeAnActiveConnectionWithoutARefreshToken) {
  const std::int64_t exp = MidnightIn(365);
  const std::string token = MakeLongLivedToken(Claims(exp));
  auto added = Add(token, "Example.AmoCRM.ru");
  ASSERT_TRUE(added) << added.error().message();
  const core::Connection row = Row();
  EXPECT_EQ(row.account_id, kAccount);
  EXPECT_EQ(row.client_id, kClient);
  EXPECT_EQ(row.base_domain, "example.amocrm.ru");
  EXPECT_EQ(row.api_domain, "api-b.amocrm.ru");
  EXPECT_EQ(row.user_id, "10000001");
  EXPECT_EQ(row.status, core::ConnectionStatus::kActive);
  EXPECT_EQ(row.access_token.Reveal(), token);
  EXPECT_TRUE(row.refresh_token.Empty());
  EXPECT_EQ(row.expires_at, core::FromUnixSeconds(exp));
  EXPECT_EQ(row.next_refresh_at, core::FromUnixSeconds(exp) - days(30)) << "the first warning";
  EXPECT_EQ(row.last_refresh_at, core::TimePoint{});
  EXPECT_EQ(core::KindOf(row), core::ConnectionKind::kLongLived);

  ASSERT_EQ(stores.EnqueuedEvents().size(), 1U) << "a year left: no warning yet";
  const Event connected = stores.EnqueuedEvents().front();
  EXPECT_EQ(connected.type, "account.connected");
  EXPECT_EQ(connected.body.find(token), std::string::npos) << "no event carries the token";
}

TEST_F(LongLivedTokensTest, WithoutADomainTheHostOfAnAccountWeKnowIsUsed) {
  const std::string token = MakeLongLivedToken(Claims(MidnightIn(30), kExternal));
  AddExternalIntegration().value();
  EXPECT_TRUE(Is(Add(token, "").error(), Errc::kLongLivedTokenDomain))
      << "the token names amocrm.ru, not the account's subdomain";
  EXPECT_TRUE(stores.EnqueuedEvents().empty());

  ConnectThroughOAuth();  // the account, through the configured integration
  auto added = Add(token, "");
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_EQ(added->base_domain, "example.amocrm.ru");
  EXPECT_EQ(added->client_id, kExternal) << "the token belongs to the integration named by aud";
  EXPECT_EQ(Row(kClient).refresh_token.Reveal(), "oauth-refresh") << "the OAuth row is untouched";
}

TEST_F(LongLivedTokensTest, GarbageExpiredForeignAndMisplacedTokensAreRefusedAndNothingStored) {
  const std::int64_t exp = MidnightIn(10);
  auto without = [&](std::string_view claim) {
    boost::json::object c = Claims(exp);
    c.erase(claim);
    return MakeLongLivedToken(c);
  };
  for (const std::string& garbage :
       {std::string("not a token"),
        std::string("a.b.c"),
        std::string(""),
        crypto::Base64UrlEncode("{}") + "." + crypto::Base64UrlEncode("[1,2]") + ".x",
        without("account_id"),
        without("aud"),
        without("exp")}) {
    EXPECT_TRUE(Is(Add(garbage).error(), Errc::kLongLivedTokenInvalid)) << garbage;
  }
  EXPECT_TRUE(Is(Add(MakeLongLivedToken(Claims(core::ToUnixSeconds(clock.Now())))).error(),
                 Errc::kLongLivedTokenExpired));
  EXPECT_TRUE(
      Is(Add(MakeLongLivedToken(Claims(exp, "99999999-0000-0000-0000-000000000000"))).error(),
         Errc::kIntegrationUnknown))
      << "aud is none of our integrations";
  for (const std::string domain : {"evil.example.com",
                                   "example.amocrm.ru.evil.com",
                                   "example.amocrm.ru:8443",
                                   "https://example.amocrm.ru",
                                   "example.kommo.com" /* the token says amocrm.ru */}) {
    EXPECT_TRUE(
        Is(Add(MakeLongLivedToken(Claims(exp)), domain).error(), Errc::kLongLivedTokenDomain))
        << domain;
  }
  EXPECT_TRUE(RunCo(ioc, stores.List())->empty());
  EXPECT_TRUE(stores.EnqueuedEvents().empty());
}

TEST_F(LongLivedTokensTest, AnActiveOAuthConnectionIsNotReplaced) {
  ConnectThroughOAuth();
  const std::string token = MakeLongLivedToken(Claims(MidnightIn(90)));
  EXPECT_TRUE(Is(Add(token).error(), Errc::kLongLivedTokenReplacesOAuth));
  EXPECT_EQ(Row().refresh_token.Reveal(), "oauth-refresh");

  // Once the OAuth pair is dead, a long-lived token is a way back in.
  core::Connection dead = Row();
  dead.status = core::ConnectionStatus::kReauthRequired;
  RunCo(ioc, stores.Upsert(dead, {})).value();
  ASSERT_TRUE(Add(token));
  EXPECT_EQ(core::KindOf(Row()), core::ConnectionKind::kLongLived);
  // And a newer long-lived token replaces an older one.
  const std::string newer = MakeLongLivedToken(Claims(MidnightIn(365)));
  ASSERT_TRUE(Add(newer));
  EXPECT_EQ(Row().access_token.Reveal(), newer);
}

TEST_F(LongLivedTokensTest, ItIsHandedOutUntilItsExpiryAndNeverRefreshed) {
  const std::int64_t exp = MidnightIn(2);
  const std::string token = MakeLongLivedToken(Claims(exp));
  ASSERT_TRUE(Add(token));
  clock.Set(exp - 60);  // inside the on-demand refresh margin of an OAuth token
  auto fresh = RunCo(ioc, accounts.FreshToken(kAccount));
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_EQ(fresh->access_token.Reveal(), token);
  auto forced = RunCo(ioc, accounts.ForceRefresh(kAccount));
  EXPECT_TRUE(Is(forced.error(), Errc::kLongLivedTokenNotRefreshable));
  EXPECT_EQ(amo.refreshes.load(), 0);

  clock.Set(exp);
  EXPECT_TRUE(Is(RunCo(ioc, accounts.FreshToken(kAccount)).error(), Errc::kLongLivedTokenExpired));
  const core::Connection row = Row();
  EXPECT_EQ(row.status, core::ConnectionStatus::kReauthRequired);
  EXPECT_NE(row.last_error.find("expired on " + core::FormatIsoTime(core::FromUnixSeconds(exp))),
            std::string::npos)
      << row.last_error;
  EXPECT_TRUE(Is(RunCo(ioc, accounts.FreshToken(kAccount)).error(), Errc::kLongLivedTokenExpired));
  EXPECT_TRUE(
      Is(RunCo(ioc, accounts.ForceRefresh(kAccount)).error(), Errc::kLongLivedTokenExpired));
  const auto reauth = EventsOf("account.reauth_required");
  ASSERT_EQ(reauth.size(), 1U) << "told once";
  EXPECT_EQ(DataOf(reauth.front()).at("reason").as_string(), "long_lived_token_expired");
  EXPECT_EQ(amo.refreshes.load(), 0);
  EXPECT_EQ(amo.lookups.load(), 0);
}

TEST_F(LongLivedTokensTest, TheSchedulerWarnsThirtySevenAndOneDayAheadThenMarksItOnce) {
  const std::int64_t exp_s = MidnightIn(365);
  const core::TimePoint exp = core::FromUnixSeconds(exp_s);
  ASSERT_TRUE(Add(MakeLongLivedToken(Claims(exp_s))));
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U) << "nothing due for 335 days";

  const std::vector<std::pair<days, core::TimePoint>> visits{
      {days(30), exp - days(7)}, {days(7), exp - days(1)}, {days(1), exp}};
  for (const auto& [ahead, next] : visits) {
    clock.Set(core::ToUnixSeconds(exp - ahead));
    EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U);
    EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U) << "one warning per visit";
    const auto warnings = EventsOf("token.expiring");
    ASSERT_FALSE(warnings.empty());
    const auto data = DataOf(warnings.back());
    EXPECT_EQ(data.at("days_left").as_int64(), ahead.count());
    EXPECT_EQ(data.at("expires_at").as_string(), core::FormatIsoTime(exp));
    EXPECT_EQ(Row().next_refresh_at, next);
    EXPECT_EQ(Row().status, core::ConnectionStatus::kActive);
  }
  EXPECT_EQ(EventsOf("token.expiring").size(), 3U);

  clock.Set(exp_s);
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U);
  EXPECT_EQ(Row().status, core::ConnectionStatus::kReauthRequired);
  EXPECT_EQ(Row().next_refresh_at, core::TimePoint{});
  clock.Set(exp_s + 10 * kDay);
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 0U);
  EXPECT_EQ(EventsOf("account.reauth_required").size(), 1U);
  EXPECT_EQ(EventsOf("token.expiring").size(), 3U);
  EXPECT_EQ(amo.refreshes.load(), 0);
}

TEST_F(LongLivedTokensTest, ATokenAddedWithThreeDaysLeftIsWarnedAboutAtOnceThenADayAhead) {
  const std::int64_t exp_s = MidnightIn(3);
  const core::TimePoint exp = core::FromUnixSeconds(exp_s);
  ASSERT_TRUE(Add(MakeLongLivedToken(Claims(exp_s))));
  const auto warnings = EventsOf("token.expiring");
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_EQ(DataOf(warnings.front()).at("days_left").as_int64(), 3);
  EXPECT_EQ(stores.EnqueuedEvents().front().type, "account.connected");
  EXPECT_EQ(Row().next_refresh_at, exp - days(1));

  clock.Set(core::ToUnixSeconds(exp - days(1)));
  EXPECT_EQ(RunCo(ioc, scheduler.RunOnce()).value(), 1U);
  EXPECT_EQ(EventsOf("token.expiring").size(), 2U);
}

TEST_F(LongLivedTokensTest, ProxyPassesAmoCrmsAnswerWithTheTokenAndA401IsFinal) {
  const std::string token = MakeLongLivedToken(Claims(MidnightIn(100)));
  ASSERT_TRUE(Add(token));
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  auto ok = RunCo(ioc, accounts.Proxy(kAccount, request));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
  ASSERT_EQ(amo.forwarded_tokens.size(), 1U);
  EXPECT_EQ(amo.forwarded_tokens.front(), token);
  EXPECT_EQ(amo.last_host, "example.amocrm.ru");

  amo.forward_statuses = {401, 200};
  auto revoked = RunCo(ioc, accounts.Proxy(kAccount, request));
  ASSERT_TRUE(revoked) << "amoCRM's answer comes back";
  EXPECT_EQ(revoked->status, 401);
  EXPECT_EQ(amo.forwards.load(), 2) << "no replay";
  EXPECT_EQ(amo.refreshes.load(), 0) << "nothing to refresh";
  const core::Connection row = Row();
  EXPECT_EQ(row.status, core::ConnectionStatus::kReauthRequired);
  EXPECT_NE(row.last_error.find("amoCRM no longer accepts the long-lived token"),
            std::string::npos);
  const auto reauth = EventsOf("account.reauth_required");
  ASSERT_EQ(reauth.size(), 1U);
  EXPECT_EQ(DataOf(reauth.front()).at("reason").as_string(), "long_lived_token_rejected");

  auto after = RunCo(ioc, accounts.Proxy(kAccount, request));
  EXPECT_TRUE(Is(after.error(), Errc::kLongLivedTokenRejected));
  EXPECT_EQ(amo.forwards.load(), 2) << "a dead token is not sent again";
}

TEST_F(LongLivedTokensTest, A401WithinAMinuteOfExpiryIsTheExpiryNotARevocation) {
  const std::int64_t exp = MidnightIn(1);
  ASSERT_TRUE(Add(MakeLongLivedToken(Claims(exp))));
  clock.Set(exp - 30);  // amoCRM's clock is a little ahead of ours
  amo.forward_statuses = {401};
  net::HttpRequest request;
  request.method = "GET";
  request.target = "/api/v4/account";
  auto answer = RunCo(ioc, accounts.Proxy(kAccount, request));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 401);
  const auto reauth = EventsOf("account.reauth_required");
  ASSERT_EQ(reauth.size(), 1U);
  EXPECT_EQ(DataOf(reauth.front()).at("reason").as_string(), "long_lived_token_expired");
  EXPECT_NE(Row().last_error.find("expired on"), std::string::npos);
  EXPECT_EQ(amo.refreshes.load(), 0);
}

}  // namespace
}  // namespace amoauth::service
