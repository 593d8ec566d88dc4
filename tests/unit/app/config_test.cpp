#include "config.hpp"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace amoauth::app {
namespace {

using ::testing::HasSubstr;

Variables Production() {
  return {
      {"AMO_CLIENT_ID", "2912780f-a1e4-4d5d-a069-ee01422d8bef"},
      {"AMO_CLIENT_SECRET", "secret-secret"},
      {"AMO_REDIRECT_URI", "https://foryou-realestate.com/api/v1/integrations/amo-crm/callback"},
      {"AMOAUTH_API_KEY", "0123456789abcdef0123"},
      {"AMOAUTH_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}};
}

TEST(Config, DefaultsAreTheDocumentedOnes) {
  auto c = LoadConfig(Production(), false);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8080);
  EXPECT_EQ(c->database.engine, DatabaseEngine::kSqlite);
  EXPECT_EQ(c->database.sqlite_path, "./data/amoauth.db");
  EXPECT_EQ(c->database.pool, 4U);
  EXPECT_EQ(c->DataDir(), "./data");
  EXPECT_EQ(c->callback_path, "/api/v1/integrations/amo-crm/callback");
  EXPECT_EQ(c->disconnect_path, "/api/v1/integrations/amo-crm/disconnect");
  EXPECT_EQ(c->allowed_domains, (std::vector<std::string>{"amocrm.ru", "amocrm.com", "kommo.com"}));
  EXPECT_EQ(c->consent_url, "https://www.amocrm.ru/oauth");
  EXPECT_EQ(c->refresh_margin, std::chrono::seconds(300));
  EXPECT_TRUE(c->amo_connect_to.empty());
}

TEST(Config, SandboxNeedsNoIntegrationKeys) {
  EXPECT_TRUE(LoadConfig({}, true));
  EXPECT_FALSE(LoadConfig({}, false));
}

/// Every bad value stops start-up with a sentence naming its variable.
TEST(Config, BadValuesNameTheirVariable) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"AMOAUTH_LISTEN", "8080"},
      {"AMOAUTH_LISTEN", "127.0.0.1:99999"},
      {"AMOAUTH_DATABASE_URL", "mysql://user:pw@host/db"},
      {"AMOAUTH_DATABASE_URL", "user:pw@host/db"},
      {"AMOAUTH_DATABASE_POOL", "0"},
      {"AMOAUTH_DATABASE_POOL", "65"},
      {"AMOAUTH_DATABASE_URL", "sqlite://"},
      {"AMOAUTH_MASTER_KEY", "too-short"},
      {"AMOAUTH_API_KEY", "short"},
      {"AMOAUTH_ALLOWED_DOMAINS", "Evil Domain"},
      {"AMOAUTH_ALLOWED_DOMAINS", ","},
      {"AMOAUTH_AMO_CONNECT_TO", "nohost"},
      {"AMOAUTH_AMO_CA_FILE", "/nonexistent/ca.pem"},
      {"AMOAUTH_THREADS", "0"},
      {"AMOAUTH_SHUTDOWN_GRACE_MS", "-1"},
      {"AMOAUTH_SHUTDOWN_GRACE_MS", "600001"},
      {"AMOAUTH_SHUTDOWN_GRACE_MS", "15s"},
      {"AMOAUTH_REFRESH_MARGIN", "-5"},
      {"AMOAUTH_PLATFORM", "bitrix"},
      {"AMOAUTH_CALLBACK_PATH", "callback"},
      {"AMOAUTH_DISCONNECT_PATH", "disconnect?x"},
      {"AMOAUTH_DISCONNECT_PATH", "/api/v1/integrations/amo-crm/callback"},
      {"AMOAUTH_LOG_LEVEL", "loud"},
      {"AMOAUTH_LOG_FORMAT", "JSON"},
      {"AMOAUTH_LOG_FORMAT", "logfmt"},
      {"AMO_REDIRECT_URI", "not a url"},
      {"AMOAUTH_CONSENT_URL", "ftp://x"},
      {"AMOAUTH_SECRETS_PATH", "secrets"},
      {"AMOAUTH_SECRETS_PATH", "/api/v1/integrations/amo-crm/callback"},
      {"AMOAUTH_POST_MESSAGE_ORIGIN", "*"},
      {"AMOAUTH_POST_MESSAGE_ORIGIN", "https://your.site/"},
      {"AMOAUTH_POST_MESSAGE_ORIGIN", "https://your.site/path"},
      {"AMOAUTH_POST_MESSAGE_ORIGIN", "HTTPS://YOUR.SITE"},
      {"AMOAUTH_BUTTON_VARIANT", "both"},
      {"AMOAUTH_BUTTON_COLOR", "pink"},
      {"AMOAUTH_BUTTON_THEME", "dark"},
      {"AMOAUTH_BUTTON_MODE", "redirect"},
      {"AMOAUTH_BUTTON_COMPACT", "yes"},
      {"AMOAUTH_BUTTON_CLASS_NAME", "a\"b"},
      {"AMOAUTH_BUTTON_TITLE", "two\nlines"},
  };
  for (const auto& [name, value] : cases) {
    auto vars = Production();
    vars[name] = value;
    auto c = LoadConfig(vars, false);
    ASSERT_FALSE(c) << name << "=" << value;
    EXPECT_THAT(c.error(), HasSubstr(name)) << value;
    EXPECT_THAT(c.error(), ::testing::Not(HasSubstr("pw@"))) << "a password must not be echoed";
  }
  for (const char* missing : {"AMO_CLIENT_ID",
                              "AMO_CLIENT_SECRET",
                              "AMO_REDIRECT_URI",
                              "AMOAUTH_MASTER_KEY",
                              "AMOAUTH_API_KEY"}) {
    auto vars = Production();
    vars.erase(missing);
    auto c = LoadConfig(vars, false);
    ASSERT_FALSE(c) << missing;
    EXPECT_THAT(c.error(), HasSubstr(missing));
  }
}

TEST(Config, LogFormatIsTextUnlessJsonIsAsked) {
  auto vars = Production();
  auto text = LoadConfig(vars, false);
  ASSERT_TRUE(text) << text.error();
  EXPECT_EQ(text->log_format, "text");
  vars["AMOAUTH_LOG_FORMAT"] = "json";
  auto json = LoadConfig(vars, false);
  ASSERT_TRUE(json) << json.error();
  EXPECT_EQ(json->log_format, "json");
}

TEST(Config, DatabaseUrlChoosesTheEngine) {
  auto vars = Production();
  vars["AMOAUTH_DATABASE_URL"] = "sqlite:///var/lib/amoauth/amoauth.db";
  auto c = LoadConfig(vars, false);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->database.engine, DatabaseEngine::kSqlite);
  EXPECT_EQ(c->database.sqlite_path, "/var/lib/amoauth/amoauth.db");
  EXPECT_EQ(c->DataDir(), "/var/lib/amoauth");

  for (const std::string url : {"postgresql://amoauth:pw@db.internal:5432/amoauth",
                                "postgres://amoauth@/amoauth?host=/run/postgresql"}) {
    vars["AMOAUTH_DATABASE_URL"] = url;
    vars["AMOAUTH_DATABASE_POOL"] = "16";
    c = LoadConfig(vars, false);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->database.engine, DatabaseEngine::kPostgresql);
    EXPECT_EQ(c->database.postgres_url, url);
    EXPECT_EQ(c->database.pool, 16U);
    EXPECT_EQ(c->DataDir(), "./data");
    EXPECT_THAT(c->database.Describe(), HasSubstr("PostgreSQL"));
    EXPECT_THAT(c->database.Describe(), ::testing::Not(HasSubstr(":pw@")));
  }
}

TEST(DatabaseUrl, RedactionHidesEveryPassword) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"postgresql://amoauth:s3cret@db:5432/amoauth", "postgresql://amoauth:***@db:5432/amoauth"},
      {"postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"},
      {"postgresql://u:pw@@h/db", "postgresql://u:***@h/db"},
      {"postgresql://u@h/db?password=s3cret&sslmode=require",
       "postgresql://u@h/db?password=***&sslmode=require"},
      {"postgresql://h/db?sslmode=disable&password=s3cret",
       "postgresql://h/db?sslmode=disable&password=***"},
      {"postgresql://u:a@/db?host=/tmp/pg&password=b",
       "postgresql://u:***@/db?host=/tmp/pg&password=***"},
      // Nothing to hide: unchanged.
      {"postgresql://amoauth@/amoauth?host=/run/postgresql",
       "postgresql://amoauth@/amoauth?host=/run/postgresql"},
      {"postgresql://db.internal/amoauth", "postgresql://db.internal/amoauth"},
      {"sqlite://./data/amoauth.db", "sqlite://./data/amoauth.db"},
      {"", ""},
  };
  for (const auto& [url, redacted] : cases) {
    EXPECT_EQ(RedactDatabaseUrl(url), redacted) << url;
  }
}

TEST(Config, ButtonAndPostMessageDefaults) {
  auto c = LoadConfig(Production(), false);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->secrets_path, "/api/v1/integrations/amo-crm/secrets");
  EXPECT_EQ(c->post_message_origin, "");  // the Redirect URI's origin, taken where it is wired
  EXPECT_TRUE(c->connect_button.empty());

  auto vars = Production();
  vars["AMOAUTH_POST_MESSAGE_ORIGIN"] = "https://app.your.site:8443";
  vars["AMOAUTH_BUTTON_TITLE"] = "Connect";
  vars["AMOAUTH_BUTTON_MODE"] = "post_message";
  vars["AMOAUTH_BUTTON_COLOR"] = "red";
  c = LoadConfig(vars, false);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->post_message_origin, "https://app.your.site:8443");
  EXPECT_EQ(
      c->connect_button,
      (core::ButtonOptionPairs{{"title", "Connect"}, {"color", "red"}, {"mode", "post_message"}}));
}

TEST(Config, MetadataButtonNeedsItsFieldsAndAnHttpsRedirectUri) {
  auto vars = Production();
  vars["AMOAUTH_BUTTON_VARIANT"] = "metadata";
  auto c = LoadConfig(vars, false);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error(), HasSubstr("AMOAUTH_BUTTON_NAME"));

  vars["AMOAUTH_BUTTON_NAME"] = "Sync";
  vars["AMOAUTH_BUTTON_DESCRIPTION"] = "Keeps deals in step";
  vars["AMOAUTH_BUTTON_LOGO"] = "http://your.site/logo.png";
  c = LoadConfig(vars, false);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error(), HasSubstr("AMOAUTH_BUTTON_LOGO: logo must be an absolute https:// URL"));

  vars["AMOAUTH_BUTTON_LOGO"] = "https://your.site/logo.png";
  vars["AMOAUTH_BUTTON_SCOPES"] = "crm";
  EXPECT_TRUE(LoadConfig(vars, false));

  vars["AMO_REDIRECT_URI"] = "http://your.site/callback";  // amoCRM wants https here
  c = LoadConfig(vars, false);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error(), HasSubstr("AMO_REDIRECT_URI"));
  EXPECT_THAT(c.error(), HasSubstr("redirect_uri must be an absolute https:// URL"));

  vars.erase("AMO_REDIRECT_URI");  // sandbox mode puts a loopback one in later
  EXPECT_TRUE(LoadConfig(vars, true));
}

TEST(Config, SecretNeverAppearsInAnError) {
  auto vars = Production();
  vars["AMOAUTH_MASTER_KEY"] = "bm90LWEta2V5LXNlY3JldC1wYXlsb2Fk";
  auto c = LoadConfig(vars, false);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error(), ::testing::Not(HasSubstr("bm90LWEta2V5")));
}

TEST(Config, PreviousMasterKeyIsReadForARotationAndChecked) {
  auto vars = Production();
  EXPECT_FALSE(LoadConfig(vars, false)->previous_master_key.has_value());
  vars["AMOAUTH_MASTER_KEY_PREVIOUS"] = "";  // set but empty: none
  EXPECT_FALSE(LoadConfig(vars, false)->previous_master_key.has_value());

  const auto previous = crypto::MasterKey::Generate();
  vars["AMOAUTH_MASTER_KEY_PREVIOUS"] = previous.ToBase64();
  auto c = LoadConfig(vars, false);
  ASSERT_TRUE(c) << c.error();
  ASSERT_TRUE(c->previous_master_key.has_value());
  EXPECT_EQ(c->previous_master_key->Id(), previous.Id());
  EXPECT_NE(c->master_key->Id(), previous.Id());

  vars["AMOAUTH_MASTER_KEY_PREVIOUS"] = vars["AMOAUTH_MASTER_KEY"];
  auto same = LoadConfig(vars, false);
  ASSERT_FALSE(same);
  EXPECT_THAT(same.error(), HasSubstr("is the same key as AMOAUTH_MASTER_KEY"));
  EXPECT_THAT(same.error(), ::testing::Not(HasSubstr(vars["AMOAUTH_MASTER_KEY"])));

  vars["AMOAUTH_MASTER_KEY_PREVIOUS"] = "bm90LWEta2V5LXNlY3JldC1wYXlsb2Fk";
  auto bad = LoadConfig(vars, false);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error(), HasSubstr("AMOAUTH_MASTER_KEY_PREVIOUS must be base64"));
  EXPECT_THAT(bad.error(), ::testing::Not(HasSubstr("bm90LWEta2V5")));
}

TEST(EnvFile, ReadsSeed003StyleFiles) {
  const auto path =
      std::filesystem::temp_directory_path() / ("amoauth-env-" + std::to_string(::getpid()));
  {
    std::ofstream out(path);
    out << "# integration\nAMO_CLIENT_ID=2912780f-a1e4-4d5d-a069-ee01422d8bef\n"
           "export AMO_CLIENT_SECRET=\"quoted value\"\n\nAMOAUTH_LISTEN='0.0.0.0:9000'\n";
  }
  auto vars = ReadEnvFile(path.string());
  ASSERT_TRUE(vars) << vars.error();
  EXPECT_EQ((*vars)["AMO_CLIENT_ID"], "2912780f-a1e4-4d5d-a069-ee01422d8bef");
  EXPECT_EQ((*vars)["AMO_CLIENT_SECRET"], "quoted value");
  EXPECT_EQ((*vars)["AMOAUTH_LISTEN"], "0.0.0.0:9000");
  {
    std::ofstream out(path);
    out << "GOOD=1\nthis line is wrong\n";
  }
  auto bad = ReadEnvFile(path.string());
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error(), HasSubstr("line 2"));
  std::filesystem::remove(path);
  EXPECT_TRUE(ReadEnvFile("/nonexistent/.env"));
}

TEST(Config, TokenCacheEntries) {
  auto defaults = LoadConfig(Production(), false);
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_EQ(defaults->token_cache_entries, 100000U);
  auto vars = Production();
  vars["AMOAUTH_TOKEN_CACHE_ENTRIES"] = "0";
  auto off = LoadConfig(vars, false);
  ASSERT_TRUE(off) << off.error();
  EXPECT_EQ(off->token_cache_entries, 0U);
  for (const char* bad : {"-1", "10000001", "many"}) {
    vars["AMOAUTH_TOKEN_CACHE_ENTRIES"] = bad;
    auto c = LoadConfig(vars, false);
    ASSERT_FALSE(c) << bad;
    EXPECT_THAT(c.error(), HasSubstr("AMOAUTH_TOKEN_CACHE_ENTRIES"));
  }
}

TEST(Config, ShutdownGrace) {
  auto defaults = LoadConfig(Production(), false);
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_EQ(defaults->shutdown_grace, std::chrono::milliseconds(15000));
  auto vars = Production();
  for (const auto& [text, expected] : {std::pair<const char*, int>{"0", 0},
                                       std::pair<const char*, int>{"250", 250},
                                       std::pair<const char*, int>{"600000", 600000}}) {
    vars["AMOAUTH_SHUTDOWN_GRACE_MS"] = text;
    auto c = LoadConfig(vars, false);
    ASSERT_TRUE(c) << text << ": " << c.error();
    EXPECT_EQ(c->shutdown_grace, std::chrono::milliseconds(expected)) << text;
  }
  for (const char* bad : {"-1", "600001", "soon"}) {
    vars["AMOAUTH_SHUTDOWN_GRACE_MS"] = bad;
    auto c = LoadConfig(vars, false);
    ASSERT_FALSE(c) << "'" << bad << "'";
    EXPECT_THAT(c.error(), HasSubstr("AMOAUTH_SHUTDOWN_GRACE_MS")) << bad;
  }
}

TEST(Config, MetricsNeedTheApiKeyUnlessMadePublic) {
  auto defaults = LoadConfig(Production(), false);
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_FALSE(defaults->metrics_public);
  auto vars = Production();
  vars["AMOAUTH_METRICS_PUBLIC"] = "1";
  auto open = LoadConfig(vars, false);
  ASSERT_TRUE(open) << open.error();
  EXPECT_TRUE(open->metrics_public);
  for (const char* bad : {"2", "yes", "-1"}) {
    vars["AMOAUTH_METRICS_PUBLIC"] = bad;
    auto c = LoadConfig(vars, false);
    ASSERT_FALSE(c) << bad;
    EXPECT_THAT(c.error(), HasSubstr("AMOAUTH_METRICS_PUBLIC"));
  }
}

TEST(Config, ServerAndPerClientLimits) {
  auto defaults = LoadConfig(Production(), false);
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_EQ(defaults->http_body_limit, 1024U * 1024U);
  EXPECT_EQ(defaults->http_header_limit, 16U * 1024U);
  EXPECT_EQ(defaults->http_max_header_fields, 100U);
  EXPECT_EQ(defaults->http_header_timeout, std::chrono::milliseconds(20000));
  EXPECT_EQ(defaults->http_body_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(defaults->http_idle_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(defaults->http_write_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(defaults->http_max_connections, 512U);
  EXPECT_EQ(defaults->http_max_connections_per_address, 0U);
  EXPECT_EQ(defaults->trusted_proxies, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(defaults->api_key_failure_limit, 10U);
  EXPECT_EQ(defaults->connect_limit, 30U);
  EXPECT_EQ(defaults->hook_limit, 100U);

  auto vars = Production();
  vars["AMOAUTH_HTTP_HEADER_TIMEOUT_MS"] = "500";
  vars["AMOAUTH_HTTP_MAX_CONNECTIONS"] = "0";
  vars["AMOAUTH_TRUSTED_PROXIES"] = " 10.0.0.0/8, 192.168.1.7 ,fd00::/8";
  vars["AMOAUTH_CONNECT_LIMIT"] = "0";
  auto set = LoadConfig(vars, false);
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ(set->http_header_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(set->http_max_connections, 0U);
  EXPECT_EQ(set->trusted_proxies,
            (std::vector<std::string>{"10.0.0.0/8", "192.168.1.7", "fd00::/8"}));
  EXPECT_EQ(set->connect_limit, 0U);
  vars["AMOAUTH_TRUSTED_PROXIES"] = "none";
  auto none = LoadConfig(vars, false);
  ASSERT_TRUE(none) << none.error();
  EXPECT_TRUE(none->trusted_proxies.empty());

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"AMOAUTH_HTTP_BODY_LIMIT", "10"},
           {"AMOAUTH_HTTP_HEADER_LIMIT", "2000000"},
           {"AMOAUTH_HTTP_MAX_HEADER_FIELDS", "0"},
           {"AMOAUTH_HTTP_HEADER_TIMEOUT_MS", "0"},
           {"AMOAUTH_HTTP_BODY_TIMEOUT_MS", "x"},
           {"AMOAUTH_HTTP_IDLE_TIMEOUT_MS", "-1"},
           {"AMOAUTH_HTTP_WRITE_TIMEOUT_MS", "99"},
           {"AMOAUTH_HTTP_MAX_CONNECTIONS", "1000001"},
           {"AMOAUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "many"},
           {"AMOAUTH_API_KEY_FAILURE_LIMIT", "-3"},
           {"AMOAUTH_CONNECT_LIMIT", "1.5"},
           {"AMOAUTH_HOOK_LIMIT", "lots"},
           {"AMOAUTH_TRUSTED_PROXIES", "10.0.0.0/33"},
           {"AMOAUTH_TRUSTED_PROXIES", "127.0.0.1,proxy.local"},
       }) {
    auto bad_vars = Production();
    bad_vars[name] = value;
    auto bad = LoadConfig(bad_vars, false);
    ASSERT_FALSE(bad) << name << "=" << value;
    EXPECT_THAT(bad.error(), HasSubstr(name)) << bad.error();
  }
}

}  // namespace
}  // namespace amoauth::app
