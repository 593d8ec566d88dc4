#pragma once
// What the stores implemented outside sqlite_store.cpp (code_queue.cpp, exchange_quota.cpp) need
// of the SqliteStore: its pool, its connections, its key and its logger. Private to the library.

#include <exception>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <spdlog/logger.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/errc.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"
#include "sqlite_handle.hpp"

namespace amoauth::store_sqlite::detail {

struct StoreParts {
  boost::asio::thread_pool* pool = nullptr;
  const crypto::MasterKey* key = nullptr;
  /// During a key rotation, the key being retired (reads only); nullptr otherwise.
  const crypto::MasterKey* previous_key = nullptr;
  spdlog::logger* log = nullptr;
  /// The calling pool thread's own connection (nullptr on a bug: more threads than connections).
  std::function<Database*()> connection;
  /// Appends events to webhook_outbox inside the caller's transaction.
  std::function<Result<void>(Database&, const std::vector<service::Event>&, core::TimePoint)>
      insert_events;
};

/// Runs `work(*db)`, the one guard every store call goes through: no connection (a bug: more
/// threads than connections) and an exception escaping `work` (bad_alloc, a third-party throw)
/// are logged and become kStoreFailure, so nothing throws out of the pool.
template <class Work>
auto RunGuarded(spdlog::logger& log, Database* db, std::string_view operation, Work& work) noexcept
    -> std::invoke_result_t<Work&, Database&> {
  using R = std::invoke_result_t<Work&, Database&>;
  try {
    if (db == nullptr) {
      log.error("{}: no connection for this thread", operation);
      return R(boost::system::in_place_error, Fail(Errc::kStoreFailure));
    }
    return work(*db);
  } catch (const std::exception& e) {
    log.error("{}: unexpected exception: {}", operation, e.what());
  } catch (...) {
    log.error("{}: unexpected exception", operation);
  }
  return R(boost::system::in_place_error, Fail(Errc::kStoreFailure));
}

/// RunGuarded on the calling pool thread's connection.
template <class Work>
auto RunOnConnection(const StoreParts& parts, std::string_view operation, Work& work) noexcept
    -> std::invoke_result_t<Work&, Database&> {
  return RunGuarded(*parts.log, parts.connection(), operation, work);
}

}  // namespace amoauth::store_sqlite::detail
