#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "amoauth/service/ports.hpp"

namespace amoauth::app {

/// This process's name in refresh leases: "host:boot-id/pid-namespace:pid:start:random". The
/// running kernel's boot id, the PID namespace and the start time (in clock ticks since boot,
/// /proc/<pid>/stat) are what let another process on the same machine tell, from the name alone,
/// that this one has died (LocalProcessLiveness); the host is for people; the random part keeps
/// names unique.
[[nodiscard]] std::string MakeInstanceId(std::span<const std::uint8_t> random);
/// The name process `pid` (of this host and PID namespace) has in MakeInstanceId's form.
[[nodiscard]] std::string InstanceIdOf(long pid, std::span<const std::uint8_t> random);

/// HolderLiveness from the kernel: a holder of this kernel (boot id) and PID namespace is gone when
/// no process has its pid (kill(pid, 0) answers ESRCH), when the process with that pid is a zombie,
/// or when it started at another time than the holder's (the pid was reused). A holder of another
/// machine, boot or namespace, or a name of another form (an older amoauth's "host:pid:random"),
/// is never called gone: its lease is waited out.
class LocalProcessLiveness final : public service::HolderLiveness {
 public:
  LocalProcessLiveness();
  [[nodiscard]] bool IsGone(std::string_view holder) const noexcept override;

 private:
  std::string host_;
  std::string pid_space_;  ///< "boot-id/pid-namespace-inode"
};

}  // namespace amoauth::app
