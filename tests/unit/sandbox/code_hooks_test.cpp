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
    return Exchange(host, code, integration_);
  }
  net::HttpResponse Exchange(const std::string& host,
                             const std::string& code,
                             const Integration& integration) {
    http_client::ClientRequest request;
    request.method = "POST";
    request.url = "https://" + host + "/oauth2/access_token";
    request.headers.Set("Content-Type", "application/json");
    request.body = boost::json::serialize(boost::json::object{
        {"client_id", integration.client_id},
        {"client_secret", integration.client_secret},
        {"grant_type", "authorization_code"},
        {"code", code},
        {"redirect_uri", integration.redirect_uri},
    });
    return Send(*amo_, std::move(request));
  }

  /// The metadata consent form as the page posts it (protocol §2.2).
  std::string ExternalForm(std::string_view decision,
                           std::string_view mode = "post_message",
                           std::int64_t account_id = 30000001) const {
    return "name=Shop&description=Sells&redirect_uri=" + app_ + "/amo/external" +
           "&secrets_uri=" + app_ + "/amo/secrets" +
           "&logo=&scopes%5B%5D=crm&scopes%5B%5D=notifications&state=st-9&mode=" +
           std::string(mode) + "&account_id=" + std::to_string(account_id) +
           "&decision=" + std::string(decision);
  }

  net::HttpResponse Decide(std::string form) {
    http_client::ClientRequest request;
    request.method = "POST";
    request.url = sandbox_->BrowserBaseUrl() + "/oauth/decision";
    request.headers.Set("Content-Type", "application/x-www-form-urlencoded");
    request.body = std::move(form);
    return Send(*plain_, std::move(request));
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

TEST_F(CodeHooksTest, ExternalConsentPostsSecretsThenHandsBackTheCode) {
  const auto page = Control("GET",
                            "/oauth/?state=st-9&mode=post_message&name=Shop&description=%3Cb%3E"
                            "&redirect_uri=" +
                                app_ + "/amo/external&secrets_uri=" + app_ +
                                "/amo/secrets&scopes%5B%5D=crm&scopes%5B%5D=notifications");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("&lt;b&gt;"), std::string::npos);

  const auto answer = Decide(ExternalForm("allow"));
  ASSERT_EQ(answer.status, 302) << answer.body;
  ASSERT_EQ(recorder_.seen.size(), 1U);
  const net::HttpRequest& secrets = recorder_.seen.front();
  EXPECT_EQ(secrets.method, "POST");
  EXPECT_EQ(secrets.Path(), "/amo/secrets");
  EXPECT_EQ(secrets.headers.Get("Content-Type").value_or(""), "application/json");
  const auto keys = boost::json::parse(secrets.body).as_object();
  EXPECT_EQ(keys.at("state"), "st-9");
  Integration created;
  created.client_id = std::string(keys.at("client_id").as_string());
  created.client_secret = std::string(keys.at("client_secret").as_string());
  created.redirect_uri = app_ + "/amo/external";
  EXPECT_EQ(created.client_secret.size(), 64U);

  const std::string location(answer.headers.Get("Location").value_or(""));
  ASSERT_TRUE(location.starts_with(created.redirect_uri + "?code=def50200")) << location;
  net::HttpRequest back;
  back.target = location.substr(app_.size());
  auto q = QueryMap(back);
  EXPECT_EQ(q["client_id"], created.client_id) << "the metadata variant always names it";
  EXPECT_EQ(q["platform"], "1");
  EXPECT_EQ(q["state"], "st-9");
  EXPECT_EQ(Exchange("example.amocrm.ru", q["code"], created).status, 200);

  const auto listed = boost::json::parse(Control("GET", "/sandbox/integrations").body).as_array();
  bool found = false;
  for (const auto& i : listed) {
    if (i.at("client_id") == created.client_id.c_str()) {
      found = true;
      EXPECT_EQ(i.at("account_id"), 30000001);
      EXPECT_EQ(i.at("name"), "Shop");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(Counters().at("external_integrations_created"), 1);
}

TEST_F(CodeHooksTest, ExternalConsentWithoutExactly200IssuesNoCode) {
  recorder_.status = 204;
  const auto answer = Decide(ExternalForm("allow"));
  EXPECT_EQ(answer.status, 502);
  EXPECT_FALSE(answer.headers.Get("Location").has_value());
  EXPECT_NE(answer.body.find("Произошла ошибка создания, обратитесь к разработчику интеграции. "
                             "(Code 204)"),
            std::string::npos)
      << answer.body;
  EXPECT_EQ(answer.body.find("def50200"), std::string::npos);
  EXPECT_EQ(recorder_.seen.size(), 1U);
  EXPECT_EQ(Counters().at("codes_issued"), 0);

  hook_server_->Stop();
  const auto unreachable = Decide(ExternalForm("allow"));
  EXPECT_EQ(unreachable.status, 502);
  EXPECT_NE(unreachable.body.find("(Code 0)"), std::string::npos);
}

TEST_F(CodeHooksTest, ExternalSecretsCanArriveAfterTheRedirect) {
  ASSERT_EQ(Control("POST",
                    "/sandbox/config",
                    R"({"secrets_delivery":"after_redirect","secrets_delay_ms":200})")
                .status,
            200);
  recorder_.status = 500;  // ignored in this order
  const auto answer = Decide(ExternalForm("allow", "popup", 31000001));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_NE(answer.body.find("window.opener.postMessage"), std::string::npos);
  EXPECT_NE(answer.body.find("referer=example.kommo.com"), std::string::npos);
  EXPECT_TRUE(recorder_.seen.empty()) << "the secrets come later";
  ASSERT_TRUE(RunUntil([this] { return recorder_.seen.size() == 1; }));
  EXPECT_EQ(recorder_.seen.front().Path(), "/amo/secrets");
  EXPECT_EQ(boost::json::parse(recorder_.seen.front().body).at("state"), "st-9");
}

TEST_F(CodeHooksTest, ExternalDenyCallsNobodyAndPostsTheError) {
  const auto denied = Decide(ExternalForm("deny", "popup"));
  ASSERT_EQ(denied.status, 200) << denied.body;
  EXPECT_NE(denied.body.find(R"({"error":"access_denied"})"), std::string::npos) << denied.body;
  const auto redirected = Decide(ExternalForm("deny"));
  ASSERT_EQ(redirected.status, 302);
  EXPECT_EQ(redirected.headers.Get("Location").value_or(""),
            app_ + "/amo/external?error=access_denied&state=st-9");
  EXPECT_TRUE(recorder_.seen.empty());
  EXPECT_EQ(Counters().at("external_integrations_created"), 0);
}

}  // namespace
}  // namespace amoauth::sandbox
