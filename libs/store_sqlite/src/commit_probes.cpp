#include "commit_probes.hpp"

#include <algorithm>
#include <mutex>
#include <utility>

#include <sqlite3.h>

#include "sqlite_handle.hpp"
#include "wal_index.hpp"

namespace amoauth::store_sqlite::detail {

/// One connection of CommitProbes and what it saw last, guarded by its mutex.
class CommitProbe final {
 public:
  CommitProbe(Database db, sqlite3_stmt* stmt) : db_(std::move(db)), stmt_(stmt) {}
  CommitProbe(const CommitProbe&) = delete;
  CommitProbe& operator=(const CommitProbe&) = delete;
  ~CommitProbe() { sqlite3_finalize(stmt_); }

  static Result<std::unique_ptr<CommitProbe>> Open(const std::string& path,
                                                   std::shared_ptr<spdlog::logger> log) {
    auto db = Database::Open(path, std::move(log));
    if (!db) {
      return db.error();
    }
    if (auto r = db->Exec("PRAGMA busy_timeout = 0"); !r) {
      return r.error();
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(
            db->Get(), "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return db->Failure("prepare PRAGMA data_version");
    }
    auto probe = std::make_unique<CommitProbe>(std::move(*db), stmt);
    // A first read transaction opens the WAL index, so that MapWalIndex finds it mapped.
    static_cast<void>(probe->DataVersion());
    return probe;
  }

  /// This connection's PRAGMA data_version now; nullopt on SQLITE_BUSY and the like (nothing to
  /// log: the caller reads the store instead).
  std::optional<std::uint64_t> DataVersion() noexcept {
    std::optional<std::uint64_t> version;
    if (sqlite3_step(stmt_) == SQLITE_ROW) {
      version = static_cast<std::uint64_t>(sqlite3_column_int64(stmt_, 0));
    }
    sqlite3_reset(stmt_);
    return version;
  }

  [[nodiscard]] sqlite3* Handle() const noexcept { return db_.Get(); }

  std::mutex mutex;
  /// What this connection saw last (guarded by mutex; nullopt until its first look): the WAL-index
  /// header, or the data_version where the header is not read.
  std::optional<WalIndexHeader> last_header;
  std::optional<std::uint64_t> last_version;

 private:
  Database db_;
  sqlite3_stmt* stmt_;  ///< finalized before db_ closes
};

Result<std::unique_ptr<CommitProbes>> CommitProbes::Open(const std::string& path,
                                                         std::size_t connections,
                                                         std::shared_ptr<spdlog::logger> log) {
  std::vector<std::unique_ptr<CommitProbe>> probes;
  for (std::size_t i = 0; i < std::max<std::size_t>(connections, 1); ++i) {
    auto probe = CommitProbe::Open(path, log);
    if (!probe) {
      return probe.error();
    }
    probes.push_back(std::move(*probe));
  }
  // Every connection of this process to the file shares one mapping; the first one's will do.
  const volatile void* wal_index = MapWalIndex(probes.front()->Handle());
  if (wal_index != nullptr) {
    // A writer between the two copies makes one read fail; a header this build cannot read
    // (another version, not initialised) makes every read fail: then ask SQLite instead.
    constexpr int kAttempts = 100;
    bool readable = false;
    for (int i = 0; i < kAttempts && !readable; ++i) {
      readable = ReadWalIndexHeader(wal_index).has_value();
    }
    if (!readable) {
      wal_index = nullptr;
    }
  }
  if (wal_index == nullptr) {
    log->warn(
        "the commit count of {} is read with PRAGMA data_version (its WAL index cannot be read "
        "in shared memory): a few system calls per token-cache lookup",
        path);
  }
  return std::make_unique<CommitProbes>(std::move(probes), wal_index);
}

CommitProbes::CommitProbes(std::vector<std::unique_ptr<CommitProbe>> probes,
                           const volatile void* wal_index)
    : probes_(std::move(probes)), wal_index_(wal_index) {}

CommitProbes::~CommitProbes() = default;

std::optional<std::uint64_t> CommitProbes::Count() noexcept {
  // A free probe, starting at this thread's own; when every one is busy, wait for that one.
  static std::atomic<std::size_t> next_thread{0};
  thread_local const std::size_t mine = next_thread.fetch_add(1, std::memory_order_relaxed);
  const std::size_t first = mine % probes_.size();
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    CommitProbe& probe = *probes_[(first + i) % probes_.size()];
    std::unique_lock lock(probe.mutex, std::try_to_lock);
    if (lock.owns_lock()) {
      return CountWith(probe);
    }
  }
  CommitProbe& probe = *probes_[first];
  const std::lock_guard lock(probe.mutex);
  return CountWith(probe);
}

std::optional<std::uint64_t> CommitProbes::CountWith(CommitProbe& probe) noexcept {
  bool changed = false;
  if (wal_index_ != nullptr) {
    const std::optional<WalIndexHeader> header = ReadWalIndexHeader(wal_index_);
    if (!header) {
      return std::nullopt;
    }
    changed = probe.last_header != header;
    probe.last_header = header;
  } else {
    const std::optional<std::uint64_t> version = probe.DataVersion();
    if (!version) {
      return std::nullopt;
    }
    changed = probe.last_version != version;
    probe.last_version = version;
  }
  if (changed) {
    generation_.fetch_add(1, std::memory_order_seq_cst);
  }
  return generation_.load(std::memory_order_seq_cst);
}

}  // namespace amoauth::store_sqlite::detail
