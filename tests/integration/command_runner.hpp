#pragma once

#include <string>
#include <utility>
#include <vector>

#include "process_harness.hpp"

/// Running one-shot `amoauth` commands (rotate-key, exchange-code, accounts…) the way an operator
/// does, against the configuration of a ProcessHarness's serve processes.
namespace amoauth::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `amoauth ARGS --env-file DIR/empty.env` in the harness's directory with `env` (the
/// environment of a serve process) changed by `changes` (a later entry replaces a variable; an
/// empty value is kept as empty), feeds `input` to its standard input and waits for it. The
/// build's binary, or AMOAUTH_PROCESS_TESTS_BINARY.
CommandResult RunCommand(const ProcessHarness& h,
                         std::vector<std::string> args,
                         Environment env,
                         const std::vector<std::pair<std::string, std::string>>& changes = {},
                         const std::string& input = {});

}  // namespace amoauth::testing
