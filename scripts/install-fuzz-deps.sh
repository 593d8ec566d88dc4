#!/usr/bin/env bash
# Installs what `make fuzz` needs on top of scripts/install-deps.sh: clang 14 and its compiler-rt
# (libFuzzer, ASan, UBSan), from Debian 12's archive. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
AMOAUTH_SKIP_NODE=1 "$here/install-deps.sh"

packages=(clang-14 libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-fuzz-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
