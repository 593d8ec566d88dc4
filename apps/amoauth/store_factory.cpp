#include "store_factory.hpp"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "amoauth/store_sqlite/sqlite_store.hpp"
#if AMOAUTH_HAVE_STORE_PG
#include "amoauth/store_pg/pg_store.hpp"
#endif

namespace amoauth::app {
namespace {

Checked<std::unique_ptr<service::Store>> OpenSqlite(const Config& config,
                                                    const core::Clock& clock) {
  const DatabaseConfig& db = config.database;
  std::error_code fs_error;
  std::filesystem::create_directories(config.DataDir(), fs_error);
  if (fs_error) {
    return fmt::format("cannot create the directory {} of the {}: {}",
                       config.DataDir(),
                       db.Describe(),
                       fs_error.message());
  }
  auto store = store_sqlite::SqliteStore::Open({.path = db.sqlite_path,
                                                .threads = db.pool,
                                                .clock = &clock,
                                                .previous_key = config.previous_master_key},
                                               *config.master_key);
  if (!store) {
    return fmt::format("cannot open the {} (the reason is logged above)", db.Describe());
  }
  return std::unique_ptr<service::Store>(std::move(*store));
}

Checked<std::unique_ptr<service::Store>> OpenPostgres(const Config& config,
                                                      const core::Clock& clock) {
  const DatabaseConfig& db = config.database;
#if AMOAUTH_HAVE_STORE_PG
  auto store = store_pg::PgStore::Open({.url = db.postgres_url,
                                        .pool_size = db.pool,
                                        .clock = &clock,
                                        .previous_key = config.previous_master_key},
                                       *config.master_key);
  if (!store) {
    return fmt::format("cannot open the {} (the reason is logged above)", db.Describe());
  }
  return std::unique_ptr<service::Store>(std::move(*store));
#else
  (void)clock;
  return fmt::format(
      "cannot open the {}: this build has no PostgreSQL support (use a sqlite:// URL)",
      db.Describe());
#endif
}

}  // namespace

Checked<std::unique_ptr<service::Store>> OpenStore(const Config& config, const core::Clock& clock) {
  if (!config.master_key) {
    return std::string("no master key: set AMOAUTH_MASTER_KEY");
  }
  if (config.database.engine == DatabaseEngine::kPostgresql) {
    return OpenPostgres(config, clock);
  }
  return OpenSqlite(config, clock);
}

}  // namespace amoauth::app
