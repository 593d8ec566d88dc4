#include "amoauth/web/client_addresses.hpp"

#include <gtest/gtest.h>

namespace amoauth::web {
namespace {

net::HttpRequest From(std::string peer, std::vector<std::string> forwarded = {}) {
  net::HttpRequest request;
  request.remote_address = std::move(peer);
  for (const auto& value : forwarded) {
    request.headers.Add("X-Forwarded-For", value);
  }
  return request;
}

TEST(ClientAddresses, WithoutTrustedProxiesThePeerIsTheClient) {
  const ClientAddresses none;
  EXPECT_EQ(none.Of(From("127.0.0.1", {"203.0.113.5"})), "127.0.0.1");
}

TEST(ClientAddresses, ATrustedProxysRightMostUntrustedHopIsTheClient) {
  auto trusted = ClientAddresses::Parse({"10.0.0.0/8", "127.0.0.1", "fd00::/8"});
  ASSERT_TRUE(trusted);
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"203.0.113.5"})), "203.0.113.5");
  // The client's own entries are left of the proxies'.
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"1.2.3.4, 203.0.113.5"})), "203.0.113.5");
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"203.0.113.5, 10.1.2.3"})), "203.0.113.5");
  // Several fields are one list, in order.
  EXPECT_EQ(trusted->Of(From("10.9.9.9", {"1.2.3.4", "203.0.113.6, 10.0.0.2"})), "203.0.113.6");
  EXPECT_EQ(trusted->Of(From("fd00::1", {"2001:db8::7"})), "2001:db8::7");
  // No header, or junk where the proxy's entry should be: the last address vouched for.
  EXPECT_EQ(trusted->Of(From("127.0.0.1")), "127.0.0.1");
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"junk"})), "127.0.0.1");
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"203.0.113.5, junk"})), "127.0.0.1");
  // An untrusted peer's header is ignored.
  EXPECT_EQ(trusted->Of(From("198.51.100.1", {"203.0.113.5"})), "198.51.100.1");
  // v4-mapped forms count as IPv4.
  EXPECT_EQ(trusted->Of(From("127.0.0.1", {"::ffff:203.0.113.5"})), "203.0.113.5");
  EXPECT_TRUE(trusted->IsTrusted("::ffff:10.1.1.1"));
  EXPECT_FALSE(trusted->IsTrusted("11.0.0.1"));
}

TEST(ClientAddresses, ParseNamesTheBadEntry) {
  std::string bad;
  EXPECT_FALSE(ClientAddresses::Parse({"127.0.0.1", "proxy.local"}, &bad));
  EXPECT_EQ(bad, "proxy.local");
  EXPECT_FALSE(ClientAddresses::Parse({"10.0.0.0/33"}, &bad));
  EXPECT_EQ(bad, "10.0.0.0/33");
  EXPECT_FALSE(ClientAddresses::Parse({"fd00::/129"}, &bad));
  EXPECT_TRUE(ClientAddresses::Parse({}));
}

TEST(ClientAddresses, IPv6ClientsAreCountedByTheirSlash64) {
  EXPECT_EQ(ClientAddresses::LimitKey("203.0.113.5"), "203.0.113.5");
  // The IPv4 fast path gives what parsing and formatting gave.
  EXPECT_EQ(ClientAddresses::LimitKey(" 203.0.113.5 "), "203.0.113.5");
  EXPECT_EQ(ClientAddresses::LimitKey("::ffff:203.0.113.5"), "203.0.113.5");
  EXPECT_EQ(ClientAddresses::LimitKey("203.000.113.5"), "203.000.113.5");  // not an address
  EXPECT_EQ(ClientAddresses::LimitKey("203.0.113"), "203.0.113");
  EXPECT_EQ(ClientAddresses::LimitKey("not an address"), "not an address");
  EXPECT_EQ(ClientAddresses::LimitKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientAddresses::LimitKey("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
  EXPECT_NE(ClientAddresses::LimitKey("2001:db8:1:3::1"), "2001:db8:1:2::/64");
}

}  // namespace
}  // namespace amoauth::web
