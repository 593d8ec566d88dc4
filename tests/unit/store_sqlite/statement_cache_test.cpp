// The store keeps prepared statements per connection: reused, and clean when kept.
#include <filesystem>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "sqlite_handle.hpp"

namespace amoauth::store_sqlite::detail {
namespace {

int LiveStatements(Database& db) {
  int count = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db.Get(), nullptr); s != nullptr;
       s = sqlite3_next_stmt(db.Get(), s)) {
    ++count;
  }
  return count;
}

class StatementCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("amoauth-stmt-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    auto db = Database::Open((dir_ / "t.db").string(), spdlog::default_logger());
    ASSERT_TRUE(db);
    db_.emplace(std::move(*db));
    ASSERT_TRUE(db_->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"));
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::optional<Database> db_;
};

using StatementTest = StatementCacheTest;

// The many-instances test once met "statement returned a row where none was expected" from
// TryAcquire: its upsert found the lease held (no row), and the Run() meant to finish the
// statement stepped it again, which SQLite answers by running it anew; by then the lease had
// been released, so the second run took it, and the caller was told the store failed.
TEST_F(StatementTest, RunAfterAStepThatFinishedDoesNotExecuteTheStatementAgain) {
  auto insert = Statement::Prepare(*db_, "INSERT INTO t (k, v) VALUES ('once', 'v') RETURNING k");
  ASSERT_TRUE(insert);
  auto row = insert->Step();
  ASSERT_TRUE(row);
  ASSERT_TRUE(*row);
  ASSERT_TRUE(insert->Run()) << "finishes the statement after its row";
  ASSERT_TRUE(db_->Exec("DELETE FROM t"));

  auto conditional = Statement::Prepare(
      *db_, "INSERT INTO t (k, v) SELECT 'k', 'v' WHERE NOT EXISTS (SELECT 1 FROM t) RETURNING k");
  ASSERT_TRUE(conditional);
  ASSERT_TRUE(db_->Exec("INSERT INTO t (k, v) VALUES ('held', 'v')"));
  row = conditional->Step();
  ASSERT_TRUE(row);
  EXPECT_FALSE(*row) << "the row exists: nothing inserted";
  ASSERT_TRUE(db_->Exec("DELETE FROM t"));  // the condition changes before the statement is done
  EXPECT_TRUE(conditional->Run()) << "no second execution, so no unexpected row";
  auto count = Statement::Prepare(*db_, "SELECT count(*) FROM t");
  ASSERT_TRUE(count);
  ASSERT_TRUE(count->Step());
  EXPECT_EQ(count->Int(0), 0) << "Run() did not execute the insert a second time";

  // After Reset() the statement runs again, as multi-row inserts rely on.
  ASSERT_TRUE(conditional->Reset());
  ASSERT_TRUE(conditional->Run().has_error()) << "executed anew: its row is unexpected for Run()";
}

TEST_F(StatementCacheTest, AStatementIsPreparedOnceAndReused) {
  const int before = LiveStatements(*db_);
  for (int i = 0; i < 100; ++i) {
    auto insert = Statement::Prepare(*db_, "INSERT INTO t (k, v) VALUES (?1, ?2)");
    ASSERT_TRUE(insert);
    ASSERT_TRUE(insert->BindAll(std::string_view("k" + std::to_string(i)), std::string_view("v")));
    ASSERT_TRUE(insert->Run());
  }
  EXPECT_EQ(LiveStatements(*db_), before + 1);
}

TEST_F(StatementCacheTest, AKeptStatementHoldsNoBindingsAndNestedUseGetsItsOwn) {
  {
    auto outer = Statement::Prepare(*db_, "SELECT v FROM t WHERE k = ?1");
    ASSERT_TRUE(outer);
    ASSERT_TRUE(outer->Bind(1, std::string_view("secret-refresh-token")));
    auto inner = Statement::Prepare(*db_, "SELECT v FROM t WHERE k = ?1");
    ASSERT_TRUE(inner);  // the same text while the first is in use: a second statement
  }
  for (sqlite3_stmt* s = sqlite3_next_stmt(db_->Get(), nullptr); s != nullptr;
       s = sqlite3_next_stmt(db_->Get(), s)) {
    char* expanded = sqlite3_expanded_sql(s);
    ASSERT_NE(expanded, nullptr);
    EXPECT_EQ(std::string(expanded).find("secret"), std::string::npos) << expanded;
    sqlite3_free(expanded);
  }
}

}  // namespace
}  // namespace amoauth::store_sqlite::detail
