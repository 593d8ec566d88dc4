#include "export_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "amoauth/crypto/base64.hpp"

namespace amoauth::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

core::TimePoint At(std::int64_t s) {
  return core::TimePoint(std::chrono::seconds(s));
}

ExportContents Sample() {
  core::Connection active;
  active.account_id = 30000001;
  active.client_id = "client-a";
  active.base_domain = "example.amocrm.ru";
  active.api_domain = "api-b.amocrm.ru";
  active.user_id = "10000001";
  active.access_token = Secret("access-token-plaintext-1");
  active.refresh_token = Secret("refresh-token-plaintext-1");
  active.expires_at = At(1800000000);
  active.created_at = At(1700000000);
  active.updated_at = At(1700000100);
  active.version = 7;
  active.last_refresh_at = At(1700000050);
  active.next_refresh_at = At(1799996400);
  core::Connection reauth = active;
  reauth.account_id = 31000001;
  reauth.status = core::ConnectionStatus::kReauthRequired;
  reauth.refresh_failures = 3;
  reauth.last_error = "amoCRM refused the refresh token";
  reauth.last_error_at = At(1700000200);
  reauth.next_refresh_at = {};
  return {.connections = {active, reauth},
          .integrations = {{.client_id = "external-1",
                            .client_secret = Secret("external-secret-plaintext"),
                            .state_hash = "hash-1",
                            .created_at = At(1700000300)}}};
}

TEST(ExportFile, RoundTripsEveryFieldAndShowsNoSecret) {
  const auto key = crypto::MasterKey::Generate();
  const auto sample = Sample();
  const std::string text = SealExport(sample, key, At(1700001000), "sqlite", 4);
  for (const char* secret : {"access-token-plaintext-1",
                             "refresh-token-plaintext-1",
                             "external-secret-plaintext",
                             "example.amocrm.ru"}) {
    EXPECT_THAT(text, Not(HasSubstr(secret)));
  }
  auto header = ReadExportHeader(text);
  ASSERT_TRUE(header) << header.error();
  EXPECT_EQ(header->key_id, key.Id());
  EXPECT_EQ(header->connections, 2U);
  EXPECT_EQ(header->integrations, 1U);
  EXPECT_EQ(header->engine, "sqlite");

  auto opened = OpenExport(text, key);
  ASSERT_TRUE(opened) << opened.error();
  ASSERT_EQ(opened->connections.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& a = sample.connections[i];
    const auto& b = opened->connections[i];
    EXPECT_EQ(a.Key(), b.Key());
    EXPECT_EQ(a.base_domain, b.base_domain);
    EXPECT_EQ(a.api_domain, b.api_domain);
    EXPECT_EQ(a.user_id, b.user_id);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.access_token.Reveal(), b.access_token.Reveal());
    EXPECT_EQ(a.refresh_token.Reveal(), b.refresh_token.Reveal());
    EXPECT_EQ(a.expires_at, b.expires_at);
    EXPECT_EQ(a.created_at, b.created_at);
    EXPECT_EQ(a.updated_at, b.updated_at);
    EXPECT_EQ(a.version, b.version);
    EXPECT_EQ(a.last_refresh_at, b.last_refresh_at);
    EXPECT_EQ(a.next_refresh_at, b.next_refresh_at);
    EXPECT_EQ(a.refresh_failures, b.refresh_failures);
    EXPECT_EQ(a.last_error, b.last_error);
    EXPECT_EQ(a.last_error_at, b.last_error_at);
  }
  ASSERT_EQ(opened->integrations.size(), 1U);
  EXPECT_EQ(opened->integrations[0].client_id, "external-1");
  EXPECT_EQ(opened->integrations[0].client_secret.Reveal(), "external-secret-plaintext");
  EXPECT_EQ(opened->integrations[0].state_hash, "hash-1");
  EXPECT_EQ(opened->integrations[0].created_at, At(1700000300));
}

TEST(ExportFile, AnotherKeyIsRefusedNamingBothKeyIds) {
  const auto key = crypto::MasterKey::Generate();
  const auto other = crypto::MasterKey::Generate();
  const std::string text = SealExport(Sample(), key, At(1700001000), "sqlite", 4);
  auto opened = OpenExport(text, other);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error(), HasSubstr(key.Id()));
  EXPECT_THAT(opened.error(), HasSubstr(other.Id()));
}

TEST(ExportFile, AlteredFilesAreRefused) {
  const auto key = crypto::MasterKey::Generate();
  const std::string text = SealExport(Sample(), key, At(1700001000), "sqlite", 4);
  // A changed count in the clear header.
  std::string counts = text;
  counts.replace(counts.find(R"("connections":2)"), 15, R"("connections":3)");
  EXPECT_FALSE(OpenExport(counts, key));
  // A flipped byte of the ciphertext.
  const auto start = text.find(R"("sealed":")") + 10;
  std::string sealed = text;
  sealed[start + 20] = sealed[start + 20] == 'A' ? 'B' : 'A';
  auto opened = OpenExport(sealed, key);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error(), HasSubstr("do not decrypt"));
  // Not an export at all.
  EXPECT_FALSE(ReadExportHeader("{\"accounts\":[]}"));
  EXPECT_FALSE(ReadExportHeader("not json"));
}

}  // namespace
}  // namespace amoauth::app
