#pragma once

#include <cstdint>
#include <span>

namespace amoauth::core {

/// Cryptographically strong random bytes, injected so that tests are deterministic.
/// Implementations are thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<std::uint8_t> out) = 0;
};

/// OpenSSL's RAND_bytes.
class SystemRandom final : public Random {
 public:
  void Fill(std::span<std::uint8_t> out) override;
};

}  // namespace amoauth::core
