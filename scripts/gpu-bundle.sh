#!/usr/bin/env bash
# Pack what bench/gpu_run.sh needs on the GPU machine (no Rust, no network there) into two
# folders of at most $LIMIT_MB each (default 31: a call carries 64 MiB with the working tree):
#
#   bash scripts/gpu-bundle.sh EMBER_BINARY MODEL_DIR DEST_A DEST_B [BASELINE_BINARY]
#
# (BASELINE_BINARY: an earlier build, timed beside EMBER_BINARY in the same session.)
#
# DEST_A: the xz-compressed ember binary, the model's small files, the scripts, and the first
# piece of an f16 copy of the model's weights; DEST_B: the rest of the weights and the scripts.
# The f16 copy halves the transfer; ember and sentence-transformers both load it (ember converts
# to the --dtype asked for, sentence-transformers to the dtype gpu_baseline.py casts to), so both
# run the same weights.
set -euo pipefail
bin=$1 model=$2 a=$3 b=$4 base=${5:-}
limit=$(( ${LIMIT_MB:-31} * 1024 * 1024 ))
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$HOME/.cache/ember-pyenv/bin/python}

rm -rf "$a" "$b"
mkdir -p "$a/minilm-meta" "$b"
xz -T2 -6 -c "$bin" >"$a/ember.xz"  # ~54 MB stripped → ~8 MB
[ -z "$base" ] || xz -T2 -6 -c "$base" >"$a/ember-base.xz"
(cd "$model" && find . -maxdepth 2 -type f ! -name '*.safetensors' ! -name '*.bin' ! -name '*.onnx' \
    ! -name 'README.md' ! -name '.*' ! -name 'data_config.json' -print0 | tar -c --null -T - -f -) |
    tar -x -C "$a/minilm-meta"
"$py" - "$model/model.safetensors" "$a/model.f16" <<'EOF'
import sys
import numpy as np
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in t.items()}, sys.argv[2],
          metadata={"format": "pt"})
EOF
for d in "$a" "$b"; do cp "$root/bench/gpu_run.sh" "$root/bench/gpu_baseline.py" "$d/"; done
used=$(du -sb "$a" | cut -f1)
first=$(( limit - used + $(stat -c %s "$a/model.f16") ))
split -b "$first" -d -a 2 "$a/model.f16" "$b/model.part"
rm "$a/model.f16"
mv "$b/model.part00" "$a/"
ls "$a"/model.part* "$b"/model.part* | wc -l >"$a/model.nparts"
du -sb "$a" "$b"
ls -l "$a" "$b"
