// core::DecodeAccessTokenClaims: the JWT amoCRM issues (and the long-lived tokens people paste).
// Each input is tried twice: as the whole token, and as the payload of one (header.<base64url of
// the input>.sig) so the fuzzer reaches the JSON claims without learning base64 first.
// Invariants: never throws; accepted claims have a positive account id and survive a
// serialise → encode → decode round trip; base64url decoding accepts exactly one encoding of each
// byte string (decode then encode gives the input back).
#include <boost/json.hpp>

#include "amoauth/core/access_token_claims.hpp"
#include "amoauth/crypto/base64.hpp"
#include "fuzz_check.hpp"

namespace {

namespace core = amoauth::core;
namespace crypto = amoauth::crypto;
namespace json = boost::json;

void CheckClaims(std::string_view jwt) {
  auto claims = core::DecodeAccessTokenClaims(jwt);
  if (!claims) {
    FUZZ_CHECK(claims.error() == amoauth::make_error_code(amoauth::Errc::kAmoMalformedResponse));
    return;
  }
  FUZZ_CHECK(claims->account_id > 0);
  json::array scopes;
  for (const auto& scope : claims->scopes) {
    scopes.emplace_back(scope);
  }
  json::object payload{{"account_id", claims->account_id},
                       {"aud", claims->client_id},
                       {"sub", claims->user_id},
                       {"base_domain", claims->base_domain},
                       {"api_domain", claims->api_domain},
                       {"scopes", std::move(scopes)}};
  if (claims->expires_at != 0) {
    payload["exp"] = claims->expires_at;
  }
  const std::string token = "e30." + crypto::Base64UrlEncode(json::serialize(payload)) + ".sig";
  auto again = core::DecodeAccessTokenClaims(token);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->account_id == claims->account_id);
  FUZZ_CHECK(again->client_id == claims->client_id);
  FUZZ_CHECK(again->user_id == claims->user_id);
  FUZZ_CHECK(again->base_domain == claims->base_domain);
  FUZZ_CHECK(again->api_domain == claims->api_domain);
  FUZZ_CHECK(again->expires_at == claims->expires_at);
  FUZZ_CHECK(again->scopes == claims->scopes);
}

void CheckBase64Url(std::string_view text) {
  FUZZ_CHECK(crypto::Base64UrlDecode(crypto::Base64UrlEncode(text)) == std::string(text));
  if (text.find('=') != std::string_view::npos) {
    return;  // padding is accepted and dropped: no unique form to compare
  }
  if (auto decoded = crypto::Base64UrlDecode(text)) {
    FUZZ_CHECK(crypto::Base64UrlEncode(*decoded) == text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = amoauth::fuzz::AsText(data, size);
  CheckClaims(input);
  CheckClaims("e30." + crypto::Base64UrlEncode(input) + ".sig");
  CheckBase64Url(input);
  return 0;
}
