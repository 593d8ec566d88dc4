#include "amoauth/store_pg/pg_store.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/digest.hpp"
#include "amoauth/net/run_blocking.hpp"
#include "amoauth/store_schema/stored_format.hpp"
#include "pg_connection.hpp"
#include "pg_migrations.hpp"
#include "pg_sql.hpp"
#include "token_listener.hpp"

namespace amoauth::store_pg {

namespace {

namespace sql = detail::sql;
using core::FormatIsoTime;
using core::ParseIsoTime;
using detail::Bytes;
using detail::Connection;
using detail::Params;
using detail::Rows;
using detail::Transaction;
using store_schema::CeilToSeconds;
using store_schema::FloorToSeconds;
using store_schema::TokenAad;
using store_schema::TokenKind;

/// Whether a call may run again on a fresh connection after the first one was lost mid-call,
/// when nobody can tell whether the server committed it. Only for calls whose second run gives
/// the same outcome as the first: reads, and writes idempotent by construction (each says why).
enum class Rerun { kSafe, kNever };

/// Serialization failures and deadlocks roll the whole transaction back, so running it again is
/// always safe; a few times, then Errc::kBusy.
constexpr int kAttempts = 3;

/// An error as a Result<T>. Needed for T = bool: bool is constructible from an error_code
/// (explicit operator bool), so result<bool>'s implicit error constructor is disabled.
template <class T>
Result<T> ErrorAs(const boost::system::error_code& ec) {
  return Result<T>(boost::system::in_place_error, ec);
}

/// A LIMIT parameter: a signed 64-bit value; anything larger is "no limit" anyway.
std::int64_t SqlLimit(std::size_t limit) {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(limit, kMax));
}

/// A nullable time column: "never" (core::TimePoint{}) is NULL. Rounded down like every time.
std::optional<std::string> NullableTime(core::TimePoint t) {
  const core::TimePoint stored = FloorToSeconds(t);
  if (stored == core::TimePoint{}) {
    return std::nullopt;
  }
  return FormatIsoTime(stored);
}

std::optional<core::TimePoint> ReadNullableTime(const Rows& rows, int row, int column) {
  if (rows.IsNull(row, column)) {
    return core::TimePoint{};
  }
  return ParseIsoTime(rows.Text(row, column));
}

/// The "store" logger: the application's if it registered one, else a copy of the default.
std::shared_ptr<spdlog::logger> StoreLogger() {
  if (auto existing = spdlog::get("store")) {
    return existing;
  }
  return spdlog::default_logger()->clone("store");
}

/// A connection's tokens as stored: sealed, the refresh token NULL when empty.
struct SealedTokens {
  std::string access;
  std::optional<std::string> refresh;
};

}  // namespace

struct PgStore::Impl {
  Impl(PgOptions opts,
       crypto::MasterKey master_key,
       std::shared_ptr<spdlog::logger> logger,
       std::vector<Connection> conns,
       int version)
      : options(std::move(opts)),
        key(std::move(master_key)),
        log(std::move(logger)),
        connections(std::move(conns)),
        schema_version(version),
        pool(connections.size()) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Lets queued work finish, then the threads end; the listener stops, the connections close.
  ~Impl() {
    pool.join();
    const std::lock_guard lock(listener_mutex);
    listener.reset();
  }

  /// The connection of the calling pool thread: each thread claims one on its first job and
  /// keeps it, so no connection is ever used by two threads.
  Connection* ThisThreadConnection() {
    thread_local const Impl* owner = nullptr;
    thread_local Connection* connection = nullptr;
    if (owner != this) {
      const std::size_t slot = next_connection.fetch_add(1, std::memory_order_relaxed);
      if (slot >= connections.size()) {
        return nullptr;  // more threads than connections: a bug, never by construction
      }
      owner = this;
      connection = &connections[slot];
    }
    return connection;
  }

  /// Runs `work(conn)` on this pool thread's connection: the one guard every call goes through.
  /// A connection found broken is reset first (after a PostgreSQL restart the first call on each
  /// connection reconnects). A call that lost its connection half-way fails with kStoreFailure,
  /// unless `rerun` says running it again is safe. Serialization failures and deadlocks are
  /// rerun a few times (PostgreSQL rolled everything back), then kBusy. A unique violation is
  /// kConflict. Exceptions are logged and become kStoreFailure. Never throws.
  template <class Work>
  auto Run(std::string_view operation, Rerun rerun, Work& work) noexcept
      -> std::invoke_result_t<Work&, Connection&> {
    using R = std::invoke_result_t<Work&, Connection&>;
    try {
      Connection* conn = ThisThreadConnection();
      if (conn == nullptr) {
        log->error("{}: no connection for this thread", operation);
        return R(boost::system::in_place_error, Fail(Errc::kStoreFailure));
      }
      for (int attempt = 1;; ++attempt) {
        if (conn->Broken()) {
          if (auto reset = conn->Reset(); !reset) {
            return R(boost::system::in_place_error, reset.error());
          }
        }
        R result = work(*conn);
        if (result) {
          return result;
        }
        const std::string state = conn->LastSqlState();
        const bool rolled_back =
            state == detail::kSerializationFailure || state == detail::kDeadlockDetected;
        const bool lost = conn->Broken();
        if (attempt < kAttempts && (rolled_back || (lost && rerun == Rerun::kSafe))) {
          log->info("{}: running again ({})",
                    operation,
                    rolled_back ? "PostgreSQL rolled it back" : "on a new connection");
          continue;
        }
        if (rolled_back) {
          return R(boost::system::in_place_error, Fail(Errc::kBusy));
        }
        if (state == detail::kUniqueViolation) {
          return R(boost::system::in_place_error, Fail(Errc::kConflict));
        }
        return result;
      }
    } catch (const std::exception& e) {
      log->error("{}: unexpected exception: {}", operation, e.what());
    } catch (...) {
      log->error("{}: unexpected exception", operation);
    }
    return R(boost::system::in_place_error, Fail(Errc::kStoreFailure));
  }

  /// Runs `method(conn, args…)` on the pool through Run; the caller's executor never blocks.
  /// The work is a named local handed to RunBlocking (GCC 12: no lambda inside the co_await).
  template <class Method, class... Args>
  auto Submit(std::string_view operation, Rerun rerun, Method method, Args... args)
      -> service::Task<std::invoke_result_t<Method, Impl*, Connection&, const Args&...>> {
    auto work = [this, operation, rerun, method, args...] {
      auto call = [&](Connection& conn) { return std::invoke(method, this, conn, args...); };
      return Run(operation, rerun, call);
    };
    co_return co_await net::RunBlocking(pool, std::move(work));
  }

  // ---- amo_tokens -----------------------------------------------------------------------------

  [[nodiscard]] SealedTokens SealTokens(const core::Connection& c) const {
    SealedTokens sealed;
    sealed.access = crypto::Seal(
        key, c.access_token.Reveal(), TokenAad(c.account_id, c.client_id, TokenKind::kAccess));
    if (!c.refresh_token.Empty()) {
      sealed.refresh = crypto::Seal(
          key, c.refresh_token.Reveal(), TokenAad(c.account_id, c.client_id, TokenKind::kRefresh));
    }
    return sealed;
  }

  [[nodiscard]] core::TimePoint WriteTime() const {
    const core::Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
    return FloorToSeconds(clock.Now());
  }

  /// The parameters of sql::kUpsertSql (`now` is createdAt, used by a new row only, and updatedAt)
  /// or, without createdAt, the first 16 of sql::kReplaceSql.
  [[nodiscard]] Params ConnectionParams(const core::Connection& c,
                                        const SealedTokens& sealed,
                                        core::TimePoint now,
                                        bool with_created_at) const {
    const std::string now_text = FormatIsoTime(now);
    Params p;
    p.Int(c.account_id)
        .Text(c.client_id)
        .Text(c.base_domain)
        .Text(c.api_domain)
        .Text(c.user_id)
        .Text(core::ToString(c.status))
        .Text(key.Id())
        .Binary(Bytes{sealed.access})
        .NullableBinary(sealed.refresh)
        .Text(FormatIsoTime(c.expires_at));
    if (with_created_at) {
      p.Text(now_text);
    }
    p.Text(now_text)
        .NullableText(NullableTime(c.last_refresh_at))
        .NullableText(NullableTime(c.next_refresh_at))
        .Int(c.refresh_failures)
        .Text(c.last_error)
        .NullableText(NullableTime(c.last_error_at));
    return p;
  }

  /// The row as stored, from what was written plus the RETURNING "version", "createdAt" row.
  [[nodiscard]] Result<core::Connection> StoredRow(core::Connection c,
                                                   const Rows& returned,
                                                   core::TimePoint now) const {
    const auto created = ParseIsoTime(returned.Text(0, 1));
    if (!created) {
      log->error("amo_tokens row accountId={} clientId={} has a malformed createdAt",
                 c.account_id,
                 c.client_id);
      return Fail(Errc::kStoreFailure);
    }
    c.version = returned.Int(0, 0);
    c.created_at = *created;
    c.expires_at = FloorToSeconds(c.expires_at);
    c.updated_at = now;
    c.last_refresh_at = FloorToSeconds(c.last_refresh_at);
    c.next_refresh_at = FloorToSeconds(c.next_refresh_at);
    c.last_error_at = FloorToSeconds(c.last_error_at);
    return c;
  }

  /// The key being retired during a rotation (reads only), or nullptr.
  [[nodiscard]] const crypto::MasterKey* PreviousKey() const {
    return options.previous_key ? &*options.previous_key : nullptr;
  }

  [[nodiscard]] Result<std::string> OpenToken(const crypto::MasterKey& row_key,
                                              const Rows& rows,
                                              int row,
                                              int column,
                                              const core::Connection& c,
                                              TokenKind kind) const {
    auto plain =
        crypto::Open(row_key, rows.Binary(row, column), TokenAad(c.account_id, c.client_id, kind));
    if (!plain) {
      log->error(
          "amo_tokens row accountId={} clientId={}: the {} token does not decrypt "
          "(tampered, or moved from another row)",
          c.account_id,
          c.client_id,
          kind == TokenKind::kAccess ? "access" : "refresh");
      return Fail(Errc::kCryptoFailure);
    }
    return std::move(*plain);
  }

  /// Row `row` of a query reading the token columns in their order, decrypted.
  [[nodiscard]] Result<core::Connection> ReadConnection(const Rows& rows, int row) const {
    core::Connection c;
    c.account_id = rows.Int(row, 0);
    c.client_id = rows.Text(row, 1);
    c.base_domain = rows.Text(row, 2);
    c.api_domain = rows.Text(row, 3);
    c.user_id = rows.Text(row, 4);
    const std::string status = rows.Text(row, 5);
    const auto parsed_status = core::ParseConnectionStatus(status);
    if (!parsed_status) {
      log->error("amo_tokens row accountId={} clientId={} has unknown status '{}'",
                 c.account_id,
                 c.client_id,
                 status);
      return Fail(Errc::kStoreFailure);
    }
    c.status = *parsed_status;
    const std::string key_id = rows.Text(row, 6);
    const crypto::MasterKey* row_key = crypto::KeyById(key_id, key, PreviousKey());
    if (row_key == nullptr) {
      log->error(
          "amo_tokens row accountId={} clientId={} was written under another master key "
          "(row keyId {}, current keyId {})",
          c.account_id,
          c.client_id,
          key_id,
          key.Id());
      return Fail(Errc::kCryptoFailure);
    }
    auto access = OpenToken(*row_key, rows, row, 7, c, TokenKind::kAccess);
    if (!access) {
      return access.error();
    }
    c.access_token = Secret(std::move(*access));
    if (!rows.IsNull(row, 8)) {
      auto refresh = OpenToken(*row_key, rows, row, 8, c, TokenKind::kRefresh);
      if (!refresh) {
        return refresh.error();
      }
      c.refresh_token = Secret(std::move(*refresh));
    }
    const auto expires = ParseIsoTime(rows.Text(row, 9));
    const auto created = ParseIsoTime(rows.Text(row, 11));
    const auto updated = ParseIsoTime(rows.Text(row, 12));
    const auto last_refresh = ReadNullableTime(rows, row, 13);
    const auto next_refresh = ReadNullableTime(rows, row, 14);
    const auto last_error_at = ReadNullableTime(rows, row, 17);
    if (!expires || !created || !updated || !last_refresh || !next_refresh || !last_error_at) {
      log->error("amo_tokens row accountId={} clientId={} has a malformed time",
                 c.account_id,
                 c.client_id);
      return Fail(Errc::kStoreFailure);
    }
    c.expires_at = *expires;
    c.version = rows.Int(row, 10);
    c.created_at = *created;
    c.updated_at = *updated;
    c.last_refresh_at = *last_refresh;
    c.next_refresh_at = *next_refresh;
    c.refresh_failures = static_cast<int>(rows.Int(row, 15));
    c.last_error = rows.Text(row, 16);
    c.last_error_at = *last_error_at;
    return c;
  }

  Result<std::vector<core::Connection>> ReadAll(const Rows& rows) const {
    std::vector<core::Connection> out;
    out.reserve(static_cast<std::size_t>(rows.Count()));
    for (int row = 0; row < rows.Count(); ++row) {
      auto c = ReadConnection(rows, row);
      if (!c) {
        return c.error();
      }
      out.push_back(std::move(*c));
    }
    return out;
  }

  /// Appends `events` to webhook_outbox, due at `now`. Inside the caller's transaction.
  static Result<void> InsertEvents(Connection& conn,
                                   const std::vector<service::Event>& events,
                                   core::TimePoint now) {
    if (auto keys = store_schema::CheckEventKeys(events); !keys) {
      return keys.error();
    }
    const std::string now_text = FormatIsoTime(now);
    for (const auto& event : events) {
      if (event.deliver) {
        Params p;
        p.Text(event.type).Text(event.body).Text(now_text);
        if (auto done = conn.Exec("enqueue event", sql::kEnqueueSql, p); !done) {
          return done.error();
        }
      }
      // The account's history (kAccountHistoryKept newest entries per row), delivered or not.
      if (event.account_id != 0) {
        Params h;
        h.Int(event.account_id)
            .Text(event.client_id)
            .Text(event.type)
            .Text(event.body)
            .Text(now_text);
        if (auto done = conn.Exec("record account event", sql::kInsertHistorySql, h); !done) {
          return done.error();
        }
        Params trim;
        trim.Int(event.account_id)
            .Text(event.client_id)
            .Int(static_cast<std::int64_t>(service::AccountHistory::kAccountHistoryKept));
        if (auto done = conn.Exec("trim account events", sql::kTrimHistorySql, trim); !done) {
          return done.error();
        }
      }
    }
    return {};
  }

  Result<std::vector<service::AccountEvent>> ListAccountEvents(Connection& conn,
                                                               const std::int64_t& account_id,
                                                               const std::size_t& limit) {
    Params p;
    p.Int(account_id).Int(SqlLimit(limit));
    auto rows = conn.Exec("list account events", sql::kListHistorySql, p);
    if (!rows) {
      return rows.error();
    }
    std::vector<service::AccountEvent> out;
    for (int row = 0; row < rows->Count(); ++row) {
      service::AccountEvent event;
      event.id = rows->Int(row, 0);
      event.account_id = rows->Int(row, 1);
      event.client_id = rows->Text(row, 2);
      event.type = rows->Text(row, 3);
      event.body = rows->Text(row, 4);
      const auto created = ParseIsoTime(rows->Text(row, 5));
      if (!created) {
        log->error("account_events row id={} has a malformed time", event.id);
        return Fail(Errc::kStoreFailure);
      }
      event.created_at = *created;
      out.push_back(std::move(event));
    }
    return out;
  }

  /// Tells every instance's listener that the row changed, when the transaction commits.
  static Result<void> NotifyChanged(Connection& conn, const core::Connection& c) {
    Params p;
    p.Text(fmt::format("{}/{}", c.account_id, c.client_id));
    if (auto sent = conn.Exec("notify token change", sql::kNotifySql, p); !sent) {
      return sent.error();
    }
    return {};
  }

  /// Upsert or Replace: the statement, then (if it wrote) the events and the notification, all
  /// in one transaction. nullopt: Replace matched no row.
  Result<std::optional<core::Connection>> WriteToken(Connection& conn,
                                                     std::string_view sql,
                                                     const core::Connection& c,
                                                     std::optional<std::int64_t> expected_version,
                                                     const std::vector<service::Event>& events) {
    if (auto keys = store_schema::CheckKeys({c.client_id, c.base_domain}); !keys) {
      return keys.error();
    }
    const SealedTokens sealed = SealTokens(c);
    const core::TimePoint now = WriteTime();
    Params p = ConnectionParams(c, sealed, now, !expected_version.has_value());
    if (expected_version) {
      p.Int(*expected_version);
    }
    Transaction tx(conn);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    auto written = conn.Exec("write token row", sql, p);
    if (!written) {
      return written.error();
    }
    if (written->Count() == 0) {
      if (!expected_version) {
        log->error("upsert of accountId={} clientId={} returned no row", c.account_id, c.client_id);
        return Fail(Errc::kStoreFailure);
      }
      // Told apart in the same transaction; nothing was written and it rolls back.
      Params key_params;
      key_params.Int(c.account_id).Text(c.client_id);
      auto exists = conn.Exec("check token row", sql::kExistsSql, key_params);
      if (!exists) {
        return exists.error();
      }
      return Fail(exists->Count() > 0 ? Errc::kConflict : Errc::kNotFound);
    }
    auto stored = StoredRow(c, *written, now);
    if (!stored) {
      return stored.error();
    }
    // Only a write that happened is reported: a loser's events are never written.
    if (auto queued = InsertEvents(conn, events, now); !queued) {
      return queued.error();
    }
    if (auto notified = NotifyChanged(conn, c); !notified) {
      return notified.error();
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    return std::optional<core::Connection>(std::move(*stored));
  }

  Result<core::Connection> Upsert(Connection& conn,
                                  const core::Connection& c,
                                  const std::vector<service::Event>& events) {
    auto written = WriteToken(conn, sql::kUpsertSql, c, std::nullopt, events);
    if (!written) {
      return written.error();
    }
    return std::move(**written);
  }

  Result<core::Connection> Replace(Connection& conn,
                                   const core::Connection& c,
                                   std::int64_t expected_version,
                                   const std::vector<service::Event>& events) {
    auto written = WriteToken(conn, sql::kReplaceSql, c, expected_version, events);
    if (!written) {
      return written.error();
    }
    return std::move(**written);
  }

  Result<std::optional<core::Connection>> Find(Connection& conn, const core::AccountKey& k) {
    Params p;
    p.Int(k.account_id).Text(k.client_id);
    auto rows = conn.Exec("find token row", sql::kFindSql, p);
    if (!rows) {
      return rows.error();
    }
    if (rows->Count() == 0) {
      return std::optional<core::Connection>();
    }
    auto c = ReadConnection(*rows, 0);
    if (!c) {
      return c.error();
    }
    return std::optional<core::Connection>(std::move(*c));
  }

  Result<std::vector<core::Connection>> Select(Connection& conn,
                                               std::string_view what,
                                               std::string_view sql,
                                               const Params& p) {
    auto rows = conn.Exec(what, sql, p);
    if (!rows) {
      return rows.error();
    }
    return ReadAll(*rows);
  }

  Result<std::vector<core::Connection>> FindByAccount(Connection& conn, const std::int64_t& id) {
    Params p;
    p.Int(id);
    return Select(conn, "find token rows by account", sql::kFindByAccountSql, p);
  }

  Result<std::vector<core::Connection>> FindByDomain(Connection& conn, const std::string& domain) {
    Params p;
    p.Text(domain);
    return Select(conn, "find token rows by domain", sql::kFindByDomainSql, p);
  }

  Result<std::vector<core::Connection>> List(Connection& conn) {
    return Select(conn, "list token rows", sql::kListSql, Params());
  }

  Result<std::vector<core::Connection>> ListDue(Connection& conn,
                                                const core::TimePoint& now,
                                                const std::size_t& limit) {
    Params p;
    p.Text(core::ToString(core::ConnectionStatus::kActive))
        .Text(FormatIsoTime(now))
        .Int(SqlLimit(limit));
    return Select(conn, "list due token rows", sql::kListDueSql, p);
  }

  // ---- oauth_states ---------------------------------------------------------------------------

  Result<void> Put(Connection& conn,
                   const service::PendingState& state,
                   const core::TimePoint& now) {
    if (auto keys = store_schema::CheckKeys({state.state_hash}); !keys) {
      return keys.error();
    }
    Transaction tx(conn);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    Params purge;
    purge.Text(FormatIsoTime(now));  // expired at `now`: expires_at <= now, as Take
    if (auto done = conn.Exec(
            "purge expired states", "DELETE FROM oauth_states WHERE expires_at <= $1", purge);
        !done) {
      return done.error();
    }
    // Under READ COMMITTED two instances may both pass the count by one: a bound, not a quota.
    auto count = conn.Exec("count states", "SELECT count(*) FROM oauth_states");
    if (!count) {
      return count.error();
    }
    const std::int64_t pending = count->Int(0, 0);
    if (pending >= static_cast<std::int64_t>(options.max_pending_states)) {
      log->warn(
          "refusing a new OAuth state: {} pending (limit {})", pending, options.max_pending_states);
      if (auto committed = tx.Commit(); !committed) {  // keep the purge
        return committed.error();
      }
      return Fail(Errc::kBusy);
    }
    Params p;
    p.Text(state.state_hash)
        .Text(state.client_id)
        .Text(core::ToString(state.mode))
        .Text(FormatIsoTime(state.created_at))
        .Text(FormatIsoTime(state.expires_at))
        .Text(service::ToString(state.purpose))
        .Text(state.reference);
    auto inserted = conn.Exec("insert state",
                              "INSERT INTO oauth_states (state_hash, client_id, mode, created_at, "
                              "expires_at, purpose, flow_reference) "
                              "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                              "ON CONFLICT (state_hash) DO NOTHING",
                              p);
    if (!inserted) {
      return inserted.error();
    }
    if (inserted->Affected() != 1) {
      // States are random; a repeat is a bug upstream. Keep the first one.
      log->error("refusing a new OAuth state: its hash is already pending");
      return Fail(Errc::kConflict);
    }
    return tx.Commit();
  }

  /// One row of client_id, mode, created_at, expires_at, purpose, flow_reference; nullopt when
  /// there is none or it expired at `now`.
  Result<std::optional<service::PendingState>> ReadState(const Rows& rows,
                                                         const std::string& state_hash,
                                                         const core::TimePoint& now) {
    if (rows.Count() == 0) {
      return std::optional<service::PendingState>();
    }
    service::PendingState state;
    state.state_hash = state_hash;
    state.client_id = rows.Text(0, 0);
    const auto parsed_mode = core::ParseConsentMode(rows.Text(0, 1));
    const auto created = ParseIsoTime(rows.Text(0, 2));
    const auto expires = ParseIsoTime(rows.Text(0, 3));
    const auto purpose = service::ParseStatePurpose(rows.Text(0, 4));
    state.reference = rows.Text(0, 5);
    if (!parsed_mode || !created || !expires || !purpose) {
      log->error("oauth_states row for client {} is malformed", state.client_id);
      return Fail(Errc::kStoreFailure);
    }
    state.mode = *parsed_mode;
    state.purpose = *purpose;
    state.created_at = *created;
    state.expires_at = *expires;
    if (state.expires_at <= now) {
      return std::optional<service::PendingState>();  // expired: not returned
    }
    return std::optional<service::PendingState>(std::move(state));
  }

  Result<std::optional<service::PendingState>> Take(Connection& conn,
                                                    const std::string& state_hash,
                                                    const core::TimePoint& now) {
    // DELETE … RETURNING is one statement: of any number of instances taking the same state,
    // exactly one gets the row (the others wait for its row lock, then find it gone).
    Params p;
    p.Text(state_hash);
    auto rows =
        conn.Exec("take state",
                  "DELETE FROM oauth_states WHERE state_hash = $1 "
                  "RETURNING client_id, mode, created_at, expires_at, purpose, flow_reference",
                  p);
    if (!rows) {
      return rows.error();
    }
    return ReadState(*rows, state_hash, now);
  }

  Result<std::optional<service::PendingState>> Peek(Connection& conn,
                                                    const std::string& state_hash,
                                                    const core::TimePoint& now) {
    Params p;
    p.Text(state_hash);
    auto rows = conn.Exec("peek state",
                          "SELECT client_id, mode, created_at, expires_at, purpose, flow_reference "
                          "FROM oauth_states WHERE state_hash = $1",
                          p);
    if (!rows) {
      return rows.error();
    }
    return ReadState(*rows, state_hash, now);
  }

  // ---- integrations ---------------------------------------------------------------------------

  Result<void> AddIntegration(Connection& conn, const service::ExternalIntegration& integration) {
    if (auto keys = store_schema::CheckKeys({integration.client_id, integration.state_hash});
        !keys) {
      return keys.error();
    }
    const std::string sealed = crypto::Seal(
        key, integration.client_secret.Reveal(), store_schema::SecretAad(integration.client_id));
    Params p;
    p.Text(integration.client_id)
        .Text(key.Id())
        .Binary(Bytes{sealed})
        .Text(integration.state_hash)
        .Text(FormatIsoTime(integration.created_at));
    // No conflict target: either unique key (client id, state) makes it a repeat.
    auto inserted = conn.Exec("add integration",
                              fmt::format("INSERT INTO integrations ({}) VALUES ($1, $2, $3, $4, "
                                          "$5) ON CONFLICT DO NOTHING",
                                          sql::kIntegrationColumns),
                              p);
    if (!inserted) {
      return inserted.error();
    }
    if (inserted->Affected() != 1) {
      return Fail(Errc::kSecretsAlreadyReceived);
    }
    return {};
  }

  Result<std::size_t> ForgetUnusedIntegrations(Connection& conn, core::TimePoint created_before) {
    Params p;
    p.Text(FormatIsoTime(created_before));
    auto deleted = conn.Exec("forget unused integrations",
                             "DELETE FROM integrations i WHERE i.\"createdAt\" < $1 AND NOT EXISTS "
                             "(SELECT 1 FROM amo_tokens t WHERE t.\"clientId\" = i.\"clientId\")",
                             p);
    if (!deleted) {
      return deleted.error();
    }
    return static_cast<std::size_t>(deleted->Affected());
  }

  Result<service::ExternalIntegration> ReadIntegration(const Rows& rows, int row) {
    service::ExternalIntegration integration;
    integration.client_id = rows.Text(row, 0);
    const crypto::MasterKey* row_key = crypto::KeyById(rows.Text(row, 1), key, PreviousKey());
    if (row_key == nullptr) {
      log->error("integrations row clientId={} was written under another master key",
                 integration.client_id);
      return Fail(Errc::kCryptoFailure);
    }
    auto secret =
        crypto::Open(*row_key, rows.Binary(row, 2), store_schema::SecretAad(integration.client_id));
    if (!secret) {
      log->error("integrations row clientId={}: the client secret does not decrypt",
                 integration.client_id);
      return Fail(Errc::kCryptoFailure);
    }
    integration.client_secret = Secret(std::move(*secret));
    integration.state_hash = rows.Text(row, 3);
    const auto created = ParseIsoTime(rows.Text(row, 4));
    if (!created) {
      log->error("integrations row clientId={} has a malformed createdAt", integration.client_id);
      return Fail(Errc::kStoreFailure);
    }
    integration.created_at = *created;
    return integration;
  }

  Result<std::vector<service::ExternalIntegration>> SelectIntegrations(Connection& conn,
                                                                       std::string_view where,
                                                                       const Params& p) {
    auto rows = conn.Exec("read integrations",
                          fmt::format("SELECT {} FROM integrations {} ORDER BY \"clientId\"",
                                      sql::kIntegrationColumns,
                                      where),
                          p);
    if (!rows) {
      return rows.error();
    }
    std::vector<service::ExternalIntegration> out;
    for (int row = 0; row < rows->Count(); ++row) {
      auto integration = ReadIntegration(*rows, row);
      if (!integration) {
        return integration.error();
      }
      out.push_back(std::move(*integration));
    }
    return out;
  }

  Result<std::optional<service::ExternalIntegration>> FindIntegrationWhere(
      Connection& conn, std::string_view column, const std::string& value) {
    Params p;
    p.Text(value);
    auto found = SelectIntegrations(conn, fmt::format("WHERE \"{}\" = $1", column), p);
    if (!found) {
      return found.error();
    }
    if (found->empty()) {
      return std::optional<service::ExternalIntegration>();
    }
    return std::optional<service::ExternalIntegration>(std::move(found->front()));
  }

  Result<std::optional<service::ExternalIntegration>> FindIntegration(Connection& conn,
                                                                      const std::string& id) {
    return FindIntegrationWhere(conn, "clientId", id);
  }

  Result<std::optional<service::ExternalIntegration>> FindIntegrationByState(
      Connection& conn, const std::string& state_hash) {
    return FindIntegrationWhere(conn, "stateHash", state_hash);
  }

  Result<std::vector<service::ExternalIntegration>> ListIntegrations(Connection& conn) {
    return SelectIntegrations(conn, "", Params());
  }

  // ---- used_codes -----------------------------------------------------------------------------

  Result<bool> MarkUsed(Connection& conn,
                        const std::string& code_hash,
                        const core::TimePoint& now) {
    if (auto keys = store_schema::CheckKeys({code_hash}); !keys) {
      return ErrorAs<bool>(keys.error());
    }
    Params purge;
    purge.Text(FormatIsoTime(now - store_schema::kCodeLifetime));
    // Forgetting old codes is housekeeping of its own: no transaction needed around it.
    if (auto done =
            conn.Exec("forget old codes", "DELETE FROM used_codes WHERE used_at < $1", purge);
        !done) {
      return ErrorAs<bool>(done.error());
    }
    // The primary key decides: of any number of instances, one inserts, the rest do nothing.
    Params p;
    p.Text(code_hash).Text(FormatIsoTime(now));
    auto inserted = conn.Exec(
        "mark code used",
        "INSERT INTO used_codes (code_hash, used_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        p);
    if (!inserted) {
      return ErrorAs<bool>(inserted.error());
    }
    return inserted->Affected() == 1;
  }

  // ---- refresh_leases -------------------------------------------------------------------------

  // Rerun::kSafe: run again after a lost commit, the statement finds `holder` holding the lease
  // (extends it to the same end: true) or takes it as it would have (true) or finds another
  // holder (false, correctly).
  Result<bool> TryAcquire(Connection& conn,
                          const core::AccountKey& k,
                          const std::string& holder,
                          const core::TimePoint& now,
                          const core::TimePoint& until) {
    if (auto keys = store_schema::CheckKeys({k.client_id}); !keys) {
      return ErrorAs<bool>(keys.error());
    }
    Params p;
    // `now` rounds down and `until` up: a lease is never taken over before its end.
    p.Int(k.account_id)
        .Text(k.client_id)
        .Text(holder)
        .Text(FormatIsoTime(CeilToSeconds(until)))
        .Text(FormatIsoTime(now));
    auto rows = conn.Exec("acquire lease", sql::kAcquireLeaseSql, p);
    if (!rows) {
      return ErrorAs<bool>(rows.error());
    }
    return rows->Count() == 1;
  }

  // Rerun::kSafe: deleting our own lease twice deletes it once.
  Result<void> Release(Connection& conn, const core::AccountKey& k, const std::string& holder) {
    Params p;
    p.Int(k.account_id).Text(k.client_id).Text(holder);
    if (auto done = conn.Exec("release lease", sql::kReleaseLeaseSql, p); !done) {
      return done.error();
    }
    return {};
  }

  // Rerun::kSafe: a read.
  Result<std::optional<std::string>> LeaseHolder(Connection& conn, const core::AccountKey& k) {
    Params p;
    p.Int(k.account_id).Text(k.client_id);
    auto rows = conn.Exec("read lease holder", sql::kLeaseHolderSql, p);
    if (!rows) {
      return rows.error();
    }
    if (rows->Count() == 0) {
      return std::optional<std::string>();
    }
    return std::optional<std::string>(rows->Text(0, 0));
  }

  // Rerun::kSafe: after a lost commit the lease is `holder`'s, which the statement also accepts.
  Result<bool> TakeOver(Connection& conn,
                        const core::AccountKey& k,
                        const std::string& gone,
                        const std::string& holder,
                        const core::TimePoint& until) {
    Params p;
    p.Int(k.account_id)
        .Text(k.client_id)
        .Text(gone)
        .Text(holder)
        .Text(FormatIsoTime(CeilToSeconds(until)));
    auto rows = conn.Exec("take over lease", sql::kTakeOverLeaseSql, p);
    if (!rows) {
      return ErrorAs<bool>(rows.error());
    }
    return rows->Count() == 1;
  }

  // Rerun::kSafe: after a lost commit the leases are `holder`'s, which counts as free, so a
  // second run takes the same rows again (and perhaps a few more).
  Result<std::vector<core::Connection>> ClaimDueRefreshes(Connection& conn,
                                                          const core::TimePoint& now,
                                                          const std::string& holder,
                                                          const core::TimePoint& until,
                                                          const std::size_t& limit) {
    // A row that fails to decrypt fails the call, and its claims roll back with it.
    Transaction tx(conn);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    Params p;
    // `now` rounds down and `until` up, as TryAcquire's.
    p.Text(core::ToString(core::ConnectionStatus::kActive))
        .Text(FormatIsoTime(now))
        .Text(holder)
        .Text(FormatIsoTime(CeilToSeconds(until)))
        .Int(SqlLimit(limit));
    auto claimed = Select(conn, "claim due token rows", sql::kClaimDueRefreshesSql, p);
    if (!claimed) {
      return claimed.error();
    }
    if (auto committed = tx.Commit(); !committed) {
      return committed.error();
    }
    return claimed;
  }

  // ---- webhook_outbox -------------------------------------------------------------------------

  Result<void> Enqueue(Connection& conn,
                       const std::vector<service::Event>& events,
                       const core::TimePoint& now) {
    Transaction tx(conn);  // all of them or none
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    if (auto queued = InsertEvents(conn, events, FloorToSeconds(now)); !queued) {
      return queued.error();
    }
    return tx.Commit();
  }

  Result<std::vector<service::OutboxEntry>> ClaimDue(Connection& conn,
                                                     const core::TimePoint& now,
                                                     const core::TimePoint& claim_until,
                                                     const std::size_t& limit) {
    // Pruning here keeps the table bounded without a timer of its own; the claimer polls.
    Params prune;
    prune.Text(FormatIsoTime(now - store_schema::kDeliveredRetention));
    if (auto pruned = conn.Exec("prune delivered events", sql::kPruneDeliveredSql, prune);
        !pruned) {
      return pruned.error();
    }
    Params p;
    // The claim ends no earlier than asked (rounded up): nobody else claims meanwhile.
    p.Text(FormatIsoTime(now)).Text(FormatIsoTime(CeilToSeconds(claim_until))).Int(SqlLimit(limit));
    auto rows = conn.Exec("claim events", sql::kClaimSql, p);
    if (!rows) {
      return rows.error();
    }
    std::vector<service::OutboxEntry> claimed;
    for (int row = 0; row < rows->Count(); ++row) {
      service::OutboxEntry entry;
      entry.id = rows->Int(row, 0);
      entry.type = rows->Text(row, 1);
      entry.body = rows->Text(row, 2);
      const auto created = ParseIsoTime(rows->Text(row, 3));
      entry.attempts = static_cast<int>(rows->Int(row, 4));
      const auto next = ParseIsoTime(rows->Text(row, 5));
      entry.last_error = rows->Text(row, 6);
      if (!created || !next) {
        // Claimed already (committed): it becomes due again when the claim ends.
        log->error("webhook_outbox row id={} has a malformed time", entry.id);
        return Fail(Errc::kStoreFailure);
      }
      entry.created_at = *created;
      entry.next_attempt_at = *next;
      claimed.push_back(std::move(entry));
    }
    std::sort(
        claimed.begin(), claimed.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return claimed;
  }

  // Rerun::kSafe: sets deliveredAt only while it is NULL; a second run changes nothing.
  Result<void> MarkDelivered(Connection& conn, const std::int64_t& id, const core::TimePoint& now) {
    Params p;
    p.Int(id).Text(FormatIsoTime(now));
    if (auto done = conn.Exec("mark event delivered", sql::kMarkDeliveredSql, p); !done) {
      return done.error();
    }
    return {};
  }

  // Rerun::kSafe: writes the same two values again.
  Result<void> MarkFailed(Connection& conn,
                          const std::int64_t& id,
                          const std::string& error,
                          const core::TimePoint& next_attempt_at) {
    Params p;
    p.Int(id).Text(error).Text(FormatIsoTime(CeilToSeconds(next_attempt_at)));
    if (auto done = conn.Exec("mark event failed", sql::kMarkFailedSql, p); !done) {
      return done.error();
    }
    return {};
  }

  Result<std::size_t> Count(Connection& conn, std::string_view what, std::string_view sql) {
    auto rows = conn.Exec(what, sql);
    if (!rows) {
      return rows.error();
    }
    return static_cast<std::size_t>(rows->Int(0, 0));
  }

  Result<std::size_t> CountPending(Connection& conn) {
    return Count(conn, "count pending events", sql::kCountPendingSql);
  }

  // ---- key rotation (docs/adr/0005-key-rotation.md) -------------------------------------------

  Result<std::vector<std::pair<std::string, std::int64_t>>> CountByKeyId(Connection& conn) {
    auto rows = conn.Exec("count rows by key id", R"sql(
SELECT "keyId", count(*) FROM (
  SELECT "keyId" FROM amo_tokens UNION ALL SELECT "keyId" FROM integrations
  UNION ALL SELECT "keyId" FROM code_queue) AS sealed
GROUP BY "keyId" ORDER BY "keyId")sql");
    if (!rows) {
      return rows.error();
    }
    std::vector<std::pair<std::string, std::int64_t>> counts;
    for (int row = 0; row < rows->Count(); ++row) {
      counts.emplace_back(rows->Text(row, 0), rows->Int(row, 1));
    }
    return counts;
  }

  /// Reads a batch of each table without locks, re-seals, and writes each row back with one
  /// UPDATE that compares what was read (version or ciphertext, and the key id): a row a
  /// refresh or disconnect changed meanwhile is counted `changed` and read again next batch.
  /// version and updatedAt stay: a refresh that read the row first still commits. No NOTIFY:
  /// the tokens themselves did not change, so no instance's cache is stale.
  Result<service::KeyRotationBatch> RotateKeyBatch(Connection& conn, std::size_t limit) {
    const crypto::MasterKey* old_key = PreviousKey();
    if (old_key == nullptr) {
      log->error("key rotation: no previous master key is configured");
      return Fail(Errc::kCryptoFailure);
    }
    service::KeyRotationBatch batch;
    const auto counted = [&batch](const Rows& updated) {
      if (updated.Affected() == 1) {
        ++batch.rotated;
      } else {
        ++batch.changed;
      }
    };

    Params token_select;
    token_select.Text(old_key->Id()).Int(SqlLimit(limit));
    auto tokens = conn.Exec("read token rows to rotate",
                            R"sql(
SELECT "accountId", "clientId", "version", "accessToken", "refreshToken"
FROM amo_tokens WHERE "keyId" = $1 ORDER BY "accountId", "clientId" LIMIT $2)sql",
                            token_select);
    if (!tokens) {
      return tokens.error();
    }
    for (int row = 0; row < tokens->Count(); ++row) {
      const std::int64_t account_id = tokens->Int(row, 0);
      const std::string client_id = tokens->Text(row, 1);
      auto access = crypto::Open(
          *old_key, tokens->Binary(row, 3), TokenAad(account_id, client_id, TokenKind::kAccess));
      std::optional<std::string> refresh;
      bool readable = access.has_value();
      if (readable && !tokens->IsNull(row, 4)) {
        refresh = crypto::Open(
            *old_key, tokens->Binary(row, 4), TokenAad(account_id, client_id, TokenKind::kRefresh));
        readable = refresh.has_value();
      }
      if (!readable) {
        log->error(
            "key rotation: amo_tokens row accountId={} clientId={} does not open under "
            "the previous key; left as it is",
            account_id,
            client_id);
        ++batch.unreadable;
        continue;
      }
      std::optional<std::string> resealed_refresh;
      if (refresh) {
        resealed_refresh =
            crypto::Seal(key, *refresh, TokenAad(account_id, client_id, TokenKind::kRefresh));
      }
      Params p;
      p.Text(key.Id())
          .Binary(Bytes{
              crypto::Seal(key, *access, TokenAad(account_id, client_id, TokenKind::kAccess))})
          .NullableBinary(resealed_refresh)
          .Int(account_id)
          .Text(client_id)
          .Int(tokens->Int(row, 2))
          .Text(old_key->Id());
      auto updated = conn.Exec("rotate a token row",
                               R"sql(
UPDATE amo_tokens SET "keyId" = $1, "accessToken" = $2, "refreshToken" = $3
WHERE "accountId" = $4 AND "clientId" = $5 AND "version" = $6 AND "keyId" = $7)sql",
                               p);
      if (!updated) {
        return updated.error();
      }
      counted(*updated);
    }

    Params integration_select;
    integration_select.Text(old_key->Id()).Int(SqlLimit(limit));
    auto integrations = conn.Exec("read integrations to rotate",
                                  R"sql(
SELECT "clientId", "clientSecret" FROM integrations WHERE "keyId" = $1
ORDER BY "clientId" LIMIT $2)sql",
                                  integration_select);
    if (!integrations) {
      return integrations.error();
    }
    for (int row = 0; row < integrations->Count(); ++row) {
      const std::string client_id = integrations->Text(row, 0);
      const std::string sealed = integrations->Binary(row, 1);
      auto plain = crypto::Open(*old_key, sealed, store_schema::SecretAad(client_id));
      if (!plain) {
        log->error(
            "key rotation: integrations row clientId={} does not open under the previous "
            "key; left as it is",
            client_id);
        ++batch.unreadable;
        continue;
      }
      Params p;
      p.Text(key.Id())
          .Binary(Bytes{crypto::Seal(key, *plain, store_schema::SecretAad(client_id))})
          .Text(client_id)
          .Text(old_key->Id())
          .Binary(Bytes{sealed});
      auto updated = conn.Exec("rotate an integration row",
                               R"sql(
UPDATE integrations SET "keyId" = $1, "clientSecret" = $2
WHERE "clientId" = $3 AND "keyId" = $4 AND "clientSecret" = $5)sql",
                               p);
      if (!updated) {
        return updated.error();
      }
      counted(*updated);
    }

    Params code_select;
    code_select.Text(old_key->Id()).Int(SqlLimit(limit));
    auto codes = conn.Exec("read queued codes to rotate",
                           R"sql(
SELECT "id", "codeHash", "code" FROM code_queue WHERE "keyId" = $1 ORDER BY "id" LIMIT $2)sql",
                           code_select);
    if (!codes) {
      return codes.error();
    }
    for (int row = 0; row < codes->Count(); ++row) {
      const std::int64_t id = codes->Int(row, 0);
      const std::string code_hash = codes->Text(row, 1);
      const std::string sealed = codes->Binary(row, 2);
      auto plain = crypto::Open(*old_key, sealed, store_schema::CodeAad(code_hash));
      if (!plain) {
        log->error(
            "key rotation: code_queue row id={} does not open under the previous key; "
            "left as it is",
            id);
        ++batch.unreadable;
        continue;
      }
      Params p;
      p.Text(key.Id())
          .Binary(Bytes{crypto::Seal(key, *plain, store_schema::CodeAad(code_hash))})
          .Int(id)
          .Text(old_key->Id())
          .Binary(Bytes{sealed});
      auto updated = conn.Exec("rotate a queued code",
                               R"sql(
UPDATE code_queue SET "keyId" = $1, "code" = $2
WHERE "id" = $3 AND "keyId" = $4 AND "code" = $5)sql",
                               p);
      if (!updated) {
        return updated.error();
      }
      counted(*updated);
    }
    return batch;
  }

  Result<service::ConnectionCensus> CountConnections(Connection& conn) {
    service::ConnectionCensus census;
    auto by_status = conn.Exec("count token rows by status", sql::kCountByStatusSql);
    if (!by_status) {
      return by_status.error();
    }
    for (int row = 0; row < by_status->Count(); ++row) {
      if (const auto status = core::ParseConnectionStatus(by_status->Text(row, 0))) {
        census.by_status[static_cast<std::size_t>(*status)] =
            static_cast<std::size_t>(by_status->Int(row, 1));
      }
    }
    auto oldest = conn.Exec("find the oldest refresh", sql::kOldestRefreshSql);
    if (!oldest) {
      return oldest.error();
    }
    if (oldest->Count() > 0 && !oldest->IsNull(0, 0)) {
      const auto at = ParseIsoTime(oldest->Text(0, 0));
      if (!at) {
        return Fail(Errc::kStoreFailure);
      }
      census.oldest_refresh = *at;
    }
    return census;
  }

  // ---- code_queue -----------------------------------------------------------------------------

  Result<bool> EnqueueCode(Connection& conn, const service::QueuedCode& c) {
    // Checked before the insert, outside a transaction: a race may pass it by a few, harmlessly.
    auto count = Count(conn, "count codes", sql::kCountCodesSql);
    if (!count) {
      return ErrorAs<bool>(count.error());
    }
    if (static_cast<std::int64_t>(*count) >= store_schema::kMaxQueuedCodes) {
      log->warn("refusing a hook code: {} are queued already (limit {})",
                *count,
                store_schema::kMaxQueuedCodes);
      return ErrorAs<bool>(Fail(Errc::kBusy));
    }
    const std::string code_hash = crypto::Sha256Hex(c.code.Reveal());
    const std::string sealed = crypto::Seal(key, c.code.Reveal(), store_schema::CodeAad(code_hash));
    Params p;
    p.Text(code_hash)
        .Text(key.Id())
        .Binary(Bytes{sealed})
        .Text(c.account_host)
        .Text(c.client_id)
        .Text(service::ToString(c.source))
        .Text(FormatIsoTime(c.received_at))
        .Text(FormatIsoTime(c.expires_at))
        .Text(FormatIsoTime(c.next_attempt_at));
    auto inserted = conn.Exec("enqueue code", sql::kEnqueueCodeSql, p);
    if (!inserted) {
      return ErrorAs<bool>(inserted.error());
    }
    return inserted->Affected() == 1;
  }

  /// A code that does not open (another master key, a tampered row) comes back with an empty
  /// code: the worker gives it up, and it does not block the queue.
  Result<service::QueuedCode> ReadClaimedCode(const Rows& rows, int row) {
    service::QueuedCode c;
    c.id = rows.Int(row, 0);
    const std::string code_hash = rows.Text(row, 1);
    if (const auto* row_key = crypto::KeyById(rows.Text(row, 2), key, PreviousKey())) {
      if (auto plain =
              crypto::Open(*row_key, rows.Binary(row, 3), store_schema::CodeAad(code_hash))) {
        c.code = Secret(std::move(*plain));
      }
    }
    if (c.code.Empty()) {
      log->error("code_queue row id={} does not decrypt (another master key, or tampered)", c.id);
    }
    c.account_host = rows.Text(row, 4);
    c.client_id = rows.Text(row, 5);
    c.source = rows.Text(row, 6) == service::ToString(service::CodeSource::kWidget)
                   ? service::CodeSource::kWidget
                   : service::CodeSource::kExchange;
    const auto received = ParseIsoTime(rows.Text(row, 7));
    const auto expires = ParseIsoTime(rows.Text(row, 8));
    c.attempts = static_cast<int>(rows.Int(row, 9));
    const auto next = ParseIsoTime(rows.Text(row, 10));
    c.last_error = rows.Text(row, 11);
    if (!received || !expires || !next) {
      log->error("code_queue row id={} has a malformed time", c.id);
      return Fail(Errc::kStoreFailure);
    }
    c.received_at = *received;
    c.expires_at = *expires;
    c.next_attempt_at = *next;
    return c;
  }

  Result<std::vector<service::QueuedCode>> ClaimDueCodes(Connection& conn,
                                                         const core::TimePoint& now,
                                                         const core::TimePoint& claim_until,
                                                         const std::size_t& limit) {
    Params p;
    p.Text(FormatIsoTime(now)).Text(FormatIsoTime(CeilToSeconds(claim_until))).Int(SqlLimit(limit));
    auto rows = conn.Exec("claim codes", sql::kClaimCodesSql, p);
    if (!rows) {
      return rows.error();
    }
    std::vector<service::QueuedCode> claimed;
    for (int row = 0; row < rows->Count(); ++row) {
      auto entry = ReadClaimedCode(*rows, row);
      if (!entry) {
        return entry.error();
      }
      claimed.push_back(std::move(*entry));
    }
    std::sort(claimed.begin(), claimed.end(), [](const auto& a, const auto& b) {
      return a.received_at != b.received_at ? a.received_at < b.received_at : a.id < b.id;
    });
    return claimed;
  }

  // Rerun::kSafe: deleting a row twice deletes it once.
  Result<void> Finish(Connection& conn, const std::int64_t& id) {
    Params p;
    p.Int(id);
    if (auto done = conn.Exec("finish code", sql::kDeleteCodeSql, p); !done) {
      return done.error();
    }
    return {};
  }

  // Rerun::kSafe: writes the same two values again.
  Result<void> Retry(Connection& conn,
                     const std::int64_t& id,
                     const std::string& error,
                     const core::TimePoint& next_attempt_at) {
    Params p;
    p.Int(id).Text(error).Text(FormatIsoTime(CeilToSeconds(next_attempt_at)));
    if (auto done = conn.Exec("retry code", sql::kRetryCodeSql, p); !done) {
      return done.error();
    }
    return {};
  }

  // Rerun::kSafe: a second run finds the row gone and queues nothing, which is what a committed
  // first run leaves; an uncommitted first run is simply done again.
  Result<void> GiveUp(Connection& conn,
                      const std::int64_t& id,
                      const std::vector<service::Event>& events,
                      const core::TimePoint& now) {
    // The code goes and the backend hears why, together or not at all.
    Transaction tx(conn);
    if (auto begun = tx.Begin(); !begun) {
      return begun.error();
    }
    Params p;
    p.Int(id);
    auto deleted = conn.Exec("give up code", sql::kDeleteCodeSql, p);
    if (!deleted) {
      return deleted.error();
    }
    if (deleted->Affected() == 1) {  // a second report of the same end sends nothing twice
      if (auto queued = InsertEvents(conn, events, FloorToSeconds(now)); !queued) {
        return queued.error();
      }
    }
    return tx.Commit();
  }

  Result<std::size_t> CountQueued(Connection& conn) {
    return Count(conn, "count codes", sql::kCountCodesSql);
  }

  // ---- exchange_quota -------------------------------------------------------------------------

  Result<std::optional<core::TimePoint>> TryTake(Connection& conn,
                                                 const std::string& subject,
                                                 const core::TimePoint& now,
                                                 const core::Seconds& interval) {
    if (auto keys = store_schema::CheckKeys({subject}); !keys) {
      return keys.error();
    }
    // Whole seconds, rounded down: a slot is held at least `interval`, never shorter.
    const core::TimePoint whole_now = FloorToSeconds(now);
    Params p;
    p.Text(subject).Text(FormatIsoTime(whole_now)).Text(FormatIsoTime(whole_now - interval));
    auto taken = conn.Exec("take exchange quota", sql::kTakeSql, p);
    if (!taken) {
      return taken.error();
    }
    if (taken->Count() == 1) {
      return std::optional<core::TimePoint>();
    }
    Params q;
    q.Text(subject);
    auto read = conn.Exec("read exchange quota", sql::kTakenAtSql, q);
    if (!read) {
      return read.error();
    }
    const auto taken_at =
        read->Count() == 1 ? ParseIsoTime(read->Text(0, 0)) : std::optional<core::TimePoint>();
    if (!taken_at) {
      log->error("exchange_quota row is missing or has a malformed time");
      return Fail(Errc::kStoreFailure);
    }
    return std::optional<core::TimePoint>(*taken_at + interval);
  }

  Result<void> GiveBack(Connection& conn,
                        const std::string& subject,
                        const core::TimePoint& taken_at) {
    Params p;
    p.Text(subject).Text(FormatIsoTime(FloorToSeconds(taken_at)));
    auto given = conn.Exec("give back exchange quota", sql::kGiveBackSql, p);
    if (!given) {
      return given.error();
    }
    return {};
  }

  PgOptions options;
  core::SystemClock system_clock;  // when options.clock is null
  crypto::MasterKey key;
  std::shared_ptr<spdlog::logger> log;
  std::vector<Connection> connections;  // never resized: threads keep pointers into it
  std::atomic<std::size_t> next_connection{0};
  int schema_version = 0;
  boost::asio::thread_pool pool;  // one thread per connection
  std::mutex listener_mutex;
  std::unique_ptr<detail::TokenListener> listener;  // guarded by listener_mutex
};

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::Open(PgOptions options, crypto::MasterKey key) {
  auto log = StoreLogger();
  try {
    if (options.pool_size == 0) {
      log->error("refusing pool_size = 0: at least one connection is needed");
      return Fail(Errc::kStoreFailure);
    }
    std::vector<Connection> connections;
    connections.reserve(options.pool_size);
    auto first = Connection::Open(options.url, options.connect_timeout, log);
    if (!first) {
      return first.error();
    }
    connections.push_back(std::move(*first));
    const core::SystemClock system_clock;
    const core::Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
    auto version = detail::Migrate(connections.front(), FormatIsoTime(clock.Now()));
    if (!version) {
      return version.error();
    }
    while (connections.size() < options.pool_size) {
      auto next = Connection::Open(options.url, options.connect_timeout, log);
      if (!next) {
        return next.error();
      }
      connections.push_back(std::move(*next));
    }
    log->info("opened PostgreSQL at {} (schema version {}, {} connections)",
              connections.front().Target(),
              *version,
              connections.size());
    auto impl = std::make_unique<Impl>(
        std::move(options), std::move(key), std::move(log), std::move(connections), *version);
    return std::unique_ptr<PgStore>(new PgStore(std::move(impl)));
  } catch (const std::exception& e) {
    log->error("cannot open the store: {}", e.what());
  }
  return Fail(Errc::kStoreFailure);
}

int PgStore::SchemaVersion() const {
  return impl_->schema_version;
}

void PgStore::Subscribe(Listener listener) {
  Impl* impl = impl_.get();
  const std::lock_guard lock(impl->listener_mutex);
  if (impl->listener) {
    impl->log->error("a second token-change listener was refused: the store has one already");
    return;
  }
  impl->listener = std::make_unique<detail::TokenListener>(
      impl->options.url, impl->options.connect_timeout, impl->log, std::move(listener));
}

// Each method forwards to Impl::Submit with its arguments moved into a named coroutine call.

service::Task<Result<core::Connection>> PgStore::Upsert(core::Connection connection,
                                                        std::vector<service::Event> events) {
  return impl_->Submit(
      "upsert", Rerun::kNever, &Impl::Upsert, std::move(connection), std::move(events));
}

service::Task<Result<core::Connection>> PgStore::Replace(core::Connection connection,
                                                         std::int64_t expected_version,
                                                         std::vector<service::Event> events) {
  return impl_->Submit("replace",
                       Rerun::kNever,
                       &Impl::Replace,
                       std::move(connection),
                       expected_version,
                       std::move(events));
}

service::Task<Result<std::vector<core::Connection>>> PgStore::ListDue(core::TimePoint now,
                                                                      std::size_t limit) {
  return impl_->Submit("list due", Rerun::kSafe, &Impl::ListDue, now, limit);
}

service::Task<Result<std::optional<core::Connection>>> PgStore::Find(core::AccountKey key) {
  return impl_->Submit("find", Rerun::kSafe, &Impl::Find, std::move(key));
}

service::Task<Result<std::vector<core::Connection>>> PgStore::FindByAccount(
    std::int64_t account_id) {
  return impl_->Submit("find by account", Rerun::kSafe, &Impl::FindByAccount, account_id);
}

service::Task<Result<std::vector<core::Connection>>> PgStore::List() {
  return impl_->Submit("list", Rerun::kSafe, &Impl::List);
}

service::Task<Result<std::vector<core::Connection>>> PgStore::FindByDomain(
    std::string base_domain) {
  return impl_->Submit("find by domain", Rerun::kSafe, &Impl::FindByDomain, std::move(base_domain));
}

service::Task<Result<void>> PgStore::Put(service::PendingState state, core::TimePoint now) {
  return impl_->Submit("put state", Rerun::kNever, &Impl::Put, std::move(state), now);
}

service::Task<Result<std::optional<service::PendingState>>> PgStore::Take(std::string state_hash,
                                                                          core::TimePoint now) {
  return impl_->Submit("take state", Rerun::kNever, &Impl::Take, std::move(state_hash), now);
}

service::Task<Result<std::optional<service::PendingState>>> PgStore::Peek(std::string state_hash,
                                                                          core::TimePoint now) {
  return impl_->Submit("peek state", Rerun::kSafe, &Impl::Peek, std::move(state_hash), now);
}

service::Task<Result<void>> PgStore::AddIntegration(service::ExternalIntegration integration) {
  return impl_->Submit(
      "add integration", Rerun::kNever, &Impl::AddIntegration, std::move(integration));
}

service::Task<Result<std::optional<service::ExternalIntegration>>> PgStore::FindIntegration(
    std::string client_id) {
  return impl_->Submit(
      "find integration", Rerun::kSafe, &Impl::FindIntegration, std::move(client_id));
}

service::Task<Result<std::optional<service::ExternalIntegration>>> PgStore::FindIntegrationByState(
    std::string state_hash) {
  return impl_->Submit("find integration by state",
                       Rerun::kSafe,
                       &Impl::FindIntegrationByState,
                       std::move(state_hash));
}

service::Task<Result<std::size_t>> PgStore::ForgetUnusedIntegrations(
    core::TimePoint created_before) {
  return impl_->Submit(
      "forget unused integrations", Rerun::kSafe, &Impl::ForgetUnusedIntegrations, created_before);
}

service::Task<Result<std::vector<service::ExternalIntegration>>> PgStore::ListIntegrations() {
  return impl_->Submit("list integrations", Rerun::kSafe, &Impl::ListIntegrations);
}

service::Task<Result<bool>> PgStore::MarkUsed(std::string code_hash, core::TimePoint now) {
  return impl_->Submit("mark code used", Rerun::kNever, &Impl::MarkUsed, std::move(code_hash), now);
}

service::Task<Result<bool>> PgStore::TryAcquire(core::AccountKey key,
                                                std::string holder,
                                                core::TimePoint now,
                                                core::TimePoint until) {
  return impl_->Submit("acquire lease",
                       Rerun::kSafe,
                       &Impl::TryAcquire,
                       std::move(key),
                       std::move(holder),
                       now,
                       until);
}

service::Task<Result<void>> PgStore::Release(core::AccountKey key, std::string holder) {
  return impl_->Submit(
      "release lease", Rerun::kSafe, &Impl::Release, std::move(key), std::move(holder));
}

service::Task<Result<std::optional<std::string>>> PgStore::Holder(core::AccountKey key) {
  return impl_->Submit("read lease holder", Rerun::kSafe, &Impl::LeaseHolder, std::move(key));
}

service::Task<Result<bool>> PgStore::TakeOver(core::AccountKey key,
                                              std::string gone,
                                              std::string holder,
                                              core::TimePoint until) {
  return impl_->Submit("take over lease",
                       Rerun::kSafe,
                       &Impl::TakeOver,
                       std::move(key),
                       std::move(gone),
                       std::move(holder),
                       until);
}

service::Task<Result<std::vector<core::Connection>>> PgStore::ClaimDueRefreshes(
    core::TimePoint now, std::string holder, core::TimePoint until, std::size_t limit) {
  return impl_->Submit("claim due refreshes",
                       Rerun::kSafe,
                       &Impl::ClaimDueRefreshes,
                       now,
                       std::move(holder),
                       until,
                       limit);
}

service::Task<Result<void>> PgStore::Enqueue(std::vector<service::Event> events,
                                             core::TimePoint now) {
  return impl_->Submit("enqueue events", Rerun::kNever, &Impl::Enqueue, std::move(events), now);
}

service::Task<Result<std::vector<service::OutboxEntry>>> PgStore::ClaimDue(
    core::TimePoint now, core::TimePoint claim_until, std::size_t limit) {
  return impl_->Submit("claim events", Rerun::kNever, &Impl::ClaimDue, now, claim_until, limit);
}

service::Task<Result<void>> PgStore::MarkDelivered(std::int64_t id, core::TimePoint now) {
  return impl_->Submit("mark event delivered", Rerun::kSafe, &Impl::MarkDelivered, id, now);
}

service::Task<Result<void>> PgStore::MarkFailed(std::int64_t id,
                                                std::string error,
                                                core::TimePoint next_attempt_at) {
  return impl_->Submit(
      "mark event failed", Rerun::kSafe, &Impl::MarkFailed, id, std::move(error), next_attempt_at);
}

service::Task<Result<std::vector<service::AccountEvent>>> PgStore::ListAccountEvents(
    std::int64_t account_id, std::size_t limit) {
  return impl_->Submit(
      "list account events", Rerun::kSafe, &Impl::ListAccountEvents, account_id, limit);
}

service::Task<Result<std::vector<std::pair<std::string, std::int64_t>>>> PgStore::CountByKeyId() {
  return impl_->Submit("count rows by key id", Rerun::kSafe, &Impl::CountByKeyId);
}

// Safe to rerun: every write compares what it read, so a second run changes only what is still
// under the previous key.
service::Task<Result<service::KeyRotationBatch>> PgStore::RotateKeyBatch(std::size_t limit) {
  return impl_->Submit("rotate a key batch", Rerun::kSafe, &Impl::RotateKeyBatch, limit);
}

service::Task<Result<service::ConnectionCensus>> PgStore::CountConnections() {
  return impl_->Submit("count connections", Rerun::kSafe, &Impl::CountConnections);
}

service::Task<Result<std::size_t>> PgStore::CountPending() {
  return impl_->Submit("count pending events", Rerun::kSafe, &Impl::CountPending);
}

service::Task<Result<bool>> PgStore::Enqueue(service::QueuedCode code) {
  return impl_->Submit("enqueue code", Rerun::kNever, &Impl::EnqueueCode, std::move(code));
}

service::Task<Result<std::vector<service::QueuedCode>>> PgStore::ClaimDueCodes(
    core::TimePoint now, core::TimePoint claim_until, std::size_t limit) {
  return impl_->Submit("claim codes", Rerun::kNever, &Impl::ClaimDueCodes, now, claim_until, limit);
}

service::Task<Result<void>> PgStore::Finish(std::int64_t id) {
  return impl_->Submit("finish code", Rerun::kSafe, &Impl::Finish, id);
}

service::Task<Result<void>> PgStore::Retry(std::int64_t id,
                                           std::string error,
                                           core::TimePoint next_attempt_at) {
  return impl_->Submit(
      "retry code", Rerun::kSafe, &Impl::Retry, id, std::move(error), next_attempt_at);
}

service::Task<Result<void>> PgStore::GiveUp(std::int64_t id,
                                            std::vector<service::Event> events,
                                            core::TimePoint now) {
  return impl_->Submit("give up code", Rerun::kSafe, &Impl::GiveUp, id, std::move(events), now);
}

service::Task<Result<std::size_t>> PgStore::CountQueued() {
  return impl_->Submit("count codes", Rerun::kSafe, &Impl::CountQueued);
}

service::Task<Result<std::optional<core::TimePoint>>> PgStore::TryTake(std::string subject_hash,
                                                                       core::TimePoint now,
                                                                       core::Seconds interval) {
  return impl_->Submit(
      "take exchange quota", Rerun::kNever, &Impl::TryTake, std::move(subject_hash), now, interval);
}

service::Task<Result<void>> PgStore::GiveBack(std::string subject_hash, core::TimePoint taken_at) {
  return impl_->Submit(
      "give back exchange quota", Rerun::kSafe, &Impl::GiveBack, std::move(subject_hash), taken_at);
}

}  // namespace amoauth::store_pg
