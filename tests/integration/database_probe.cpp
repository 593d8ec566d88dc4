#include "database_probe.hpp"

#include <memory>
#include <stdexcept>
#include <string_view>

#include <libpq-fe.h>
#include <sqlite3.h>

namespace amoauth::testing {
namespace {

/// The one statement both engines run: plain SQL, camelCase columns quoted as in the schema.
constexpr const char* kOutboxQuery =
    R"(SELECT "body", "deliveredAt" IS NOT NULL FROM webhook_outbox ORDER BY "id")";

std::vector<OutboxRow> ReadSqliteOutbox(const std::string& path) {
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  if (opened != SQLITE_OK) {
    throw std::runtime_error("open " + path + ": " + sqlite3_errstr(opened));
  }
  sqlite3_busy_timeout(db.get(), 5000);  // amoauth's processes write the same file
  sqlite3_stmt* raw_statement = nullptr;
  if (sqlite3_prepare_v2(db.get(), kOutboxQuery, -1, &raw_statement, nullptr) != SQLITE_OK) {
    throw std::runtime_error(std::string("read webhook_outbox: ") + sqlite3_errmsg(db.get()));
  }
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> statement(raw_statement,
                                                                       &sqlite3_finalize);
  std::vector<OutboxRow> rows;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(statement.get(), 0);
    rows.push_back({.body = text != nullptr ? reinterpret_cast<const char*>(text) : "",
                    .delivered = sqlite3_column_int(statement.get(), 1) != 0});
  }
  if (rc != SQLITE_DONE) {
    throw std::runtime_error(std::string("read webhook_outbox: ") + sqlite3_errmsg(db.get()));
  }
  return rows;
}

std::vector<OutboxRow> ReadPostgresOutbox(const std::string& url) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("connect to PostgreSQL: ") + PQerrorMessage(conn.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), kOutboxQuery), &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    throw std::runtime_error(std::string("read webhook_outbox: ") +
                             PQresultErrorMessage(result.get()));
  }
  std::vector<OutboxRow> rows;
  for (int i = 0; i < PQntuples(result.get()); ++i) {
    rows.push_back({.body = PQgetvalue(result.get(), i, 0),
                    .delivered = std::string_view(PQgetvalue(result.get(), i, 1)) == "t"});
  }
  return rows;
}

}  // namespace

std::vector<OutboxRow> ReadOutbox(const std::string& database_url) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (database_url.starts_with(kSqlite)) {
    return ReadSqliteOutbox(database_url.substr(kSqlite.size()));
  }
  if (database_url.starts_with("postgresql://") || database_url.starts_with("postgres://")) {
    return ReadPostgresOutbox(database_url);
  }
  throw std::runtime_error("ReadOutbox: no reader for this database URL's scheme");
}

}  // namespace amoauth::testing
