#include "amoauth/crypto/constant_time.hpp"

#include <openssl/crypto.h>

namespace amoauth::crypto {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  // CRYPTO_memcmp with length 0 is fine, but data() of an empty view may be null.
  if (a.empty()) {
    return true;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace amoauth::crypto
