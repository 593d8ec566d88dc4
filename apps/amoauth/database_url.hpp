#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "checked.hpp"

namespace amoauth::app {

/// Which engine keeps amoauth's data (AMOAUTH_DATABASE_URL's scheme).
enum class DatabaseEngine { kSqlite, kPostgresql };

/// AMOAUTH_DATABASE_URL and AMOAUTH_DATABASE_POOL, parsed.
struct DatabaseConfig {
  DatabaseEngine engine = DatabaseEngine::kSqlite;
  std::string sqlite_path = "./data/amoauth.db";  ///< sqlite://PATH
  /// postgresql://… or postgres://… as given (a libpq URI). It may carry a password: print it only
  /// through RedactDatabaseUrl (Describe does).
  std::string postgres_url;
  std::size_t pool = 4;  ///< AMOAUTH_DATABASE_POOL: connections (and blocking threads), 1..64.

  /// "SQLite database ./data/amoauth.db" or "PostgreSQL database postgresql://u:***@h/db", for
  /// messages and logs.
  [[nodiscard]] std::string Describe() const;
};

/// Parses AMOAUTH_DATABASE_URL: sqlite://PATH, postgresql://… or postgres://…. Errors: one
/// sentence naming the variable; it never repeats a password.
[[nodiscard]] Checked<DatabaseConfig> ParseDatabaseUrl(std::string_view url);

/// `url` with its password replaced by *** — the userinfo's password (scheme://user:***@host) and
/// any password= query parameter — so it can be printed. Anything else is kept as is. The one
/// function every message and log naming a database URL goes through.
[[nodiscard]] std::string RedactDatabaseUrl(std::string_view url);

}  // namespace amoauth::app
