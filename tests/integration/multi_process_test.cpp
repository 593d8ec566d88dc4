// Real `amoauth serve` processes sharing one SQLite file, against the sandbox (issue 3: tokens
// that never die). One refresh however many processes ask at once, through /token and through
// the proxy; webhook events that survive a SIGKILL.
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/wait.h>

#include "process_harness.hpp"

namespace amoauth::testing {
namespace {

using ::testing::HasSubstr;

const std::string kTokenPath = "/v1/accounts/" + std::to_string(kSandboxAccountId) + "/token";
const std::string kProxyPath =
    "/v1/accounts/" + std::to_string(kSandboxAccountId) + "/proxy/api/v4/account";

/// "50 × 200" or "25 × 200, 25 × 409 (first: {…})": what a batch got, in one line per status.
std::string Summary(const std::vector<CallResult>& results) {
  std::map<int, std::pair<int, std::string>> by_status;
  for (const auto& r : results) {
    auto& [count, first] = by_status[r.status];
    if (count++ == 0) {
      first = r.status == 0 ? r.error : r.body.substr(0, 300);
    }
  }
  std::ostringstream out;
  for (const auto& [status, entry] : by_status) {
    out << "\n  " << entry.first << " x " << (status == 0 ? "no answer" : std::to_string(status))
        << " (first: " << entry.second << ")";
  }
  return out.str();
}

int CountStatus(const std::vector<CallResult>& results, int status) {
  int n = 0;
  for (const auto& r : results) {
    n += r.status == status ? 1 : 0;
  }
  return n;
}

std::int64_t Delta(const boost::json::object& before,
                   const boost::json::object& after,
                   const char* counter) {
  return after.at(counter).to_number<std::int64_t>() - before.at(counter).to_number<std::int64_t>();
}

// --- webhook signatures, checked with OpenSSL directly (not amoauth's crypto library) ---------

std::string HmacSha256Hex(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(),
       key.data(),
       static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()),
       message.size(),
       mac,
       &length);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kDigits[mac[i] >> 4];
    hex += kDigits[mac[i] & 0x0f];
  }
  return hex;
}

/// `X-Amoauth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>`.
::testing::AssertionResult SignedWith(const WebhookDelivery& d, const std::string& secret) {
  const auto header = d.headers.Get("X-Amoauth-Signature");
  if (!header) {
    return ::testing::AssertionFailure() << "no X-Amoauth-Signature header; body " << d.body;
  }
  std::string t;
  std::vector<std::string> v1;
  std::stringstream parts{std::string(*header)};
  for (std::string part; std::getline(parts, part, ',');) {
    const auto eq = part.find('=');
    const std::string name = part.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (name == "t") {
      t = value;
    } else if (name == "v1") {
      v1.push_back(value);
    }
  }
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || v1.empty()) {
    return ::testing::AssertionFailure() << "malformed X-Amoauth-Signature: " << *header;
  }
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (std::llabs(now - std::stoll(t)) > 600) {
    return ::testing::AssertionFailure()
           << "signature time t=" << t << " is not now (" << now << ")";
  }
  const std::string expected = HmacSha256Hex(secret, t + "." + d.body);
  for (const auto& candidate : v1) {
    if (candidate == expected) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "X-Amoauth-Signature " << *header << " does not match HMAC-SHA256 v1=" << expected
         << " over t.body; body " << d.body;
}

bool IsEvent(const WebhookDelivery& d, const std::string& type) {
  boost::system::error_code ec;
  auto v = boost::json::parse(d.body, ec);
  if (ec || !v.is_object()) {
    return false;
  }
  const auto* t = v.as_object().if_contains("type");
  return t != nullptr && t->is_string() && t->as_string() == type;
}

// --- the harness itself (passes without the issue-3 features) ----------------------------------

TEST(WebhookReceiver, RecordsEveryPostWithItsAnswerAndChecksSignatures) {
  // RFC 4231, test case 2: the HMAC helper itself is right.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string secret = "whsec-test-0123456789abcdefghijk";
  const std::string body = R"({"id":"evt_1","type":"account.connected","account_id":30000001})";
  const std::string t = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  WebhookReceiver receiver;
  BlockingHttp http;
  http_client::ClientRequest request{.method = "POST", .url = receiver.Url(), .body = body};
  request.headers.Set("Content-Type", "application/json");
  request.headers.Set("X-Amoauth-Signature",
                      "t=" + t + ",v1=" + HmacSha256Hex(secret, t + "." + body));

  receiver.AnswerWith(500);
  EXPECT_EQ(http.Send(request).status, 500);
  receiver.AnswerWith(200);
  EXPECT_EQ(http.Send(request).status, 200);
  ASSERT_TRUE(
      receiver.WaitUntil([](const std::vector<WebhookDelivery>& all) { return all.size() == 2; },
                         std::chrono::seconds(1),
                         "two POSTs"));
  auto deliveries = receiver.Deliveries();
  EXPECT_EQ(deliveries[0].answered, 500);
  EXPECT_EQ(deliveries[1].answered, 200);
  EXPECT_TRUE(IsEvent(deliveries[0], "account.connected"));
  EXPECT_TRUE(SignedWith(deliveries[0], secret));
  EXPECT_FALSE(SignedWith(deliveries[0], secret + "x"));
  deliveries[1].body += " ";
  EXPECT_FALSE(SignedWith(deliveries[1], secret));
}

TEST(MultiProcess, TwoProcessesShareOneDatabase) {
  ProcessHarness h;
  ASSERT_EQ(h.Size(), 2U);
  EXPECT_NE(h.BaseUrl(0), h.BaseUrl(1));
  EXPECT_EQ(h.Connect(0), kSandboxAccountId);

  // Connected through process 0, served by process 1.
  const std::string token = h.AccessToken(0);
  EXPECT_EQ(h.AccessToken(1), token);
  auto list = h.Call(1, "GET", "/v1/accounts");
  ASSERT_EQ(list.status, 200) << list.body << list.error;
  EXPECT_THAT(list.body, HasSubstr(std::to_string(kSandboxAccountId)));

  // A crash: process 1 dies at once and comes back on the same file.
  const int killed = h.Kill(1, SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL) << killed;
  EXPECT_FALSE(h.Running(1));
  h.Restart(1);
  EXPECT_EQ(h.AccessToken(1), token);

  // A clean stop: SIGTERM, exit code 0.
  EXPECT_EQ(h.Stop(0), 0) << h.StderrTail(0);
  h.Restart(0);
  EXPECT_EQ(h.AccessToken(0), token);

  // The expiry written into the shared file is seen; one refresh, and both serve its result.
  const auto before = h.SandboxCounters();
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  const std::string refreshed = h.AccessToken(1);
  EXPECT_NE(refreshed, token);
  EXPECT_EQ(h.AccessToken(0), refreshed);
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);
}

TEST(MultiProcess, FiftyConcurrentTokenCallsOnOneProcessRefreshOnce) {
  ProcessHarness h({.processes = 1});
  h.Connect(0);
  const std::string old_token = h.AccessToken(0);
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  const auto before = h.SandboxCounters();

  const auto results = h.GetConcurrently(kTokenPath, 50);
  EXPECT_EQ(CountStatus(results, 200), 50) << Summary(results);
  std::set<std::string> tokens;
  for (const auto& r : results) {
    if (r.status == 200) {
      tokens.emplace(boost::json::parse(r.body).as_object().at("access_token").as_string());
    }
  }
  EXPECT_EQ(tokens.size(), 1U);
  EXPECT_FALSE(tokens.contains(old_token));
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);
}

// Processes that open a brand-new database at the same moment all come up: switching the file to
// WAL answers SQLITE_BUSY without the busy handler when two set it up together, and the store
// retries that step (libs/store_sqlite/src/sqlite_handle.cpp). Seen failing under load before.
TEST(MultiProcess, ProcessesStartingTogetherOnANewDatabaseAllComeUp) {
  for (int round = 0; round < 5; ++round) {
    ProcessHarness h({.processes = 3, .start_together = true});
    EXPECT_EQ(h.Connect(round % 3), kSandboxAccountId);
  }
}

// --- issue 3 -----------------------------------------------------------------------------------

/// Every connection to amoCRM is held this long, so both processes' refreshes surely overlap.
constexpr std::chrono::milliseconds kAmoLatency{150};

TEST(MultiProcess, FiftyConcurrentTokenCallsOnTwoProcessesRefreshOnce) {
  ProcessHarness h({.amo_latency = kAmoLatency});
  h.Connect(0);
  const std::string old_token = h.AccessToken(1);
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  const auto before = h.SandboxCounters();

  const auto results = h.GetConcurrently(kTokenPath, 50);  // 25 on each process
  EXPECT_EQ(CountStatus(results, 200), 50) << Summary(results);
  std::set<std::string> tokens;
  for (const auto& r : results) {
    if (r.status == 200) {
      tokens.emplace(boost::json::parse(r.body).as_object().at("access_token").as_string());
    }
  }
  EXPECT_EQ(tokens.size(), 1U) << "every caller must get the one refreshed token";
  EXPECT_FALSE(tokens.contains(old_token));
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);

  // And that token works: amoCRM accepts it through either process.
  for (std::size_t i = 0; i < h.Size(); ++i) {
    auto account = h.Call(i, "GET", kProxyPath);
    EXPECT_EQ(account.status, 200) << "process " << i << ": " << account.body << account.error;
  }
}

// A process SIGKILLed in the middle of a refresh leaves its lease behind. The other process does
// not wait the lease out (3 × the amoCRM timeout + 5 s): once it has seen the holder dead for the
// amoCRM timeout it takes the lease over and refreshes (architecture.md, "A lease holder that
// died"). The killed refresh stalled at amoCRM, which consumed nothing.
TEST(MultiProcess, ALeaseOfAProcessKilledMidRefreshIsTakenOverBeforeItEnds) {
  ProcessHarness h({.extra_env = {{"AMOAUTH_AMO_TIMEOUT_MS", "5000"}}});  // lease 20 s
  h.Connect(0);
  const std::string old_token = h.AccessToken(1);
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  auto stall = h.SandboxPost(
      "/sandbox/faults", "application/json", R"({"token_endpoint":{"stall_ms":60000,"times":1}})");
  ASSERT_EQ(stall.status, 200) << stall.body;
  const auto before = h.SandboxCounters();

  // Process 0 takes the lease and hangs at amoCRM; then it dies.
  auto hanging = std::async(std::launch::async, [&h] { return h.Call(0, "GET", kTokenPath); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (h.LeaseHolders().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(h.LeaseHolders().size(), 1U) << "process 0 never took the lease";
  const std::string dead_holder = h.LeaseHolders().front();
  h.Kill(0, SIGKILL);
  EXPECT_EQ(hanging.get().status, 0) << "its caller was cut off";

  auto token = h.Call(1, "GET", kTokenPath);
  ASSERT_EQ(token.status, 200) << token.body << token.error;
  EXPECT_NE(boost::json::parse(token.body).as_object().at("access_token").as_string(), old_token);
  EXPECT_THAT(h.StderrTail(1, 400),
              HasSubstr("took over the refresh lease of a process that died"));
  const auto holders = h.LeaseHolders();
  EXPECT_TRUE(holders.empty() || holders.front() != dead_holder) << "the dead holder's lease";
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(before, after, "refreshes"), 1);
  EXPECT_EQ(Delta(before, after, "refresh_token_reuses"), 0);
}

TEST(MultiProcess, FiftyConcurrentProxyCallsOnTwoProcessesRefreshOnceAlsoAfterRevocation) {
  ProcessHarness h({.extra_env = {{"AMOAUTH_RATE_LIMIT_RPS", "1000"}}, .amo_latency = kAmoLatency});
  // amoCRM's own limit of 7 requests/s per account, which the sandbox enforces, is not under test.
  auto unlimited =
      h.SandboxPost("/sandbox/config", "application/json", R"({"api_rate_limit_rps":0})");
  ASSERT_EQ(unlimited.status, 200) << "POST /sandbox/config: " << unlimited.body << unlimited.error;
  h.Connect(1);
  ASSERT_EQ(h.ExpireAccessTokens(), 1);
  const auto before = h.SandboxCounters();

  const auto results = h.GetConcurrently(kProxyPath, 50);
  EXPECT_EQ(CountStatus(results, 200), 50) << Summary(results);
  for (const auto& r : results) {
    if (r.status == 200) {
      EXPECT_EQ(boost::json::parse(r.body).as_object().at("id").as_int64(), kSandboxAccountId);
    }
  }
  const auto expired = h.SandboxCounters();
  EXPECT_EQ(Delta(before, expired, "refreshes"), 1);
  EXPECT_EQ(Delta(before, expired, "refresh_token_reuses"), 0);

  // amoCRM drops the access token while amoauth still thinks it good for a day: every proxied
  // call meets a 401, and still the processes refresh once between them.
  auto revoked = h.SandboxPost("/sandbox/accounts/" + std::to_string(kSandboxAccountId) + "/revoke",
                               "application/json",
                               R"({"tokens":"access"})");
  ASSERT_GE(revoked.status, 200) << revoked.error;
  ASSERT_LT(revoked.status, 300) << "POST /sandbox/accounts/{id}/revoke: " << revoked.status << " "
                                 << revoked.body;

  const auto again = h.GetConcurrently(kProxyPath, 50);
  EXPECT_EQ(CountStatus(again, 200), 50) << Summary(again);
  const auto after = h.SandboxCounters();
  EXPECT_EQ(Delta(expired, after, "refreshes"), 1);
  EXPECT_EQ(Delta(expired, after, "refresh_token_reuses"), 0);
  EXPECT_GE(Delta(expired, after, "api_unauthorized"), 1) << "the revoked token was never tried";
}

TEST(MultiProcess, WebhookOutboxSurvivesSigkill) {
  const std::string secret = "whsec-test-0123456789abcdefghijk";
  ASSERT_EQ(secret.size(), 32U);
  WebhookReceiver receiver;
  receiver.AnswerWith(500);
  // The kill below most likely lands while the failed attempt is still claimed (before its
  // failure is written), so redelivery waits for the claim to end: webhook timeout + 5 s. A 1 s
  // timeout keeps that short; without it the wait is about 16 s, still inside the deadline.
  ProcessHarness h({.processes = 1,
                    .extra_env = {{"AMOAUTH_WEBHOOK_URL", receiver.Url()},
                                  {"AMOAUTH_WEBHOOK_SECRET", secret},
                                  {"AMOAUTH_WEBHOOK_TIMEOUT_MS", "1000"}}});
  h.Connect(0);  // the token row and its account.connected event: one transaction

  const auto connected = [](const WebhookDelivery& d) { return IsEvent(d, "account.connected"); };
  ASSERT_TRUE(receiver.WaitUntil(
      [&](const std::vector<WebhookDelivery>& all) {
        return std::any_of(all.begin(), all.end(), connected);
      },
      std::chrono::seconds(10),
      "attempt to deliver account.connected (answered 500)"));

  // Crash with the event undelivered; come back on the same file with the receiver healthy.
  h.Kill(0, SIGKILL);
  receiver.AnswerWith(200);
  h.Restart(0);
  EXPECT_TRUE(receiver.WaitUntil(
      [&](const std::vector<WebhookDelivery>& all) {
        return std::any_of(all.begin(), all.end(), [&](const WebhookDelivery& d) {
          return connected(d) && d.answered == 200;
        });
      },
      std::chrono::seconds(25),
      "delivery of account.connected answered 200 after the restart"));

  // At least once, so duplicates are fine; but each is signed and is the same event (same id).
  std::set<std::string> ids;
  for (const auto& d : receiver.Deliveries()) {
    EXPECT_TRUE(SignedWith(d, secret));
    if (!connected(d)) {
      continue;
    }
    const auto event = boost::json::parse(d.body).as_object();
    ASSERT_TRUE(event.contains("id")) << d.body;
    ids.insert(boost::json::serialize(event.at("id")));
    ASSERT_TRUE(event.contains("account_id")) << d.body;
    EXPECT_EQ(boost::json::serialize(event.at("account_id")), std::to_string(kSandboxAccountId))
        << "account_id must be the number, as everywhere in the API: " << d.body;
  }
  EXPECT_EQ(ids.size(), 1U) << "every delivery of one event must carry its one id";

  // The row survived the SIGKILL too.
  auto account = h.Call(0, "GET", "/v1/accounts/" + std::to_string(kSandboxAccountId));
  EXPECT_EQ(account.status, 200) << account.body << account.error;
}

}  // namespace
}  // namespace amoauth::testing
