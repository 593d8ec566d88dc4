// One connect → exchange → use round trip over real sockets: plain HTTP for the browser side,
// TLS (verified against the sandbox's CA) for the amoCRM hosts. Port 0, temp dir, no sleeps.

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/sandbox/sandbox.hpp"
#include "run_co.hpp"

namespace amoauth::sandbox {
namespace {

namespace fs = std::filesystem;
using amoauth::testing::RunCo;

class SandboxWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("amoauth-sandbox-" + std::to_string(rd()));
    fs::create_directories(dir_);
    Options options;
    options.state_dir = dir_.string();
    auto started = Sandbox::Start(ioc_.get_executor(), options);
    ASSERT_TRUE(started.has_value()) << started.error().message();
    sandbox_ = std::move(*started);

    auto plain = http_client::HttpClient::Create(ioc_.get_executor(), {});
    ASSERT_TRUE(plain.has_value()) << plain.error().message();
    plain_ = std::move(*plain);
    http_client::ClientOptions amo_options;
    amo_options.connect_to = sandbox_->ConnectTo();
    amo_options.ca_file = sandbox_->CaFile();
    auto amo = http_client::HttpClient::Create(ioc_.get_executor(), amo_options);
    ASSERT_TRUE(amo.has_value()) << amo.error().message();
    amo_ = std::move(*amo);
  }

  void TearDown() override {
    if (sandbox_) {
      sandbox_->Stop();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  net::HttpResponse Send(http_client::HttpClient& client, http_client::ClientRequest request) {
    auto result = RunCo(ioc_, client.Send(std::move(request)));
    EXPECT_TRUE(result.has_value()) << result.error().message();
    return result.has_value() ? std::move(*result) : net::HttpResponse{0, {}, {}};
  }

  boost::asio::io_context ioc_;
  fs::path dir_;
  std::unique_ptr<Sandbox> sandbox_;
  std::unique_ptr<http_client::HttpClient> plain_;
  std::unique_ptr<http_client::HttpClient> amo_;
};

TEST_F(SandboxWireTest, ConnectExchangeUse) {
  EXPECT_NE(sandbox_->HttpPort(), 0);
  EXPECT_NE(sandbox_->TlsPort(), 0);
  EXPECT_EQ(sandbox_->CaFile(), (dir_ / "sandbox-ca.pem").string());
  EXPECT_TRUE(fs::exists(sandbox_->CaFile()));

  Integration wanted;
  wanted.redirect_uri = "https://app.example.com/amo/callback";
  const Integration integration = sandbox_->AddIntegration(wanted);

  // The browser side: the user presses "Allow".
  http_client::ClientRequest decision;
  decision.method = "POST";
  decision.url = sandbox_->BrowserBaseUrl() + "/oauth/decision";
  decision.headers.Set("Content-Type", "application/x-www-form-urlencoded");
  decision.body = "client_id=" + integration.client_id +
                  "&state=xyz&mode=post_message&account_id=30000001&decision=allow";
  const auto redirect = Send(*plain_, decision);
  ASSERT_EQ(redirect.status, 302) << redirect.body;
  const std::string location(redirect.headers.Get("Location").value_or(""));
  const auto url = boost::urls::parse_uri(location);
  ASSERT_TRUE(url.has_value()) << location;
  std::string code;
  std::string referer;
  for (const auto& param : url->params()) {
    if (param.key == "code") {
      code = param.value;
    } else if (param.key == "referer") {
      referer = param.value;
    }
  }
  ASSERT_EQ(referer, "example.amocrm.ru");
  ASSERT_FALSE(code.empty());

  // The integrator's server: exchange at https://{referer}/oauth2/access_token over TLS.
  http_client::ClientRequest exchange;
  exchange.method = "POST";
  exchange.url = "https://" + referer + "/oauth2/access_token";
  exchange.headers.Set("Content-Type", "application/json");
  exchange.body = boost::json::serialize(boost::json::object{
      {"client_id", integration.client_id},
      {"client_secret", integration.client_secret},
      {"grant_type", "authorization_code"},
      {"code", code},
      {"redirect_uri", integration.redirect_uri},
  });
  const auto tokens = Send(*amo_, exchange);
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const auto body = boost::json::parse(tokens.body).as_object();
  const std::string access_token(body.at("access_token").as_string());

  http_client::ClientRequest account;
  account.url = "https://" + referer + "/api/v4/account";
  account.headers.Set("Authorization", "Bearer " + access_token);
  const auto info = Send(*amo_, account);
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(boost::json::parse(info.body).at("id"), 30000001);

  // Unknown account hosts are still served (wildcard certificate) but not found.
  http_client::ClientRequest stranger = account;
  stranger.url = "https://nobody.amocrm.ru/api/v4/account";
  EXPECT_EQ(Send(*amo_, stranger).status, 404);

  http_client::ClientRequest journal;
  journal.url = sandbox_->BrowserBaseUrl() + "/sandbox/journal";
  const auto counters = boost::json::parse(Send(*plain_, journal).body).at("counters").as_object();
  EXPECT_EQ(counters.at("codes_issued"), 1);
  EXPECT_EQ(counters.at("codes_exchanged"), 1);
  EXPECT_EQ(counters.at("api_requests"), 1);
}

TEST_F(SandboxWireTest, ScriptedFaultsReachTheClient) {
  http_client::ClientRequest script;
  script.method = "POST";
  script.url = sandbox_->BrowserBaseUrl() + "/sandbox/faults";
  script.headers.Set("Content-Type", "application/json");
  script.body = R"({"token_endpoint":{"status":503,"times":1}})";
  ASSERT_EQ(Send(*plain_, script).status, 200);

  http_client::ClientRequest token;
  token.method = "POST";
  token.url = "https://example.amocrm.ru/oauth2/access_token";
  token.headers.Set("Content-Type", "application/json");
  token.body = R"({"grant_type":"refresh_token"})";
  const auto failed = Send(*amo_, token);
  EXPECT_EQ(failed.status, 503);
  EXPECT_EQ(failed.headers.Get("Content-Type").value_or(""), "text/html");
  EXPECT_NE(failed.body.find("<center>nginx</center>"), std::string::npos);

  // "close" hangs up without a word: the client sees a transport error, not a status.
  script.body = R"({"token_endpoint":{"close":true}})";
  ASSERT_EQ(Send(*plain_, script).status, 200);
  EXPECT_FALSE(RunCo(ioc_, amo_->Send(token))) << "no answer at all";

  // A stall outlasts a short client budget; a slow body arrives whole.
  script.body = R"({"token_endpoint":{"stall_ms":5000}})";
  ASSERT_EQ(Send(*plain_, script).status, 200);
  auto impatient = http_client::HttpClient::Create(ioc_.get_executor(),
                                                   {.connect_to = sandbox_->ConnectTo(),
                                                    .ca_file = sandbox_->CaFile(),
                                                    .timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(impatient);
  const auto started = std::chrono::steady_clock::now();
  const auto timed_out = RunCo(ioc_, (*impatient)->Send(token));
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error(), boost::beast::error::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  script.body = R"({"api":{"slow_body_ms":2,"chunk_bytes":8}})";
  ASSERT_EQ(Send(*plain_, script).status, 200);
  http_client::ClientRequest api;
  api.url = "https://example.amocrm.ru/api/v4/account";
  const auto slow = Send(*amo_, api);
  EXPECT_EQ(slow.status, 401);
  EXPECT_EQ(slow.headers.Get("X-Sandbox-Fault").value_or(""), "slow_body");
  EXPECT_NE(slow.body.find("Unauthorized"), std::string::npos) << "read whole: " << slow.body;

  // Then the endpoint answers normally again.
  EXPECT_EQ(Send(*amo_, token).status, 400);
}

TEST_F(SandboxWireTest, SlowTokenEndpointHoldsUpNothingElse) {
  http_client::ClientRequest config;
  config.method = "POST";
  config.url = sandbox_->BrowserBaseUrl() + "/sandbox/config";
  config.headers.Set("Content-Type", "application/json");
  config.body = R"({"token_delay_ms":1000})";
  const auto set = Send(*plain_, config);
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(boost::json::parse(set.body).at("token_delay_ms"), 1000);

  http_client::ClientRequest token;
  token.method = "POST";
  token.url = "https://example.amocrm.ru/oauth2/access_token";
  token.headers.Set("Content-Type", "application/json");
  token.body = R"({"grant_type":"refresh_token"})";
  const auto started = std::chrono::steady_clock::now();
  auto slow = boost::asio::co_spawn(ioc_, amo_->Send(token), boost::asio::use_future);

  // While the token request waits, the API, the control API and the consent side still answer.
  http_client::ClientRequest api;
  api.url = "https://example.amocrm.ru/api/v4/account";
  EXPECT_EQ(Send(*amo_, api).status, 401);
  http_client::ClientRequest journal;
  journal.url = sandbox_->BrowserBaseUrl() + "/sandbox/journal";
  EXPECT_EQ(Send(*plain_, journal).status, 200);
  EXPECT_NE(slow.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "the token request was answered before its delay";

  const auto deadline = started + std::chrono::seconds(30);
  while (slow.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(slow.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const auto answered = slow.get();
  ASSERT_TRUE(answered.has_value());
  EXPECT_EQ(answered->status, 400);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1000));

  config.body = R"({"token_delay_ms":60001})";
  EXPECT_EQ(Send(*plain_, config).status, 400);
}

TEST_F(SandboxWireTest, StartRefusesOutOfRangeKnobs) {
  Options options;
  options.state_dir = dir_.string();
  options.api_rate_limit_rps = 10001;
  auto started = Sandbox::Start(ioc_.get_executor(), options);
  ASSERT_FALSE(started.has_value());
  EXPECT_TRUE(Is(started.error(), Errc::kConfigInvalid));
  options.api_rate_limit_rps = 0;
  options.access_token_ttl = std::chrono::seconds{0};
  started = Sandbox::Start(ioc_.get_executor(), options);
  ASSERT_FALSE(started.has_value());
  EXPECT_TRUE(Is(started.error(), Errc::kConfigInvalid));
}

}  // namespace
}  // namespace amoauth::sandbox
