#pragma once

#include <string_view>

namespace amoauth::crypto {

/// Compares two secrets in time that depends only on their lengths (CRYPTO_memcmp).
/// Unequal lengths return false at once: lengths of our secrets are not secret.
[[nodiscard]] bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace amoauth::crypto
