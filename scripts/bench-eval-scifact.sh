#!/usr/bin/env bash
# Full SciFact evaluation (5,183 documents, 300 queries) of a model, side by side in one run:
# `ember eval` (no embedding cache) and the same evaluation in Python with sentence-transformers
# + pytrec_eval (scripts/bench/scifact_st.py). Prints both times and both nDCG@10, then one line
# `speedup_vs_python=<python seconds / ember seconds> ndcg_diff=<points>`.
#
# usage: scripts/bench-eval-scifact.sh [model-dir]   (default: all-MiniLM-L6-v2 from fetch-models.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
models=$(bash scripts/fetch-models.sh minilm | tail -n 1)
model="${1:-$models/all-MiniLM-L6-v2}"
py=$(bash scripts/setup-python.sh | tail -n 1)
cargo build --release -q -p ember-cli
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 RAYON_NUM_THREADS=2
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

t0=$(date +%s.%N)
ember_json=$(target/release/ember eval -m "$model" -d data/scifact --no-cache --json)
t1=$(date +%s.%N)
python_json=$(HF_HUB_OFFLINE=1 "$py" scripts/bench/scifact_st.py "$model" data/scifact 2>/dev/null | tail -n 1)

"$py" - "$t0" "$t1" "$ember_json" "$python_json" <<'PY'
import json, sys
t0, t1, e, p = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
ember_s = t1 - t0
print(f"| engine | wall time (s) | nDCG@10 | recall@100 |")
print(f"|---|---:|---:|---:|")
print(f"| ember eval | {ember_s:.1f} | {e['metrics']['ndcg_at_10']*100:.2f} | {e['metrics']['recall_at_100']*100:.2f} |")
print(f"| sentence-transformers + pytrec_eval | {p['seconds']:.1f} | {p['ndcg_at_10']*100:.2f} | {p['recall_at_100']*100:.2f} |")
print(f"speedup_vs_python={p['seconds']/ember_s:.2f} ndcg_diff={(e['metrics']['ndcg_at_10']-p['ndcg_at_10'])*100:+.3f}")
PY
