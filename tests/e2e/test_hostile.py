"""Hostile clients through real HTTP: malformed, oversized, slow and
abusive input must get a 4xx (AWS's shape where AWS has an error for it)
or a closed connection, and the server must keep serving everyone else
during and after.

The server here runs with short timeouts (2 s for heads and bodies) so
that the timeout tests stay quick; every socket has its own timeout and
every loop is bounded in count and time. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit


from conftest import Server, raw_request

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
MAX_CONNECTIONS = 64
# How long past a timeout the server may take to act on it.
SLACK = 4.0


# Short timeouts and a small connection limit.
SERVER_ARGS = [
    "--header-timeout",
    str(HEADER_TIMEOUT),
    "--body-timeout",
    str(BODY_TIMEOUT),
    "--max-connections",
    str(MAX_CONNECTIONS),
]


def addr(s: Server):
    u = urlsplit(s.endpoint)
    assert u.hostname == "127.0.0.1"
    return (u.hostname, u.port)


def connect(s: Server, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(addr(s), timeout=timeout)


def read_until_closed(sock: socket.socket, deadline: float, limit: int = 1 << 20) -> bytes:
    """Reads until EOF, reset, `limit` bytes or the deadline."""
    out = b""
    while time.monotonic() < deadline and len(out) < limit:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        out += chunk
    return out


def status_of(response: bytes):
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""


def assert_serving(s: Server):
    """Another client gets answers: /health, and a signed KMS call."""
    conn_start = time.monotonic()
    sock = connect(s, timeout=5)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        resp = read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    assert status_of(resp) == 200, resp[:200]
    r = s.raw("TrentService.ListKeys", {})
    assert r.status == 200, r.body[:300]
    assert time.monotonic() - conn_start < 5


def post_head(target="TrentService.ListKeys", length=None, extra=b"") -> bytes:
    head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
    if target:
        head += b"X-Amz-Target: " + target.encode() + b"\r\n"
    if length is not None:
        head += b"Content-Length: " + str(length).encode() + b"\r\n"
    return head + extra + b"\r\n"


# --- timeouts -------------------------------------------------------------


def test_slowloris_head_is_cut_off_after_the_header_timeout_while_others_are_served(srv):
    sock = connect(srv)
    started = time.monotonic()
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        # Dribble one header byte every 0.3 s for at most 12 s.
        for i in range(40):
            try:
                sock.sendall(b"X"[:1] if i % 2 else b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if i == 2:
                assert_serving(srv)
            sock.settimeout(0.3)
            try:
                if sock.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert closed, "a head dribbled for 12 s must be cut off"
    assert elapsed < HEADER_TIMEOUT + SLACK, elapsed
    assert_serving(srv)


def test_slow_body_gets_408_request_timeout_after_the_body_timeout(srv):
    sock = connect(srv)
    started = time.monotonic()
    try:
        sock.sendall(post_head(length=1000))
        resp = b""
        for _ in range(40):
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.3)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            resp += chunk
            if b"\r\n\r\n" in resp:
                resp += read_until_closed(sock, time.monotonic() + 2)
                break
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert status_of(resp) == 408, resp[:300]
    assert json.loads(body_of(resp))["__type"] == "RequestTimeoutException"
    assert elapsed < BODY_TIMEOUT + SLACK, elapsed
    assert_serving(srv)


def test_truncated_body_then_silence_is_408_and_the_connection_closes(srv):
    sock = connect(srv)
    try:
        sock.sendall(post_head(length=100) + b'{"Limit":')
        resp = read_until_closed(sock, time.monotonic() + BODY_TIMEOUT + SLACK)
    finally:
        sock.close()
    assert status_of(resp) == 408, resp[:300]
    assert_serving(srv)


def test_truncated_body_then_half_close_gets_a_4xx_or_a_closed_connection(srv):
    sock = connect(srv)
    try:
        sock.sendall(post_head(length=100) + b'{"Limit":')
        sock.shutdown(socket.SHUT_WR)
        resp = read_until_closed(sock, time.monotonic() + BODY_TIMEOUT + SLACK)
    finally:
        sock.close()
    status = status_of(resp)
    assert status is None or 400 <= status < 500, resp[:300]
    assert_serving(srv)


def test_idle_keep_alive_connection_is_closed_after_the_header_timeout(srv):
    sock = connect(srv)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        first = sock.recv(65536)
        assert status_of(first) == 200
        started = time.monotonic()
        rest = read_until_closed(sock, started + HEADER_TIMEOUT + SLACK)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert rest == b""
    assert elapsed < HEADER_TIMEOUT + SLACK, "the idle connection was not closed"


def test_many_idle_connections_are_closed_and_do_not_stop_service(srv):
    socks = []
    try:
        for _ in range(MAX_CONNECTIONS // 2):
            socks.append(connect(srv, timeout=5))
        assert_serving(srv)
        deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
        closed = 0
        for s in socks:
            if read_until_closed(s, deadline) == b"":
                closed += 1
        assert closed == len(socks)
    finally:
        for s in socks:
            s.close()
    assert_serving(srv)


def wait_until_no_other_connections(s: Server):
    """Until the only connection open is the one asking: earlier tests' keep-
    alive clients hold a slot until the header timeout closes them, and a
    slot held then would let the connection over the limit in later."""
    deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
    while True:
        sock = connect(s, timeout=5)
        try:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            resp = read_until_closed(sock, time.monotonic() + 5)
        finally:
            sock.close()
        open_now = [
            line.split()[-1]
            for line in resp.decode(errors="replace").splitlines()
            if line.startswith("ferrokms_connections_open ")
        ]
        if open_now == ["1"]:
            return
        assert time.monotonic() < deadline, f"connections still open: {open_now}"
        time.sleep(0.1)


def test_connections_beyond_the_limit_are_closed_at_once_and_service_resumes(srv):
    wait_until_no_other_connections(srv)
    socks = []
    try:
        for _ in range(MAX_CONNECTIONS):
            socks.append(connect(srv, timeout=5))
        time.sleep(0.3)
        extra = connect(srv, timeout=5)
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = read_until_closed(extra, time.monotonic() + 3)
        extra.close()
        assert resp == b"", "a connection over the limit must be closed unanswered"
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert_serving(srv)
            break
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- size limits ----------------------------------------------------------


def test_100_mb_body_gets_413_without_hanging_the_connection(srv):
    size = 100 * 1024 * 1024
    sock = connect(srv)
    chunk = b"a" * 65536
    sent = 0
    resp = b""
    started = time.monotonic()
    try:
        sock.sendall(post_head(length=size))
        sock.setblocking(False)
        while sent < size and time.monotonic() - started < 30:
            try:
                got = sock.recv(65536)
                if not got:
                    break
                resp += got
                if b"\r\n\r\n" in resp:
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        resp += read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    assert elapsed < 30, "the server kept reading a 100 MB body"
    assert sent < size, "the server swallowed all 100 MB"
    assert status_of(resp) == 413, resp[:300]
    assert json.loads(body_of(resp))["__type"] == "RequestEntityTooLargeException"
    assert_serving(srv)


def test_header_flood_gets_431_or_a_closed_connection(srv):
    many = b"".join(b"X-Flood-%d: v\r\n" % i for i in range(2000))
    sock = connect(srv)
    try:
        try:
            sock.sendall(post_head(length=2, extra=many) + b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    assert status_of(resp) in (None, 431), resp[:300]
    assert_serving(srv)


def test_one_huge_header_gets_431_or_a_closed_connection(srv):
    sock = connect(srv)
    try:
        try:
            sock.sendall(post_head(length=2, extra=b"X-Big: " + b"b" * (1 << 20) + b"\r\n") + b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    assert status_of(resp) in (None, 431), resp[:300]
    assert_serving(srv)


def test_garbage_request_line_gets_400_or_a_closed_connection(srv):
    sock = connect(srv)
    try:
        sock.sendall(b"\x16\x03\x01\x00\xff garbage \x00\r\n\r\n")
        resp = read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    assert status_of(resp) in (None, 400), resp[:300]
    assert_serving(srv)


# --- malformed content (signed, so that the body is what fails) ------------


def test_invalid_utf8_json_is_serialization_exception(srv):
    r = srv.raw("TrentService.DescribeKey", b'{"KeyId":"\xff\xfe\xfd"}')
    assert r.status == 400 and r.error_type == "SerializationException", r.body
    assert_serving(srv)


def test_deeply_nested_json_arrays_are_serialization_exception(srv):
    r = srv.raw("TrentService.Encrypt", b"[" * 200_000 + b"]" * 200_000)
    assert r.status == 400 and r.error_type == "SerializationException", r.body[:300]
    assert_serving(srv)


def test_deeply_nested_json_objects_inside_a_member_are_refused(srv):
    body = b'{"KeyId":"x","EncryptionContext":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
    r = srv.raw("TrentService.Encrypt", body)
    assert r.status == 400 and r.error_type == "SerializationException", r.body[:300]
    assert_serving(srv)


def test_nesting_within_the_parser_limit_is_validated_not_crashed(srv):
    body = b'{"KeyId":"x","EncryptionContext":{"a":' + b"[" * 100 + b"]" * 100 + b"}}"
    r = srv.raw("TrentService.Encrypt", body)
    assert r.status == 400 and r.error_type in ("SerializationException", "ValidationException")


def test_unknown_operation_and_foreign_targets_are_unknown_operation_exception(srv):
    for target in ("TrentService.", "TrentService.NoSuchOp", "DynamoDB_20120810.GetItem", "TrentService.Encrypt\t"):
        r = raw_request(srv.endpoint, target, {}, sign=False)
        assert 400 <= r.status < 500, (target, r.status)
        assert r.error_type in ("UnknownOperationException", "MissingAuthenticationTokenException"), (target, r.body)
    assert_serving(srv)


def test_wrong_content_type_without_target_is_unknown_operation_exception(srv):
    r = raw_request(srv.endpoint, None, b"{}", sign=False, content_type="text/plain")
    assert r.status == 400 and r.error_type == "UnknownOperationException", r.body


def test_form_body_of_garbage_is_a_query_protocol_error(srv):
    r = raw_request(
        srv.endpoint,
        None,
        b"\xff\xfe=%%%&&&Action=\x00",
        sign=False,
        content_type="application/x-www-form-urlencoded",
    )
    assert 400 <= r.status < 500, r.status
    assert b"<ErrorResponse" in r.body and b"<Code>" in r.body, r.body[:300]
    assert_serving(srv)


def test_non_utf8_target_header_is_refused(srv):
    sock = connect(srv)
    try:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.\xff\xfe\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        resp = read_until_closed(sock, time.monotonic() + 5)
    finally:
        sock.close()
    status = status_of(resp)
    assert status is None or 400 <= status < 500, resp[:300]
    assert_serving(srv)


def test_many_garbage_requests_on_one_keep_alive_connection_each_get_an_answer(srv):
    sock = connect(srv)
    answered = 0
    try:
        for i in range(50):
            body = bytes([(i * 37 + j) % 256 for j in range(64)])
            sock.sendall(post_head(target="TrentService.Encrypt", length=len(body)) + body)
            resp = b""
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in resp and time.monotonic() < deadline:
                sock.settimeout(1)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                resp += chunk
            head, _, rest = resp.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length and time.monotonic() < deadline:
                rest += sock.recv(65536)
            assert status_of(resp) == 400, resp[:200]
            answered += 1
    finally:
        sock.close()
    assert answered == 50
    assert_serving(srv)
