#include "amoauth/crypto/random_bytes.hpp"

#include <climits>
#include <cstdio>
#include <cstdlib>

#include <openssl/rand.h>

namespace amoauth::crypto {

void FillRandom(std::span<std::uint8_t> out) {
  // RAND_bytes takes an int length; split so huge spans cannot overflow it.
  while (!out.empty()) {
    const std::size_t chunk = out.size() < static_cast<std::size_t>(INT_MAX)
                                  ? out.size()
                                  : static_cast<std::size_t>(INT_MAX);
    if (RAND_bytes(out.data(), static_cast<int>(chunk)) != 1) {
      std::fputs(
          "amoauth: OpenSSL RAND_bytes failed; aborting rather than run without randomness\n",
          stderr);
      std::abort();
    }
    out = out.subspan(chunk);
  }
}

}  // namespace amoauth::crypto
