#!/usr/bin/env bash
# The test suite: every crate's unit and integration tests, including parity against
# sentence-transformers on real weights (fetched by scripts/fetch-models.sh when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
