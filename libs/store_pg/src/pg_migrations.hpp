#pragma once

#include <string_view>

#include "amoauth/core/result.hpp"
#include "pg_connection.hpp"

namespace amoauth::store_pg::detail {

/// Brings the database to the newest schema of libs/store_schema (the PostgreSQL rendering).
/// Each script runs in its own transaction together with its schema_migrations row, under a
/// transaction-scoped advisory lock, so several instances starting at once apply each script
/// exactly once and a crash leaves a whole version. `applied_at` is the ISO-8601 time recorded.
/// Returns the version. Errors: Errc::kStoreFailure (logged), also when the database has a
/// version newer than this binary knows.
[[nodiscard]] Result<int> Migrate(Connection& conn, std::string_view applied_at);

}  // namespace amoauth::store_pg::detail
