#include "amoauth/core/webhook_signature.hpp"

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

using std::chrono::seconds;

constexpr std::string_view kSecret = "whsec-0123456789abcdef0123456789";
constexpr std::string_view kBody = R"({"id":"evt_1","type":"account.connected"})";

TEST(WebhookSignature, HasTheDocumentedShape) {
  const std::string header = SignWebhook(kSecret, 1'800'000'000, kBody);
  ASSERT_TRUE(header.starts_with("t=1800000000,v1="));
  EXPECT_EQ(header.size(), std::string_view("t=1800000000,v1=").size() + 64);
}

TEST(WebhookSignature, VerifiesWhatItSigned) {
  const std::string header = SignWebhook(kSecret, 1'800'000'000, kBody);
  EXPECT_TRUE(VerifyWebhook(kSecret, header, kBody, 1'800'000'010, seconds(300)));
}

TEST(WebhookSignature, RejectsAnotherBodySecretOrAnOldTimestamp) {
  const std::string header = SignWebhook(kSecret, 1'800'000'000, kBody);
  EXPECT_FALSE(
      VerifyWebhook(kSecret, header, std::string(kBody) + " ", 1'800'000'000, seconds(300)));
  EXPECT_FALSE(VerifyWebhook("another-secret", header, kBody, 1'800'000'000, seconds(300)));
  EXPECT_FALSE(VerifyWebhook(kSecret, header, kBody, 1'800'000'301, seconds(300)));
  // The timestamp is signed: moving it forward breaks the signature.
  std::string replay = header;
  replay.replace(2, 10, "1800000300");
  EXPECT_FALSE(VerifyWebhook(kSecret, replay, kBody, 1'800'000'300, seconds(300)));
  EXPECT_FALSE(VerifyWebhook(kSecret, "garbage", kBody, 1'800'000'000, seconds(300)));
  EXPECT_FALSE(VerifyWebhook(kSecret, "t=abc,v1=00", kBody, 1'800'000'000, seconds(300)));
}

}  // namespace
}  // namespace amoauth::core
