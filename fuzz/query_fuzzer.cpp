// net::ParseQuery: every query string and form body amoauth reads (the callback, the hooks, the
// secrets webhook's form variant). Invariants: it never throws; what it accepts, encoded again
// (every byte outside RFC 3986's unreserved set percent-encoded), parses back to the same pairs.
#include <string>

#include "amoauth/net/http_message.hpp"
#include "fuzz_check.hpp"

namespace {

std::string PercentEncode(std::string_view text) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4U];
      out += kHex[c & 0xFU];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = amoauth::fuzz::AsText(data, size);
  auto params = amoauth::net::ParseQuery(input);
  if (!params) {
    FUZZ_CHECK(params.error() == amoauth::make_error_code(amoauth::Errc::kInvalidArgument));
    return 0;
  }
  std::string encoded;
  for (const auto& [key, value] : *params) {
    if (!encoded.empty()) {
      encoded += '&';
    }
    encoded += PercentEncode(key) + "=" + PercentEncode(value);
  }
  auto again = amoauth::net::ParseQuery(encoded);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *params);
  for (const auto& [key, value] : *params) {
    // Find gives the first pair of that name.
    const auto found = amoauth::net::Find(*params, key);
    FUZZ_CHECK(found.has_value());
  }
  return 0;
}
