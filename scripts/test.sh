#!/usr/bin/env bash
# The one command that runs all of ftsplice's checks and tests (CI runs this).
# Needs root for the namespace/BPF tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --all-targets --locked
echo "== doc tests"
cargo test --workspace --doc --locked
echo "all checks passed"
