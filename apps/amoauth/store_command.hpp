#pragma once

#include <memory>

#include "amoauth/core/clock.hpp"
#include "amoauth/service/ports.hpp"
#include "commands.hpp"
#include "config.hpp"

namespace amoauth::app {

/// What the maintenance commands (migrate, export, import) work on: the configuration and its
/// store, opened and migrated, without the rest of the Runtime.
struct StoreCommand {
  Config config;
  core::SystemClock clock;  ///< before `store`, which keeps a pointer to it
  std::unique_ptr<service::Store> store;
};

/// Loads the configuration (sandbox mode: with its data directory's keys) and opens the store,
/// or prints why not to stderr and sets `exit_code` (2: configuration, 1: the database).
[[nodiscard]] std::unique_ptr<StoreCommand> OpenCommandStore(const CommonOptions& options,
                                                             int& exit_code);

}  // namespace amoauth::app
