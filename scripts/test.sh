#!/usr/bin/env bash
# Runs the whole ferrokms test suite on a fresh machine: installs what it
# needs (a Python venv with pinned awscli/boto3/pytest), builds, runs the Rust
# unit and integration tests (aws-sdk-kms against a real server), then the
# end-to-end suite (boto3 and the aws CLI against a real server).
#
# Environment:
#   CARGO_TARGET_DIR  cargo's target dir (default: ~/.cache/ferrokms-target,
#                     outside the clone so reruns are warm)
#   FERROKMS_VENV     the Python venv (default: ~/.cache/ferrokms-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrokms-target}"
VENV="${FERROKMS_VENV:-$HOME/.cache/ferrokms-venv}"
REQS=tests/e2e/requirements.txt

step() { printf '\n==> %s\n' "$*"; }

step "Python venv at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$REQS"
    echo "$want" > "$stamp"
fi

step "cargo build"
cargo build --locked --bin ferrokms

step "cargo test (unit tests and aws-sdk-kms integration tests)"
cargo test --locked --workspace

step "end-to-end tests (boto3, aws CLI)"
FERROKMS_BIN="$CARGO_TARGET_DIR/debug/ferrokms" "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider
