#!/usr/bin/env bash
# The serving benchmark's first-choice baseline: Infinity (infinity-emb from PyPI, its default
# PyTorch engine), in its own virtual environment — it pins sentence-transformers 3, transformers
# 4 and numpy 1, which conflict with the fixture environment of scripts/setup-python.sh.
# Idempotent. The last line printed is the venv's `infinity_emb` executable.
#
# Environment: EMBER_INFINITY_VENV (default ~/.cache/ember-infinity).
set -euo pipefail
venv="${EMBER_INFINITY_VENV:-$HOME/.cache/ember-infinity}"
pin='infinity-emb[server,torch]==0.0.78'
if [ ! -x "$venv/bin/infinity_emb" ]; then
  echo "setup-infinity: installing $pin into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$pin" >&2
fi
echo "$venv/bin/infinity_emb"
