#pragma once

#include <span>
#include <string_view>

#include "amoauth/core/result.hpp"
#include "sqlite_handle.hpp"

namespace amoauth::store_sqlite::detail {

/// The schema, as an ordered list of SQL scripts: script i brings the database to version i + 1.
/// Append only; never edit a script that has been released.
[[nodiscard]] std::span<const std::string_view> Migrations();

/// Applies every script the database has not seen, each in its own BEGIN IMMEDIATE transaction
/// together with its schema_migrations row, so that a crash or a second process migrating at the
/// same time leaves the schema at some whole version. `applied_at` is the ISO-8601 time recorded.
/// Returns the resulting version. Errors: Errc::kStoreFailure (logged), also when the database
/// has a version newer than this binary knows.
[[nodiscard]] Result<int> Migrate(Database& db, std::string_view applied_at);

}  // namespace amoauth::store_sqlite::detail
