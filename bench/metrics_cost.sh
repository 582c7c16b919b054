#!/usr/bin/env bash
# Server CPU per Encrypt request for two ferrokms binaries, e.g. before and
# after a change on the request path (issue #10: the metrics counters):
#
#   bash bench/metrics_cost.sh OLD_BINARY NEW_BINARY
#
# Each binary serves in memory in --dev mode (no audit trail, no disk), on a
# free loopback port; the NEW binary's `ferrokms bench` drives a fixed number
# of Encrypt requests against each in turn, ROUNDS times interleaved, and the
# script prints the server's utime+stime (/proc/PID/stat) per successful
# request. CPU time per request is robust to other load on a shared machine
# in a way that req/s is not.
#
# Environment: FERROKMS_BENCH_REQUESTS (200000), FERROKMS_BENCH_CONNECTIONS
# (32), FERROKMS_BENCH_REPEAT (3 rounds).
set -euo pipefail
OLD=${1:?old binary}
NEW=${2:?new binary}
REQUESTS=${FERROKMS_BENCH_REQUESTS:-200000}
CONNECTIONS=${FERROKMS_BENCH_CONNECTIONS:-32}
ROUNDS=${FERROKMS_BENCH_REPEAT:-3}
OUT=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    rm -rf "$OUT"
}
trap cleanup EXIT
declare -A PID URL
start() {
    local name=$1 bin=$2
    mkdir -p "$OUT/$name"
    "$bin" serve --in-memory --dev --listen 127.0.0.1:0 >"$OUT/$name/log" 2>"$OUT/$name/err" &
    PIDS+=($!)
    PID[$name]=$!
    URL[$name]="$(wait_for_url "$OUT/$name/log" "$!" 30)"
}
start old "$OLD"
start new "$NEW"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
measure() {
    local name=$1 pid=${PID[$1]} cpu0 line ticks
    cpu0="$(cpu_ticks "$pid")"
    line="$(timeout 600 "$NEW" bench --endpoint "${URL[$name]}" --op encrypt \
        --duration 300 --max-requests "$REQUESTS" --connections "$CONNECTIONS" \
        --access-key-id 111122223333 --secret-access-key dev --json)"
    ticks=$(($(cpu_ticks "$pid") - cpu0))
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
ok = r["requests"] - r["errors"]
print("%-4s %8d req %6.0f req/s  p99 %5.2f ms  server CPU %5.1f us/req" % (
    sys.argv[1], ok, r["requests_per_second"], r["p99_us"] / 1000, int(sys.argv[3]) / max(ok, 1)))
' "$name" "$line" "$((ticks * TICK_US))"
}
echo "Encrypt, $CONNECTIONS connections, $REQUESTS requests per measurement; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$ROUNDS"); do
    measure old
    measure new
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
