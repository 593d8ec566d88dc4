#include "amoauth/core/refresh_policy.hpp"

#include <gtest/gtest.h>

#include "amoauth/core/errc.hpp"

namespace amoauth::core {
namespace {

using std::chrono::hours;

const TimePoint kT0 = FromUnixSeconds(1'800'000'000);

Connection Refreshable() {
  Connection c;
  c.status = ConnectionStatus::kActive;
  c.refresh_token = Secret("def502refresh");
  c.last_refresh_at = kT0;
  c.expires_at = kT0 + hours(24);
  return c;
}

TEST(RefreshPolicy, SchedulesAheadOfExpiryWhenThatComesFirst) {
  RefreshPolicy policy;
  policy.ahead = hours(1);
  EXPECT_EQ(NextRefreshAt(Refreshable(), policy), kT0 + hours(23));
}

TEST(RefreshPolicy, KeepaliveBoundsTheRefreshTokensAgeWhenAheadIsOff) {
  RefreshPolicy policy;
  policy.ahead = Seconds{0};
  policy.keepalive = hours(24 * 7);
  Connection c = Refreshable();
  c.expires_at = kT0 + hours(24 * 365);  // a token that lives long does not postpone keepalive
  EXPECT_EQ(NextRefreshAt(c, policy), kT0 + hours(24 * 7));
}

TEST(RefreshPolicy, NeverSchedulesWhatCannotOrMustNotBeRefreshed) {
  RefreshPolicy policy;
  Connection long_lived = Refreshable();
  long_lived.refresh_token = Secret();
  EXPECT_EQ(NextRefreshAt(long_lived, policy), TimePoint{});
  Connection dead = Refreshable();
  dead.status = ConnectionStatus::kReauthRequired;
  EXPECT_EQ(NextRefreshAt(dead, policy), TimePoint{});
}

TEST(RefreshPolicy, BackoffGrowsExponentiallyIsCappedAndJittered) {
  RefreshPolicy policy;
  policy.backoff_base = Seconds{30};
  policy.backoff_cap = Seconds{3600};
  EXPECT_EQ(Backoff(1, policy, 1.0), Seconds{30});
  EXPECT_EQ(Backoff(1, policy, 0.0), Seconds{15});
  EXPECT_EQ(Backoff(3, policy, 1.0), Seconds{120});
  EXPECT_EQ(Backoff(30, policy, 1.0), Seconds{3600});
  EXPECT_EQ(Backoff(1000, policy, 0.0), Seconds{1800});
  // Jitter stays in [delay/2, delay].
  for (double j : {0.0, 0.25, 0.5, 0.99}) {
    const Seconds d = Backoff(4, policy, j);
    EXPECT_GE(d, Seconds{120});
    EXPECT_LE(d, Seconds{240});
  }
}

TEST(RefreshPolicy, ClassifiesFailuresByWhatTheyMeanForTheAccount) {
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoTokenRevoked), RefreshFailure::kDead);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoTokenNotLinked), RefreshFailure::kDead);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoTokenExpired), RefreshFailure::kDead);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoUnauthorized), RefreshFailure::kHostMoved);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoNotFound), RefreshFailure::kHostMoved);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoInvalidClient), RefreshFailure::kMisconfigured);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoServerError), RefreshFailure::kTransient);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoRateLimited), RefreshFailure::kTransient);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoUnreachable), RefreshFailure::kTransient);
  EXPECT_EQ(ClassifyRefreshFailure(Errc::kAmoBlocked), RefreshFailure::kTransient);
  // Foreign error codes are transport failures: transient.
  EXPECT_EQ(ClassifyRefreshFailure(
                boost::system::errc::make_error_code(boost::system::errc::connection_refused)),
            RefreshFailure::kTransient);
}

}  // namespace
}  // namespace amoauth::core
