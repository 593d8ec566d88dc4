#include "random_ids.hpp"

#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <openssl/rand.h>

namespace amoauth::sandbox {
namespace {

std::vector<std::uint8_t> RandomBytes(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    throw std::runtime_error("sandbox: RAND_bytes failed");
  }
  return out;
}

std::string Hex(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4U]);
    out.push_back(kDigits[b & 0x0FU]);
  }
  return out;
}

}  // namespace

std::string RandomHex(std::size_t bytes) {
  return Hex(RandomBytes(bytes));
}

std::string RandomUuid() {
  std::vector<std::uint8_t> b = RandomBytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0FU) | 0x40U);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3FU) | 0x80U);  // RFC 4122 variant
  const std::string hex = Hex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string RandomAlphanumeric(std::size_t length) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(length);
  while (out.size() < length) {
    for (const std::uint8_t b : RandomBytes(length)) {
      // 62 * 4 = 248: reject the top 8 values so every character is equally likely.
      if (b < 248 && out.size() < length) {
        out.push_back(kAlphabet[b % kAlphabet.size()]);
      }
    }
  }
  return out;
}

}  // namespace amoauth::sandbox
