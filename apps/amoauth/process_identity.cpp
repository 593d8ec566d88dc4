#include "process_identity.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

namespace amoauth::app {
namespace {

std::string HostName() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    return {};
  }
  return host.data();
}

/// "4026531836" from /proc/self/ns/pid → "pid:[4026531836]"; empty when it cannot be read.
std::string PidNamespaceInode() {
  std::array<char, 64> link{};
  const ssize_t n = readlink("/proc/self/ns/pid", link.data(), link.size() - 1);
  if (n <= 0) {
    return {};
  }
  std::string_view text(link.data(), static_cast<std::size_t>(n));
  const auto open = text.find('[');
  const auto close = text.find(']');
  if (open == std::string_view::npos || close == std::string_view::npos || close <= open + 1) {
    return {};
  }
  return std::string(text.substr(open + 1, close - open - 1));
}

/// The running kernel (/proc/sys/kernel/random/boot_id, new at every boot) and the PID namespace
/// in it: where a pid means one process. The namespace's inode alone is not enough: the initial
/// namespace has the same number (4026531836) on every Linux machine, and two machines may share a
/// host name and a database. Empty when either cannot be read: then no holder is ever called gone.
std::string PidSpace() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string boot;
  std::getline(in, boot);
  const std::string inode = PidNamespaceInode();
  if (boot.empty() || inode.empty() || boot.find_first_of(":/") != std::string::npos) {
    return {};
  }
  return boot + "/" + inode;
}

struct ProcessStat {
  char state = '?';
  std::string start;  ///< field 22, clock ticks since boot
};

/// /proc/<pid>/stat's state and start time; nullopt when it cannot be read. The command name
/// (field 2) is in parentheses and may hold spaces and parentheses: fields are counted after the
/// last ')'.
std::optional<ProcessStat> ReadStat(long pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  if (!in) {
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(line.substr(paren + 1));
  ProcessStat stat;
  std::string field;
  // After ')': field 3 (state) is the first, field 22 (starttime) the twentieth.
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 3) {
      stat.state = field.empty() ? '?' : field[0];
    } else if (i == 22) {
      stat.start = field;
    }
  }
  if (stat.start.empty()) {
    return std::nullopt;
  }
  return stat;
}

struct HolderName {
  std::string_view host;
  std::string_view pid_space;
  long pid = 0;
  std::string_view start;
};

/// "host:boot/ns:pid:start:random", split from the right (a host name has no ':').
std::optional<HolderName> ParseHolder(std::string_view holder) {
  std::array<std::string_view, 5> parts;
  std::string_view rest = holder;
  for (int i = 4; i > 0; --i) {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    parts[static_cast<std::size_t>(i)] = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  parts[0] = rest;
  HolderName name{.host = parts[0], .pid_space = parts[1], .start = parts[3]};
  const auto [end, ec] =
      std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), name.pid);
  if (ec != std::errc() || end != parts[2].data() + parts[2].size() || name.pid <= 0 ||
      name.start.empty() || name.pid_space.empty()) {
    return std::nullopt;
  }
  return name;
}

}  // namespace

std::string MakeInstanceId(std::span<const std::uint8_t> random) {
  return InstanceIdOf(getpid(), random);
}

std::string InstanceIdOf(long pid, std::span<const std::uint8_t> random) {
  const auto stat = ReadStat(pid);
  return fmt::format("{}:{}:{}:{}:{:02x}",
                     HostName(),
                     PidSpace(),
                     pid,
                     stat ? stat->start : std::string("0"),
                     fmt::join(random, ""));
}

LocalProcessLiveness::LocalProcessLiveness() : host_(HostName()), pid_space_(PidSpace()) {}

bool LocalProcessLiveness::IsGone(std::string_view holder) const noexcept {
  try {
    const auto name = ParseHolder(holder);
    if (!name || host_.empty() || pid_space_.empty() || name->host != host_ ||
        name->pid_space != pid_space_ || name->start == "0") {
      return false;  // nothing is known of it
    }
    if (kill(static_cast<pid_t>(name->pid), 0) != 0) {
      return errno == ESRCH;  // EPERM: a process of another user lives there
    }
    const auto stat = ReadStat(name->pid);
    if (!stat) {
      return false;  // /proc hides it (hidepid): it runs, as far as we can tell
    }
    return stat->state == 'Z' || stat->state == 'X' || stat->start != name->start;
  } catch (...) {
    return false;
  }
}

}  // namespace amoauth::app
