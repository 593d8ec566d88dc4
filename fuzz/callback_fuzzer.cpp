// The Redirect URI as a whole (WebApp::Callback: net::ParseQuery, CallbackParams, ConnectFlow,
// the widget-install / exchange_api_key hooks and the code queue behind them), in memory.
// The input is the query string; "{state}" in it becomes a state the world minted just before
// (a connect state, popup or post_message by the input's length), so the fuzzer reaches the
// exchange and the stored row. Invariants (CheckAnswer): no 5xx, no secret in the answer or the
// logs, no half-written row; plus: a code goes to amoCRM at most once per request and the
// callback's code never comes back in the answer or the logs.
#include "amoauth/net/http_message.hpp"
#include "web_world.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using amoauth::fuzz::Leaks;
  amoauth::fuzz::WebWorld world;
  const auto mode =
      size % 2 == 0 ? amoauth::core::ConsentMode::kPopup : amoauth::core::ConsentMode::kPostMessage;
  auto start = amoauth::testing::RunCo(world.ioc, world.flow.Start(mode));
  FUZZ_CHECK(start.has_value());
  const std::string query = amoauth::fuzz::Substitute(
      std::string(amoauth::fuzz::AsText(data, size)), "{state}", start->state);

  const auto response = world.Send("GET", "/api/v1/integrations/amo-crm/callback?" + query);
  amoauth::fuzz::CheckAnswer(world, response, query);
  FUZZ_CHECK(world.amo.exchanges <= 1);

  // A hook's code waits in the queue: exchange it as the worker would, then look again.
  auto ran = amoauth::testing::RunCo(world.ioc, world.codes.RunOnce());
  FUZZ_CHECK(ran.has_value());
  FUZZ_CHECK(world.RowsAreWhole());
  FUZZ_CHECK(world.amo.exchanges <= 1);
  FUZZ_CHECK(amoauth::fuzz::WebWorld::HoldsNoWorldSecret(
      amoauth::fuzz::LogCapture::Instance().Text(), query));

  if (auto params = amoauth::net::ParseQuery(query)) {
    if (auto code = amoauth::net::Find(*params, "code")) {
      FUZZ_CHECK(!Leaks(response.body, *code));
      FUZZ_CHECK(!Leaks(amoauth::fuzz::LogCapture::Instance().Text(), *code));
    }
  }
  return 0;
}
