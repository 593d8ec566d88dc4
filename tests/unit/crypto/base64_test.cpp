#include "amoauth/crypto/base64.hpp"

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

namespace amoauth::crypto {
namespace {

// RFC 4648 §10.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kRfc4648Vectors = {{
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
}};

std::string AllByteValues() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes += static_cast<char>(i);
  }
  return bytes;
}

TEST(Base64, EncodesRfc4648Vectors) {
  for (const auto& [plain, encoded] : kRfc4648Vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded) << plain;
  }
}

TEST(Base64, DecodesRfc4648Vectors) {
  for (const auto& [plain, encoded] : kRfc4648Vectors) {
    EXPECT_EQ(Base64Decode(encoded), plain) << encoded;
  }
}

TEST(Base64, RoundTripsEveryByteAndLength) {
  const std::string bytes = AllByteValues();
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const std::string input = bytes.substr(bytes.size() - n);
    EXPECT_EQ(Base64Decode(Base64Encode(input)), input) << n;
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(input)), input) << n;
  }
}

TEST(Base64, IgnoresSurroundingWhitespace) {
  EXPECT_EQ(Base64Decode("  Zm9vYmFy\n"), "foobar");
  EXPECT_EQ(Base64Decode("\tZm8=\r\n"), "fo");
}

TEST(Base64, RejectsMalformedInput) {
  constexpr std::array<std::string_view, 11> kBad = {
      "Zg",        // missing padding
      "Zg=",       // short padding
      "Zg===",     // too much padding
      "Z===",      // a lone symbol cannot encode a byte
      "====",      // padding only
      "Zm9v=",     // padding where no byte is missing
      "Zm=v",      // padding inside
      "Zm 9v",     // inner whitespace
      "Zm-v",      // url alphabet
      "Zh==",      // non-zero leftover bits: not the canonical encoding of any byte
      "Zm9v\xff",  // non-ASCII
  };
  for (const auto bad : kBad) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(Base64Decode(std::string_view("Zm\0v", 4)).has_value());
}

TEST(Base64Url, UsesUrlAlphabetWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64Encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
}

TEST(Base64Url, AcceptsWithAndWithoutPadding) {
  EXPECT_EQ(Base64UrlDecode("Zg"), "f");
  EXPECT_EQ(Base64UrlDecode("Zg=="), "f");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(Base64UrlDecode("-_8="), "\xfb\xff");
}

TEST(Base64Url, RejectsMalformedInput) {
  EXPECT_FALSE(Base64UrlDecode("+/8").has_value());  // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zg=").has_value());  // partial padding
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());    // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());   // non-zero leftover bits
  EXPECT_FALSE(Base64UrlDecode(" Zg").has_value());  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Z.g").has_value());  // JWT separator
}

}  // namespace
}  // namespace amoauth::crypto
