#pragma once

#include <cstddef>
#include <string>

/// Random identifiers for the simulated amoCRM, from OpenSSL's RAND_bytes. Thread-safe.
namespace amoauth::sandbox {

/// 2 * `bytes` lowercase hex characters. Throws std::runtime_error if the CSPRNG fails.
[[nodiscard]] std::string RandomHex(std::size_t bytes);
/// A version-4 UUID, lowercase ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
[[nodiscard]] std::string RandomUuid();
/// `length` characters from [A-Za-z0-9].
[[nodiscard]] std::string RandomAlphanumeric(std::size_t length);

}  // namespace amoauth::sandbox
