// Faults injected through the sandbox (issue 6, item 3): every kind of failure amoCRM's endpoints
// can show — 5xx, an HTML 403, 429 (one, or a storm), malformed 200 bodies, a dropped
// connection, a stalled answer, a slow body — on the refresh path, the proxy path and the code
// exchange; and the integrator's webhook receiver failing under the outbox. Each case shows that
// nothing is lost (the stored pair is not overwritten, the code or event is still delivered
// later) and that the status reported is the right one. amoauth's amoCRM budget is short here
// (kAmoTimeout), so every timeout is bounded; nothing sleeps a fixed time.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "amoauth/service/webhook_dispatcher.hpp"
#include "amoauth/webhook_client/http_webhook_sender.hpp"
#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Steady = std::chrono::steady_clock;
namespace json = boost::json;

constexpr std::int64_t kAccount = 30000001;
const std::string kAccountPath = "/v1/accounts/30000001";
/// amoauth's budget for one request to amoCRM in these tests: a stall outlasts it.
constexpr milliseconds kAmoTimeout{700};
/// A generous bound for one failed call: the budget, plus the machine being busy.
constexpr milliseconds kCallBound{5000};

json::object Body(const net::HttpResponse& r) {
  return json::parse(r.body).as_object();
}

std::int64_t Counter(ServiceHarness& h, std::string_view name) {
  return h.SandboxCounters().at(name).as_int64();
}

/// Waits (bounded) until `done()` holds; checks every 20 ms.
template <class Condition>
bool WaitFor(Condition done, milliseconds limit) {
  const auto deadline = Steady::now() + limit;
  while (!done()) {
    if (Steady::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

ServiceHarness::Options ShortTimeout() {
  ServiceHarness::Options options;
  options.amo_timeout = kAmoTimeout;
  return options;
}

void ScriptFault(ServiceHarness& h, const std::string& faults) {
  auto r = h.SandboxPost("/sandbox/faults", "application/json", faults);
  ASSERT_EQ(r.status, 200) << r.body;
}

/// The stored row of the account: what must survive a fault.
core::Connection StoredRow(ServiceHarness& h) {
  auto row = h.Await(h.Store().Find({kAccount, h.SandboxIntegration().client_id}));
  EXPECT_TRUE(row && *row);
  return row && *row ? **row : core::Connection{};
}

struct FaultCase {
  std::string name;
  std::string fault;  ///< the fault spec of one target, e.g. {"status":503}
  int status;         ///< what amoauth answers its caller
  std::string error;  ///< amoauth's error code; empty: amoCRM's answer passed through
  std::string words;  ///< in last_error (refresh path)
};

std::string CaseName(const ::testing::TestParamInfo<FaultCase>& info) {
  return info.param.name;
}

// --- The refresh path: POST /v1/accounts/{id}/refresh against a faulted token endpoint.

class RefreshFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(RefreshFaultTest, TheOldPairSurvivesAndTheFailureIsReportedInWords) {
  const FaultCase& c = GetParam();
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  ScriptFault(h, R"({"token_endpoint":)" + c.fault + "}");

  const auto sent = Steady::now();
  auto refreshed = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_LT(Steady::now() - sent, kCallBound) << "bounded by amoauth's amoCRM timeout";
  EXPECT_EQ(refreshed.status, c.status) << refreshed.body;
  EXPECT_EQ(Body(refreshed).at("error").as_string(), c.error) << refreshed.body;
  EXPECT_EQ(Counter(h, "token_endpoint_faults"), 1);
  EXPECT_EQ(Counter(h, "refreshes"), 0) << "the fault consumed nothing";

  // Reported in words; the pair is the one amoCRM still accepts, not garbage.
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "active");
  const auto& refresh = view.at("refresh").as_object();
  EXPECT_EQ(refresh.at("failures").as_int64(), 1);
  EXPECT_THAT(std::string(refresh.at("last_error").as_string()), HasSubstr(c.words));
  const core::Connection after = StoredRow(h);
  EXPECT_EQ(after.refresh_token, before.refresh_token);
  EXPECT_EQ(after.access_token, before.access_token);
  EXPECT_EQ(after.expires_at, before.expires_at);
  // The current token still works meanwhile.
  EXPECT_EQ(h.Call("GET", kAccountPath + "/token").status, 200);

  // After the backoff the next refresh, with the same refresh token, succeeds.
  h.AdvanceClocks(minutes(10));
  auto recovered = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_EQ(recovered.status, 200) << recovered.body;
  EXPECT_EQ(Counter(h, "refreshes"), 1);
  EXPECT_EQ(Counter(h, "refresh_token_reuses"), 0);
  view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("refresh").as_object().at("failures").as_int64(), 0);
  EXPECT_NE(StoredRow(h).refresh_token, before.refresh_token) << "rotated by the real refresh";
}

INSTANTIATE_TEST_SUITE_P(
    TokenEndpoint,
    RefreshFaultTest,
    ::testing::Values(
        FaultCase{"ServerError", R"({"status":503})", 502, "amo_server_error", "5xx"},
        FaultCase{"InternalError", R"({"status":500})", 502, "amo_server_error", "5xx"},
        FaultCase{"HtmlForbidden", R"({"status":403})", 503, "amo_blocked", "blocked"},
        FaultCase{"TooManyRequests",
                  R"({"status":429,"retry_after":30})",
                  503,
                  "amo_rate_limited",
                  "429"},
        FaultCase{"TruncatedJson",
                  R"({"malformed":"truncated"})",
                  502,
                  "amo_malformed_response",
                  "expected format"},
        FaultCase{"WrongTypes",
                  R"({"malformed":"wrong_types"})",
                  502,
                  "amo_malformed_response",
                  "expected format"},
        FaultCase{"HtmlInsteadOfJson",
                  R"({"malformed":"html"})",
                  502,
                  "amo_malformed_response",
                  "expected format"},
        FaultCase{"DroppedConnection", R"({"close":true})", 504, "amo_unreachable", "reached"},
        FaultCase{"Stall", R"({"stall_ms":10000})", 504, "amo_unreachable", "reached"}),
    CaseName);

TEST(RefreshFault, ASlowBodyWithinTheBudgetIsReadWhole) {
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  // ~2 KB in 256-byte pieces, 20 ms apart: about 200 ms, inside the 700 ms budget.
  ScriptFault(h, R"({"token_endpoint":{"slow_body_ms":20,"chunk_bytes":256}})");
  auto refreshed = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(Counter(h, "faults"), 1);
  EXPECT_EQ(Counter(h, "refreshes"), 1);
  const core::Connection after = StoredRow(h);
  EXPECT_NE(after.refresh_token, before.refresh_token);
  EXPECT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 200)
      << "the pair read slowly is the live one";
}

// --- The domain lookup (protocol §7.2) a refresh falls back on after a rename.

class SubdomainFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(SubdomainFaultTest, ARenamedAccountIsFoundOnceTheLookupAnswers) {
  const FaultCase& c = GetParam();
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  auto renamed = h.SandboxPost(
      "/sandbox/accounts/30000001/rename", "application/json", R"({"subdomain":"renamed"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  ScriptFault(h, R"({"subdomain":)" + c.fault + "}");

  // The old host answers 404; the lookup that would say where the account went fails.
  const auto sent = Steady::now();
  auto refreshed = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_LT(Steady::now() - sent, kCallBound);
  EXPECT_EQ(refreshed.status, c.status) << refreshed.body;
  EXPECT_EQ(Body(refreshed).at("error").as_string(), c.error) << refreshed.body;
  EXPECT_EQ(Counter(h, "faults"), 1);
  EXPECT_EQ(Counter(h, "refreshes"), 0);
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "active");
  EXPECT_EQ(view.at("base_domain").as_string(), "example.amocrm.ru");
  EXPECT_THAT(std::string(view.at("refresh").as_object().at("last_error").as_string()),
              HasSubstr(c.words));
  EXPECT_EQ(StoredRow(h).refresh_token, before.refresh_token);

  // The next attempt finds the new host and refreshes there with the same refresh token.
  h.AdvanceClocks(minutes(10));
  auto recovered = h.Call("POST", kAccountPath + "/refresh");
  EXPECT_EQ(recovered.status, 200) << recovered.body;
  EXPECT_EQ(Body(recovered).at("base_domain").as_string(), "renamed.amocrm.ru");
  EXPECT_EQ(Counter(h, "refreshes"), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Lookup,
    SubdomainFaultTest,
    ::testing::Values(
        FaultCase{"ServerError", R"({"status":503})", 502, "amo_not_found", "renamed"},
        FaultCase{"WrongTypes", R"({"malformed":"wrong_types"})", 502, "amo_not_found", "renamed"},
        FaultCase{"DroppedConnection", R"({"close":true})", 502, "amo_not_found", "renamed"},
        FaultCase{"Stall", R"({"stall_ms":10000})", 502, "amo_not_found", "renamed"}),
    CaseName);

// --- The proxy path: GET /v1/accounts/{id}/proxy/api/v4/account against a faulted API.

class ProxyFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(ProxyFaultTest, TheCallerHearsItAndTheTokensAreUntouched) {
  const FaultCase& c = GetParam();
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  ScriptFault(h, R"({"api":)" + c.fault + "}");

  const auto sent = Steady::now();
  auto proxied = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_LT(Steady::now() - sent, kCallBound);
  EXPECT_EQ(proxied.status, c.status) << proxied.body;
  if (!c.error.empty()) {
    EXPECT_EQ(Body(proxied).at("error").as_string(), c.error) << proxied.body;
  } else {
    EXPECT_THAT(proxied.body, HasSubstr(c.words)) << "amoCRM's answer, passed through as it is";
  }
  EXPECT_EQ(Counter(h, "faults"), 1);
  EXPECT_EQ(Counter(h, "refreshes"), 0) << "a failed API call is no reason to refresh";
  const core::Connection after = StoredRow(h);
  EXPECT_EQ(after.access_token, before.access_token);
  EXPECT_EQ(after.refresh_token, before.refresh_token);
  EXPECT_EQ(after.refresh_failures, 0);
  EXPECT_EQ(Body(h.Call("GET", kAccountPath)).at("status").as_string(), "active");
}

INSTANTIATE_TEST_SUITE_P(
    Api,
    ProxyFaultTest,
    ::testing::Values(
        FaultCase{"ServerError", R"({"status":503})", 503, "", "Service Temporarily Unavailable"},
        FaultCase{"BadGateway", R"({"status":502})", 502, "", "Bad Gateway"},
        FaultCase{"TruncatedJson", R"({"malformed":"truncated"})", 200, "", R"("name":"Exam)"},
        FaultCase{"WrongTypes", R"({"malformed":"wrong_types"})", 200, "", R"("id":"30000001")"},
        FaultCase{"HtmlInsteadOfJson", R"({"malformed":"html"})", 200, "", "<html>"},
        FaultCase{"DroppedConnection", R"({"close":true})", 504, "amo_unreachable", ""},
        FaultCase{"Stall", R"({"stall_ms":10000})", 504, "amo_unreachable", ""}),
    CaseName);

TEST(ProxyFault, ASlowBodyIsPassedThroughWhole) {
  ServiceHarness h(ShortTimeout());
  h.Connect();
  auto normal = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  ASSERT_EQ(normal.status, 200) << normal.body;
  ScriptFault(h, R"({"api":{"slow_body_ms":10,"chunk_bytes":32}})");
  auto slow = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(slow.status, 200) << slow.body;
  EXPECT_EQ(slow.body, normal.body);
  EXPECT_EQ(Counter(h, "faults"), 1);
}

TEST(ProxyFault, AnHtml403BlocksTheAccountForTheCoolOffAndKeepsItsTokens) {
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  ScriptFault(h, R"({"api":{"status":403}})");
  auto blocked = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(blocked.status, 403) << blocked.body;
  EXPECT_THAT(blocked.body, HasSubstr("<center>nginx</center>"));
  // amoauth stops calling amoCRM for the account and says why.
  auto held = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(held.status, 503) << held.body;
  EXPECT_EQ(Body(held).at("error").as_string(), "amo_blocked");
  EXPECT_EQ(Counter(h, "api_requests"), 0) << "the faulted request never reached the API";
  auto view = Body(h.Call("GET", kAccountPath));
  EXPECT_EQ(view.at("status").as_string(), "active");
  EXPECT_GT(view.at("api_blocked_for_seconds").as_int64(), 0);
  EXPECT_EQ(StoredRow(h).access_token, before.access_token);
  EXPECT_EQ(Counter(h, "refreshes"), 0);
}

TEST(ProxyFault, A429StormIsPassedOnAndTheAccountIsServedAfterIt) {
  ServiceHarness h(ShortTimeout());
  h.Connect();
  const core::Connection before = StoredRow(h);
  ScriptFault(h, R"({"api":{"status":429,"times":3,"retry_after":1}})");
  for (int i = 0; i < 3; ++i) {
    auto limited = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
    EXPECT_EQ(limited.status, 429) << i << " " << limited.body;
    EXPECT_EQ(limited.headers.Get("Retry-After").value_or(""), "1") << i;
  }
  // The storm is over: the next call waits out the last Retry-After and gets through.
  auto served = h.Call("GET", kAccountPath + "/proxy/api/v4/account");
  EXPECT_EQ(served.status, 200) << served.body;
  EXPECT_EQ(Counter(h, "faults"), 3);
  EXPECT_EQ(Counter(h, "api_requests"), 1);
  EXPECT_EQ(Counter(h, "refreshes"), 0);
  EXPECT_EQ(StoredRow(h).access_token, before.access_token);
  EXPECT_EQ(Body(h.Call("GET", kAccountPath)).at("status").as_string(), "active");
}

// --- The code exchange: a widget-install code queued by amoauth, its exchange faulted.

class CodeExchangeFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(CodeExchangeFaultTest, TheQueuedCodeIsRetriedAndConnectsTheAccount) {
  const FaultCase& c = GetParam();
  ServiceHarness h(ShortTimeout());
  ScriptFault(h, R"({"token_endpoint":)" + c.fault + "}");
  auto installed =
      h.SandboxPost("/sandbox/accounts/30000001/install-widget",
                    "application/json",
                    json::serialize(json::object{{"client_id", h.SandboxIntegration().client_id}}));
  ASSERT_EQ(installed.status, 200) << installed.body;
  EXPECT_EQ(Body(installed).at("status").as_int64(), 200) << "the hook is answered at once";

  // The first exchange meets the fault; the code stays queued, nothing is connected.
  ASSERT_TRUE(WaitFor([&] { return Counter(h, "token_endpoint_faults") == 1; }, kCallBound * 2));
  ASSERT_TRUE(WaitFor([&] { return !h.Codes().Busy(); }, kCallBound));
  EXPECT_EQ(Counter(h, "codes_exchanged"), 0);
  EXPECT_EQ(h.Await(h.Store().CountQueued()).value(), 1U) << "the code is kept for a retry";
  EXPECT_EQ(h.Call("GET", kAccountPath).status, 404);

  // Its backoff over, the worker tries again and connects the account.
  h.AdvanceClocks(minutes(3));
  ASSERT_TRUE(WaitFor([&] { return h.Call("GET", kAccountPath).status == 200; }, kCallBound * 2));
  EXPECT_EQ(Counter(h, "codes_exchanged"), 1);
  EXPECT_EQ(Body(h.Call("GET", kAccountPath)).at("status").as_string(), "active");
  EXPECT_EQ(h.Call("GET", kAccountPath + "/proxy/api/v4/account").status, 200);
}

INSTANTIATE_TEST_SUITE_P(
    TokenEndpoint,
    CodeExchangeFaultTest,
    ::testing::Values(FaultCase{"ServerError", R"({"status":503})", 0, "", ""},
                      FaultCase{"TooManyRequests", R"({"status":429})", 0, "", ""},
                      FaultCase{"DroppedConnection", R"({"close":true})", 0, "", ""},
                      FaultCase{"Stall", R"({"stall_ms":10000})", 0, "", ""},
                      // A 200 amoauth cannot read is amoCRM's fault, not the code's: retried too
                      // (core::ClassifyCodeFailure; a code it spent ends at the retry's revoked).
                      FaultCase{"MalformedTruncated", R"({"malformed":"truncated"})", 0, "", ""},
                      FaultCase{"MalformedWrongTypes", R"({"malformed":"wrong_types"})", 0, "", ""},
                      FaultCase{"MalformedHtml", R"({"malformed":"html"})", 0, "", ""}),
    CaseName);

// --- The webhook outbox: the integrator's receiver fails in every way, the event still arrives.

/// How the test receiver answers its next POST.
enum class Receiver { kServerError, kDrop, kStall, kHtml403, kOk };

class WebhookFaultTest : public ::testing::Test {
 protected:
  WebhookFaultTest() {
    router_.Add("POST", "/hook", [this](net::HttpRequest r) { return Receive(std::move(r)); });
    server_ = std::make_unique<http_server::HttpServer>(
        ioc_.get_executor(), http_server::ServerOptions{}, router_.AsHandler());
    const auto port = server_->Listen("127.0.0.1", 0);
    EXPECT_TRUE(port);
    server_->Start();
    http_ = http_client::HttpClient::Create(ioc_.get_executor(), {.timeout = kAmoTimeout}).value();
    sender_ = std::make_unique<webhook_client::HttpWebhookSender>(
        *http_, "http://127.0.0.1:" + std::to_string(port.value()) + "/hook");
    store_ =
        store_sqlite::SqliteStore::Open({.path = (dir_ / "outbox.db").string(), .clock = &clock_},
                                        crypto::MasterKey::Generate())
            .value();
    dispatcher_ = std::make_unique<service::WebhookDispatcher>(
        *store_,
        *sender_,
        clock_,
        random_,
        service::WebhookSettings{.secret = Secret("whsec"),
                                 .claim_ttl = seconds(30),
                                 .backoff_base = seconds(5),
                                 .backoff_cap = seconds(60)});
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~WebhookFaultTest() override {
    server_->Stop();
    work_.reset();
    ioc_.stop();
    thread_.join();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  boost::asio::awaitable<net::HttpResponse> Receive(net::HttpRequest request) {
    net::HttpResponse answer;
    const Receiver mode = next_.empty() ? Receiver::kOk : next_.front();
    if (!next_.empty()) {
      next_.erase(next_.begin());
    }
    ++posts_;
    switch (mode) {
      case Receiver::kServerError:
        co_return net::HttpResponse::Text(500, "boom");
      case Receiver::kHtml403:
        co_return net::HttpResponse::Html(403, "<html><body>Forbidden</body></html>");
      case Receiver::kDrop:
        answer.drop_connection = true;
        co_return answer;
      case Receiver::kStall: {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, seconds(30));
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
        answer.drop_connection = true;
        co_return answer;
      }
      case Receiver::kOk:
        break;
    }
    received_.push_back(request.body);
    co_return net::HttpResponse::Json(200, R"({"ok":true})");
  }

  template <class T>
  T Await(boost::asio::awaitable<T> aw) {
    return boost::asio::co_spawn(ioc_, std::move(aw), boost::asio::use_future).get();
  }

  std::filesystem::path dir_ = [] {
    auto dir = std::filesystem::temp_directory_path() /
               ("amoauth-webhook-faults-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir;
  }();
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ioc_.get_executor()};
  FakeClock clock_;
  CountingRandom random_;
  http_server::Router router_;
  std::unique_ptr<http_server::HttpServer> server_;
  std::unique_ptr<http_client::HttpClient> http_;
  std::unique_ptr<webhook_client::HttpWebhookSender> sender_;
  std::unique_ptr<store_sqlite::SqliteStore> store_;
  std::unique_ptr<service::WebhookDispatcher> dispatcher_;
  std::thread thread_;
  // Touched on the io thread only (Receive), read by the test after RunOnce has returned.
  std::vector<Receiver> next_;
  std::vector<std::string> received_;
  int posts_ = 0;
};

TEST_F(WebhookFaultTest, EveryFailureOfTheReceiverIsRetriedUntilTheEventArrivesOnce) {
  next_ = {Receiver::kServerError, Receiver::kDrop, Receiver::kStall, Receiver::kHtml403};
  service::Event event{.type = "account.connected",
                       .body = R"({"id":"evt_faults_0001","type":"account.connected"})"};
  ASSERT_TRUE(Await(store_->Enqueue({event}, clock_.Now())));

  for (int attempt = 1; attempt <= 4; ++attempt) {
    const auto sent = Steady::now();
    auto delivered = Await(dispatcher_->RunOnce());
    EXPECT_LT(Steady::now() - sent, kCallBound) << "attempt " << attempt;
    ASSERT_TRUE(delivered) << attempt;
    EXPECT_EQ(*delivered, 0U) << "attempt " << attempt;
    EXPECT_EQ(Await(store_->CountPending()).value(), 1U) << "still queued after " << attempt;
    EXPECT_EQ(posts_, attempt);
    // Not due again inside its backoff...
    EXPECT_EQ(Await(dispatcher_->RunOnce()).value(), 0U);
    EXPECT_EQ(posts_, attempt);
    // ...and due after it.
    clock_.Advance(minutes(2));
  }
  auto delivered = Await(dispatcher_->RunOnce());
  ASSERT_TRUE(delivered);
  EXPECT_EQ(*delivered, 1U);
  EXPECT_EQ(Await(store_->CountPending()).value(), 0U);
  ASSERT_EQ(received_.size(), 1U);
  EXPECT_EQ(received_.front(), event.body) << "the same event, unchanged";
  clock_.Advance(hours(1));
  EXPECT_EQ(Await(dispatcher_->RunOnce()).value(), 0U) << "delivered once";
}

}  // namespace
}  // namespace amoauth::testing
