#!/usr/bin/env bash
# Stop the throwaway cluster started by scripts/setup-postgres.sh and delete its directory.
# Safe to call when nothing runs (CI calls it from a trap).
set -euo pipefail

dir="${EMBER_PG_DIR:-/tmp/ember-postgres}"
[ -d "$dir/data" ] || exit 0
pg_bin=$(cat "$dir/pg_bin" 2>/dev/null || echo /usr/lib/postgresql/15/bin)
owner=$(stat -c %U "$dir/data")
as_owner() { if [ "$(id -un)" = "$owner" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi; }
if as_owner "$pg_bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
fi
rm -rf "$dir"
echo "stop-postgres: stopped and removed $dir" >&2
