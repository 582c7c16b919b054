#!/usr/bin/env bash
# ferrokms against moto's server and against the HTTP ceiling of this machine,
# with one load generator (`ferrokms bench`), in one run, on loopback only.
#
#   bash bench/compare.sh
#
# Starts three servers on 127.0.0.1 (free ports), each in its own temporary
# directory, and drives every operation against each in turn (ceiling,
# ferrokms, moto) so that slow drift of the machine hits all three alike:
#   ferrokms         the release build, durable SQLite store, SigV4 + key
#                    policy authorization on every request
#   moto             moto's standalone server (pinned in bench/requirements.txt,
#                    installed into a venv); accepts any credentials
#   ferrokms-ceiling a hyper server answering every request with one constant
#                    JSON body: what the generator reaches when the server
#                    does nothing (crates/bench/src/bin/ceiling.rs)
# and prints one table. Sign/verify rows also carry the raw aws-lc-rs rate of
# this machine (`ferrokms bench --raw`, threads = cores). The last column is
# each server's own CPU time (/proc/PID/stat) divided by its successful
# requests: unlike req/s it hardly moves when other work shares the machine.
#
# Environment (all optional):
#   FERROKMS_BENCH_DURATION     seconds per measurement (default 5)
#   FERROKMS_BENCH_CONNECTIONS  keep-alive connections (default 32)
#   FERROKMS_BENCH_REPEAT       measurements per (server, op), interleaved; the
#                               table keeps the fastest of them (default 1).
#                               Other work on the machine only ever slows a
#                               run down, so on a shared machine the best of
#                               3 is the better estimate of what it can do.
#   FERROKMS_BENCH_OPS          space-separated ops (default: all eight)
#   FERROKMS_BENCH_VENV         venv for moto (default ~/.cache/ferrokms-bench-venv)
#   FERROKMS_BENCH_NO_MOTO=1    skip moto (no Python needed)
#   FERROKMS_BENCH_NO_BUILD=1   use the release binaries already built
#   FERROKMS_BENCH_OUT          directory for results.jsonl and server logs
#                               (default: a new temporary directory, kept)
#   CARGO_TARGET_DIR            default ~/.cache/ferrokms-target
#
# Bounded: every server start waits at most 60 s, every measurement is
# wrapped in `timeout`, and every server this script starts is killed by PID
# on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${FERROKMS_BENCH_DURATION:-5}"
REPEAT="${FERROKMS_BENCH_REPEAT:-1}"
CONNECTIONS="${FERROKMS_BENCH_CONNECTIONS:-32}"
OPS="${FERROKMS_BENCH_OPS:-encrypt decrypt generate-data-key sign-rsa2048 verify-rsa2048 sign-ecc-p256 verify-ecc-p256 generate-mac}"
VENV="${FERROKMS_BENCH_VENV:-$HOME/.cache/ferrokms-bench-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrokms-target}"
OUT="${FERROKMS_BENCH_OUT:-$(mktemp -d -t ferrokms-bench.XXXXXX)}"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    # The server's data dir holds hundreds of MiB of audit trail after a
    # run; the results and logs stay.
    rm -rf "$OUT/ferrokms-data"
}
trap cleanup EXIT

# The commit the binaries were built from, and whether the work tree had
# uncommitted changes (which the build includes).
revision() {
    local rev dirty
    rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    dirty="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
    if [ "$dirty" -gt 0 ]; then echo "$rev + uncommitted changes in $dirty files"; else echo "$rev"; fi
}
log() { echo "compare.sh: $*" >&2; }

# Waits (bounded) until FILE has a line matching REGEX; prints the first
# http://127.0.0.1:PORT in it.
if [ "${FERROKMS_BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building release binaries (target dir $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release --quiet --bin ferrokms --bin ferrokms-ceiling)
fi
BIN="$CARGO_TARGET_DIR/release"

if [ "${FERROKMS_BENCH_NO_MOTO:-0}" != 1 ]; then
    stamp="$VENV/.requirements.sha256"
    want="$(sha256sum "$ROOT/bench/requirements.txt" | cut -d' ' -f1)"
    if [ ! -x "$VENV/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "installing moto into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet -r "$ROOT/bench/requirements.txt"
        echo "$want" >"$stamp"
    fi
fi

# --- servers ---------------------------------------------------------------
"$BIN/ferrokms-ceiling" 127.0.0.1:0 >"$OUT/ceiling.log" 2>&1 &
PIDS+=($!)
declare -A SERVER_PID
SERVER_PID[ceiling]=$!
CEILING_URL="$(wait_for_url "$OUT/ceiling.log" "$!")"

mkdir -p "$OUT/ferrokms-data"
FERROKMS_LOG=warn "$BIN/ferrokms" serve --data-dir "$OUT/ferrokms-data" --listen 127.0.0.1:0 \
    >"$OUT/ferrokms.log" 2>"$OUT/ferrokms.err" &
PIDS+=($!)
FERROKMS_PID=$!
SERVER_PID[ferrokms]=$!
FERROKMS_URL="$(wait_for_url "$OUT/ferrokms.log" "$!" 60 '^ferrokms listening on http://')"

MOTO_URL=""
if [ "${FERROKMS_BENCH_NO_MOTO:-0}" != 1 ]; then
    "$VENV/bin/moto_server" -H 127.0.0.1 -p 0 >"$OUT/moto.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID[moto]=$!
    MOTO_URL="$(wait_for_url "$OUT/moto.log" "$!" 60 'Running on http://')"
fi
log "ceiling $CEILING_URL, ferrokms $FERROKMS_URL (pid $FERROKMS_PID), moto ${MOTO_URL:-skipped}"

# --- measurements ----------------------------------------------------------
LIMIT=$((DURATION * 3 + 60))
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# bench TARGET URL OP [extra args]: one JSON line into results.jsonl, with the
# server's CPU time per successful request (server_cpu_us).
bench() {
    local target=$1 url=$2 op=$3
    shift 3
    local line pid cpu0
    pid="${SERVER_PID[$target]}"
    cpu0="$(cpu_ticks "$pid")"
    if line="$(timeout "$LIMIT" "$BIN/ferrokms" bench --endpoint "$url" --op "$op" \
        --duration "$DURATION" --connections "$CONNECTIONS" --json "$@" 2>"$OUT/bench-$target-$op.err")"; then
        local ticks=$(($(cpu_ticks "$pid") - cpu0))
        echo "$line" | sed "s/^{/{\"target\":\"$target\",\"server_cpu_ticks_us\":$((ticks * TICK_US)),/" >>"$RESULTS"
    else
        log "$target $op failed: $(tail -1 "$OUT/bench-$target-$op.err")"
        echo "{\"target\":\"$target\",\"op\":\"$op\",\"failed\":true}" >>"$RESULTS"
    fi
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$REPEAT"); do
    for op in $OPS; do
        log "round $round/$REPEAT, $op: ceiling"
        bench ceiling "$CEILING_URL" "$op" --access-key-id test --secret-access-key test
        log "round $round/$REPEAT, $op: ferrokms"
        raw=()
        case "$op" in sign-* | verify-*) raw=(--raw) ;; esac
        bench ferrokms "$FERROKMS_URL" "$op" --credentials-file "$OUT/ferrokms-data/credentials" \
            --profile ferrokms "${raw[@]}"
        if [ -n "$MOTO_URL" ]; then
            log "round $round/$REPEAT, $op: moto"
            bench moto "$MOTO_URL" "$op" --access-key-id test --secret-access-key test
        fi
    done
done
FERROKMS_RSS_KB="$(awk '/^VmRSS:/ {print $2}' "/proc/$FERROKMS_PID/status")"

# --- table -----------------------------------------------------------------
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(uname -sr)"
echo "ferrokms $(revision), $CONNECTIONS connections, ${DURATION} s per measurement, best of $REPEAT, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (the generator and one busy server keep about 2 on their own; more means other work shared the cores)"
echo "ferrokms RSS after the run: $((FERROKMS_RSS_KB / 1024)) MiB; raw results: $RESULTS"
echo
python3 - "$RESULTS" <<'EOF'
import json, sys

rows = {}
order = []
raws = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["op"] not in rows:
        rows[r["op"]] = {}
        order.append(r["op"])
    if r.get("raw_ops_per_second"):
        raws[r["op"]] = max(raws.get(r["op"], 0), r["raw_ops_per_second"])
    # Keep the fastest successful measurement of each (server, op); a
    # failure or errors are kept only if nothing better was seen.
    old = rows[r["op"]].get(r["target"])
    def score(x):
        if x is None:
            return -2
        if x.get("failed"):
            return -1
        return x["requests_per_second"] if not x.get("errors") else 0
    if score(r) > score(old):
        rows[r["op"]][r["target"]] = r

def rate(r):
    if not r or r.get("failed"):
        return None
    return r["requests_per_second"]

def f(x, fmt="{:,.0f}"):
    return "n/a" if x is None else fmt.format(x)

def cpu(r):
    if rate(r) is None or not r["requests"]:
        return None
    return r["server_cpu_ticks_us"] / r["requests"]

print("| operation | ferrokms req/s | moto req/s | ferrokms/moto | ceiling req/s | ferrokms % of ceiling | ferrokms p99 ms | raw aws-lc-rs ops/s | ferrokms % of raw | server CPU us/req: ferrokms / ceiling / moto |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
notes = []
for op in order:
    t = rows[op]
    fk, mo, ce = t.get("ferrokms"), t.get("moto"), t.get("ceiling")
    rf, rm, rc = rate(fk), rate(mo), rate(ce)
    raw = raws.get(op)
    p99 = fk["p99_us"] / 1000 if rf is not None else None
    print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        op, f(rf), f(rm),
        f(rf / rm if rf and rm else None, "{:,.0f}x"),
        f(rc),
        f(100 * rf / rc if rf and rc else None, "{:.0f}%"),
        f(p99, "{:.2f}"),
        f(raw) if raw else "-",
        f(100 * rf / raw if rf and raw else None, "{:.0f}%") if raw else "-",
        " / ".join(f(cpu(x), "{:.0f}") for x in (fk, ce, mo)),
    ))
    for name, r in t.items():
        if r.get("failed"):
            notes.append(f"{name} {op}: failed (see bench-{name}-{op}.err)")
        elif r.get("errors"):
            notes.append(f"{name} {op}: {r['errors']} errors, first: {r.get('first_error')}")
for n in notes:
    print("note:", n)
EOF
