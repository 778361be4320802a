#!/usr/bin/env bash
# Stop the milvus-lite server started by scripts/setup-milvus.sh and delete its directory (the
# virtual environment under target/ is kept). Safe to call when nothing runs (CI calls it from a
# trap).
set -euo pipefail

dir="${EMBER_MILVUS_DIR:-/tmp/ember-milvus}"
[ -d "$dir" ] || exit 0
if [ -f "$dir/pid" ]; then
  pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
fi
rm -rf "$dir"
echo "stop-milvus: stopped and removed $dir" >&2
