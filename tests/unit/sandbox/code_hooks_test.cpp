// amoCRM calling the integration by itself, over real sockets: the widget-install hook, the
// exchange_api_key hook, the external integration's secrets webhook. Port 0, temp dir; waits
// are on conditions with a deadline.

#include "code_hooks.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/sandbox/sandbox.hpp"
#include "run_co.hpp"

namespace amoauth::sandbox {
namespace {

namespace fs = std::filesystem;
using amoauth::testing::RunCo;

/// The integration's side: records every request, answers `status`.
struct Recorder {
  std::vector<net::HttpRequest> seen;
  int status = 200;
};

boost::asio::awaitable<net::HttpResponse> Record(Recorder* recorder, net::HttpRequest req) {
  recorder->seen.push_back(std::move(req));
  co_return net::HttpResponse::Json(recorder->status, R"({"ok":true})");
}

std::map<std::string, std::string> QueryMap(const net::HttpRequest& req) {
  const auto query = net::ParseQuery(req.RawQuery());
  EXPECT_TRUE(query.has_value());
  return query ? std::map<std::string, std::string>(query->begin(), query->end())
               : std::map<std::string, std::string>{};
}

class CodeHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("amoauth-sandbox-hooks-" + std::to_string(rd()));
    fs::create_directories(dir_);
    auto started = Sandbox::Start(ioc_.get_executor(), Options{.state_dir = dir_.string()});
    ASSERT_TRUE(started.has_value()) << started.error().message();
    sandbox_ = std::move(*started);
    hook_server_ = std::make_unique<http_server::HttpServer>(
        ioc_.get_executor(), http_server::ServerOptions{}, [this](net::HttpRequest req) {
          return Record(&recorder_, std::move(req));
        });
    const auto port = hook_server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.has_value());
    hook_server_->Start();
    app_ = "http://127.0.0.1:" + std::to_string(*port);
    Integration wanted;
    wanted.redirect_uri = app_ + "/amo/callback";
    integration_ = sandbox_->AddIntegration(wanted);

    auto plain = http_client::HttpClient::Create(ioc_.get_executor(), {});
    ASSERT_TRUE(plain.has_value());
    plain_ = std::move(*plain);
    http_client::ClientOptions amo_options;
    amo_options.connect_to = sandbox_->ConnectTo();
    amo_options.ca_file = sandbox_->CaFile();
    auto amo = http_client::HttpClient::Create(ioc_.get_executor(), amo_options);
    ASSERT_TRUE(amo.has_value());
    amo_ = std::move(*amo);
  }

  void TearDown() override {
    if (hook_server_) {
      hook_server_->Stop();
    }
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

  net::HttpResponse Control(std::string method, std::string path, std::string body = {}) {
    http_client::ClientRequest request;
    request.method = std::move(method);
    request.url = sandbox_->BrowserBaseUrl() + path;
    if (!body.empty()) {
      request.headers.Set("Content-Type", "application/json");
    }
    request.body = std::move(body);
    return Send(*plain_, std::move(request));
  }

  net::HttpResponse InstallWidget(std::int64_t account_id, const std::string& client_id) {
    return Control("POST",
                   "/sandbox/accounts/" + std::to_string(account_id) + "/install-widget",
                   boost::json::serialize(boost::json::object{{"client_id", client_id}}));
  }

  /// Code → tokens on `host`, as the integrator's backend would.
  net::HttpResponse Exchange(const std::string& host, const std::string& code) {
    http_client::ClientRequest request;
    request.method = "POST";
    request.url = "https://" + host + "/oauth2/access_token";
    request.headers.Set("Content-Type", "application/json");
    request.body = boost::json::serialize(boost::json::object{
        {"client_id", integration_.client_id},
        {"client_secret", integration_.client_secret},
        {"grant_type", "authorization_code"},
        {"code", code},
        {"redirect_uri", integration_.redirect_uri},
    });
    return Send(*amo_, std::move(request));
  }

  /// Runs the io_context until `done()` or a 10 s deadline.
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  boost::json::object Counters() {
    return boost::json::parse(Control("GET", "/sandbox/journal").body).at("counters").as_object();
  }

  boost::asio::io_context ioc_;
  fs::path dir_;
  std::unique_ptr<Sandbox> sandbox_;
  Recorder recorder_;
  std::unique_ptr<http_server::HttpServer> hook_server_;
  std::string app_;
  Integration integration_;
  std::unique_ptr<http_client::HttpClient> plain_;
  std::unique_ptr<http_client::HttpClient> amo_;
};

TEST_F(CodeHooksTest, WidgetInstallSendsOneExchangeableCode) {
  const auto answer = InstallWidget(30000001, integration_.client_id);
  ASSERT_EQ(answer.status, 200) << answer.body;
  const auto report = boost::json::parse(answer.body).as_object();
  EXPECT_EQ(report.at("delivered"), true);
  EXPECT_EQ(report.at("status"), 200);
  EXPECT_TRUE(report.at("elapsed_ms").is_int64());
  EXPECT_FALSE(report.contains("error"));

  ASSERT_EQ(recorder_.seen.size(), 1U);
  const net::HttpRequest& hook = recorder_.seen.front();
  EXPECT_EQ(hook.method, "GET");
  EXPECT_EQ(hook.Path(), "/amo/callback");
  EXPECT_EQ(hook.headers.Get("User-Agent").value_or(""), kHookUserAgent);
  auto q = QueryMap(hook);
  EXPECT_TRUE(q["code"].starts_with("def50200"));
  EXPECT_EQ(answer.body.find(q["code"]), std::string::npos) << "the report never holds the code";
  EXPECT_EQ(q["referer"], "example.amocrm.ru");
  EXPECT_EQ(q["platform"], "1");
  EXPECT_EQ(q["from_widget"], "1");
  EXPECT_FALSE(q.contains("state"));
  EXPECT_FALSE(q.contains("client_id"));

  EXPECT_EQ(Exchange("example.amocrm.ru", q["code"]).status, 200);
  const auto counters = Counters();
  EXPECT_EQ(counters.at("widget_installs"), 1);
  EXPECT_EQ(counters.at("hooks_delivered"), 1);
}

TEST_F(CodeHooksTest, WidgetHookStatusIsReportedNotRetried) {
  recorder_.status = 500;
  const auto answer = InstallWidget(31000001, integration_.client_id);
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(boost::json::parse(answer.body).at("status"), 500);
  ASSERT_EQ(recorder_.seen.size(), 1U) << "no retry";
  auto q = QueryMap(recorder_.seen.front());
  EXPECT_EQ(q["referer"], "example.kommo.com");
  EXPECT_EQ(q["client_id"], integration_.client_id) << "Kommo sends client_id";
  EXPECT_FALSE(q.contains("platform"));
  EXPECT_EQ(q["from_widget"], "1");
}

TEST_F(CodeHooksTest, WidgetHookUnreachableIsReportedInWords) {
  hook_server_->Stop();
  const auto answer = InstallWidget(30000001, integration_.client_id);
  ASSERT_EQ(answer.status, 200) << answer.body;
  const auto report = boost::json::parse(answer.body).as_object();
  EXPECT_EQ(report.at("delivered"), false);
  EXPECT_TRUE(report.at("status").is_null());
  EXPECT_FALSE(report.at("error").as_string().empty());
  EXPECT_EQ(Counters().at("hooks_failed"), 1);
}

TEST_F(CodeHooksTest, WidgetInstallRefusesUnknownsAndBadBodies) {
  EXPECT_EQ(InstallWidget(30000001, "no-such-client").status, 404);
  EXPECT_EQ(InstallWidget(99, integration_.client_id).status, 404);
  EXPECT_EQ(Control("POST", "/sandbox/accounts/30000001/install-widget", "{}").status, 400);
  EXPECT_EQ(Control("GET", "/sandbox/accounts/30000001/install-widget").status, 405);
  EXPECT_TRUE(recorder_.seen.empty());
}

TEST_F(CodeHooksTest, ExchangeApiKeyHookArrivesAfterThe202) {
  ASSERT_EQ(InstallWidget(30000001, integration_.client_id).status, 200);  // installs it
  ASSERT_EQ(recorder_.seen.size(), 1U);
  const auto accounts = boost::json::parse(Control("GET", "/sandbox/accounts").body).as_array();
  const auto& user = accounts.at(0).at("users").as_array().at(0).as_object();

  http_client::ClientRequest request;
  request.method = "POST";
  request.url = "https://example.amocrm.ru/oauth2/exchange_api_key";
  request.headers.Set("Content-Type", "application/json");
  request.body = boost::json::serialize(boost::json::object{
      {"login", user.at("login")},
      {"api_key", user.at("api_key")},
      {"client_uuid", integration_.client_id},
      {"client_secret", integration_.client_secret},
      {"state", "xs"},
  });
  const auto accepted = Send(*amo_, request);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_TRUE(accepted.body.empty());
  ASSERT_TRUE(RunUntil([this] { return recorder_.seen.size() == 2; }));
  const net::HttpRequest& hook = recorder_.seen.back();
  EXPECT_EQ(hook.headers.Get("User-Agent").value_or(""), kHookUserAgent);
  auto q = QueryMap(hook);
  EXPECT_EQ(q["from_exchange"], "1");
  EXPECT_EQ(q["state"], "xs");
  EXPECT_EQ(q["referer"], "example.amocrm.ru");
  EXPECT_EQ(Exchange("example.amocrm.ru", q["code"]).status, 200);
  ASSERT_TRUE(RunUntil([this] { return Counters().at("hooks_delivered") == 2; }));

  EXPECT_EQ(Send(*amo_, request).status, 429) << "again within 5 minutes";
}

}  // namespace
}  // namespace amoauth::sandbox
