#pragma once

#include <string>
#include <string_view>

#include "amoauth/core/random.hpp"

namespace amoauth::core {

/// A fresh OAuth `state`: 32 random bytes (256 bits), base64url without padding (43 chars).
[[nodiscard]] std::string GenerateState(Random& random);

/// What the server stores and looks up instead of the state itself: lowercase hex SHA-256.
/// Looking a state up by its hash means the database never compares the secret byte by byte
/// (no timing oracle) and a leaked table does not reveal live states.
[[nodiscard]] std::string HashState(std::string_view state);

/// A cheap shape check before any lookup: 16..128 chars of [A-Za-z0-9_-].
[[nodiscard]] bool LooksLikeState(std::string_view state);

}  // namespace amoauth::core
