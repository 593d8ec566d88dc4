#include "amoauth/core/web_origin.hpp"

#include <algorithm>

#include <boost/url/parse.hpp>

namespace amoauth::core {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

}  // namespace

std::optional<std::string> WebOrigin(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || !parsed->has_authority() || parsed->encoded_host().empty() ||
      parsed->has_userinfo()) {
    return std::nullopt;
  }
  const auto scheme = parsed->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return std::nullopt;
  }
  std::string origin = Lower(parsed->scheme());
  origin += "://";
  origin += Lower(parsed->encoded_host());  // keeps [::1]'s brackets
  if (parsed->has_port() && !parsed->port().empty()) {
    const bool default_port = (scheme == boost::urls::scheme::http && parsed->port() == "80") ||
                              (scheme == boost::urls::scheme::https && parsed->port() == "443");
    if (!default_port) {
      origin += ':';
      origin += parsed->port();
    }
  }
  return origin;
}

}  // namespace amoauth::core
