#include "amoauth/core/random.hpp"

#include <array>
#include <cstdint>

#include <gtest/gtest.h>

namespace amoauth::core {
namespace {

TEST(SystemRandom, FillsFromTheCsprng) {
  SystemRandom random;
  std::array<std::uint8_t, 32> a{};
  std::array<std::uint8_t, 32> b{};
  random.Fill(a);
  random.Fill(b);
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
}

}  // namespace
}  // namespace amoauth::core
