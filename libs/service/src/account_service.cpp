#include "amoauth/service/account_service.hpp"

#include <array>
#include <charconv>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/core/disconnect_signature.hpp"
#include "amoauth/core/expiry_warnings.hpp"
#include "amoauth/core/iso_time.hpp"
#include "amoauth/core/token_exchange.hpp"
#include "amoauth/crypto/constant_time.hpp"
#include "amoauth/service/connection_builder.hpp"

namespace amoauth::service {
namespace {

namespace json = boost::json;

/// How often a caller waiting for another process's refresh looks at the row again.
constexpr std::chrono::milliseconds kLeasePoll{25};

/// How much longer than lease_ttl a lease may last in the store: stores keep whole seconds and
/// round a lease's end up and `now` down (docs/storage.md §3), so that none is taken over early.
constexpr std::chrono::seconds kLeaseRounding{2};

/// How often Disconnect re-reads and retries when a refresh or a connect wrote the row between
/// its read and its compare-and-swap.
constexpr int kDisconnectAttempts = 5;

constexpr std::string_view kDisconnectedMessage =
    "amoCRM reported that the account disconnected the integration";
constexpr std::string_view kOperatorDisconnectedMessage =
    "an operator disconnected the account in amoauth's admin UI";

/// A 401 this close to a long-lived token's exp is its expiry seen by a clock a little ahead of
/// ours, not a revocation.
constexpr std::chrono::seconds kLongLivedExpirySkew{60};

bool IsLongLived(const core::Connection& c) {
  return core::KindOf(c) == core::ConnectionKind::kLongLived;
}

/// What GET /v1/accounts/{id} and account.reauth_required say once a long-lived token is dead.
std::string LongLivedDeadMessage(const core::Connection& c, Errc reason) {
  if (reason == Errc::kLongLivedTokenExpired) {
    return "The long-lived token expired on " + core::FormatIsoTime(c.expires_at) +
           "; generate a new one in the integration's Keys tab and add it.";
  }
  return "amoCRM no longer accepts the long-lived token (revoked or expired); generate a new one "
         "in the integration's Keys tab and add it.";
}

/// amoCRM's block for abuse is nginx's HTML 403 page (protocol §7.4, §9.7); a 403 in JSON is an
/// API answer about rights or an IP allow-list, for this request only.
bool IsBlockPage(const net::HttpResponse& response) {
  const std::string_view type = response.headers.Get("Content-Type").value_or("");
  return type.find("json") == std::string_view::npos;
}

/// Retry-After (seconds form) or Kommo's body field retry_after; amoCRM may send neither.
std::chrono::seconds RetryAfterOf(const net::HttpResponse& response) {
  if (auto header = response.headers.Get("Retry-After")) {
    std::int64_t seconds = 0;
    const auto [end, ec] =
        std::from_chars(header->data(), header->data() + header->size(), seconds);
    if (ec == std::errc{} && seconds > 0) {
      return std::chrono::seconds{seconds};
    }
  }
  boost::system::error_code ec;
  const json::value body = json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    if (const json::value* v = body.as_object().if_contains("retry_after"); v && v->is_int64()) {
      return std::chrono::seconds{std::max<std::int64_t>(1, v->as_int64())};
    }
  }
  return std::chrono::seconds{1};
}

}  // namespace

AccountService::AccountService(IntegrationDirectory& integrations,
                               FlowSettings settings,
                               core::RefererPolicy referer_policy,
                               AccountPorts ports)
    : integrations_(integrations),
      settings_(std::move(settings)),
      referer_policy_(std::move(referer_policy)),
      ports_(ports) {}

Task<Result<std::vector<core::Connection>>> AccountService::List() {
  co_return co_await ports_.connections.List();
}

Task<Result<std::vector<core::Connection>>> AccountService::ListAccount(std::int64_t account_id) {
  co_return co_await ports_.connections.FindByAccount(account_id);
}

Task<Result<core::Connection>> AccountService::Get(std::int64_t account_id,
                                                   std::optional<std::string> client_id) {
  if (client_id) {
    core::AccountKey key{account_id, std::move(*client_id)};
    auto found = co_await ports_.connections.Find(std::move(key));
    if (!found) {
      co_return found.error();
    }
    if (!*found) {
      co_return Fail(Errc::kNotFound);
    }
    co_return std::move(**found);
  }
  auto rows = co_await ports_.connections.FindByAccount(account_id);
  if (!rows) {
    co_return rows.error();
  }
  const std::string& primary = integrations_.Primary().client_id;
  for (auto& row : *rows) {
    if (row.client_id == primary) {
      co_return std::move(row);
    }
  }
  if (rows->empty()) {
    co_return Fail(Errc::kNotFound);
  }
  if (rows->size() > 1) {
    co_return Fail(Errc::kIntegrationAmbiguous);
  }
  co_return std::move(rows->front());
}

boost::system::error_code AccountService::InactiveError(const core::Connection& c) const {
  if (c.status == core::ConnectionStatus::kDisconnected) {
    return make_error_code(Errc::kAccountDisconnected);
  }
  if (IsLongLived(c)) {
    return make_error_code(c.expires_at <= ports_.clock.Now() ? Errc::kLongLivedTokenExpired
                                                              : Errc::kLongLivedTokenRejected);
  }
  return make_error_code(Errc::kReauthRequired);
}

ConnectionStore& AccountService::Latest() const {
  return ports_.latest != nullptr ? *ports_.latest : ports_.connections;
}

bool AccountService::NeedsRefresh(const core::Connection& c) const {
  return c.expires_at - settings_.refresh.margin <= ports_.clock.Now();
}

bool AccountService::InBackoff(const core::Connection& c) const {
  return c.refresh_failures > 0 && ports_.clock.Now() < c.next_refresh_at;
}

Task<Result<core::Connection>> AccountService::FreshToken(std::int64_t account_id,
                                                          std::optional<std::string> client_id) {
  auto connection = co_await Get(account_id, std::move(client_id));
  if (!connection) {
    co_return connection;
  }
  if (connection->status != core::ConnectionStatus::kActive) {
    co_return InactiveError(*connection);
  }
  if (IsLongLived(*connection)) {
    // Never refreshed: handed out until its exp, to the second (protocol §7.5). Past it, the
    // leased path marks the account once and says so.
    if (connection->expires_at > ports_.clock.Now()) {
      co_return connection;
    }
    co_return co_await Refresh(std::move(*connection), Mode::kOnDemand);
  }
  if (!NeedsRefresh(*connection)) {
    co_return connection;
  }
  co_return co_await Refresh(std::move(*connection), Mode::kOnDemand);
}

Task<Result<core::Connection>> AccountService::ForceRefresh(std::int64_t account_id,
                                                            std::optional<std::string> client_id) {
  auto connection = co_await Get(account_id, std::move(client_id));
  if (!connection) {
    co_return connection;
  }
  if (connection->status != core::ConnectionStatus::kActive) {
    co_return InactiveError(*connection);
  }
  if (IsLongLived(*connection)) {
    co_return Fail(Errc::kLongLivedTokenNotRefreshable);
  }
  auto refreshed = co_await Refresh(*connection, Mode::kForced);
  // Every refresh rotates the refresh token; timestamps cannot tell, as a refresh within the same
  // second as the last one (whole seconds in the store, or a clock that stands still) looks old.
  if (refreshed && refreshed->refresh_token == connection->refresh_token) {
    // We joined a flight started for another reason (a caller who only needed a valid token)
    // that did not refresh: the operator asked for a refresh, so run one of our own.
    refreshed = co_await Refresh(std::move(*connection), Mode::kForced);
  }
  co_return refreshed;
}

Task<Result<core::Connection>> AccountService::RefreshIfDue(core::Connection due) {
  co_return co_await Refresh(std::move(due), Mode::kScheduled);
}

Task<Result<core::Connection>> AccountService::Refresh(core::Connection seen, Mode mode) {
  Key key{seen.account_id, seen.client_id};
  SingleFlight<Key, Result<core::Connection>>::Work work = [this, seen, mode]() {
    return RefreshLeader(seen, mode);
  };
  co_return co_await refreshes_.Run(std::move(key), std::move(work));
}

Task<Result<core::Connection>> AccountService::RefreshLeader(core::Connection seen, Mode mode) {
  // Within this process we are the only flight for the account; now make sure no other process
  // refreshes it at the same time. While another holds the lease, watch the row: when its version
  // moves, that process has committed and its result is ours too.
  const core::AccountKey key = seen.Key();
  // A dead holder's lease is taken over once it ends: wait that long, rounding included, or a
  // caller who came just after the holder gives up moments before the lease becomes free.
  const auto give_up =
      std::chrono::steady_clock::now() + settings_.lease_ttl + kLeaseRounding + kLeasePoll * 4;
  DeadHolderWatch dead_holder;
  for (;;) {
    const core::TimePoint now = ports_.clock.Now();
    auto taken = co_await ports_.leases.TryAcquire(
        key, settings_.instance_id, now, now + settings_.lease_ttl);
    if (!taken) {
      co_return taken.error();
    }
    if (*taken) {
      break;
    }
    // A failed look at the holder is only a missed chance to take over: keep waiting.
    auto taken_over = co_await TakeOverFromDeadHolder(key, dead_holder);
    if (taken_over && *taken_over) {
      break;
    }
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_after(kLeasePoll);
    co_await timer.async_wait(boost::asio::use_awaitable);
    auto current = co_await Latest().Find(key);
    if (!current) {
      co_return current.error();
    }
    if (!*current) {
      co_return Fail(Errc::kNotFound);
    }
    if ((*current)->version != seen.version) {
      if ((*current)->status != core::ConnectionStatus::kActive) {
        co_return InactiveError(**current);
      }
      if (mode == Mode::kConfirmDisconnect) {
        // Another refresh committed, maybe before amoCRM revoked the pair: ask again ourselves.
        seen = std::move(**current);
      } else if (mode != Mode::kOnDemand || !NeedsRefresh(**current) ||
                 (*current)->expires_at > ports_.clock.Now()) {
        // Another process just refreshed: its token is valid, so it is the caller's. (With a
        // margin as long as the token's life it is due again at once; waiting for the lease
        // to refresh it once more would only race the other processes for nothing.)
        co_return std::move(**current);
      }
      seen = std::move(**current);  // refreshed, yet already due again: our turn next
    }
    if (std::chrono::steady_clock::now() > give_up) {
      spdlog::warn("account {}: another process holds the refresh lease for too long",
                   key.account_id);
      co_return Fail(Errc::kBusy);
    }
  }
  auto result = co_await RefreshLeased(std::move(seen), mode);
  if (auto released = co_await ports_.leases.Release(key, settings_.instance_id); !released) {
    // The lease ends by itself; another process waits at most lease_ttl.
    spdlog::warn("account {}: could not release the refresh lease: {}",
                 key.account_id,
                 released.error().message());
  }
  co_return result;
}

Task<Result<bool>> AccountService::TakeOverFromDeadHolder(const core::AccountKey& key,
                                                          DeadHolderWatch& watch) {
  // A holder that died (SIGKILL, OOM, a crash) would block this account's refreshes until its
  // lease ends, a minute by default. When it was a process of this host, the kernel tells: its
  // lease is taken over once dead_holder_grace has passed since we first saw it gone.
  if (ports_.liveness == nullptr) {
    co_return false;
  }
  auto holder = co_await ports_.leases.Holder(key);
  if (!holder) {
    // result<bool> has no implicit error constructor (bool converts from anything).
    co_return Result<bool>(boost::system::in_place_error, holder.error());
  }
  if (!*holder || **holder == settings_.instance_id) {
    co_return false;
  }
  if (**holder != watch.holder) {
    watch = DeadHolderWatch{.holder = **holder};
  }
  if (!ports_.liveness->IsGone(watch.holder)) {
    co_return false;
  }
  const auto seen_now = std::chrono::steady_clock::now();
  if (!watch.gone_since) {
    watch.gone_since = seen_now;
  }
  if (seen_now - *watch.gone_since < settings_.dead_holder_grace) {
    co_return false;
  }
  const core::TimePoint until = ports_.clock.Now() + settings_.lease_ttl;
  auto taken = co_await ports_.leases.TakeOver(key, watch.holder, settings_.instance_id, until);
  if (taken && *taken) {
    spdlog::warn("account {}: took over the refresh lease of a process that died", key.account_id);
  }
  co_return taken;
}

Task<Result<core::Connection>> AccountService::RefreshLeased(core::Connection seen, Mode mode) {
  // Re-read under the lease: whatever happened before we got it is in the row now. Past any
  // cache: a cached row may predate another instance's refresh, and its refresh token is spent.
  auto current = co_await Latest().Find(seen.Key());
  if (!current) {
    co_return current.error();
  }
  if (!*current) {
    co_return Fail(Errc::kNotFound);
  }
  core::Connection row = std::move(**current);
  if (row.status != core::ConnectionStatus::kActive) {
    co_return InactiveError(row);
  }
  const core::TimePoint now = ports_.clock.Now();
  const bool moved = row.version != seen.version;
  switch (mode) {
    case Mode::kOnDemand:
      if (moved && !NeedsRefresh(row)) {
        co_return row;
      }
      if (InBackoff(row)) {
        // The last attempt failed moments ago: do not hammer amoCRM for every caller. A token
        // that still works is still useful.
        if (row.expires_at > now) {
          co_return row;
        }
        co_return Fail(Errc::kRefreshDeferred);
      }
      break;
    case Mode::kScheduled:
      if (moved && (row.next_refresh_at == core::TimePoint{} || row.next_refresh_at > now)) {
        co_return row;
      }
      break;
    case Mode::kForced:
      if (moved && row.last_refresh_at > seen.last_refresh_at) {
        co_return row;
      }
      break;
    case Mode::kConfirmDisconnect:
      break;  // only amoCRM's answer now tells
  }
  if (IsLongLived(row)) {
    co_return co_await VisitLongLived(std::move(row), mode);
  }
  co_return co_await SendRefresh(std::move(row), mode);
}

Task<Result<core::Connection>> AccountService::VisitLongLived(core::Connection row, Mode mode) {
  // A long-lived token cannot be refreshed; its visits warn ahead of its end, and at the end a
  // person must act.
  const core::TimePoint now = ports_.clock.Now();
  if (row.expires_at <= now) {
    spdlog::warn("account {}: its long-lived token expired at {}; a new one is needed",
                 row.account_id,
                 core::FormatIsoTime(row.expires_at));
    co_return co_await MarkReauthRequired(std::move(row),
                                          make_error_code(Errc::kLongLivedTokenExpired));
  }
  if (mode != Mode::kScheduled || row.next_refresh_at == core::TimePoint{} ||
      row.next_refresh_at > now) {
    co_return row;
  }
  const std::int64_t version = row.version;
  const std::int64_t days_left = core::DaysLeft(row.expires_at, now);
  row.next_refresh_at = core::NextExpiryVisit(row.expires_at, now);
  spdlog::info("account {}: its long-lived token expires at {} ({} days left)",
               row.account_id,
               core::FormatIsoTime(row.expires_at),
               days_left);
  json::object data{{"expires_at", core::FormatIsoTime(row.expires_at)}, {"days_left", days_left}};
  auto events = ports_.events.Make(event_type::kTokenExpiring, row, json::serialize(data));
  co_return co_await ports_.connections.Replace(std::move(row), version, std::move(events));
}

Task<Result<core::Connection>> AccountService::SendRefresh(core::Connection row, Mode mode) {
  auto integration = co_await integrations_.Resolve(row.client_id);
  if (!integration) {
    // A row of an integration we no longer know (its keys are gone): nobody can refresh it.
    spdlog::error("account {}: no credentials for its integration {}: {}",
                  row.account_id,
                  row.client_id,
                  integration.error().message());
    co_return integration.error();
  }
  core::RefreshTokenGrant request{
      .client_id = integration->client_id,
      .client_secret = integration->client_secret,
      .refresh_token = row.refresh_token,
      .redirect_uri = integration->redirect_uri,
  };
  std::string host = row.base_domain;
  core::RefreshTokenGrant retry_request = request;
  if (ports_.metrics != nullptr) {
    ports_.metrics->RefreshSent(mode == Mode::kScheduled  ? RefreshTrigger::kScheduled
                                : mode == Mode::kOnDemand ? RefreshTrigger::kOnDemand
                                                          : RefreshTrigger::kForced);
  }
  auto grant = co_await ports_.amo.Refresh(host, std::move(request));
  if (grant) {
    CountRefresh(RefreshResult::kSuccess);
    co_return co_await StoreRefreshed(std::move(row), std::move(*grant), std::move(host));
  }
  boost::system::error_code error = grant.error();
  core::RefreshFailure kind = core::ClassifyRefreshFailure(error);
  if (kind == core::RefreshFailure::kHostMoved) {
    // 401/404 with no hint: the account may have been renamed (protocol §7.2, §9.5). Ask amoCRM
    // where it lives now and try there, once.
    auto new_host = co_await LookUpMovedHost(row);
    if (!new_host) {
      kind = core::RefreshFailure::kTransient;
    } else {
      spdlog::info("account {}: amoCRM says it moved from {} to {}; retrying the refresh there",
                   row.account_id,
                   row.base_domain,
                   *new_host);
      auto retried = co_await ports_.amo.Refresh(*new_host, std::move(retry_request));
      if (retried) {
        CountRefresh(RefreshResult::kSuccess);
        co_return co_await StoreRefreshed(std::move(row), std::move(*retried), *new_host);
      }
      error = retried.error();
      kind = core::ClassifyRefreshFailure(error);
      if (kind == core::RefreshFailure::kHostMoved) {
        kind = core::RefreshFailure::kTransient;
      }
    }
  }
  CountRefresh(kind == core::RefreshFailure::kDead ? RefreshResult::kReauthRequired
                                                   : RefreshResult::kFailed);
  if (kind == core::RefreshFailure::kDead && mode == Mode::kConfirmDisconnect) {
    co_return error;  // the disconnect is confirmed: Disconnect erases the row
  }
  if (kind == core::RefreshFailure::kDead) {
    spdlog::warn("account {}: amoCRM refused the refresh token ({}); reauthorization required",
                 row.account_id,
                 error.message());
    co_return co_await MarkReauthRequired(std::move(row), error);
  }
  // Someone who asked for a refresh must hear that it failed; a caller who needs a token can
  // still use one that works.
  const bool token_will_do = mode != Mode::kForced && mode != Mode::kConfirmDisconnect;
  co_return co_await RecordFailure(std::move(row), error, token_will_do);
}

void AccountService::CountRefresh(RefreshResult result) const {
  if (ports_.metrics != nullptr) {
    ports_.metrics->RefreshEnded(result);
  }
}

Task<std::optional<std::string>> AccountService::LookUpMovedHost(const core::Connection& row) {
  if (row.api_domain.empty() || !referer_policy_.Check(row.api_domain)) {
    co_return std::nullopt;
  }
  auto found = co_await ports_.amo.LookupDomain(row.api_domain, row.refresh_token);
  if (!found) {
    spdlog::warn("account {}: domain lookup failed: {}", row.account_id, found.error().message());
    co_return std::nullopt;
  }
  if (found->id != row.account_id) {
    spdlog::warn("account {}: domain lookup named another account ({})", row.account_id, found->id);
    co_return std::nullopt;
  }
  // The answer decides where client_secret goes next: it must pass the same allow-list as a
  // referer does.
  auto host = referer_policy_.Check(found->domain);
  if (!host || host->host == row.base_domain) {
    co_return std::nullopt;
  }
  co_return host->host;
}

Task<Result<core::Connection>> AccountService::StoreRefreshed(core::Connection row,
                                                              core::TokenGrant grant,
                                                              std::string host) {
  // From here to Replace the only copy of the new pair is in memory: keep this short
  // (docs/architecture.md, "If the process dies inside a refresh").
  const core::TimePoint now = ports_.clock.Now();
  auto fresh = BuildConnection(grant, host, row.client_id, now);
  if (!fresh) {
    co_return fresh.error();
  }
  if (fresh->account_id != row.account_id) {
    spdlog::error("account {}: amoCRM's refresh answer is a token of account {}; not stored",
                  row.account_id,
                  fresh->account_id);
    co_return Fail(Errc::kAmoMalformedResponse);
  }
  if (fresh->api_domain.empty()) {
    fresh->api_domain = row.api_domain;  // keep what the token does not tell us again
  }
  if (fresh->user_id.empty()) {
    fresh->user_id = row.user_id;
  }
  fresh->last_refresh_at = now;
  fresh->refresh_failures = 0;
  fresh->next_refresh_at = core::NextRefreshAt(*fresh, settings_.refresh);
  std::vector<Event> events;
  if (row.refresh_failures > 0) {
    json::object data{{"failed_attempts", row.refresh_failures}, {"last_error", row.last_error}};
    events = ports_.events.Make(event_type::kTokenRefreshRecovered, *fresh, json::serialize(data));
  }
  {
    // The account's history shows every refresh (the backend is told only of recoveries).
    json::object data{{"expires_at", core::FormatIsoTime(fresh->expires_at)}};
    auto refreshed =
        ports_.events.MakeHistory(event_type::kTokenRefreshed, *fresh, json::serialize(data));
    events.insert(events.end(),
                  std::make_move_iterator(refreshed.begin()),
                  std::make_move_iterator(refreshed.end()));
  }
  const int failures_before = row.refresh_failures;
  auto stored = co_await ports_.connections.Replace(*fresh, row.version, std::move(events));
  if (!stored) {
    if (Is(stored.error(), Errc::kConflict)) {
      // Only a new connect (Upsert) and the disconnect hook write without the lease; either
      // supersedes our grant.
      spdlog::warn(
          "account {}: the account was connected again or disconnected during a refresh; keeping "
          "the stored connection",
          row.account_id);
      auto current = co_await Latest().Find(row.Key());
      if (current && *current) {
        if ((*current)->status != core::ConnectionStatus::kActive) {
          co_return InactiveError(**current);  // e.g. the disconnect hook came meanwhile
        }
        co_return std::move(**current);
      }
    }
    spdlog::error("account {}: the refreshed token pair could not be stored: {}",
                  row.account_id,
                  stored.error().message());
    co_return stored.error();
  }
  if (failures_before > 0) {
    spdlog::info("account {}: access token refreshed after {} failed attempts",
                 stored->account_id,
                 failures_before);
  } else {
    spdlog::info("account {}: access token refreshed", stored->account_id);
  }
  co_return stored;
}

Task<Result<core::Connection>> AccountService::RecordFailure(core::Connection row,
                                                             boost::system::error_code error,
                                                             bool token_will_do) {
  const core::TimePoint now = ports_.clock.Now();
  const bool misconfigured =
      core::ClassifyRefreshFailure(error) == core::RefreshFailure::kMisconfigured;
  row.refresh_failures += 1;
  row.last_error = error.message();
  if (misconfigured) {
    row.last_error += " Check AMO_CLIENT_ID, AMO_CLIENT_SECRET and AMO_REDIRECT_URI.";
  }
  row.last_error_at = now;
  const core::Seconds delay =
      misconfigured
          ? settings_.refresh.backoff_cap
          : core::Backoff(row.refresh_failures, settings_.refresh, core::Jitter(ports_.random));
  row.next_refresh_at = now + delay;
  spdlog::warn("account {}: refresh attempt {} failed ({}); next attempt in {} s",
               row.account_id,
               row.refresh_failures,
               error.message(),
               delay.count());
  json::object data{{"error", std::string(ErrorCode(error))},
                    {"message", row.last_error},
                    {"attempt", row.refresh_failures},
                    {"next_attempt_at", core::FormatIsoTime(row.next_refresh_at)},
                    {"access_token_expires_at", core::FormatIsoTime(row.expires_at)}};
  auto events = ports_.events.Make(event_type::kTokenRefreshFailed, row, json::serialize(data));
  const std::int64_t version = row.version;
  const bool still_valid = token_will_do && row.expires_at > now;
  auto stored = co_await ports_.connections.Replace(std::move(row), version, std::move(events));
  if (stored && still_valid) {
    co_return stored;  // the caller can still use the current token
  }
  co_return error;
}

Task<Result<core::Connection>> AccountService::MarkReauthRequired(
    core::Connection row, boost::system::error_code reason) {
  const std::int64_t version = row.version;
  // A long-lived token's end is its own error (it says what to do); an OAuth pair's is
  // kReauthRequired whatever amoCRM said.
  const bool long_lived = IsLongLived(row);
  const boost::system::error_code outcome =
      long_lived ? reason : make_error_code(Errc::kReauthRequired);
  row.status = core::ConnectionStatus::kReauthRequired;
  row.last_error =
      long_lived ? LongLivedDeadMessage(row, static_cast<Errc>(reason.value())) : reason.message();
  row.last_error_at = ports_.clock.Now();
  row.next_refresh_at = core::TimePoint{};
  json::object data{{"reason", std::string(ErrorCode(reason))}, {"message", row.last_error}};
  auto events = ports_.events.Make(event_type::kAccountReauthRequired, row, json::serialize(data));
  auto stored = co_await ports_.connections.Replace(std::move(row), version, std::move(events));
  if (!stored && !Is(stored.error(), Errc::kConflict)) {
    co_return stored.error();
  }
  co_return outcome;
}

Task<Result<net::HttpResponse>> AccountService::Proxy(std::int64_t account_id,
                                                      net::HttpRequest request,
                                                      std::optional<std::string> client_id) {
  const auto started = std::chrono::steady_clock::now();
  auto answer = co_await ProxyUncounted(account_id, std::move(request), std::move(client_id));
  if (ports_.metrics != nullptr) {
    const auto latency = std::chrono::steady_clock::now() - started;
    if (answer) {
      ports_.metrics->ProxyAnswered(answer->status, latency);
    } else {
      const ProxyFailure reason = Is(answer.error(), Errc::kThrottled)    ? ProxyFailure::kThrottled
                                  : Is(answer.error(), Errc::kAmoBlocked) ? ProxyFailure::kBlocked
                                  : Is(answer.error(), Errc::kAmoUnreachable)
                                      ? ProxyFailure::kUnreachable
                                      : ProxyFailure::kOther;
      ports_.metrics->ProxyFailed(reason, latency);
    }
  }
  co_return answer;
}

Task<Result<net::HttpResponse>> AccountService::ProxyUncounted(
    std::int64_t account_id, net::HttpRequest request, std::optional<std::string> client_id) {
  auto connection = co_await FreshToken(account_id, std::move(client_id));
  if (!connection) {
    co_return connection.error();
  }
  auto turn = co_await ports_.limiter.Acquire(account_id);
  if (!turn) {
    co_return turn.error();
  }
  std::string host = connection->base_domain;
  Secret token = connection->access_token;
  auto response = co_await ports_.amo.Forward(std::move(host), request, std::move(token));
  *turn = ApiLimiter::Permit();  // answered: its place in the window starts to expire
  if (response && response->status == 401 && IsLongLived(*connection)) {
    // Final for a long-lived token (protocol §7.4): nothing to refresh, nothing to replay.
    // amoCRM's answer goes back as it is; the account needs a new token from a person.
    const Errc reason = connection->expires_at <= ports_.clock.Now() + kLongLivedExpirySkew
                            ? Errc::kLongLivedTokenExpired
                            : Errc::kLongLivedTokenRejected;
    spdlog::warn("account {}: amoCRM answered 401 to its long-lived token; a new one is needed",
                 account_id);
    // A lost compare-and-swap means a new token was added meanwhile: it is left alone.
    (void)co_await MarkReauthRequired(*connection, make_error_code(reason));
    co_return response;
  }
  if (response && response->status == 401) {
    // amoCRM no longer accepts the token (revoked, or refreshed elsewhere): refresh once,
    // replay once.
    auto refreshed = co_await Refresh(*connection, Mode::kOnDemand);
    if (!refreshed) {
      co_return refreshed.error();
    }
    auto replay_turn = co_await ports_.limiter.Acquire(account_id);
    if (!replay_turn) {
      co_return replay_turn.error();
    }
    // The wait for a turn may outlast the token: another process may have refreshed again
    // meanwhile, and amoCRM revokes the access token a refresh replaces. Send the newest, read
    // past the token cache, which another instance's refresh reaches a moment later.
    core::Connection replay_with = std::move(*refreshed);
    if (auto latest = co_await Latest().Find(replay_with.Key());
        latest && *latest && (*latest)->status == core::ConnectionStatus::kActive &&
        (*latest)->version > replay_with.version) {
      replay_with = std::move(**latest);
    }
    std::string replay_host = replay_with.base_domain;
    Secret replay_token = replay_with.access_token;
    response =
        co_await ports_.amo.Forward(std::move(replay_host), request, std::move(replay_token));
  }
  if (response && response->status == 429) {
    const std::chrono::seconds wait = RetryAfterOf(*response);
    spdlog::warn("account {}: amoCRM answered 429; holding requests back for {} s",
                 account_id,
                 wait.count());
    ports_.limiter.OnRateLimited(account_id, wait);
  }
  if (response && response->status == 403 && IsBlockPage(*response) &&
      ports_.limiter.OnBlocked(account_id)) {
    co_await ReportBlocked(std::move(*connection));
  }
  co_return response;
}

Task<Result<void>> AccountService::Disconnect(std::string client_uuid,
                                              std::string account_id_text,
                                              std::string signature) {
  // Client ids are not secret; the signature is, and is compared in constant time.
  auto integration = co_await integrations_.Resolve(client_uuid);
  if (!integration) {
    co_return Is(integration.error(), Errc::kIntegrationUnknown) ? Fail(Errc::kSignatureInvalid)
                                                                 : integration.error();
  }
  if (!core::VerifyDisconnectSignature(
          integration->client_secret.Reveal(), client_uuid, account_id_text, signature)) {
    co_return Fail(Errc::kSignatureInvalid);
  }
  std::int64_t account_id = 0;
  const auto [end, ec] = std::from_chars(
      account_id_text.data(), account_id_text.data() + account_id_text.size(), account_id);
  if (ec != std::errc{} || end != account_id_text.data() + account_id_text.size() ||
      account_id <= 0) {
    co_return Fail(Errc::kInvalidArgument);
  }
  const core::AccountKey key{account_id, integration->client_id};
  co_return co_await EraseTokens(key, kDisconnectedMessage, "amocrm", /*confirm_with_amo=*/true);
}

Task<Result<void>> AccountService::DisconnectByOperator(std::int64_t account_id,
                                                        std::string client_id) {
  const core::AccountKey key{account_id, std::move(client_id)};
  auto found = co_await Latest().Find(key);
  if (!found) {
    co_return found.error();
  }
  if (!*found) {
    co_return Fail(Errc::kNotFound);
  }
  co_return co_await EraseTokens(
      key, kOperatorDisconnectedMessage, "operator", /*confirm_with_amo=*/false);
}

Task<Result<void>> AccountService::EraseTokens(core::AccountKey key,
                                               std::string_view message,
                                               std::string_view by,
                                               bool confirm_with_amo) {
  const std::int64_t account_id = key.account_id;
  // The hook's signature has no timestamp: amoCRM must confirm it (threat 4). An operator's
  // disconnect needs no confirmation.
  bool confirmed = !confirm_with_amo;
  for (int attempt = 1;; ++attempt) {
    auto found = co_await Latest().Find(key);
    if (!found) {
      co_return found.error();
    }
    if (!*found) {
      spdlog::info("account {}: disconnect ({}): it was not connected", account_id, by);
      co_return Result<void>{};
    }
    core::Connection row = std::move(**found);
    if (row.status == core::ConnectionStatus::kDisconnected) {
      co_return Result<void>{};  // a repeated hook: told once already
    }
    if (row.status == core::ConnectionStatus::kActive && !confirmed) {
      // The signature has no timestamp: a captured hook replays forever. Only amoCRM can tell a
      // replay from the real thing (docs/security.md, threat 4).
      auto [verdict, why] = co_await ConfirmDisconnect(row);
      switch (verdict) {
        case HookVerdict::kStillConnected: {
          spdlog::warn(
              "account {}: disconnect hook ignored: amoCRM still accepts its tokens (a replayed "
              "hook?)",
              account_id);
          auto latest = co_await Latest().Find(key);
          const core::Connection& about = latest && *latest ? **latest : row;
          json::object data{{"reason", "tokens_still_valid"},
                            {"message", "disconnect hook ignored: tokens still valid"}};
          auto events = ports_.events.Make(
              event_type::kAccountDisconnectIgnored, about, json::serialize(data));
          if (!events.empty()) {
            if (auto queued = co_await ports_.outbox.Enqueue(std::move(events), ports_.clock.Now());
                !queued) {
              spdlog::error("account {}: could not queue the disconnect_ignored event: {}",
                            account_id,
                            queued.error().message());
            }
          }
          co_return Result<void>{};
        }
        case HookVerdict::kUnknown:
          spdlog::warn(
              "account {}: disconnect hook not confirmed, amoCRM did not answer ({}); tokens kept, "
              "the next refresh settles it",
              account_id,
              why.message());
          co_return why;
        case HookVerdict::kRowChanged:
          if (attempt == kDisconnectAttempts) {
            co_return why;
          }
          continue;  // connected again or disconnected meanwhile: look again
        case HookVerdict::kGone:
          confirmed = true;
          continue;  // read the row again (the refresh may have moved it) and erase it
      }
    }
    const std::int64_t version = row.version;
    row.status = core::ConnectionStatus::kDisconnected;
    row.access_token = Secret();
    row.refresh_token = Secret();
    row.next_refresh_at = core::TimePoint{};
    row.refresh_failures = 0;
    row.last_error = std::string(message);
    row.last_error_at = ports_.clock.Now();
    const json::object data{{"by", by}};
    auto events = ports_.events.Make(event_type::kAccountDisconnected, row, json::serialize(data));
    auto stored = co_await ports_.connections.Replace(std::move(row), version, std::move(events));
    if (stored) {
      spdlog::info("account {}: disconnected ({}); its tokens are erased", account_id, by);
      co_return Result<void>{};
    }
    if (Is(stored.error(), Errc::kNotFound)) {
      co_return Result<void>{};  // removed meanwhile: nothing left to disconnect
    }
    if (!Is(stored.error(), Errc::kConflict) || attempt == kDisconnectAttempts) {
      spdlog::error(
          "account {}: could not record the disconnect: {}", account_id, stored.error().message());
      co_return stored.error();
    }
    // A refresh or a connect wrote the row meanwhile: read it again and disconnect that.
  }
}

Task<std::pair<AccountService::HookVerdict, boost::system::error_code>>
AccountService::ConfirmDisconnect(core::Connection row) {
  using Verdict = std::pair<HookVerdict, boost::system::error_code>;
  if (IsLongLived(row)) {
    // Nothing to refresh: one cheap API call with the token says whether amoCRM still takes it.
    auto turn = co_await ports_.limiter.Acquire(row.account_id);
    if (!turn) {
      co_return Verdict{HookVerdict::kUnknown, turn.error()};
    }
    net::HttpRequest probe;
    probe.method = "GET";
    probe.target = "/api/v4/account";
    std::string host = row.base_domain;
    Secret token = row.access_token;
    auto answer = co_await ports_.amo.Forward(std::move(host), probe, std::move(token));
    if (!answer) {
      co_return Verdict{HookVerdict::kUnknown, answer.error()};
    }
    if (answer->status == 200) {
      co_return Verdict{HookVerdict::kStillConnected, {}};
    }
    if (answer->status == 401) {
      co_return Verdict{HookVerdict::kGone, make_error_code(Errc::kAmoUnauthorized)};
    }
    co_return Verdict{HookVerdict::kUnknown,
                      make_error_code(core::ClassifyAmoFailure(answer->status, answer->body).code)};
  }
  for (int attempt = 1;; ++attempt) {
    // A flight that was running when the hook came may have been answered before amoCRM revoked
    // the pair; only a refresh sent after the hook arrived tells. So join none: lead one.
    auto led = std::make_shared<bool>(false);
    Key key{row.account_id, row.client_id};
    SingleFlight<Key, Result<core::Connection>>::Work work = [this, row, led]() {
      *led = true;
      return RefreshLeader(row, Mode::kConfirmDisconnect);
    };
    auto result = co_await refreshes_.Run(std::move(key), std::move(work));
    if (!*led && attempt < 3) {
      continue;
    }
    if (result) {
      co_return Verdict{HookVerdict::kStillConnected, {}};
    }
    const boost::system::error_code error = result.error();
    if (Is(error, Errc::kAccountDisconnected) || Is(error, Errc::kReauthRequired) ||
        Is(error, Errc::kNotFound)) {
      co_return Verdict{HookVerdict::kRowChanged, error};
    }
    if (core::ClassifyRefreshFailure(error) == core::RefreshFailure::kDead) {
      co_return Verdict{HookVerdict::kGone, error};
    }
    co_return Verdict{HookVerdict::kUnknown, error};
  }
}

Task<void> AccountService::ReportBlocked(core::Connection connection) {
  const std::int64_t account_id = connection.account_id;
  const auto cooloff = ports_.limiter.BlockedFor(account_id).value_or(std::chrono::seconds{0});
  spdlog::error("account {}: amoCRM answered 403 (account or IP blocked); no requests for {} s",
                account_id,
                cooloff.count());
  json::object data{{"cooloff_seconds", cooloff.count()}};
  auto events =
      ports_.events.Make(event_type::kAccountApiBlocked, connection, json::serialize(data));
  if (!events.empty()) {
    if (auto queued = co_await ports_.outbox.Enqueue(std::move(events), ports_.clock.Now());
        !queued) {
      spdlog::error("account {}: could not queue the api_blocked event: {}",
                    account_id,
                    queued.error().message());
    }
  }
}

}  // namespace amoauth::service
