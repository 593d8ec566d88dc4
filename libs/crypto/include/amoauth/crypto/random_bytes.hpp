#pragma once

#include <cstdint>
#include <span>

namespace amoauth::crypto {

/// Fills `out` from OpenSSL's CSPRNG. Aborts the process if the generator fails: continuing
/// without randomness would mint guessable states and nonces.
void FillRandom(std::span<std::uint8_t> out);

}  // namespace amoauth::crypto
