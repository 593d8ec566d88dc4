#include "pg_connection.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "amoauth/store_schema/stored_format.hpp"

namespace amoauth::store_pg::detail {

namespace {

/// libpq's messages end with a newline and may span lines; one log line reads better.
std::string OneLine(const char* message) {
  std::string text = message != nullptr ? message : "";
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

/// The password of `url`, if it spells one, so that no log line can echo it.
std::string PasswordOf(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  PQfreemem(error);
  std::string password;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr) {
      password = o->val;
    }
  }
  PQconninfoFree(options);
  return password;
}

std::string Redacted(std::string text, const std::string& password) {
  if (password.empty()) {
    return text;
  }
  for (auto at = text.find(password); at != std::string::npos; at = text.find(password, at)) {
    text.replace(at, password.size(), "***");
  }
  return text;
}

/// Server notices ("relation … already exists, skipping") go to the log at debug level, not to
/// stderr as libpq's default does.
void LogNotice(void* logger, const char* message) {
  static_cast<spdlog::logger*>(logger)->debug("PostgreSQL: {}", OneLine(message));
}

}  // namespace

// ---- Params -------------------------------------------------------------------------------------

void Params::Push(std::optional<std::string> value, int format) {
  values_.push_back(std::move(value));
  formats_.push_back(format);
  Repoint();
}

void Params::Repoint() {
  // Strings may move when values_ grows: point again at all of them.
  pointers_.clear();
  lengths_.clear();
  for (const auto& value : values_) {
    pointers_.push_back(value ? value->data() : nullptr);
    lengths_.push_back(value ? static_cast<int>(value->size()) : 0);
  }
}

Params& Params::Text(std::string_view text) {
  refused_ = refused_ || !store_schema::IsStorableText(text);
  Push(std::string(text), 0);
  return *this;
}

Params& Params::Int(std::int64_t value) {
  Push(std::to_string(value), 0);
  return *this;
}

Params& Params::Binary(Bytes bytes) {
  Push(std::string(bytes.bytes), 1);
  return *this;
}

Params& Params::NullableText(const std::optional<std::string>& text) {
  refused_ = refused_ || (text && !store_schema::IsStorableText(*text));
  Push(text, 0);
  return *this;
}

Params& Params::NullableBinary(const std::optional<std::string>& bytes) {
  Push(bytes, 1);
  return *this;
}

// ---- Rows ---------------------------------------------------------------------------------------

int Rows::Count() const noexcept {
  return result_ ? PQntuples(result_.get()) : 0;
}

std::int64_t Rows::Affected() const noexcept {
  const char* text = result_ ? PQcmdTuples(result_.get()) : "";
  std::int64_t n = 0;
  std::from_chars(text, text + std::char_traits<char>::length(text), n);
  return n;
}

bool Rows::IsNull(int row, int column) const noexcept {
  return PQgetisnull(result_.get(), row, column) == 1;
}

std::string Rows::Text(int row, int column) const {
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

std::int64_t Rows::Int(int row, int column) const noexcept {
  const char* text = PQgetvalue(result_.get(), row, column);
  std::int64_t n = 0;
  std::from_chars(text, text + PQgetlength(result_.get(), row, column), n);
  return n;
}

std::string Rows::Binary(int row, int column) const {
  std::size_t size = 0;
  unsigned char* raw = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row, column)), &size);
  if (raw == nullptr) {
    return {};
  }
  std::string bytes(reinterpret_cast<const char*>(raw), size);
  PQfreemem(raw);
  return bytes;
}

// ---- Connection ---------------------------------------------------------------------------------

Result<Connection> Connection::Open(const std::string& url,
                                    std::chrono::milliseconds timeout,
                                    std::shared_ptr<spdlog::logger> log) {
  // libpq counts whole seconds (and treats 1 as 2); round up so we never give up early.
  const auto seconds =
      std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(timeout).count());
  const std::string timeout_text = std::to_string(seconds);
  // connect_timeout first: a value in the URL itself overrides it. expand_dbname = 1 lets
  // "dbname" carry the whole URL.
  const std::array<const char*, 4> keys = {
      "connect_timeout", "fallback_application_name", "dbname", nullptr};
  const std::array<const char*, 4> values = {timeout_text.c_str(), "amoauth", url.c_str(), nullptr};
  std::unique_ptr<PGconn, Finish> conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) {
    log->error("cannot connect to PostgreSQL: out of memory");
    return Fail(Errc::kStoreFailure);
  }
  Connection c(std::move(conn), std::move(log));
  PQsetNoticeProcessor(c.Get(), &LogNotice, c.log_.get());
  if (PQstatus(c.Get()) != CONNECTION_OK) {
    c.log_->error("cannot connect to PostgreSQL at {}: {}",
                  c.Target(),
                  Redacted(OneLine(PQerrorMessage(c.Get())), PasswordOf(url)));
    return Fail(Errc::kStoreFailure);
  }
  return c;
}

std::string Connection::Target() const {
  const char* host = PQhost(conn_.get());
  const char* port = PQport(conn_.get());
  std::string where = host != nullptr && *host != '\0' ? host : "the default socket";
  if (!where.empty() && where.front() == '/') {
    where = "Unix socket directory " + where;
  }
  if (port != nullptr && *port != '\0') {
    where += fmt::format(" port {}", port);
  }
  return where;
}

bool Connection::Broken() const noexcept {
  return PQstatus(conn_.get()) == CONNECTION_BAD;
}

Result<void> Connection::Reset() {
  PQreset(conn_.get());
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    log_->error(
        "cannot reconnect to PostgreSQL at {}: {}", Target(), OneLine(PQerrorMessage(conn_.get())));
    return Fail(Errc::kStoreFailure);
  }
  log_->info("reconnected to PostgreSQL at {}", Target());
  return {};
}

boost::system::error_code Connection::Failure(std::string_view what, const PGresult* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state != nullptr ? state : "";
  if (Broken()) {
    log_->error("{}: the connection to PostgreSQL at {} was lost: {}",
                what,
                Target(),
                OneLine(PQerrorMessage(conn_.get())));
    return Fail(Errc::kStoreFailure);
  }
  // The primary message only: DETAIL may quote the values of a row.
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  log_->error("{}: {} (SQLSTATE {})",
              what,
              primary != nullptr ? primary : OneLine(PQerrorMessage(conn_.get())),
              last_sqlstate_.empty() ? "none" : last_sqlstate_);
  return Fail(Errc::kStoreFailure);
}

Result<Rows> Connection::Exec(std::string_view what, std::string_view sql, const Params& params) {
  if (params.Refused()) {  // libpq would cut it at a NUL; the server refuses bad UTF-8
    log_->warn("{}: refused a text parameter that is not UTF-8 or holds NUL", what);
    return Fail(Errc::kInvalidArgument);
  }
  const std::string text(sql);  // libpq wants a terminated string
  // nullptr types: the server infers each parameter's type from the statement.
  Rows rows(PQexecParams(conn_.get(),
                         text.c_str(),
                         params.Count(),
                         nullptr,
                         params.Values(),
                         params.Lengths(),
                         params.Formats(),
                         0));
  const ExecStatusType status = rows.Status();
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return Failure(what, rows.Raw());
  }
  last_sqlstate_.clear();
  return rows;
}

Result<void> Connection::Script(std::string_view what, std::string_view sql) {
  const std::string text(sql);
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn_.get(), text.c_str()),
                                                        &PQclear);
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return Failure(what, result.get());
  }
  last_sqlstate_.clear();
  return {};
}

// ---- Transaction --------------------------------------------------------------------------------

Result<void> Transaction::Begin() {
  auto begun = conn_->Script("begin", "BEGIN");
  open_ = begun.has_value();
  return begun;
}

Result<void> Transaction::Commit() {
  open_ = false;  // whatever the outcome: a failed COMMIT has ended the transaction
  return conn_->Script("commit", "COMMIT");
}

Transaction::~Transaction() {
  if (open_ && !conn_->Broken() && PQtransactionStatus(conn_->Get()) != PQTRANS_IDLE) {
    static_cast<void>(conn_->Script("rollback", "ROLLBACK"));
  }
}

}  // namespace amoauth::store_pg::detail
