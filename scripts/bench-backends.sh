#!/usr/bin/env bash
# Store backends side by side on the same synthetic data, in one run: ingest docs/s, dense and
# hybrid (dense + BM25, RRF in the engine) query p50/p99 (k = 10), flat (exact) and HNSW,
# embedded vs PostgreSQL + pgvector (crates/ember-engine/examples/bench_backends.rs describes the
# data: clustered points of low intrinsic dimension, with topical texts).
# Starts the throwaway cluster of scripts/setup-postgres.sh unless EMBER_TEST_POSTGRES_URL is set.
#   bash scripts/bench-backends.sh [--n 100000] [--dim 384] [--queries 200]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${EMBER_TEST_POSTGRES_URL:-}" ]; then
  pg_env=$(bash scripts/setup-postgres.sh | tail -n 1)
  eval "$pg_env"
fi
cargo run --release -q -p ember-engine --features postgres --example bench_backends -- \
  --postgres "$EMBER_TEST_POSTGRES_URL" "$@"
