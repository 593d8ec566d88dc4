#include "command_runner.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#ifndef AMOAUTH_BINARY
#error "AMOAUTH_BINARY must name the built amoauth executable (tests/integration/CMakeLists.txt)"
#endif

namespace amoauth::testing {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CommandResult RunCommand(const ProcessHarness& h,
                         std::vector<std::string> args,
                         Environment env,
                         const std::vector<std::pair<std::string, std::string>>& changes,
                         const std::string& input) {
  for (const auto& [name, value] : changes) {
    std::erase_if(env, [&](const auto& kv) { return kv.first == name; });
    env.emplace_back(name, value);
  }
  static int counter = 0;
  const std::string stem = "run-" + std::to_string(++counter);
  const auto in = h.Dir() / (stem + ".in");
  const auto out = h.Dir() / (stem + ".out");
  const auto err = h.Dir() / (stem + ".err");
  std::ofstream(in, std::ios::binary) << input;
  const char* other = std::getenv("AMOAUTH_PROCESS_TESTS_BINARY");
  args.insert(
      args.begin(),
      other != nullptr && *other != '\0' ? std::string(other) : std::string(AMOAUTH_BINARY));
  args.push_back("--env-file");
  args.push_back((h.Dir() / "empty.env").string());
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : env) {
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addchdir_np(&actions, h.Dir().c_str());
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  CommandResult result;
  if (spawned != 0) {
    result.err = "posix_spawn failed";
    return result;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

}  // namespace amoauth::testing
