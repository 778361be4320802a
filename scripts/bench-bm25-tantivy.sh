#!/usr/bin/env bash
# BM25 top-10 query throughput, ember's inverted index against tantivy, on a 100k-document
# corpus built from SciFact (see benches/bm25-tantivy/src/main.rs for the construction).
# The benchmark is its own crate outside the workspace, so tantivy never enters ember's build.
# Usage: scripts/bench-bm25-tantivy.sh [--docs 100000] [--reps 5] [--mode pre|native|both]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/bm25-tantivy}"
cargo build --release --manifest-path benches/bm25-tantivy/Cargo.toml
"$CARGO_TARGET_DIR/release/bm25-tantivy" --data data/scifact "$@"
