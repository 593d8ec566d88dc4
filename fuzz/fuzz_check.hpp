// What every fuzz target shares: the libFuzzer entry point's signature and FUZZ_CHECK, an
// invariant that aborts (a finding for libFuzzer, a failed test for the replay runner) and says
// which invariant broke. Never print the input's secrets: the message names the invariant only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace amoauth::fuzz {

[[noreturn]] inline void CheckFailed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
  std::abort();
}

inline std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// True when `needle`, a secret that came in with the input, appears in `haystack` (an answer, a
/// log). Only secret-shaped needles are searched — at least 16 bytes of [0-9a-f], like amoCRM's
/// codes and our hex keys — so a needle that happens to spell part of a fixed message (a fuzzer
/// finds those) is not reported.
inline bool Leaks(std::string_view haystack, std::string_view needle) {
  if (needle.size() < 16) {
    return false;
  }
  for (const char c : needle) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace amoauth::fuzz

#define FUZZ_CHECK(cond)                                       \
  do {                                                         \
    if (!(cond)) {                                             \
      ::amoauth::fuzz::CheckFailed(#cond, __FILE__, __LINE__); \
    }                                                          \
  } while (false)
