// amoCRM's disconnect hook as a whole (WebApp::DisconnectHook: net::ParseQuery, the signature
// check, AccountService::Disconnect), in memory, with account 30000001 connected through the
// world's integration. The input is the query string; "{signature}" in it becomes the right
// signature for the client_uuid (or client_id) and account_id the query carries, so the fuzzer
// gets past the HMAC. Invariants (CheckAnswer): no 5xx, no secret in the answer or the logs, no
// half-written row; plus: anything but a 200 leaves the row exactly as it was, and a 200 leaves it
// either as it was (the hook named another account) or disconnected with both tokens erased —
// and then the hook named this account. amoCRM in this world has revoked the account's tokens (a
// genuine disconnect), so the confirming refresh a signed hook leads (threat 4) is refused: at most
// one refresh, and only for a hook that names this account.
#include <charconv>

#include "amoauth/core/disconnect_signature.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/net/http_message.hpp"
#include "web_world.hpp"

namespace {

namespace fuzz = amoauth::fuzz;
using amoauth::testing::RunCo;

std::string Signed(std::string query) {
  constexpr std::string_view kPlaceholder = "{signature}";
  if (query.find(kPlaceholder) == std::string::npos) {
    return query;
  }
  auto params = amoauth::net::ParseQuery(fuzz::Substitute(query, kPlaceholder, "0"));
  if (!params) {
    return query;
  }
  auto client = amoauth::net::Find(*params, "client_uuid");
  if (!client) {
    client = amoauth::net::Find(*params, "client_id");
  }
  const auto account = amoauth::net::Find(*params, "account_id");
  if (!client || !account) {
    return query;
  }
  const std::string signature = amoauth::crypto::HmacSha256Hex(
      fuzz::kClientSecret, std::string(*client) + "|" + std::string(*account));
  FUZZ_CHECK(
      amoauth::core::VerifyDisconnectSignature(fuzz::kClientSecret, *client, *account, signature));
  return fuzz::Substitute(std::move(query), kPlaceholder, signature);
}

/// The account id the hook names, as AccountService reads it; 0 when it names none.
std::int64_t NamedAccount(const std::string& query) {
  auto params = amoauth::net::ParseQuery(query);
  const auto text = params ? amoauth::net::Find(*params, "account_id") : std::nullopt;
  std::int64_t id = 0;
  if (!text || std::from_chars(text->data(), text->data() + text->size(), id).ptr !=
                   text->data() + text->size()) {
    return 0;
  }
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::WebWorld world;
  world.SeedAccount();
  world.amo.refresh_error = amoauth::Errc::kAmoTokenRevoked;
  const amoauth::core::AccountKey key{30000001, amoauth::testing::kClient};
  auto before = RunCo(world.ioc, world.stores.Find(key));
  FUZZ_CHECK(before.has_value() && before->has_value());

  const std::string query = Signed(std::string(fuzz::AsText(data, size)));
  const auto response = world.Send("GET", "/api/v1/integrations/amo-crm/disconnect?" + query);
  fuzz::CheckAnswer(world, response, query);

  auto after = RunCo(world.ioc, world.stores.Find(key));
  FUZZ_CHECK(after.has_value() && after->has_value());
  const amoauth::core::Connection& was = **before;
  const amoauth::core::Connection& now = **after;
  const bool unchanged = now.version == was.version && now.status == was.status &&
                         now.access_token.Reveal() == was.access_token.Reveal() &&
                         now.refresh_token.Reveal() == was.refresh_token.Reveal();
  if (response.status != 200) {
    FUZZ_CHECK(unchanged);
  } else if (!unchanged) {
    FUZZ_CHECK(now.status == amoauth::core::ConnectionStatus::kDisconnected);
    FUZZ_CHECK(now.access_token.Empty() && now.refresh_token.Empty());
    FUZZ_CHECK(NamedAccount(query) == 30000001);
  }
  FUZZ_CHECK(world.amo.exchanges == 0);
  FUZZ_CHECK(world.amo.refreshes == 0 ||
             (world.amo.refreshes == 1 && NamedAccount(query) == 30000001));
  return 0;
}
