#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

/// What the benchmark programs read of their own memory.
namespace amoauth::bench {

/// VmRSS and VmHWM of this process, in KiB, from /proc/self/status.
struct Memory {
  std::int64_t rss_kib = 0;
  std::int64_t hwm_kib = 0;
};

inline Memory ReadMemory() {
  Memory m;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    const auto read = [&](std::string_view key, std::int64_t& out) {
      if (line.starts_with(key)) {
        out = std::strtoll(line.c_str() + key.size(), nullptr, 10);
      }
    };
    read("VmRSS:", m.rss_kib);
    read("VmHWM:", m.hwm_kib);
  }
  return m;
}

}  // namespace amoauth::bench
