#include "amoauth/core/authorize_url.hpp"

#include <string_view>

#include <boost/url.hpp>

namespace amoauth::core {
namespace {

namespace urls = boost::urls;

// params().append() leaves '+' and '=' literal in values, which RFC 3986 allows, but amoCRM's
// consent page is PHP and form-decodes the query: a literal '+' would come back as a space.
// Encoding everything outside the unreserved set reads the same under every decoder.
void AppendParam(urls::url& url, std::string_view key, std::string_view value) {
  const std::string encoded = urls::encode(value, urls::unreserved_chars);
  url.encoded_params().append(urls::param_pct_view(key, encoded));
}

}  // namespace

std::string BuildAuthorizeUrl(const AuthorizeUrlParams& p) {
  auto parsed = urls::parse_uri(p.consent_url);
  if (!parsed) {
    // Config validation rejects a consent URL that is not an absolute URI, so this is a bug on
    // our side; an empty URL fails loudly in the browser instead of pointing somewhere odd.
    return {};
  }
  urls::url url = *parsed;
  AppendParam(url, "client_id", p.client_id);
  AppendParam(url, "state", p.state);
  AppendParam(url, "mode", ToString(p.mode));
  return std::string(url.buffer());
}

}  // namespace amoauth::core
