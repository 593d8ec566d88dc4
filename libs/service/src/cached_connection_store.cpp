#include "amoauth/service/cached_connection_store.hpp"

#include <array>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace amoauth::service {
namespace {

/// Per-account invalidation counters, shared by accounts whose ids fall in the same stripe: a
/// change to one account only spoils the reads in flight of its stripe, and the counters stay
/// bounded however many accounts change.
constexpr std::size_t kStripes = 4096;

std::size_t StripeOf(std::int64_t account_id) {
  return static_cast<std::size_t>(static_cast<std::uint64_t>(account_id) % kStripes);
}

}  // namespace

struct CachedConnectionStore::State {
  /// Taken before a read of the store; the read's result may be installed only if it is still
  /// current then.
  struct Ticket {
    std::uint64_t epoch = 0;
    std::uint64_t stripe = 0;
    std::uint64_t commits = 0;  ///< the commit count read before the read (counter mode)
  };
  struct Entry {
    std::vector<core::Connection> rows;
    std::list<std::int64_t>::iterator age;  ///< its place in `order`
    std::uint64_t commits = 0;              ///< counter mode: valid while the count equals this
  };

  State(TokenCacheOptions o, CommitCounter* c) : options(o), counter(c), listening(c != nullptr) {}

  /// The account's rows if cached and the feed listens (counted as a hit), else a ticket for the
  /// read the caller is about to make (nullopt ticket: do not install, not listening).
  struct Lookup {
    std::optional<std::vector<core::Connection>> rows;
    std::optional<Ticket> ticket;
  };
  Lookup Look(std::int64_t account_id) {
    // Read before the lookup and before any read of the store it leads to: a commit after this
    // moves the count, so a row read afterwards is never served past a later commit.
    std::optional<std::uint64_t> commits;
    if (counter != nullptr) {
      commits = counter->CommitCount();
    }
    std::lock_guard lock(mutex);
    if (!listening || (counter != nullptr && !commits)) {
      ++misses;
      return {};
    }
    if (auto it = entries.find(account_id); it != entries.end()) {
      if (counter == nullptr || it->second.commits == *commits) {
        ++hits;
        return {.rows = it->second.rows, .ticket = std::nullopt};
      }
    }
    ++misses;
    return {.rows = std::nullopt,
            .ticket = Ticket{epoch, stripes[StripeOf(account_id)], commits.value_or(0)}};
  }

  void Install(std::int64_t account_id, Ticket ticket, const std::vector<core::Connection>& rows) {
    std::lock_guard lock(mutex);
    // A notification or a continuity change arrived while the read was in flight: what it read
    // may predate that change.
    if (!listening || ticket.epoch != epoch || ticket.stripe != stripes[StripeOf(account_id)]) {
      return;
    }
    if (auto it = entries.find(account_id); it != entries.end()) {
      // Feed mode: two misses of one ticket read the same rows. Counter mode: the tag goes with
      // the rows, so an older read installed last is only served while nothing committed since
      // its count was read, and then it is as current as any.
      it->second.rows = rows;
      it->second.commits = ticket.commits;
      return;
    }
    if (entries.size() >= options.max_entries && !order.empty()) {
      entries.erase(order.front());
      order.pop_front();
    }
    order.push_back(account_id);
    entries.emplace(account_id,
                    Entry{.rows = rows, .age = std::prev(order.end()), .commits = ticket.commits});
  }

  /// A write of the account committed (here or elsewhere).
  void Changed(std::int64_t account_id) {
    std::lock_guard lock(mutex);
    ++stripes[StripeOf(account_id)];
    if (auto it = entries.find(account_id); it != entries.end()) {
      order.erase(it->second.age);
      entries.erase(it);
    }
  }

  void Continuity(bool now_listening) {
    std::lock_guard lock(mutex);
    // Either way, reads in flight started under the old state: none of them may install.
    ++epoch;
    listening = now_listening;
    entries.clear();
    order.clear();
  }

  const TokenCacheOptions options;
  CommitCounter* const counter;  ///< counter mode when set; then there is no feed
  mutable std::mutex mutex;
  bool listening = false;  ///< nothing is served or installed until the feed says it listens
  std::uint64_t epoch = 0;
  std::array<std::uint64_t, kStripes> stripes{};
  std::unordered_map<std::int64_t, Entry> entries;
  std::list<std::int64_t> order;  ///< cached account ids, longest cached first
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
};

CachedConnectionStore::CachedConnectionStore(ConnectionStore& inner,
                                             ConnectionChanges& changes,
                                             TokenCacheOptions options)
    : inner_(inner), state_(std::make_shared<State>(options, nullptr)) {
  // The callbacks own the state: the feed may call them after the cache is gone.
  ConnectionChanges::Listener listener;
  listener.changed = [state = state_](const core::AccountKey& key) {
    state->Changed(key.account_id);
  };
  listener.continuity = [state = state_](bool listening) { state->Continuity(listening); };
  changes.Subscribe(std::move(listener));
}

CachedConnectionStore::CachedConnectionStore(ConnectionStore& inner,
                                             CommitCounter& counter,
                                             TokenCacheOptions options)
    : inner_(inner), state_(std::make_shared<State>(options, &counter)) {}

CachedConnectionStore::~CachedConnectionStore() {
  // Nothing more will be read through this cache; drop the rows now rather than when the feed
  // lets go of the callbacks.
  state_->Continuity(false);
}

Task<Result<core::Connection>> CachedConnectionStore::Upsert(core::Connection connection,
                                                             std::vector<Event> events) {
  const std::int64_t account_id = connection.account_id;
  auto stored = co_await inner_.Upsert(std::move(connection), std::move(events));
  state_->Changed(account_id);
  co_return stored;
}

Task<Result<core::Connection>> CachedConnectionStore::Replace(core::Connection connection,
                                                              std::int64_t expected_version,
                                                              std::vector<Event> events) {
  // Not installing the stored row: a later commit by another instance may already have been
  // notified, and installing ours after it would hide it.
  const std::int64_t account_id = connection.account_id;
  auto stored = co_await inner_.Replace(std::move(connection), expected_version, std::move(events));
  state_->Changed(account_id);
  co_return stored;
}

Task<Result<std::vector<core::Connection>>> CachedConnectionStore::ListDue(core::TimePoint now,
                                                                           std::size_t limit) {
  co_return co_await inner_.ListDue(now, limit);
}

Task<Result<std::optional<core::Connection>>> CachedConnectionStore::Find(core::AccountKey key) {
  auto rows = co_await FindByAccount(key.account_id);
  if (!rows) {
    co_return rows.error();
  }
  // The entry holds every row of the account, so a client id missing from it has no row.
  for (auto& row : *rows) {
    if (row.client_id == key.client_id) {
      co_return std::optional(std::move(row));
    }
  }
  co_return std::nullopt;
}

Task<Result<std::vector<core::Connection>>> CachedConnectionStore::FindByAccount(
    std::int64_t account_id) {
  State::Lookup found = state_->Look(account_id);
  if (found.rows) {
    co_return std::move(*found.rows);
  }
  auto rows = co_await inner_.FindByAccount(account_id);
  // No rows is not cached: ids nobody connected must not push connected accounts out.
  if (rows && found.ticket && !rows->empty()) {
    state_->Install(account_id, *found.ticket, *rows);
  }
  co_return rows;
}

Task<Result<std::vector<core::Connection>>> CachedConnectionStore::List() {
  co_return co_await inner_.List();
}

Task<Result<std::vector<core::Connection>>> CachedConnectionStore::FindByDomain(
    std::string base_domain) {
  co_return co_await inner_.FindByDomain(std::move(base_domain));
}

CachedConnectionStore::Stats CachedConnectionStore::GetStats() const {
  std::lock_guard lock(state_->mutex);
  return {.hits = state_->hits,
          .misses = state_->misses,
          .entries = state_->entries.size(),
          .listening = state_->listening};
}

}  // namespace amoauth::service
