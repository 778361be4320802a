#!/usr/bin/env bash
# Side-by-side dense-index benchmark: ember's HnswIndex against hnswlib and FAISS (IndexHNSWFlat),
# in one run, on the same bytes, single-threaded, at the same M / ef_construction, sweeping
# ef_search; plus ember's binary-quantized flat search with rescoring and its exact flat search.
#
# usage: scripts/bench-index.sh
#
# The data is SYNTHETIC (bench/index_baselines.py generate): 100,000 x 384 float32 vectors around
# 1,000 Gaussian clusters on the unit sphere, normalised, seed 42, 1,000 held-out queries drawn the
# same way, exact top-100 by inner product. It is written once to $EMBER_INDEX_BENCH_DATA and
# reused while its parameters match. Cosine (= inner product on this data) everywhere.
#
# Prints markdown tables (build time and memory per engine; recall@10 and queries/s per ef for
# each engine; ember's quantized and exact flat search), the QPS ratios at recall >= 0.95 and
# >= 0.99 (the best measured QPS among the ef settings reaching the recall, and the QPS interpolated
# at exactly that recall, which does not favour the engine whose ef grid point happens to land just
# above it), the goal checks, and ends with key=value lines of the ratios. Each engine's JSON stays
# in $EMBER_BENCH_OUT (default: a temporary directory, whose path is printed).
#
# Queries/s are reported twice: per second of wall time and per second of CPU time (the process's
# own on-CPU time). On a shared machine the engines run at different moments and see different
# load, so the ratios use CPU time; on a quiet machine the two agree.
#
# Environment:
#   EMBER_INDEX_BENCH_DATA   data directory (default ${CARGO_TARGET_DIR:-target}/index-bench-data)
#   EMBER_INDEX_BENCH_M      M (default 16)
#   EMBER_INDEX_BENCH_EFC    ef_construction (default 200)
#   EMBER_INDEX_BENCH_EF     ef_search values (default 10,12,16,20,24,32,48,64,96,128)
#   EMBER_INDEX_BENCH_REPEATS  timed passes over the queries per ef; the median is reported (default 3)
#   EMBER_BENCH_OUT          where the per-engine JSON files go
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

target=${CARGO_TARGET_DIR:-$root/target}
data=${EMBER_INDEX_BENCH_DATA:-$target/index-bench-data}
m=${EMBER_INDEX_BENCH_M:-16}
efc=${EMBER_INDEX_BENCH_EFC:-200}
efs=${EMBER_INDEX_BENCH_EF:-10,12,16,20,24,32,48,64,96,128}
repeats=${EMBER_INDEX_BENCH_REPEATS:-3}
out=${EMBER_BENCH_OUT:-$(mktemp -d -t ember-index-bench.XXXXXX)}
mkdir -p "$out"
rm -f "$out"/{ember,hnswlib,faiss}.json

cores=$(getconf _NPROCESSORS_ONLN)  # before OMP_NUM_THREADS=1, which GNU nproc would report
# One thread everywhere.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 RAYON_NUM_THREADS=1

py=$(bash scripts/setup-python.sh | tail -n 1)
# The baselines run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, as in scripts/bench-embed.sh.
pyrun() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/index_baselines.py "$@"; }

pyrun generate --out "$data"
echo "bench-index: data $data, M=$m, ef_construction=$efc, ef $efs, results in $out" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

cargo build --release -p ember-index --example index_bench >&2
"$target/release/examples/index_bench" --data "$data" --m "$m" --ef-construction "$efc" --ef "$efs" \
  --repeats "$repeats" >"$out/ember.json"
for engine in hnswlib faiss; do
  echo "bench-index: baseline $engine" >&2
  pyrun run --engine "$engine" --data "$data" --m "$m" --ef-construction "$efc" --ef "$efs" \
    --repeats "$repeats" >"$out/$engine.json"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
pyrun report "$out/ember.json" "$out/hnswlib.json" "$out/faiss.json" \
  --context "$cores cores ($cpu); load average before $load_before, after $load_after"
