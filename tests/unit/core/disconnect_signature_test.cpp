#include "amoauth/core/disconnect_signature.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

// Protocol §7.1's test vector.
constexpr std::string_view kClient = "0b0832f6-d123-4123-9123-e73f236833c0";
constexpr std::string_view kAccount = "12345678";
constexpr std::string_view kSecret = "TEST_CLIENT_SECRET";
constexpr std::string_view kSignature =
    "d965a65f7afff2a20c87a5e472fd544e85b7636e69967bf9bdcde459ef1a9fa6";

TEST(DisconnectSignature, AcceptsTheProtocolVector) {
  EXPECT_TRUE(VerifyDisconnectSignature(kSecret, kClient, kAccount, kSignature));
}

TEST(DisconnectSignature, AcceptsUppercaseHex) {
  std::string upper(kSignature);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) {
    return static_cast<char>(std::toupper(c));
  });
  EXPECT_TRUE(VerifyDisconnectSignature(kSecret, kClient, kAccount, upper));
}

TEST(DisconnectSignature, RejectsForgeries) {
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, "12345679", kSignature));
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, "012345678", kSignature));
  EXPECT_FALSE(VerifyDisconnectSignature("OTHER_SECRET", kClient, kAccount, kSignature));
  EXPECT_FALSE(VerifyDisconnectSignature(
      kSecret, "0b0832f6-d123-4123-9123-e73f236833c1", kAccount, kSignature));
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, kAccount, kSignature.substr(0, 63)));
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, kAccount, ""));
  std::string longer(kSignature);
  longer += "0";
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, kAccount, longer));
  // Not hex: same length, but letters beyond f (and one that folds onto a hex digit's case).
  std::string non_hex(kSignature);
  non_hex[0] = 'z';
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, kAccount, non_hex));
  std::string with_space(kSignature);
  with_space[5] = ' ';
  EXPECT_FALSE(VerifyDisconnectSignature(kSecret, kClient, kAccount, with_space));
  // The message separator matters: "|" and nothing else.
  EXPECT_FALSE(VerifyDisconnectSignature(
      kSecret, std::string(kClient) + "|" + std::string(kAccount), "", kSignature));
}

}  // namespace
}  // namespace amoauth::core
