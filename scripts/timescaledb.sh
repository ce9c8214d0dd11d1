#!/usr/bin/env bash
# Project-local PostgreSQL 15 + TimescaleDB (Apache-2 edition) for development and tests.
#
#   bash scripts/timescaledb.sh install|start|stop|status|dsn
#
# Debian bookworm packages no TimescaleDB, so `install` builds it from Debian trixie's
# source package (fetched with apt, signature-checked with debian-archive-keyring) against
# the bookworm PostgreSQL 15. `start` prints the DSN as the last line of stdout; all other
# output goes to stderr, so `DSN=$(bash scripts/timescaledb.sh start)` works.
#
# Env: WEARABLES_STATE_DIR (default <repo>/.state), WEARABLES_PG_PORT (default 55432),
#      WEARABLES_TIMESCALE_DSN (use your own TimescaleDB instead: no apt, no local cluster).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$(realpath -m "${WEARABLES_STATE_DIR:-$REPO_ROOT/.state}")"
PORT="${WEARABLES_PG_PORT:-55432}"
PGBIN=/usr/lib/postgresql/15/bin
PG="$STATE/pg"; DATA="$PG/data"; RUN="$PG/run"; LOG="$PG/postgres.log"
DSN="postgresql://wearables@127.0.0.1:$PORT/wearables"
TRIXIE_SRC=/etc/apt/sources.list.d/wearables-trixie-src.sources
PKGS=(postgresql-15 postgresql-client-15 postgresql-server-dev-15 cmake build-essential
      dpkg-dev libssl-dev libkrb5-dev debian-archive-keyring)

log() { echo "timescaledb.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The user's own TimescaleDB: never touch apt or a local cluster.
if [[ -n "${WEARABLES_TIMESCALE_DSN:-}" ]]; then
  masked="$(sed -E 's#(://[^:/@]*:)[^@]*@#\1****@#' <<<"$WEARABLES_TIMESCALE_DSN")"
  case "${1:-}" in
    install|start|stop) log "WEARABLES_TIMESCALE_DSN is set: using $masked (nothing to $1)"
                        [[ "$1" == start ]] && echo "$WEARABLES_TIMESCALE_DSN"; exit 0 ;;
    dsn) echo "$WEARABLES_TIMESCALE_DSN"; exit 0 ;;
    status) log "using external $masked"
            command -v pg_isready >/dev/null || die "pg_isready not installed; cannot check"
            exec pg_isready -d "$WEARABLES_TIMESCALE_DSN" ;;
  esac
fi

[[ "$(id -u)" == 0 ]] && SUDO=() || SUDO=(sudo)
# PostgreSQL refuses to run as root: as root, run the server tools as the `postgres` user.
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

ext_installed() {
  local ctl=/usr/share/postgresql/15/extension/timescaledb.control ver lib
  [[ -f $ctl && -x $PGBIN/pg_config ]] || return 1
  lib="$("$PGBIN/pg_config" --pkglibdir)"
  ver="$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$ctl")"
  [[ -f $lib/timescaledb.so && -f $lib/timescaledb-$ver.so ]]
}

# URI + keyring of the machine's own Debian bookworm entry (deb822 first, then classic).
debian_source() {
  local f=/etc/apt/sources.list.d/debian.sources out=""
  [[ -f $f ]] && out="$(awk -v RS= '{
      t=""; s=""; u=""; k=""; n=split($0, L, "\n")
      for (i = 1; i <= n; i++) if (L[i] !~ /^#/ && match(L[i], /^[A-Za-z-]+:/)) {
        key = tolower(substr(L[i], 1, RLENGTH - 1)); v = substr(L[i], RLENGTH + 1)
        gsub(/^[ \t]+|[ \t]+$/, "", v)
        if (key == "types") t = v; else if (key == "suites") s = v
        else if (key == "uris") u = v; else if (key == "signed-by") k = v }
      if ((" " t " ") ~ / deb / && (" " s " ") ~ / bookworm /) { split(u, U, " "); print U[1], k; exit }
    }' "$f")"
  [[ -z $out && -f /etc/apt/sources.list ]] && out="$(sed -nE \
    's/^deb[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm[[:space:]].*main.*/\3 \2/p' \
    /etc/apt/sources.list | head -n1 | sed -E 's/ .*signed-by=([^ ]+).*/ \1/; t; s/ .*//')"
  [[ -n $out ]] || die "no Debian bookworm entry in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  echo "$out"
}

# The build recipe is Debian 12's (bookworm's PostgreSQL 15 + trixie's timescaledb source).
require_bookworm() {
  local id="" codename=""
  [[ -r /etc/os-release ]] && { id="$(. /etc/os-release; echo "${ID:-}")"; codename="$(. /etc/os-release; echo "${VERSION_CODENAME:-}")"; }
  [[ $id == debian && $codename == bookworm ]] && return 0
  die "the project-local TimescaleDB is built for Debian 12 (bookworm); this is ${id:-unknown} ${codename:-}. \
Run TimescaleDB yourself (your distribution's package, Timescale's image or Timescale Cloud) and set \
WEARABLES_TIMESCALE_DSN=postgresql://user:pass@host:5432/db; nothing else needs to change"
}

cmd_install() {
  local missing=() p need_build=0 uri key
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ext_installed || need_build=1
  if (( ${#missing[@]} == 0 && need_build == 0 )); then log "already installed"; return 0; fi
  require_bookworm
  [[ ${#SUDO[@]} == 0 ]] || command -v sudo >/dev/null || die "need root (or sudo) to apt-get install / make install"
  if (( need_build )) && [[ ! -f /usr/share/keyrings/debian-archive-trixie-automatic.gpg ]]; then
    # Older bookworm keyrings lack the trixie keys: upgrade it before adding the trixie source.
    "${SUDO[@]}" apt-get update -qq >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >&2
  fi
  if (( need_build )); then
    # Sources only (Types: deb-src), so no trixie binary can ever be installed by accident.
    # Current bookworm debian-archive-keyring holds the trixie keys: signatures stay checked.
    local line; line="$(debian_source)"; read -r uri key <<<"$line"
    [[ -n ${key:-} && ${key:0:1} == / ]] || key=/usr/share/keyrings/debian-archive-keyring.gpg
    # Removed right after `apt-get source` (or on any exit), so later `apt-get update`s never see it.
    trap '"${SUDO[@]}" rm -f "$TRIXIE_SRC"' EXIT
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$uri" "$key" \
      | "${SUDO[@]}" tee "$TRIXIE_SRC" >/dev/null
  fi
  log "apt-get update (once)"
  "${SUDO[@]}" apt-get update -qq >&2
  if (( ${#missing[@]} )); then
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  (( need_build )) || return 0
  ext_installed && { log "timescaledb appeared meanwhile, no build"; return 0; }
  local build="$STATE/build" src ver
  ver="$(apt-cache showsrc timescaledb 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)"
  [[ -n $ver ]] || die "no timescaledb source package found in trixie"
  [[ $ver == 2.19.3+dfsg-* ]] || log "note: trixie has timescaledb $ver (tested with 2.19.3+dfsg)"
  rm -rf "$build"; mkdir -p "$build"
  log "fetching timescaledb $ver source into $build"
  # As root apt warns "Download is performed unsandboxed": _apt cannot write here; harmless.
  (cd "$build" && apt-get source -qq "timescaledb=$ver" >&2)
  "${SUDO[@]}" rm -f "$TRIXIE_SRC"; trap - EXIT   # stale lists vanish at the next apt-get update
  # The build dir is inside the project's git repo: keep timescaledb's git-describe out of it.
  export GIT_CEILING_DIRECTORIES="$build"
  src="$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n1)"
  [[ -f $src/CMakeLists.txt ]] || die "unpacked source not found in $build"
  log "building in $src"
  # APACHE_ONLY: the dfsg source has no TSL (community-licensed) code; no tests, no telemetry.
  cmake -S "$src" -B "$src/build" -DPG_CONFIG="$PGBIN/pg_config" -DCMAKE_BUILD_TYPE=Release \
    -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DSEND_TELEMETRY_DEFAULT=OFF \
    -DWARNINGS_AS_ERRORS=OFF >&2
  make -C "$src/build" -j"$(nproc)" >&2
  "${SUDO[@]}" make -C "$src/build" install >&2
  ext_installed || die "build finished but timescaledb is still not visible to PostgreSQL 15"
  rm -rf "$build"   # the installed files are all we need; keep the state dir small
  log "timescaledb $ver installed into PostgreSQL 15"
}

running() { [[ -f $DATA/PG_VERSION ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

cmd_start() {
  ext_installed || cmd_install
  mkdir -p "$RUN"
  (( ${#RUN} + 16 < 108 )) || die "socket path $RUN is too long (unix sockets max 107 chars); use a shorter WEARABLES_STATE_DIR"
  if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "system user 'postgres' missing (run: $0 install)"
    [[ "$(stat -c %U "$PG")" == postgres && "$(stat -c %U "$DATA" 2>/dev/null || echo postgres)" == postgres ]] \
      || chown -R postgres: "$PG"
    # Every dir down to $PG must be enterable by postgres, or initdb/pg_ctl fail obscurely.
    local d="" part parts; IFS=/ read -ra parts <<<"${PG#/}"
    for part in "${parts[@]}"; do
      d="$d/$part"
      runuser -u postgres -- test -x "$d" || die "user postgres cannot enter $d; fix: chmod o+x '$d' (or set WEARABLES_STATE_DIR elsewhere)"
    done
  fi
  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "initialising cluster in $DATA"
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth=trust >&2
    # Dev/test cluster: trust auth with no password, but only over the local socket and
    # 127.0.0.1 (the server listens nowhere else). Never use this setup for real data.
    printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' \
      'local replication all trust' 'host replication all 127.0.0.1/32 trust' > "$DATA/pg_hba.conf"
    echo "include 'wearables.conf'" >> "$DATA/postgresql.conf"
  fi
  if running; then
    log "already running on port $PORT"
  else
    # Rewritten on every start so WEARABLES_PG_PORT / state dir changes take effect.
    cat > "$DATA/wearables.conf" <<EOF
# written by scripts/timescaledb.sh; edits are overwritten on next start
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 100
# Which checkout owns this server: the project refuses to use another checkout's server on the
# default DSN (storage/timescale.py, ForeignLocalServer) instead of writing into it silently.
wearables.state_dir = '$STATE'
EOF
    [[ "$(id -u)" != 0 ]] || chown postgres: "$DATA/wearables.conf" "$DATA/pg_hba.conf"
    # Another server on the port (often a second checkout's own cluster) would make this one
    # fail to bind; say so plainly instead of leaving the reader with the server log.
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
      die "port $PORT on 127.0.0.1 is taken by another server (another checkout's cluster?): stop it, or pick a free port with WEARABLES_PG_PORT=<port>"
    fi
    log "starting PostgreSQL 15 on 127.0.0.1:$PORT (log: $LOG)"
    # 9>&-: the server must not inherit the lock fd, or it would hold the lock while it runs.
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 9>&- \
      || { tail -n 20 "$LOG" >&2 || true; die "server failed to start (see $LOG)"; }
  fi
  local i
  for i in $(seq 1 60); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.5; done
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "server not accepting connections on 127.0.0.1:$PORT (is the port used by another server? see $LOG)"
  # wearables must be SUPERUSER: CREATE EXTENSION timescaledb needs it.
  "$PGBIN/psql" -h "$RUN" -p "$PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >&2 <<'SQL'
SELECT 'CREATE ROLE wearables LOGIN SUPERUSER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wearables') \gexec
SELECT format('CREATE DATABASE %I OWNER wearables', d) FROM unnest(ARRAY['wearables', 'dagster']) d
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d) \gexec
SQL
  echo "$DSN"
}

cmd_stop() {
  if running; then as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >&2; else log "not running"; fi
}

case "${1:-}" in
  install|start|stop)
    mkdir -p "$STATE"
    exec 9>"$STATE/.timescaledb.sh.lock"; flock 9   # serialise concurrent install/start/stop
    "cmd_$1" ;;
  status) if running; then log "running on 127.0.0.1:$PORT ($DATA)"; else log "not running ($DATA)"; exit 1; fi ;;
  dsn) echo "$DSN" ;;
  *) echo "usage: $0 install|start|stop|status|dsn" >&2; exit 2 ;;
esac
