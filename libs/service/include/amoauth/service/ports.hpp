#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/platform.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/core/token_exchange.hpp"
#include "amoauth/net/http_message.hpp"

/// The ports the use cases drive. Adapters implement them: libs/store_sqlite (stores),
/// libs/http_client (AmoClient); tests/support has in-memory fakes.
/// Every method is a coroutine that never blocks the calling executor; implementations are
/// thread-safe.
namespace amoauth::service {

template <class T>
using Task = boost::asio::awaitable<T>;

/// The amo_tokens table.
class ConnectionStore {
 public:
  virtual ~ConnectionStore() = default;

  /// Inserts, or replaces the row with the same key unconditionally (a fresh connect wins).
  /// Sets created_at (kept from an existing row), updated_at and version (old + 1, or 1); returns
  /// the stored row.
  virtual Task<Result<core::Connection>> Upsert(core::Connection connection) = 0;

  /// Replaces the row only if its version is still `expected_version` (compare-and-swap), bumping
  /// version and updated_at. Errors: Errc::kConflict if it changed, Errc::kNotFound if gone.
  virtual Task<Result<core::Connection>> Replace(core::Connection connection,
                                                 std::int64_t expected_version) = 0;

  virtual Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) = 0;
  /// Every row of `account_id`, whatever the integration.
  virtual Task<Result<std::vector<core::Connection>>> FindByAccount(std::int64_t account_id) = 0;
  /// All rows, ordered by account_id then client_id.
  virtual Task<Result<std::vector<core::Connection>>> List() = 0;
};

/// A `state` we issued and have not yet seen come back. Stored by hash (core::HashState).
struct PendingState {
  std::string state_hash;
  std::string client_id;
  core::ConsentMode mode = core::ConsentMode::kPopup;
  core::TimePoint created_at{};
  core::TimePoint expires_at{};
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  /// Stores a new pending state; forgets expired ones on the way.
  /// Errors: Errc::kBusy when the bounded number of pending states is reached.
  virtual Task<Result<void>> Put(PendingState state, core::TimePoint now) = 0;
  /// Removes and returns the state: single use. nullopt if unknown, or expired at `now`
  /// (an expired state is removed too).
  virtual Task<Result<std::optional<PendingState>>> Take(std::string state_hash,
                                                         core::TimePoint now) = 0;
};

/// Remembers which authorization codes were already sent to amoCRM, so that no code is ever
/// exchanged twice (a reloaded callback, a double click, a hook plus a redirect).
class CodeLedger {
 public:
  virtual ~CodeLedger() = default;
  /// Records `code_hash`; true if it was new, false if seen before. Entries older than amoCRM's
  /// code lifetime (20 minutes) may be forgotten.
  virtual Task<Result<bool>> MarkUsed(std::string code_hash, core::TimePoint now) = 0;
};

/// amoCRM as seen from amoauth. `account_host` is an allow-listed account host
/// (core::RefererPolicy); implementations send nothing anywhere else.
class AmoClient {
 public:
  virtual ~AmoClient() = default;
  /// POST https://{account_host}/oauth2/access_token. Errors: the Amo* Errc that
  /// core::ClassifyAmoFailure gives, Errc::kAmoUnreachable, Errc::kAmoMalformedResponse.
  virtual Task<Result<core::TokenGrant>> ExchangeCode(std::string account_host,
                                                      core::AuthorizationCodeGrant grant) = 0;
  virtual Task<Result<core::TokenGrant>> Refresh(std::string account_host,
                                                 core::RefreshTokenGrant grant) = 0;
  /// Sends `request` (target "/api/v4/…?…", method, body, content headers) to
  /// https://{account_host} with `Authorization: Bearer {access_token}` and returns amoCRM's
  /// answer whatever its status. Errors: Errc::kAmoUnreachable.
  virtual Task<Result<net::HttpResponse>> Forward(std::string account_host,
                                                  net::HttpRequest request,
                                                  Secret access_token) = 0;
};

}  // namespace amoauth::service
