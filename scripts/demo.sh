#!/usr/bin/env bash
# Runs the demo rig: a simulated Miniscope and behavior camera of one simulated mouse,
# recorded into sessions/<name>.nwb. Extra arguments go to `behavd run` (default: --duration 30).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
args=("$@")
[ "${#args[@]}" -eq 0 ] && args=(--duration 30)
exec target/release/behavd run "${args[@]}"
