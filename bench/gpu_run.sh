#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md ("GPU (CUDA feature)"), run on the GPU machine from
# the repository root. The machine has no Rust toolchain and no network: the bundle .gpu/ holds
# what scripts/gpu-bundle.sh packed here (the stripped `cuda` build of ember, xz-compressed; the
# f16 copy of all-MiniLM-L6-v2, in two pieces when one transfer cannot hold it; this script and
# bench/gpu_baseline.py).
#
#   bash .gpu-a/gpu_run.sh stage   # unpack into $BUNDLE, nvidia-smi, smoke test (CPU vs CUDA)
#   bash .gpu-b/gpu_run.sh bench   # ember and sentence-transformers on CUDA, parity
#
# (the bundle is the folder this script sits in; stage and bench may be one bundle or two, sent
# in two calls while the machine stays warm: $BUNDLE outlives a call, not the machine).
#
# Results: $OUT/results.jsonl (one JSON object per run), $OUT/log.txt, $OUT/nvidia-smi.txt.
set -uo pipefail

SRC=$(cd "$(dirname "$0")" && pwd)
B=${BUNDLE:-/root/ember-gpu}
OUT=${OUT:-/tmp/ember-gpu-out}
mkdir -p "$B" "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true
E=$B/ember
M=$B/minilm
C=bench/corpus/sentences.txt
log() { echo "== $*" | tee -a "$OUT/log.txt"; }
run() { log "$*"; "$@" 2>>"$OUT/log.txt" | tee -a "$OUT/results.jsonl"; }

unpack() {
    cp -r "$SRC/." "$B/"
    cp "$B/gpu_baseline.py" bench/
    if [ -e "$B/ember.xz" ] && [ ! -x "$E" ]; then xz -dc "$B/ember.xz" >"$E" && chmod +x "$E"; fi
    if [ -e "$B/ember-base.xz" ] && [ ! -x "$B/ember-base" ]; then
        xz -dc "$B/ember-base.xz" >"$B/ember-base" && chmod +x "$B/ember-base"
    fi
    mkdir -p "$M"
    [ -d "$B/minilm-meta" ] && cp -r "$B/minilm-meta/." "$M/"
    if [ -e "$B/model.nparts" ] && [ "$(ls "$B"/model.part* 2>/dev/null | wc -l)" = "$(cat "$B/model.nparts")" ]; then
        cat "$B"/model.part* >"$M/model.safetensors"
    fi
}

case ${1:-} in
stage)
    unpack
    nvidia-smi | tee "$OUT/nvidia-smi.txt"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,power.limit --format=csv | tee -a "$OUT/nvidia-smi.txt"
    ldd "$E" | tee -a "$OUT/log.txt"
    # Smoke test: a tiny random BERT (the pipeline fixture) with MiniLM's tokenizer, CPU vs CUDA.
    t=/tmp/tiny-bert && mkdir -p $t && cp crates/ember-models/tests/fixtures/pipeline/tiny-bert/* $t/
    cp "$M"/tokenizer.json "$M"/tokenizer_config.json "$M"/special_tokens_map.json "$M"/vocab.txt $t/
    head -n 64 $C >/tmp/s64.txt
    for d in "cpu f32" "cuda f32" "cuda f16" "cuda bf16"; do
        set -- $d
        log "tiny-bert $1 $2"
        "$E" embed -m $t --device "$1" --dtype "$2" -i /tmp/s64.txt -o "/tmp/tiny-$1-$2.jsonl" 2>&1 | tee -a "$OUT/log.txt"
    done
    python3 - <<'EOF' 2>&1 | tee -a "$OUT/log.txt"
import json, numpy as np
r = lambda p: np.array([json.loads(l) for l in open(p)], dtype=np.float64)
ref = r("/tmp/tiny-cpu-f32.jsonl")
for name in ("cuda-f32", "cuda-f16", "cuda-bf16"):
    v = r(f"/tmp/tiny-{name}.jsonl")
    cos = (v * ref).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"smoke tiny-bert {name} vs cpu-f32: min cos {cos.min():.7f} over {len(cos)}")
EOF
    "$E" embed -m $t --device cuda:7 -i /tmp/s64.txt -o /dev/null 2>&1 | tee -a "$OUT/log.txt"
    ;;
bench)
    unpack
    [ -s "$M/model.safetensors" ] || { log "model missing: the machine was not the staged one"; exit 3; }
    sha256sum "$M/model.safetensors" | tee -a "$OUT/log.txt"
    for dt in f32 f16 bf16; do
        run "$E" bench embed -m "$M" --corpus $C --device cuda --dtype $dt --json
    done
    head -n 50 $C >/tmp/p50.txt
    "$E" embed -m "$M" --device cuda -i /tmp/p50.txt -o /tmp/ember-f32.jsonl 2>>"$OUT/log.txt"
    "$E" embed -m "$M" --device cuda --dtype f16 -i /tmp/p50.txt -o /tmp/ember-f16.jsonl 2>>"$OUT/log.txt"
    run python3 bench/gpu_baseline.py parity --model "$M" --corpus $C --ember /tmp/ember-f32.jsonl --ember-f16 /tmp/ember-f16.jsonl
    for dt in fp32 fp16; do
        run python3 bench/gpu_baseline.py bench --model "$M" --corpus $C --dtype $dt
    done
    # What the corpus costs when tokenized on one thread (the earlier behaviour), and the
    # earlier build itself, in the same session.
    log "RAYON_NUM_THREADS=1"
    RAYON_NUM_THREADS=1 run "$E" bench embed -m "$M" --corpus $C --device cuda --json --rss-sentences 0
    if [ -x "$B/ember-base" ]; then
        run "$B/ember-base" bench embed -m "$M" --corpus $C --device cuda --json --rss-sentences 0
    fi
    if [ -n "${CPU_TOO:-}" ]; then
        run "$E" bench embed -m "$M" --corpus $C --device cpu --json --rss-sentences 0
    fi
    ;;
*)
    echo "usage: $0 stage|bench" >&2
    exit 2
    ;;
esac
