// Issue 6, item 5: every flow runs with known secret values on a real `amoauth serve` (debug
// logging on), and none of them may appear in anything amoauth wrote: its stdout and stderr,
// every HTTP answer (status line aside: body and headers), the signed webhooks, the commands'
// output, and the raw bytes of the SQLite file and its WAL. docs/security.md, threats 5 and 6.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "command_runner.hpp"
#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;

std::string Hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 0; i < size; ++i) {
    hex.push_back(kHex[bytes[i] >> 4U]);
    hex.push_back(kHex[bytes[i] & 0x0fU]);
  }
  return hex;
}

std::string RandomHex(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  EXPECT_EQ(RAND_bytes(buffer.data(), static_cast<int>(buffer.size())), 1);
  return Hex(buffer.data(), buffer.size());
}

/// amoCRM's disconnect-hook signature (protocol §7.1), computed here independently.
std::string Sign(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(),
       secret.data(),
       static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()),
       message.size(),
       mac,
       &size);
  return Hex(mac, size);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string QueryParam(const std::string& query, std::string_view name) {
  boost::urls::url url;
  url.set_encoded_query(query);
  for (const auto& param : url.params()) {
    if (param.key == name) {
      return param.value;
    }
  }
  return {};
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::size_t RunLength(std::string_view text, std::size_t from, bool (*in_class)(char)) {
  std::size_t n = 0;
  while (from + n < text.size() && in_class(text[from + n])) {
    ++n;
  }
  return n;
}

/// Everything amoauth produced, with where it came from, and the secrets none of it may hold.
class Sweep {
 public:
  /// A value that must appear nowhere (its name is what a failure reports).
  void Secret(std::string name, std::string value) {
    ASSERT_GE(value.size(), 8U) << name << ": too short to search for";
    secrets_.emplace_back(std::move(name), std::move(value));
  }
  void Output(std::string where, std::string text) {
    outputs_.emplace_back(std::move(where), std::move(text));
  }
  /// An HTTP answer of amoauth: its headers and body. `allowed` (an access token /token hands
  /// out on purpose) is cut out of the body first, that one value only.
  void Answer(const std::string& where, const CallResult& r, const std::string& allowed = {}) {
    std::string text;
    for (const auto& [name, value] : r.headers.All()) {
      text += name + ": " + value + "\n";
    }
    std::string body = r.body;
    if (!allowed.empty()) {
      for (auto at = body.find(allowed); at != std::string::npos; at = body.find(allowed)) {
        body.replace(at, allowed.size(), "<the token this answer hands out>");
      }
    }
    Output(where, text + "\n" + body);
  }

  /// One line per hit: which secret (its first 6 characters and length only) and where.
  [[nodiscard]] std::vector<std::string> Hits() const {
    std::vector<std::string> hits;
    for (const auto& [where, text] : outputs_) {
      for (const auto& [name, value] : secrets_) {
        if (text.find(value) != std::string::npos) {
          hits.push_back(name + " (" + value.substr(0, 6) + "…, " + std::to_string(value.size()) +
                         " chars) in " + where);
        }
      }
      // Any code or refresh token the sandbox issued (def50200 + hex), even one the test never
      // saw, and any JWT (access tokens, long-lived ones).
      for (auto at = text.find("def50200"); at != std::string::npos;
           at = text.find("def50200", at + 1)) {
        if (RunLength(text, at + 8, IsHex) >= 16) {
          hits.push_back("a code or refresh token (def50200…) in " + where);
          break;
        }
      }
      for (auto at = text.find("eyJ"); at != std::string::npos; at = text.find("eyJ", at + 1)) {
        const std::size_t header = RunLength(text, at, IsBase64Url);
        if (header >= 10 && text.compare(at + header, 4, ".eyJ") == 0) {
          hits.push_back("a JWT (eyJ….eyJ…) in " + where);
          break;
        }
      }
    }
    return hits;
  }

  [[nodiscard]] std::size_t Outputs() const { return outputs_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> secrets_;
  std::vector<std::pair<std::string, std::string>> outputs_;
};

std::string TokenPath(std::int64_t account) {
  return "/v1/accounts/" + std::to_string(account) + "/token";
}

std::string ProxyPath(std::int64_t account) {
  return "/v1/accounts/" + std::to_string(account) + "/proxy/api/v4/account";
}

/// Polls `done` every 50 ms for at most 20 s.
template <class Predicate>
bool WaitFor(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(SecretsSweep, NoFlowLeaksASecretIntoLogsAnswersWebhooksCommandsOrTheDatabase) {
  WebhookReceiver receiver;
  const std::string webhook_secret = "whsec-sweep-" + RandomHex(16);
  ProcessHarness h({.processes = 1,
                    .extra_env = {{"AMOAUTH_WEBHOOK_URL", receiver.Url()},
                                  {"AMOAUTH_WEBHOOK_SECRET", webhook_secret}},
                    .log_level = "debug",
                    .print_output_on_failure = false});
  Sweep sweep;
  sweep.Secret("the API key", h.ApiKey());
  for (const auto& [name, value] : h.Env(0)) {
    if (name == "AMOAUTH_MASTER_KEY") {
      sweep.Secret("the master key", value);
    }
  }
  sweep.Secret("the client secret", h.SandboxIntegration().client_secret);
  sweep.Secret("the webhook secret", webhook_secret);
  const auto accounts = boost::json::parse(h.Get(h.SandboxUrl() + "/sandbox/accounts").body);
  const auto& amocrm = accounts.as_array().at(0).as_object();
  const auto& kommo = accounts.as_array().at(1).as_object();
  const std::int64_t first = amocrm.at("id").as_int64();
  const std::int64_t second = kommo.at("id").as_int64();
  ASSERT_EQ(kommo.at("platform").as_string(), "kommo");
  const std::string callback = h.BaseUrl(0) + ProcessHarness::kCallbackPath;
  auto code_of = [&](const std::string& query, const std::string& flow) {
    const std::string code = QueryParam(query, "code");
    sweep.Secret("the code of " + flow, code);
    return code;
  };
  auto token_answer = [&](const std::string& where) {
    auto r = h.Call(0, "GET", TokenPath(first));
    EXPECT_EQ(r.status, 200) << where << ": " << r.body;
    const std::string token(boost::json::parse(r.body).at("access_token").as_string());
    sweep.Secret("the access token of " + where, token);
    // Sanity: the sweep does see a token where one is (the answer before the cut).
    Sweep raw;
    raw.Secret("token", token);
    raw.Output("raw", r.body);
    EXPECT_EQ(raw.Hits().size(), 2U) << "the exact value and the JWT pattern";
    sweep.Answer("GET /token (" + where + ")", r, token);
    return token;
  };

  // The site button and its callback: amoCRM, then Kommo.
  std::string query = h.ConsentRedirectQuery(0, first);
  code_of(query, "the amoCRM site button");
  auto r = h.Get(callback + "?" + query);
  ASSERT_EQ(r.status, 200) << r.body;
  sweep.Answer("the callback page (amoCRM)", r);
  query = h.ConsentRedirectQuery(0, second);
  code_of(query, "the Kommo site button");
  r = h.Get(callback + "?" + query);
  ASSERT_EQ(r.status, 200) << r.body;
  sweep.Answer("the callback page (Kommo)", r);

  // An external integration (the metadata button): amoCRM posts its keys to the secrets hook,
  // then sends the person back with a code for it. The sandbox knows the integration as amoCRM
  // would have created it; the hook is posted here as amoCRM posts it.
  r = h.Call(0,
             "GET",
             "/v1/button?variant=metadata&name=Sweep&description=Secrets+sweep&mode=post_message");
  ASSERT_EQ(r.status, 200) << r.body;
  sweep.Answer("GET /v1/button (metadata)", r);
  const std::string metadata_state(boost::json::parse(r.body).at("state").as_string());
  const std::string external_id = "5e0c2a1b-" + RandomHex(2) + "-4d5d-a069-" + RandomHex(6);
  const std::string external_secret = "ext-secret-sweep-" + RandomHex(24);
  sweep.Secret("the external integration's client secret", external_secret);
  r = h.SandboxPost(
      "/sandbox/integrations",
      "application/json",
      boost::json::serialize(boost::json::object{{"client_id", external_id},
                                                 {"client_secret", external_secret},
                                                 {"redirect_uri", ProcessHarness::kRedirectUri}}));
  ASSERT_EQ(r.status, 201) << r.body;
  r = h.Call(0,
             "POST",
             "/api/v1/integrations/amo-crm/secrets",
             boost::json::serialize(boost::json::object{{"client_id", external_id},
                                                        {"client_secret", external_secret},
                                                        {"state", metadata_state}}),
             /*with_api_key=*/false);
  ASSERT_EQ(r.status, 200) << r.body;
  sweep.Answer("the secrets hook", r);
  {
    boost::urls::url form;
    form.params().append({"client_id", external_id});
    form.params().append({"state", metadata_state});
    form.params().append({"mode", "post_message"});
    form.params().append({"account_id", std::to_string(second)});
    form.params().append({"decision", "allow"});
    r = h.SandboxPost(
        "/oauth/decision", "application/x-www-form-urlencoded", std::string(form.encoded_query()));
    const auto location = r.headers.Get("Location");
    ASSERT_TRUE(r.status == 302 && location) << r.status << " " << r.body;
    const auto redirect = boost::urls::parse_absolute_uri(*location);
    ASSERT_TRUE(redirect.has_value());
    query = std::string(redirect->encoded_query());
  }
  code_of(query, "the external integration");
  r = h.Get(callback + "?" + query);
  ASSERT_EQ(r.status, 200) << r.body;
  sweep.Answer("the callback page (external integration)", r);

  // /token, the proxy, a 401 → refresh → replay, a forced refresh, an expired token.
  token_answer("the first connection");
  r = h.Call(0, "GET", ProxyPath(first));
  EXPECT_EQ(r.status, 200) << r.body;
  sweep.Answer("the proxy", r);
  ASSERT_EQ(h.SandboxPost("/sandbox/accounts/" + std::to_string(first) + "/revoke",
                          "application/json",
                          R"({"tokens":"access"})")
                .status,
            200);
  const auto refreshes = h.SandboxCounter("refreshes");
  r = h.Call(0, "GET", ProxyPath(first));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(h.SandboxCounter("refreshes"), refreshes + 1) << "the proxy refreshed on its 401";
  sweep.Answer("the proxy after a 401", r);
  r = h.Call(0, "POST", "/v1/accounts/" + std::to_string(first) + "/refresh");
  EXPECT_EQ(r.status, 200) << r.body;
  sweep.Answer("POST /refresh", r);
  token_answer("a forced refresh");
  EXPECT_EQ(h.ExpireAccessTokens(), 3) << "two accounts, one with the external integration too";
  token_answer("a refresh on expiry");
  r = h.Call(0, "GET", "/v1/accounts");
  sweep.Answer("GET /v1/accounts", r);

  // The widget-install hook: a code without a state, queued, then exchanged.
  const auto exchanged = h.SandboxCounter("codes_exchanged");
  query = h.WidgetHookQuery(0, first);
  code_of(query, "the widget-install hook");
  r = h.Get(callback + "?" + query);
  EXPECT_EQ(r.status, 200) << r.body;
  sweep.Answer("the widget hook", r);
  EXPECT_TRUE(WaitFor([&] { return h.SandboxCounter("codes_exchanged") == exchanged + 1; }));

  // A failure class: every token of the Kommo account revoked → reauth_required.
  ASSERT_EQ(h.SandboxPost("/sandbox/accounts/" + std::to_string(second) + "/revoke",
                          "application/json",
                          R"({"tokens":"all"})")
                .status,
            200);
  r = h.Call(0, "POST", "/v1/accounts/" + std::to_string(second) + "/refresh");
  EXPECT_EQ(r.status, 409) << r.body;
  sweep.Answer("POST /refresh of a revoked account", r);

  // A code pasted by hand, on standard input, reconnects it.
  query = h.ConsentRedirectQuery(0, second);
  const std::string pasted = code_of(query, "exchange-code");
  auto command =
      RunCommand(h,
                 {"exchange-code", "--code-file", "-", "--referer", QueryParam(query, "referer")},
                 h.Env(0),
                 {},
                 pasted + "\n");
  EXPECT_EQ(command.exit_code, 0) << command.err;
  EXPECT_THAT(command.out, HasSubstr("Connected account " + std::to_string(second)));
  sweep.Output("exchange-code's stdout", command.out);
  sweep.Output("exchange-code's stderr", command.err);

  // API-key exchange: over HTTP for one user, by the command (key on stdin) for the other.
  const auto& user = amocrm.at("users").as_array().at(0).as_object();
  sweep.Secret("a user's API key", std::string(user.at("api_key").as_string()));
  r = h.Call(0,
             "POST",
             "/v1/exchange-api-key",
             boost::json::serialize(boost::json::object{{"login", user.at("login")},
                                                        {"api_key", user.at("api_key")},
                                                        {"domain", amocrm.at("host")}}));
  EXPECT_EQ(r.status, 202) << r.body;
  sweep.Answer("POST /v1/exchange-api-key", r);
  const auto& kommo_user = kommo.at("users").as_array().at(0).as_object();
  const std::string kommo_key(kommo_user.at("api_key").as_string());
  sweep.Secret("another user's API key", kommo_key);
  command = RunCommand(h,
                       {"exchange-api-key",
                        "--login",
                        std::string(kommo_user.at("login").as_string()),
                        "--domain",
                        std::string(kommo.at("host").as_string())},
                       h.Env(0),
                       {},
                       kommo_key + "\n");
  sweep.Output("exchange-api-key's stdout", command.out);
  sweep.Output("exchange-api-key's stderr", command.err);

  // The disconnect hook, then a long-lived token for the same account. amoCRM revokes the tokens
  // before it sends the hook; amoauth confirms that before it erases anything (threat 4).
  ASSERT_EQ(h.SandboxPost("/sandbox/accounts/" + std::to_string(first) + "/revoke",
                          "application/json",
                          R"({"tokens":"all"})")
                .status,
            200);
  const std::string client_id = h.SandboxIntegration().client_id;
  const std::string signature =
      Sign(h.SandboxIntegration().client_secret, client_id + "|" + std::to_string(first));
  sweep.Secret("the disconnect hook's signature", signature);
  r = h.Get(h.BaseUrl(0) + "/api/v1/integrations/amo-crm/disconnect?client_uuid=" + client_id +
            "&account_id=" + std::to_string(first) + "&signature=" + signature);
  EXPECT_EQ(r.status, 200) << r.body;
  sweep.Answer("the disconnect hook", r);
  r = h.SandboxPost("/sandbox/integrations/" + client_id + "/long-lived-tokens",
                    "application/json",
                    R"({"account_id":)" + std::to_string(first) + R"(,"days":365})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string long_lived(boost::json::parse(r.body).at("access_token").as_string());
  sweep.Secret("the long-lived token", long_lived);
  r = h.Call(0,
             "POST",
             "/v1/long-lived-tokens",
             boost::json::serialize(
                 boost::json::object{{"token", long_lived}, {"domain", amocrm.at("host")}}));
  EXPECT_EQ(r.status, 201) << r.body;
  sweep.Answer("POST /v1/long-lived-tokens", r);
  EXPECT_EQ(token_answer("the long-lived token"), long_lived);
  r = h.Call(0, "GET", ProxyPath(first));
  EXPECT_EQ(r.status, 200) << r.body;
  sweep.Answer("the proxy with the long-lived token", r);

  // The commands. `token` prints the token on purpose: that line is cut. `export` writes every
  // secret into its file on purpose (sealed): the file is not searched, its output is.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"accounts"},
        {"doctor"},
        {"migrate"},
        {"token", std::to_string(second)},
        {"export", "--out", (h.Dir() / "sweep.export").string(), "--allow-pending"}}) {
    command = RunCommand(h, args, h.Env(0));
    EXPECT_EQ(command.exit_code, 0) << args[0] << ": " << command.err;
    std::string out = command.out;
    if (args[0] == "token") {
      const std::string printed = out.substr(0, out.find('\n'));
      sweep.Secret("the access token `token` printed", printed);
      out.erase(0, printed.size());
    }
    sweep.Output(args[0] + "'s stdout", out);
    sweep.Output(args[0] + "'s stderr", command.err);
  }

  // Webhooks: connected, refresh failed, reauth_required, disconnected…
  EXPECT_TRUE(receiver.WaitUntil(
      [](const std::vector<WebhookDelivery>& all) {
        for (const auto& d : all) {
          if (d.body.find("account.reauth_required") != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(20),
      "account.reauth_required"));
  for (const auto& d : receiver.Deliveries()) {
    std::string text = d.target + "\n";
    for (const auto& [name, value] : d.headers.All()) {
      text += name + ": " + value + "\n";
    }
    sweep.Output("a webhook delivery", text + d.body);
  }

  // The database, open, then closed; and the process's own output.
  const std::string db = h.DatabasePath();
  sweep.Output("the SQLite file (open)", ReadFile(db));
  sweep.Output("the SQLite WAL (open)", ReadFile(db + "-wal"));
  EXPECT_EQ(h.Stop(0), 0);
  sweep.Output("the SQLite file (closed)", ReadFile(db));
  sweep.Output("the SQLite WAL (closed)", ReadFile(db + "-wal"));
  const std::string stderr_text = ReadFile(h.Dir() / "amoauth-0.stderr");
  EXPECT_THAT(stderr_text, HasSubstr("debug")) << "debug logging was on";
  sweep.Output("serve's stderr", stderr_text);
  sweep.Output("serve's stdout", ReadFile(h.Dir() / "amoauth-0.stdout"));

  EXPECT_GE(sweep.Outputs(), 40U);
  std::string hits;
  for (const auto& hit : sweep.Hits()) {
    hits += "\n  " + hit;
  }
  EXPECT_TRUE(hits.empty()) << "secrets found where they must not be:" << hits;
}

}  // namespace
}  // namespace amoauth::testing
