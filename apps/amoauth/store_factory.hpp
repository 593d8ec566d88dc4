#pragma once

#include <memory>

#include "amoauth/core/clock.hpp"
#include "amoauth/service/ports.hpp"
#include "checked.hpp"
#include "config.hpp"

namespace amoauth::app {

/// Opens the engine AMOAUTH_DATABASE_URL names — SQLite (creating the file's directory) or
/// PostgreSQL — and migrates it. Blocking: call at start-up. `clock` must outlive the store.
/// REQUIRES: config.master_key is set. Errors: one sentence naming the database (its password
/// redacted) and what failed; the engine logs the details before.
[[nodiscard]] Checked<std::unique_ptr<service::Store>> OpenStore(const Config& config,
                                                                 const core::Clock& clock);

}  // namespace amoauth::app
