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

}  // namespace
}  // namespace amoauth::core
