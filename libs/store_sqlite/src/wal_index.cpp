#include "wal_index.hpp"

#include <atomic>
#include <bit>
#include <cstddef>

namespace amoauth::store_sqlite::detail {

namespace {

/// SQLite maps the WAL index in pages of this size (WALINDEX_PGSZ); a call to xShmMap for a
/// region already mapped must name the same size.
constexpr int kWalIndexPageSize = 32768;

constexpr std::size_t kWords = std::tuple_size_v<WalIndexHeader>;
constexpr std::size_t kIsInitByte = 12;    ///< offsetof(WalIndexHdr, isInit)
constexpr std::size_t kChecksumWord = 10;  ///< aCksum: over the words before it

/// walChecksumBytes over the header's first 40 bytes, native byte order (walIndexWriteHdr).
bool ChecksumMatches(const WalIndexHeader& h) noexcept {
  std::uint32_t s1 = 0;
  std::uint32_t s2 = 0;
  for (std::size_t i = 0; i < kChecksumWord; i += 2) {
    s1 += h[i] + s2;
    s2 += h[i + 1] + s1;
  }
  return s1 == h[kChecksumWord] && s2 == h[kChecksumWord + 1];
}

}  // namespace

// The words are written by SQLite (in this process on another thread, or in another process)
// with plain stores ordered by a barrier, and read here the same way; ThreadSanitizer would call
// that a race, as it would SQLite's own reads.
__attribute__((no_sanitize("thread"))) std::optional<WalIndexHeader> ReadWalIndexHeader(
    const volatile void* shm) noexcept {
  const auto* words = static_cast<const volatile std::uint32_t*>(shm);
  WalIndexHeader first{};
  WalIndexHeader second{};
  for (std::size_t i = 0; i < kWords; ++i) {
    first[i] = words[i];
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < kWords; ++i) {
    second[i] = words[kWords + i];
  }
  if (first != second || first[0] != kWalIndexVersion) {
    return std::nullopt;
  }
  const auto bytes = std::bit_cast<std::array<unsigned char, sizeof(WalIndexHeader)>>(first);
  if (bytes[kIsInitByte] == 0 || !ChecksumMatches(first)) {
    return std::nullopt;
  }
  return first;
}

const volatile void* MapWalIndex(sqlite3* db) noexcept {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr || file->pMethods->iVersion < 2 ||
      file->pMethods->xShmMap == nullptr) {
    return nullptr;
  }
  // Region 0, not extended: the mapping SQLite already made for this connection's reads.
  void volatile* region = nullptr;
  if (file->pMethods->xShmMap(file, 0, kWalIndexPageSize, 0, &region) != SQLITE_OK) {
    return nullptr;
  }
  return region;
}

}  // namespace amoauth::store_sqlite::detail
