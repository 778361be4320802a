#!/usr/bin/env bash
# Start a throwaway Milvus-protocol server on 127.0.0.1 for the store conformance suite's
# protocol tests (crates/ember-store/tests/conformance.rs, module `milvus_protocol`) and the CLI
# test crates/ember-cli/tests/store_milvus.rs.
#
# The server is `milvus-lite server` from the PyPI package milvus-lite==3.2.2: a pure-Python
# engine (faiss, pyarrow) behind Milvus's gRPC protocol. It is NOT Milvus: it speaks the same
# protocol for the subset of RPCs it implements, which is what ember's Milvus backend uses
# (docs/scaling.md, "Milvus"). Its gRPC adapter imports pymilvus's generated protocol modules
# without declaring the dependency, so pymilvus is installed beside it, pinned too.
#
# Everything goes into a virtual environment under target/ (ignored by git); nothing is installed
# system-wide. Idempotent: an existing venv is reused, a running server is reused.
# The last line printed is the server's address as a shell export, so
#   eval "$(bash scripts/setup-milvus.sh | tail -n 1)"
# sets EMBER_TEST_MILVUS_URL. Stop it and delete its data with scripts/stop-milvus.sh.
#
# Environment:
#   EMBER_MILVUS_DIR   server directory: data, log, pid, port (default /tmp/ember-milvus)
#   EMBER_MILVUS_VENV  virtual environment (default target/milvus-venv in the repository)
#   EMBER_MILVUS_PORT  TCP port on 127.0.0.1 (default: a free port picked by the kernel)
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${EMBER_MILVUS_DIR:-/tmp/ember-milvus}"
venv="${EMBER_MILVUS_VENV:-$PWD/target/milvus-venv}"
started=$(date +%s)
log() { echo "setup-milvus: $*" >&2; }

MILVUS_LITE=milvus-lite==3.2.2
PYMILVUS=pymilvus==3.0.2

if [ ! -x "$venv/bin/milvus-lite" ]; then
  log "creating $venv and installing $MILVUS_LITE $PYMILVUS"
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$MILVUS_LITE" "$PYMILVUS" >&2
fi

mkdir -p "$dir"
accepts() { "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$1" 2>/dev/null; }

if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && [ -f "$dir/port" ] && accepts "$(cat "$dir/port")"; then
  log "server in $dir already running (pid $(cat "$dir/pid"))"
else
  port="${EMBER_MILVUS_PORT:-}"
  if [ -z "$port" ]; then
    port=$("$venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()")
  fi
  log "starting milvus-lite server on 127.0.0.1:$port (data in $dir/data, log $dir/server.log)"
  nohup "$venv/bin/milvus-lite" server --data-dir "$dir/data" --host 127.0.0.1 --port "$port" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "$port" >"$dir/port"
  for _ in $(seq 1 300); do
    accepts "$port" && break
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "the server exited:"; cat "$dir/server.log" >&2; exit 1
    fi
    sleep 0.2
  done
  accepts "$port" || { log "the server did not accept connections within 60 s:"; cat "$dir/server.log" >&2; exit 1; }
fi
port=$(cat "$dir/port")
log "ready in $(($(date +%s) - started)) s: $MILVUS_LITE on 127.0.0.1:$port"
echo "export EMBER_TEST_MILVUS_URL=milvus://127.0.0.1:$port"
