#!/usr/bin/env bash
# Store backends side by side on the same synthetic data, in one run: ingest docs/s, dense,
# dense + sparse and dense + BM25 (RRF in the engine) query p50/p99 (k = 10), flat (exact) and
# HNSW, embedded vs PostgreSQL + pgvector vs Milvus (crates/ember-engine/examples/bench_backends.rs
# describes the data: clustered points of low intrinsic dimension, with topical texts).
# Starts the throwaway PostgreSQL cluster of scripts/setup-postgres.sh and the milvus-lite server
# of scripts/setup-milvus.sh unless EMBER_TEST_POSTGRES_URL / EMBER_TEST_MILVUS_URL are set.
#   bash scripts/bench-backends.sh [--n 100000] [--dim 384] [--queries 200]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${EMBER_TEST_POSTGRES_URL:-}" ]; then
  pg_env=$(bash scripts/setup-postgres.sh | tail -n 1)
  eval "$pg_env"
fi
if [ -z "${EMBER_TEST_MILVUS_URL:-}" ]; then
  milvus_env=$(bash scripts/setup-milvus.sh | tail -n 1)
  eval "$milvus_env"
fi
cargo build --release -q -p ember-engine --features postgres,milvus --example bench_backends
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/bench_backends --postgres "$EMBER_TEST_POSTGRES_URL" --milvus "$EMBER_TEST_MILVUS_URL" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
