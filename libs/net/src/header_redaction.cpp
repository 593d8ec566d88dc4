#include "amoauth/net/header_redaction.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace amoauth::net {
namespace {

bool NameEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

constexpr std::array<std::string_view, 5> kCredentialHeaders = {
    "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"};

}  // namespace

bool IsCredentialHeader(std::string_view name) {
  return std::any_of(kCredentialHeaders.begin(), kCredentialHeaders.end(), [&](std::string_view h) {
    return NameEquals(h, name);
  });
}

std::string RedactedHeaderValue(std::string_view name, std::string_view value) {
  if (!IsCredentialHeader(name)) {
    return std::string(value);
  }
  // "Bearer <token>", "Basic <base64>": the scheme is a token of letters (RFC 9110 §11.1); keep
  // it, since which scheme was used helps debugging and says nothing secret.
  const auto space = value.find(' ');
  if (space != std::string_view::npos && space > 0 &&
      std::all_of(value.begin(),
                  value.begin() + static_cast<std::ptrdiff_t>(space),
                  [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }) &&
      (NameEquals(name, "Authorization") || NameEquals(name, "Proxy-Authorization"))) {
    return std::string(value.substr(0, space)) + " ***";
  }
  return "***";
}

std::string FormatHeadersForLog(const HttpHeaders& headers) {
  std::string out;
  for (const auto& field : headers.All()) {
    if (!out.empty()) {
      out += "; ";
    }
    out += field.name;
    out += ": ";
    out += RedactedHeaderValue(field.name, field.value);
  }
  return out;
}

}  // namespace amoauth::net
