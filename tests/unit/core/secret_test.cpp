#include "amoauth/core/secret.hpp"

#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace amoauth {
namespace {

TEST(Secret, NeverPrintsItsValue) {
  const Secret s("client-secret-value");
  EXPECT_EQ(fmt::format("{}", s), "***");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "***");
  EXPECT_EQ(s.Reveal(), "client-secret-value");
}

TEST(Secret, DefaultIsEmpty) {
  EXPECT_TRUE(Secret().Empty());
  EXPECT_FALSE(Secret("x").Empty());
}

}  // namespace
}  // namespace amoauth
