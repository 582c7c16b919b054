#!/usr/bin/env bash
# ferrokms with many keys: durable CreateKey rate, startup time and RSS, and
# Encrypt throughput on a store of 1 key against one of N keys.
#
#   bash bench/scale.sh            # N = 10000
#   FERROKMS_SCALE_KEYS=100000 bash bench/scale.sh
#
# Steps, all on 127.0.0.1, one fresh data directory (SQLite):
#   1. start the server on the empty store (startup time, RSS);
#      Encrypt for D seconds on a store with the bench's one key
#   2. CreateKey with C connections until N keys exist (the bench's
#      create-key op: the durable write rate);
#   3. Encrypt again with N keys in the store (same key shape, a new key)
#   4. restart the server on the N-key store: startup time (spawn to the
#      "listening" line) and RSS; Encrypt again; RSS after
# Environment: FERROKMS_SCALE_KEYS (10000), FERROKMS_BENCH_DURATION (5),
# FERROKMS_BENCH_CONNECTIONS (32), FERROKMS_BENCH_REPEAT (1: Encrypt
# measurements at each step), FERROKMS_BENCH_NO_BUILD=1,
# FERROKMS_BENCH_OUT (a new temporary directory, kept), CARGO_TARGET_DIR.
# Bounded: server starts wait at most 120 s, every bench run is under
# `timeout`, servers are killed by PID on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEYS="${FERROKMS_SCALE_KEYS:-10000}"
DURATION="${FERROKMS_BENCH_DURATION:-5}"
REPEAT="${FERROKMS_BENCH_REPEAT:-1}"
CONNECTIONS="${FERROKMS_BENCH_CONNECTIONS:-32}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrokms-target}"
OUT="${FERROKMS_BENCH_OUT:-$(mktemp -d -t ferrokms-scale.XXXXXX)}"
DATA="$OUT/data"
mkdir -p "$DATA"

PID=""
stop() {
    [ -n "$PID" ] || return 0
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}
# The store stays for inspection (its size is printed); the audit trail,
# hundreds of MiB after the Encrypt runs, does not.
trap 'stop; rm -rf "$DATA/audit"' EXIT
# The commit the binaries were built from, and whether the work tree had
# uncommitted changes (which the build includes).
revision() {
    local rev dirty
    rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    dirty="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
    if [ "$dirty" -gt 0 ]; then echo "$rev + uncommitted changes in $dirty files"; else echo "$rev"; fi
}
log() { echo "scale.sh: $*" >&2; }

if [ "${FERROKMS_BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin ferrokms)
fi
BIN="$CARGO_TARGET_DIR/release/ferrokms"

URL=""
START_MS=""
# start LABEL: starts the server on $DATA, sets PID, URL, START_MS.
start() {
    local logf="$OUT/serve-$1.log"
    local t0
    t0=$(date +%s%N)
    FERROKMS_LOG=warn "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:0 >"$logf" 2>"$OUT/serve-$1.err" &
    PID=$!
    for _ in $(seq 1 12000); do
        if grep -q '^ferrokms listening on http://' "$logf" 2>/dev/null; then
            START_MS=$((($(date +%s%N) - t0) / 1000000))
            URL="$(grep -m1 '^ferrokms listening on ' "$logf" | sed 's/^ferrokms listening on //')"
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || {
            cat "$OUT/serve-$1.err" >&2
            return 1
        }
        sleep 0.01
    done
    log "server did not start within 120 s"
    return 1
}
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# run OP [args]: prints one JSON line, with the server's CPU time over the run.
run() {
    local op=$1 cpu0 line
    shift
    cpu0="$(cpu_ticks)"
    line="$(timeout $((DURATION * 3 + 600)) "$BIN" bench --endpoint "$URL" --credentials-file "$DATA/credentials" \
        --op "$op" --connections "$CONNECTIONS" --json "$@")"
    echo "$line" | sed "s/^{/{\"server_cpu_ticks_us\":$((($(cpu_ticks) - cpu0) * TICK_US)),/"
}
field() { python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r[sys.argv[1]])' "$1"; }
summary() {
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("{} {:,.0f} req/s, p50 {:.2f} ms, p99 {:.2f} ms, {} requests, {} errors, server CPU {:.0f} us/request".format(r["op"], r["requests_per_second"], r["p50_us"]/1000, r["p99_us"]/1000, r["requests"], r["errors"], r["server_cpu_ticks_us"] / max(r["requests"], 1)))'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); ferrokms $(revision); $CONNECTIONS connections, ${DURATION} s per measurement"

start empty
echo "empty store: startup ${START_MS} ms, RSS $(rss_mib) MiB"
for i in $(seq 1 "$REPEAT"); do
    echo "encrypt, 1 key in the store (#$i): $(run encrypt --duration "$DURATION" | summary); RSS after $(rss_mib) MiB"
done

log "creating $KEYS keys"
CK="$(run create-key --duration 3600 --max-requests "$KEYS")"
echo "create-key until $(echo "$CK" | field requests) keys: $(echo "$CK" | summary); RSS after $(rss_mib) MiB"
for i in $(seq 1 "$REPEAT"); do
    echo "encrypt, $KEYS+ keys in the store, same process (#$i): $(run encrypt --duration "$DURATION" | summary); RSS after $(rss_mib) MiB"
done
stop

start full
echo "restart with $KEYS+ keys: startup ${START_MS} ms, RSS $(rss_mib) MiB"
for i in $(seq 1 "$REPEAT"); do
    echo "encrypt after restart (#$i): $(run encrypt --duration "$DURATION" | summary); RSS after $(rss_mib) MiB"
done
stop
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "store on disk: $(du -sh "$DATA" | cut -f1) ($DATA)"
