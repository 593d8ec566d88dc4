#pragma once

#include <string>
#include <vector>

/// Reads amoauth's tables straight from the database, with the engine's own client library, not
/// through amoauth: what a system test checks must not depend on the code under test.
namespace amoauth::testing {

/// One webhook_outbox row: the event body exactly as it is POSTed, and whether it was delivered.
struct OutboxRow {
  std::string body;
  bool delivered = false;
};

/// Every row of webhook_outbox, oldest first. `database_url` is AMOAUTH_DATABASE_URL
/// (sqlite://PATH, postgresql://…). Throws std::runtime_error with the reason.
std::vector<OutboxRow> ReadOutbox(const std::string& database_url);

}  // namespace amoauth::testing
