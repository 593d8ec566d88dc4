#pragma once

// The store's commit count (service::CommitCounter), read by the I/O threads on every lookup of
// the token cache: it must move whenever any connection — the store's pool, or another process's
// on the same file — has committed, and cost next to nothing when nobody has.
// docs/architecture.md, "The token cache".

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "amoauth/core/result.hpp"

namespace amoauth::store_sqlite::detail {

class CommitProbe;

/// Connections of its own that never write (no busy handler), each with the last state of the
/// database it saw, behind one generation handed out as the count.
///
/// The state is the WAL-index header in shared memory (wal_index.hpp): read without a system
/// call. Where that cannot be read — a VFS without shared memory, or a format this build does not
/// know — it is PRAGMA data_version, a read transaction (two fcntl and an fstat) on the caller's
/// thread. Either way the I/O threads read at once, so there are a few connections: a thread
/// starts at one of its own and takes any free one.
///
/// Two connections' states cannot be compared, so a connection whose state differs from what it
/// saw last (or that looks for the first time) bumps the generation, under its own lock, before
/// the read returns. A commit C makes the first later read on every connection bump it; so a count
/// read after C differs from every count read before C, whichever connections read them, and
/// once every connection has looked since, all agree again.
class CommitProbes final {
 public:
  /// Opens `connections` connections (at least one) to the store's database at `path` (already
  /// created and in WAL mode). Errors: Errc::kStoreFailure (logged).
  [[nodiscard]] static Result<std::unique_ptr<CommitProbes>> Open(
      const std::string& path, std::size_t connections, std::shared_ptr<spdlog::logger> log);

  explicit CommitProbes(std::vector<std::unique_ptr<CommitProbe>> probes,
                        const volatile void* wal_index);
  CommitProbes(const CommitProbes&) = delete;
  CommitProbes& operator=(const CommitProbes&) = delete;
  ~CommitProbes();

  /// The count; nullopt when it cannot tell (a writer between the header's two copies, or
  /// SQLITE_BUSY while a checkpoint or recovery holds a lock): the caller then reads the store.
  [[nodiscard]] std::optional<std::uint64_t> Count() noexcept;

  /// true when the count is read from the WAL index (no system call), false on PRAGMA
  /// data_version.
  [[nodiscard]] bool ReadsWalIndex() const noexcept { return wal_index_ != nullptr; }

 private:
  /// REQUIRES: the probe's mutex held.
  std::optional<std::uint64_t> CountWith(CommitProbe& probe) noexcept;

  std::vector<std::unique_ptr<CommitProbe>> probes_;  ///< never resized
  const volatile void* const wal_index_;  ///< mapped by probes_' connections; nullptr: pragma
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace amoauth::store_sqlite::detail
