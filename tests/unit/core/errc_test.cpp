#include "amoauth/core/errc.hpp"

#include <set>
#include <string_view>

#include <gtest/gtest.h>

#include "amoauth/core/result.hpp"

namespace amoauth {
namespace {

TEST(Errc, CategoryIsNamedAmoauth) {
  EXPECT_STREQ(AmoauthCategory().name(), "amoauth");
}

TEST(Errc, EveryEnumeratorHasAMessage) {
  // Enumerators are dense from kInvalidArgument (1) to kLongLivedTokenReplacesOAuth, the last one.
  const std::string unknown_prefix = "Unknown amoauth error";
  for (int ev = static_cast<int>(Errc::kInvalidArgument);
       ev <= static_cast<int>(Errc::kLongLivedTokenReplacesOAuth);
       ++ev) {
    const std::string message = make_error_code(static_cast<Errc>(ev)).message();
    EXPECT_FALSE(message.empty()) << ev;
    EXPECT_EQ(message.rfind(unknown_prefix, 0), std::string::npos) << ev;
  }
}

TEST(Errc, EveryEnumeratorHasAUniqueMachineCode) {
  std::set<std::string_view> seen;
  for (int ev = static_cast<int>(Errc::kInvalidArgument);
       ev <= static_cast<int>(Errc::kLongLivedTokenReplacesOAuth);
       ++ev) {
    const std::string_view code = ErrcCode(static_cast<Errc>(ev));
    EXPECT_NE(code, "internal_error") << ev;
    EXPECT_EQ(code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string_view::npos);
    EXPECT_TRUE(seen.insert(code).second) << code << " twice";
  }
  EXPECT_EQ(ErrorCode(make_error_code(Errc::kAmoServerError)), "amo_server_error");
  EXPECT_EQ(ErrorCode(boost::system::errc::make_error_code(boost::system::errc::timed_out)),
            "transport");
}

TEST(Errc, UnknownValuesStillDescribeThemselves) {
  const boost::system::error_code ec(9999, AmoauthCategory());
  EXPECT_EQ(ec.message(), "Unknown amoauth error 9999.");
}

TEST(Errc, ConvertsImplicitlyAndCompares) {
  const boost::system::error_code ec = Errc::kAmoRateLimited;
  EXPECT_TRUE(Is(ec, Errc::kAmoRateLimited));
  EXPECT_FALSE(Is(ec, Errc::kAmoBlocked));
  EXPECT_TRUE(IsAmoauth(ec));
  EXPECT_FALSE(IsAmoauth(boost::system::error_code(1, boost::system::generic_category())));
  EXPECT_EQ(&ec.category(), &AmoauthCategory());
}

TEST(Errc, FailBuildsAnErrorResult) {
  const Result<int> r = Fail(Errc::kNotFound);
  ASSERT_TRUE(r.has_error());
  EXPECT_TRUE(Is(r.error(), Errc::kNotFound));
}

}  // namespace
}  // namespace amoauth
