#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets (preset fuzz, build-fuzz/) and runs each for
# FUZZ_SECONDS (default 30) from its seeds in fuzz/corpus/<name>/. New inputs go to
# build-fuzz/corpus/<name>/ (not the repository); a crash, leak, timeout or broken invariant stops
# the run with the input in build-fuzz/artifacts/<name>/ and fails. To keep a finding: fix it, add
# a regression test to the unit suite, and copy the input into fuzz/corpus/<name>/ (the fuzz-smoke
# ctest replays it from then on).
# FUZZ_TARGETS="query callback" runs some; extra arguments go to every libFuzzer run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
scripts/install-fuzz-deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build build-fuzz -j "${JOBS:-$(nproc)}"

targets="${FUZZ_TARGETS:-$(sed -n '/^set(AMOAUTH_FUZZ_TARGETS/,/)/p' fuzz/CMakeLists.txt |
  tr -d '()' | tr ' ' '\n' | grep -v -e '^set' -e AMOAUTH_FUZZ_TARGETS -e '^$')}"

dict_of() {
  case "$1" in
    query | callback | disconnect_hook) echo fuzz/dict/query.dict ;;
    *) echo fuzz/dict/json.dict ;;
  esac
}

failed=()
for name in $targets; do
  bin="build-fuzz/fuzz/amoauth_${name}_fuzzer"
  work="build-fuzz/corpus/$name"
  artifacts="build-fuzz/artifacts/$name"
  mkdir -p "$work" "$artifacts"
  echo "fuzz: $name for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -max_len=4096 -print_final_stats=1 \
      -dict="$(dict_of "$name")" -artifact_prefix="$artifacts/" "$@" \
      "$work" "fuzz/corpus/$name" >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; the input is in $artifacts/, the log in build-fuzz/$name.log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz invariant broken)' "build-fuzz/$name.log" | head -5 || true
    failed+=("$name")
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "build-fuzz/$name.log" | tail -2 || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: no findings"
