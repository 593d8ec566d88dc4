#include "amoauth/crypto/random_bytes.hpp"

#include <array>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace amoauth::crypto {
namespace {

TEST(RandomBytes, TwoDrawsDiffer) {
  std::array<std::uint8_t, 32> a{};
  std::array<std::uint8_t, 32> b{};
  FillRandom(a);
  FillRandom(b);
  // 2^-256 chance of a false failure.
  EXPECT_NE(a, b);
}

TEST(RandomBytes, EmptySpanIsANoOp) {
  std::vector<std::uint8_t> empty;
  FillRandom(empty);
  EXPECT_TRUE(empty.empty());
}

}  // namespace
}  // namespace amoauth::crypto
