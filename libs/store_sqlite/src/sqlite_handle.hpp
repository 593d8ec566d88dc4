#pragma once

// RAII wrappers for sqlite3* and sqlite3_stmt*, private to libs/store_sqlite. Every failure is
// logged here (with sqlite3_errmsg, never with bound values) and returned as Errc::kStoreFailure.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>
#include <sqlite3.h>

#include "amoauth/core/result.hpp"

namespace amoauth::store_sqlite::detail {

/// One SQLite connection with the store's pragmas applied (WAL, synchronous=NORMAL,
/// foreign_keys=ON, busy_timeout=5000). Not thread-safe: the store binds each connection to one
/// thread of its pool. Movable, not copyable.
class Database final {
 public:
  /// Opens (creating if needed) `path` read-write and applies the pragmas.
  /// Errors: Errc::kStoreFailure (logged).
  [[nodiscard]] static Result<Database> Open(const std::string& path,
                                             std::shared_ptr<spdlog::logger> log);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() = default;

  [[nodiscard]] sqlite3* Get() const noexcept { return db_.get(); }
  [[nodiscard]] spdlog::logger& Log() const noexcept { return *log_; }

  /// Logs "`what`: <sqlite3_errmsg> (<code>)" at error level; returns Errc::kStoreFailure.
  [[nodiscard]] boost::system::error_code Failure(std::string_view what) const;

  /// Runs every statement in `sql`, which takes no parameters (pragmas, BEGIN/COMMIT, migration
  /// scripts), discarding any rows.
  [[nodiscard]] Result<void> Exec(std::string_view sql);

  /// Rows changed by the last INSERT/UPDATE/DELETE on this connection (sqlite3_changes64).
  [[nodiscard]] std::int64_t Changes() const noexcept;

  /// Prepared statements kept for reuse, by SQL text: parsing a statement costs more than running
  /// the point queries the API makes. Statement takes from here and gives back.
  [[nodiscard]] sqlite3_stmt* TakeCached(std::string_view sql) noexcept;
  /// Keeps `stmt` (reset, bindings cleared) for the next Prepare of `sql`; false if the cache of
  /// that text is full (then the caller finalizes it).
  bool Keep(std::string_view sql, sqlite3_stmt* stmt) noexcept;

 private:
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  Database(std::unique_ptr<sqlite3, Closer> db, std::shared_ptr<spdlog::logger> log);
  [[nodiscard]] Result<void> ApplyPragmas();

  struct StatementCache;
  struct StatementCacheDeleter {
    void operator()(StatementCache* cache) const noexcept;
  };

  std::unique_ptr<sqlite3, Closer> db_;
  std::shared_ptr<spdlog::logger> log_;
  /// Destroyed (statements finalized) before db_ closes.
  std::unique_ptr<StatementCache, StatementCacheDeleter> cache_;
};

/// A BLOB parameter (a TEXT parameter is a plain std::string_view).
struct Blob {
  std::string_view bytes;
};

/// A TEXT parameter that is NULL when `text` is nullopt (a time that is "never"). A distinct type:
/// an overload taking std::optional<std::string> would make every std::string argument ambiguous.
struct NullableText {
  std::optional<std::string> text;
};

/// One prepared statement. Parameters are bound by 1-based index; values are copied by SQLite
/// (SQLITE_TRANSIENT), so temporaries may be bound. Columns are 0-based.
class Statement final {
 public:
  [[nodiscard]] static Result<Statement> Prepare(Database& db, std::string_view sql);

  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  /// Gives the statement back to the database's cache (or finalizes it).
  ~Statement();

  [[nodiscard]] Result<void> Bind(int index, std::int64_t value);
  [[nodiscard]] Result<void> Bind(int index, std::string_view text);
  [[nodiscard]] Result<void> Bind(int index, Blob blob);
  /// NULL when `blob` is nullopt.
  [[nodiscard]] Result<void> Bind(int index, const std::optional<Blob>& blob);
  [[nodiscard]] Result<void> Bind(int index, const NullableText& text);

  /// Binds `values` to parameters 1, 2, … in order.
  template <class... Values>
  [[nodiscard]] Result<void> BindAll(const Values&... values) {
    int index = 0;
    Result<void> result;
    // Stops at the first failure: the fold short-circuits on &&.
    static_cast<void>((((result = Bind(++index, values)).has_value()) && ...));
    return result;
  }

  /// true: a row is ready to read; false: the statement has finished.
  [[nodiscard]] Result<bool> Step();
  /// Steps until the statement finishes; a row is an error (for statements that return none).
  /// After a Step() that returned a row, completes the statement (and its autocommit
  /// transaction). After a Step() that reached the end, does nothing: stepping a finished
  /// statement again would run it anew (SQLite resets it), e.g. take a lease a second time.
  [[nodiscard]] Result<void> Run();
  /// Makes a finished statement ready to step again, so that one statement can insert many rows;
  /// bindings are kept until rebound.
  [[nodiscard]] Result<void> Reset();

  [[nodiscard]] std::int64_t Int(int column) const noexcept;
  [[nodiscard]] std::string Text(int column) const;
  [[nodiscard]] std::string BlobAt(int column) const;
  [[nodiscard]] bool IsNull(int column) const noexcept;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  Statement(Database& db, std::unique_ptr<sqlite3_stmt, Finalizer> stmt, std::string_view sql);
  [[nodiscard]] Result<void> CheckBind(int rc, int index) const;

  Database* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string sql_;
  bool finished_ = false;  // the last step returned SQLITE_DONE; cleared by Reset()
};

/// BEGIN IMMEDIATE … COMMIT: takes the write lock up front (waiting up to busy_timeout), so a
/// write transaction never fails half-way with SQLITE_BUSY. Rolls back unless committed.
class Transaction final {
 public:
  explicit Transaction(Database& db) : db_(&db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] Result<void> Begin();
  [[nodiscard]] Result<void> Commit();

 private:
  Database* db_;
  bool open_ = false;
};

}  // namespace amoauth::store_sqlite::detail
