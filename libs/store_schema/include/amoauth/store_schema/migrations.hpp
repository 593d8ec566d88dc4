#pragma once

#include <string>
#include <vector>

/// The schema of every engine, written once (docs/storage.md, "One schema, two dialects").
namespace amoauth::store_schema {

enum class Dialect { kSqlite, kPostgres };

/// The ordered migration scripts for `dialect`: script i brings a database to version i + 1.
/// Rendered from one template per version; the few dialect differences are named substitutions
/// (docs/storage.md lists them). Append only; never edit a script that has been released: the
/// SQLite rendering of versions 1–4 is byte for byte what earlier builds ran.
[[nodiscard]] std::vector<std::string> Migrations(Dialect dialect);

/// The bookkeeping table every runner creates first (same text in both dialects).
[[nodiscard]] std::string SchemaMigrationsTable();

}  // namespace amoauth::store_schema
