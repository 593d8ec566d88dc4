// The token cache's commit count read from SQLite's WAL-index header in shared memory: it must
// change on every commit by any connection — another process's included — and on nothing else,
// and a header that cannot be trusted must never be read as "nothing changed".
#include "commit_probes.hpp"

#include <array>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "sqlite_handle.hpp"
#include "wal_index.hpp"

namespace amoauth::store_sqlite::detail {
namespace {

class WalIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("amoauth-wal-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "t.db").string();
    reader_ = Open();
    writer_ = Open();
    Exec(*writer_, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
    Exec(*reader_, "SELECT count(*) FROM t");  // a read opens the shared memory
    shm_ = MapWalIndex(reader_->Get());
    ASSERT_NE(shm_, nullptr);
  }
  void TearDown() override {
    reader_.reset();
    writer_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::optional<Database> Open() {
    auto db = Database::Open(path_, spdlog::default_logger());
    EXPECT_TRUE(db);
    return db ? std::optional<Database>(std::move(*db)) : std::nullopt;
  }
  static void Exec(Database& db, const char* sql) { ASSERT_TRUE(db.Exec(sql)) << sql; }

  /// Runs the sqlite3 shell — another process, another copy of SQLite — on the file.
  void ExecInAnotherProcess(const std::string& sql) const {
    const std::string command = "sqlite3 '" + path_ + "' \"" + sql + "\"";
    ASSERT_EQ(std::system(command.c_str()), 0) << command << " (the sqlite3 package is needed)";
  }

  WalIndexHeader Header() const {
    auto header = ReadWalIndexHeader(shm_);
    EXPECT_TRUE(header);
    return header.value_or(WalIndexHeader{});
  }

  std::filesystem::path dir_;
  std::string path_;
  std::optional<Database> reader_;
  std::optional<Database> writer_;
  const volatile void* shm_ = nullptr;
};

TEST_F(WalIndexTest, TheHeaderIsSqlitesWalIndexOfTheKnownVersion) {
  EXPECT_EQ(Header()[0], kWalIndexVersion);
}

TEST_F(WalIndexTest, TheHeaderChangesOnEveryCommitAndOnNothingElse) {
  const WalIndexHeader start = Header();
  Exec(*writer_, "SELECT * FROM t");
  Exec(*reader_, "SELECT * FROM t");
  Exec(*writer_, "BEGIN; INSERT INTO t (v) VALUES ('rolled back'); ROLLBACK");
  EXPECT_EQ(Header(), start) << "reads and a rollback commit nothing";

  Exec(*writer_, "INSERT INTO t (v) VALUES ('one')");
  const WalIndexHeader after_one = Header();
  EXPECT_NE(after_one, start);
  Exec(*writer_, "UPDATE t SET v = 'two'");
  EXPECT_NE(Header(), after_one);
}

TEST_F(WalIndexTest, ACommitByAnotherProcessChangesTheHeader) {
  const WalIndexHeader start = Header();
  ExecInAnotherProcess("INSERT INTO t (v) VALUES ('theirs')");
  const WalIndexHeader after = Header();
  EXPECT_NE(after, start);
  ExecInAnotherProcess("SELECT * FROM t");
  EXPECT_EQ(Header(), after);
}

// A checkpoint that resets the log leaves the data as it was, yet the next commit starts the log
// again from its first frame: the header must still differ from every one before it.
TEST_F(WalIndexTest, ACommitAfterTheLogIsResetStillChangesTheHeader) {
  Exec(*writer_, "INSERT INTO t (v) VALUES ('one')");
  const WalIndexHeader before = Header();
  Exec(*writer_, "PRAGMA wal_checkpoint(TRUNCATE)");
  Exec(*writer_, "INSERT INTO t (v) VALUES ('two')");
  EXPECT_NE(Header(), before);
}

// What ReadWalIndexHeader refuses, on a copy of a real header (two copies of 48 bytes).
TEST_F(WalIndexTest, AHeaderThatCannotBeTrustedIsNotRead) {
  Exec(*writer_, "INSERT INTO t (v) VALUES ('one')");
  std::array<std::uint32_t, 24> copy{};
  const auto* words = static_cast<const volatile std::uint32_t*>(shm_);
  for (std::size_t i = 0; i < copy.size(); ++i) {
    copy[i] = words[i];
  }
  ASSERT_EQ(ReadWalIndexHeader(copy.data()), Header()) << "an exact copy reads the same";

  auto torn = copy;  // a writer between the two copies: the second is already new
  torn[12 + 2] += 1;
  EXPECT_FALSE(ReadWalIndexHeader(torn.data()));

  auto damaged = copy;  // both copies agree but the checksum does not
  damaged[4] += 1;
  damaged[12 + 4] += 1;
  EXPECT_FALSE(ReadWalIndexHeader(damaged.data()));

  auto other_version = copy;
  other_version[0] = other_version[12] = kWalIndexVersion + 1;
  EXPECT_FALSE(ReadWalIndexHeader(other_version.data()));

  std::array<std::uint32_t, 24> uninitialised{};
  EXPECT_FALSE(ReadWalIndexHeader(uninitialised.data()));
}

TEST_F(WalIndexTest, CommitProbesReadTheWalIndexAndMoveOnAnotherProcesssCommit) {
  auto probes = CommitProbes::Open(path_, 2, spdlog::default_logger());
  ASSERT_TRUE(probes);
  EXPECT_TRUE((*probes)->ReadsWalIndex()) << "no system call per token-cache lookup";
  const auto first = (*probes)->Count();
  ASSERT_TRUE(first);
  EXPECT_EQ((*probes)->Count(), first);
  ExecInAnotherProcess("INSERT INTO t (v) VALUES ('theirs')");
  const auto after = (*probes)->Count();
  ASSERT_TRUE(after);
  EXPECT_NE(*after, *first);
  EXPECT_EQ((*probes)->Count(), after);
}

}  // namespace
}  // namespace amoauth::store_sqlite::detail
