#!/usr/bin/env bash
# Installs the packages of the JavaScript end-to-end clients
# (tests/e2e/js/package-lock.json, exact versions, `npm ci`) into a cache
# directory outside the clone, when the lock file changed since the last
# install (a sha256 stamp, as scripts/test.sh does for the Python venv).
# Without node or npm it says so and succeeds: tests/e2e/test_js_sdk.py
# then skips with a message.
#
# Environment:
#   FERROKMS_NODE_DIR  where (default: ~/.cache/ferrokms-node)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir="${FERROKMS_NODE_DIR:-$HOME/.cache/ferrokms-node}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node or npm not found: the JavaScript SDK tests (tests/e2e/test_js_sdk.py) will be skipped"
    exit 0
fi
want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp="$dir/.package-lock.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -d "$dir/node_modules" ]; then
    echo "JavaScript packages up to date in $dir"
    exit 0
fi
mkdir -p "$dir"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# No package here needs an install script; none is run.
(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "$want" > "$stamp"
echo "JavaScript packages installed in $dir (node $(node --version))"
