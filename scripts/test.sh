#!/usr/bin/env bash
# Runs every test: installs what is missing (system packages, ONNX Runtime, the Python NWB
# readers in .venv), then the Rust unit and integration tests in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export BEHAVD_TEST_PYTHON="$PWD/.venv/bin/python"
cargo test --release "$@"
