#!/usr/bin/env bash
# Serving benchmark: `ember serve` against Infinity (infinity-emb 0.0.78 on its default PyTorch
# engine, scripts/setup-infinity.sh) and sentence-transformers behind FastAPI/uvicorn
# (scripts/bench/st_server.py), in one run, on the same machine, the same sentences and the same
# load: OpenAI-style POST /v1/embeddings requests of 1 and of 32 sentences
# (bench/corpus/sentences.txt, taken in turn) at concurrency 1, 8 and 64, each for
# EMBER_BENCH_SECONDS after a warm-up, from a small Rust load generator
# (crates/ember-server/examples/loadgen.rs: keep-alive connections, one tokio worker thread).
# Then `ember bench embed` at batch 32 for the overhead figure.
#
# usage: scripts/bench-serve.sh [model-dir]      (default: all-MiniLM-L6-v2 from fetch-models.sh)
# Prints a markdown table (server × sentences per request × concurrency: requests/s,
# sentences/s, p50/p90/p99 ms, errors) and the goal checks; JSON lines are kept in
# $EMBER_BENCH_OUT (default: a temporary directory, printed).
#
# Environment:
#   EMBER_BENCH_SECONDS   measured seconds per configuration (default 20), after 3 s of warm-up:
#                         responses arriving in that window count (latency and throughput)
#   EMBER_BENCH_THREADS   threads of each server's model (default 2): RAYON/OMP/MKL_NUM_THREADS,
#                         torch.set_num_threads
#   EMBER_BENCH_SKIP_PYTHON=1  ember only (neither Python server)
#   EMBER_BENCH_SKIP_INFINITY=1  no Infinity
# Run on a quiet machine: the servers and the load generator share its cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ -n "${1:-}" ]; then
  model=$(cd "$1" && pwd)
else
  model="$(bash scripts/fetch-models.sh minilm | tail -n 1)/all-MiniLM-L6-v2"
fi
seconds=${EMBER_BENCH_SECONDS:-20}
threads=${EMBER_BENCH_THREADS:-2}
corpus=bench/corpus/sentences.txt
out=${EMBER_BENCH_OUT:-$(mktemp -d -t ember-bench-serve.XXXXXX)}
mkdir -p "$out"
: >"$out/results.jsonl"
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
echo "bench-serve: model $model, $seconds s per configuration, $threads model threads, results in $out" >&2

echo "bench-serve: building ember and the load generator (release)" >&2
cargo build --release -q -p ember-cli
cargo build --release -q -p ember-server --example loadgen
target=${CARGO_TARGET_DIR:-target}
ember="$target/release/ember"
loadgen="$target/release/examples/loadgen"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for_address() { # log file → host:port
  for _ in $(seq 1 600); do
    if grep -q "listening on http://" "$1" 2>/dev/null; then
      grep -o "listening on http://[0-9.:]*" "$1" | head -n 1 | sed 's|listening on http://||'
      return 0
    fi
    sleep 0.2
  done
  echo "bench-serve: the server did not start; its log:" >&2
  cat "$1" >&2
  return 1
}

measure() { # server-name address
  for batch in 1 32; do
    for conc in 1 8 64; do
      TOKIO_WORKER_THREADS=1 "$loadgen" --addr "$2" --path /v1/embeddings --model minilm \
        --sentences "$corpus" --batch "$batch" --concurrency "$conc" --seconds "$seconds" --warmup 3 |
        sed "s/^{/{\"server\":\"$1\",/" | tee -a "$out/results.jsonl" >&2
    done
  done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$ember" serve --model "minilm=$model" --port 0 --max-batch-requests 32 2>"$out/ember.log" &
pids+=($!)
addr=$(wait_for_address "$out/ember.log")
measure ember "$addr"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true

if [ "${EMBER_BENCH_SKIP_PYTHON:-0}" != 1 ] && [ "${EMBER_BENCH_SKIP_INFINITY:-0}" != 1 ]; then
  infinity=$(bash scripts/setup-infinity.sh | tail -n 1)
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()")
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE HF_HUB_OFFLINE=1 "$infinity" v2 --model-id "$model" \
    --served-model-name minilm --engine torch --device cpu --host 127.0.0.1 --port "$port" --url-prefix /v1 \
    --batch-size 32 2>"$out/infinity.log" >&2 &
  pids+=($!)
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "bench-serve: Infinity did not start:" >&2; cat "$out/infinity.log" >&2; exit 1; }
  measure infinity "127.0.0.1:$port"
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
fi

if [ "${EMBER_BENCH_SKIP_PYTHON:-0}" != 1 ]; then
  py=$(bash scripts/setup-python.sh | tail -n 1)
  # This workplace may set OpenBLAS variables for old builds; they slow a current numpy.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" scripts/bench/st_server.py --model "$model" --threads "$threads" \
    2>"$out/python.log" &
  pids+=($!)
  addr=$(wait_for_address "$out/python.log")
  measure sentence-transformers+fastapi "$addr"
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
fi

"$ember" bench embed --model "$model" --batch-sizes 32 --passes 3 --latency-samples 10 --rss-sentences 0 --json \
  >"$out/bench-embed.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$load_before" "$load_after" <<'PY'
import json, sys
out, before, after = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl") if l.strip()]
print(f"load average before {before}, after {after}\n")
print("| server | sentences/request | concurrency | requests/s | sentences/s | p50 ms | p90 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
def ms(v):
    return "-" if v is None else f"{v:.1f}"
for r in rows:
    print(f"| {r['server']} | {r['batch']} | {r['concurrency']} | {r['requests_per_s']:.1f} | {r['sentences_per_s']:.1f} "
          f"| {ms(r['p50_ms'])} | {ms(r['p90_ms'])} | {ms(r['p99_ms'])} | {r['errors']} |")
def get(server, batch, conc):
    return next((r for r in rows if r["server"] == server and r["batch"] == batch and r["concurrency"] == conc), None)
print()
for baseline in ("infinity", "sentence-transformers+fastapi"):
  for batch in (1, 32):
    e, p = get("ember", batch, 64), get(baseline, batch, 64)
    if e and p and p["sentences_per_s"] > 0:
        print(f"throughput ratio vs {baseline} at concurrency 64, {batch} sentence(s)/request: "
              f"{e['sentences_per_s'] / p['sentences_per_s']:.2f} (goal >= 1.5)")
    e, p = get("ember", batch, 8), get(baseline, batch, 8)
    if e and p:
        print(f"p99 at concurrency 8, {batch} sentence(s)/request: ember {ms(e['p99_ms'])} ms, "
              f"{baseline} {ms(p['p99_ms'])} ms (goal: ember <= {baseline})")
bench = json.load(open(f"{out}/bench-embed.json"))
run = next(r for r in bench["runs"] if r["batch_size"] == 32)
e = get("ember", 32, 64)
if e:
    print(f"overhead: server at concurrency 64 x 32 sentences {e['sentences_per_s']:.1f} sentences/s, "
          f"ember bench embed batch 32 {run['sentences_per_s']:.1f} sentences/s: "
          f"{e['sentences_per_s'] / run['sentences_per_s']:.2f} (goal >= 0.90)")
PY
