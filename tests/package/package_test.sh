#!/usr/bin/env bash
# The Debian package (ctest label `package`): packs the binary this build tree already has with
# cpack (no second, Release build: `make package` is the one that builds a release tree), then
# checks the package's control data, files, systemd unit and settings template, extracts it into
# a scratch root and smoke-tests the extracted binary (serve --sandbox on a temp SQLite file:
# /connect, /v1/accounts with the key, a clean SIGTERM).
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build_dir=$1
source_dir=$2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/amoauth-package.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "package test: $*" >&2
  exit 1
}

# --- the package ----------------------------------------------------------------------------
if ! cpack --config "$build_dir/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1; then
  cat "$scratch/cpack.log" >&2
  fail "cpack failed"
fi
debs=("$scratch"/out/amoauth_*.deb)
[ -f "${debs[0]}" ] || fail "no amoauth_*.deb in $(ls "$scratch/out")"
deb=${debs[0]}
echo "package test: built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

[ "$(dpkg-deb -f "$deb" Package)" = amoauth ] || fail "Package is not amoauth"
depends=$(dpkg-deb -f "$deb" Depends)
depends_names=$(sed 's/ ([^)]*)//g; s/, /\n/g' <<<"$depends")
for needed in adduser libc6 libssl3 libsqlite3-0 libstdc++6; do
  grep -qxF "$needed" <<<"$depends_names" || fail "Depends lacks $needed: $depends"
done
mkdir "$scratch/control"
dpkg-deb -e "$deb" "$scratch/control"
[ "$(cat "$scratch/control/conffiles")" = /etc/amoauth/amoauth.env ] ||
  fail "conffiles is not /etc/amoauth/amoauth.env: $(cat "$scratch/control/conffiles")"
grep -q 'adduser --system' "$scratch/control/postinst" || fail "postinst creates no system user"
for script in postinst prerm postrm; do
  [ -x "$scratch/control/$script" ] || fail "$script is not executable"
  sh -n "$scratch/control/$script" || fail "$script is not valid sh"
done

# --- its files ------------------------------------------------------------------------------
root="$scratch/root"
dpkg-deb -x "$deb" "$root"
[ -x "$root/usr/bin/amoauth" ] || fail "no executable /usr/bin/amoauth"
unit="$root/lib/systemd/system/amoauth.service"
env_template="$root/etc/amoauth/amoauth.env"
[ -f "$unit" ] || fail "no /lib/systemd/system/amoauth.service"
[ -f "$env_template" ] || fail "no /etc/amoauth/amoauth.env"
[ "$(stat -c %a "$env_template")" = 600 ] || fail "amoauth.env is not mode 0600 (it holds secrets)"
unexpected=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep -vE '^\./(etc/|etc/amoauth/|etc/amoauth/amoauth\.env|lib/|lib/systemd/|lib/systemd/system/|lib/systemd/system/amoauth\.service|usr/|usr/bin/|usr/bin/amoauth)$' || true)
[ -z "$unexpected" ] || fail "unexpected files in the package: $unexpected"

# --- the unit -------------------------------------------------------------------------------
for line in Type=simple User=amoauth EnvironmentFile=/etc/amoauth/amoauth.env \
  "ExecStart=/usr/bin/amoauth serve" StateDirectory=amoauth KillSignal=SIGTERM \
  Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
  CapabilityBoundingSet= WantedBy=multi-user.target; do
  grep -qxF "$line" "$unit" || fail "the unit lacks the line '$line'"
done
stop_seconds=$(sed -n 's/^TimeoutStopSec=\([0-9]\+\)$/\1/p' "$unit")
grace_ms=$(sed -n 's/^#AMOAUTH_SHUTDOWN_GRACE_MS=\([0-9]\+\)$/\1/p' "$env_template")
[ -n "$stop_seconds" ] && [ -n "$grace_ms" ] || fail "TimeoutStopSec or the grace default not found"
[ $((stop_seconds * 1000)) -gt "$grace_ms" ] ||
  fail "TimeoutStopSec=${stop_seconds}s does not exceed AMOAUTH_SHUTDOWN_GRACE_MS=${grace_ms}ms"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants ExecStart's binary to exist: point it at the extracted one. Any word from it
  # (an unknown key, a bad value) fails the test: it exits 0 on those.
  sed "s#^ExecStart=/usr/bin/amoauth#ExecStart=$root/usr/bin/amoauth#" "$unit" >"$scratch/amoauth.service"
  verify=$(systemd-analyze verify --man=no "$scratch/amoauth.service" 2>&1) || fail "systemd-analyze verify: $verify"
  [ -z "$verify" ] || fail "systemd-analyze verify: $verify"
else
  echo "package test: systemd-analyze not installed; the unit was checked by its lines only"
fi

# --- the settings template: every setting amoauth reads, each commented out ------------------
settings=$(grep -ohE '"AMO(AUTH)?_[A-Z0-9_]+"' "$source_dir/apps/amoauth/config.cpp" | tr -d '"' | sort -u)
[ -n "$settings" ] || fail "no settings found in apps/amoauth/config.cpp"
for name in $settings; do
  grep -qE "^#$name=" "$env_template" || fail "amoauth.env does not list $name"
done
if grep -vE '^(#.*)?$' "$env_template" >/dev/null; then
  fail "amoauth.env sets something (every setting stays commented out): $(grep -vE '^(#.*)?$' "$env_template")"
fi

# --- the extracted binary runs --------------------------------------------------------------
# With every default of the template uncommented (so each default is one amoauth accepts), in
# sandbox mode, on a temp SQLite file and a free port (the process environment wins over the file).
sed -n 's/^#\([A-Z][A-Z0-9_]*=.\+\)$/\1/p' "$env_template" >"$scratch/defaults.env"
mkdir "$scratch/run"
(
  cd "$scratch/run"
  exec env -i PATH=/usr/bin:/bin HOME="$scratch" AMOAUTH_LISTEN=127.0.0.1:0 \
    AMOAUTH_DATABASE_URL="sqlite://$scratch/run/data/amoauth.db" \
    "$root/usr/bin/amoauth" serve --sandbox --env-file "$scratch/defaults.env" \
    --ready-file "$scratch/ready.json"
) >"$scratch/serve.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 60))
while [ ! -s "$scratch/ready.json" ]; do
  kill -0 "$pid" 2>/dev/null || { cat "$scratch/serve.log" >&2; fail "amoauth exited before it was ready"; }
  [ $SECONDS -lt $deadline ] || { cat "$scratch/serve.log" >&2; fail "amoauth not ready in 60 s"; }
  sleep 0.1
done
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$scratch/ready.json")
[ -n "$url" ] || fail "no url in the ready file: $(cat "$scratch/ready.json")"
key=$(cat "$scratch/run/data/api.key")

status=$(curl -s -o "$scratch/connect.html" -w '%{http_code}' "$url/connect")
[ "$status" = 200 ] || fail "GET /connect answered $status"
grep -q 'Connect amoCRM' "$scratch/connect.html" || fail "/connect does not show the button"
status=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/accounts")
[ "$status" = 401 ] || fail "GET /v1/accounts without the key answered $status"
status=$(curl -s -o "$scratch/accounts.json" -w '%{http_code}' -H "Authorization: Bearer $key" "$url/v1/accounts")
[ "$status" = 200 ] || fail "GET /v1/accounts with the key answered $status: $(cat "$scratch/accounts.json")"
grep -q '"accounts"' "$scratch/accounts.json" || fail "/v1/accounts: $(cat "$scratch/accounts.json")"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=
[ "$code" = 0 ] || { cat "$scratch/serve.log" >&2; fail "amoauth exited with $code after SIGTERM"; }
if grep -qF "$key" "$scratch/serve.log"; then
  fail "the API key appears in the log"
fi
echo "package test: ok"
