#include "process_identity.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace amoauth::app {
namespace {

constexpr std::array<std::uint8_t, 2> kRandom{0xab, 0xcd};

/// A child that sleeps until killed (exec'd at once: nothing runs in the forked copy of this
/// multi-threaded test process).
pid_t SleepingChild() {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

/// Splits "a:b:c" at ':'.
std::vector<std::string> Parts(const std::string& name) {
  std::vector<std::string> parts;
  std::string::size_type from = 0;
  for (;;) {
    const auto colon = name.find(':', from);
    parts.push_back(name.substr(from, colon - from));
    if (colon == std::string::npos) {
      return parts;
    }
    from = colon + 1;
  }
}

TEST(ProcessIdentity, NamesHostKernelNamespacePidStartAndRandom) {
  const std::string id = MakeInstanceId(kRandom);
  const auto parts = Parts(id);
  ASSERT_EQ(parts.size(), 5U) << id;
  EXPECT_NE(parts[1].find('/'), std::string::npos) << "the boot id and the PID namespace";
  EXPECT_EQ(parts[2], std::to_string(getpid()));
  EXPECT_NE(parts[3], "0") << "the start time";
  EXPECT_EQ(parts[4], "abcd");
  EXPECT_NE(MakeInstanceId(std::array<std::uint8_t, 2>{1, 2}), id);
}

TEST(ProcessIdentity, ALiveProcessIsNotGoneAKilledOneIs) {
  const LocalProcessLiveness liveness;
  EXPECT_FALSE(liveness.IsGone(MakeInstanceId(kRandom))) << "this very process";

  const pid_t child = SleepingChild();
  ASSERT_GT(child, 0);
  // The child's name, once it has exec'd (the start time is the fork's; exec keeps it).
  const std::string name = InstanceIdOf(child, kRandom);
  EXPECT_FALSE(liveness.IsGone(name));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  // Not yet reaped: a zombie, which is gone too (its parent may never reap it).
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_TRUE(liveness.IsGone(name)) << "a zombie";
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(liveness.IsGone(name)) << "no such process";
}

TEST(ProcessIdentity, APidNowUsedByAProcessStartedAtAnotherTimeIsGone) {
  const LocalProcessLiveness liveness;
  auto parts = Parts(MakeInstanceId(kRandom));
  ASSERT_EQ(parts.size(), 5U);
  // This pid, started at another time: the holder of that name died and the pid was reused.
  const std::string reused = parts[0] + ":" + parts[1] + ":" + parts[2] + ":1:abcd";
  EXPECT_TRUE(liveness.IsGone(reused));
}

TEST(ProcessIdentity, NothingIsKnownOfAnotherHostMachineNamespaceOrForm) {
  const LocalProcessLiveness liveness;
  auto parts = Parts(MakeInstanceId(kRandom));
  ASSERT_EQ(parts.size(), 5U);
  // A pid that cannot exist (above pid_max), so on this host it would be gone.
  const std::string no_pid = "4194305";
  EXPECT_TRUE(liveness.IsGone(parts[0] + ":" + parts[1] + ":" + no_pid + ":5:ab"));
  EXPECT_FALSE(liveness.IsGone("another-host:" + parts[1] + ":" + no_pid + ":5:ab"));
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":1:" + no_pid + ":5:ab")) << "another namespace";
  // The same host name and namespace number on another machine (the initial PID namespace has the
  // same inode everywhere): another boot id, so nothing is known of its pids.
  const std::string ns = parts[1].substr(parts[1].find('/'));
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":00000000-0000-0000-0000-000000000000" + ns + ":" +
                               no_pid + ":5:ab"))
      << "another machine";
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":" + no_pid + ":ab")) << "an older amoauth's name";
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":" + parts[1] + ":" + no_pid + ":0:ab"))
      << "a start time that could not be read";
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":" + parts[1] + ":-3:5:ab"));
  EXPECT_FALSE(liveness.IsGone(parts[0] + ":" + parts[1] + ":12x:5:ab"));
  EXPECT_FALSE(liveness.IsGone(""));
  EXPECT_FALSE(liveness.IsGone("this-process"));
}

}  // namespace
}  // namespace amoauth::app
