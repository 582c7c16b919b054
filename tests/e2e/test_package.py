"""The Debian package built by scripts/release.sh, installed and run.

The script packages the binary under test (``FERROKMS_BIN``, normally the
debug build of this test run) with ``--binary``, instead of the release
build it makes by default (~5 minutes), and without compression: what is
tested is the packaging, not the optimiser or xz. Then, on this machine:

* the package's files, modes, owners, conffiles and dependencies
  (``dpkg-deb -c`` / ``-I``; every dependency must be a package installed
  here, on Debian bookworm, at a version that satisfies it);
* ``dpkg -i`` (twice: the second run is postinst's upgrade path), then the
  system user, the data dir and the config's owner and mode;
* ``systemd-analyze verify`` on the installed unit, when the tool exists;
* the INSTALLED binary, started the way the unit starts it: systemd does
  not run in these machines, so the test reads ExecStart, User, Group,
  UMask, StateDirectory and NoNewPrivileges from the installed unit and
  runs that command line with ``setpriv`` as that user, with the state dir
  the unit would have systemd create, and a copy of the installed config
  that differs only in ``listen`` (port 0, a free port, not 7300);
* the aws CLI of the test venv against it (create-key, encrypt, decrypt)
  with the credentials file the server wrote in its data dir;
* ``dpkg -r``, then ``dpkg --purge``: the user, group, config and mode
  override go; the data dir stays (deliberately: docs/deployment.md); the
  test deletes it and leaves the machine as it found it.

It needs root and dpkg (skipped otherwise) and runs once per CI run: it is
skipped on the PostgreSQL pass of scripts/test.sh (FERROKMS_TEST_PG_URL),
since it tests no storage. A ferrokms package, user or directory that a
previous run of this test did not leave (no marker file in ~/.cache) makes
it skip rather than touch them; what a killed previous run left is cleaned
up first, so the test passes run after run. Runs on one machine at once
take turns (a lock file in ~/.cache).
"""

from __future__ import annotations

import base64
import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PG_URL, REGION, Server, clean_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "release.sh"
PACKAGE = "ferrokms"
USER = "ferrokms"
UNIT = Path("/lib/systemd/system/ferrokms.service")
CONFIG = Path("/etc/ferrokms/ferrokms.toml")
STATE = Path("/var/lib/ferrokms")
INSTALLED_BIN = Path("/usr/bin/ferrokms")
# Written before anything is installed, removed once all is cleaned up: a
# run that finds it knows that what is installed was left by a killed run.
MARKER = Path.home() / ".cache" / "ferrokms-e2e-package.json"
LOCK = Path.home() / ".cache" / "ferrokms-e2e-package.lock"
LOCK_WAIT = 180
TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(
        bool(PG_URL),
        reason="the package test runs once per CI run, on the SQLite pass (FERROKMS_TEST_PG_URL is set)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="installing a package needs root"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("dpkg", "dpkg-deb", "dpkg-statoverride", "dpkg-query")),
        reason="needs dpkg (a Debian system)",
    ),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("objdump", "strip", "setpriv")),
        reason="needs objdump and strip (binutils) and setpriv (util-linux)",
    ),
]


def run(*args, check=True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        check=check,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def package_status() -> str:
    """dpkg's status of the package ("installed", "config-files", ...), or
    "" when dpkg does not know it."""
    p = run("dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE, check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def group_exists() -> bool:
    try:
        grp.getgrnam(USER)
        return True
    except KeyError:
        return False


def statoverride() -> str:
    p = run("dpkg-statoverride", "--list", CONFIG, check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def leftovers() -> list:
    found = []
    if package_status() not in ("", "not-installed"):
        found.append(f"package {PACKAGE} ({package_status()})")
    if user_exists():
        found.append(f"user {USER}")
    if group_exists():
        found.append(f"group {USER}")
    for p in (STATE, CONFIG.parent, INSTALLED_BIN, UNIT):
        if p.exists():
            found.append(str(p))
    if statoverride():
        found.append(f"dpkg-statoverride of {CONFIG}")
    return found


def read_marker() -> dict:
    try:
        return json.loads(MARKER.read_text())
    except (OSError, ValueError):
        return {}


def write_marker(**fields):
    data = read_marker()
    data.update(fields)
    MARKER.parent.mkdir(parents=True, exist_ok=True)
    MARKER.write_text(json.dumps(data))


def kill_recorded_server(pid):
    """SIGKILL the server a killed run started, by its recorded pid, if
    that pid is still the installed ferrokms running as its user."""
    if not isinstance(pid, int) or pid <= 1:
        return
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return
    if exe.removesuffix(" (deleted)") != str(INSTALLED_BIN):
        return
    if not user_exists() or uid != pwd.getpwnam(USER).pw_uid:
        return
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)


def clean_up():
    """Undo everything this test installs or starts (also what a killed
    run left, as its marker records)."""
    marker = read_marker()
    kill_recorded_server(marker.get("server_pid"))
    if package_status():
        run("dpkg", "--purge", PACKAGE)
    shutil.rmtree(STATE, ignore_errors=True)
    if marker.get("config_dir"):
        shutil.rmtree(marker["config_dir"], ignore_errors=True)
    # Only if purge did not (e.g. a run killed inside dpkg).
    if user_exists():
        run("userdel", USER)
    if group_exists():
        run("groupdel", USER)
    if statoverride():
        run("dpkg-statoverride", "--remove", CONFIG)
    MARKER.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def machine():
    """This machine without any ferrokms package: cleans what a killed run
    of this test left; skips when something else installed ferrokms.

    Runs of this test on one machine (test suites of several checkouts at
    once) take turns: they would install the same package. The lock is
    the kernel's (flock), so a killed run does not hold it."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"another run of the package test held {LOCK} for {LOCK_WAIT} s")
                time.sleep(0.5)
        found = leftovers()
        if found and not MARKER.exists():
            pytest.skip(f"ferrokms is on this machine, not installed by this test ({', '.join(found)}): not touching it")
        clean_up()
        assert leftovers() == []
        yield
        clean_up()
        assert leftovers() == [], "the test left ferrokms behind"


@dataclass
class Built:
    deb: Path
    out: str
    glibc: str


@pytest.fixture(scope="module")
def built(ferrokms_bin, tmp_path_factory) -> Built:
    out = tmp_path_factory.mktemp("release")
    p = run("bash", SCRIPT, "--binary", ferrokms_bin, "--out", out, "--compression", "none", check=False, cwd=REPO)
    assert p.returncode == 0, f"release.sh failed:\n{p.stdout}\n{p.stderr}"
    debs = list(out.glob("*.deb"))
    assert len(debs) == 1, debs
    m = re.search(r"^glibc floor: (\d+\.\d+) ", p.stdout, re.M)
    assert m, p.stdout
    return Built(debs[0], p.stdout, m.group(1))


def control_fields(deb: Path) -> dict:
    text = run("dpkg-deb", "-f", deb).stdout
    fields, key = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def version_tuple(v: str) -> tuple:
    return tuple(int(x) for x in v.split("."))


def test_release_script_writes_a_stripped_binary_and_checksums(built, ferrokms_bin):
    version = run(ferrokms_bin, "--version").stdout
    arch = {"amd64": "x86_64", "arm64": "aarch64"}[run("dpkg", "--print-architecture").stdout.strip()]
    plain = built.deb.parent / f"ferrokms-{version.split()[1]}-linux-{arch}"
    assert run(plain, "--version").stdout == version
    assert ".debug_info" in run("objdump", "-h", ferrokms_bin).stdout
    assert ".debug_info" not in run("objdump", "-h", plain).stdout
    assert plain.stat().st_size < ferrokms_bin.stat().st_size
    checked = run("sha256sum", "-c", "SHA256SUMS", cwd=built.deb.parent).stdout.split("\n")
    assert sorted(line for line in checked if line) == sorted([f"{plain.name}: OK", f"{built.deb.name}: OK"])


def test_release_script_checks_the_glibc_floor_the_docs_state(built, ferrokms_bin):
    floor = re.search(r"^GLIBC_FLOOR=(\d+\.\d+)$", SCRIPT.read_text(), re.M).group(1)
    # What the script printed is what objdump finds in the binary.
    versions = re.findall(r"GLIBC_(\d+(?:\.\d+)+)", run("objdump", "-T", ferrokms_bin).stdout)
    assert built.glibc == max(versions, key=version_tuple)
    assert version_tuple(built.glibc) <= version_tuple(floor)
    assert f"glibc {floor}" in (REPO / "docs" / "deployment.md").read_text()
    assert f"libc6 (>= {built.glibc})" in control_fields(built.deb)["Depends"]


def test_package_contents(built, ferrokms_bin):
    # dpkg-deb -c: tar's listing, "MODE OWNER/GROUP SIZE DATE TIME ./PATH".
    entries = {}
    for line in run("dpkg-deb", "-c", built.deb).stdout.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        entries[path.removeprefix(".")] = (mode, owner)
    assert all(owner == "root/root" for _, owner in entries.values()), entries
    files = {p: mode for p, (mode, _) in entries.items() if not mode.startswith("d")}
    docs = {
        f"/usr/share/doc/ferrokms/{name}": "-rw-r--r--"
        for name in (
            "copyright", "changelog.Debian.gz", "README.md.gz", "deployment.md.gz", "operations.md.gz",
            "identity.md.gz", "authorization.md.gz", "audit.md.gz", "keys.md.gz",
        )
    }
    assert files == {
        "/usr/bin/ferrokms": "-rwxr-xr-x",
        "/lib/systemd/system/ferrokms.service": "-rw-r--r--",
        "/etc/ferrokms/ferrokms.toml": "-rw-r--r--",
        **docs,
    }
    assert all(mode == "drwxr-xr-x" for mode in (m for m, _ in entries.values() if m.startswith("d")))

    fields = control_fields(built.deb)
    version = run(ferrokms_bin, "--version").stdout.split()[1]
    assert fields["Package"] == PACKAGE
    assert re.fullmatch(re.escape(version) + r"-\d+", fields["Version"]), fields["Version"]
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    assert fields["Maintainer"] and fields["Description"]
    # Every dependency is a package of this Debian (bookworm) system, at a
    # version that satisfies it.
    release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    deps = [d.strip() for d in fields["Depends"].split(",")]
    assert {re.match(r"[a-z0-9.+-]+", d).group(0) for d in deps} == {"adduser", "libc6", "libgcc-s1"}
    for dep in deps:
        m = re.fullmatch(r"([a-z0-9.+-]+)(?: \((>=) ([^)]+)\))?", dep)
        assert m, dep
        have = run("dpkg-query", "-W", "-f=${Version}", m.group(1), check=False)
        assert have.returncode == 0 and have.stdout, (
            f"{m.group(1)} is not a package installed on this {release.get('VERSION_CODENAME')} system"
        )
        if m.group(2):
            run("dpkg", "--compare-versions", have.stdout, "ge", m.group(3))

    # The control archive: conffiles, scripts, checksums.
    control = Path(tempfile.mkdtemp(prefix="ferrokms-control-"))
    try:
        run("dpkg-deb", "-e", built.deb, control / "DEBIAN")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (control / "DEBIAN").iterdir()}
        assert modes == {
            "control": 0o644, "conffiles": 0o644, "md5sums": 0o644,
            "postinst": 0o755, "prerm": 0o755, "postrm": 0o755,
        }
        assert (control / "DEBIAN" / "conffiles").read_text().split() == [str(CONFIG)]
        summed = {line.split()[1] for line in (control / "DEBIAN" / "md5sums").read_text().splitlines()}
        assert summed == {p.lstrip("/") for p in files}
        for script in ("postinst", "prerm", "postrm"):
            run("sh", "-n", control / "DEBIAN" / script)
    finally:
        shutil.rmtree(control)


@dataclass
class Unit:
    """The [Service] settings of a unit file (a key given twice keeps both)."""

    settings: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Unit":
        unit, section = cls(), None
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                key, _, value = line.partition("=")
                unit.settings.setdefault(key.strip(), []).append(value.strip())
        return unit

    def one(self, key: str) -> str:
        values = self.settings.get(key, [])
        assert len(values) == 1, f"{key}: {values}"
        return values[0]


def yes(value: str) -> bool:
    return value.lower() in ("yes", "true", "on", "1")


@dataclass
class UnitServer(Server):
    """The installed binary, started with the unit's command line."""

    command: list = field(default_factory=list)

    def args(self) -> list:
        return [*self.launcher, *self.command]


def test_install_run_as_the_unit_does_and_purge(machine, built, ferrokms_bin, tmp_path):
    write_marker(deb=str(built.deb))
    run("dpkg", "-i", built.deb)
    # Again: postinst's upgrade path, with the user and override in place.
    run("dpkg", "-i", built.deb)
    assert package_status() == "installed"
    assert run(INSTALLED_BIN, "--version").stdout == run(ferrokms_bin, "--version").stdout
    assert "--config" in run(INSTALLED_BIN, "serve", "--help").stdout

    # The system user and group; the data dir and config as the unit and
    # postinst make them.
    user = pwd.getpwnam(USER)
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin" and user.pw_dir == str(STATE)
    assert grp.getgrgid(user.pw_gid).gr_name == USER
    st = STATE.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, user.pw_gid, 0o700)
    st = CONFIG.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, user.pw_gid, 0o640)
    assert statoverride() == f"root {USER} 640 {CONFIG}"

    if shutil.which("systemd-analyze"):
        p = run("systemd-analyze", "verify", UNIT, check=False)
        assert p.returncode == 0 and "ferrokms" not in p.stdout + p.stderr, p.stdout + p.stderr
        # The exposure score docs/deployment.md quotes (systemd >= 250 rates
        # a unit file offline).
        p = run("systemd-analyze", "security", "--offline=true", UNIT, check=False)
        m = re.search(r"Overall exposure level for ferrokms\.service: (\d+\.\d+)", p.stdout)
        if m:
            assert float(m.group(1)) <= 1.5, p.stdout
        else:
            print(f"systemd-analyze security --offline: no score ({p.stderr.strip()})")
    else:
        print("systemd-analyze not installed: unit not verified")

    unit = Unit.read(UNIT)
    assert unit.one("User") == USER and unit.one("Group") == USER
    assert unit.one("StateDirectory") == STATE.name and unit.one("StateDirectoryMode") == "0700"
    command = shlex.split(unit.one("ExecStart"))
    assert command[0] == str(INSTALLED_BIN) and command[1] == "serve"
    assert command[command.index("--config") + 1] == str(CONFIG)
    for option in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert yes(unit.one(option)), option
    assert unit.one("ProtectSystem") == "strict" and unit.one("CapabilityBoundingSet") == ""

    # The installed config, with only the listener moved to a free port.
    installed = tomllib.loads(CONFIG.read_text())
    assert installed["listen"] == "127.0.0.1:7300" and installed["data-dir"] == str(STATE)
    text, n = re.subn(r'(?m)^listen = "127\.0\.0\.1:7300"$', 'listen = "127.0.0.1:0"', CONFIG.read_text())
    assert n == 1
    assert {**tomllib.loads(text), "listen": installed["listen"]} == installed
    config_dir = Path(tempfile.mkdtemp(prefix="ferrokms-package-test-"))
    write_marker(config_dir=str(config_dir))
    config_dir.chmod(0o755)
    (config_dir / "ferrokms.toml").write_text(text)
    # As the installed one: readable by the service through its group only.
    os.chown(config_dir / "ferrokms.toml", 0, user.pw_gid)
    (config_dir / "ferrokms.toml").chmod(0o640)
    command[command.index("--config") + 1] = str(config_dir / "ferrokms.toml")

    # As systemd would: the unit's user, group and its supplementary groups,
    # no new privileges, no capabilities, the unit's umask, an environment
    # of its own.
    launcher = [
        "setpriv", f"--reuid={unit.one('User')}", f"--regid={unit.one('Group')}", "--init-groups",
        "--inh-caps=-all", "--bounding-set=-all",
    ]
    if yes(unit.one("NoNewPrivileges")):
        launcher.append("--no-new-privs")
    launcher += [
        "--", "env", "-i", f"HOME={STATE}", f"USER={USER}", f"LOGNAME={USER}",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "sh", "-c", f'umask {unit.one("UMask")} && exec "$@"', "sh",
    ]
    srv = UnitServer(INSTALLED_BIN, config_dir, data_dir=STATE, launcher=launcher, command=command)
    srv.start()
    try:
        write_marker(server_pid=srv.proc.pid)
        status = Path(f"/proc/{srv.proc.pid}/status").read_text()
        assert os.readlink(f"/proc/{srv.proc.pid}/exe") == str(INSTALLED_BIN)
        assert re.search(rf"^Uid:\s+{user.pw_uid}\s+{user.pw_uid}\s+{user.pw_uid}\s+{user.pw_uid}$", status, re.M)
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
        assert re.search(r"^CapBnd:\s+0+$", status, re.M)
        assert srv.port != 7300

        # What it wrote: the service's alone.
        for name in ("root.key", "credentials", "ferrokms.sqlite"):
            st = (STATE / name).stat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o600), name

        aws = Path(sys.executable).parent / "aws"
        aws_config = tmp_path / "aws-config"
        aws_config.write_text("")
        env = clean_env()
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(STATE / "credentials"),
            AWS_PROFILE="ferrokms",
            AWS_ENDPOINT_URL=srv.endpoint,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(aws_config),
            AWS_PAGER="",
            AWS_EC2_METADATA_DISABLED="true",
        )

        def cli(*args) -> str:
            p = run(aws, "kms", *args, "--output", "text", env=env, cwd=tmp_path, check=False)
            assert p.returncode == 0, p.stderr
            return p.stdout.strip()

        key_id = cli("create-key", "--description", "package test", "--query", "KeyMetadata.KeyId")
        plaintext = os.urandom(48)
        (tmp_path / "plain").write_bytes(plaintext)
        blob = cli("encrypt", "--key-id", key_id, "--plaintext", "fileb://plain", "--query", "CiphertextBlob")
        (tmp_path / "blob").write_bytes(base64.b64decode(blob))
        out = cli("decrypt", "--ciphertext-blob", "fileb://blob", "--query", "[KeyId,Plaintext]")
        arn, back = out.split("\t")
        assert arn.endswith(f":key/{key_id}")
        assert base64.b64decode(back) == plaintext
    finally:
        code = srv.stop()
    assert code == 0, srv.stderr_text()[-2000:]

    # remove: the program goes; the config, the user and the data stay.
    run("dpkg", "-r", PACKAGE)
    assert package_status() == "config-files"
    assert not INSTALLED_BIN.exists() and not UNIT.exists()
    assert CONFIG.exists() and user_exists() and (STATE / "root.key").exists()

    # purge: the config, its override, the user and group go; the data
    # dir (root key, key material) stays, as docs/deployment.md says.
    p = run("dpkg", "--purge", PACKAGE)
    assert f"kept {STATE}" in p.stderr
    assert package_status() in ("", "not-installed")
    assert not CONFIG.parent.exists()
    assert not statoverride() and not user_exists() and not group_exists()
    assert (STATE / "root.key").exists() and (STATE / "ferrokms.sqlite").exists()
    # The rest is the machine's clean-up (the `machine` fixture).
