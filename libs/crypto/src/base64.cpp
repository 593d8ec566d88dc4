#include "amoauth/crypto/base64.hpp"

#include <array>
#include <cstdint>

namespace amoauth::crypto {
namespace {

constexpr std::string_view kStandardAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::uint8_t kInvalid = 0xFF;

using DecodeTable = std::array<std::uint8_t, 256>;

constexpr DecodeTable MakeDecodeTable(std::string_view alphabet) {
  DecodeTable table{};
  for (auto& entry : table) {
    entry = kInvalid;
  }
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr DecodeTable kStandardTable = MakeDecodeTable(kStandardAlphabet);
constexpr DecodeTable kUrlTable = MakeDecodeTable(kUrlAlphabet);

std::string Encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
                                (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U) |
                                std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out.push_back(alphabet[(group >> 18U) & 0x3FU]);
    out.push_back(alphabet[(group >> 12U) & 0x3FU]);
    out.push_back(alphabet[(group >> 6U) & 0x3FU]);
    out.push_back(alphabet[group & 0x3FU]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t group = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U;
    out.push_back(alphabet[(group >> 18U) & 0x3FU]);
    out.push_back(alphabet[(group >> 12U) & 0x3FU]);
    if (pad) {
      out.append("==");
    }
  } else if (rest == 2) {
    const std::uint32_t group = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
                                (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U);
    out.push_back(alphabet[(group >> 18U) & 0x3FU]);
    out.push_back(alphabet[(group >> 12U) & 0x3FU]);
    out.push_back(alphabet[(group >> 6U) & 0x3FU]);
    if (pad) {
      out.push_back('=');
    }
  }
  return out;
}

// Decodes unpadded symbols (padding already stripped and validated by the caller). Rejects a
// length that cannot come from whole bytes and non-zero leftover bits, so every byte string has
// exactly one accepted encoding: a key or token that decodes "almost" right is a bug upstream.
std::optional<std::string> DecodeUnpadded(std::string_view text, const DecodeTable& table) {
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t buffer = 0;
  unsigned bits = 0;
  for (const char c : text) {
    const std::uint8_t value = table[static_cast<unsigned char>(c)];
    if (value == kInvalid) {
      return std::nullopt;
    }
    buffer = (buffer << 6U) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFFU));
    }
  }
  if ((buffer & ((1U << bits) - 1U)) != 0) {
    return std::nullopt;
  }
  return out;
}

// Strips up to two trailing '='; nullopt if the padded text is not a whole number of quads.
std::optional<std::string_view> StripPadding(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t pads = 0;
  while (pads < 2 && !text.empty() && text.back() == '=') {
    text.remove_suffix(1);
    ++pads;
  }
  // A third '=' or '=' inside the text stays behind and fails the alphabet check.
  return text;
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  return Encode(bytes, kStandardAlphabet, /*pad=*/true);
}

std::optional<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && IsAsciiSpace(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && IsAsciiSpace(text.back())) {
    text.remove_suffix(1);
  }
  const auto unpadded = StripPadding(text);
  if (!unpadded) {
    return std::nullopt;
  }
  return DecodeUnpadded(*unpadded, kStandardTable);
}

std::string Base64UrlEncode(std::string_view bytes) {
  return Encode(bytes, kUrlAlphabet, /*pad=*/false);
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (!text.empty() && text.back() == '=') {
    const auto unpadded = StripPadding(text);
    if (!unpadded) {
      return std::nullopt;
    }
    text = *unpadded;
  }
  return DecodeUnpadded(text, kUrlTable);
}

}  // namespace amoauth::crypto
