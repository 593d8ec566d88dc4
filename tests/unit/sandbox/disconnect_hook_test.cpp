#include "disconnect_hook.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>

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

TEST(SandboxDisconnectHook, SignsTheProtocolVector) {
  // Protocol §7.1's vector, checked against the sandbox's own (OpenSSL) implementation.
  EXPECT_EQ(
      SignDisconnectHook("TEST_CLIENT_SECRET", "0b0832f6-d123-4123-9123-e73f236833c0", "12345678"),
      "d965a65f7afff2a20c87a5e472fd544e85b7636e69967bf9bdcde459ef1a9fa6");
  EXPECT_NE(
      SignDisconnectHook("TEST_CLIENT_SECRET", "0b0832f6-d123-4123-9123-e73f236833c0", "12345679"),
      "d965a65f7afff2a20c87a5e472fd544e85b7636e69967bf9bdcde459ef1a9fa6");
}

/// What the integration's hook saw, and what it answers.
struct HookRecorder {
  std::optional<net::HttpRequest> seen;
  int status = 200;
};

boost::asio::awaitable<net::HttpResponse> Record(HookRecorder* recorder, net::HttpRequest req) {
  recorder->seen = std::move(req);
  co_return net::HttpResponse::Json(recorder->status, R"({"status":"ok"})");
}

TEST(SandboxDisconnectHook, SendsTheSignedHookAndAnswersWithItsStatus) {
  namespace fs = std::filesystem;
  boost::asio::io_context ioc;
  std::random_device rd;
  const fs::path dir = fs::temp_directory_path() / ("amoauth-sandbox-hook-" + std::to_string(rd()));
  fs::create_directories(dir);
  auto sandbox = Sandbox::Start(ioc.get_executor(), Options{.state_dir = dir.string()});
  ASSERT_TRUE(sandbox.has_value()) << sandbox.error().message();
  HookRecorder recorder;
  http_server::HttpServer hook_server(
      ioc.get_executor(), http_server::ServerOptions{}, [&recorder](net::HttpRequest req) {
        return Record(&recorder, std::move(req));
      });
  const auto port = hook_server.Listen("127.0.0.1", 0);
  ASSERT_TRUE(port.has_value());
  hook_server.Start();
  const std::string hook_url = "http://127.0.0.1:" + std::to_string(*port) + "/hook?app=1";
  Integration wanted;
  wanted.redirect_uri = "https://app.example.com/cb";
  wanted.disconnect_hook_url = hook_url;
  const Integration integration = (*sandbox)->AddIntegration(wanted);
  auto client = http_client::HttpClient::Create(ioc.get_executor(), {});
  ASSERT_TRUE(client.has_value());

  const auto disconnect = [&] {
    http_client::ClientRequest request;
    request.method = "POST";
    request.url = (*sandbox)->BrowserBaseUrl() + "/sandbox/accounts/30000001/disconnect";
    request.headers.Set("Content-Type", "application/json");
    request.body =
        boost::json::serialize(boost::json::object{{"client_id", integration.client_id}});
    auto r = amoauth::testing::RunCo(ioc, (*client)->Send(std::move(request)));
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : net::HttpResponse{};
  };

  const net::HttpResponse answer = disconnect();
  EXPECT_EQ(answer.status, 200) << answer.body;
  ASSERT_TRUE(recorder.seen.has_value());
  EXPECT_EQ(recorder.seen->method, "GET");
  EXPECT_EQ(recorder.seen->Path(), "/hook");
  EXPECT_EQ(recorder.seen->headers.Get("User-Agent").value_or(""), kHookUserAgent);
  const auto query = net::ParseQuery(recorder.seen->RawQuery());
  ASSERT_TRUE(query.has_value());
  std::map<std::string, std::string> params(query->begin(), query->end());
  EXPECT_EQ(params["app"], "1") << "the hook URL's own query is kept";
  EXPECT_EQ(params["client_uuid"], integration.client_id);
  EXPECT_EQ(params["account_id"], "30000001");
  EXPECT_EQ(params["signature"],
            SignDisconnectHook(integration.client_secret, integration.client_id, "30000001"));
  const auto report = boost::json::parse(answer.body).as_object();
  EXPECT_EQ(report.at("hook_status"), 200);
  EXPECT_EQ(report.at("hook_url").as_string(), hook_url);

  recorder.status = 403;
  EXPECT_EQ(disconnect().status, 403) << "the hook's status comes back";

  hook_server.Stop();
  (*sandbox)->Stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace amoauth::sandbox
