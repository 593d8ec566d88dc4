#include "amoauth/core/state_token.hpp"

#include <array>
#include <cstdint>

#include "amoauth/crypto/base64.hpp"
#include "amoauth/crypto/digest.hpp"

namespace amoauth::core {
namespace {

constexpr std::size_t kStateBytes = 32;
constexpr std::size_t kMinStateChars = 16;
constexpr std::size_t kMaxStateChars = 128;

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string GenerateState(Random& random) {
  std::array<std::uint8_t, kStateBytes> bytes{};
  random.Fill(bytes);
  return crypto::Base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string HashState(std::string_view state) {
  return crypto::Sha256Hex(state);
}

bool LooksLikeState(std::string_view state) {
  if (state.size() < kMinStateChars || state.size() > kMaxStateChars) {
    return false;
  }
  for (const char c : state) {
    if (!IsBase64UrlChar(c)) {
      return false;
    }
  }
  return true;
}

}  // namespace amoauth::core
