#include "amoauth/core/state_token.hpp"

#include <gtest/gtest.h>

#include "amoauth/crypto/base64.hpp"
#include "amoauth/crypto/digest.hpp"
#include "fake_clock.hpp"

namespace amoauth::core {
namespace {

TEST(StateToken, Is32RandomBytesAsBase64Url) {
  testing::CountingRandom random;
  const std::string state = GenerateState(random);
  EXPECT_EQ(state.size(), 43U);
  std::string expected;
  for (int i = 1; i <= 32; ++i) {
    expected += static_cast<char>(i);
  }
  EXPECT_EQ(crypto::Base64UrlDecode(state), expected);
  EXPECT_TRUE(LooksLikeState(state));
}

TEST(StateToken, SuccessiveStatesDiffer) {
  testing::CountingRandom random;
  EXPECT_NE(GenerateState(random), GenerateState(random));
}

TEST(StateToken, HashIsLowercaseHexSha256) {
  EXPECT_EQ(HashState("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashState("state"), crypto::Sha256Hex("state"));
}

TEST(StateToken, ShapeCheck) {
  EXPECT_TRUE(LooksLikeState(std::string(16, 'a')));
  EXPECT_TRUE(LooksLikeState(std::string(128, '_')));
  EXPECT_TRUE(LooksLikeState("AZaz09-_AZaz09-_"));
  EXPECT_FALSE(LooksLikeState(""));
  EXPECT_FALSE(LooksLikeState(std::string(15, 'a')));
  EXPECT_FALSE(LooksLikeState(std::string(129, 'a')));
  EXPECT_FALSE(LooksLikeState("aaaaaaaaaaaaaaa="));
  EXPECT_FALSE(LooksLikeState("aaaaaaaaaaaaaaa+"));
  EXPECT_FALSE(LooksLikeState("aaaaaaa aaaaaaaa"));
  EXPECT_FALSE(LooksLikeState(std::string("aaaaaaaa\0aaaaaaa", 16)));
}

}  // namespace
}  // namespace amoauth::core
