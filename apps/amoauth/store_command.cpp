#include "store_command.hpp"

#include <fmt/format.h>

#include "local_setup.hpp"
#include "store_factory.hpp"

namespace amoauth::app {

std::unique_ptr<StoreCommand> OpenCommandStore(const CommonOptions& options, int& exit_code) {
  auto loaded = LoadLayeredConfig(options);
  if (!loaded) {
    fmt::print(stderr, "amoauth: configuration error: {}\n", loaded.error());
    exit_code = 2;
    return nullptr;
  }
  SetUpLogging(loaded->log_level == "info" ? "warn" : loaded->log_level, loaded->log_format);
  if (options.sandbox) {
    if (auto ok = EnsureSandboxSecrets(*loaded); !ok) {
      fmt::print(stderr, "amoauth: {}\n", ok.error());
      exit_code = 2;
      return nullptr;
    }
  }
  auto command = std::make_unique<StoreCommand>();
  command->config = std::move(*loaded);
  auto store = OpenStore(command->config, command->clock);
  if (!store) {
    fmt::print(stderr, "amoauth: {}\n", store.error());
    exit_code = 1;
    return nullptr;
  }
  command->store = std::move(*store);
  return command;
}

}  // namespace amoauth::app
