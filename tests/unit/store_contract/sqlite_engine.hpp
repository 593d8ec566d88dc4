#pragma once

#include <filesystem>
#include <string>

#include <sqlite3.h>

#include "store_engine.hpp"

namespace amoauth::testing::store {

/// The database as an operator (or an attacker with the file) sees it: plain sqlite3 C API.
class RawDb {
 public:
  /// `create`: make the file if missing (to build an old-version database by hand).
  explicit RawDb(const std::string& path, bool create = false);
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb();

  void Exec(const std::string& sql);
  /// Every row, every column as text ("NULL" for NULL).
  Rows Query(const std::string& sql);

 private:
  sqlite3* db_ = nullptr;
};

/// SQLite: a database file in a fresh temporary directory, removed with the engine.
class SqliteEngine final : public StoreEngine {
 public:
  SqliteEngine();
  SqliteEngine(const SqliteEngine&) = delete;
  SqliteEngine& operator=(const SqliteEngine&) = delete;
  ~SqliteEngine() override;

  [[nodiscard]] std::string_view Name() const override { return "sqlite"; }
  Result<std::unique_ptr<service::Store>> Open(const crypto::MasterKey& key,
                                               std::size_t max_pending_states,
                                               const core::Clock& clock,
                                               const crypto::MasterKey* previous_key) override;
  Rows Query(const std::string& sql) override { return RawDb(DbPath()).Query(sql); }
  void Exec(const std::string& sql) override { RawDb(DbPath()).Exec(sql); }
  [[nodiscard]] std::string BytesLiteral(std::string_view hex) const override;
  /// The database file with its -wal and -shm: rows not yet checkpointed sit in the WAL.
  std::string FileBytes() override;

  [[nodiscard]] const std::filesystem::path& Dir() const { return dir_; }
  [[nodiscard]] std::string DbPath() const { return (dir_ / "amoauth.db").string(); }

 private:
  std::filesystem::path dir_;
};

/// The bytes of a file ("" when it does not exist).
std::string ReadFileBytes(const std::filesystem::path& path);

}  // namespace amoauth::testing::store
