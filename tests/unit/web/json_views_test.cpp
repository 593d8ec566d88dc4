// The /token answer is written field by field (json_views.cpp): the bytes must be those
// boost::json::serialize writes for the same object, whatever the strings hold.
#include "json_views.hpp"

#include <chrono>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/connection.hpp"
#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/secret.hpp"

namespace amoauth::web {
namespace {

std::string AsBoostJsonWritesIt(const core::Connection& c, core::TimePoint now) {
  const auto left = std::chrono::duration_cast<core::Seconds>(c.expires_at - now).count();
  return boost::json::serialize(boost::json::object{
      {"access_token", c.access_token.Reveal()},
      {"token_type", "Bearer"},
      {"expires_at", core::FormatIsoTime(c.expires_at)},
      {"expires_in", left > 0 ? left : 0},
      {"account_id", c.account_id},
      {"base_domain", c.base_domain},
      {"api_domain", c.api_domain},
  });
}

TEST(JsonViews, TokenIsWhatBoostJsonWrites) {
  const core::TimePoint now{std::chrono::seconds(1'800'000'000)};
  core::Connection c;
  c.account_id = 30000001;
  c.expires_at = now + std::chrono::hours(24);
  const std::string strings[] = {
      "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  // a JWT: copied as it is
      "example.amocrm.ru",
      "",
      "quote\" and back\\slash",
      "control\x01\x1f\n\t",
      "del\x7f",
      "кириллица",                 // valid UTF-8: Boost.JSON passes it through
      std::string("\xff\xfe", 2),  // not UTF-8
  };
  for (const std::string& text : strings) {
    c.access_token = Secret(text);
    c.base_domain = text;
    c.api_domain = "api-" + text;
    EXPECT_EQ(json::Token(c, now), AsBoostJsonWritesIt(c, now)) << text;
  }
  c.expires_at = now - std::chrono::minutes(1);  // expired: expires_in is 0, never negative
  EXPECT_EQ(json::Token(c, now), AsBoostJsonWritesIt(c, now));
}

}  // namespace
}  // namespace amoauth::web
