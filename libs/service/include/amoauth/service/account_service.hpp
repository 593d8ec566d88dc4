#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/core/referer_policy.hpp"
#include "amoauth/service/api_limiter.hpp"
#include "amoauth/service/events.hpp"
#include "amoauth/service/integration.hpp"
#include "amoauth/service/integration_directory.hpp"
#include "amoauth/service/metrics.hpp"
#include "amoauth/service/ports.hpp"
#include "amoauth/service/single_flight.hpp"

namespace amoauth::service {

/// What AccountService drives. All must outlive it.
struct AccountPorts {
  ConnectionStore& connections;
  RefreshLeases& leases;
  EventOutbox& outbox;
  AmoClient& amo;
  ApiLimiter& limiter;
  const EventFactory& events;
  const core::Clock& clock;
  core::Random& random;
  /// The store behind `connections` when that is a cache (CachedConnectionStore): the reads that
  /// decide a refresh or a compare-and-swap (under the refresh lease, after a lost swap) go here,
  /// as a cached row may predate another instance's refresh. nullptr: `connections` itself.
  ConnectionStore* latest = nullptr;
  /// Counts refreshes and proxied calls (GET /metrics); nullptr: nothing is counted.
  MetricsRecorder* metrics = nullptr;
  /// Tells when a refresh lease's holder has died, so that its lease is taken over before it
  /// ends (FlowSettings::dead_holder_grace); nullptr: leases of dead holders are waited out.
  const HolderLiveness* liveness = nullptr;
};

/// Using a connection: listing accounts, handing out a valid access token, proxying API calls,
/// and refreshing — on demand, on schedule, or when forced.
///
/// A refresh is single-flight per (account, integration): within the process callers join one
/// flight (SingleFlight); across processes the flight's leader first takes the account's lease in
/// the store (RefreshLeases), re-reads the row, and commits the new pair with compare-and-swap on
/// the row's version before anyone uses it (docs/architecture.md, "Refreshing"). Thread-safe.
class AccountService {
 public:
  AccountService(IntegrationDirectory& integrations,
                 FlowSettings settings,
                 core::RefererPolicy referer_policy,
                 AccountPorts ports);

  Task<Result<std::vector<core::Connection>>> List();
  /// Every row of the account, whatever the integration (the admin UI's account page).
  Task<Result<std::vector<core::Connection>>> ListAccount(std::int64_t account_id);

  /// The account's connection through integration `client_id`; without one, through the
  /// configured integration if the account has that, else its only one. Errors: kNotFound,
  /// kIntegrationAmbiguous (several external integrations and no client_id).
  Task<Result<core::Connection>> Get(std::int64_t account_id,
                                     std::optional<std::string> client_id = std::nullopt);

  /// A connection whose access token is valid for at least the refresh margin, refreshing first
  /// if needed. While a failed refresh backs off, a token that has not yet expired is still
  /// handed out. A long-lived token (core::KindOf) is never refreshed: it is handed out until its
  /// exp, then the account becomes reauth_required. Errors: kNotFound, kReauthRequired,
  /// kAccountDisconnected, kRefreshDeferred, the errors of a refresh; for a long-lived token
  /// kLongLivedTokenExpired, kLongLivedTokenRejected.
  Task<Result<core::Connection>> FreshToken(std::int64_t account_id,
                                            std::optional<std::string> client_id = std::nullopt);

  /// Refreshes now, whatever the expiry (POST /v1/accounts/{id}/refresh). Single-flight too.
  /// Errors: those of FreshToken; kLongLivedTokenNotRefreshable for a long-lived token.
  Task<Result<core::Connection>> ForceRefresh(std::int64_t account_id,
                                              std::optional<std::string> client_id = std::nullopt);

  /// The scheduler's call for a row it claimed (RefreshLeases::ClaimDueRefreshes, as
  /// LeaseHolder()): refreshes unless someone already did (or rescheduled it) since the row was
  /// read. For a long-lived token it warns (token.expiring) instead, or marks the account
  /// reauth_required once the token has expired.
  Task<Result<core::Connection>> RefreshIfDue(core::Connection due);

  /// Sends `request` (its target is the amoCRM path + query, e.g. "/api/v4/account?with=users")
  /// to the account's host with a fresh token, keeping to the account's rate limit. On a 401 it
  /// refreshes once (single-flight) and replays once — except for a long-lived token, whose 401
  /// is final: the answer comes back and the account becomes reauth_required; a 429 holds the
  /// account back for its retry_after; a 403 stops it for the cool-off. amoCRM's answer comes back
  /// whatever its status. Errors: those of FreshToken, kThrottled, kAmoBlocked.
  Task<Result<net::HttpResponse>> Proxy(std::int64_t account_id,
                                        net::HttpRequest request,
                                        std::optional<std::string> client_id = std::nullopt);

  /// amoCRM's disconnect hook (protocol §7.1): the account disconnected the integration. Checks
  /// that `client_uuid` is one of our integrations (the configured one or an external one) and
  /// `signature` verifies under its client secret (in constant time), else
  /// Errc::kSignatureInvalid and nothing changes; `account_id_text` must
  /// be a positive decimal integer (Errc::kInvalidArgument).
  ///
  /// The signature covers no time, so a captured hook stays valid forever (docs/security.md,
  /// threat 4): before erasing an active row's tokens amoCRM is asked whether they still work —
  /// a refresh (single-flight, under the lease, always sent), or for a long-lived token one
  /// GET /api/v4/account. amoCRM refuses them (revoked): the row becomes kDisconnected with both
  /// tokens erased, in one compare-and-swap with its account.disconnected event. amoCRM accepts
  /// them: the hook is a replay; nothing is erased (the refresh's new pair is stored as any
  /// refresh's), account.disconnect_ignored is queued, and it is a success. amoCRM cannot say
  /// (unreachable, 5xx, 429…): that error, the tokens kept and the failed refresh recorded as
  /// any failed refresh (its backoff brings the next attempt, which settles it). A row that is
  /// not active (reauth_required) is disconnected without asking. An unknown account and a row
  /// already disconnected are successes that change nothing (hooks may repeat).
  Task<Result<void>> Disconnect(std::string client_uuid,
                                std::string account_id_text,
                                std::string signature);

  /// An operator disconnects the row (account, `client_id`) in the admin UI: as the hook does,
  /// it becomes kDisconnected with both tokens erased, in one compare-and-swap with its
  /// account.disconnected event (data.by = "operator"). amoCRM is not told: the integration stays
  /// installed in the account until someone removes it there. A row already disconnected is a
  /// success that changes nothing. Errors: kNotFound (no such row), the store's.
  Task<Result<void>> DisconnectByOperator(std::int64_t account_id, std::string client_id);

  [[nodiscard]] const ApiLimiter& Limiter() const { return ports_.limiter; }
  [[nodiscard]] const core::RefreshPolicy& Policy() const { return settings_.refresh; }
  /// The holder this process's refreshes take leases as, and for how long: a claim made with
  /// them (RefreshLeases::ClaimDueRefreshes) is one the refresh extends instead of waiting for.
  [[nodiscard]] const std::string& LeaseHolder() const { return settings_.instance_id; }
  [[nodiscard]] std::chrono::seconds LeaseTtl() const { return settings_.lease_ttl; }
  /// Refreshes running now in this process (one per account being refreshed, whoever asked):
  /// a graceful shutdown waits for them, so that no new pair from amoCRM goes uncommitted.
  [[nodiscard]] std::size_t RefreshesInFlight() const { return refreshes_.InFlight(); }

 private:
  enum class Mode {
    kOnDemand,   ///< a caller needs a token: skip if someone else refreshed meanwhile
    kScheduled,  ///< the scheduler: skip if the row is no longer due
    kForced,     ///< an operator: refresh unless someone else just did
    /// the disconnect hook asks amoCRM: always sent; a dead refresh token is returned as the
    /// error, not recorded (Disconnect erases the row)
    kConfirmDisconnect,
  };
  /// What amoCRM says about a row the disconnect hook names.
  enum class HookVerdict { kGone, kStillConnected, kUnknown, kRowChanged };
  /// Asks amoCRM whether `row`'s tokens still work (see Disconnect); with the reason for kUnknown.
  Task<std::pair<HookVerdict, boost::system::error_code>> ConfirmDisconnect(core::Connection row);
  using Key = std::pair<std::int64_t, std::string>;  // not the mode: one flight per account

  Task<Result<core::Connection>> Refresh(core::Connection seen, Mode mode);
  /// Proxy without the counting.
  Task<Result<net::HttpResponse>> ProxyUncounted(std::int64_t account_id,
                                                 net::HttpRequest request,
                                                 std::optional<std::string> client_id);
  /// Tells the metrics recorder, if there is one, what amoCRM made of a refresh grant.
  void CountRefresh(RefreshResult result) const;
  Task<Result<core::Connection>> RefreshLeader(core::Connection seen, Mode mode);
  /// A waiter's view of the lease's holder: which one, and since when it is known dead.
  struct DeadHolderWatch {
    std::string holder;
    std::optional<std::chrono::steady_clock::time_point> gone_since;
  };
  /// While waiting for a lease: takes it over if its holder has died (HolderLiveness) and
  /// settings_.dead_holder_grace has passed since that was first seen. True: the lease is ours.
  Task<Result<bool>> TakeOverFromDeadHolder(const core::AccountKey& key, DeadHolderWatch& watch);
  /// Under the lease: decides whether a refresh is still needed and does it.
  Task<Result<core::Connection>> RefreshLeased(core::Connection seen, Mode mode);
  /// Sends the refresh grant and stores the outcome (new pair, failure, or reauth_required).
  Task<Result<core::Connection>> SendRefresh(core::Connection row, Mode mode);
  /// Under the lease, for a long-lived token (no refresh token): past its exp, marks the account
  /// reauth_required (kLongLivedTokenExpired); on a due scheduled visit, sends token.expiring and
  /// moves next_refresh_at to the next warning (core::NextExpiryVisit); otherwise the row as is.
  Task<Result<core::Connection>> VisitLongLived(core::Connection row, Mode mode);
  Task<Result<core::Connection>> StoreRefreshed(core::Connection row,
                                                core::TokenGrant grant,
                                                std::string host);
  /// Records a failed attempt and its backoff. Returns the row when `token_will_do` and its access
  /// token still works, else the error.
  Task<Result<core::Connection>> RecordFailure(core::Connection row,
                                               boost::system::error_code error,
                                               bool token_will_do);
  Task<Result<core::Connection>> MarkReauthRequired(core::Connection row,
                                                    boost::system::error_code reason);
  /// Asks amoCRM where the account lives now (protocol §7.2). nullopt: nowhere new.
  Task<std::optional<std::string>> LookUpMovedHost(const core::Connection& row);
  Task<void> ReportBlocked(core::Connection connection);
  /// Disconnect's work: the row becomes kDisconnected with its tokens erased and `message` as its
  /// last error, with account.disconnected (data.by = `by`); retried on a conflicting write.
  /// `confirm_with_amo` (amoCRM's hook): an active row is erased only once amoCRM refuses its
  /// tokens (ConfirmDisconnect); if it still takes them the hook is a replay and is ignored.
  Task<Result<void>> EraseTokens(core::AccountKey key,
                                 std::string_view message,
                                 std::string_view by,
                                 bool confirm_with_amo);

  /// The error a caller gets for a row that is not active: why no token can be handed out.
  [[nodiscard]] boost::system::error_code InactiveError(const core::Connection& c) const;

  /// Where reads that must see the latest commit go (AccountPorts::latest).
  [[nodiscard]] ConnectionStore& Latest() const;

  [[nodiscard]] bool NeedsRefresh(const core::Connection& c) const;
  [[nodiscard]] bool InBackoff(const core::Connection& c) const;

  IntegrationDirectory& integrations_;
  FlowSettings settings_;
  core::RefererPolicy referer_policy_;
  AccountPorts ports_;
  SingleFlight<Key, Result<core::Connection>> refreshes_;
};

}  // namespace amoauth::service
