// docs/security.md, threat 10: what the proxy (AmoHttpClient::Forward) sends amoCRM and what it
// brings back. A stand-in for amoCRM over TLS records every request (every connection comes to
// it; its certificate names *.amocrm.ru and evil.example): the caller's credentials never arrive,
// the account's token always does, every path stays on the account's host, and amoCRM's cookies
// and redirects do not come back.
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "amoauth/amo_client/amo_http_client.hpp"
#include "amoauth/http_client/http_client.hpp"
#include "amoauth/http_server/http_server.hpp"
#include "amoauth/http_server/router.hpp"
#include "amoauth/net/certificate_authority.hpp"

namespace amoauth::testing {
namespace {

constexpr std::string_view kCallersKey = "callers-api-key-0123456789";
constexpr std::string_view kCallersCookie = "amoauth_admin=session-of-the-caller";
constexpr std::string_view kAccountToken = "account-access-token-for-amocrm";

class ProxyForwardTest : public ::testing::Test {
 protected:
  ProxyForwardTest() {
    // evil.example too: a request that left for it would arrive, and show its Host.
    auto issued = net::IssueCertificate({"*.amocrm.ru", "evil.example"}, {}).value();
    ca_file_ = std::filesystem::temp_directory_path() /
               ("amoauth-proxy-ca-" + std::to_string(::getpid()) + ".pem");
    std::ofstream(ca_file_) << issued.ca_certificate_pem;
    router_.SetFallback([this](net::HttpRequest r) { return Record(std::move(r)); });
    server_ = std::make_unique<http_server::HttpServer>(
        ioc_.get_executor(),
        http_server::ServerOptions{.tls_certificate_chain_pem = issued.certificate_chain_pem,
                                   .tls_private_key_pem = issued.private_key_pem},
        router_.AsHandler());
    const auto port = server_->Listen("127.0.0.1", 0).value();
    server_->Start();
    http_ = http_client::HttpClient::Create(
                ioc_.get_executor(),
                {.connect_to = "127.0.0.1:" + std::to_string(port), .ca_file = ca_file_.string()})
                .value();
    amo_ = std::make_unique<amo_client::AmoHttpClient>(*http_);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~ProxyForwardTest() override {
    server_->Stop();
    work_.reset();
    ioc_.stop();
    thread_.join();
    std::filesystem::remove(ca_file_);
  }

  boost::asio::awaitable<net::HttpResponse> Record(net::HttpRequest request) {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(request);
    }
    net::HttpResponse answer;
    answer.status = 200;
    answer.body = "{}";
    answer.headers.Set("Content-Type", "application/hal+json");
    answer.headers.Set("Location", "https://evil.example/");
    answer.headers.Set("Set-Cookie", "session_id=amocrm-session; Path=/");
    answer.headers.Set("Refresh", "0; url=https://evil.example/");
    co_return answer;
  }

  /// A caller's request as the web layer hands it to Forward: its headers, amoCRM's path.
  static net::HttpRequest CallersRequest(std::string target) {
    net::HttpRequest r;
    r.method = "POST";
    r.target = std::move(target);
    r.body = R"([{"name":"deal"}])";
    r.headers.Set("Authorization", "Bearer " + std::string(kCallersKey));
    r.headers.Set("Cookie", kCallersCookie);
    r.headers.Set("Proxy-Authorization", "Basic " + std::string(kCallersKey));
    r.headers.Set("X-Api-Key", kCallersKey);
    r.headers.Set("X-Amoauth-Client-Id", "client-of-the-caller");
    r.headers.Set("Host", "evil.example");
    r.headers.Set("X-Forwarded-Host", "evil.example");
    r.headers.Set("Forwarded", "host=evil.example");
    r.headers.Set("Content-Type", "application/json");
    r.headers.Set("Accept", "application/json");
    r.headers.Set("X-Context-User-ID", "42");
    return r;
  }

  Result<net::HttpResponse> Forward(net::HttpRequest request) {
    auto sent = amo_->Forward("example.amocrm.ru", request, Secret(std::string(kAccountToken)));
    return boost::asio::co_spawn(ioc_, std::move(sent), boost::asio::use_future).get();
  }

  std::vector<net::HttpRequest> Received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(ioc_);
  std::filesystem::path ca_file_;
  http_server::Router router_;
  std::unique_ptr<http_server::HttpServer> server_;
  std::unique_ptr<http_client::HttpClient> http_;
  std::unique_ptr<amo_client::AmoHttpClient> amo_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<net::HttpRequest> received_;
};

TEST_F(ProxyForwardTest, NoCredentialOfTheCallerReachesAmoCrmOnlyTheAccountsToken) {
  auto answer = Forward(CallersRequest("/api/v4/leads?with=contacts"));
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  const auto received = Received();
  ASSERT_EQ(received.size(), 1U);
  const net::HttpRequest& r = received.front();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/api/v4/leads?with=contacts");
  EXPECT_EQ(r.body, R"([{"name":"deal"}])");
  EXPECT_EQ(r.headers.Get("Authorization").value_or(""), "Bearer " + std::string(kAccountToken));
  EXPECT_EQ(r.headers.Get("Host").value_or(""), "example.amocrm.ru");
  EXPECT_EQ(r.headers.Get("X-Context-User-ID").value_or(""), "42");
  for (const char* dropped : {"Cookie",
                              "Proxy-Authorization",
                              "X-Api-Key",
                              "X-Amoauth-Client-Id",
                              "X-Forwarded-Host",
                              "Forwarded"}) {
    EXPECT_FALSE(r.headers.Get(dropped).has_value()) << dropped << " reached amoCRM";
  }
  for (const auto& field : r.headers.All()) {
    SCOPED_TRACE(field.name + ": " + field.value);
    EXPECT_EQ(field.value.find(kCallersKey), std::string::npos);
    EXPECT_EQ(field.value.find("session-of-the-caller"), std::string::npos);
    EXPECT_EQ(field.value.find("evil.example"), std::string::npos);
  }
}

TEST_F(ProxyForwardTest, AmoCrmsCookiesAndRedirectsDoNotComeBack) {
  auto answer = Forward(CallersRequest("/api/v4/account"));
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->headers.Get("Content-Type").value_or(""), "application/hal+json");
  for (const char* dropped : {"Location", "Set-Cookie", "Refresh"}) {
    EXPECT_FALSE(answer->headers.Get(dropped).has_value()) << dropped << " came back";
  }
}

// The path is the caller's (everything after /proxy): whatever it holds, it is a path on the
// account's host. Every connection comes here (connect_to), and the certificate names
// evil.example too: a request that left for another host would arrive, with that Host.
TEST_F(ProxyForwardTest, AHostilePathStaysOnTheAccountsHost) {
  const std::vector<std::string> targets = {
      "//evil.example/api/v4/account",
      "/@evil.example/api/v4/account",
      "/:443@evil.example/",
      "/%2e%2e/%2e%2e/evil.example",
      "/..%2f..%2fevil.example",
      "/\\evil.example/api",
      "/api/v4/account?next=https://evil.example/&host=evil.example",
      "/api/v4/account#@evil.example",
  };
  for (const std::string& target : targets) {
    SCOPED_TRACE(target);
    const std::size_t before = Received().size();
    auto answer = Forward(CallersRequest(target));
    const auto received = Received();
    if (!answer) {
      // Refused before anything left (a target the client will not send): nothing went anywhere.
      EXPECT_EQ(received.size(), before) << answer.error().message();
      continue;
    }
    ASSERT_EQ(received.size(), before + 1);
    EXPECT_EQ(received.back().headers.Get("Host").value_or(""), "example.amocrm.ru");
    EXPECT_EQ(received.back().headers.Get("Authorization").value_or(""),
              "Bearer " + std::string(kAccountToken));
  }
  EXPECT_GE(Received().size(), 6U) << "most hostile paths should have been sent, to our host";
}

}  // namespace
}  // namespace amoauth::testing
