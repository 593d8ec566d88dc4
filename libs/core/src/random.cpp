#include "amoauth/core/random.hpp"

#include "amoauth/crypto/random_bytes.hpp"

namespace amoauth::core {

void SystemRandom::Fill(std::span<std::uint8_t> out) {
  crypto::FillRandom(out);
}

}  // namespace amoauth::core
