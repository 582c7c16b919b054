#!/usr/bin/env bash
# The request path's cost, measured the cheap way: wrk (Debian's package)
# replays one pre-signed Encrypt request from a Lua script against one or two
# ferrokms binaries and against the bare hyper server that answers a fixed
# body (ferrokms-ceiling), alternating A, B, ceiling in each round. A
# generator that signs every request would spend the two cores on signing
# and hide the server's cost; replaying one signed request costs wrk almost
# nothing.
#
#   bash bench/wrk.sh BINARY_A [BINARY_B]
#
# For every measurement it prints req/s and the server's own CPU time
# (utime + stime from /proc/PID/stat) per request; the summary gives the
# medians per server and each one's CPU per request against the ceiling's.
# The ceiling is taken from BINARY_A's directory (ferrokms-ceiling; build it
# with `cargo build --release --bin ferrokms-ceiling`).
#
# Environment (all optional):
#   FERROKMS_WRK_ROUNDS       alternating rounds (default 5)
#   FERROKMS_WRK_DURATION     seconds per measurement (default 5)
#   FERROKMS_WRK_CONNECTIONS  keep-alive connections (default 32)
#   FERROKMS_WRK_THREADS      wrk threads (default 1)
#   FERROKMS_WRK_PYTHON       a Python with botocore (default: the test venv)
#
# Each round re-signs the request (SigV4 allows 5 minutes of clock skew).
# Bounded: each server start waits at most 30 s, each wrk run is wrapped in
# `timeout`, every server is stopped by PID on exit, traffic stays on
# 127.0.0.1.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bash bench/wrk.sh BINARY_A [BINARY_B]" >&2
    exit 2
fi
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 2; }
A="$(realpath "$1")"
B="${2:+$(realpath "$2")}"
CEILING="$(dirname "$A")/ferrokms-ceiling"
[ -x "$CEILING" ] || { echo "no $CEILING: cargo build --release --bin ferrokms-ceiling" >&2; exit 2; }
ROUNDS="${FERROKMS_WRK_ROUNDS:-5}"
DURATION="${FERROKMS_WRK_DURATION:-5}"
CONNECTIONS="${FERROKMS_WRK_CONNECTIONS:-32}"
THREADS="${FERROKMS_WRK_THREADS:-1}"
PY="${FERROKMS_WRK_PYTHON:-$HOME/.cache/ferrokms-venv/bin/python}"
OUT="$(mktemp -d -t ferrokms-wrk.XXXXXX)"

. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    rm -rf "$OUT"
}
trap cleanup EXIT

declare -A URL PID
start_ferrokms() { # NAME BINARY
    local name=$1 bin=$2
    mkdir -p "$OUT/$name"
    "$bin" serve --listen 127.0.0.1:0 --data-dir "$OUT/$name/data" >"$OUT/$name/log" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!")
    URL[$name]="$(wait_for_url "$OUT/$name/log" "$!")"
}

# Creates a key on a ferrokms server and writes a Lua script replaying one
# Encrypt request signed now with the data dir's root credentials.
sign() { # NAME URL CREDENTIALS_FILE LUA
    "$PY" - "$@" <<'PY'
import base64, configparser, json, sys
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

name, url, creds_file, lua = sys.argv[1:5]
cp = configparser.ConfigParser()
cp.read(creds_file)
sec = cp["ferrokms"]
creds = Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"])
kms = botocore.session.get_session().create_client(
    "kms", endpoint_url=url, region_name="us-east-1",
    aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
key = kms.create_key(Description="wrk")["KeyMetadata"]["KeyId"]
body = json.dumps({"KeyId": key, "Plaintext": base64.b64encode(b"k" * 32).decode()})
req = AWSRequest(method="POST", url=url + "/", data=body, headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"})
SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
with open(lua, "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write("wrk.body = %s\n" % json.dumps(body))
    for k, v in req.headers.items():
        if k.lower() in ("host", "content-length"):
            continue  # wrk writes both itself, the same as signed
        f.write("wrk.headers[%s] = %s\n" % (json.dumps(k), json.dumps(v)))
PY
}

cpu_ticks() { # PID -> utime + stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

measure() { # NAME URL PID LUA
    local name=$1 url=$2 pid=$3 lua=$4
    local before after out
    before="$(cpu_ticks "$pid")"
    out="$(timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$lua" "$url/" 2>&1)"
    after="$(cpu_ticks "$pid")"
    local requests non2xx
    requests="$(echo "$out" | awk '/requests in/ {print $1}')"
    non2xx="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
    if [ -n "$non2xx" ] && [ "$name" != ceiling ]; then
        echo "$name: $non2xx responses were not 2xx" >&2
        echo "$out" >&2
        exit 1
    fi
    local hz
    hz="$(getconf CLK_TCK)"
    python3 -c "
r=$requests; d=$DURATION; t=$after-$before; hz=$hz
print(f'$name {r/d:.0f} {t/hz*1e6/r:.2f}')" | tee -a "$OUT/results"
}

start_ferrokms a "$A"
names=(a)
if [ -n "$B" ]; then
    start_ferrokms b "$B"
    names+=(b)
fi
mkdir -p "$OUT/ceiling"
"$CEILING" 127.0.0.1:0 >"$OUT/ceiling/log" 2>&1 &
PID[ceiling]=$!
PIDS+=("$!")
URL[ceiling]="$(wait_for_url "$OUT/ceiling/log" "$!")"

for round in $(seq 1 "$ROUNDS"); do
    echo "# round $round/$ROUNDS" >&2
    for name in "${names[@]}"; do
        sign "$name" "${URL[$name]}" "$OUT/$name/data/credentials" "$OUT/$name/encrypt.lua"
        measure "$name" "${URL[$name]}" "${PID[$name]}" "$OUT/$name/encrypt.lua"
    done
    # The ceiling answers any request: replay A's.
    measure ceiling "${URL[ceiling]}" "${PID[ceiling]}" "$OUT/a/encrypt.lua"
done

python3 - "$OUT/results" "$A" "${B:-}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, rps, cpu in rows:
    by.setdefault(name, []).append((float(rps), float(cpu)))
label = {"a": sys.argv[2], "b": sys.argv[3], "ceiling": "ferrokms-ceiling (bare hyper)"}
ceil_cpu = statistics.median(c for _, c in by["ceiling"])
ceil_rps = statistics.median(r for r, _ in by["ceiling"])
print("| server | median req/s | median server CPU us/req | CPU vs ceiling | req/s vs ceiling |")
print("|---|---:|---:|---:|---:|")
for name in ("a", "b", "ceiling"):
    if name not in by:
        continue
    rps = statistics.median(r for r, _ in by[name])
    cpu = statistics.median(c for _, c in by[name])
    print(f"| {name}: {label[name]} | {rps:,.0f} | {cpu:.2f} | {cpu / ceil_cpu:.2f}x | {rps / ceil_rps:.0%} |")
if "b" in by:
    ratios = [b[1] / a[1] for a, b in zip(by["a"], by["b"])]
    print(f"\nB/A server CPU per request, per round: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
PY
