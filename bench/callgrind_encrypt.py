#!/usr/bin/env python3
"""Instructions the server spends per Encrypt request, counted by callgrind:
deterministic, whatever else the machine is doing (wrk's CPU figures swing
±15% per round on two shared cores; these do not).

    ~/.cache/ferrokms-venv/bin/python bench/callgrind_encrypt.py BINARY [N1 N2]

Starts BINARY under `valgrind --tool=callgrind` on a fresh data dir on
127.0.0.1, creates a key, sends N1 (default 200) pre-signed Encrypt requests
over one keep-alive connection, stops it (SIGTERM) and reads the total
instruction count; then the same with N2 (default 1200). The difference over
N2 - N1 is the cost of one request, every server thread included (the audit
writer's share too), with start-up and shutdown cancelled out. Bounded: the
server gets 120 s to start and to stop, each request 60 s.
"""
import base64, configparser, http.client, json, os, re, shutil, signal, subprocess, sys, tempfile, time
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

def run(binary, n):
    d = tempfile.mkdtemp(prefix="cg-")
    out = os.path.join(d, "cg.out")
    log = open(os.path.join(d, "log"), "w+")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                          "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(d, "data")],
                         stdout=log, stderr=subprocess.STDOUT)
    url = None
    for _ in range(1200):  # 120 s
        log.seek(0)
        m = re.search(r"http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            url = m.group(0); port = int(m.group(1)); break
        time.sleep(0.1)
    assert url, "no start"
    cp = configparser.ConfigParser()
    for _ in range(100):
        cp.read(os.path.join(d, "data", "credentials"))
        if "ferrokms" in cp: break
        time.sleep(0.1)
    sec = cp["ferrokms"]
    creds = Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"])
    kms = botocore.session.get_session().create_client("kms", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    key = kms.create_key(Description="cg")["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key, "Plaintext": base64.b64encode(b"k" * 32).decode()})
    req = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"})
    SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length")}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("POST", "/", body=body, headers=headers)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
    c.close()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    total = 0
    for f in os.listdir(d):
        if f.startswith("cg.out"):
            for line in open(os.path.join(d, f)):
                if line.startswith("summary:") or line.startswith("totals:"):
                    total += int(line.split()[1]); break
    shutil.rmtree(d, ignore_errors=True)
    return total

binary = sys.argv[1]
n1, n2 = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (200, 1200)
a = run(binary, n1)
b = run(binary, n2)
print(f"{binary}: {a} Ir @ {n1}, {b} Ir @ {n2}: {(b - a) / (n2 - n1):.0f} Ir per Encrypt")
