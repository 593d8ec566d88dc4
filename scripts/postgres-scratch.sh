#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server for tests, in a directory of its own:
#   scripts/postgres-scratch.sh start DIR    initdb DIR/data if absent, start, print the URL
#   scripts/postgres-scratch.sh stop DIR     stop it (fast: open sessions are cut)
#   scripts/postgres-scratch.sh restart DIR  stop, then start again (prints the URL)
# The server listens ONLY on a Unix socket in DIR (no TCP port), trusts every local
# connection and does not fsync: it is for tests, never for data anyone keeps. Start is
# idempotent (a running server just has its URL printed), and a server left behind by a
# killed run (stale postmaster.pid or socket lock) is started again without help.
# Run as root, DIR is given to the `postgres` user and the server runs as that user
# (PostgreSQL refuses to run as root); otherwise it runs as the current user.
# Binaries: PG_BINDIR if set, else /usr/lib/postgresql/15/bin, else `pg_config --bindir`.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart DIR" >&2
  exit 2
}
die() {
  echo "postgres-scratch: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
action="$1"
case "$action" in start | stop | restart) ;; *) usage ;; esac

dir="$(realpath -m -- "$2")"
data="$dir/data"
log="$dir/postgres.log"
port=5432  # only names the socket file in DIR; nothing listens on TCP

# A Unix socket path is limited to 107 bytes; PostgreSQL refuses longer ones, so say so here.
socket="$dir/.s.PGSQL.$port"
[ ${#socket} -le 107 ] ||
  die "the directory path is too long for a Unix socket (${#socket} > 107 bytes): $dir; use a shorter one"
mkdir -p "$dir"

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
  if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    bindir=/usr/lib/postgresql/15/bin
  elif command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/pg_ctl" ]; then
    bindir="$(pg_config --bindir)"
  else
    die "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/15/bin and pg_config --bindir);" \
      "install them with scripts/install-deps.sh (Debian package postgresql-15)"
  fi
fi
[ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] || die "no initdb/pg_ctl in $bindir"

# Everything touching the data directory runs as its owner.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
  as_owner=(runuser -u postgres --)
  chown postgres: "$dir"
  # The server must reach DIR through its parents: a build tree under a private home won't do.
  "${as_owner[@]}" test -w "$dir" -a -x "$dir" ||
    die "user postgres cannot reach $dir (a parent directory is not searchable by it); use a directory under /tmp"
fi
run() { "${as_owner[@]}" "$@"; }

url_encode() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in [A-Za-z0-9/._~-]) out+="$c" ;; *) out+="$(printf '%%%02X' "'$c")" ;; esac
  done
  printf '%s' "$out"
}
print_url() { echo "postgresql://postgres@/postgres?host=$(url_encode "$dir")"; }

# The server runs when postmaster.pid names a live postgres process. A killed server's PID can
# stay a zombie for a while, which kill -0 (and so pg_ctl) still counts as alive: read /proc.
running() {
  local pid state
  [ -f "$data/postmaster.pid" ] || return 1
  pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
  [ "$state" != Z ] && [ "$state" != X ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]
}

# Lock files of a server that is gone (killed, or the machine rebooted) would stop the next one.
remove_stale_locks() { rm -f "$data/postmaster.pid" "$socket.lock"; }

show_log() {
  if [ -f "$log" ]; then
    echo "postgres-scratch: last lines of $log:" >&2
    tail -n 20 "$log" >&2
  fi
}

start() {
  if running; then
    print_url
    return 0
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    if ! run "$bindir/initdb" -D "$data" -A trust -U postgres --no-sync --no-locale -E UTF8 \
      >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      die "initdb failed in $data (output above)"
    fi
    echo "include_if_exists = 'scratch.conf'" | run tee -a "$data/postgresql.conf" >/dev/null
  fi
  # Written on every start so a moved DIR still gets its own socket directory.
  run tee "$data/scratch.conf" >/dev/null <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 200
logging_collector = off
EOF
  remove_stale_locks
  if ! run "$bindir/pg_ctl" start -D "$data" -l "$log" -w -t 60 -s >/dev/null 2>&1; then
    show_log
    die "PostgreSQL did not start in $data within 60 s (log above)"
  fi
  print_url
}

stop() {
  if ! running; then
    [ ! -d "$data" ] || remove_stale_locks
    return 0
  fi
  if ! run "$bindir/pg_ctl" stop -D "$data" -m fast -w -t 60 -s >/dev/null 2>&1; then
    show_log
    die "PostgreSQL in $data did not stop within 60 s"
  fi
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart)
    stop
    start
    ;;
esac
