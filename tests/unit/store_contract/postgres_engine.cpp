// The store contract on PostgreSQL: each test gets a fresh database on the `postgres` fixture's
// server (ScratchDatabase); "another process" is another PgStore on the same database.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "amoauth/store_pg/pg_store.hpp"
#include "postgres_scratch.hpp"
#include "sqlite_engine.hpp"  // ReadFileBytes
#include "store_engine.hpp"

namespace amoauth::testing::store {
namespace {

namespace fs = std::filesystem;

class PostgresEngine final : public StoreEngine {
 public:
  [[nodiscard]] std::string_view Name() const override { return "postgresql"; }

  Result<std::unique_ptr<service::Store>> Open(const crypto::MasterKey& key,
                                               std::size_t max_pending_states,
                                               const core::Clock& clock,
                                               const crypto::MasterKey* previous_key) override {
    store_pg::PgOptions options;
    if (previous_key != nullptr) {
      options.previous_key = *previous_key;
    }
    options.url = db_.Url();
    options.pool_size = 2;
    options.max_pending_states = max_pending_states;
    options.clock = &clock;
    auto store = store_pg::PgStore::Open(options, key);
    if (!store) {
      return store.error();
    }
    return std::unique_ptr<service::Store>(std::move(*store));
  }

  Rows Query(const std::string& sql) override {
    Rows rows;
    const PgResult r = Run(sql);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r.get());
      return rows;
    }
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::vector<std::string> row;
      for (int j = 0; j < PQnfields(r.get()); ++j) {
        row.emplace_back(PQgetisnull(r.get(), i, j) != 0 ? "NULL" : PQgetvalue(r.get(), i, j));
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void Exec(const std::string& sql) override {
    const PgResult r = Run(sql);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r.get());
    }
  }

  [[nodiscard]] std::string BytesLiteral(std::string_view hex) const override {
    return "'\\x" + std::string(hex) + "'::bytea";
  }

  /// The database's own files (base/<oid>) and the write-ahead log, after a CHECKPOINT has
  /// written out the shared buffers. The server is the test machine's (a Unix socket).
  std::string FileBytes() override {
    Exec("CHECKPOINT");
    const auto where = Query(
        "SELECT current_setting('data_directory'), oid FROM pg_database "
        "WHERE datname = current_database()");
    if (where.size() != 1) {
      ADD_FAILURE() << "cannot find the database's directory";
      return {};
    }
    const fs::path data = where[0][0];
    std::string bytes;
    for (const fs::path& dir : {data / "base" / where[0][1], data / "pg_wal"}) {
      for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (entry.is_regular_file()) {
          bytes += ReadFileBytes(entry.path());
        }
      }
    }
    return bytes;
  }

 private:
  struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  using PgResult = std::unique_ptr<PGresult, ResultDeleter>;
  struct ConnectionDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };

  /// Runs `sql` on the operator's connection (opened at first use).
  PgResult Run(const std::string& sql) {
    if (!connection_ || PQstatus(connection_.get()) != CONNECTION_OK) {
      connection_.reset(PQconnectdb(db_.Url().c_str()));
      if (PQstatus(connection_.get()) != CONNECTION_OK) {
        ADD_FAILURE() << "cannot connect to " << db_.Url() << ": "
                      << PQerrorMessage(connection_.get());
      }
    }
    return PgResult(PQexec(connection_.get(), sql.c_str()));
  }

  ScratchDatabase db_;  // first: dropped after the connection below is closed
  std::unique_ptr<PGconn, ConnectionDeleter> connection_;
};

INSTANTIATE_TEST_SUITE_P(Postgres,
                         StoreContract,
                         ::testing::Values(EngineFactory{
                             "postgresql", [] { return std::make_unique<PostgresEngine>(); }}),
                         EngineName);

}  // namespace
}  // namespace amoauth::testing::store
