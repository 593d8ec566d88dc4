#include "sqlite_handle.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "amoauth/store_schema/stored_format.hpp"

namespace amoauth::store_sqlite::detail {

namespace {

// SQLITE_TRANSIENT spelled without the C cast in its macro: SQLite copies the bound value.
sqlite3_destructor_type Transient() noexcept {
  return reinterpret_cast<sqlite3_destructor_type>(static_cast<std::intptr_t>(-1));
}

// A new database file gets mode 0600 (SQLite would use 0644 minus umask); SQLite gives the -wal
// and -shm files the same mode as the database. Tokens are encrypted anyway: defence in depth.
void CreateOwnerOnly(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  }
  // Any failure (exists already, missing directory) is left for sqlite3_open_v2 to report.
}

}  // namespace

// ---- Database ---------------------------------------------------------------------------------

void Database::Closer::operator()(sqlite3* db) const noexcept {
  // Statements are finalized before their connection (they never outlive a store method).
  sqlite3_close_v2(db);
}

Result<Database> Database::Open(const std::string& path, std::shared_ptr<spdlog::logger> log) {
  CreateOwnerOnly(path);
  sqlite3* raw = nullptr;
  // NOMUTEX: multi-thread mode; the store never uses one connection from two threads at once.
  const int rc = sqlite3_open_v2(path.c_str(),
                                 &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  std::unique_ptr<sqlite3, Closer> owned(raw);  // sqlite3_open_v2 may return a handle on failure
  if (rc != SQLITE_OK) {
    log->error("cannot open database {}: {} ({})",
               path,
               owned ? sqlite3_errmsg(owned.get()) : sqlite3_errstr(rc),
               rc);
    return Fail(Errc::kStoreFailure);
  }
  sqlite3_extended_result_codes(owned.get(), 1);
  Database db(std::move(owned), std::move(log));
  if (auto applied = db.ApplyPragmas(); !applied) {
    return applied.error();
  }
  return db;
}

Result<void> Database::ApplyPragmas() {
  // busy_timeout first, so that switching to WAL waits for other processes instead of failing.
  if (auto r = Exec("PRAGMA busy_timeout = 5000"); !r) {
    return r;
  }
  // Switching a new database to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at
  // once, without the busy handler, when two processes set up the same new file together (their
  // locks would deadlock). Start-up only: retry for a bounded while.
  std::optional<Statement> mode;
  Result<bool> row = false;
  for (int attempt = 0;; ++attempt) {
    auto prepared = Statement::Prepare(*this, "PRAGMA journal_mode = WAL");
    if (prepared) {
      mode.emplace(std::move(*prepared));
      row = mode->Step();
      if (row) {
        break;
      }
    }
    const int code = sqlite3_errcode(db_.get());
    if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt >= 250) {
      return prepared ? row.error() : prepared.error();
    }
    mode.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!*row || mode->Text(0) != "wal") {
    log_->error("database {} refused journal_mode=WAL (got '{}')",
                sqlite3_db_filename(db_.get(), "main"),
                *row ? mode->Text(0) : std::string());
    return Fail(Errc::kStoreFailure);
  }
  return Exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
}

boost::system::error_code Database::Failure(std::string_view what) const {
  log_->error("{}: {} ({})", what, sqlite3_errmsg(db_.get()), sqlite3_extended_errcode(db_.get()));
  return Fail(Errc::kStoreFailure);
}

Result<void> Database::Exec(std::string_view sql) {
  while (!sql.empty()) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    const int rc =
        sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (rc != SQLITE_OK) {
      return Failure("prepare");
    }
    sql.remove_prefix(static_cast<std::size_t>(tail - sql.data()));
    if (!stmt) {
      continue;  // whitespace or a comment
    }
    int step = SQLITE_ROW;
    while (step == SQLITE_ROW) {
      step = sqlite3_step(stmt.get());
    }
    if (step != SQLITE_DONE) {
      return Failure("exec");
    }
  }
  return {};
}

std::int64_t Database::Changes() const noexcept {
  return sqlite3_changes64(db_.get());
}

// ---- Statement cache --------------------------------------------------------------------------

/// A few statements per SQL text (one is the common case; nested use of the same text prepares
/// another). The store's SQL is a fixed set, so the cache is bounded by it.
struct Database::StatementCache {
  static constexpr std::size_t kPerText = 4;
  std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> kept;
};

Database::Database(std::unique_ptr<sqlite3, Closer> db, std::shared_ptr<spdlog::logger> log)
    : db_(std::move(db)), log_(std::move(log)), cache_(new StatementCache) {}

void Database::StatementCacheDeleter::operator()(StatementCache* cache) const noexcept {
  for (auto& [sql, statements] : cache->kept) {
    for (sqlite3_stmt* stmt : statements) {
      sqlite3_finalize(stmt);
    }
  }
  delete cache;  // NOLINT(cppcoreguidelines-owning-memory): the deleter of a unique_ptr
}

sqlite3_stmt* Database::TakeCached(std::string_view sql) noexcept {
  if (!cache_) {
    return nullptr;
  }
  auto it = cache_->kept.find(sql);
  if (it == cache_->kept.end() || it->second.empty()) {
    return nullptr;
  }
  sqlite3_stmt* stmt = it->second.back();
  it->second.pop_back();
  return stmt;
}

bool Database::Keep(std::string_view sql, sqlite3_stmt* stmt) noexcept {
  if (!cache_) {
    return false;
  }
  try {
    auto it = cache_->kept.find(sql);
    if (it == cache_->kept.end()) {
      it = cache_->kept.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first;
    }
    if (it->second.size() >= StatementCache::kPerText) {
      return false;
    }
    it->second.push_back(stmt);
    return true;
  } catch (...) {
    return false;  // out of memory: finalize instead
  }
}

// ---- Statement --------------------------------------------------------------------------------

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

Statement::Statement(Database& db,
                     std::unique_ptr<sqlite3_stmt, Finalizer> stmt,
                     std::string_view sql)
    : db_(&db), stmt_(std::move(stmt)), sql_(sql) {}

Statement::~Statement() {
  if (!stmt_) {
    return;  // moved from
  }
  // A statement goes back only when it is clean: reset (which also ends a read transaction it
  // held) and without bindings, so no secret stays bound in memory longer than its query.
  if (sqlite3_reset(stmt_.get()) == SQLITE_OK && sqlite3_clear_bindings(stmt_.get()) == SQLITE_OK &&
      db_->Keep(sql_, stmt_.get())) {
    static_cast<void>(stmt_.release());
  }
}

Result<Statement> Statement::Prepare(Database& db, std::string_view sql) {
  if (sqlite3_stmt* cached = db.TakeCached(sql)) {
    return Statement(db, std::unique_ptr<sqlite3_stmt, Finalizer>(cached), sql);
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(
      db.Get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt(raw);
  if (rc != SQLITE_OK || !stmt) {
    return db.Failure("prepare");
  }
  return Statement(db, std::move(stmt), sql);
}

Result<void> Statement::CheckBind(int rc, int index) const {
  if (rc != SQLITE_OK) {
    return db_->Failure(fmt::format("bind parameter {}", index));
  }
  return {};
}

Result<void> Statement::Bind(int index, std::int64_t value) {
  return CheckBind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

Result<void> Statement::Bind(int index, std::string_view text) {
  if (!store_schema::IsStorableText(text)) {  // what PostgreSQL would refuse: refused here too
    db_->Log().warn("bind parameter {}: refused a text that is not UTF-8 or holds NUL", index);
    return Fail(Errc::kInvalidArgument);
  }
  return CheckBind(sqlite3_bind_text64(stmt_.get(),
                                       index,
                                       text.data(),
                                       static_cast<sqlite3_uint64>(text.size()),
                                       Transient(),
                                       SQLITE_UTF8),
                   index);
}

Result<void> Statement::Bind(int index, Blob blob) {
  // A zero-length blob must still be a BLOB, not NULL: SQLite binds NULL for a null pointer.
  static constexpr char kEmpty = 0;
  const char* data = blob.bytes.empty() ? &kEmpty : blob.bytes.data();
  return CheckBind(
      sqlite3_bind_blob64(
          stmt_.get(), index, data, static_cast<sqlite3_uint64>(blob.bytes.size()), Transient()),
      index);
}

Result<void> Statement::Bind(int index, const std::optional<Blob>& blob) {
  if (!blob) {
    return CheckBind(sqlite3_bind_null(stmt_.get(), index), index);
  }
  return Bind(index, *blob);
}

Result<void> Statement::Bind(int index, const NullableText& text) {
  if (!text.text) {
    return CheckBind(sqlite3_bind_null(stmt_.get(), index), index);
  }
  return Bind(index, std::string_view(*text.text));
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_.get());
  finished_ = rc == SQLITE_DONE;
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  // Spelled out: result<bool> has no implicit constructor from error_code (bool accepts one).
  return Result<bool>(boost::system::in_place_error, db_->Failure("step"));
}

Result<void> Statement::Run() {
  if (finished_) {
    return {};  // already finished: another step would execute it again
  }
  auto row = Step();
  if (!row) {
    return row.error();
  }
  if (*row) {
    db_->Log().error("statement returned a row where none was expected: {}",
                     sqlite3_sql(stmt_.get()));
    return Fail(Errc::kStoreFailure);
  }
  return {};
}

Result<void> Statement::Reset() {
  finished_ = false;
  if (sqlite3_reset(stmt_.get()) != SQLITE_OK) {
    return db_->Failure("reset");
  }
  return {};
}

std::int64_t Statement::Int(int column) const noexcept {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_.get(), column);
  const int size = sqlite3_column_bytes(stmt_.get(), column);  // after _text (SQLite's rule)
  if (text == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
}

std::string Statement::BlobAt(int column) const {
  const void* bytes = sqlite3_column_blob(stmt_.get(), column);
  const int size = sqlite3_column_bytes(stmt_.get(), column);
  if (bytes == nullptr) {
    return {};
  }
  return {static_cast<const char*>(bytes), static_cast<std::size_t>(size)};
}

bool Statement::IsNull(int column) const noexcept {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

// ---- Transaction ------------------------------------------------------------------------------

Result<void> Transaction::Begin() {
  auto begun = db_->Exec("BEGIN IMMEDIATE");
  open_ = begun.has_value();
  return begun;
}

Result<void> Transaction::Commit() {
  auto committed = db_->Exec("COMMIT");
  if (committed) {
    open_ = false;
  }
  return committed;
}

Transaction::~Transaction() {
  if (open_ && sqlite3_get_autocommit(db_->Get()) == 0) {
    // Errors were logged by Exec; a failed ROLLBACK leaves nothing better to do.
    static_cast<void>(db_->Exec("ROLLBACK"));
  }
}

}  // namespace amoauth::store_sqlite::detail
