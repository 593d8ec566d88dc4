// The SQLite store at scale: fills a fresh database with N connections through
// SqliteStore::Upsert, then times the queries the service runs against it (docs/benchmarks.md).
//
//   amoauth_store_bench [--accounts N] [--dir DIR] [--due-every K] [--finds N]
//                       [--repeats N] [--keep]
//
// Prints one result per line, `name value unit`, for people and for scripts/bench.sh.
// Exits 1 if any store call fails. Memory is the whole process's (/proc/self/status), so run
// nothing else in it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <unistd.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"
#include "amoauth/store_sqlite/sqlite_store.hpp"
#include "process_memory.hpp"

namespace {

namespace fs = std::filesystem;
using amoauth::Result;
using amoauth::core::Connection;
using amoauth::core::TimePoint;
using amoauth::store_sqlite::SqliteStore;
using Clock = std::chrono::steady_clock;

struct Options {
  std::int64_t accounts = 100'000;
  std::string dir;               ///< empty: a fresh directory under the system temp dir
  std::int64_t due_every = 100;  ///< every K-th account is due now; the rest later today
  std::int64_t finds = 2'000;    ///< point lookups timed after the fill
  int repeats = 20;              ///< runs of each listing query after the first (cold) one
  bool keep = false;             ///< leave the database behind
};

// Sizes of real amoCRM tokens: the access token is an RS256 JWT of about 900 characters, the
// refresh token a "def50200…" blob of about 700 (the sandbox's are the same order).
constexpr std::size_t kAccessTokenChars = 900;
constexpr std::size_t kRefreshTokenChars = 700;
constexpr std::int64_t kFirstAccountId = 40'000'000;
constexpr const char* kClientId = "2912780f-a1e4-4d5d-a069-ee01422d8bef";
constexpr std::size_t kDueBatch = 100;  ///< the scheduler's batch (ListDue limit)

Options ParseOptions(int argc, char** argv) {
  Options o;
  const CLI::Range kAtLeastOne(1, std::numeric_limits<int>::max());
  CLI::App app{"amoauth_store_bench: the SQLite store at scale (docs/benchmarks.md)"};
  app.add_option("--accounts", o.accounts, "connections to fill")->check(kAtLeastOne);
  app.add_option("--dir", o.dir, "where the database goes (default: a fresh temp dir)");
  app.add_option("--due-every", o.due_every, "every K-th account is due now")->check(kAtLeastOne);
  app.add_option("--finds", o.finds, "point lookups timed")->check(kAtLeastOne);
  app.add_option("--repeats", o.repeats, "runs of each listing query after the first")
      ->check(kAtLeastOne);
  app.add_flag("--keep", o.keep, "leave the database behind");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

using amoauth::bench::Memory;
using amoauth::bench::ReadMemory;

template <class T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    throw std::runtime_error(std::string(what) + ": " + r.error().message());
  }
  return std::move(*r);
}

Connection MakeConnection(std::int64_t index, const Options& o, TimePoint now) {
  using std::chrono::seconds;
  Connection c;
  c.account_id = kFirstAccountId + index;
  c.client_id = kClientId;
  c.base_domain = "account" + std::to_string(index) + ".amocrm.ru";
  c.api_domain = "api-b.amocrm.ru";
  c.user_id = std::to_string(8'000'000 + index);
  c.status = amoauth::core::ConnectionStatus::kActive;
  std::string access(kAccessTokenChars, 'a');
  std::string refresh(kRefreshTokenChars, 'r');
  const std::string tag = std::to_string(index);
  access.replace(0, tag.size(), tag);
  refresh.replace(0, tag.size(), tag);
  c.access_token = amoauth::Secret(std::move(access));
  c.refresh_token = amoauth::Secret(std::move(refresh));
  // Spread over the next day, like tokens refreshed around the clock; every due_every-th row is
  // already due (its refresh is late by up to an hour).
  const std::int64_t spread = (index * 7919) % 86'400;
  c.expires_at = now + seconds(spread + 300);
  c.last_refresh_at = now - seconds(86'400 - spread);
  c.next_refresh_at =
      index % o.due_every == 0 ? now - seconds(1 + index % 3600) : now + seconds(1 + spread);
  return c;
}

/// Microseconds since `start`.
double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

/// The first (cold) run, the median and the worst of the rest, in microseconds.
struct Timing {
  double first_us = 0;
  double median_us = 0;
  double max_us = 0;
  std::size_t rows = 0;
};

enum class Query {
  kListDue,  ///< the scheduler's batch: ListDue(now, kDueBatch)
  kListAll,  ///< GET /v1/accounts: List(), every row decrypted
};

/// Runs `query` once; the number of rows it returned.
boost::asio::awaitable<std::size_t> RunQuery(SqliteStore& store, Query query, TimePoint now) {
  switch (query) {
    case Query::kListDue:
      co_return Must(co_await store.ListDue(now, kDueBatch), "ListDue").size();
    case Query::kListAll:
      co_return Must(co_await store.List(), "List").size();
  }
  throw std::logic_error("unknown query");
}

boost::asio::awaitable<Timing> TimeQuery(SqliteStore& store,
                                         Query query,
                                         TimePoint now,
                                         int repeats) {
  Timing t;
  std::vector<double> runs;
  for (int i = 0; i <= repeats; ++i) {
    const auto start = Clock::now();
    const std::size_t rows = co_await RunQuery(store, query, now);
    const double us = MicrosSince(start);
    if (i == 0) {
      t.first_us = us;
      t.rows = rows;
    } else {
      runs.push_back(us);
    }
  }
  if (!runs.empty()) {
    std::sort(runs.begin(), runs.end());
    t.median_us = runs[runs.size() / 2];
    t.max_us = runs.back();
  }
  co_return t;
}

void Print(std::string_view name, double value, std::string_view unit) {
  std::printf("%-28s %14.1f %s\n", std::string(name).c_str(), value, std::string(unit).c_str());
}

void PrintTiming(std::string_view name, const Timing& t) {
  const std::string n(name);
  Print(n + "_first", t.first_us, "us");
  Print(n + "_median", t.median_us, "us");
  Print(n + "_max", t.max_us, "us");
  Print(n + "_rows", static_cast<double>(t.rows), "rows");
}

boost::asio::awaitable<void> Run(SqliteStore& store, const Options& o) {
  const TimePoint now = std::chrono::system_clock::now();
  const Memory before = ReadMemory();

  // Fill: one Upsert (one transaction) at a time, as the service writes.
  const auto fill_start = Clock::now();
  for (std::int64_t i = 0; i < o.accounts; ++i) {
    // Arguments are named locals, not temporaries in the co_await expression: GCC 12 destroys
    // some of those twice (a braced AccountKey here did).
    Connection connection = MakeConnection(i, o, now);
    std::vector<amoauth::service::Event> events;
    Must(co_await store.Upsert(std::move(connection), std::move(events)), "Upsert");
  }
  const double fill_us = MicrosSince(fill_start);
  const Memory after_fill = ReadMemory();
  Print("accounts", static_cast<double>(o.accounts), "rows");
  Print("insert_total", fill_us / 1e6, "s");
  Print("insert_rate", static_cast<double>(o.accounts) / (fill_us / 1e6), "rows/s");
  Print("insert_mean", fill_us / static_cast<double>(o.accounts), "us");

  // The scheduler's query: a batch of due rows, earliest first.
  PrintTiming("list_due_100", co_await TimeQuery(store, Query::kListDue, now, o.repeats));
  const Memory after_due = ReadMemory();
  // GET /v1/accounts and `amoauth accounts`: every row, decrypted.
  PrintTiming("list_all", co_await TimeQuery(store, Query::kListAll, now, std::min(o.repeats, 3)));

  // The read behind GET /v1/accounts/{id}/token: one row by key, decrypted.
  const auto find_start = Clock::now();
  for (std::int64_t i = 0; i < o.finds; ++i) {
    amoauth::core::AccountKey key{kFirstAccountId + (i * 7919) % o.accounts, kClientId};
    const auto found = Must(co_await store.Find(std::move(key)), "Find");
    if (!found) {
      throw std::runtime_error("Find: a stored row is missing");
    }
  }
  Print("find_mean", MicrosSince(find_start) / static_cast<double>(o.finds), "us");

  const Memory after = ReadMemory();
  Print("rss_start", static_cast<double>(before.rss_kib) / 1024.0, "MiB");
  Print("rss_after_fill", static_cast<double>(after_fill.rss_kib) / 1024.0, "MiB");
  Print("rss_after_list_due", static_cast<double>(after_due.rss_kib) / 1024.0, "MiB");
  Print("rss_end", static_cast<double>(after.rss_kib) / 1024.0, "MiB");
  Print("rss_peak", static_cast<double>(after.hwm_kib) / 1024.0, "MiB");
}

std::uintmax_t SizeOr0(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  return ec ? 0 : size;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  const bool own_dir = o.dir.empty();
  const fs::path dir =
      own_dir ? fs::temp_directory_path() / ("amoauth-store-bench-" + std::to_string(::getpid()))
              : fs::path(o.dir);
  fs::create_directories(dir);
  const fs::path db = dir / "bench.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(db.string() + suffix);
  }

  int status = 0;
  {
    boost::asio::io_context ioc;
    auto work = boost::asio::make_work_guard(ioc);
    std::thread runner([&ioc] { ioc.run(); });
    try {
      auto store = Must(
          SqliteStore::Open({.path = db.string()}, amoauth::crypto::MasterKey::Generate()), "Open");
      std::printf("store_bench: %lld accounts into %s (one due in %lld)\n",
                  static_cast<long long>(o.accounts),
                  db.c_str(),
                  static_cast<long long>(o.due_every));
      boost::asio::co_spawn(ioc, Run(*store, o), boost::asio::use_future).get();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "store_bench: %s\n", e.what());
      status = 1;
    }
    work.reset();
    runner.join();
  }

  // The store is closed: its last connection checkpointed the WAL into the main file.
  const auto bytes = SizeOr0(db) + SizeOr0(db.string() + "-wal");
  if (status == 0) {
    Print("db_size", static_cast<double>(bytes) / (1024.0 * 1024.0), "MiB");
    Print(
        "db_bytes_per_account", static_cast<double>(bytes) / static_cast<double>(o.accounts), "B");
  }
  if (!o.keep) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      fs::remove(db.string() + suffix);
    }
    if (own_dir) {
      fs::remove(dir);
    }
  }
  return status;
}
