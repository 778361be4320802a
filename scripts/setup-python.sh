#!/usr/bin/env bash
# Create (or reuse) the Python environment used ONLY to regenerate ember's reference fixtures
# (scripts/gen_*_fixtures.py) and running the Python baselines of benchmarks (scripts/bench*,
# bench/index_baselines.py: hnswlib and faiss-cpu).
# ember itself and its tests never need Python.
#
# Idempotent: the venv lives at ${EMBER_PYENV:-$HOME/.cache/ember-pyenv}; if it already holds
# exactly the pinned set below (recorded in a stamp file), nothing is installed again.
# The last line printed is the venv's python path, e.g.
#   py=$(bash scripts/setup-python.sh | tail -n 1)
#
# `--client` installs only the HTTP client packages (the openai SDK) that the server's
# end-to-end test drives `ember serve` with: a few megabytes instead of torch.
#
# Environment:
#   EMBER_PYENV   venv location (default ~/.cache/ember-pyenv)
#   PYTHON        interpreter used to create the venv (default python3; tested with 3.11)
#   EMBER_TORCH_INDEX_URL  optional extra index for torch (e.g. https://download.pytorch.org/whl/cpu)
#                 where it is reachable; by default torch comes from PyPI (CUDA-enabled wheel,
#                 works fine on CPU-only machines, just a larger download).
set -euo pipefail

venv="${EMBER_PYENV:-$HOME/.cache/ember-pyenv}"
base_py="${PYTHON:-python3}"

pins=(
  torch==2.15.0
  sentence-transformers==6.2.0
  transformers==5.23.0
  safetensors==0.8.0
  numpy==2.4.6
  onnx==1.23.2
  onnxruntime==1.32.0
  pytrec-eval-terrier==0.5.11
  hnswlib==0.8.0
  faiss-cpu==1.15.1
  openai==3.51.0
  fastapi==0.163.2
  uvicorn==0.54.0
)
client_pins=(
  openai==3.51.0
)
if [ "${1:-}" = "--client" ]; then
  pins=("${client_pins[@]}")
fi
want="${pins[*]}"
stamp="$venv/.ember-pins"
if [ "${1:-}" = "--client" ]; then
  stamp="$venv/.ember-pins-client"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-python: creating venv at $venv" >&2
  "$base_py" -m venv "$venv"
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup-python: $venv already has the pinned packages" >&2
else
  echo "setup-python: installing ${pins[*]}" >&2
  extra=()
  if [ -n "${EMBER_TORCH_INDEX_URL:-}" ]; then
    extra=(--extra-index-url "$EMBER_TORCH_INDEX_URL")
  fi
  "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check "${extra[@]}" "${pins[@]}" >&2
  if [ "${1:-}" = "--client" ]; then
    "$venv/bin/python" -c 'import openai; print("setup-python: openai", openai.__version__)' >&2
    printf '%s' "$want" >"$stamp"
    echo "$venv/bin/python"
    exit 0
  fi
  "$venv/bin/python" - <<'PY' >&2
import torch, transformers, sentence_transformers, safetensors, numpy, onnx, onnxruntime, hnswlib, faiss
print("setup-python: torch", torch.__version__, "| transformers", transformers.__version__,
      "| sentence-transformers", sentence_transformers.__version__, "| safetensors", safetensors.__version__,
      "| numpy", numpy.__version__, "| onnx", onnx.__version__, "| onnxruntime", onnxruntime.__version__,
      "| faiss", faiss.__version__)
PY
  printf '%s' "$want" >"$stamp"
fi

echo "$venv/bin/python"
