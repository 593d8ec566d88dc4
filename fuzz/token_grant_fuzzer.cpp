// core::ParseTokenGrant and core::ParseAccountDomain: amoCRM's 200 answers to the token endpoint
// and the domain lookup. Invariants: never throws; an accepted grant has both tokens and a
// positive lifetime and survives a serialise → parse round trip unchanged; a refusal is
// kAmoMalformedResponse (whose message is fixed text: nothing of the body).
#include <boost/json.hpp>

#include "amoauth/core/token_exchange.hpp"
#include "fuzz_check.hpp"

namespace {

namespace core = amoauth::core;
namespace json = boost::json;

void CheckRefusal(const boost::system::error_code& error) {
  FUZZ_CHECK(error == amoauth::make_error_code(amoauth::Errc::kAmoMalformedResponse));
}

void CheckGrant(std::string_view body) {
  auto grant = core::ParseTokenGrant(body);
  if (!grant) {
    CheckRefusal(grant.error());
    return;
  }
  FUZZ_CHECK(!grant->access_token.Empty());
  FUZZ_CHECK(!grant->refresh_token.Empty());
  FUZZ_CHECK(grant->expires_in > 0);
  json::object o{{"token_type", grant->token_type},
                 {"expires_in", grant->expires_in},
                 {"access_token", grant->access_token.Reveal()},
                 {"refresh_token", grant->refresh_token.Reveal()}};
  if (grant->server_time) {
    o["server_time"] = *grant->server_time;
  }
  auto again = core::ParseTokenGrant(json::serialize(o));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->token_type == grant->token_type);
  FUZZ_CHECK(again->expires_in == grant->expires_in);
  FUZZ_CHECK(again->access_token.Reveal() == grant->access_token.Reveal());
  FUZZ_CHECK(again->refresh_token.Reveal() == grant->refresh_token.Reveal());
  FUZZ_CHECK(again->server_time == grant->server_time);
}

void CheckDomain(std::string_view body) {
  auto domain = core::ParseAccountDomain(body);
  if (!domain) {
    CheckRefusal(domain.error());
    return;
  }
  FUZZ_CHECK(domain->id > 0);
  FUZZ_CHECK(!domain->domain.empty());
  json::object o{{"id", domain->id}, {"subdomain", domain->subdomain}, {"domain", domain->domain}};
  auto again = core::ParseAccountDomain(json::serialize(o));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->id == domain->id);
  FUZZ_CHECK(again->subdomain == domain->subdomain);
  FUZZ_CHECK(again->domain == domain->domain);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = amoauth::fuzz::AsText(data, size);
  CheckGrant(body);
  CheckDomain(body);
  return 0;
}
