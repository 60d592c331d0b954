#!/usr/bin/env bash
# The main job: runs the fault-injection scenarios and prints their reports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
exec ./target/release/ftsplice demo "$@"
