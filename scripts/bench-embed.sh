#!/usr/bin/env bash
# Side-by-side embedding benchmark: ember against sentence-transformers on PyTorch CPU and against
# ONNX Runtime on an fp32 ONNX export of the same model, in one run, on the same inputs
# (bench/corpus/sentences.txt, the same length-sorted batches, the same thread count).
#
# usage: scripts/bench-embed.sh [model-dir-or-name]
#   model: a directory in sentence-transformers layout, or a name that scripts/fetch-models.sh
#          knows (all-MiniLM-L6-v2 | minilm, all-mpnet-base-v2 | mpnet). Default: all-MiniLM-L6-v2.
#
# Prints markdown tables (engine × batch size: sentences/s, tokens/s; p50/p99 single-query latency;
# peak RSS while embedding 10,000 sentences; weights file size), the goal checks, and ends with
#   latency_ratio_vs_onnxruntime=<ember p50 / onnxruntime p50>
#   ratio_vs_torch=<x> ratio_vs_onnxruntime=<y>
# (ember's best sentences/s over each baseline's best, 2 decimals). The JSON of each engine is
# kept in $EMBER_BENCH_OUT (default: a temporary directory, whose path is printed).
#
# Environment:
#   EMBER_BENCH_THREADS    threads for every engine (default 2): OMP/MKL/RAYON_NUM_THREADS, torch
#                          set_num_threads, ORT intra_op_num_threads
#   EMBER_BENCH_CORPUS     corpus file (default bench/corpus/sentences.txt)
#   EMBER_BENCH_OUT        where the per-engine JSON files go
#   EMBER_BENCH_ENFORCE=1  exit 1 when a goal is missed (default: report only)
#   EMBER_BENCH_SKIP_EMBER=1  baselines only (for developing this script; the ratios print nan)
#   EMBER_BENCH_CACHE      ONNX export cache (default ~/.cache/ember-bench)
#
# Notes: the baselines need the fixture venv (scripts/setup-python.sh installs it once). They run
# with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: this workplace may set them for old OpenBLAS
# builds, and they slow a current numpy; they are unset for the baseline commands only.
# Run on a quiet machine: every engine is timed with the same number of threads, and a concurrent
# build skews whichever engine it overlaps.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

arg=${1:-all-MiniLM-L6-v2}
if [ -d "$arg" ]; then
  model=$(cd "$arg" && pwd)
else
  case "$arg" in
    all-MiniLM-L6-v2 | minilm) key=minilm name=all-MiniLM-L6-v2 ;;
    all-mpnet-base-v2 | mpnet) key=mpnet name=all-mpnet-base-v2 ;;
    *) echo "bench-embed: '$arg' is neither a directory nor a model scripts/fetch-models.sh knows" >&2; exit 2 ;;
  esac
  models_dir=$(bash scripts/fetch-models.sh "$key" | tail -n 1)
  model="$models_dir/$name"
fi

corpus=${EMBER_BENCH_CORPUS:-bench/corpus/sentences.txt}
threads=${EMBER_BENCH_THREADS:-2}
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads
export TOKENIZERS_PARALLELISM=true
out=${EMBER_BENCH_OUT:-$(mktemp -d -t ember-bench.XXXXXX)}
mkdir -p "$out"
rm -f "$out"/{ember,torch,onnxruntime}.json
echo "bench-embed: model $model, corpus $corpus, $threads threads, results in $out" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "${EMBER_BENCH_SKIP_EMBER:-0}" = 1 ]; then
  echo "bench-embed: EMBER_BENCH_SKIP_EMBER=1: ember NOT measured, ratios will be nan" >&2
else
  cargo build --release -p ember-cli >&2
  ember="${CARGO_TARGET_DIR:-$root/target}/release/ember"
  ember_args=(bench embed --model "$model" --corpus "$corpus" --json)
  if "$ember" bench embed --help 2>/dev/null | grep -q -- '--threads'; then
    ember_args+=(--threads "$threads")
  fi
  echo "bench-embed: ember ${ember_args[*]}" >&2
  "$ember" "${ember_args[@]}" >"$out/ember.json"
fi

py=$(bash scripts/setup-python.sh | tail -n 1)
for engine in torch onnxruntime; do
  echo "bench-embed: baseline $engine" >&2
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$py" scripts/bench/baselines.py --engine "$engine" --model "$model" --corpus "$corpus" \
    --threads "$threads" >"$out/$engine.json"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
enforce=()
[ "${EMBER_BENCH_ENFORCE:-0}" = 1 ] && enforce=(--enforce)
results=("$out"/*.json)
python3 scripts/bench/report.py "${enforce[@]}" \
  --context "$(nproc) cores ($cpu); load average before $load_before, after $load_after" "${results[@]}"
