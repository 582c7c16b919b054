"""Hostile load: thousands of connections at once, holding request bodies
before they are authenticated, and one address trying to take every
connection. What an attacker who can only connect would try:

- memory: 4,000 slow connections, each declaring a body and sending most
  of it, with a made-up signature so that the server cannot tell them from
  real clients before reading; the server's RSS must stay under 512 MiB,
  /health must answer within 1 s meanwhile, and RSS must be back under
  128 MiB within 10 s of their closing;
- bodies that need never be read: an unsigned request, a declared length
  over the limit;
- the body budget: one address's large bodies are throttled as AWS
  throttles, while its small requests and other addresses are served;
- connections: 4,096 sockets from one address (the whole --max-connections)
  must not lock out a client from another.

The test_hostile.py server's patterns (raw sockets, bounded reads) are
reused; the servers here keep the default limits, since those are what is
claimed. Clients bind their source address in 127.0.0.0/8 (Linux routes it
all to lo), so that they count as different addresses; all traffic goes to
127.0.0.x. Every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import resource
import socket
import time
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, Server
from test_hostile import body_of, read_until_closed, status_of

MIB = 1024 * 1024
# The server's defaults (crates/server/src/limits.rs, listener.rs).
MAX_BODY = MIB
SMALL_BODY = 8 * 1024
MAX_CONNECTIONS = 4096
PER_ADDRESS = 256
HEADER_TIMEOUT = 10
ADDRESS_SHARE = 8 * MIB  # the 64 MiB body budget / 8
BUDGET_WAIT = 1.0
DRAIN_WAIT = 1.0

# The memory test's attack.
ATTACKERS = 4000
ATTACK_ADDRESSES = [f"127.0.0.{i}" for i in range(10, 26)]  # 16 x 250
RSS_LIMIT_MIB = 512
RSS_AFTER_MIB = 128
# Past this the server has failed anyway: stop feeding it.
RSS_ABORT_MIB = 1024

# A signature the server cannot reject before it has the body.
FAKE_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAHOSTILELOAD00000/20250101/us-east-1/kms/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
)


def need_files(n: int):
    """Raises this process's RLIMIT_NOFILE to `n` (servers started after
    inherit it), or skips."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip(f"needs {n} open files; the hard limit is {hard}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    except (ValueError, OSError) as e:
        pytest.skip(f"cannot raise RLIMIT_NOFILE to {n}: {e}")


def server_files(srv: Server) -> int:
    for line in Path(f"/proc/{srv.proc.pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


def rss_mib(srv: Server) -> float:
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def addr(srv: Server):
    u = urlsplit(srv.endpoint)
    assert u.hostname == "127.0.0.1"
    return (u.hostname, u.port)


# Linux: choose the source port at connect(), not bind(); bind() alone
# would search for a port unused by every socket on the address, which
# makes opening thousands of connections slow.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def connect_from(srv: Server, source: str, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(addr(srv))
    except OSError:
        s.close()
        raise
    return s


def pace(i: int):
    """A pause every 128 connections, so that the server's accept queue
    (1,024) does not overflow: a dropped SYN costs its client a second."""
    if i % 128 == 127:
        time.sleep(0.02)


def require_loopback_sources(srv: Server, sources):
    for src in sources:
        try:
            connect_from(srv, src).close()
        except OSError as e:
            pytest.skip(f"cannot connect from {src} (127.0.0.0/8 not all on lo?): {e}")


def health_from(srv: Server, source: str, timeout: float = 5.0) -> float:
    """GET /health from `source`; returns the seconds it took (connect
    included), or raises."""
    started = time.monotonic()
    s = connect_from(srv, source, timeout)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        resp = read_until_closed(s, time.monotonic() + timeout)
    finally:
        s.close()
    assert status_of(resp) == 200, resp[:200]
    return time.monotonic() - started


def signed_from(srv: Server, source: str, target: str, body: bytes, timeout: float = 5.0):
    """A request signed with the server's default credentials, sent from
    `source`: (status, headers, body)."""
    ak, sk = srv.profile_credentials()
    hdrs = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers=dict(hdrs))
    SigV4Auth(Credentials(ak, sk), "kms", REGION).add_auth(req)
    host, port = addr(srv)
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def metric(srv: Server, name: str, source: str = "127.0.0.2") -> float:
    s = connect_from(srv, source)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        resp = read_until_closed(s, time.monotonic() + 5, limit=4 << 20)
    finally:
        s.close()
    assert status_of(resp) == 200, f"/metrics from {source} unanswered: {resp[:200]!r}"
    text = body_of(resp).decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def read_to_eof(sock: socket.socket, deadline: float, limit: int = 1 << 20):
    """Reads until the server closes, `limit` bytes or the deadline:
    (bytes, True if the server closed the connection)."""
    out = b""
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return out, False
        except (ConnectionResetError, BrokenPipeError):
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def attack_head(length: int, target: Optional[str] = "TrentService.Encrypt", signed: bool = True,
                content_type: str = "application/x-amz-json-1.1") -> bytes:
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
    if target:
        head += f"X-Amz-Target: {target}\r\n"
    if signed:
        head += "X-Amz-Date: 20250101T000000Z\r\nAuthorization: " + FAKE_AUTH + "\r\n"
    head += f"Content-Length: {length}\r\n\r\n"
    return head.encode()


@pytest.fixture
def load_server(ferrokms_bin, tmp_path):
    """A server with the default limits, started after this process may
    open enough files (the server inherits the limit)."""
    need_files(ATTACKERS + 1024)
    started = []

    def make() -> Server:
        work = tmp_path / f"srv{len(started)}"
        work.mkdir()
        s = Server(ferrokms_bin, work, data_dir=work / "data")
        started.append(s)
        s.start()
        if server_files(s) < MAX_CONNECTIONS + 64:
            pytest.skip(f"the server may open only {server_files(s)} files")
        return s

    yield make
    for s in started:
        s.stop()


# --- bodies that need never be read -------------------------------------


def test_unsigned_request_declaring_a_large_body_is_answered_without_reading_it(load_server):
    srv = load_server()
    s = connect_from(srv, "127.0.0.1")
    try:
        started = time.monotonic()
        s.sendall(attack_head(MAX_BODY, signed=False))
        # Not one byte of the body is sent.
        resp, closed = read_to_eof(s, started + 5)
        elapsed = time.monotonic() - started
    finally:
        s.close()
    assert status_of(resp) == 400, resp[:300]
    assert json.loads(body_of(resp))["__type"] == "MissingAuthenticationTokenException"
    assert elapsed < 1.0, f"answered after {elapsed:.2f}s: the body was waited for"
    assert closed, "the unread body cannot be skipped: the connection must close"


def test_declared_length_over_the_limit_is_413_before_any_body_is_sent(load_server):
    srv = load_server()
    for signed in (True, False):
        s = connect_from(srv, "127.0.0.1")
        try:
            started = time.monotonic()
            s.sendall(attack_head(2 * MAX_BODY, signed=signed))
            resp, closed = read_to_eof(s, started + 5)
            elapsed = time.monotonic() - started
        finally:
            s.close()
        assert status_of(resp) == 413, resp[:300]
        assert json.loads(body_of(resp))["__type"] == "RequestEntityTooLargeException"
        assert elapsed < 1.0, elapsed
        assert closed


# --- the body budget -------------------------------------------------------


def test_one_address_past_its_body_share_is_throttled_while_its_small_requests_and_others_are_served(
    load_server,
):
    srv = load_server()
    hog, other = "127.0.0.5", "127.0.0.6"
    require_loopback_sources(srv, [hog, other])
    held = []
    try:
        # Eight 1 MiB bodies that never come: the address's whole share.
        for _ in range(ADDRESS_SHARE // MAX_BODY):
            s = connect_from(srv, hog)
            s.sendall(attack_head(MAX_BODY))
            held.append(s)
        deadline = time.monotonic() + 5
        while metric(srv, "ferrokms_body_bytes_reserved") < ADDRESS_SHARE:
            assert time.monotonic() < deadline, "the stalled bodies did not reserve"
            time.sleep(0.05)

        # A ninth large body from the hog, never sent: throttled as KMS
        # does, and the connection closed.
        s = connect_from(srv, hog)
        try:
            started = time.monotonic()
            s.sendall(attack_head(60 * 1024))
            resp, closed = read_to_eof(s, started + BUDGET_WAIT + DRAIN_WAIT + 4)
            waited = time.monotonic() - started
        finally:
            s.close()
        assert status_of(resp) == 400, resp[:300]
        assert json.loads(body_of(resp))["__type"] == "ThrottlingException", resp[:300]
        assert BUDGET_WAIT <= waited < BUDGET_WAIT + DRAIN_WAIT + 2, waited
        assert closed, "the unread body cannot be skipped: the connection must close"

        # Sent whole, a throttled body is read and dropped: the answer
        # arrives intact and the connection carries the next request.
        s = connect_from(srv, hog)
        try:
            s.sendall(attack_head(60 * 1024) + b" " * (60 * 1024))
            resp = b""
            deadline = time.monotonic() + BUDGET_WAIT + DRAIN_WAIT + 4
            while b"ThrottlingException" not in resp and time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
            assert status_of(resp) == 400 and b"ThrottlingException" in resp, resp[:300]
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            again, _ = read_to_eof(s, time.monotonic() + 5)
            assert status_of(again) == 200, again[:300]
        finally:
            s.close()

        # In the query protocol (IAM, STS): its own Throttling, in XML.
        s = connect_from(srv, hog)
        try:
            s.sendall(attack_head(60 * 1024, target=None,
                                  content_type="application/x-www-form-urlencoded"))
            resp, _ = read_to_eof(s, time.monotonic() + BUDGET_WAIT + 4)
        finally:
            s.close()
        assert status_of(resp) == 400, resp[:300]
        assert b"<Code>Throttling</Code>" in body_of(resp), resp[:500]

        # The hog's small requests need no budget.
        status, _, body = signed_from(srv, hog, "TrentService.ListKeys", b"{}")
        assert status == 200, body[:300]
        # Another address has its own share: a 20 KiB body (JSON padded
        # with whitespace) is read and served.
        big = b'{"Limit": 10}' + b" " * (20 * 1024)
        started = time.monotonic()
        status, _, body = signed_from(srv, other, "TrentService.ListKeys", big)
        assert status == 200, body[:300]
        assert time.monotonic() - started < BUDGET_WAIT, "it should not have waited"
    finally:
        for s in held:
            s.close()
    # Closed, the stalled bodies give their share back.
    deadline = time.monotonic() + 5
    while metric(srv, "ferrokms_body_bytes_reserved") != 0:
        assert time.monotonic() < deadline, "reservations were not returned"
        time.sleep(0.05)
    big = b'{"Limit": 10}' + b" " * (20 * 1024)
    status, _, body = signed_from(srv, hog, "TrentService.ListKeys", big)
    assert status == 200, body[:300]


# --- connections -------------------------------------------------------------


def test_one_address_opening_every_connection_does_not_lock_out_another(load_server):
    srv = load_server()
    require_loopback_sources(srv, ["127.0.0.2"])
    hog = []
    try:
        started = time.monotonic()
        # The whole --max-connections from one address, idle.
        for i in range(MAX_CONNECTIONS):
            assert time.monotonic() - started < 20, "opening the sockets took too long"
            hog.append(connect_from(srv, "127.0.0.1"))
            pace(i)
        opened = time.monotonic() - started
        if opened > HEADER_TIMEOUT / 2:
            # Slow machine: the header timeout may be closing the first
            # sockets; open as many again so that the hog holds its cap now.
            for i in range(PER_ADDRESS):
                hog.append(connect_from(srv, "127.0.0.1"))
                pace(i)
        assert metric(srv, "ferrokms_connections_open") >= PER_ADDRESS, "the hog holds its cap"
        # Another address is served at once: /health, and a signed call.
        t0 = time.monotonic()
        health = health_from(srv, "127.0.0.2", timeout=2)
        status, _, body = signed_from(srv, "127.0.0.2", "TrentService.ListKeys", b"{}", timeout=2)
        served = time.monotonic() - t0
        assert status == 200, body[:300]
        assert served < 2.0, served
        # Past its cap, the server closed the hog's sockets unanswered.
        for s in hog[PER_ADDRESS:PER_ADDRESS + 50]:
            got, closed = read_to_eof(s, time.monotonic() + 2)
            assert (got, closed) == (b"", True)
        refused = metric(srv, "ferrokms_connections_refused_per_address_total")
        assert refused >= MAX_CONNECTIONS - PER_ADDRESS
        print(f"\n[fair] {len(hog)} sockets from 127.0.0.1 in {opened:.1f}s, "
              f"{refused:.0f} refused; 127.0.0.2 served /health in {health * 1000:.0f} ms, "
              f"/health+ListKeys in {served * 1000:.0f} ms")
    finally:
        for s in hog:
            s.close()


# --- memory --------------------------------------------------------------------


# Payloads the attackers send slices of (memoryviews, not copies).
BODY_BYTES = memoryview(b"x" * MAX_BODY)
# A request head just under the server's 16 KiB limit, never finished.
HEAD_BYTES = memoryview(
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.Encrypt\r\n"
    + b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"p" * 1000) for i in range(15))
)


class Attacker:
    """One hostile connection. A body attacker sends a fake-signed head
    declaring `length`, then as much of the body as the server takes, never
    the last byte; a head attacker (`length` 0) sends most of a 15 KiB
    head, never its end."""

    __slots__ = ("sock", "source", "length", "payload", "sent", "limit", "done")

    def __init__(self, srv: Server, source: str, length: int):
        self.source = source
        self.length = length
        if length:
            self.payload, self.limit = BODY_BYTES, length - 1
        else:
            self.payload, self.limit = HEAD_BYTES, len(HEAD_BYTES)
        self.sent = 0
        self.done = False
        self.sock = connect_from(srv, source)
        self.sock.setblocking(False)
        if length:
            head = attack_head(length)
            assert self.sock.send(head) == len(head)

    def step(self) -> Optional[bytes]:
        """Sends what the socket takes; returns what came back: None while
        open, b"" or a response once the server has given up on it."""
        if self.sent < self.limit:
            try:
                self.sent += self.sock.send(self.payload[self.sent:min(self.limit, self.sent + 65536)])
            except BlockingIOError:
                pass
            except OSError:
                return self.close(b"")
        try:
            got = self.sock.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            return self.close(b"")
        return self.close(got)

    def close(self, got: bytes) -> bytes:
        self.done = True
        self.sock.close()
        return got


def test_4000_slow_unauthenticated_bodies_keep_memory_bounded_and_it_is_returned(load_server):
    srv = load_server()
    require_loopback_sources(srv, ATTACK_ADDRESSES + ["127.0.0.2"])
    samples = []  # (seconds since start, RSS MiB)
    health = []  # seconds per /health
    throttled = 0
    reconnects = 0
    max_open = 0
    attackers = []
    began = time.monotonic()

    def observe():
        rss = rss_mib(srv)
        samples.append((time.monotonic() - began, rss))
        assert rss < RSS_ABORT_MIB, f"RSS {rss:.0f} MiB: stopped feeding the server"

    try:
        # One in four declares 1 MiB (the most there is), one in four sends
        # a 15 KiB head (about the most there is), two declare 8 KiB (the
        # most a body may hold without a reservation).
        for i in range(ATTACKERS):
            assert time.monotonic() - began < 30, "opening the connections took too long"
            length = (MAX_BODY, 0, SMALL_BODY, SMALL_BODY)[i % 4]
            attackers.append(Attacker(srv, ATTACK_ADDRESSES[i % len(ATTACK_ADDRESSES)], length))
            pace(i)
            if i % 500 == 0:
                observe()
        opened = time.monotonic() - began
        # Feed them for 8 s; whoever the server gives up on (throttled large
        # bodies, heads past the limit) comes back at once, up to 3,000
        # times in all.
        feed_until = time.monotonic() + 8
        next_probe = 0.0
        while time.monotonic() < feed_until:
            for idx, a in enumerate(attackers):
                if a.done:
                    continue
                got = a.step()
                if got is None:
                    continue
                if status_of(got) == 400 and b"ThrottlingException" in got:
                    throttled += 1
                if reconnects < 3000:
                    reconnects += 1
                    try:
                        attackers[idx] = Attacker(srv, a.source, a.length)
                    except OSError:
                        pass
            observe()
            if time.monotonic() >= next_probe:
                health.append(health_from(srv, "127.0.0.2"))
                max_open = max(max_open, metric(srv, "ferrokms_connections_open"))
                next_probe = time.monotonic() + 0.5
            time.sleep(0.05)
        # Hold: every connection still open, nothing more sent.
        hold_until = time.monotonic() + 3
        while time.monotonic() < hold_until:
            observe()
            health.append(health_from(srv, "127.0.0.2"))
            time.sleep(0.25)
        max_open = max(max_open, metric(srv, "ferrokms_connections_open"))
        held = sum(a.sent for a in attackers if not a.done)
    finally:
        for a in attackers:
            if not a.done:
                a.close(b"")
    closed_at = time.monotonic()
    peak = max(rss for _, rss in samples)
    after = rss_mib(srv)
    while after >= RSS_AFTER_MIB and time.monotonic() - closed_at < 10:
        time.sleep(0.25)
        after = rss_mib(srv)
    returned_in = time.monotonic() - closed_at
    print(
        f"\n[memory] {ATTACKERS} connections opened in {opened:.1f}s, up to {max_open:.0f} open; "
        f"{throttled} throttled, {reconnects} reconnects; {held / MIB:.0f} MiB sent by the "
        f"connections still open; peak RSS {peak:.0f} MiB; /health max "
        f"{max(health) * 1000:.0f} ms over {len(health)} probes; RSS {after:.0f} MiB "
        f"{returned_in:.1f}s after closing"
    )
    assert max_open >= ATTACKERS * 0.9, f"only {max_open} connections were open at once"
    assert peak < RSS_LIMIT_MIB, f"peak RSS {peak:.0f} MiB"
    assert max(health) < 1.0, f"/health took {max(health):.2f}s"
    assert after < RSS_AFTER_MIB, f"RSS {after:.0f} MiB 10 s after the connections closed"
    status, _, body = signed_from(srv, "127.0.0.2", "TrentService.ListKeys", b"{}")
    assert status == 200, body[:300]
