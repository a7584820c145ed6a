#!/usr/bin/env bash
# Runs every test: installs what is missing (system packages, ONNX Runtime, the Python NWB
# readers in .venv), then the Rust unit and integration tests in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export BEHAVD_TEST_PYTHON="$PWD/.venv/bin/python"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "behavd: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
