#!/usr/bin/env bash
# `make bench`: measures amoauth beside references in the same run, on 127.0.0.1 only, and prints
# a results table (method and reading: docs/benchmarks.md).
#   1. GET /v1/accounts/{id}/token        vs nginx serving a static file of the same size
#   2. GET /v1/accounts/{id}/proxy/api/v4/account
#                                          vs the sandbox's API called directly (TLS, keep-alive)
#                                          vs nginx proxy_pass to the same sandbox (keep-alive upstream)
#   3. the SQLite store with 100,000 accounts (bench/store_bench.cpp)
#   4. the refresh scheduler over 100,000 due accounts, amoCRM faked (bench/scheduler_bench.cpp)
#   5. PostgreSQL (a scratch server, scripts/postgres-scratch.sh): the scheduler over 100,000 due
#      accounts, amoCRM answering after BENCH_AMO_LATENCY_MS; GET /token from the token cache with
#      1 instance (and with the cache off) and with 3 instances on one database
# Installs what is missing (apt; as root or with sudo), builds the `release` preset, starts
# everything on free ports in a temp dir and stops it all on exit. Exits non-zero when a step
# fails or a run sees errors; a figure below its target is reported, not a failure.
#
# Settings (environment):
#   BENCH_DURATION=5s BENCH_CONNECTIONS=32 BENCH_THREADS=2   wrk's -d, -c, -t
#   BENCH_ROUNDS=3           rounds of the throughput runs (1 and 2), each amoauth and its
#                            reference back to back; the median round is reported
#   BENCH_ACCOUNTS=100000                                    store and scheduler benchmark size
#   BENCH_AMO_LATENCY_MS=0   the fake amoCRM's answer time in the PostgreSQL scheduler run
#   BENCH_POSTGRES=0         skip the PostgreSQL runs
#   BENCH_ONLY=http          only the HTTP runs (1 and 2): no store, scheduler or PostgreSQL runs,
#                            and only the amoauth target is built
#   BENCH_BUILD_DIR=build-release                            where amoauth and the benchmark are built
#   BENCH_SKIP_BUILD=1   use the binaries already in BENCH_BUILD_DIR
#   BENCH_SKIP_INSTALL=1 install nothing (every tool must be there)
#   BENCH_KEEP=1         keep the temp dir (logs, configs, wrk output) and say where
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${BENCH_BUILD_DIR:-$root/build-release}"
duration="${BENCH_DURATION:-5s}"
rounds="${BENCH_ROUNDS:-3}"
connections="${BENCH_CONNECTIONS:-32}"
wrk_threads="${BENCH_THREADS:-2}"
accounts="${BENCH_ACCOUNTS:-100000}"
amo_latency_ms="${BENCH_AMO_LATENCY_MS:-0}"
only="${BENCH_ONLY:-}"
case "$only" in
  "" | http) ;;
  *) printf 'bench: BENCH_ONLY=%s: the only value is http\n' "$only" >&2 && exit 2 ;;
esac
account_id=30000001  # the sandbox's example.amocrm.ru account
lua="$root/bench/wrk/report.lua"

tmp=""
pids=()
pg_dir=""  # the scratch PostgreSQL's directory once started
policy_rc_added=0

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop PID: ends a process this script started (TERM, KILL after 5 s), reaps it, forgets it.
stop() {
  local pid=$1 i p rest=()
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do
    [ "$p" = "$pid" ] || rest+=("$p")
  done
  pids=("${rest[@]}")
}

cleanup() {
  local status=$?
  local pid
  for pid in "${pids[@]}"; do
    stop "$pid"
  done
  if [ -n "$pg_dir" ]; then
    "$root/scripts/postgres-scratch.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  fi
  if [ "$policy_rc_added" = 1 ]; then
    as_root rm -f /usr/sbin/policy-rc.d
  fi
  if [ -n "$tmp" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
      log "logs and configs kept in $tmp"
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 0. Tools --------------------------------------------------------------------------------------

nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || return 1
}

install_tools() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  nginx_bin >/dev/null || missing+=(nginx-light)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "${BENCH_SKIP_INSTALL:-0}" = 1 ] && die "missing ${missing[*]} (and BENCH_SKIP_INSTALL=1)"

  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The nginx package starts the distribution's nginx on port 80 unless policy-rc.d forbids it:
  # we want no such daemon, and its start fails the install when port 80 is taken.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    policy_rc_added=1
  fi
  as_root apt-get update -qq
  if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    # nginx-light is Debian 12's small flavour; any nginx with the proxy and ssl modules will do.
    missing=("${missing[@]/nginx-light/nginx}")
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "$policy_rc_added" = 1 ]; then
    as_root rm -f /usr/sbin/policy-rc.d
    policy_rc_added=0
  fi
}

build() {
  if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
    return 0
  fi
  if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    AMOAUTH_SKIP_NODE=1 "$root/scripts/install-deps.sh"
  fi
  if [ ! -f "$build_dir/build.ninja" ]; then
    if [ "$build_dir" != "$root/build-release" ]; then
      die "$build_dir is not configured (cmake -S . -B $build_dir -G Ninja -DAMOAUTH_BUILD_BENCHMARKS=ON)"
    fi
    (cd "$root" && cmake --preset release >/dev/null)
  elif ! grep -q '^AMOAUTH_BUILD_BENCHMARKS:BOOL=ON' "$build_dir/CMakeCache.txt"; then
    cmake -S "$root" -B "$build_dir" -DAMOAUTH_BUILD_BENCHMARKS=ON >/dev/null
  fi
  if [ "$only" = http ]; then
    log "building amoauth in $build_dir"
    cmake --build "$build_dir" --target amoauth
    return 0
  fi
  log "building amoauth, amoauth_store_bench and amoauth_scheduler_bench in $build_dir"
  cmake --build "$build_dir" --target amoauth amoauth_store_bench amoauth_scheduler_bench
}

# --- Helpers ---------------------------------------------------------------------------------------

# A TCP port on 127.0.0.1 that nothing answers on right now (nginx is retried if it loses a race).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local i
  for ((i = 0; i < limit * 10; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "timed out after ${limit}s waiting for $what"
}

# field FILE KEY: a value from wrk's BENCH line or the store benchmark's `name value unit` lines.
field() {
  awk -v k="$2" '
    /^BENCH / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }
    $1 == k { print $2 }' "$1" | head -1
}

# calc EXPRESSION: floating-point arithmetic (awk), e.g. calc '3 / 4'.
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
ms() { calc "($1) / 1000"; }  # microseconds to milliseconds
delta_ms() { awk "BEGIN { printf \"%+.2f\", ($1) / 1000 }"; }  # signed: -0.50, +3.20

# cpu_ticks PID...: the user and the system CPU time, in clock ticks, of every thread of these
# processes so far (/proc/PID/task/TID/stat fields 14 and 15), as "USER SYSTEM".
cpu_ticks() {
  local user=0 system=0 pid stat
  local -a f
  for pid in "$@"; do
    for stat in /proc/"$pid"/task/*/stat; do
      # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
      read -r -a f < <(sed 's/.*) //' "$stat" 2>/dev/null) || continue
      [ "${#f[@]}" -gt 12 ] || continue
      user=$((user + f[11]))
      system=$((system + f[12]))
    done
  done
  echo "$user $system"
}

# run_wrk NAME URL [AUTHORIZATION [HOST]]: a 1 s warm-up, then the measured run into $tmp/NAME.txt.
# `c=1 run_wrk …` runs with one connection (and one wrk thread) instead of $connections.
# `cpu_of="PID..." run_wrk …` also writes the CPU time those processes spent per request during the
# measured run, in microseconds, into $tmp/NAME.cpu as "USER SYSTEM".
run_wrk() {
  local name=$1 url=$2
  local conns="${c:-$connections}" threads="$wrk_threads"
  [ "$conns" -lt "$threads" ] && threads="$conns"
  export BENCH_AUTHORIZATION="${3:-}" BENCH_HOST="${4:-}"
  log "wrk $name (-c $conns): $url"
  wrk -t "$threads" -c "$conns" -d 1s -s "$lua" "$url" >/dev/null
  local before after
  # shellcheck disable=SC2086 # a list of pids
  [ -n "${cpu_of:-}" ] && before="$(cpu_ticks $cpu_of)"
  wrk -t "$threads" -c "$conns" -d "$duration" --latency -s "$lua" "$url" \
    >"$tmp/$name.txt" 2>&1 || die "wrk $name: $(cat "$tmp/$name.txt")"
  # shellcheck disable=SC2086
  [ -n "${cpu_of:-}" ] && after="$(cpu_ticks $cpu_of)"
  unset BENCH_AUTHORIZATION BENCH_HOST
  local requests non2xx errors
  requests=$(field "$tmp/$name.txt" requests)
  non2xx=$(field "$tmp/$name.txt" non2xx)
  errors=$(field "$tmp/$name.txt" socket_errors)
  [ -n "$requests" ] || die "wrk $name printed no results: $(cat "$tmp/$name.txt")"
  [ "$requests" -gt 0 ] || die "wrk $name: no request completed"
  if [ "$non2xx" -gt 0 ]; then
    die "wrk $name: $non2xx of $requests answers were not 2xx (a rate limit left on? see $tmp)"
  fi
  if [ $((errors * 100)) -gt "$requests" ]; then
    die "wrk $name: $errors socket errors or timeouts in $requests requests"
  fi
  if [ -n "${cpu_of:-}" ]; then
    local tick_us
    tick_us="$(calc "1000000 / $(getconf CLK_TCK)")"
    local bu bs au as
    read -r bu bs <<<"$before"
    read -r au as <<<"$after"
    awk "BEGIN { printf \"%.1f %.1f\\n\", ($au - $bu) * $tick_us / $requests, ($as - $bs) * $tick_us / $requests }" \
      >"$tmp/$name.cpu"
  fi
}

# --- 1. Install, build, temp dir -------------------------------------------------------------------

install_tools
build
amoauth="$build_dir/amoauth"
store_bench="$build_dir/bench/amoauth_store_bench"
[ -x "$amoauth" ] || die "no $amoauth"
[ "$only" = http ] || [ -x "$store_bench" ] || die "no $store_bench"
# A build dir from before the scheduler benchmark (BENCH_SKIP_BUILD=1) has none: reported, not fatal.
scheduler_bench="$build_dir/bench/amoauth_scheduler_bench"
if [ "$only" != http ] && [ ! -x "$scheduler_bench" ]; then
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || die "no $scheduler_bench"
  log "no $scheduler_bench in this build: the scheduler benchmark is skipped"
fi
nginx="$(nginx_bin)"

tmp="$(mktemp -d /tmp/amoauth-bench.XXXXXX)"
chmod 0711 "$tmp"  # nginx's workers (user nobody) must reach $tmp/nginx/www
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started_at="$(date -u '+%Y-%m-%d %H:%M UTC')"

# --- 2. amoauth serve --sandbox, with every rate limit lifted ----------------------------------------

# Both amoauth (AMOAUTH_RATE_LIMIT_RPS) and the sandbox hold each account to amoCRM's 7 requests a
# second; a benchmark of one account needs them off. A build that does not know the setting
# ignores it.
start_amoauth() {
  local rps=$1
  rm -f "$tmp/ready.json"
  (cd "$tmp" && exec env -i PATH="$PATH" HOME="$tmp" AMOAUTH_RATE_LIMIT_RPS="$rps" \
    "$amoauth" serve --sandbox --listen 127.0.0.1:0 \
    --database-url "sqlite://$tmp/data/amoauth.db" --ready-file "$tmp/ready.json") \
    >"$tmp/amoauth.log" 2>&1 &
  amoauth_pid=$!
  pids+=("$amoauth_pid")
  local i
  for ((i = 0; i < 300; i++)); do
    [ -s "$tmp/ready.json" ] && return 0
    if ! alive "$amoauth_pid"; then
      stop "$amoauth_pid"
      return 1
    fi
    sleep 0.1
  done
  die "amoauth did not start in 30 s: $(tail -5 "$tmp/amoauth.log")"
}
log "starting amoauth serve --sandbox"
if ! start_amoauth 0; then
  # A build whose AMOAUTH_RATE_LIMIT_RPS has no "0 = unlimited": ask for a rate never reached.
  grep -q AMOAUTH_RATE_LIMIT_RPS "$tmp/amoauth.log" || die "amoauth exited: $(tail -5 "$tmp/amoauth.log")"
  start_amoauth 100000 || die "amoauth exited: $(tail -5 "$tmp/amoauth.log")"
fi
url="$(jq -r .url "$tmp/ready.json")"
sandbox_url="$(jq -r .sandbox_url "$tmp/ready.json")"
sandbox_connect_to="$(jq -r .sandbox_connect_to "$tmp/ready.json")"
api_key="$(cat "$tmp/data/api.key")"
client_id="$(sed -n 's/^AMO_CLIENT_ID=//p' "$tmp/data/sandbox.env")"
ca_file="$(sed -n 's/^AMOAUTH_AMO_CA_FILE=//p' "$tmp/data/sandbox.env")"

# The sandbox's control API: 200 when the limit is off; 404 from a build without /sandbox/config
# (it has no rate limit either). Its field is api_rate_limit_rps; a nested {"rate_limit":{"rps"}}
# is tried when that one is refused, should the spelling change.
sandbox_limit="off"
set_sandbox_config() {
  curl -sS -m 10 -o "$tmp/sandbox-config.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d "$1" "$sandbox_url/sandbox/config"
}
code="$(set_sandbox_config '{"api_rate_limit_rps":0}')"
if [ "$code" = 400 ]; then
  code="$(set_sandbox_config '{"rate_limit":{"rps":0}}')"
fi
case "$code" in
  200) ;;
  404) sandbox_limit="none in this build (no /sandbox/config)" ;;
  *) die "POST $sandbox_url/sandbox/config: HTTP $code $(cat "$tmp/sandbox-config.json")" ;;
esac

# --- 3. Connect one account, as a person would (amoauth's button flow, consent allowed) ------------

log "connecting account $account_id"
auth_api=(-H "Authorization: Bearer $api_key")
state="$(curl -sS -m 10 -f "${auth_api[@]}" -H 'Content-Type: application/json' \
  -d '{"mode":"post_message"}' "$url/v1/connect" | jq -r .state)"
if [ -z "$state" ] || [ "$state" = null ]; then
  die "POST /v1/connect gave no state"
fi
callback="$(curl -sS -m 10 -o /dev/null -w '%{http_code} %{redirect_url}' \
  --data-urlencode "client_id=$client_id" --data-urlencode "state=$state" \
  -d mode=post_message -d "account_id=$account_id" -d decision=allow \
  "$sandbox_url/oauth/decision")"
[ "${callback%% *}" = 302 ] || die "sandbox consent decision: $callback"
code="$(curl -sS -m 15 -o "$tmp/callback.html" -w '%{http_code}' "${callback#* }")"
[ "$code" = 200 ] || die "callback: HTTP $code"

token_path="/v1/accounts/$account_id/token"
code="$(curl -sS -m 10 -o "$tmp/token.json" -w '%{http_code}' "${auth_api[@]}" "$url$token_path")"
[ "$code" = 200 ] || die "GET $token_path: HTTP $code $(cat "$tmp/token.json")"
access_token="$(jq -r .access_token "$tmp/token.json")"
account_host="$(jq -r .base_domain "$tmp/token.json")"
token_bytes="$(wc -c <"$tmp/token.json")"

# --- 4. nginx: the static reference and the reverse proxy reference --------------------------------

ngx="$tmp/nginx"
mkdir -p "$ngx/www"
# Same size and shape as amoauth's answer, the token itself blanked.
body="$(cat "$tmp/token.json")"
printf '%s' "${body/$access_token/$(printf '%*s' "${#access_token}" '' | tr ' ' x)}" \
  >"$ngx/www/token.json"
cp "$ca_file" "$ngx/sandbox-ca.pem"
chmod 0755 "$ngx" "$ngx/www"
chmod 0644 "$ngx/www/token.json" "$ngx/sandbox-ca.pem"

start_nginx() {
  static_port="$(free_port)" || die "no free port"
  proxy_port="$(free_port)" || die "no free port"
  cat >"$ngx/nginx.conf" <<EOF
# Written by scripts/bench.sh; the references for amoauth's /token and proxy.
daemon off;
worker_processes 2;
pid $ngx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log $ngx/access.log;  # amoauth logs every request too
  keepalive_requests 1000000;

  server {  # 1. a static file the size of the /token answer
    listen 127.0.0.1:$static_port;
    location = /token.json { root $ngx/www; default_type application/json; }
  }

  upstream sandbox {
    server $sandbox_connect_to;
    keepalive 64;
  }
  server {  # 2. reverse proxy to the sandbox's amoCRM API, as amoauth does
    listen 127.0.0.1:$proxy_port;
    location / {
      proxy_pass https://sandbox;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $account_host;
      proxy_ssl_server_name on;
      proxy_ssl_name $account_host;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $ngx/sandbox-ca.pem;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF
  "$nginx" -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" >"$ngx/stdout.log" 2>&1 &
  nginx_pid=$!
  pids+=("$nginx_pid")
  local i
  for ((i = 0; i < 100; i++)); do
    if curl -sf -m 2 -o /dev/null "http://127.0.0.1:$static_port/token.json"; then
      return 0
    fi
    alive "$nginx_pid" || return 1
    sleep 0.1
  done
  return 1
}
log "starting nginx"
nginx_started=0
for _ in 1 2 3; do
  if start_nginx; then
    nginx_started=1
    break
  fi
  stop "$nginx_pid"
done
[ "$nginx_started" = 1 ] || die "nginx did not start: $(tail -5 "$ngx/error.log")"

# --- 5. The HTTP runs ------------------------------------------------------------------------------

proxy_path="/v1/accounts/$account_id/proxy/api/v4/account"
# Each path must answer 200 before it is timed.
for check in "$url$proxy_path|Bearer $api_key|" \
  "https://$sandbox_connect_to/api/v4/account|Bearer $access_token|$account_host" \
  "http://127.0.0.1:$proxy_port/api/v4/account|Bearer $access_token|"; do
  IFS='|' read -r u a h <<<"$check"
  host_header=()
  [ -n "$h" ] && host_header=(-H "Host: $h")
  code="$(curl -sS -k -m 15 -o "$tmp/check.json" -w '%{http_code}' -H "Authorization: $a" \
    "${host_header[@]}" "$u")"
  [ "$code" = 200 ] || die "GET $u: HTTP $code $(head -c 300 "$tmp/check.json")"
done

# The CPU time each server spends per request: unlike the ratio, it hardly moves with what else
# the machine runs. nginx's is its workers'. The sandbox runs in amoauth's process (serve
# --sandbox): its CPU is in every proxy run, and the direct run's is what a proxy adds to.
# Each round runs amoauth and its reference back to back: the machine's mood moves nginx's
# figure by a quarter between runs minutes apart (docs/benchmarks.md), less within a round.
nginx_workers="$(pgrep -P "$nginx_pid" | tr '\n' ' ')"
for ((r = 1; r <= rounds; r++)); do
  cpu_of="$amoauth_pid" run_wrk "token_amoauth.r$r" "$url$token_path" "Bearer $api_key"
  cpu_of="$nginx_workers" run_wrk "token_nginx.r$r" "http://127.0.0.1:$static_port/token.json"
  cpu_of="$amoauth_pid" run_wrk "proxy_direct.r$r" \
    "https://$sandbox_connect_to/api/v4/account" "Bearer $access_token" "$account_host"
  cpu_of="$amoauth_pid $nginx_workers" run_wrk "proxy_nginx.r$r" \
    "http://127.0.0.1:$proxy_port/api/v4/account" "Bearer $access_token"
  cpu_of="$amoauth_pid" run_wrk "proxy_amoauth.r$r" "$url$proxy_path" "Bearer $api_key"
done
# median LIST...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# NAME.txt and NAME.cpu: those of the round whose req/s is the median of the rounds.
for name in token_amoauth token_nginx proxy_direct proxy_nginx proxy_amoauth; do
  middle="$(for ((r = 1; r <= rounds; r++)); do
    echo "$(field "$tmp/$name.r$r.txt" rps) $r"
  done | sort -g | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')"
  cp "$tmp/$name.r$middle.txt" "$tmp/$name.txt"
  cp "$tmp/$name.r$middle.cpu" "$tmp/$name.cpu"
done
# round_ratios A B: A's req/s over B's in each round, as "r1 r2 …".
round_ratios() {
  local r out=()
  for ((r = 1; r <= rounds; r++)); do
    out+=("$(calc "$(field "$tmp/$1.r$r.txt" rps) / $(field "$tmp/$2.r$r.txt" rps)")")
  done
  echo "${out[*]}"
}
# Added latency without queueing: the same three, one request at a time.
c=1 run_wrk proxy_direct_1 "https://$sandbox_connect_to/api/v4/account" "Bearer $access_token" "$account_host"
c=1 run_wrk proxy_nginx_1 "http://127.0.0.1:$proxy_port/api/v4/account" "Bearer $access_token"
c=1 run_wrk proxy_amoauth_1 "$url$proxy_path" "Bearer $api_key"

sandbox_429="$(curl -sS -m 10 "$sandbox_url/sandbox/journal" |
  jq -r '.counters.api_rate_limited // "n/a"')"

# --- 6. The store at scale -------------------------------------------------------------------------

if [ "$only" != http ]; then
  log "store benchmark: $accounts accounts (takes a while)"
  mkdir -p "$tmp/store"
  "$store_bench" --accounts "$accounts" --dir "$tmp/store" >"$tmp/store.txt" 2>"$tmp/store.log" ||
    die "amoauth_store_bench: $(tail -5 "$tmp/store.log")"
fi

# --- 6b. The refresh scheduler at scale ------------------------------------------------------------

# The real RefreshScheduler, AccountService and SqliteStore; amoCRM is an in-process fake that
# answers at once. The service logs one line per refresh (level info, as in production): those go
# to scheduler.log.
if [ "$only" != http ] && [ -x "$scheduler_bench" ]; then
  log "scheduler benchmark: $accounts due accounts (takes a while)"
  mkdir -p "$tmp/scheduler"
  "$scheduler_bench" --accounts "$accounts" --dir "$tmp/scheduler" >"$tmp/scheduler.txt" \
    2>"$tmp/scheduler.log" || die "amoauth_scheduler_bench: $(tail -5 "$tmp/scheduler.log")"
fi
# --- 6c. PostgreSQL: the scheduler, and /token from the per-instance token cache ---------------

# The accounts of the SQLite runs move to PostgreSQL with `amoauth export` / `amoauth import` (as an
# operator would move them); every instance reads one settings file: the sandbox's integration, the
# same API and master keys, the PostgreSQL database.
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
start_pg_instance() {  # start_pg_instance NAME [VAR=VALUE…]: sets instance_pid, instance_url
  local name=$1 dir="$tmp/$1" i
  shift
  mkdir -p "$dir"
  (cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" "$@" "$amoauth" serve \
    --env-file "$tmp/postgres.env" --listen 127.0.0.1:0 --ready-file "$dir/ready.json") \
    >"$dir/amoauth.log" 2>&1 &
  instance_pid=$!
  pids+=("$instance_pid")
  for ((i = 0; i < 300; i++)); do
    if [ -s "$dir/ready.json" ]; then
      instance_url="$(jq -r .url "$dir/ready.json")"
      code="$(curl -sS -m 10 -o "$dir/token.json" -w '%{http_code}' "${auth_api[@]}" \
        "$instance_url$token_path")"
      [ "$code" = 200 ] || die "$name: GET $token_path: HTTP $code $(cat "$dir/token.json")"
      return 0
    fi
    alive "$instance_pid" || die "$name exited: $(tail -5 "$dir/amoauth.log")"
    sleep 0.1
  done
  die "$name did not start in 30 s: $(tail -5 "$dir/amoauth.log")"
}

if [ "$only" != http ] && [ "${BENCH_POSTGRES:-1}" = 1 ]; then
  pg_dir="$tmp/pg"
  log "starting a scratch PostgreSQL in $pg_dir"
  pg_url="$("$root/scripts/postgres-scratch.sh" start "$pg_dir" 2>"$tmp/postgres-start.log")" ||
    die "PostgreSQL did not start: $(tail -5 "$tmp/postgres-start.log")"
  if [ -x "$scheduler_bench" ]; then
    log "scheduler benchmark on PostgreSQL: $accounts due accounts, amoCRM answering in ${amo_latency_ms} ms"
    "$scheduler_bench" --postgres "$pg_url" --accounts "$accounts" --fill-parallel 4 \
      --amo-latency-ms "$amo_latency_ms" >"$tmp/scheduler_pg.txt" 2>"$tmp/scheduler_pg.log" ||
      die "amoauth_scheduler_bench on PostgreSQL: $(tail -5 "$tmp/scheduler_pg.log")"
  fi

  psql="$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)"
  if ! "$amoauth" export --help >/dev/null 2>&1; then
    log "this amoauth has no \`export\` (nor PostgreSQL for serve): the /token runs on PostgreSQL are skipped"
  else
    "$psql" -X -q -v ON_ERROR_STOP=1 "$pg_url" -c "CREATE DATABASE amoauth_bench" >/dev/null ||
      die "cannot create the PostgreSQL database"
    pg_database_url="${pg_url/\/postgres\?/\/amoauth_bench?}"
    {
      cat "$tmp/data/sandbox.env"
      echo "AMOAUTH_API_KEY=$api_key"
      echo "AMOAUTH_MASTER_KEY=$(cat "$tmp/data/master.key")"
      echo "AMOAUTH_DATABASE_URL=$pg_database_url"
      echo "AMOAUTH_RATE_LIMIT_RPS=0"
    } >"$tmp/postgres.env"
    chmod 0600 "$tmp/postgres.env"
    log "moving the account to PostgreSQL (amoauth export, amoauth import)"
    "$amoauth" export --env-file "$tmp/postgres.env" --database-url "sqlite://$tmp/data/amoauth.db" \
      --allow-pending --out "$tmp/accounts.export" >"$tmp/export.log" 2>&1 ||
      die "amoauth export: $(tail -5 "$tmp/export.log")"
    "$amoauth" import --env-file "$tmp/postgres.env" --in "$tmp/accounts.export" \
      >"$tmp/import.log" 2>&1 || die "amoauth import: $(tail -5 "$tmp/import.log")"

    log "GET /token on PostgreSQL, one instance without the token cache"
    start_pg_instance pg_nocache AMOAUTH_TOKEN_CACHE_ENTRIES=0
    run_wrk token_pg_nocache "$instance_url$token_path" "Bearer $api_key"
    pg_nocache_rss="$(rss_mib "$instance_pid")"
    stop "$instance_pid"

    log "GET /token on PostgreSQL from the token cache: one instance, then three"
    instance_urls=()
    pg_pids=()
    pg_rss=()
    for n in 1 2 3; do
      start_pg_instance "pg_instance$n"
      instance_urls+=("$instance_url")
      pg_pids+=("$instance_pid")
    done
    run_wrk token_pg_1 "${instance_urls[0]}$token_path" "Bearer $api_key"
    # Three at once, each with a third of the connections; their rates add up.
    three_pids=()
    for n in 1 2 3; do
      (
        trap - EXIT  # the cleanup is the main script's
        c=$(((connections + 2) / 3)) run_wrk "token_pg_3_$n" \
          "${instance_urls[$((n - 1))]}$token_path" "Bearer $api_key"
      ) &
      three_pids+=($!)
    done
    for pid in "${three_pids[@]}"; do
      wait "$pid" || die "a wrk run against three instances failed (see above)"
    done
    for n in 1 2 3; do
      pg_rss+=("$(rss_mib "${pg_pids[$((n - 1))]}")")
    done
  fi
fi

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 7. Results ------------------------------------------------------------------------------------

v() { field "$tmp/$1.txt" "$2"; }
row() {  # row LABEL NAME
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(v "$2" rps)" "$(ms "$(v "$2" p50_us)")" \
    "$(ms "$(v "$2" p99_us)")" "$(v "$2" requests)"
}
verdict() {  # verdict VALUE TARGET
  if awk "BEGIN { exit !($1 >= $2) }"; then echo "meets ≥ $2"; else echo "**below** ≥ $2"; fi
}
token_ratios="$(round_ratios token_amoauth token_nginx)"
proxy_ratios="$(round_ratios proxy_amoauth proxy_nginx)"
# shellcheck disable=SC2086 # lists of numbers
token_ratio="$(median $token_ratios)"
# shellcheck disable=SC2086
proxy_ratio="$(median $proxy_ratios)"
added_p50="$(delta_ms "$(v proxy_amoauth p50_us) - $(v proxy_direct p50_us)")"
added_p99="$(delta_ms "$(v proxy_amoauth p99_us) - $(v proxy_direct p99_us)")"
nginx_added_p50="$(delta_ms "$(v proxy_nginx p50_us) - $(v proxy_direct p50_us)")"
nginx_added_p99="$(delta_ms "$(v proxy_nginx p99_us) - $(v proxy_direct p99_us)")"
added1_p50="$(delta_ms "$(v proxy_amoauth_1 p50_us) - $(v proxy_direct_1 p50_us)")"
added1_p99="$(delta_ms "$(v proxy_amoauth_1 p99_us) - $(v proxy_direct_1 p99_us)")"
nginx_added1_p50="$(delta_ms "$(v proxy_nginx_1 p50_us) - $(v proxy_direct_1 p50_us)")"
nginx_added1_p99="$(delta_ms "$(v proxy_nginx_1 p99_us) - $(v proxy_direct_1 p99_us)")"
s() { field "$tmp/store.txt" "$1"; }
store_table=""  # BENCH_ONLY=http: no store run
if [ -s "$tmp/store.txt" ]; then
  if [ -n "$(s list_due_100_median)" ]; then
    due_row="| ListDue(now, 100) — first / median / max of 20 | $(ms "$(s list_due_100_first)") / $(ms "$(s list_due_100_median)") / $(ms "$(s list_due_100_max)") ms ($(s list_due_100_rows | cut -d. -f1) rows) |"
  else
    due_row="| ListDue(now, 100) | not in this build (List() below instead) |"
  fi
  store_table="| store: SQLite, $(s accounts | cut -d. -f1) accounts | value |
|---|---|
| insert rate (one Upsert, one transaction, at a time) | $(s insert_rate | cut -d. -f1) rows/s ($(s insert_mean) µs each) |
$due_row
| List() of every row — first / median | $(ms "$(s list_all_first)") / $(ms "$(s list_all_median)") ms |
| Find() one row by key, mean | $(s find_mean) µs |
| RSS after fill / after ListDue / after List() and Find() / peak (VmHWM) | $(s rss_after_fill) / $(s rss_after_list_due) / $(s rss_end) / $(s rss_peak) MiB |
| database file | $(s db_size) MiB, $(s db_bytes_per_account | cut -d. -f1) B per account |"
fi

sc() { field "$tmp/scheduler.txt" "$1"; }
whole() { cut -d. -f1; }
if [ -s "$tmp/scheduler.txt" ]; then
  scheduler_table="| scheduler: SQLite, $(sc accounts | whole) due accounts, one RunOnce | value |
|---|---|
| fill (one Upsert, one transaction, at a time) | $(sc fill_rate | whole) rows/s ($(sc fill_total) s) |
| idle RunOnce, nothing due — first / median / max of 20 | $(sc idle_run_once_first) / $(sc idle_run_once_median) / $(sc idle_run_once_max) µs |
| RunOnce over every account, all due | $(sc run_total) s: $(sc run_per_account) µs per account, $(sc run_rate | whole) refreshes/s |
| CPU of that run, all threads: user / sys | $(sc run_cpu_user) / $(sc run_cpu_sys) s ($(sc run_cpu_per_account) µs per account) |
| voluntary context switches per account | $(sc run_switches_per_account) |
| outbox rows written (expected) | $(sc outbox_rows_created | whole) ($(sc outbox_rows_expected | whole)) |
| afterwards: rows still due / sampled rows refreshed once | $(sc due_after_run | whole) / $(sc sampled_rows_ok | whole) of $(sc sampled_rows | whole) |
| RSS before the run / after / peak during it | $(sc rss_before_run) / $(sc rss_after_run) / $(sc rss_peak_run) MiB ($(sc rss_growth_per_account | whole) B per account) |
| measured alone: pool round trip / seal / open of a $(sc access_token_chars | whole)-char token | $(sc component_pool_round_trip) / $(sc component_seal_access_token) / $(sc component_open_access_token) µs |"
elif [ "$only" = http ]; then
  scheduler_table=""
else
  scheduler_table="| scheduler | not in this build |
|---|---|"
fi

scp() { field "$tmp/scheduler_pg.txt" "$1"; }
postgres_table=""
if [ -s "$tmp/scheduler_pg.txt" ]; then
  postgres_table="| scheduler: PostgreSQL 15, $(scp accounts | whole) due accounts, amoCRM answering in ${amo_latency_ms} ms, one RunOnce | value |
|---|---|
| fill (4 Upserts in flight, one transaction each) | $(scp fill_rate | whole) rows/s ($(scp fill_total) s) |
| idle RunOnce, nothing due — first / median / max of 20 | $(scp idle_run_once_first) / $(scp idle_run_once_median) / $(scp idle_run_once_max) µs |
| RunOnce over every account, all due | $(scp run_total) s: $(scp run_per_account) µs per account, $(scp run_rate | whole) refreshes/s |
| CPU of that run, the benchmark process (PostgreSQL's own not counted): user / sys | $(scp run_cpu_user) / $(scp run_cpu_sys) s ($(scp run_cpu_per_account) µs per account) |
| afterwards: rows still due / sampled rows refreshed once | $(scp due_after_run | whole) / $(scp sampled_rows_ok | whole) of $(scp sampled_rows | whole) |
| RSS of the instance before the run / after / peak during it | $(scp rss_before_run) / $(scp rss_after_run) / $(scp rss_peak_run) MiB |
| database size | $(scp db_size) MiB |
"
fi
if [ -s "$tmp/token_pg_1.txt" ]; then
  pg3_rps="$(calc "$(v token_pg_3_1 rps) + $(v token_pg_3_2 rps) + $(v token_pg_3_3 rps)")"
  postgres_table="$postgres_table
| GET /v1/accounts/{id}/token on PostgreSQL | req/s | p50 ms | p99 ms | requests |
|---|---:|---:|---:|---:|
$(row "one instance, token cache off" token_pg_nocache)
$(row "one instance, token cache" token_pg_1)
$(row "three instances at once: instance 1" token_pg_3_1)
$(row "three instances at once: instance 2" token_pg_3_2)
$(row "three instances at once: instance 3" token_pg_3_3)
| three instances at once: sum | $pg3_rps | | | |

RSS after the runs: instance without cache $pg_nocache_rss MiB; instances 1 / 2 / 3 ${pg_rss[0]} / ${pg_rss[1]} / ${pg_rss[2]} MiB.
"
fi

# cpu_text NAME: "USER + SYSTEM" from $tmp/NAME.cpu.
cpu_text() {
  local user system
  read -r user system <"$tmp/$1.cpu" && echo "$user + $system"
}
# cpu_added NAME BASE: "USER + SYSTEM" of NAME beyond BASE (what a proxy adds per request).
cpu_added() {
  local user system base_user base_system
  read -r user system <"$tmp/$1.cpu" && read -r base_user base_system <"$tmp/$2.cpu" &&
    awk "BEGIN { printf \"%.1f + %.1f\", $user - $base_user, $system - $base_system }"
}

# Which source the measured binaries were built from (the build dir may be another checkout's).
source_dir="$(sed -n 's/^amoauth_SOURCE_DIR:STATIC=//p' "$build_dir/CMakeCache.txt" 2>/dev/null)"
revision="$(git -C "${source_dir:-$root}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "${source_dir:-$root}" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision with uncommitted changes"
fi

cat <<EOF

## amoauth benchmark run, $started_at

- amoauth: commit $revision, built in $build_dir
- Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r); nginx $("$nginx" -v 2>&1 | sed 's|.*/||'); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)
- Load average (1/5/15 min): $load_before before, $load_after after
- wrk -t$wrk_threads -c$connections -d$duration --latency, keep-alive, after a 1 s warm-up; all on 127.0.0.1
- $rounds rounds of runs 1a–2c, each in the order 1a 1b 2b 2c 2a; rows 1a–2c show the round with the median req/s
- amoauth: \`serve --sandbox\`, default settings (2 threads, log level info); rate limits lifted (sandbox: $sandbox_limit; 429s seen: $sandbox_429)
- nginx: 2 workers, access log on

| run | req/s | p50 ms | p99 ms | requests |
|---|---:|---:|---:|---:|
$(row "1a. amoauth GET /v1/accounts/{id}/token" token_amoauth)
$(row "1b. nginx, static file of the same size ($token_bytes B)" token_nginx)
$(row "2a. amoauth GET …/proxy/api/v4/account" proxy_amoauth)
$(row "2b. sandbox API directly (TLS, keep-alive)" proxy_direct)
$(row "2c. nginx proxy_pass to the sandbox (keep-alive upstream)" proxy_nginx)
$(row "2d. as 2a, 1 connection" proxy_amoauth_1)
$(row "2e. as 2b, 1 connection" proxy_direct_1)
$(row "2f. as 2c, 1 connection" proxy_nginx_1)

| figure | value | target |
|---|---:|---|
| /token throughput, amoauth / nginx static: median of the rounds ($token_ratios) | $token_ratio | $(verdict "$token_ratio" 0.7) |
| CPU per /token request, user + system µs: amoauth | $(cpu_text token_amoauth) | — |
| CPU per /token request, user + system µs: nginx static file | $(cpu_text token_nginx) | — |
| proxy throughput, amoauth / nginx proxy: median of the rounds ($proxy_ratios) | $proxy_ratio | $(verdict "$proxy_ratio" 0.8) |
| CPU per proxied request, user + system µs: the sandbox called directly (2b) | $(cpu_text proxy_direct) | — |
| CPU per proxied request added over 2b, user + system µs: amoauth | $(cpu_added proxy_amoauth proxy_direct) | — |
| CPU per proxied request added over 2b, user + system µs: nginx | $(cpu_added proxy_nginx proxy_direct) | — |
| proxy latency added over direct, 1 connection: amoauth p50 / p99 | $added1_p50 / $added1_p99 ms | — |
| proxy latency added over direct, 1 connection: nginx p50 / p99 | $nginx_added1_p50 / $nginx_added1_p99 ms | — |
| proxy latency added over direct, $connections connections: amoauth p50 / p99 | $added_p50 / $added_p99 ms | — |
| proxy latency added over direct, $connections connections: nginx p50 / p99 | $nginx_added_p50 / $nginx_added_p99 ms | — |

$store_table

$scheduler_table

$postgres_table
EOF
