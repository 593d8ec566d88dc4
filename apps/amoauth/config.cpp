#include "config.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "amoauth/core/web_origin.hpp"
#include "amoauth/web/client_addresses.hpp"

extern char** environ;  // NOLINT: POSIX

namespace amoauth::app {
namespace {

using Error = std::string;

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

std::optional<std::string> Get(const Variables& vars, const std::string& name) {
  auto it = vars.find(name);
  if (it == vars.end() || it->second.empty()) {
    return std::nullopt;
  }
  return it->second;
}

template <class Int>
std::optional<Int> ParseInt(std::string_view text) {
  Int value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

Checked<long long> ReadRange(const Variables& vars,
                             const std::string& name,
                             long long fallback,
                             long long min,
                             long long max) {
  auto raw = Get(vars, name);
  if (!raw) {
    return fallback;
  }
  auto value = ParseInt<long long>(*raw);
  if (!value || *value < min || *value > max) {
    return fmt::format(
        "{} must be a whole number from {} to {} (got \"{}\").", name, min, max, *raw);
  }
  return *value;
}

bool IsAbsoluteHttpUrl(std::string_view text) {
  auto url = boost::urls::parse_absolute_uri(text);
  return url && (url->scheme() == "http" || url->scheme() == "https") && !url->host().empty();
}

/// AMOAUTH_BUTTON_* → the /connect page's button options, checked as the page will use them.
Checked<core::ButtonOptionPairs> ReadConnectButton(const Variables& vars, const Config& c) {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"AMOAUTH_BUTTON_VARIANT", "variant"},
      {"AMOAUTH_BUTTON_TITLE", "title"},
      {"AMOAUTH_BUTTON_COMPACT", "compact"},
      {"AMOAUTH_BUTTON_CLASS_NAME", "class_name"},
      {"AMOAUTH_BUTTON_COLOR", "color"},
      {"AMOAUTH_BUTTON_THEME", "theme"},
      {"AMOAUTH_BUTTON_LOCALE", "locale"},
      {"AMOAUTH_BUTTON_MODE", "mode"},
      {"AMOAUTH_BUTTON_NAME", "name"},
      {"AMOAUTH_BUTTON_DESCRIPTION", "description"},
      {"AMOAUTH_BUTTON_LOGO", "logo"},
      {"AMOAUTH_BUTTON_SCOPES", "scopes"},
  };
  core::ButtonOptionPairs options;
  for (const auto& [variable, option] : kNames) {
    if (auto v = Get(vars, variable)) {
      options.emplace_back(option, *v);
    }
  }
  // As WebApp will make it; sandbox mode replaces the Redirect URI with a loopback one later.
  const core::ButtonContext context{
      .platform = c.platform,
      .script_url = c.button_script_url,
      .client_id = c.client_id,
      .redirect_uri = c.redirect_uri.empty() ? std::string("http://127.0.0.1/") : c.redirect_uri,
      .secrets_path = c.secrets_path,
  };
  core::SiteButton button;
  auto refused = core::MakeSiteButton(context, options, button);
  if (refused) {
    auto it = std::find_if(kNames.begin(), kNames.end(), [&](const auto& name) {
      return name.second == refused->field;
    });
    const std::string variable = it != kNames.end() ? it->first : std::string("AMO_REDIRECT_URI");
    return fmt::format("{}: {}", variable, refused->message);
  }
  return options;
}

/// AMOAUTH_HTTP_* (the server's limits), AMOAUTH_TRUSTED_PROXIES and the per-client limits.
Checked<void> ReadLimits(const Variables& vars, Config& c) {
  struct Range {
    const char* name;
    long long fallback;
    long long min;
    long long max;
  };
  auto read = [&vars](const Range& r) { return ReadRange(vars, r.name, r.fallback, r.min, r.max); };
  auto body = read({"AMOAUTH_HTTP_BODY_LIMIT", 1024 * 1024, 1024, 64 * 1024 * 1024});
  auto header = read({"AMOAUTH_HTTP_HEADER_LIMIT", 16 * 1024, 1024, 1024 * 1024});
  auto fields = read({"AMOAUTH_HTTP_MAX_HEADER_FIELDS", 100, 8, 10000});
  auto header_timeout = read({"AMOAUTH_HTTP_HEADER_TIMEOUT_MS", 20000, 100, 600000});
  auto body_timeout = read({"AMOAUTH_HTTP_BODY_TIMEOUT_MS", 30000, 100, 600000});
  auto idle_timeout = read({"AMOAUTH_HTTP_IDLE_TIMEOUT_MS", 30000, 100, 3600000});
  auto write_timeout = read({"AMOAUTH_HTTP_WRITE_TIMEOUT_MS", 30000, 100, 600000});
  auto connections = read({"AMOAUTH_HTTP_MAX_CONNECTIONS", 512, 0, 1000000});
  auto per_address = read({"AMOAUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS", 0, 0, 1000000});
  auto api_key_failures = read({"AMOAUTH_API_KEY_FAILURE_LIMIT", 10, 0, 100000});
  auto connects = read({"AMOAUTH_CONNECT_LIMIT", 30, 0, 1000000});
  auto hooks = read({"AMOAUTH_HOOK_LIMIT", 100, 0, 1000000});
  for (const auto* value : {&body,
                            &header,
                            &fields,
                            &header_timeout,
                            &body_timeout,
                            &idle_timeout,
                            &write_timeout,
                            &connections,
                            &per_address,
                            &api_key_failures,
                            &connects,
                            &hooks}) {
    if (!*value) {
      return value->error();
    }
  }
  c.http_body_limit = static_cast<std::size_t>(*body);
  c.http_header_limit = static_cast<std::uint32_t>(*header);
  c.http_max_header_fields = static_cast<std::size_t>(*fields);
  c.http_header_timeout = std::chrono::milliseconds(*header_timeout);
  c.http_body_timeout = std::chrono::milliseconds(*body_timeout);
  c.http_idle_timeout = std::chrono::milliseconds(*idle_timeout);
  c.http_write_timeout = std::chrono::milliseconds(*write_timeout);
  c.http_max_connections = static_cast<std::size_t>(*connections);
  c.http_max_connections_per_address = static_cast<std::size_t>(*per_address);
  c.api_key_failure_limit = static_cast<std::size_t>(*api_key_failures);
  c.connect_limit = static_cast<std::size_t>(*connects);
  c.hook_limit = static_cast<std::size_t>(*hooks);

  if (auto v = Get(vars, "AMOAUTH_TRUSTED_PROXIES")) {
    c.trusted_proxies.clear();
    if (Trim(*v) != "none") {
      std::string_view rest = *v;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string entry = Trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (!entry.empty()) {
          c.trusted_proxies.push_back(std::move(entry));
        }
      }
    }
  }
  std::string bad;
  if (!web::ClientAddresses::Parse(c.trusted_proxies, &bad)) {
    return fmt::format(
        "AMOAUTH_TRUSTED_PROXIES: \"{}\" is not an IP address or a network like 10.0.0.0/8 "
        "(or write none).",
        bad);
  }
  return {};
}

}  // namespace

std::string Config::DataDir() const {
  if (database.engine != DatabaseEngine::kSqlite) {
    return "./data";
  }
  auto parent = std::filesystem::path(database.sqlite_path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

Checked<Variables> ReadEnvFile(const std::string& path) {
  Variables vars;
  std::ifstream in(path);
  if (!in) {
    return vars;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string text = Trim(line);
    if (text.empty() || text.front() == '#') {
      continue;
    }
    if (text.rfind("export ", 0) == 0) {
      text = Trim(text.substr(7));
    }
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fmt::format("{} line {}: expected KEY=VALUE.", path, number);
    }
    std::string key = Trim(text.substr(0, eq));
    std::string value = Trim(text.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    vars[key] = value;
  }
  return vars;
}

Variables ReadProcessEnvironment() {
  Variables vars;
  for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
    std::string_view entry(*env);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos || entry.rfind("AMO", 0) != 0) {
      continue;
    }
    vars[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  return vars;
}

Checked<Config> LoadConfig(const Variables& vars, bool sandbox) {
  Config c;

  if (auto v = Get(vars, "AMOAUTH_PLATFORM")) {
    auto p = core::ParsePlatform(*v);
    if (!p) {
      return fmt::format("AMOAUTH_PLATFORM must be \"amocrm\" or \"kommo\" (got \"{}\").", *v);
    }
    c.platform = *p;
  }

  c.client_id = Get(vars, "AMO_CLIENT_ID").value_or("");
  c.client_secret = Secret(Get(vars, "AMO_CLIENT_SECRET").value_or(""));
  c.redirect_uri = Get(vars, "AMO_REDIRECT_URI").value_or("");
  if (!sandbox) {
    if (c.client_id.empty()) {
      return Error("AMO_CLIENT_ID is not set: copy the integration ID from its \"Keys\" tab.");
    }
    if (c.client_secret.Empty()) {
      return Error(
          "AMO_CLIENT_SECRET is not set: copy the secret key from the integration's "
          "\"Keys\" tab.");
    }
    if (c.redirect_uri.empty()) {
      return Error("AMO_REDIRECT_URI is not set: it must equal the integration's Redirect URI.");
    }
  }
  if (!c.redirect_uri.empty() && !IsAbsoluteHttpUrl(c.redirect_uri)) {
    return fmt::format("AMO_REDIRECT_URI must be an absolute http(s) URL (got \"{}\").",
                       c.redirect_uri);
  }

  if (auto v = Get(vars, "AMOAUTH_LISTEN")) {
    const auto colon = v->rfind(':');
    auto port = colon == std::string::npos
                    ? std::nullopt
                    : ParseInt<std::uint16_t>(std::string_view(*v).substr(colon + 1));
    if (colon == std::string::npos || colon == 0 || !port) {
      return fmt::format("AMOAUTH_LISTEN must be HOST:PORT, e.g. 127.0.0.1:8080 (got \"{}\").", *v);
    }
    c.listen_host = v->substr(0, colon);
    c.listen_port = *port;
  }

  if (auto v = Get(vars, "AMOAUTH_CALLBACK_PATH")) {
    if (v->front() != '/' || v->find_first_of("?# ") != std::string::npos) {
      return fmt::format("AMOAUTH_CALLBACK_PATH must be a path starting with / (got \"{}\").", *v);
    }
    c.callback_path = *v;
  }

  if (auto v = Get(vars, "AMOAUTH_DISCONNECT_PATH")) {
    if (v->front() != '/' || v->find_first_of("?# ") != std::string::npos) {
      return fmt::format("AMOAUTH_DISCONNECT_PATH must be a path starting with / (got \"{}\").",
                         *v);
    }
    if (*v == c.callback_path) {
      return Error("AMOAUTH_DISCONNECT_PATH must differ from AMOAUTH_CALLBACK_PATH.");
    }
    c.disconnect_path = *v;
  }

  c.api_key = Secret(Get(vars, "AMOAUTH_API_KEY").value_or(""));
  if (!sandbox && c.api_key.Reveal().size() < 16) {
    return Error(
        "AMOAUTH_API_KEY must be set to at least 16 characters: the internal API is "
        "closed without it (e.g. openssl rand -hex 24).");
  }

  auto threads = ReadRange(vars, "AMOAUTH_THREADS", 2, 1, 64);
  if (!threads) {
    return threads.error();
  }
  c.threads = static_cast<int>(*threads);
  auto grace = ReadRange(vars, "AMOAUTH_SHUTDOWN_GRACE_MS", 15000, 0, 600000);
  if (!grace) {
    return grace.error();
  }
  c.shutdown_grace = std::chrono::milliseconds(*grace);

  if (auto v = Get(vars, "AMOAUTH_DATABASE_URL")) {
    auto database = ParseDatabaseUrl(*v);
    if (!database) {
      return database.error();
    }
    c.database = std::move(*database);
  }
  auto pool = ReadRange(vars, "AMOAUTH_DATABASE_POOL", 4, 1, 64);
  if (!pool) {
    return pool.error();
  }
  c.database.pool = static_cast<std::size_t>(*pool);

  if (auto v = Get(vars, "AMOAUTH_MASTER_KEY")) {
    c.master_key = crypto::MasterKey::FromBase64(*v);
    if (!c.master_key) {
      return Error(
          "AMOAUTH_MASTER_KEY must be base64 of exactly 32 bytes "
          "(e.g. openssl rand -base64 32).");
    }
  } else if (!sandbox) {
    return Error(
        "AMOAUTH_MASTER_KEY is not set: tokens are encrypted at rest with it "
        "(generate one with openssl rand -base64 32 and keep it safe).");
  }
  if (auto v = Get(vars, "AMOAUTH_MASTER_KEY_PREVIOUS"); v && !v->empty()) {
    c.previous_master_key = crypto::MasterKey::FromBase64(*v);
    if (!c.previous_master_key) {
      return Error("AMOAUTH_MASTER_KEY_PREVIOUS must be base64 of exactly 32 bytes.");
    }
    if (c.master_key && c.master_key->Id() == c.previous_master_key->Id()) {
      return Error(
          "AMOAUTH_MASTER_KEY_PREVIOUS is the same key as AMOAUTH_MASTER_KEY: set "
          "AMOAUTH_MASTER_KEY to the new key and AMOAUTH_MASTER_KEY_PREVIOUS to the old one.");
    }
  }

  if (auto v = Get(vars, "AMOAUTH_ALLOWED_DOMAINS")) {
    c.allowed_domains.clear();
    std::string_view rest = *v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string domain = Trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (domain.empty()) {
        continue;
      }
      if (domain.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos ||
          domain.find('.') == std::string::npos || domain.front() == '.' || domain.back() == '.') {
        return fmt::format(
            "AMOAUTH_ALLOWED_DOMAINS: \"{}\" is not a lower-case domain like "
            "amocrm.ru.",
            domain);
      }
      c.allowed_domains.push_back(std::move(domain));
    }
    if (c.allowed_domains.empty()) {
      return Error("AMOAUTH_ALLOWED_DOMAINS is empty: no amoCRM host would be accepted.");
    }
  }

  c.amo_connect_to = Get(vars, "AMOAUTH_AMO_CONNECT_TO").value_or("");
  if (!c.amo_connect_to.empty()) {
    const auto colon = c.amo_connect_to.rfind(':');
    if (colon == std::string::npos || colon == 0 ||
        !ParseInt<std::uint16_t>(std::string_view(c.amo_connect_to).substr(colon + 1))) {
      return fmt::format("AMOAUTH_AMO_CONNECT_TO must be HOST:PORT (got \"{}\").",
                         c.amo_connect_to);
    }
  }
  c.amo_ca_file = Get(vars, "AMOAUTH_AMO_CA_FILE").value_or("");
  if (!c.amo_ca_file.empty() && !std::filesystem::is_regular_file(c.amo_ca_file)) {
    return fmt::format("AMOAUTH_AMO_CA_FILE: no such file \"{}\".", c.amo_ca_file);
  }

  c.consent_url =
      Get(vars, "AMOAUTH_CONSENT_URL").value_or(std::string(core::DefaultConsentUrl(c.platform)));
  if (!IsAbsoluteHttpUrl(c.consent_url)) {
    return fmt::format("AMOAUTH_CONSENT_URL must be an absolute http(s) URL (got \"{}\").",
                       c.consent_url);
  }
  c.button_script_url = Get(vars, "AMOAUTH_BUTTON_SCRIPT_URL")
                            .value_or(std::string(core::DefaultButtonScriptUrl(c.platform)));
  if (!IsAbsoluteHttpUrl(c.button_script_url)) {
    return fmt::format("AMOAUTH_BUTTON_SCRIPT_URL must be an absolute http(s) URL (got \"{}\").",
                       c.button_script_url);
  }

  auto margin = ReadRange(vars, "AMOAUTH_REFRESH_MARGIN", 300, 0, 43200);
  if (!margin) {
    return margin.error();
  }
  c.refresh_margin = std::chrono::seconds(*margin);
  auto ahead = ReadRange(vars, "AMOAUTH_REFRESH_AHEAD", 3600, 0, 43200);
  if (!ahead) {
    return ahead.error();
  }
  c.refresh_ahead = std::chrono::seconds(*ahead);
  // amoCRM's refresh tokens die after three months unused; 60 days leaves a month of slack for
  // outages.
  auto keepalive = ReadRange(vars, "AMOAUTH_KEEPALIVE", 7 * 86400, 3600, 60 * 86400);
  if (!keepalive) {
    return keepalive.error();
  }
  c.keepalive = std::chrono::seconds(*keepalive);
  auto interval = ReadRange(vars, "AMOAUTH_SCHEDULER_INTERVAL_MS", 1000, 50, 600000);
  if (!interval) {
    return interval.error();
  }
  c.scheduler_interval = std::chrono::milliseconds(*interval);

  auto rps = ReadRange(vars, "AMOAUTH_RATE_LIMIT_RPS", 7, 0, 1000);
  if (!rps) {
    return rps.error();
  }
  c.rate_limit_rps = static_cast<int>(*rps);
  auto max_wait = ReadRange(vars, "AMOAUTH_RATE_LIMIT_MAX_WAIT_MS", 10000, 0, 120000);
  if (!max_wait) {
    return max_wait.error();
  }
  c.rate_limit_max_wait = std::chrono::milliseconds(*max_wait);
  auto cooloff = ReadRange(vars, "AMOAUTH_BLOCK_COOLOFF", 900, 1, 86400);
  if (!cooloff) {
    return cooloff.error();
  }
  c.block_cooloff = std::chrono::seconds(*cooloff);
  auto cache_entries = ReadRange(vars, "AMOAUTH_TOKEN_CACHE_ENTRIES", 100000, 0, 10000000);
  if (!cache_entries) {
    return cache_entries.error();
  }
  c.token_cache_entries = static_cast<std::size_t>(*cache_entries);

  auto metrics_public = ReadRange(vars, "AMOAUTH_METRICS_PUBLIC", 0, 0, 1);
  if (!metrics_public) {
    return metrics_public.error();
  }
  c.metrics_public = *metrics_public == 1;

  c.webhook_url = Get(vars, "AMOAUTH_WEBHOOK_URL").value_or("");
  if (!c.webhook_url.empty()) {
    if (!IsAbsoluteHttpUrl(c.webhook_url)) {
      // The URL may hold a secret token in its path or query: do not echo it.
      return Error("AMOAUTH_WEBHOOK_URL must be an absolute http(s) URL.");
    }
    c.webhook_secret = Secret(Get(vars, "AMOAUTH_WEBHOOK_SECRET").value_or(""));
    if (c.webhook_secret.Reveal().size() < 16) {
      return Error(
          "AMOAUTH_WEBHOOK_SECRET must be set to at least 16 characters when AMOAUTH_WEBHOOK_URL "
          "is: webhooks are signed with it (generate one with openssl rand -hex 32).");
    }
  }
  auto secrets_wait = ReadRange(vars, "AMOAUTH_SECRETS_WAIT_MS", 10000, 0, 60000);
  if (!secrets_wait) {
    return secrets_wait.error();
  }
  c.secrets_wait = std::chrono::milliseconds(*secrets_wait);

  auto webhook_timeout = ReadRange(vars, "AMOAUTH_WEBHOOK_TIMEOUT_MS", 10000, 100, 60000);
  if (!webhook_timeout) {
    return webhook_timeout.error();
  }
  c.webhook_timeout = std::chrono::milliseconds(*webhook_timeout);
  auto timeout = ReadRange(vars, "AMOAUTH_AMO_TIMEOUT_MS", 15000, 100, 120000);
  if (!timeout) {
    return timeout.error();
  }
  c.amo_timeout = std::chrono::milliseconds(*timeout);

  if (auto v = Get(vars, "AMOAUTH_LOG_LEVEL")) {
    static const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
    if (std::find(kLevels.begin(), kLevels.end(), *v) == kLevels.end()) {
      return fmt::format(
          "AMOAUTH_LOG_LEVEL must be one of trace, debug, info, warn, error (got \"{}\").", *v);
    }
    c.log_level = *v;
  }
  if (auto v = Get(vars, "AMOAUTH_LOG_FORMAT")) {
    if (*v != "text" && *v != "json") {
      return fmt::format("AMOAUTH_LOG_FORMAT must be text or json (got \"{}\").", *v);
    }
    c.log_format = *v;
  }

  if (auto v = Get(vars, "AMOAUTH_SECRETS_PATH")) {
    if (v->front() != '/' || v->find_first_of("?# ") != std::string::npos) {
      return fmt::format("AMOAUTH_SECRETS_PATH must be a path starting with / (got \"{}\").", *v);
    }
    if (*v == c.callback_path || *v == c.disconnect_path) {
      return Error(
          "AMOAUTH_SECRETS_PATH must differ from AMOAUTH_CALLBACK_PATH and "
          "AMOAUTH_DISCONNECT_PATH.");
    }
    c.secrets_path = *v;
  }
  if (auto v = Get(vars, "AMOAUTH_POST_MESSAGE_ORIGIN")) {
    // An exact origin: postMessage delivers nothing when it differs from the opener's, and "*"
    // would hand the result to any page that opened the window.
    if (core::WebOrigin(*v) != *v) {
      return fmt::format(
          "AMOAUTH_POST_MESSAGE_ORIGIN must be an origin: scheme://host[:port], lower case, no "
          "path or trailing slash, e.g. https://your.site (got \"{}\").",
          *v);
    }
    c.post_message_origin = *v;
  }
  auto connect_button = ReadConnectButton(vars, c);
  if (!connect_button) {
    return connect_button.error();
  }
  c.connect_button = std::move(*connect_button);
  if (auto limits = ReadLimits(vars, c); !limits) {
    return limits.error();
  }
  return c;
}

}  // namespace amoauth::app
