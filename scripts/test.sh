#!/usr/bin/env bash
# Runs the whole ferrokms test suite on a fresh machine: installs what it
# needs (a Python venv with pinned awscli/boto3/pytest, the JavaScript
# clients of tests/e2e/js from their package-lock.json, the web console's
# npm packages and Debian's chromium for its browser tests), checks that the
# console's committed editor bundle is what scripts/console.sh makes, checks formatting
# (cargo fmt --check) and lints (cargo clippy, warnings as errors; the lint
# set is in the root Cargo.toml), builds, runs the Rust unit and integration
# tests (aws-sdk-kms against a real server), then the end-to-end suite
# (boto3 and the aws CLI against a real server) twice: on the embedded
# SQLite store, then with every server on a throwaway PostgreSQL
# (installed from Debian's packages if absent, started by scripts/pg.sh on
# loopback), which also runs the several-node and PostgreSQL fault tests.
#
# Environment:
#   CARGO_TARGET_DIR  cargo's target dir (default: ~/.cache/ferrokms-target,
#                     outside the clone so reruns are warm)
#   FERROKMS_VENV     the Python venv (default: ~/.cache/ferrokms-venv)
#   FERROKMS_NODE_DIR the JavaScript clients' packages (default:
#                     ~/.cache/ferrokms-node; without node/npm the
#                     JavaScript SDK tests skip, saying so)
#   FERROKMS_CONSOLE_NODE_DIR the web console's packages (default:
#                     ~/.cache/ferrokms-node-console; see scripts/console.sh)
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

step "JavaScript clients (npm ci of tests/e2e/js/package-lock.json, outside the clone)"
bash tests/e2e/js/install.sh

step "The web console's packages and bundle, and Chromium for its browser tests"
bash scripts/console.sh install
bash scripts/console.sh check
# Debian's chromium (Playwright's own browser download cannot work here);
# without it tests/e2e/test_console.py skips, saying so.
if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
    if ! { DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >/dev/null 2>&1; then
        echo "chromium could not be installed: the console browser tests (tests/e2e/test_console.py) will be skipped"
    fi
fi
[ -x /usr/bin/chromium ] && /usr/bin/chromium --version 2>/dev/null || true

step "PostgreSQL (throwaway, loopback)"
PG_TMP=$(mktemp -d /tmp/ferrokms-pg.XXXXXX)
chmod 755 "$PG_TMP"
cleanup_pg() {
    bash scripts/pg.sh stop "$PG_TMP/data" || true
    rm -rf "$PG_TMP"
}
trap cleanup_pg EXIT
PG_URL=$(bash scripts/pg.sh start "$PG_TMP/data")
PG_BIN=$(bash scripts/pg.sh bindir)
echo "PostgreSQL at $PG_URL"

step "cargo fmt --check, cargo clippy (warnings are errors)"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --locked --bin ferrokms

step "cargo test (unit tests, aws-sdk-kms integration tests, PostgreSQL store tests)"
FERROKMS_TEST_PG_URL="$PG_URL" cargo test --locked --workspace

BIN="$CARGO_TARGET_DIR/debug/ferrokms"
step "end-to-end tests on SQLite (boto3, aws CLI)"
FERROKMS_BIN="$BIN" "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider

step "end-to-end tests on PostgreSQL (the same suite, plus several nodes and faults)"
FERROKMS_BIN="$BIN" FERROKMS_TEST_PG_URL="$PG_URL" FERROKMS_TEST_PG_BIN="$PG_BIN" \
    FERROKMS_TEST_PG_DIR="$PG_TMP/data" \
    "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider
