#include "database_url.hpp"

#include <fmt/format.h>

namespace amoauth::app {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kRedacted = "***";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

/// Replaces the value of every `password=` parameter of the query part starting at `from`.
void RedactQueryPasswords(std::string& url, std::size_t from) {
  constexpr std::string_view kName = "password=";
  std::size_t pos = from;
  while (pos < url.size()) {
    const std::size_t end = url.find_first_of("&#", pos);
    const std::size_t param_end = end == std::string::npos ? url.size() : end;
    if (std::string_view(url).substr(pos, param_end - pos).substr(0, kName.size()) == kName) {
      const std::size_t value = pos + kName.size();
      url.replace(value, param_end - value, kRedacted);
    }
    const std::size_t next = url.find_first_of("&#", pos);
    if (next == std::string::npos || url[next] == '#') {
      return;
    }
    pos = next + 1;
  }
}

}  // namespace

std::string RedactDatabaseUrl(std::string_view url) {
  std::string out(url);
  const std::size_t scheme_end = out.find("://");
  const std::size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  // The authority ends at the path, the query or the fragment; its userinfo before the last '@'.
  const std::size_t authority_end = out.find_first_of("/?#", authority);
  const std::size_t at =
      out.rfind('@', authority_end == std::string::npos ? out.size() - 1 : authority_end - 1);
  if (scheme_end != std::string::npos && at != std::string::npos && at >= authority) {
    const std::size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, kRedacted);
    }
  }
  const std::size_t query = out.find('?');
  if (query != std::string::npos) {
    RedactQueryPasswords(out, query + 1);
  }
  return out;
}

std::string DatabaseConfig::Describe() const {
  if (engine == DatabaseEngine::kSqlite) {
    return fmt::format("SQLite database {}", sqlite_path);
  }
  return fmt::format("PostgreSQL database {}", RedactDatabaseUrl(postgres_url));
}

Checked<DatabaseConfig> ParseDatabaseUrl(std::string_view url) {
  DatabaseConfig database;
  if (StartsWith(url, kSqliteScheme)) {
    if (url.size() == kSqliteScheme.size()) {
      return std::string(
          "AMOAUTH_DATABASE_URL sqlite:// needs a file path, e.g. sqlite://./data/amoauth.db.");
    }
    database.sqlite_path = std::string(url.substr(kSqliteScheme.size()));
    return database;
  }
  if (StartsWith(url, "postgresql://") || StartsWith(url, "postgres://")) {
    database.engine = DatabaseEngine::kPostgresql;
    database.sqlite_path.clear();
    database.postgres_url = std::string(url);
    return database;
  }
  // Only the scheme is echoed: the rest of a database URL may carry a password.
  const auto scheme_end = url.find("://");
  return fmt::format(
      "AMOAUTH_DATABASE_URL must be sqlite://PATH (e.g. sqlite://./data/amoauth.db) or a "
      "PostgreSQL URL postgresql://USER:PASSWORD@HOST:PORT/DATABASE (got {}).",
      scheme_end == std::string_view::npos
          ? std::string("something that is not a URL")
          : fmt::format("a \"{}\" URL", url.substr(0, scheme_end)));
}

}  // namespace amoauth::app
