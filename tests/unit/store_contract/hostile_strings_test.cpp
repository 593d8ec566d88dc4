// Hostile strings through every port of the store (docs/security.md, threat 12): each string field
// that comes from outside gets NUL bytes, invalid UTF-8, surrogate halves, 1 MiB, quotes,
// backslashes, LIKE wildcards, SQL comments and statements, CR/LF — fixed values and seeded random
// ones. Each either comes back byte for byte or is refused with Errc::kInvalidArgument, and a
// refused write leaves nothing behind: no row in any table, no half-changed row.
//
// The rule both engines keep (store_schema::IsStorableText, kMaxKeyBytes): text is valid UTF-8
// without NUL; keys (client ids, hosts, hashes) are at most 1 KiB; sealed secrets are any bytes.
// This file checks the rule with a decoder of its own, not the store's.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/errc.hpp"
#include "run_co.hpp"
#include "store_engine.hpp"
#include "store_test_helpers.hpp"

namespace amoauth::testing::store {
namespace {

using core::Connection;

constexpr std::size_t kMaxKeyBytes = 1024;  // docs/storage.md, "Text values"
constexpr std::size_t kMiB = 1024 * 1024;

/// Valid UTF-8 by decoding each code point and judging it: no NUL, no surrogate, no overlong form,
/// nothing past U+10FFFF.
bool Utf8WithoutNul(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    std::uint32_t cp = 0;
    if (lead < 0x80) {
      length = 1;
      cp = lead;
    } else if ((lead >> 5U) == 0x6) {
      length = 2;
      cp = lead & 0x1FU;
    } else if ((lead >> 4U) == 0xE) {
      length = 3;
      cp = lead & 0x0FU;
    } else if ((lead >> 3U) == 0x1E) {
      length = 4;
      cp = lead & 0x07U;
    } else {
      return false;
    }
    if (i + length > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6U) != 0x2) {
        return false;
      }
      cp = (cp << 6U) | (c & 0x3FU);
    }
    constexpr std::uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp == 0 || cp < kShortest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

/// Printable for a failure message: the length and the first bytes, escaped.
std::string Describe(const std::string& s) {
  std::string out = std::to_string(s.size()) + " bytes \"";
  for (std::size_t i = 0; i < s.size() && i < 48; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4U];
      out += kHex[c & 0xFU];
    }
  }
  return out + (s.size() > 48 ? "\"…" : "\"");
}

std::vector<std::string> FixedValues() {
  using namespace std::string_literals;
  std::string utf8_mib;
  while (utf8_mib.size() + 2 <= kMiB) {
    utf8_mib += "я";
  }
  return {
      "plain",
      "it's \"quoted\" `twice`",
      R"(back\slash\\ \' \" \0 \n)",
      "100%_done %% __ [a-z]*",
      "x'; -- the rest is a comment",
      "'); DROP TABLE amo_tokens; --",
      "/* block */ 1=1 OR '1'='1",
      "$1 $$ ?1 :name @p E'\\x00'",
      "line one\nline two\r\nthree\r",
      "\t\v\f\x01\x07\x1b[31m\x7f",
      "a\0b"s,
      "\0"s,
      "trailing NUL\0"s,
      "\xff\xfe\xfd",
      "abc\xe2\x82",               // a sequence cut short
      "\xc0\xaf",                  // overlong '/'
      "\xe0\x80\xaf",              // overlong '/', three bytes
      "\xed\xa0\x80",              // a high surrogate half
      "\xed\xbf\xbf",              // a low surrogate half
      "\xed\xa0\xbd\xed\xb8\x80",  // a surrogate pair as CESU-8
      "\xf4\x90\x80\x80",          // past U+10FFFF
      "\x80 continuation first",
      "Привет, 世界 🙂 \u2028\u2029",
      "\xef\xbb\xbfwith a BOM",
      std::string(kMaxKeyBytes, 'k'),      // the longest key
      std::string(kMaxKeyBytes + 1, 'k'),  // one byte too long for a key
      std::string(kMiB, 'x'),
      utf8_mib,
      std::string(kMiB, 'x') + "\xff",
  };
}

/// Concatenations of hostile pieces and random bytes, never empty.
std::vector<std::string> RandomValues(std::uint32_t seed, int count) {
  using namespace std::string_literals;
  const std::vector<std::string> pieces = {
      "a",  "Z",  "0",  "'",   "\"",   "\\",           "%",    "_", ";",    "--", "/*",
      "*/", "\n", "\r", "\0"s, "\xff", "\xed\xa0\x80", "\xc3", "я", "🙂", " ",  "DROP TABLE x",
      "$1", "?"};
  std::mt19937 random(seed);
  std::vector<std::string> values;
  for (int i = 0; i < count; ++i) {
    std::string v;
    const int parts = 1 + static_cast<int>(random() % 8);
    for (int k = 0; k < parts; ++k) {
      if (random() % 4 == 0) {
        v += static_cast<char>(random() % 256);
      } else {
        v += pieces[random() % pieces.size()];
      }
    }
    values.push_back(std::move(v));
  }
  return values;
}

enum class Kind {
  kText,   ///< any length
  kKey,    ///< at most kMaxKeyBytes
  kBytes,  ///< sealed: any bytes
};

bool Storable(const std::string& v, Kind kind) {
  if (kind == Kind::kBytes) {
    return true;
  }
  return Utf8WithoutNul(v) && (kind == Kind::kText || v.size() <= kMaxKeyBytes);
}

/// A field's value as bytes: a text as it is, a sealed secret revealed.
std::string Bytes(const std::string& text) {
  return text;
}
std::string Bytes(const Secret& secret) {
  return std::string(secret.Reveal());
}

/// The fields, each written and read back through the store's ports.
class HostileFields {
 public:
  HostileFields(service::Store& store,
                boost::asio::io_context& ioc,
                std::function<Rows(const std::string&)> query)
      : store_(store), ioc_(ioc), query_(std::move(query)) {}

  /// One field: writes `value` through its port, for a row of its own (`n` makes it unique), and
  /// returns what reading it back gives, or the write's error. A field that changes a row checks
  /// itself that a refused change left the row as it was.
  struct Field {
    std::string name;
    Kind kind;
    std::function<Result<std::string>(const std::string& value, std::int64_t n)> write_read;
    /// It writes a row of its own first (the row it then changes): the row count grows by it.
    bool changes_a_new_row = false;
  };

  /// The row of one account, read by its id only (a hostile key cannot hide it).
  std::optional<core::Connection> RowOf(std::int64_t account_id) {
    auto rows = Unwrap(Run(store_.FindByAccount(account_id)));
    EXPECT_LE(rows.size(), 1U);
    return rows.empty() ? std::nullopt : std::optional<core::Connection>(std::move(rows.front()));
  }

  /// Upserts a row for account `n` with `member` set to the value; reads it back by the id.
  template <class Member>
  Field ConnectionField(std::string name, Kind kind, Member Connection::*member) {
    return {std::move(name), kind, [this, member](const std::string& v, std::int64_t n) {
              Connection c = MakeConnection(n, "client-a");
              c.*member = Member(v);
              auto written = Run(store_.Upsert(c, {}));
              if (!written) {
                EXPECT_FALSE(RowOf(n).has_value()) << "a refused upsert left its row";
                return Result<std::string>(written.error());
              }
              auto row = RowOf(n);
              return row ? Result<std::string>(Bytes((*row).*member))
                         : Result<std::string>(Fail(Errc::kNotFound));
            }};
  }

  /// Adds integration `n` with `member` set to the value; finds it again by its state.
  template <class Member>
  Field IntegrationField(std::string name,
                         Kind kind,
                         Member service::ExternalIntegration::*member) {
    return {std::move(name), kind, [this, member](const std::string& v, std::int64_t n) {
              service::ExternalIntegration i{.client_id = "ext-" + std::to_string(n),
                                             .client_secret = Secret("secret"),
                                             .state_hash = "state-of-ext-" + std::to_string(n),
                                             .created_at = At(0)};
              i.*member = Member(v);
              auto added = Run(store_.AddIntegration(i));
              if (!added) {
                return Result<std::string>(added.error());
              }
              auto found = Unwrap(Run(store_.FindIntegrationByState(i.state_hash)));
              return found ? Result<std::string>(Bytes((*found).*member))
                           : Result<std::string>(Fail(Errc::kNotFound));
            }};
  }

  /// Queues code `n` with `member` set to the value; claims it back, and finishes it.
  template <class Member>
  Field QueuedCodeField(std::string name, Kind kind, Member service::QueuedCode::*member) {
    return {std::move(name), kind, [this, member](const std::string& v, std::int64_t n) {
              service::QueuedCode code = MakeQueuedCode("def502-" + std::to_string(n));
              code.*member = Member(v);
              auto enqueued = Run(store_.Enqueue(code));
              if (!enqueued) {
                return Result<std::string>(enqueued.error());
              }
              auto claimed = ClaimOneCode();
              if (!claimed) {
                return Result<std::string>(claimed.error());
              }
              Unwrap(Run(store_.Finish(claimed->id)));
              return Result<std::string>(Bytes((*claimed).*member));
            }};
  }

  /// The one queued code due at `now`, claimed for a minute.
  Result<service::QueuedCode> ClaimOneCode(core::TimePoint now = At(0)) {
    auto due = Unwrap(Run(store_.ClaimDueCodes(now, now + std::chrono::seconds(60), 10)));
    if (due.size() != 1) {
      ADD_FAILURE() << due.size() << " codes due, one expected";
      return Fail(Errc::kNotFound);
    }
    return due.front();
  }

  /// The one outbox entry due at `now`, claimed until `until` (by default past the test's end).
  Result<service::OutboxEntry> ClaimOne(core::TimePoint now = At(0),
                                        core::TimePoint until = At(1'000'000)) {
    auto due = Unwrap(Run(store_.ClaimDue(now, until, 10)));
    if (due.size() != 1) {
      ADD_FAILURE() << due.size() << " outbox entries due, one expected";
      return Fail(Errc::kNotFound);
    }
    return due.front();
  }

  std::vector<Field> Fields() {
    std::vector<Field> fields;
    fields.push_back(ConnectionField("amo_tokens.clientId", Kind::kKey, &Connection::client_id));
    fields.push_back(
        ConnectionField("amo_tokens.baseDomain", Kind::kKey, &Connection::base_domain));
    fields.push_back(ConnectionField("amo_tokens.apiDomain", Kind::kText, &Connection::api_domain));
    fields.push_back(ConnectionField("amo_tokens.userId", Kind::kText, &Connection::user_id));
    fields.push_back(
        ConnectionField("amo_tokens.accessToken", Kind::kBytes, &Connection::access_token));
    fields.push_back(
        ConnectionField("amo_tokens.refreshToken", Kind::kBytes, &Connection::refresh_token));

    // A refresh's failure written by compare-and-swap: refused, the row keeps its version.
    fields.push_back({"amo_tokens.lastError (Replace)",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        const auto stored = Unwrap(Run(store_.Upsert(MakeConnection(n, "c"), {})));
                        core::Connection changed = stored;
                        changed.last_error = v;
                        changed.refresh_failures = 1;
                        auto replaced = Run(store_.Replace(changed, stored.version, {}));
                        const auto row = RowOf(n);
                        if (!row) {
                          return Fail(Errc::kNotFound);
                        }
                        if (!replaced) {
                          EXPECT_EQ(row->version, stored.version) << "a refused replace wrote";
                          EXPECT_EQ(row->refresh_failures, 0);
                          return replaced.error();
                        }
                        return row->last_error;
                      },
                      true});

    // An event written with its row: both, or neither.
    fields.push_back(
        {"webhook_outbox.body (with Upsert)",
         Kind::kText,
         [this](const std::string& v, std::int64_t n) -> Result<std::string> {
           std::vector<service::Event> events = {
               {.type = "account.connected", .body = v, .account_id = n, .client_id = "client-a"}};
           auto written = Run(store_.Upsert(MakeConnection(n, "client-a"), events));
           if (!written) {
             EXPECT_FALSE(RowOf(n).has_value()) << "the row went without its event";
             return written.error();
           }
           auto history = Unwrap(Run(store_.ListAccountEvents(n, 10)));
           EXPECT_EQ(history.size(), 1U);
           if (!history.empty()) {
             EXPECT_EQ(history.front().body, v) << "account_events.body";
           }
           auto entry = ClaimOne();
           return entry ? Result<std::string>(entry->body) : Result<std::string>(entry.error());
         }});
    fields.push_back({"webhook_outbox.type",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t) -> Result<std::string> {
                        std::vector<service::Event> events = {{.type = v, .body = "{}"}};
                        auto written = Run(store_.Enqueue(std::move(events), At(0)));
                        if (!written) {
                          return written.error();
                        }
                        auto entry = ClaimOne();
                        return entry ? Result<std::string>(entry->type)
                                     : Result<std::string>(entry.error());
                      }});
    fields.push_back({"account_events.clientId",
                      Kind::kKey,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        std::vector<service::Event> events = {{.type = "token.refreshed",
                                                               .body = "{}",
                                                               .account_id = n,
                                                               .client_id = v,
                                                               .deliver = false}};
                        auto written = Run(store_.Enqueue(std::move(events), At(0)));
                        if (!written) {
                          return written.error();
                        }
                        auto history = Unwrap(Run(store_.ListAccountEvents(n, 10)));
                        if (history.size() != 1) {
                          return Fail(Errc::kNotFound);
                        }
                        return history.front().client_id;
                      }});
    // A delivery's failure: refused, the entry keeps its last error.
    fields.push_back({"webhook_outbox.lastError",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t) -> Result<std::string> {
                        std::vector<service::Event> events = {{.type = "t", .body = "{}"}};
                        Unwrap(Run(store_.Enqueue(std::move(events), At(0))));
                        auto entry = ClaimOne(At(0), At(500));
                        if (!entry) {
                          return entry.error();
                        }
                        auto failed = Run(store_.MarkFailed(entry->id, v, At(0)));
                        auto again = ClaimOne(At(500));
                        if (!again) {
                          return again.error();
                        }
                        if (!failed) {
                          EXPECT_EQ(again->last_error, "") << "a refused failure was written";
                          return failed.error();
                        }
                        return again->last_error;
                      },
                      true});

    fields.push_back({"oauth_states.stateHash",
                      Kind::kKey,
                      [this](const std::string& v, std::int64_t) -> Result<std::string> {
                        auto put = Run(store_.Put(MakeState(v, kNow), At(0)));
                        if (!put) {
                          return put.error();
                        }
                        auto taken = Unwrap(Run(store_.Take(v, At(0))));
                        return taken ? Result<std::string>(taken->state_hash)
                                     : Result<std::string>(Fail(Errc::kNotFound));
                      }});
    fields.push_back({"oauth_states.clientId",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        service::PendingState state = MakeState("state-" + std::to_string(n), kNow);
                        state.client_id = v;
                        auto put = Run(store_.Put(state, At(0)));
                        if (!put) {
                          return put.error();
                        }
                        auto peeked = Unwrap(Run(store_.Peek(state.state_hash, At(0))));
                        return peeked ? Result<std::string>(peeked->client_id)
                                      : Result<std::string>(Fail(Errc::kNotFound));
                      }});
    fields.push_back({"oauth_states.flow_reference",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        service::PendingState state =
                            MakeState("state-ref-" + std::to_string(n), kNow);
                        state.reference = v;
                        auto put = Run(store_.Put(state, At(0)));
                        if (!put) {
                          return put.error();
                        }
                        auto taken = Unwrap(Run(store_.Take(state.state_hash, At(0))));
                        return taken ? Result<std::string>(taken->reference)
                                     : Result<std::string>(Fail(Errc::kNotFound));
                      }});

    fields.push_back(IntegrationField(
        "integrations.clientId", Kind::kKey, &service::ExternalIntegration::client_id));
    fields.push_back(IntegrationField(
        "integrations.stateHash", Kind::kKey, &service::ExternalIntegration::state_hash));
    fields.push_back(IntegrationField(
        "integrations.clientSecret", Kind::kBytes, &service::ExternalIntegration::client_secret));

    // The ledger answers "new" once, then "seen": what it read back.
    fields.push_back({"used_codes.codeHash",
                      Kind::kKey,
                      [this](const std::string& v, std::int64_t) -> Result<std::string> {
                        auto first = Run(store_.MarkUsed(v, At(0)));
                        if (!first) {
                          return first.error();
                        }
                        EXPECT_TRUE(*first);
                        EXPECT_FALSE(Unwrap(Run(store_.MarkUsed(v, At(0)))));
                        return v;
                      }});

    fields.push_back(QueuedCodeField("code_queue.code", Kind::kBytes, &service::QueuedCode::code));
    fields.push_back(
        QueuedCodeField("code_queue.accountHost", Kind::kText, &service::QueuedCode::account_host));
    fields.push_back(
        QueuedCodeField("code_queue.clientId", Kind::kText, &service::QueuedCode::client_id));
    // A failed attempt: refused, the entry keeps its last error.
    fields.push_back({"code_queue.lastError",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        Unwrap(Run(store_.Enqueue(MakeQueuedCode("def502-" + std::to_string(n)))));
                        auto claimed = ClaimOneCode();
                        if (!claimed) {
                          return claimed.error();
                        }
                        auto retried = Run(store_.Retry(claimed->id, v, At(0)));
                        // Due again at once, or when the first claim ends if nothing was written.
                        auto again = ClaimOneCode(At(60));
                        if (!again) {
                          return again.error();
                        }
                        Unwrap(Run(store_.Finish(again->id)));
                        if (!retried) {
                          EXPECT_EQ(again->last_error, "") << "a refused retry was written";
                          return retried.error();
                        }
                        return again->last_error;
                      }});
    // Giving a code up deletes it and writes its event: both, or neither.
    fields.push_back(
        {"code_queue GiveUp event body",
         Kind::kText,
         [this](const std::string& v, std::int64_t n) -> Result<std::string> {
           Unwrap(Run(store_.Enqueue(MakeQueuedCode("def502-" + std::to_string(n)))));
           auto claimed = ClaimOneCode();
           if (!claimed) {
             return claimed.error();
           }
           std::vector<service::Event> events = {{.type = "code.exchange_failed", .body = v}};
           auto given_up = Run(store_.GiveUp(claimed->id, events, At(0)));
           if (!given_up) {
             EXPECT_EQ(Unwrap(Run(store_.CountQueued())), 1U) << "the code went without its event";
             Unwrap(Run(store_.Finish(claimed->id)));
             return given_up.error();
           }
           EXPECT_EQ(Unwrap(Run(store_.CountQueued())), 0U);
           auto entry = ClaimOne();
           return entry ? Result<std::string>(entry->body) : Result<std::string>(entry.error());
         }});

    // A lease: held for its holder (another is refused), given back by that holder only.
    fields.push_back({"refresh_leases.clientId",
                      Kind::kKey,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        const core::AccountKey key{n, v};
                        auto taken = Run(store_.TryAcquire(key, "holder-a", At(0), At(30)));
                        if (!taken) {
                          return taken.error();
                        }
                        EXPECT_TRUE(*taken);
                        EXPECT_FALSE(
                            Unwrap(Run(store_.TryAcquire(key, "holder-b", At(0), At(30)))));
                        return v;
                      }});
    fields.push_back({"refresh_leases.holder",
                      Kind::kText,
                      [this](const std::string& v, std::int64_t n) -> Result<std::string> {
                        const core::AccountKey key{n, "client-a"};
                        auto taken = Run(store_.TryAcquire(key, v, At(0), At(30)));
                        if (!taken) {
                          return taken.error();
                        }
                        EXPECT_TRUE(*taken);
                        EXPECT_FALSE(Unwrap(Run(store_.TryAcquire(key, "other", At(0), At(30)))));
                        Unwrap(Run(store_.Release(key, v)));
                        EXPECT_TRUE(Unwrap(Run(store_.TryAcquire(key, "other", At(0), At(30)))))
                            << "the holder's release did not match its own lease";
                        return v;
                      }});
    fields.push_back({"exchange_quota.subjectHash",
                      Kind::kKey,
                      [this](const std::string& v, std::int64_t) -> Result<std::string> {
                        const std::chrono::seconds interval(300);
                        auto taken = Run(store_.TryTake(v, At(0), interval));
                        if (!taken) {
                          return taken.error();
                        }
                        EXPECT_FALSE(taken->has_value());
                        EXPECT_TRUE(Unwrap(Run(store_.TryTake(v, At(1), interval))).has_value());
                        return v;
                      }});
    return fields;
  }

  /// Rows in every table: a refused write adds none.
  std::string TotalRows() {
    return query_(
        R"(SELECT (SELECT count(*) FROM amo_tokens) + (SELECT count(*) FROM webhook_outbox)
             + (SELECT count(*) FROM account_events) + (SELECT count(*) FROM oauth_states)
             + (SELECT count(*) FROM integrations) + (SELECT count(*) FROM used_codes)
             + (SELECT count(*) FROM code_queue) + (SELECT count(*) FROM refresh_leases)
             + (SELECT count(*) FROM exchange_quota))")[0][0];
  }

  template <class T>
  T Run(boost::asio::awaitable<T> aw) {
    return RunCo(ioc_, std::move(aw));
  }

 private:
  service::Store& store_;
  boost::asio::io_context& ioc_;
  std::function<Rows(const std::string&)> query_;
};

TEST_P(StoreContract, HostileStringsRoundTripByteForByteOrAreRefusedAndLeaveNothing) {
  std::uint32_t seed = 20261201;
  if (const char* given = std::getenv("AMOAUTH_TEST_SEED"); given != nullptr) {
    seed = static_cast<std::uint32_t>(std::strtoul(given, nullptr, 10));
  }
  std::cout << "[ seed     ] AMOAUTH_TEST_SEED=" << seed << "\n";
  RecordProperty("seed", std::to_string(seed));
  std::vector<std::string> values;
  std::set<std::string> seen;  // each once: a ledger or a quota answers a repeat differently
  for (std::string& v : FixedValues()) {
    if (seen.insert(v).second) {
      values.push_back(std::move(v));
    }
  }
  for (std::string& v : RandomValues(seed, 40)) {
    if (seen.insert(v).second) {
      values.push_back(std::move(v));
    }
  }

  auto store = OpenStore();
  HostileFields world(*store, ioc_, [this](const std::string& sql) { return Query(sql); });
  std::int64_t n = 1000;
  std::size_t refused = 0;
  std::size_t stored = 0;
  for (const HostileFields::Field& field : world.Fields()) {
    for (const std::string& value : values) {
      ++n;
      SCOPED_TRACE(field.name + " = " + Describe(value) + " (seed " + std::to_string(seed) + ")");
      const std::string rows_before = world.TotalRows();
      auto read = field.write_read(value, n);
      if (Storable(value, field.kind)) {
        ASSERT_TRUE(read.has_value()) << read.error().message();
        EXPECT_TRUE(*read == value) << "read back as " << Describe(*read);
        ++stored;
      } else {
        ASSERT_FALSE(read.has_value()) << "stored, read back as " << Describe(*read);
        EXPECT_EQ(read.error(), make_error_code(Errc::kInvalidArgument)) << read.error().message();
        if (!field.changes_a_new_row) {
          EXPECT_EQ(world.TotalRows(), rows_before) << "a refused write left a row";
        }
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 100U);
  EXPECT_GT(stored, 500U);

  // Reads with a hostile key refuse or find nothing; they never fail otherwise.
  for (const std::string& value : values) {
    SCOPED_TRACE(Describe(value));
    const core::AccountKey key{1, value};
    auto found = Run(store->Find(key));
    if (Storable(value, Kind::kText)) {
      ASSERT_TRUE(found.has_value()) << found.error().message();
      EXPECT_FALSE(found->has_value());
    } else {
      ASSERT_FALSE(found.has_value());
      EXPECT_EQ(found.error(), make_error_code(Errc::kInvalidArgument));
    }
  }
}

}  // namespace
}  // namespace amoauth::testing::store
