#include "migrations.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "amoauth/store_schema/migrations.hpp"

namespace amoauth::store_sqlite::detail {

namespace {

// The scripts themselves live in libs/store_schema, shared with PostgreSQL.
const std::vector<std::string_view>& Scripts() {
  static const std::vector<std::string> rendered =
      store_schema::Migrations(store_schema::Dialect::kSqlite);
  static const std::vector<std::string_view> views(rendered.begin(), rendered.end());
  return views;
}

Result<int> CurrentVersion(Database& db) {
  auto stmt = Statement::Prepare(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!stmt) {
    return stmt.error();
  }
  auto row = stmt->Step();
  if (!row) {
    return row.error();
  }
  return static_cast<int>(stmt->Int(0));
}

// Applies script `version` unless another process got there first. Returns the version after.
Result<int> Apply(Database& db, int version, std::string_view applied_at) {
  Transaction tx(db);
  if (auto begun = tx.Begin(); !begun) {
    return begun.error();
  }
  auto current = CurrentVersion(db);
  if (!current) {
    return current.error();
  }
  if (*current >= version) {
    return *current;  // nothing to do; the transaction rolls back harmlessly
  }
  if (auto done = db.Exec(Scripts()[static_cast<std::size_t>(version - 1)]); !done) {
    db.Log().error("schema migration {} failed", version);
    return done.error();
  }
  auto record =
      Statement::Prepare(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
  if (!record) {
    return record.error();
  }
  if (auto bound = record->BindAll(std::int64_t{version}, applied_at); !bound) {
    return bound.error();
  }
  if (auto inserted = record->Run(); !inserted) {
    return inserted.error();
  }
  if (auto committed = tx.Commit(); !committed) {
    return committed.error();
  }
  db.Log().info("database schema migrated to version {}", version);
  return version;
}

}  // namespace

std::span<const std::string_view> Migrations() {
  return Scripts();
}

Result<int> Migrate(Database& db, std::string_view applied_at) {
  if (auto created = db.Exec(store_schema::SchemaMigrationsTable()); !created) {
    return created.error();
  }
  auto current = CurrentVersion(db);
  if (!current) {
    return current.error();
  }
  const int latest = static_cast<int>(Scripts().size());
  if (*current > latest) {
    db.Log().error(
        "database schema version {} is newer than this build supports ({}); refusing to use it",
        *current,
        latest);
    return Fail(Errc::kStoreFailure);
  }
  int version = *current;
  while (version < latest) {
    auto applied = Apply(db, version + 1, applied_at);
    if (!applied) {
      return applied.error();
    }
    version = *applied;  // may jump ahead if another process migrated meanwhile
  }
  if (version > latest) {
    db.Log().error(
        "database schema version {} is newer than this build supports ({})", version, latest);
    return Fail(Errc::kStoreFailure);
  }
  return version;
}

}  // namespace amoauth::store_sqlite::detail
