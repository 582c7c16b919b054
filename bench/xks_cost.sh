#!/usr/bin/env bash
# Encrypt through an external key store proxy against Encrypt under an
# ordinary key, on one ferrokms binary (issue #22):
#
#   bash bench/xks_cost.sh BINARY
#
# Starts two processes on free loopback ports: the proxy (`serve --xks`
# over HTTPS, with a CA and a certificate for 127.0.0.1 made here by
# openssl) and the KMS (`serve --in-memory --dev --xks-ca-file`). Makes a
# proxy credential and key (`ferrokms xks ...`), an external key store, a
# key in it, and an ordinary key, through boto3 (FERROKMS_PYTHON, default
# the test venv's python). Then `ferrokms bench --op encrypt --key-id`
# drives each key in turn, ROUNDS times interleaved, and prints req/s,
# p50/p99 and the server CPU per request of the KMS process and of the
# proxy.
#
# Environment: FERROKMS_BENCH_REQUESTS (2000 per measurement),
# FERROKMS_BENCH_CONNECTIONS (8), FERROKMS_BENCH_REPEAT (3 rounds),
# FERROKMS_XKS_TIMEOUT_MS (the KMS's --xks-timeout-ms, 2000: a debug build
# under load needs more than AWS's 250 ms for a TLS handshake).
set -euo pipefail
BIN=${1:?binary}
REQUESTS=${FERROKMS_BENCH_REQUESTS:-2000}
CONNECTIONS=${FERROKMS_BENCH_CONNECTIONS:-8}
ROUNDS=${FERROKMS_BENCH_REPEAT:-3}
TIMEOUT_MS=${FERROKMS_XKS_TIMEOUT_MS:-2000}
PY=${FERROKMS_PYTHON:-$HOME/.cache/ferrokms-venv/bin/python}
OUT=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cleanup() {
    stop_started
    rm -rf "$OUT"
}
trap cleanup EXIT

# A CA, and the proxy's certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj '/CN=xks bench CA' -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=127.0.0.1' \
    -keyout "$OUT/proxy.key" -out "$OUT/proxy.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$OUT/ext"
openssl x509 -req -in "$OUT/proxy.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days 1 -extfile "$OUT/ext" -out "$OUT/proxy.pem" 2>/dev/null

declare -A PID URL
start() {
    local name=$1
    shift
    mkdir -p "$OUT/$name"
    (cd "$OUT/$name" && exec "$BIN" serve --listen 127.0.0.1:0 "$@" >"$OUT/$name/log" 2>"$OUT/$name/err") &
    PIDS+=($!)
    PID[$name]=$!
    URL[$name]="$(wait_for_url "$OUT/$name/log" "$!" 30)"
}
start proxy --data-dir "$OUT/proxy/data" --xks --tls-cert "$OUT/proxy.pem" --tls-key "$OUT/proxy.key"
start kms --in-memory --dev --xks-ca-file "$OUT/ca.pem" --xks-timeout-ms "$TIMEOUT_MS"
CRED="$("$BIN" xks credential create --data-dir "$OUT/proxy/data")"
XKS_KEY="$("$BIN" xks key create --data-dir "$OUT/proxy/data")"
read -r XKS_KMS_KEY PLAIN_KEY < <("$PY" - "${URL[kms]}" "${URL[proxy]}" "$CRED" "$XKS_KEY" <<'EOF'
import json, sys
import boto3
kms_url, proxy_url, cred, xks_key = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])["XksKeyId"]
kms = boto3.client("kms", endpoint_url=kms_url, region_name="us-east-1",
                   aws_access_key_id="111122223333", aws_secret_access_key="dev")
store = kms.create_custom_key_store(
    CustomKeyStoreName="bench", CustomKeyStoreType="EXTERNAL_KEY_STORE",
    XksProxyUriEndpoint=proxy_url, XksProxyUriPath="/xks/kms/xks/v1",
    XksProxyAuthenticationCredential=cred, XksProxyConnectivity="PUBLIC_ENDPOINT")["CustomKeyStoreId"]
kms.connect_custom_key_store(CustomKeyStoreId=store)
xks = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store, XksKeyId=xks_key)["KeyMetadata"]["KeyId"]
plain = kms.create_key()["KeyMetadata"]["KeyId"]
print(xks, plain)
EOF
)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
measure() {
    local name=$1 key=$2 kms0 proxy0 line kms_ticks proxy_ticks
    kms0="$(cpu_ticks "${PID[kms]}")"
    proxy0="$(cpu_ticks "${PID[proxy]}")"
    line="$(timeout 600 "$BIN" bench --endpoint "${URL[kms]}" --op encrypt --key-id "$key" \
        --duration 120 --max-requests "$REQUESTS" --connections "$CONNECTIONS" \
        --access-key-id 111122223333 --secret-access-key dev --json)"
    kms_ticks=$(($(cpu_ticks "${PID[kms]}") - kms0))
    proxy_ticks=$(($(cpu_ticks "${PID[proxy]}") - proxy0))
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
ok = r["requests"] - r["errors"]
print("%-8s %6d ok %4d errors %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  KMS CPU %6.0f us/req  proxy CPU %6.0f us/req" % (
    sys.argv[1], ok, r["errors"], r["requests_per_second"], r["p50_us"] / 1000, r["p99_us"] / 1000,
    int(sys.argv[3]) / max(ok, 1), int(sys.argv[4]) / max(ok, 1)))
' "$name" "$line" "$((kms_ticks * TICK_US))" "$((proxy_ticks * TICK_US))"
}
echo "Encrypt, $CONNECTIONS connections, $REQUESTS requests per measurement; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$ROUNDS"); do
    measure plain "$PLAIN_KEY"
    measure xks "$XKS_KMS_KEY"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
