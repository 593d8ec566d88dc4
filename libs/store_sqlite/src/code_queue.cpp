// SqliteStore as service::CodeQueue and service::ExchangeQuota's neighbour: the durable queue of
// codes that arrived without a person (table code_queue, docs/storage.md).
#include <algorithm>
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/net/run_blocking.hpp"
#include "amoauth/store_schema/stored_format.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "store_parts.hpp"

namespace amoauth::store_sqlite {
namespace {

using core::FormatIsoTime;
using core::ParseIsoTime;
using detail::Blob;
using detail::Database;
using detail::Statement;
using detail::StoreParts;
using detail::Transaction;
using store_schema::CodeAad;
using store_schema::kMaxQueuedCodes;

/// A claim ends no earlier than asked: stored in whole seconds, rounded up.
std::string CeilText(core::TimePoint t) {
  return FormatIsoTime(store_schema::CeilToSeconds(t));
}

// ?1 codeHash … ?10 nextAttemptAt. A repeated delivery of the same code changes nothing.
constexpr std::string_view kEnqueueCodeSql = R"sql(
INSERT INTO code_queue ("codeHash", "keyId", "code", "accountHost", "clientId", "source",
                        "receivedAt", "expiresAt", "attempts", "nextAttemptAt")
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9)
ON CONFLICT ("codeHash") DO NOTHING)sql";

// One statement picks and marks, under the write lock: of several claimers (threads, processes)
// each entry goes to one. ?1 now, ?2 claim_until, ?3 limit.
constexpr std::string_view kClaimCodesSql = R"sql(
UPDATE code_queue SET "attempts" = "attempts" + 1, "nextAttemptAt" = ?2
WHERE "id" IN (SELECT "id" FROM code_queue INDEXED BY code_queue_due
               WHERE "nextAttemptAt" <= ?1 ORDER BY "nextAttemptAt", "id" LIMIT ?3)
RETURNING "id", "codeHash", "keyId", "code", "accountHost", "clientId", "source", "receivedAt",
          "expiresAt", "attempts", "nextAttemptAt", "lastError")sql";

constexpr std::string_view kDeleteCodeSql = R"sql(DELETE FROM code_queue WHERE "id" = ?1)sql";

constexpr std::string_view kRetryCodeSql =
    R"sql(UPDATE code_queue SET "lastError" = ?2, "nextAttemptAt" = ?3 WHERE "id" = ?1)sql";

constexpr std::string_view kCountCodesSql = R"sql(SELECT count(*) FROM code_queue)sql";

Result<bool> EnqueueCode(Database& db, const StoreParts& parts, const service::QueuedCode& c) {
  {
    auto count = Statement::Prepare(db, kCountCodesSql);
    if (!count) {
      return Result<bool>(boost::system::in_place_error, count.error());
    }
    auto row = count->Step();
    if (!row) {
      return Result<bool>(boost::system::in_place_error, row.error());
    }
    if (count->Int(0) >= kMaxQueuedCodes) {
      parts.log->warn(
          "refusing a hook code: {} are queued already (limit {})", count->Int(0), kMaxQueuedCodes);
      return Result<bool>(boost::system::in_place_error, Fail(Errc::kBusy));
    }
  }
  const std::string code_hash = crypto::Sha256Hex(c.code.Reveal());
  const std::string sealed = crypto::Seal(*parts.key, c.code.Reveal(), CodeAad(code_hash));
  auto stmt = Statement::Prepare(db, kEnqueueCodeSql);
  if (!stmt) {
    return Result<bool>(boost::system::in_place_error, stmt.error());
  }
  if (auto bound = stmt->BindAll(std::string_view(code_hash),
                                 std::string_view(parts.key->Id()),
                                 Blob{sealed},
                                 std::string_view(c.account_host),
                                 std::string_view(c.client_id),
                                 service::ToString(c.source),
                                 FormatIsoTime(c.received_at),
                                 FormatIsoTime(c.expires_at),
                                 FormatIsoTime(c.next_attempt_at));
      !bound) {
    return Result<bool>(boost::system::in_place_error, bound.error());
  }
  if (auto done = stmt->Run(); !done) {
    return Result<bool>(boost::system::in_place_error, done.error());
  }
  return db.Changes() == 1;
}

/// One RETURNING row of kClaimCodesSql. A code that does not open (another master key, a
/// tampered row) comes back with an empty code: the worker gives it up, and it does not block
/// the queue.
Result<service::QueuedCode> ReadClaimed(const StoreParts& parts, const Statement& row) {
  service::QueuedCode c;
  c.id = row.Int(0);
  const std::string code_hash = row.Text(1);
  const std::string key_id = row.Text(2);
  if (const auto* key = crypto::KeyById(key_id, *parts.key, parts.previous_key)) {
    if (auto plain = crypto::Open(*key, row.BlobAt(3), CodeAad(code_hash))) {
      c.code = Secret(std::move(*plain));
    }
  }
  if (c.code.Empty()) {
    parts.log->error("code_queue row id={} does not decrypt (another master key, or tampered)",
                     c.id);
  }
  c.account_host = row.Text(4);
  c.client_id = row.Text(5);
  c.source = row.Text(6) == service::ToString(service::CodeSource::kWidget)
                 ? service::CodeSource::kWidget
                 : service::CodeSource::kExchange;
  const auto received = ParseIsoTime(row.Text(7));
  const auto expires = ParseIsoTime(row.Text(8));
  c.attempts = static_cast<int>(row.Int(9));
  const auto next = ParseIsoTime(row.Text(10));
  c.last_error = row.Text(11);
  if (!received || !expires || !next) {
    parts.log->error("code_queue row id={} has a malformed time", c.id);
    return Fail(Errc::kStoreFailure);
  }
  c.received_at = *received;
  c.expires_at = *expires;
  c.next_attempt_at = *next;
  return c;
}

Result<std::vector<service::QueuedCode>> ClaimCodes(Database& db,
                                                    const StoreParts& parts,
                                                    core::TimePoint now,
                                                    core::TimePoint claim_until,
                                                    std::size_t limit) {
  Transaction tx(db);
  if (auto begun = tx.Begin(); !begun) {
    return begun.error();
  }
  std::vector<service::QueuedCode> claimed;
  {
    auto stmt = Statement::Prepare(db, kClaimCodesSql);
    if (!stmt) {
      return stmt.error();
    }
    const auto capped = static_cast<std::int64_t>(std::min<std::size_t>(limit, 1'000'000));
    if (auto bound = stmt->BindAll(FormatIsoTime(now), CeilText(claim_until), capped); !bound) {
      return bound.error();
    }
    for (;;) {
      auto row = stmt->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      auto entry = ReadClaimed(parts, *stmt);
      if (!entry) {
        return entry.error();  // rolls the claim back: the entry stays due
      }
      claimed.push_back(std::move(*entry));
    }
  }
  if (auto committed = tx.Commit(); !committed) {
    return committed.error();
  }
  std::sort(claimed.begin(), claimed.end(), [](const auto& a, const auto& b) {
    return a.received_at != b.received_at ? a.received_at < b.received_at : a.id < b.id;
  });
  return claimed;
}

Result<void> DeleteCode(Database& db, std::int64_t id) {
  auto stmt = Statement::Prepare(db, kDeleteCodeSql);
  if (!stmt) {
    return stmt.error();
  }
  if (auto bound = stmt->Bind(1, id); !bound) {
    return bound.error();
  }
  return stmt->Run();
}

Result<void> GiveUpCode(Database& db,
                        const StoreParts& parts,
                        std::int64_t id,
                        const std::vector<service::Event>& events,
                        core::TimePoint now) {
  // The code goes and the backend hears why, together or not at all.
  Transaction tx(db);
  if (auto begun = tx.Begin(); !begun) {
    return begun.error();
  }
  if (auto deleted = DeleteCode(db, id); !deleted) {
    return deleted.error();
  }
  if (db.Changes() == 1) {  // a second report of the same end sends nothing twice
    const auto whole_seconds = std::chrono::time_point_cast<core::TimePoint::duration>(
        std::chrono::floor<std::chrono::seconds>(now));
    if (auto queued = parts.insert_events(db, events, whole_seconds); !queued) {
      return queued.error();
    }
  }
  return tx.Commit();
}

Result<void> RetryCode(Database& db,
                       std::int64_t id,
                       const std::string& error,
                       core::TimePoint next_attempt_at) {
  auto stmt = Statement::Prepare(db, kRetryCodeSql);
  if (!stmt) {
    return stmt.error();
  }
  if (auto bound = stmt->BindAll(id, std::string_view(error), CeilText(next_attempt_at)); !bound) {
    return bound.error();
  }
  return stmt->Run();
}

Result<std::size_t> CountCodes(Database& db) {
  auto stmt = Statement::Prepare(db, kCountCodesSql);
  if (!stmt) {
    return stmt.error();
  }
  auto row = stmt->Step();
  if (!row) {
    return row.error();
  }
  return static_cast<std::size_t>(stmt->Int(0));
}

}  // namespace

// Each method hands a named local to RunBlocking (GCC 12: no lambda inside the co_await).

service::Task<Result<bool>> SqliteStore::Enqueue(service::QueuedCode code) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), code = std::move(code)] {
    auto run = [&](Database& db) { return EnqueueCode(db, parts, code); };
    return detail::RunOnConnection(parts, "enqueue code", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<std::vector<service::QueuedCode>>> SqliteStore::ClaimDueCodes(
    core::TimePoint now, core::TimePoint claim_until, std::size_t limit) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), now, claim_until, limit] {
    auto run = [&](Database& db) { return ClaimCodes(db, parts, now, claim_until, limit); };
    return detail::RunOnConnection(parts, "claim codes", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::Finish(std::int64_t id) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), id] {
    auto run = [&](Database& db) { return DeleteCode(db, id); };
    return detail::RunOnConnection(parts, "finish code", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::Retry(std::int64_t id,
                                               std::string error,
                                               core::TimePoint next_attempt_at) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), id, error = std::move(error), next_attempt_at] {
    auto run = [&](Database& db) { return RetryCode(db, id, error, next_attempt_at); };
    return detail::RunOnConnection(parts, "retry code", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::GiveUp(std::int64_t id,
                                                std::vector<service::Event> events,
                                                core::TimePoint now) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), id, events = std::move(events), now] {
    auto run = [&](Database& db) { return GiveUpCode(db, parts, id, events, now); };
    return detail::RunOnConnection(parts, "give up code", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<std::size_t>> SqliteStore::CountQueued() {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts)] {
    auto run = [](Database& db) { return CountCodes(db); };
    return detail::RunOnConnection(parts, "count codes", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

}  // namespace amoauth::store_sqlite
