#include "pg_migrations.hpp"

#include <string>
#include <vector>

#include "amoauth/store_schema/migrations.hpp"

namespace amoauth::store_pg::detail {

namespace {

/// The advisory lock key every amoauth instance takes while migrating ("amoauth" in ASCII, so
/// that it is recognisable in pg_locks and unlikely to collide with another application's).
constexpr std::string_view kMigrationLockSql = "SELECT pg_advisory_xact_lock(418464495976)";

/// Applies script `version` unless another instance got there first; returns the version after.
/// Errors also when the database is newer than `latest`.
Result<int> Apply(Connection& conn,
                  const std::vector<std::string>& scripts,
                  int version,
                  std::string_view applied_at) {
  const int latest = static_cast<int>(scripts.size());
  Transaction tx(conn);
  if (auto begun = tx.Begin(); !begun) {
    return begun.error();
  }
  // Serialises migrating instances: CREATE TABLE IF NOT EXISTS alone races in PostgreSQL.
  if (auto locked = conn.Exec("lock for migration", kMigrationLockSql); !locked) {
    return locked.error();
  }
  if (auto created = conn.Script("create schema_migrations", store_schema::SchemaMigrationsTable());
      !created) {
    return created.error();
  }
  auto current =
      conn.Exec("read schema version", "SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!current) {
    return current.error();
  }
  const int at = static_cast<int>(current->Int(0, 0));
  if (at > latest) {
    conn.Log().error(
        "database schema version {} is newer than this build supports ({}); refusing to use it",
        at,
        latest);
    return Fail(Errc::kStoreFailure);
  }
  if (at >= version) {
    return at;  // nothing to do: the transaction rolls back harmlessly
  }
  if (auto done = conn.Script("schema migration", scripts[static_cast<std::size_t>(version - 1)]);
      !done) {
    conn.Log().error("schema migration {} failed", version);
    return done.error();
  }
  Params record;
  record.Int(version).Text(applied_at);
  if (auto inserted = conn.Exec("record schema migration",
                                "INSERT INTO schema_migrations (version, applied_at) "
                                "VALUES ($1, $2)",
                                record);
      !inserted) {
    return inserted.error();
  }
  if (auto committed = tx.Commit(); !committed) {
    return committed.error();
  }
  conn.Log().info("database schema migrated to version {}", version);
  return version;
}

}  // namespace

Result<int> Migrate(Connection& conn, std::string_view applied_at) {
  const std::vector<std::string> scripts =
      store_schema::Migrations(store_schema::Dialect::kPostgres);
  const int latest = static_cast<int>(scripts.size());
  // Each pass applies the next script, or learns the version another instance reached (always
  // ahead). The first pass also creates schema_migrations and refuses a newer schema.
  int version = 0;
  while (version < latest) {
    auto applied = Apply(conn, scripts, version + 1, applied_at);
    if (!applied) {
      return applied.error();
    }
    version = *applied;
  }
  return version;
}

}  // namespace amoauth::store_pg::detail
