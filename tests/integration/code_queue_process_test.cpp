// A real `amoauth serve` receives a widget-install hook, dies by SIGKILL before the code is
// exchanged, and the restarted process exchanges it: the code queue is durable (issue 4, item 3).
#include <chrono>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using Steady = std::chrono::steady_clock;

template <class Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit) {
  const auto deadline = Steady::now() + limit;
  while (!done()) {
    if (Steady::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

TEST(CodeQueueProcess, AHookCodeSurvivesSigkillAndIsExchangedAfterTheRestart) {
  // A short amoCRM timeout makes a claim short (2 × it + 5 s = 11 s): if the process dies before
  // it records the failed attempt, the code comes back when the claim ends.
  ProcessHarness h({.processes = 1, .extra_env = {{"AMOAUTH_AMO_TIMEOUT_MS", "3000"}}});
  // amoCRM's token endpoint fails the first exchange (nothing is consumed): the code waits for
  // its retry in the queue, and the process dies meanwhile.
  auto fault = h.SandboxPost(
      "/sandbox/faults", "application/json", R"({"token_endpoint":{"status":503,"times":1}})");
  ASSERT_EQ(fault.status, 200) << fault.body;

  const std::string query = h.WidgetHookQuery(0);
  const auto sent = Steady::now();
  auto answer = h.Get(h.BaseUrl(0) + ProcessHarness::kCallbackPath + "?" + query);
  ASSERT_EQ(answer.status, 200) << answer.body << answer.error;
  EXPECT_LT(Steady::now() - sent, std::chrono::milliseconds(1000));

  ASSERT_TRUE(WaitFor([&] { return h.SandboxCounter("token_endpoint_faults") >= 1; },
                      std::chrono::seconds(15)))
      << h.StderrTail(0);
  h.Kill(0, SIGKILL);
  EXPECT_EQ(h.SandboxCounter("codes_exchanged"), 0);

  h.Restart(0);
  ASSERT_TRUE(WaitFor([&] { return h.Call(0, "GET", "/v1/accounts/30000001").status == 200; },
                      std::chrono::seconds(30)))
      << h.StderrTail(0);
  EXPECT_EQ(h.SandboxCounter("codes_exchanged"), 1);
  auto account = boost::json::parse(h.Call(0, "GET", "/v1/accounts/30000001").body).as_object();
  EXPECT_EQ(account.at("status").as_string(), "active");
  EXPECT_EQ(account.at("base_domain").as_string(), "example.amocrm.ru");
}

}  // namespace
}  // namespace amoauth::testing
