#pragma once

// SQLite's WAL-index header, read where SQLite keeps it: the start of the shared memory (the
// "-shm" file) that every connection to a WAL database maps, in this process and in others.
// SQLite's own readers compare this header with the copy they saw last to tell whether anyone
// committed in between (walIndexTryHdr in wal.c; that comparison is what moves PRAGMA
// data_version). Reading it here tells the same without the read transaction the pragma needs:
// no system call, no lock. The layout is SQLite's documented file format
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"), which every SQLite version that
// shares a database with another must keep; the version word is checked all the same.

#include <array>
#include <cstdint>
#include <optional>

#include <sqlite3.h>

namespace amoauth::store_sqlite::detail {

/// The 48-byte header: twelve native-endian 32-bit words (iVersion, unused, iChange,
/// isInit/bigEndCksum/szPage, mxFrame, nPage, aFrameCksum[2], aSalt[2], aCksum[2]).
using WalIndexHeader = std::array<std::uint32_t, 12>;

/// The WAL-index format this layout describes (WALINDEX_MAX_VERSION).
inline constexpr std::uint32_t kWalIndexVersion = 3007000;

/// Reads the header at `shm` as SQLite's readers do: the first copy, a memory barrier, the second
/// (a writer writes the second copy first), and only equal copies count. nullopt when a writer
/// is between the copies, the index is not initialised, its checksum does not match (a torn or
/// damaged header), or its version is not kWalIndexVersion; the caller then asks SQLite instead.
[[nodiscard]] std::optional<WalIndexHeader> ReadWalIndexHeader(const volatile void* shm) noexcept;

/// The start of the shared memory mapped for `db`'s main database, or nullptr when there is none
/// to read (a VFS without shared memory, or the index not created yet). `db` must be in WAL mode
/// and have read once (that opens the shared memory). Valid while `db` is open.
[[nodiscard]] const volatile void* MapWalIndex(sqlite3* db) noexcept;

}  // namespace amoauth::store_sqlite::detail
