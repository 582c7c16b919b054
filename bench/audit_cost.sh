#!/usr/bin/env bash
# What the audit trail costs: Encrypt against two ferrokms servers that differ
# only in the audit trail (same release binary, each on a fresh SQLite data
# dir; one with `serve --no-audit`), alternating, on loopback only.
#
#   bash bench/audit_cost.sh
#
# For every measurement it prints req/s and the server's own CPU time
# (utime + stime from /proc/PID/stat, writer thread included) per successful
# request. On a machine shared with other work, CPU per request is the figure
# to trust; req/s moves with whatever else runs.
#
# Environment (all optional):
#   FERROKMS_AUDIT_ROUNDS       alternating rounds (default 3)
#   FERROKMS_AUDIT_REQUESTS     requests per measurement (default 100000)
#   FERROKMS_AUDIT_DURATION     upper bound in seconds per measurement (default 10)
#   FERROKMS_AUDIT_CONNECTIONS  keep-alive connections (default 32)
#   FERROKMS_BENCH_NO_BUILD=1   use the release binary already built
#   CARGO_TARGET_DIR            default ~/.cache/ferrokms-target
#
# Bounded: each server start waits at most 30 s, each measurement is at most
# FERROKMS_AUDIT_REQUESTS requests and FERROKMS_AUDIT_DURATION seconds (and is
# wrapped in `timeout`); the servers this script starts are stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${FERROKMS_AUDIT_ROUNDS:-3}"
REQUESTS="${FERROKMS_AUDIT_REQUESTS:-100000}"
DURATION="${FERROKMS_AUDIT_DURATION:-10}"
CONNECTIONS="${FERROKMS_AUDIT_CONNECTIONS:-32}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrokms-target}"
OUT="$(mktemp -d -t ferrokms-audit-cost.XXXXXX)"

. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    rm -rf "$OUT"
}
trap cleanup EXIT

if [ "${FERROKMS_BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin ferrokms)
fi
BIN="$CARGO_TARGET_DIR/release/ferrokms"

declare -A URL PID
start() {
    local name=$1
    shift
    mkdir -p "$OUT/$name"
    FERROKMS_LOG=warn "$BIN" serve --data-dir "$OUT/$name/data" --listen 127.0.0.1:0 "$@" \
        >"$OUT/$name/log" 2>"$OUT/$name/err" &
    PIDS+=($!)
    PID[$name]=$!
    URL[$name]="$(wait_for_url "$OUT/$name/log" "$!" 30)"
}
start audit-on
start audit-off --no-audit

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU ticks of the audit threads of PID (the writer, ferrokms-audit, and the
# fsync thread, ferrokms-auditsync, whose name the kernel cuts to 15 bytes).
writer_ticks() {
    local t sum=0 comm
    for t in /proc/"$1"/task/*; do
        comm="$(cat "$t/comm" 2>/dev/null || true)"
        if [ "$comm" = ferrokms-audit ] || [ "$comm" = ferrokms-audits ]; then
            sum=$((sum + $(awk '{print $14 + $15}' "$t/stat")))
        fi
    done
    echo "$sum"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
measure() {
    local name=$1 pid=${PID[$1]} cpu0 w0 line ticks
    cpu0="$(cpu_ticks "$pid")"
    w0="$(writer_ticks "$pid")"
    line="$(timeout $((DURATION + 60)) "$BIN" bench --endpoint "${URL[$name]}" --op encrypt \
        --duration "$DURATION" --max-requests "$REQUESTS" --connections "$CONNECTIONS" \
        --credentials-file "$OUT/$name/data/credentials" --json)"
    ticks=$(($(cpu_ticks "$pid") - cpu0))
    wticks=$(($(writer_ticks "$pid") - w0))
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
ok = r["requests"] - r["errors"]
print("%-9s %8d req %6.0f req/s  p99 %5.2f ms  server CPU %5.1f us/req (audit threads %4.1f)" % (
    sys.argv[1], ok, r["requests_per_second"], r["p99_us"] / 1000, int(sys.argv[3]) / ok, int(sys.argv[4]) / ok))
with open(sys.argv[5], "a") as f:
    f.write("%s %f %f\n" % (sys.argv[1], r["requests_per_second"], int(sys.argv[3]) / ok))
' "$name" "$line" "$((ticks * TICK_US))" "$((wticks * TICK_US))" "$OUT/results"
}

echo "ferrokms $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "(not a git checkout)"), Encrypt, $CONNECTIONS connections, $REQUESTS requests per measurement; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The order alternates from round to round, so that a machine getting
# slower or faster during the run does not favour either server.
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        measure audit-on
        measure audit-off
    else
        measure audit-off
        measure audit-on
    fi
done
# The cost from the means, and the median of the rounds' own costs (each
# round's pair ran back to back, so the median shrugs off a slow stretch).
python3 - "$OUT/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
on = [(float(r[1]), float(r[2])) for r in rows if r[0] == "audit-on"]
off = [(float(r[1]), float(r[2])) for r in rows if r[0] == "audit-off"]
mean = lambda xs: sum(xs) / len(xs)
rate_on, rate_off = mean([r for r, _ in on]), mean([r for r, _ in off])
per_round = [100 * (1 - a[0] / b[0]) for a, b in zip(on, off)]
cpu = [a[1] - b[1] for a, b in zip(on, off)]
print("audit cost: %.1f%% of Encrypt throughput from the means (%.0f vs %.0f req/s), "
      "%.1f%% median of %d rounds; +%.2f us server CPU per request (median)" % (
          100 * (1 - rate_on / rate_off), rate_on, rate_off,
          statistics.median(per_round), len(per_round), statistics.median(cpu)))
PY
echo "audit file: $(wc -l <"$OUT/audit-on/data/audit/audit.jsonl") records, $(du -h "$OUT/audit-on/data/audit/audit.jsonl" | cut -f1)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
