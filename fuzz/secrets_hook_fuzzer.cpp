// The secrets webhook of external integrations as a whole (WebApp::SecretsHook: ParseSecretsBody
// — JSON first, then a form — and ConnectFlow::AcceptSecrets), in memory. The input is the body;
// "{state}" in it becomes a metadata state the world minted just before, so the fuzzer reaches
// the stored integration. Invariants (CheckAnswer): no 5xx, no secret in the answer or the logs;
// plus: a 200 stores exactly one integration, whole (client id, sealed secret, state hash), and
// anything else stores none; the delivered client_secret never comes back in the answer or logs.
#include <boost/json.hpp>

#include "amoauth/net/http_message.hpp"
#include "web_world.hpp"

namespace {

namespace fuzz = amoauth::fuzz;
using amoauth::testing::RunCo;

/// The client_secret the body carries, read the way the hook documents it (JSON, else a form).
std::string DeliveredSecret(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(body, ec);
  if (!ec) {
    const auto* object = value.if_object();
    const auto* secret = object != nullptr ? object->if_contains("client_secret") : nullptr;
    return secret != nullptr && secret->is_string() ? std::string(secret->get_string())
                                                    : std::string();
  }
  if (auto form = amoauth::net::ParseQuery(body)) {
    if (auto secret = amoauth::net::Find(*form, "client_secret")) {
      return std::string(*secret);
    }
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::WebWorld world;
  auto start = RunCo(world.ioc,
                     world.flow.Start(amoauth::core::ConsentMode::kPopup,
                                      amoauth::service::StatePurpose::kCreateIntegration));
  FUZZ_CHECK(start.has_value());
  const std::string body =
      fuzz::Substitute(std::string(fuzz::AsText(data, size)), "{state}", start->state);

  const auto response = world.Send("POST", "/api/v1/integrations/amo-crm/secrets", body);
  fuzz::CheckAnswer(world, response, body);

  auto integrations = RunCo(world.ioc, world.stores.ListIntegrations());
  FUZZ_CHECK(integrations.has_value());
  if (response.status == 200) {
    FUZZ_CHECK(integrations->size() == 1);
    const auto& stored = integrations->front();
    FUZZ_CHECK(!stored.client_id.empty());
    FUZZ_CHECK(!stored.client_secret.Empty());
    FUZZ_CHECK(!stored.state_hash.empty());
    FUZZ_CHECK(stored.client_secret.Reveal() == DeliveredSecret(body));
  } else {
    FUZZ_CHECK(integrations->empty());
  }
  const std::string secret = DeliveredSecret(body);
  FUZZ_CHECK(!fuzz::Leaks(response.body, secret));
  FUZZ_CHECK(!fuzz::Leaks(fuzz::LogCapture::Instance().Text(), secret));
  return 0;
}
