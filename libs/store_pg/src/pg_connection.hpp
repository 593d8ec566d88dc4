#pragma once

// RAII wrappers for libpq's PGconn and PGresult, private to libs/store_pg. Only parameterised
// queries (PQexecParams, text parameters, bytea sent as binary parameters, every result in text
// format). Every failure is logged here in words with its SQLSTATE, never with parameter values
// or DETAIL lines (which may quote them), and returned as Errc::kStoreFailure.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>
#include <spdlog/logger.h>

#include "amoauth/core/result.hpp"

namespace amoauth::store_pg::detail {

/// SQLSTATEs the store acts on.
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kDeadlockDetected = "40P01";

/// A bytea parameter (a text parameter is a plain std::string_view).
struct Bytes {
  std::string_view bytes;
};

/// The parameters of one statement: $1, $2, … in the order added. Values are copied.
class Params {
 public:
  Params& Text(std::string_view text);
  Params& Int(std::int64_t value);
  Params& Binary(Bytes bytes);
  /// NULL when nullopt.
  Params& NullableText(const std::optional<std::string>& text);
  Params& NullableBinary(const std::optional<std::string>& bytes);

  [[nodiscard]] int Count() const noexcept { return static_cast<int>(values_.size()); }
  [[nodiscard]] const char* const* Values() const noexcept { return pointers_.data(); }
  [[nodiscard]] const int* Lengths() const noexcept { return lengths_.data(); }
  [[nodiscard]] const int* Formats() const noexcept { return formats_.data(); }
  /// A text value was not store_schema::IsStorableText: Connection::Exec refuses to run.
  [[nodiscard]] bool Refused() const noexcept { return refused_; }

 private:
  void Push(std::optional<std::string> value, int format);
  void Repoint();
  std::vector<std::optional<std::string>> values_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  bool refused_ = false;
};

/// The rows of one statement (text format). Rows and columns are 0-based.
class Rows final {
 public:
  Rows() = default;
  explicit Rows(PGresult* result) : result_(result) {}

  [[nodiscard]] int Count() const noexcept;
  /// Rows an INSERT/UPDATE/DELETE changed (PQcmdTuples).
  [[nodiscard]] std::int64_t Affected() const noexcept;
  [[nodiscard]] bool IsNull(int row, int column) const noexcept;
  [[nodiscard]] std::string Text(int row, int column) const;
  /// An integer column; 0 if it does not parse (never, for the store's own columns).
  [[nodiscard]] std::int64_t Int(int row, int column) const noexcept;
  /// A bytea column, unescaped from its text form.
  [[nodiscard]] std::string Binary(int row, int column) const;

  /// PGRES_FATAL_ERROR when there is no result at all (out of memory, connection lost).
  [[nodiscard]] ExecStatusType Status() const noexcept {
    return result_ ? PQresultStatus(result_.get()) : PGRES_FATAL_ERROR;
  }
  [[nodiscard]] const PGresult* Raw() const noexcept { return result_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> result_;
};

/// One libpq connection. Not thread-safe: the store binds each connection to one thread.
class Connection final {
 public:
  /// Connects to `url` (a libpq URI or key=value string), waiting at most `timeout`.
  /// Errors: Errc::kStoreFailure, logged in words: which host or socket, and libpq's reason
  /// (the password, if the URL holds one, never appears).
  [[nodiscard]] static Result<Connection> Open(const std::string& url,
                                               std::chrono::milliseconds timeout,
                                               std::shared_ptr<spdlog::logger> log);

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() = default;

  [[nodiscard]] PGconn* Get() const noexcept { return conn_.get(); }
  [[nodiscard]] spdlog::logger& Log() const noexcept { return *log_; }

  /// Runs one parameterised statement. `what` names it in the log.
  [[nodiscard]] Result<Rows> Exec(std::string_view what,
                                  std::string_view sql,
                                  const Params& params = Params());
  /// Runs a script of statements without parameters (BEGIN, COMMIT, migration scripts).
  [[nodiscard]] Result<void> Script(std::string_view what, std::string_view sql);

  /// The SQLSTATE of the last failure ("" after a success or when the connection dropped).
  [[nodiscard]] const std::string& LastSqlState() const noexcept { return last_sqlstate_; }
  /// The server is gone (restarted, network): the connection must be reset before use.
  [[nodiscard]] bool Broken() const noexcept;
  /// Reconnects with the original parameters (PQreset, bounded by the connect timeout).
  /// Errors: Errc::kStoreFailure, logged.
  [[nodiscard]] Result<void> Reset();
  /// "host:port" or "socket directory:port", for log lines.
  [[nodiscard]] std::string Target() const;

 private:
  struct Finish {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  Connection(std::unique_ptr<PGconn, Finish> conn, std::shared_ptr<spdlog::logger> log)
      : conn_(std::move(conn)), log_(std::move(log)) {}
  [[nodiscard]] boost::system::error_code Failure(std::string_view what, const PGresult* result);

  std::unique_ptr<PGconn, Finish> conn_;
  std::shared_ptr<spdlog::logger> log_;
  std::string last_sqlstate_;
};

/// BEGIN … COMMIT (READ COMMITTED: every write the store makes is one statement that locks the
/// rows it touches, or an advisory lock). Rolls back unless committed.
class Transaction final {
 public:
  explicit Transaction(Connection& conn) : conn_(&conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] Result<void> Begin();
  [[nodiscard]] Result<void> Commit();

 private:
  Connection* conn_;
  bool open_ = false;
};

}  // namespace amoauth::store_pg::detail
