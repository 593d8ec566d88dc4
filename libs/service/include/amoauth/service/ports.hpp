#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "amoauth/core/api_key_exchange.hpp"
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

/// A notification for the integrator's backend (docs/api.md, "Webhooks"). It is written in the
/// same transaction as the change it reports, so a state change and its event are never apart.
struct Event {
  std::string type;  ///< "account.connected", "token.refresh_failed", …
  std::string body;  ///< the JSON body exactly as it will be POSTed and signed
  /// The account it is about (0: none, e.g. a code for an unknown account). Such an event is
  /// also kept in the account's history (AccountHistory), whether or not it is delivered.
  std::int64_t account_id = 0;
  std::string client_id;  ///< with account_id: the row it is about
  /// false: for the account's history only, never delivered (webhooks are off, or the type is
  /// one the integrator's backend is not told about, such as "token.refreshed").
  bool deliver = true;
};

/// An entry of an account's history (the admin UI's account page): an event about it, delivered
/// or not, as it was written with the change it reports.
struct AccountEvent {
  std::int64_t id = 0;  ///< increasing in write order
  std::int64_t account_id = 0;
  std::string client_id;
  std::string type;
  std::string body;  ///< the event's JSON envelope (never a token or a secret)
  core::TimePoint created_at{};
};

/// An event waiting in the outbox (or being delivered).
struct OutboxEntry {
  std::int64_t id = 0;  ///< increasing in enqueue order
  std::string type;
  std::string body;
  core::TimePoint created_at{};
  int attempts = 0;  ///< deliveries started, including the one this claim starts
  core::TimePoint next_attempt_at{};
  std::string last_error;
};

/// The amo_tokens table.
class ConnectionStore {
 public:
  virtual ~ConnectionStore() = default;

  /// Inserts, or replaces the row with the same key unconditionally (a fresh connect wins).
  /// Sets created_at (kept from an existing row), updated_at and version (old + 1, or 1); returns
  /// the stored row. `events` go to the outbox in the same transaction.
  virtual Task<Result<core::Connection>> Upsert(core::Connection connection,
                                                std::vector<Event> events) = 0;

  /// Replaces the row only if its version is still `expected_version` (compare-and-swap), bumping
  /// version and updated_at; `events` go to the outbox in the same transaction, and only if the
  /// swap succeeds. Errors: Errc::kConflict if it changed, Errc::kNotFound if gone.
  virtual Task<Result<core::Connection>> Replace(core::Connection connection,
                                                 std::int64_t expected_version,
                                                 std::vector<Event> events) = 0;

  /// Active rows whose next_refresh_at is set and not after `now`, earliest first, at most
  /// `limit`. The scheduler's query: it must stay cheap with 100,000 rows (an index).
  virtual Task<Result<std::vector<core::Connection>>> ListDue(core::TimePoint now,
                                                              std::size_t limit) = 0;

  virtual Task<Result<std::optional<core::Connection>>> Find(core::AccountKey key) = 0;
  /// Every row of `account_id`, whatever the integration.
  virtual Task<Result<std::vector<core::Connection>>> FindByAccount(std::int64_t account_id) = 0;
  /// All rows, ordered by account_id then client_id.
  virtual Task<Result<std::vector<core::Connection>>> List() = 0;
  /// Every row whose base_domain is `base_domain` (an account host, lower case), ordered by
  /// account_id then client_id. Indexed.
  virtual Task<Result<std::vector<core::Connection>>> FindByDomain(std::string base_domain) = 0;
};

/// Writes to amo_tokens committed by anyone sharing the store — this process or another instance —
/// as the engine learns of them (PostgreSQL: LISTEN/NOTIFY). It is what lets an instance keep a
/// token cache that another instance's refresh invalidates (service::CachedConnectionStore).
/// Implementations call the listener from their own thread, never while holding a lock the
/// listener could need.
class ConnectionChanges {
 public:
  struct Listener {
    /// A write of this row committed (delivered after the commit, possibly more than once).
    std::function<void(core::AccountKey)> changed;
    /// false: changes may be missed from now on (the listening connection dropped), so anything
    /// cached must be forgotten and nothing cached until true; true: listening (again), and every
    /// later commit will be reported.
    std::function<void(bool listening)> continuity;
  };
  virtual ~ConnectionChanges() = default;
  /// Starts delivering to `listener`; the first call of `continuity` tells the current state.
  /// At most one listener.
  virtual void Subscribe(Listener listener) = 0;
};

/// A count of the commits to the store, by anyone sharing it — this process or another —, that the
/// caller can read at once, on its own thread, without waiting for a lock (SQLite: PRAGMA
/// data_version on a connection of its own). It is the other way to keep a token cache coherent
/// (service::CachedConnectionStore): an entry tagged with the count read before its row was read
/// is served only while the count has not moved, so no commit can be missed.
class CommitCounter {
 public:
  virtual ~CommitCounter() = default;
  /// Equal to an earlier answer only if no write committed in between, by any connection of any
  /// process; it changes on every commit to any table (not only amo_tokens). nullopt: it cannot
  /// tell now without waiting (the database is locked for a moment, or failing): the caller
  /// reads the store. Has no busy handler: it does not wait for another connection's lock, so it
  /// may run on an I/O thread. Thread-safe.
  [[nodiscard]] virtual std::optional<std::uint64_t> CommitCount() noexcept = 0;
};

/// Who may refresh an account right now, across every process (and later every machine) sharing
/// the store: the cross-process half of single-flight refresh (docs/architecture.md).
/// A lease has an end, so a holder that dies frees it without anyone's help.
class RefreshLeases {
 public:
  virtual ~RefreshLeases() = default;
  /// Takes the lease of `key` for `holder` until `until` when nobody holds it, its holder's lease
  /// ended at or before `now`, or `holder` holds it already (then it is extended).
  /// True when `holder` holds it on return.
  virtual Task<Result<bool>> TryAcquire(core::AccountKey key,
                                        std::string holder,
                                        core::TimePoint now,
                                        core::TimePoint until) = 0;
  /// Gives the lease back if `holder` still holds it; otherwise does nothing.
  virtual Task<Result<void>> Release(core::AccountKey key, std::string holder) = 0;
  /// Who holds the lease of `key`, whether or not its lease has ended; nullopt when nobody does.
  virtual Task<Result<std::optional<std::string>>> Holder(core::AccountKey key) = 0;
  /// Takes the lease of `key` from `gone`, a holder known to have died (HolderLiveness), before
  /// its lease ends: `holder` holds it until `until` when `gone` held it (or `holder` already
  /// does, so that running it again after a lost answer gives the same result). False when
  /// anyone else holds it, or nobody: then the caller goes back to TryAcquire.
  virtual Task<Result<bool>> TakeOver(core::AccountKey key,
                                      std::string gone,
                                      std::string holder,
                                      core::TimePoint until) = 0;
  /// The refresh scheduler's batch, in one transaction: the rows ListDue(now, limit) would give
  /// (active, next_refresh_at set and not after `now`, earliest first) among those whose lease is
  /// free for `holder` as TryAcquire sees it (none, ended at or before `now`, or `holder`'s own),
  /// at most `limit`; each gets the lease for `holder` until `until`. Returned decrypted, as
  /// ListDue. A row another holder holds, or another claimer is taking at this moment, is skipped,
  /// never waited for: claimers running at once get disjoint batches.
  virtual Task<Result<std::vector<core::Connection>>> ClaimDueRefreshes(core::TimePoint now,
                                                                        std::string holder,
                                                                        core::TimePoint until,
                                                                        std::size_t limit) = 0;
};

/// Whether a lease holder (RefreshLeases' holder names, "host:boot-id/pid-namespace:pid:start:
/// random") is known to have died. Only a process of this kernel and PID namespace can be known
/// dead; of any other nothing is known, and its lease is waited out. Thread-safe.
class HolderLiveness {
 public:
  virtual ~HolderLiveness() = default;
  /// True only when `holder` is certainly not running: a false "gone" lets two processes
  /// refresh one account at once, which kills the integration.
  [[nodiscard]] virtual bool IsGone(std::string_view holder) const noexcept = 0;
};

/// The durable queue of webhook events (written by ConnectionStore writes and Enqueue).
/// Delivery is at least once: a claimed entry that is neither delivered nor failed (the process
/// died) becomes due again when its claim ends.
class EventOutbox {
 public:
  virtual ~EventOutbox() = default;
  virtual Task<Result<void>> Enqueue(std::vector<Event> events, core::TimePoint now) = 0;
  /// Undelivered entries due at `now` (next_attempt_at <= now), oldest first, at most `limit`;
  /// each gets attempts + 1 and next_attempt_at = `claim_until`, so no other process claims it
  /// meanwhile.
  virtual Task<Result<std::vector<OutboxEntry>>> ClaimDue(core::TimePoint now,
                                                          core::TimePoint claim_until,
                                                          std::size_t limit) = 0;
  /// Removes the entry from the queue for good (kept as delivered for inspection).
  virtual Task<Result<void>> MarkDelivered(std::int64_t id, core::TimePoint now) = 0;
  /// Records why delivery failed and when to try again.
  virtual Task<Result<void>> MarkFailed(std::int64_t id,
                                        std::string error,
                                        core::TimePoint next_attempt_at) = 0;
  /// Entries not yet delivered (for status pages and tests).
  virtual Task<Result<std::size_t>> CountPending() = 0;
};

/// The history of each account: the events written about it (Event::account_id), in the same
/// transaction as the change they report. The store keeps the newest kAccountHistoryKept entries
/// per (account, integration) and forgets older ones as new ones are written.
class AccountHistory {
 public:
  static constexpr std::size_t kAccountHistoryKept = 200;
  virtual ~AccountHistory() = default;
  /// The account's entries, every integration, newest first, at most `limit`. Indexed.
  virtual Task<Result<std::vector<AccountEvent>>> ListAccountEvents(std::int64_t account_id,
                                                                    std::size_t limit) = 0;
};

/// What a state was issued for.
enum class StatePurpose {
  kConnect,            ///< the standard button or link: an existing integration (protocol §2.1)
  kCreateIntegration,  ///< the metadata button: amoCRM creates an external integration (§2.2, §5)
};
/// As stored: "connect" | "create_integration". (Inline: the ports are a header-only library.)
[[nodiscard]] inline std::string_view ToString(StatePurpose p) {
  return p == StatePurpose::kCreateIntegration ? "create_integration" : "connect";
}
[[nodiscard]] inline std::optional<StatePurpose> ParseStatePurpose(std::string_view s) {
  if (s == "connect") {
    return StatePurpose::kConnect;
  }
  if (s == "create_integration") {
    return StatePurpose::kCreateIntegration;
  }
  return std::nullopt;
}

/// A `state` we issued and have not yet seen come back. Stored by hash (core::HashState).
struct PendingState {
  std::string state_hash;
  std::string client_id;  ///< the configured integration that issued it
  core::ConsentMode mode = core::ConsentMode::kPopup;
  StatePurpose purpose = StatePurpose::kConnect;
  core::TimePoint created_at{};
  core::TimePoint expires_at{};
  /// The backend's own reference for this flow (POST /v1/connect), handed back with
  /// account.connected; empty when none was given. Not a secret.
  std::string reference;
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
  /// The state if it is pending and not expired at `now`, leaving it pending (the secrets
  /// webhook checks a state the person's redirect will consume later).
  virtual Task<Result<std::optional<PendingState>>> Peek(std::string state_hash,
                                                         core::TimePoint now) = 0;
};

/// An integration amoCRM created for one authorization through a metadata button (protocol §2.2):
/// its keys arrive by the secrets webhook (§5), for the state that authorization carried.
struct ExternalIntegration {
  std::string client_id;
  Secret client_secret;
  std::string state_hash;  ///< the state it was created for: one integration per state
  core::TimePoint created_at{};
};

/// The external integrations' credentials, the client secret sealed at rest.
class IntegrationStore {
 public:
  virtual ~IntegrationStore() = default;
  /// Stores a new integration. Errors: Errc::kSecretsAlreadyReceived when its client_id or its
  /// state is stored already (a replayed or second webhook for one authorization).
  virtual Task<Result<void>> AddIntegration(ExternalIntegration integration) = 0;
  virtual Task<Result<std::optional<ExternalIntegration>>> FindIntegration(
      std::string client_id) = 0;
  virtual Task<Result<std::optional<ExternalIntegration>>> FindIntegrationByState(
      std::string state_hash) = 0;
  /// Every stored integration, ordered by client_id (`amoauth export`).
  virtual Task<Result<std::vector<ExternalIntegration>>> ListIntegrations() = 0;
  /// Deletes the integrations created before `created_before` that no connection names (no
  /// amo_tokens row has their client id, whatever its status): keys delivered for a flow that
  /// never connected — a stranger's, or a person's who gave up. Returns how many went.
  virtual Task<Result<std::size_t>> ForgetUnusedIntegrations(core::TimePoint created_before) = 0;
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
  /// answer whatever its status. `request` is read, not taken (a 401 replays it): the caller
  /// keeps it until the call completes. Errors: Errc::kAmoUnreachable.
  virtual Task<Result<net::HttpResponse>> Forward(std::string account_host,
                                                  const net::HttpRequest& request,
                                                  Secret access_token) = 0;
  /// GET https://{api_domain}/oauth2/account/current/subdomain with X-Refresh-Token (protocol
  /// §7.2): where the account lives now, after a rename. Does not consume the refresh token.
  /// Errors: as Refresh.
  virtual Task<Result<core::AccountDomain>> LookupDomain(std::string api_domain,
                                                         Secret refresh_token) = 0;
  /// POST https://{account_host}/oauth2/exchange_api_key (protocol §6); success is amoCRM's 202,
  /// after which the code arrives at the Redirect URI with from_exchange=1. Errors:
  /// Errc::kAmoApiKeyRejected (400), kAmoApiKeyForbidden (403), kAmoApiKeyTooOften (429),
  /// kAmoServerError, kAmoRejected, kAmoUnreachable.
  virtual Task<Result<void>> ExchangeApiKey(std::string account_host,
                                            core::ApiKeyExchangeRequest request) = 0;
};

/// How a code reached us without a person (protocol §2.6, §6).
enum class CodeSource {
  kWidget,    ///< the widget-install hook: from_widget
  kExchange,  ///< the exchange_api_key hook: from_exchange
};
[[nodiscard]] inline std::string_view ToString(CodeSource s) {
  return s == CodeSource::kWidget ? "widget" : "exchange";
}

/// An authorization code waiting in the durable queue to be exchanged in the background.
struct QueuedCode {
  std::int64_t id = 0;       ///< the store's; 0 before Enqueue
  Secret code;               ///< sealed at rest
  std::string account_host;  ///< the referer, already allowed by core::RefererPolicy
  std::string client_id;     ///< the integration the code was issued to
  CodeSource source = CodeSource::kWidget;
  core::TimePoint received_at{};
  core::TimePoint expires_at{};  ///< received_at + the code lifetime: give up after it
  int attempts = 0;              ///< exchanges started, including the one this claim starts
  core::TimePoint next_attempt_at{};
  std::string last_error;
};

/// Codes that arrive without a person and must survive a restart until exchanged: the hook is
/// answered once the code is stored, and a worker exchanges it later. Like EventOutbox, a claim
/// that is never finished (the process died) becomes due again when it ends.
class CodeQueue {
 public:
  virtual ~CodeQueue() = default;
  /// Stores `code` due at once. True if new; false if the same code (by hash) is already queued
  /// (a duplicate delivery: nothing changes). Errors: Errc::kBusy when the bounded queue is full.
  /// Entries leave only through Finish or GiveUp, so the worker reports every code's end.
  virtual Task<Result<bool>> Enqueue(QueuedCode code) = 0;
  /// Entries due at `now` (next_attempt_at <= now), oldest first, at most `limit`; each gets
  /// attempts + 1 and next_attempt_at = `claim_until`, so no other process claims it meanwhile.
  /// (Not ClaimDue: one store implements EventOutbox too, with the same parameters.)
  virtual Task<Result<std::vector<QueuedCode>>> ClaimDueCodes(core::TimePoint now,
                                                              core::TimePoint claim_until,
                                                              std::size_t limit) = 0;
  /// The code was exchanged: the entry is deleted (codes are secrets; nothing is kept).
  virtual Task<Result<void>> Finish(std::int64_t id) = 0;
  /// The attempt failed for now: record why and when to try again.
  virtual Task<Result<void>> Retry(std::int64_t id,
                                   std::string error,
                                   core::TimePoint next_attempt_at) = 0;
  /// The code will never be exchanged: the entry is deleted and `events` (telling the backend
  /// why) go to the outbox in the same transaction.
  virtual Task<Result<void>> GiveUp(std::int64_t id,
                                    std::vector<Event> events,
                                    core::TimePoint now) = 0;
  /// Entries still queued (for status and tests).
  virtual Task<Result<std::size_t>> CountQueued() = 0;
};

/// amoCRM's one exchange_api_key call per 5 minutes per (user, integration), kept across every
/// process sharing the store.
class ExchangeQuota {
 public:
  virtual ~ExchangeQuota() = default;
  /// Takes the subject's slot at `now` if its last take was at least `interval` ago (or never):
  /// nullopt. Otherwise nothing changes and the answer is when the next take is allowed.
  /// `subject_hash` is core::ApiKeyExchangeSubject: the store never sees the login.
  virtual Task<Result<std::optional<core::TimePoint>>> TryTake(std::string subject_hash,
                                                               core::TimePoint now,
                                                               core::Seconds interval) = 0;
  /// Gives back the slot TryTake took at `taken_at` (the same `now`): the next take is allowed at
  /// once. For a call amoCRM never processed (unreachable, timeout, 5xx). Nothing changes when
  /// the subject's slot is not that take (already given back, or taken again since).
  virtual Task<Result<void>> GiveBack(std::string subject_hash, core::TimePoint taken_at) = 0;
};

/// The integrator's backend, reached at AMOAUTH_WEBHOOK_URL.
class WebhookSender {
 public:
  virtual ~WebhookSender() = default;
  /// POSTs `body` (Content-Type: application/json) with `headers`; the HTTP status whatever it is.
  /// Errors: transport failures.
  virtual Task<Result<int>> Post(std::string body, net::HttpHeaders headers) = 0;
};

/// amo_tokens counted for monitoring (GET /metrics).
struct ConnectionCensus {
  /// Rows per status, indexed by core::ConnectionStatus.
  std::array<std::size_t, 3> by_status{};
  /// The earliest last_refresh_at among active rows that have one (a long-lived token has none):
  /// when the oldest token still in use was issued. nullopt: no such row.
  std::optional<core::TimePoint> oldest_refresh;
};

/// Cheap aggregate reads for monitoring: each an indexed query, never a scan of the tokens.
class StoreStatistics {
 public:
  virtual ~StoreStatistics() = default;
  virtual Task<Result<ConnectionCensus>> CountConnections() = 0;
};

/// What one pass of KeyRotation::RotateKeyBatch did.
struct KeyRotationBatch {
  /// Rows re-sealed under the current key in this batch.
  std::size_t rotated = 0;
  /// Rows that changed between the read and the write (a refresh, a disconnect): left for the
  /// next batch, which reads them again (a row the service rewrote is under the new key already).
  std::size_t changed = 0;
  /// Rows under the previous key's id that it does not open (tampered): left as they are.
  std::size_t unreadable = 0;
};

/// Moving every sealed column (amo_tokens' tokens, integrations' client secrets, code_queue's
/// codes) from the previous master key to the current one while instances keep running
/// (`amoauth rotate-key`, docs/adr/0005-key-rotation.md). Implemented by the engines beside
/// Store, not part of it: only the command uses it.
class KeyRotation {
 public:
  virtual ~KeyRotation() = default;
  /// Sealed rows per key id ("keyId" column), over the three tables.
  virtual Task<Result<std::vector<std::pair<std::string, std::int64_t>>>> CountByKeyId() = 0;
  /// Re-seals up to `limit` rows of each table that the previous key sealed, each with a
  /// compare-and-swap on what was read (the row's version and ciphertext), never touching
  /// version or updatedAt: a refresh that read the row before keeps its compare-and-swap.
  /// Errors: kCryptoFailure when the store has no previous key.
  virtual Task<Result<KeyRotationBatch>> RotateKeyBatch(std::size_t limit) = 0;
};

/// Everything amoauth keeps, behind one object: what an engine (store_sqlite, store_pg)
/// implements and what the composition root holds, whichever engine the configuration chose.
class Store : public ConnectionStore,
              public StateStore,
              public CodeLedger,
              public RefreshLeases,
              public EventOutbox,
              public IntegrationStore,
              public CodeQueue,
              public ExchangeQuota,
              public StoreStatistics,
              public AccountHistory {
 public:
  /// Both queues have an Enqueue: a call through Store picks one by its arguments.
  using CodeQueue::Enqueue;
  using EventOutbox::Enqueue;

  /// The schema version after migrations (`amoauth migrate`, `amoauth doctor`).
  [[nodiscard]] virtual int SchemaVersion() const = 0;
  /// "sqlite" or "postgresql", for people reading `amoauth doctor` and the logs.
  [[nodiscard]] virtual std::string_view Engine() const = 0;
};

}  // namespace amoauth::service
