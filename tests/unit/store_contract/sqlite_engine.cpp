#include "sqlite_engine.hpp"

#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <unistd.h>

#include "amoauth/store_sqlite/sqlite_store.hpp"

namespace amoauth::testing::store {

namespace fs = std::filesystem;

RawDb::RawDb(const std::string& path, bool create) {
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path;
  }
  sqlite3_busy_timeout(db_, 5000);
}

RawDb::~RawDb() {
  sqlite3_close_v2(db_);
}

void RawDb::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << (error != nullptr ? error : "?");
  }
  sqlite3_free(error);
}

Rows RawDb::Query(const std::string& sql) {
  Rows rows;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    return rows;
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      const auto* text = sqlite3_column_text(stmt, i);
      row.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  return rows;
}

SqliteEngine::SqliteEngine() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info != nullptr ? info->name() : "store";
  for (char& ch : test) {
    if (ch == '/') {
      ch = '_';  // parameterised names: Name/engine
    }
  }
  dir_ = fs::temp_directory_path() / ("amoauth-store-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(counter++) + "-" + test);
  fs::remove_all(dir_);
  fs::create_directories(dir_);
}

SqliteEngine::~SqliteEngine() {
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

Result<std::unique_ptr<service::Store>> SqliteEngine::Open(const crypto::MasterKey& key,
                                                           std::size_t max_pending_states,
                                                           const core::Clock& clock,
                                                           const crypto::MasterKey* previous_key) {
  store_sqlite::SqliteOptions options;
  if (previous_key != nullptr) {
    options.previous_key = *previous_key;
  }
  options.path = DbPath();
  options.threads = 2;
  options.max_pending_states = max_pending_states;
  options.clock = &clock;
  auto store = store_sqlite::SqliteStore::Open(options, key);
  if (!store) {
    return store.error();
  }
  return std::unique_ptr<service::Store>(std::move(*store));
}

std::string SqliteEngine::BytesLiteral(std::string_view hex) const {
  return "X'" + std::string(hex) + "'";
}

std::string SqliteEngine::FileBytes() {
  return ReadFileBytes(DbPath()) + ReadFileBytes(DbPath() + "-wal") +
         ReadFileBytes(DbPath() + "-shm");
}

std::string ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace amoauth::testing::store
