// A real `amoauth serve` receives a widget-install hook, dies by SIGKILL before the code is
// exchanged, and the restarted process exchanges it: the code queue is durable (issue 4, item 3).
#include <chrono>
#include <thread>

#include <boost/json.hpp>
#include <boost/url.hpp>
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

/// A code the sandbox issued for the account, as amoCRM's widget-install hook would carry it:
/// taken from the consent page's redirect, without its state.
std::string WidgetHookQuery(ProcessHarness& h) {
  auto started = h.Call(0, "POST", "/v1/connect", R"({"mode":"post_message"})");
  EXPECT_EQ(started.status, 201) << started.body;
  const std::string state(boost::json::parse(started.body).as_object().at("state").as_string());
  boost::urls::url form;
  form.params().append({"client_id", h.SandboxIntegration().client_id});
  form.params().append({"state", state});
  form.params().append({"mode", "post_message"});
  form.params().append({"account_id", std::to_string(kSandboxAccountId)});
  form.params().append({"decision", "allow"});
  auto decided = h.SandboxPost(
      "/oauth/decision", "application/x-www-form-urlencoded", std::string(form.encoded_query()));
  const auto location = decided.headers.Get("Location");
  EXPECT_EQ(decided.status, 302) << decided.body;
  auto parsed = boost::urls::parse_absolute_uri(location.value_or(""));
  EXPECT_TRUE(parsed.has_value());
  boost::urls::url hook;
  for (const auto& param : parsed->params()) {
    if (param.key == "code" || param.key == "referer") {
      hook.params().append({param.key, param.value});
    }
  }
  hook.params().append({"from_widget", "1"});
  return std::string(hook.encoded_query());
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

  const std::string query = WidgetHookQuery(h);
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
