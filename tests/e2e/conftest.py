"""Fixtures for the ferrokms end-to-end suite: real servers, real clients.

Every server runs the built binary (``FERROKMS_BIN``, default
``~/.cache/ferrokms-target/debug/ferrokms``) on a free loopback port and is
stopped with SIGTERM (then SIGKILL after a timeout). All traffic goes to
127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
DEFAULT_ACCOUNT = "111122223333"
DEV_ACCOUNT = "000000000000"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
LISTEN_RE = re.compile(r"^ferrokms listening on (https?://127\.0\.0\.1:(\d+))\s*$")
_SERVER_IDS = iter(range(1, 1 << 62))


def ferrokms_bin_path() -> Path:
    env = os.environ.get("FERROKMS_BIN")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "ferrokms-target" / "debug" / "ferrokms"


# The PostgreSQL backend: when FERROKMS_TEST_PG_URL names a PostgreSQL server
# (scripts/pg.sh start prints one), every server of the suite keeps its state
# there, each in a database of its own, instead of SQLite or memory; so the
# one suite runs against both backends (scripts/test.sh runs it twice).
PG_URL = os.environ.get("FERROKMS_TEST_PG_URL")
PG_BIN = os.environ.get("FERROKMS_TEST_PG_BIN", "")


def new_database() -> str:
    """A fresh, empty database on the test PostgreSQL; returns its URL."""
    assert PG_URL, "no test PostgreSQL"
    u = urlsplit(PG_URL)
    assert u.hostname == "127.0.0.1", PG_URL
    name = "t_" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    createdb = str(Path(PG_BIN) / "createdb") if PG_BIN else "createdb"
    subprocess.run(
        [createdb, "-h", u.hostname, "-p", str(u.port), "-U", u.username or "ferrokms", name],
        check=True,
        timeout=30,
        env=clean_env(),
    )
    return f"{u.scheme}://{u.username}@{u.hostname}:{u.port}/{name}"


def dump_database(url: str) -> bytes:
    """pg_dump of one test database (what a stolen backup would show)."""
    u = urlsplit(url)
    pg_dump = str(Path(PG_BIN) / "pg_dump") if PG_BIN else "pg_dump"
    out = subprocess.run(
        [pg_dump, "-h", u.hostname, "-p", str(u.port), "-U", u.username, u.path.lstrip("/")],
        check=True,
        timeout=60,
        capture_output=True,
        env=clean_env(),
    )
    return out.stdout


def edit_stored_document(server: "Server", kind: str, doc_id: str, edit: Callable[[dict], None]):
    """Changes one stored JSON document behind a stopped server's back (to
    fake the passing of time), on either backend."""
    assert server.proc is None, "stop the server first"
    if server.store_url:
        u = urlsplit(server.store_url)
        psql = str(Path(PG_BIN) / "psql") if PG_BIN else "psql"
        base = [psql, "-At", "-v", "ON_ERROR_STOP=1", "-h", u.hostname, "-p", str(u.port), "-U", u.username, u.path.lstrip("/")]
        where = f"kind = '{kind}' AND id = '{doc_id}'"
        assert "'" not in kind + doc_id
        out = subprocess.run(
            base + ["-c", f"SELECT convert_from(body, 'UTF8') FROM ferrokms_objects WHERE {where}"],
            check=True, timeout=30, capture_output=True, env=clean_env(),
        ).stdout.decode()
        body = json.loads(out)
        edit(body)
        text = json.dumps(body).replace("'", "''")
        subprocess.run(
            base + ["-c", f"UPDATE ferrokms_objects SET body = convert_to('{text}', 'UTF8') WHERE {where}"],
            check=True, timeout=30, capture_output=True, env=clean_env(),
        )
        return
    import sqlite3

    db = sqlite3.connect(server.data_dir / "ferrokms.sqlite")
    try:
        row = db.execute("SELECT body FROM objects WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        body = json.loads(row[0])
        edit(body)
        db.execute("UPDATE objects SET body = ? WHERE kind = ? AND id = ?", (json.dumps(body).encode(), kind, doc_id))
        db.commit()
    finally:
        db.close()


def clean_env() -> dict:
    """The environment without anything that could steer the server or a
    client somewhere else (AWS_*, FERROKMS_*)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and not k.startswith("FERROKMS_")
    }


@dataclass
class Server:
    """One ferrokms process."""

    bin: Path
    workdir: Path
    data_dir: Optional[Path] = None
    in_memory: bool = False
    dev: bool = False
    dev_account: Optional[str] = None
    proc: Optional[subprocess.Popen] = None
    endpoint: str = ""
    port: int = 0
    _stdout_lines: "queue.Queue[Optional[str]]" = field(default_factory=queue.Queue)
    _stderr_file: Optional[object] = None
    starts: int = 0
    # Set on the first start under the PostgreSQL backend (or by a test
    # that puts several nodes on one database); kept across restarts.
    store_url: Optional[str] = None
    extra_args: list = field(default_factory=list)
    # Run on exactly the flags in extra_args, never moved to PostgreSQL:
    # for the tests of the storage, TLS and logging flags themselves.
    storage_given: bool = False
    # Added to the server's environment (over FERROKMS_LOG=info).
    env_extra: dict = field(default_factory=dict)
    # Tells apart the logs of several servers sharing a workdir.
    serial: int = field(default_factory=lambda: next(_SERVER_IDS))

    # Where it listens, and what runs it (test_partitions.py runs nodes in
    # network namespaces of its own: `ip netns exec NS`).
    listen: str = "127.0.0.1:0"
    launcher: list = field(default_factory=list)

    def listen_pattern(self) -> "re.Pattern":
        return LISTEN_RE

    def args(self) -> list:
        a = [*self.launcher, str(self.bin), "serve", "--listen", self.listen]
        if self.storage_given:
            pass
        elif PG_URL or self.store_url:
            # In-memory servers too: they then exercise the shared store.
            data_dir = self.data_dir or (self.workdir / "node")
            if self.store_url is None:
                self.store_url = new_database()
            a += ["--data-dir", str(data_dir), "--store", self.store_url]
        elif self.in_memory:
            a.append("--in-memory")
        else:
            assert self.data_dir is not None
            a += ["--data-dir", str(self.data_dir)]
        a += self.extra_args
        if self.dev:
            a.append("--dev")
            if self.dev_account:
                a += ["--dev-account", self.dev_account]
        return a

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"server-stderr-{self.serial}-{self.starts}.log"

    def start(self) -> "Server":
        assert self.proc is None, "already running"
        self.starts += 1
        self._stdout_lines = queue.Queue()
        self._stderr_file = open(self.stderr_path, "wb")
        env = clean_env()
        env["FERROKMS_LOG"] = "info"
        env.update(self.env_extra)
        self.proc = subprocess.Popen(
            self.args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            cwd=str(self.workdir),
        )
        lines = self._stdout_lines
        out = self.proc.stdout

        def pump():
            try:
                for raw in iter(out.readline, b""):
                    lines.put(raw.decode("utf-8", "replace"))
            finally:
                lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(
                    f"ferrokms did not print its listening line within {START_TIMEOUT}s; "
                    f"stdout={seen!r} stderr={self.stderr_text()[-2000:]!r}"
                )
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=STOP_TIMEOUT)
                self.proc = None
                raise RuntimeError(
                    f"ferrokms exited ({code}) before listening; stdout={seen!r} "
                    f"stderr={self.stderr_text()[-2000:]!r}"
                )
            seen.append(line)
            m = self.listen_pattern().match(line)
            if m:
                self.endpoint = m.group(1)
                self.port = int(m.group(2))
                return self

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def _close(self):
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`.
        Returns the exit code (negative for a signal)."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        code = proc.returncode
        self._close()
        return code

    def kill(self) -> Optional[int]:
        """SIGKILL: no chance to clean up."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
        code = proc.returncode
        self._close()
        return code

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    # --- credentials -------------------------------------------------

    @property
    def credentials_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "credentials"

    def profile_credentials(self, profile: str = "ferrokms") -> tuple:
        cp = configparser.ConfigParser()
        cp.read(self.credentials_file)
        sec = cp[profile]
        return sec["aws_access_key_id"], sec["aws_secret_access_key"]

    # --- clients -----------------------------------------------------

    def client(
        self,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        region: str = REGION,
        service: str = "kms",
        validate: bool = True,
    ):
        if access_key is None:
            access_key, secret_key = self.profile_credentials()
        return make_client(self.endpoint, access_key, secret_key or "x", region, service, validate)

    def raw(self, target, body, **kwargs) -> "RawResponse":
        """A raw HTTP request; signed with the profile's key unless told."""
        if kwargs.get("sign", True) and "access_key" not in kwargs:
            kwargs["access_key"], kwargs["secret_key"] = self.profile_credentials()
        return raw_request(self.endpoint, target, body, **kwargs)


def local_server(ferrokms_bin, workdir: Path, *args, env_extra=None) -> Server:
    """A started `ferrokms serve` on exactly ``args`` (a SQLite data dir,
    --in-memory, TLS, ...), run in ``workdir``, never moved to PostgreSQL
    on the PostgreSQL pass: for tests of those flags themselves and of the
    docs' own commands. Stop it with ``stop()``."""
    return Server(
        ferrokms_bin, Path(workdir), extra_args=[str(a) for a in args], storage_given=True, env_extra=dict(env_extra or {})
    ).start()


class BootServer(Server):
    """A server started with a bootstrap file (``--bootstrap``)."""

    bootstrap: str = ""

    def args(self):
        return super().args() + ["--bootstrap", self.bootstrap]


def boot_server(ferrokms_bin, work, bootstrap) -> BootServer:
    """A (not yet started) server on work/data that applies ``bootstrap``."""
    s = BootServer(ferrokms_bin, work, data_dir=work / "data")
    s.bootstrap = str(bootstrap)
    return s


def two_account_server(ferrokms_bin, work, other: str, credentials_file: str) -> BootServer:
    """A started server whose bootstrap adds account ``other``; its root
    credentials are written to data/``credentials_file`` as profile
    ``root-OTHER``."""
    boot = work / "boot.toml"
    boot.write_text(f'credentials_file = "{credentials_file}"\n[[accounts]]\nid = "{other}"\n')
    s = boot_server(ferrokms_bin, work, boot)
    s.start()
    return s


def make_client(endpoint, access_key, secret_key, region=REGION, service="kms", validate=True):
    cfg = Config(
        region_name=region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=HTTP_TIMEOUT,
        parameter_validation=validate,
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint, config=cfg)


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def error_type(self) -> Optional[str]:
        try:
            return self.json().get("__type")
        except ValueError:
            return None


def raw_request(
    endpoint: str,
    target: Optional[str],
    body,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    region: str = REGION,
    sign: bool = True,
    headers: Optional[dict] = None,
    content_type: str = "application/x-amz-json-1.1",
) -> RawResponse:
    """Sends one POST / to the server with http.client, optionally SigV4
    signed by botocore's signer (the same code boto3 uses)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    u = urlsplit(endpoint)
    assert u.hostname == "127.0.0.1", endpoint
    hdrs = {"Content-Type": content_type}
    if target is not None:
        hdrs["X-Amz-Target"] = target
    if sign:
        req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=dict(hdrs))
        SigV4Auth(Credentials(access_key, secret_key), "kms", region).add_auth(req)
        hdrs = dict(req.headers.items())
    if headers:
        hdrs.update(headers)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", "/", body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


# --- error assertions ---------------------------------------------------


def expect_error(fn: Callable, code: str, status: int = 400, message=None, **kwargs) -> ClientError:
    """Calls fn(**kwargs) and checks the AWS error it must raise: code,
    HTTP status, request id and (if given) the exact message."""
    with pytest.raises(ClientError) as ei:
        fn(**kwargs)
    err = ei.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status, err
    assert err["ResponseMetadata"].get("RequestId"), err
    if message is not None:
        if isinstance(message, re.Pattern):
            assert message.fullmatch(err["Error"].get("Message", "")), err
        else:
            assert err["Error"].get("Message") == message, err
    return ei.value


# --- fixtures -----------------------------------------------------------


@pytest.fixture(scope="session")
def ferrokms_bin() -> Path:
    p = ferrokms_bin_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.exit(
            f"ferrokms binary not found at {p}: build it with "
            "`CARGO_TARGET_DIR=$HOME/.cache/ferrokms-target cargo build --bin ferrokms` "
            "or set FERROKMS_BIN",
            returncode=2,
        )
    return p


# The test-only clock (`serve --test-clock`): moves the service clock
# forward and runs the periodic sweeps at once.
CLOCK = "TrentService.FerrokmsAdvanceClock"


def clock_server(ferrokms_bin: Path, work: Path) -> Server:
    """A started server on a fresh data dir in `work`, with the test clock."""
    return Server(ferrokms_bin, work, data_dir=work / "data", extra_args=["--test-clock"]).start()


def advance(srv: Server, seconds, **kwargs) -> dict:
    """Moves `srv`'s clock forward `seconds` (and sweeps); returns the answer."""
    r = srv.raw(CLOCK, {"Seconds": seconds}, **kwargs)
    assert r.status == 200, r.body
    return r.json()


@pytest.fixture
def server_factory(ferrokms_bin, tmp_path):
    """Starts servers for one test; stops them all afterwards."""
    started = []

    def make(data_dir: Optional[Path] = None, in_memory=False, dev=False, dev_account=None, start=True):
        work = Path(tempfile.mkdtemp(prefix="srv-", dir=tmp_path))
        if data_dir is None and not in_memory:
            data_dir = work / "data"
        s = Server(ferrokms_bin, work, data_dir, in_memory, dev, dev_account)
        started.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def srv(request, ferrokms_bin, tmp_path_factory):
    """The test module's own server, started once for the module and
    stopped after it. The module's ``SERVER`` says which:

    - ``"data"`` (the default): a secure server on a fresh data dir;
    - ``"dev"``: an in-memory ``--dev`` server (any 12-digit access key id
      is that account's root);
    - ``"clock"``: a data dir and the test clock (see ``clock_server``);
    - ``("two-account", OTHER, CREDENTIALS_FILE)``: a data dir whose
      bootstrap adds account OTHER (see ``two_account_server``).

    ``SERVER_ARGS`` (a list) adds arguments to ``serve``."""
    kind = getattr(request.module, "SERVER", "data")
    extra = list(getattr(request.module, "SERVER_ARGS", []))
    work = tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))
    if kind == "dev":
        s = Server(ferrokms_bin, work, in_memory=True, dev=True, extra_args=extra).start()
    elif kind == "clock":
        assert not extra, "SERVER_ARGS with a clock server"
        s = clock_server(ferrokms_bin, work)
    elif isinstance(kind, tuple) and kind[0] == "two-account":
        assert not extra, "SERVER_ARGS with a two-account server"
        s = two_account_server(ferrokms_bin, work, kind[1], kind[2])
    else:
        assert kind == "data", f"unknown SERVER {kind!r}"
        s = Server(ferrokms_bin, work, data_dir=work / "data", extra_args=extra).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ferrokms-session")


@pytest.fixture(scope="session")
def server(ferrokms_bin, session_tmp):
    """A secure (non-dev) server on a fresh data dir, shared by the session."""
    s = Server(ferrokms_bin, session_tmp, data_dir=session_tmp / "data")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def dev_server(ferrokms_bin, session_tmp):
    """An in-memory --dev server shared by the session: any 12-digit access
    key id is a fresh, empty account."""
    work = session_tmp / "dev"
    work.mkdir()
    s = Server(ferrokms_bin, work, in_memory=True, dev=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def kms(server):
    """boto3 KMS client of the secure server's default account (profile
    ferrokms from the credentials file the server wrote)."""
    return server.client()


@pytest.fixture
def kms_novalidate(server):
    """As `kms`, without botocore's client-side parameter validation, so the
    server's own validation is what answers."""
    return server.client(validate=False)


_used_accounts = set()


def fresh_account() -> str:
    while True:
        a = "".join(random.choice("0123456789") for _ in range(12))
        if a not in _used_accounts and a not in (DEFAULT_ACCOUNT, DEV_ACCOUNT):
            _used_accounts.add(a)
            return a


@dataclass
class Fresh:
    account: str
    client: object
    endpoint: str


@pytest.fixture
def fresh(dev_server) -> Fresh:
    """A client acting as the root of a brand-new account (dev server), for
    tests that need an empty key list."""
    acct = fresh_account()
    return Fresh(acct, dev_server.client(acct, "secret"), dev_server.endpoint)


@pytest.fixture
def key(kms):
    """A new enabled symmetric key; returns its KeyMetadata."""
    return kms.create_key(Description="e2e")["KeyMetadata"]


@pytest.fixture
def alias_name():
    return f"alias/e2e-{random.getrandbits(48):012x}"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def aws_cli_env(server, session_tmp):
    cfg = session_tmp / "aws-config-empty"
    cfg.write_text("")
    env = clean_env()
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(server.credentials_file),
        AWS_PROFILE="ferrokms",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_CONFIG_FILE=str(cfg),
        AWS_PAGER="",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture
def aws(aws_cli_env, tmp_path):
    """Runs the aws CLI (v1, from this venv) against the secure server."""

    def run(*args, env_extra=None, timeout=CLI_TIMEOUT) -> CliResult:
        env = dict(aws_cli_env)
        if env_extra:
            env.update(env_extra)
        p = subprocess.run(
            [sys.executable, "-m", "awscli", *map(str, args)],
            env=env,
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="module")
def A(srv):
    """An account of the module's server: the key owner's, in the
    authorization tests (`accounts.Account`)."""
    from accounts import Account

    return Account(srv, fresh_account())


@pytest.fixture(scope="module")
def B(srv):
    """Another account of the module's server: the attacker's, an external
    grantee's or a second owner's."""
    from accounts import Account

    return Account(srv, fresh_account())
