#pragma once

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

/// A database of the benchmark's own on a PostgreSQL server (scripts/postgres-scratch.sh), so a
/// run starts from an empty schema and leaves nothing behind.
namespace amoauth::bench {

/// `server_url` with its database replaced by `name` (the query, e.g. ?host=/socket/dir, kept).
inline std::string WithDatabase(const std::string& server_url, const std::string& name) {
  const auto scheme = server_url.find("://");
  if (scheme == std::string::npos) {
    throw std::runtime_error("expected a postgresql:// URL");
  }
  const auto authority = scheme + 3;
  const auto query = server_url.find('?', authority);
  const std::string rest = query == std::string::npos ? "" : server_url.substr(query);
  auto slash = server_url.find('/', authority);
  if (slash == std::string::npos || (query != std::string::npos && slash > query)) {
    slash = query == std::string::npos ? server_url.size() : query;
    return server_url.substr(0, slash) + "/" + name + rest;
  }
  return server_url.substr(0, slash + 1) + name + rest;
}

/// Creates `amoauth_bench_<random>` on the server at construction and drops it at destruction
/// (unless kept).
class BenchDatabase {
 public:
  explicit BenchDatabase(std::string server_url, bool keep = false)
      : server_(std::move(server_url)), keep_(keep) {
    std::random_device seed;
    name_ = fmt::format("amoauth_bench_{:08x}", seed());
    Execute("CREATE DATABASE " + name_);
    url_ = WithDatabase(server_, name_);
  }
  BenchDatabase(const BenchDatabase&) = delete;
  BenchDatabase& operator=(const BenchDatabase&) = delete;
  ~BenchDatabase() {
    if (!keep_) {
      try {
        Execute("DROP DATABASE " + name_ + " WITH (FORCE)");
      } catch (const std::exception&) {
        // Left on a scratch server that is thrown away anyway.
      }
    }
  }
  [[nodiscard]] const std::string& Url() const { return url_; }

  /// pg_database_size of the database: tables, indexes and their free space.
  [[nodiscard]] std::int64_t SizeBytes() const {
    PGconn* conn = Connect(url_);
    PGresult* result = PQexec(conn, "SELECT pg_database_size(current_database())");
    std::int64_t size = -1;
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1) {
      size = std::stoll(PQgetvalue(result, 0, 0));
    }
    PQclear(result);
    PQfinish(conn);
    return size;
  }

 private:
  static PGconn* Connect(const std::string& url) {
    PGconn* conn = PQconnectdb(url.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string why = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("cannot connect to the PostgreSQL server: " + why);
    }
    return conn;
  }

  void Execute(const std::string& sql) const {
    PGconn* conn = Connect(server_);
    PGresult* result = PQexec(conn, sql.c_str());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    const std::string why = PQerrorMessage(conn);
    PQclear(result);
    PQfinish(conn);
    if (!ok) {
      throw std::runtime_error(sql + ": " + why);
    }
  }

  std::string server_;
  bool keep_;
  std::string name_;
  std::string url_;
};

}  // namespace amoauth::bench
