#!/usr/bin/env bash
# Before and after a change to the hot path: two ferrokms binaries (or one
# binary with two sets of `serve` flags), each on a fresh SQLite data dir,
# driven in alternation by the same load generator, on loopback only.
#
#   bash bench/ab.sh OLD_BINARY NEW_BINARY
#   FERROKMS_AB_FLAGS_B=--no-audit bash bench/ab.sh BIN BIN
#
# For every measurement it prints req/s, p99 and the server's own CPU time
# (utime + stime from /proc/PID/stat) per successful request; CPU per
# request is the figure to trust on a machine shared with other work, and
# alternating A, B, A, B lets slow drift of the machine hit both alike.
# Keep a copy of the old binary before rebuilding (cp target/release/ferrokms
# /tmp/ferrokms-old).
#
# Environment (all optional):
#   FERROKMS_AB_ROUNDS       alternating rounds (default 3)
#   FERROKMS_AB_OP           operation for `ferrokms bench` (default encrypt)
#   FERROKMS_AB_DURATION     seconds per measurement (default 5)
#   FERROKMS_AB_CONNECTIONS  keep-alive connections (default 32)
#   FERROKMS_AB_FLAGS_A      extra `serve` flags for A (e.g. --no-audit)
#   FERROKMS_AB_FLAGS_B      extra `serve` flags for B
#   FERROKMS_AB_GENERATOR    the binary whose `bench` drives both (default: A)
#
# Bounded: each server start waits at most 30 s, each measurement is at most
# 1,000,000 requests and is wrapped in `timeout`; both servers are stopped by
# PID on exit.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: bash bench/ab.sh BINARY_A BINARY_B" >&2
    exit 2
fi
A="$1"
B="$2"
ROUNDS="${FERROKMS_AB_ROUNDS:-3}"
OP="${FERROKMS_AB_OP:-encrypt}"
DURATION="${FERROKMS_AB_DURATION:-5}"
CONNECTIONS="${FERROKMS_AB_CONNECTIONS:-32}"
GEN="${FERROKMS_AB_GENERATOR:-$A}"
OUT="$(mktemp -d -t ferrokms-ab.XXXXXX)"

. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    rm -rf "$OUT"
}
trap cleanup EXIT

declare -A URL PID
start() {
    local name=$1 bin=$2 flags=$3
    mkdir -p "$OUT/$name"
    # shellcheck disable=SC2086 # the flags are words on purpose
    FERROKMS_LOG=warn "$bin" serve --data-dir "$OUT/$name/data" --listen 127.0.0.1:0 $flags \
        >"$OUT/$name/log" 2>&1 &
    PIDS+=($!)
    PID[$name]=$!
    for _ in $(seq 1 300); do
        if grep -q listening "$OUT/$name/log" 2>/dev/null; then
            URL[$name]="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$OUT/$name/log" | head -1)"
            return
        fi
        sleep 0.1
    done
    echo "server $name did not start:" >&2
    cat "$OUT/$name/log" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() {
    local name=$1 before after json
    before="$(cpu_ticks "${PID[$name]}")"
    json="$(timeout $((DURATION + 30)) "$GEN" bench --endpoint "${URL[$name]}" --op "$OP" \
        --connections "$CONNECTIONS" --duration "$DURATION" --max-requests 1000000 \
        --credentials-file "$OUT/$name/data/credentials" --json)"
    after="$(cpu_ticks "${PID[$name]}")"
    python3 - "$name" "$json" "$before" "$after" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
name, raw, before, after, hz = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
r = json.loads(raw)
ok = r["requests"] - r["errors"]
cpu_us = (after - before) * 1e6 / hz / ok if ok else float("nan")
print(f"{name}  {r['requests_per_second']:9,.0f} req/s  p99 {r['p99_us'] / 1000:5.2f} ms  "
      f"server CPU {cpu_us:5.1f} us/req  errors {r['errors']}")
EOF
}

start A "$A" "${FERROKMS_AB_FLAGS_A:-}"
start B "$B" "${FERROKMS_AB_FLAGS_B:-}"
echo "A: $A ${FERROKMS_AB_FLAGS_A:-}"
echo "B: $B ${FERROKMS_AB_FLAGS_B:-}"
echo "op $OP, $CONNECTIONS connections, $DURATION s per measurement, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$ROUNDS"); do
    measure A
    measure B
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
