// `amoauth migrate`: brings the configured database's schema up to this build's version.
#include <fmt/format.h>

#include "commands.hpp"
#include "store_command.hpp"

namespace amoauth::app {

int RunMigrate(const CommonOptions& options) {
  int exit_code = 0;
  // Opening migrates (every engine's Open does, in one transaction per step).
  auto command = OpenCommandStore(options, exit_code);
  if (!command) {
    return exit_code;
  }
  fmt::print("{} is at schema version {} ({}).\n",
             command->config.database.Describe(),
             command->store->SchemaVersion(),
             command->store->Engine());
  return 0;
}

}  // namespace amoauth::app
