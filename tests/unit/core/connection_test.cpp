#include "amoauth/core/connection.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(ConnectionStatus, RoundTripsNames) {
  for (const ConnectionStatus s : {ConnectionStatus::kActive,
                                   ConnectionStatus::kReauthRequired,
                                   ConnectionStatus::kDisconnected}) {
    EXPECT_EQ(ParseConnectionStatus(ToString(s)), s);
  }
  EXPECT_EQ(ToString(ConnectionStatus::kReauthRequired), "reauth_required");
}

TEST(ConnectionStatus, RejectsUnknownNames) {
  EXPECT_FALSE(ParseConnectionStatus("").has_value());
  EXPECT_FALSE(ParseConnectionStatus("Active").has_value());
  EXPECT_FALSE(ParseConnectionStatus("revoked").has_value());
}

TEST(Connection, KeyIsAccountAndClient) {
  Connection c;
  c.account_id = 42;
  c.client_id = "client";
  EXPECT_EQ(c.Key(), (AccountKey{42, "client"}));
}

TEST(ConnectionKind, NoRefreshTokenAndNeverRefreshedIsLongLived) {
  Connection oauth;
  oauth.access_token = Secret("a");
  oauth.refresh_token = Secret("r");
  oauth.last_refresh_at = FromUnixSeconds(1'760'000'000);
  EXPECT_EQ(KindOf(oauth), ConnectionKind::kOAuth);
  EXPECT_EQ(ToString(KindOf(oauth)), "oauth");

  Connection disconnected = oauth;  // the disconnect hook erases both tokens
  disconnected.access_token = Secret();
  disconnected.refresh_token = Secret();
  EXPECT_EQ(KindOf(disconnected), ConnectionKind::kOAuth);

  Connection long_lived;
  long_lived.access_token = Secret("a");
  EXPECT_EQ(KindOf(long_lived), ConnectionKind::kLongLived);
  EXPECT_EQ(ToString(KindOf(long_lived)), "long_lived");
  long_lived.access_token = Secret();
  EXPECT_EQ(KindOf(long_lived), ConnectionKind::kLongLived) << "still long-lived once erased";
}

}  // namespace
}  // namespace amoauth::core
