// SqliteStore as service::ExchangeQuota: amoCRM's one exchange_api_key call per 5 minutes per
// (user, integration), held across every process on the file (table exchange_quota).
#include <chrono>
#include <optional>
#include <string>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/net/run_blocking.hpp"
#include "amoauth/store_schema/stored_format.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "store_parts.hpp"

namespace amoauth::store_sqlite {
namespace {

using detail::Database;
using detail::Statement;
using detail::StoreParts;

// One statement, so one write transaction: of any number of processes racing for the slot
// exactly one takes it (inserts it, or moves an old enough takenAt); the others' DO UPDATE is
// vetoed by the WHERE and RETURNING gives them no row. ?1 subject, ?2 now, ?3 now - interval.
constexpr std::string_view kTakeSql = R"sql(
INSERT INTO exchange_quota ("subjectHash", "takenAt") VALUES (?1, ?2)
ON CONFLICT ("subjectHash") DO UPDATE SET "takenAt" = excluded."takenAt"
WHERE exchange_quota."takenAt" <= ?3
RETURNING "takenAt")sql";

constexpr std::string_view kTakenAtSql =
    R"sql(SELECT "takenAt" FROM exchange_quota WHERE "subjectHash" = ?1)sql";

// Only the take that ?2 made: a slot taken again since is someone else's.
constexpr std::string_view kGiveBackSql =
    R"sql(DELETE FROM exchange_quota WHERE "subjectHash" = ?1 AND "takenAt" = ?2)sql";

using Answer = Result<std::optional<core::TimePoint>>;

Answer TakeSlot(Database& db,
                const StoreParts& parts,
                const std::string& subject,
                core::TimePoint now,
                core::Seconds interval) {
  if (auto keys = store_schema::CheckKeys({subject}); !keys) {
    return keys.error();
  }
  // Stored in whole seconds, rounded down: a slot is then held at least `interval` (it may be
  // up to a second longer, never shorter).
  const core::TimePoint whole_now = store_schema::FloorToSeconds(now);
  {
    auto take = Statement::Prepare(db, kTakeSql);
    if (!take) {
      return take.error();
    }
    if (auto bound = take->BindAll(std::string_view(subject),
                                   core::FormatIsoTime(whole_now),
                                   core::FormatIsoTime(whole_now - interval));
        !bound) {
      return bound.error();
    }
    auto row = take->Step();
    if (!row) {
      return row.error();
    }
    const bool taken = *row;
    if (auto finished = take->Run(); !finished) {  // completes the autocommit transaction
      return finished.error();
    }
    if (taken) {
      return std::optional<core::TimePoint>();
    }
  }
  auto read = Statement::Prepare(db, kTakenAtSql);
  if (!read) {
    return read.error();
  }
  if (auto bound = read->Bind(1, std::string_view(subject)); !bound) {
    return bound.error();
  }
  auto row = read->Step();
  if (!row) {
    return row.error();
  }
  const auto taken_at = *row ? core::ParseIsoTime(read->Text(0)) : std::nullopt;
  if (!taken_at) {
    parts.log->error("exchange_quota row is missing or has a malformed time");
    return Fail(Errc::kStoreFailure);
  }
  return std::optional<core::TimePoint>(*taken_at + interval);
}

Result<void> GiveBackSlot(Database& db, const std::string& subject, core::TimePoint taken_at) {
  auto give = Statement::Prepare(db, kGiveBackSql);
  if (!give) {
    return give.error();
  }
  if (auto bound = give->BindAll(std::string_view(subject),
                                 core::FormatIsoTime(store_schema::FloorToSeconds(taken_at)));
      !bound) {
    return bound.error();
  }
  return give->Run();
}

}  // namespace

service::Task<Answer> SqliteStore::TryTake(std::string subject_hash,
                                           core::TimePoint now,
                                           core::Seconds interval) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), subject = std::move(subject_hash), now, interval] {
    auto run = [&](Database& db) { return TakeSlot(db, parts, subject, now, interval); };
    return detail::RunOnConnection(parts, "take exchange quota", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

service::Task<Result<void>> SqliteStore::GiveBack(std::string subject_hash,
                                                  core::TimePoint taken_at) {
  StoreParts parts = Parts();
  boost::asio::thread_pool& pool = *parts.pool;
  auto work = [parts = std::move(parts), subject = std::move(subject_hash), taken_at] {
    auto run = [&](Database& db) { return GiveBackSlot(db, subject, taken_at); };
    return detail::RunOnConnection(parts, "give back exchange quota", run);
  };
  co_return co_await net::RunBlocking(pool, std::move(work));
}

}  // namespace amoauth::store_sqlite
