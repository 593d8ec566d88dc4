#include "amoauth/core/referer_policy.hpp"

#include <string>

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

RefererPolicy DefaultPolicy() {
  return RefererPolicy({"amocrm.ru", "amocrm.com", "kommo.com"});
}

::testing::AssertionResult Rejected(std::string_view referer) {
  const auto r = DefaultPolicy().Check(referer);
  if (r.has_value()) {
    return ::testing::AssertionFailure() << "accepted \"" << referer << "\" as " << r->host;
  }
  if (!Is(r.error(), Errc::kRefererNotAllowed)) {
    return ::testing::AssertionFailure() << "wrong error: " << r.error().message();
  }
  return ::testing::AssertionSuccess();
}

TEST(RefererPolicy, AcceptsAnAccountHost) {
  const auto r = DefaultPolicy().Check("example.amocrm.ru");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->host, "example.amocrm.ru");
  EXPECT_EQ(r->subdomain, "example");
  EXPECT_EQ(r->domain, "amocrm.ru");
}

TEST(RefererPolicy, AcceptsEveryAllowedDomain) {
  EXPECT_TRUE(DefaultPolicy().Check("sub.kommo.com").has_value());
  EXPECT_TRUE(DefaultPolicy().Check("sub.amocrm.com").has_value());
  EXPECT_TRUE(DefaultPolicy().Check("a1-b2.amocrm.ru").has_value());
  EXPECT_TRUE(DefaultPolicy().Check(std::string(63, 'a') + ".amocrm.ru").has_value());
}

TEST(RefererPolicy, FoldsUpperCase) {
  const auto r = DefaultPolicy().Check("EXAMPLE.AmoCRM.ru");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->host, "example.amocrm.ru");
  EXPECT_EQ(r->subdomain, "example");
  EXPECT_EQ(r->domain, "amocrm.ru");
}

TEST(RefererPolicy, AcceptsAPunycodeLabel) {
  const auto r = DefaultPolicy().Check("xn--80a.amocrm.ru");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subdomain, "xn--80a");
}

TEST(RefererPolicy, LowerCasesAllowedDomains) {
  const RefererPolicy policy({"AmoCRM.RU"});
  EXPECT_EQ(policy.AllowedDomains().front(), "amocrm.ru");
  EXPECT_TRUE(policy.Check("sub.amocrm.ru").has_value());
}

TEST(RefererPolicy, RejectsForeignHosts) {
  EXPECT_TRUE(Rejected("evil.example"));
  EXPECT_TRUE(Rejected("amocrm.ru.evil.example"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru.evil.example"));
  EXPECT_TRUE(Rejected("subamocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.rux"));
}

TEST(RefererPolicy, RejectsUrlPieces) {
  EXPECT_TRUE(Rejected("sub.amocrm.ru@evil.example"));
  EXPECT_TRUE(Rejected("evil.example@sub.amocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru:443"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru/path"));
  EXPECT_TRUE(Rejected("https://sub.amocrm.ru"));
  EXPECT_TRUE(Rejected("//sub.amocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru?x=1"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru#x"));
}

TEST(RefererPolicy, RejectsWrongLabelCounts) {
  EXPECT_TRUE(Rejected(""));
  EXPECT_TRUE(Rejected("amocrm.ru"));
  EXPECT_TRUE(Rejected("a.b.amocrm.ru"));
  EXPECT_TRUE(Rejected(".amocrm.ru"));
  EXPECT_TRUE(Rejected("sub..amocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru."));
  EXPECT_TRUE(Rejected("sub"));
}

TEST(RefererPolicy, RejectsBadLabels) {
  EXPECT_TRUE(Rejected("-x.amocrm.ru"));
  EXPECT_TRUE(Rejected("x-.amocrm.ru"));
  EXPECT_TRUE(Rejected("s_b.amocrm.ru"));
  EXPECT_TRUE(Rejected(std::string(64, 'a') + ".amocrm.ru"));
  EXPECT_TRUE(Rejected("пример.amocrm.ru"));
}

TEST(RefererPolicy, RejectsWhitespaceEscapesAndControlBytes) {
  EXPECT_TRUE(Rejected(" sub.amocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru "));
  EXPECT_TRUE(Rejected("sub.amocrm.ru\n"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru\t"));
  EXPECT_TRUE(Rejected("sub%2eamocrm.ru"));
  EXPECT_TRUE(Rejected("evil.example%2esub.amocrm.ru"));
  EXPECT_TRUE(Rejected("evil.example\\sub.amocrm.ru"));
  EXPECT_TRUE(Rejected("sub.amocrm.ru\\"));
  EXPECT_TRUE(Rejected(std::string("sub.amocrm.ru\0.evil.example", 27)));
  EXPECT_TRUE(Rejected(std::string("sub\0.amocrm.ru", 14)));
}

TEST(RefererPolicy, EmptyAllowListAcceptsNothing) {
  const RefererPolicy policy({});
  EXPECT_FALSE(policy.Check("sub.amocrm.ru").has_value());
  EXPECT_FALSE(RefererPolicy({""}).Check("sub.").has_value());
}

}  // namespace
}  // namespace amoauth::core
