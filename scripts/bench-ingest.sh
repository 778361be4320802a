#!/usr/bin/env bash
# End-to-end ingest throughput on a real corpus (default: SciFact's 5,183 abstracts), with the share
# of the time spent embedding: `ember ingest` into a fresh data directory, then a re-run that finds
# every document unchanged.
#
#   bash scripts/bench-ingest.sh [corpus.jsonl] [model dir]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-data/scifact/corpus.jsonl}
model=${2:-$HOME/.cache/ember-test-models/all-MiniLM-L6-v2}
bash scripts/fetch-models.sh minilm >/dev/null
cargo build --release -q -p ember-cli
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
echo "corpus: $corpus ($(wc -l <"$corpus") records, $(du -h "$corpus" | cut -f1)), model: $model, $(nproc) threads"
for run in first rerun; do
  /usr/bin/time -f "$run: wall %e s, user %U s, sys %S s, max RSS %M KB" \
    target/release/ember ingest "$corpus" -c bench -m "$model" --data-dir "$data" --json
done
