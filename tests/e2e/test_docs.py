"""The docs' commands, run (issue #25 item 14).

Runnable blocks: a fenced ```sh or ```bash block of README.md or docs/*.md
right after a line `<!-- doc-test -->` (or `<!-- doc-test serve: ARGS -->`)
is run with bash (`-euo pipefail`) in a fresh directory, against a server
this test starts there as
`ferrokms serve --listen 127.0.0.1:0 --data-dir ferrokms-data ARGS`, with
`ferrokms` and the venv's `aws` on PATH. The only change made to a block's
text is the port: `127.0.0.1:7300` becomes the test server's address. The
directory holds `examples/` (a link to the repository's), so blocks use the
paths a reader in a checkout would. A block fails the test when it exits
non-zero.

Every doc is also checked for flags: each `ferrokms SUBCOMMAND ... --flag`
in a code block or code span, and each flag in the first column of a table
under a heading naming `ferrokms SUBCOMMAND`, must be in that subcommand's
`--help`; each `FERROKMS_*` variable the docs name must be one the program
reads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from conftest import clean_env, local_server

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*doc-test(?:\s+serve:\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


def runnable_blocks():
    """(doc name, line, serve args, script) for every marked block."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = MARKER.match(lines[i])
            if not m:
                i += 1
                continue
            fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            assert fence and fence.group(1) in ("sh", "bash"), \
                f"{doc.name}:{i + 1}: a doc-test marker must be followed by a ```sh or ```bash block"
            end = i + 2
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            found.append((doc.name, i + 2, (m.group(1) or "").split(), "\n".join(lines[i + 2:end]) + "\n"))
            i = end + 1
    return found


BLOCKS = runnable_blocks()


def test_the_docs_have_runnable_blocks():
    names = {b[0] for b in BLOCKS}
    assert "README.md" in names, names
    assert len(BLOCKS) >= 5, BLOCKS


def doc_env(ferrokms_bin: Path, home: Path) -> dict:
    env = clean_env()
    # `ferrokms` on PATH under that name, whatever FERROKMS_BIN's file is called.
    bindir = home / "bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "ferrokms").exists():
        (bindir / "ferrokms").symlink_to(Path(ferrokms_bin).resolve())
    env["PATH"] = os.pathsep.join([str(bindir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["FERROKMS_LOG"] = "warn"
    # The aws CLI caches assumed-role credentials under ~/.aws/cli/cache: a
    # home of the test's own, so that no run sees another server's.
    env["HOME"] = str(home)
    return env


@pytest.mark.skipif(bool(conftest.PG_URL), reason="the docs' blocks use a SQLite data directory")
@pytest.mark.parametrize("doc,line,serve_args,script", BLOCKS, ids=[f"{b[0]}:{b[1]}" for b in BLOCKS])
def test_doc_block_runs(ferrokms_bin, tmp_path, doc, line, serve_args, script):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = doc_env(ferrokms_bin, tmp_path)
    env["AWS_CONFIG_FILE"] = str(tmp_path / "aws-config-unused")
    server = local_server(ferrokms_bin, tmp_path, "--data-dir", "ferrokms-data", *serve_args, env_extra=env)
    try:
        body = script.replace("127.0.0.1:7300", f"127.0.0.1:{server.port}")
        env.pop("AWS_CONFIG_FILE")
        p = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        assert p.returncode == 0, f"{doc}:{line} exited {p.returncode}\n--- block\n{body}--- stdout\n{p.stdout}--- stderr\n{p.stderr}"
    finally:
        server.stop()


# ------------------------------------------------------------------ flags


class Help:
    """`ferrokms ... --help`: subcommands and flags, cached."""

    def __init__(self, ferrokms_bin):
        self.bin = ferrokms_bin
        self.cache = {}

    def text(self, path: tuple) -> str:
        if path not in self.cache:
            p = subprocess.run([str(self.bin), *path, "--help"], capture_output=True, text=True,
                               env=clean_env(), timeout=30)
            assert p.returncode == 0, (path, p.stderr)
            self.cache[path] = p.stdout
        return self.cache[path]

    def subcommands(self, path: tuple) -> set:
        text = self.text(path)
        if "\nCommands:\n" not in text:
            return set()
        section = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
        return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z0-9-]*)\b", section, re.M)} - {"help"}

    def flags(self, path: tuple) -> set:
        return set(re.findall(r"--[a-z0-9][a-z0-9-]*", self.text(path)))

    def resolve(self, words: list) -> tuple:
        """The longest subcommand path that `words` starts with."""
        path = ()
        for w in words:
            if w in self.subcommands(path):
                path = path + (w,)
            else:
                break
        return path


def strip_fences(text: str) -> tuple:
    """(prose without fenced blocks, the fenced blocks' text)."""
    prose, code, inside = [], [], False
    for line in text.splitlines():
        if FENCE.match(line) or (inside and line.strip() == "```"):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    return "\n".join(prose), "\n".join(code)


# In a code line a command ends at a pipe, `;`, `&` or `)`; in a code span
# (a synopsis such as `--kind key|identity|trust`) only at the span's end.
COMMAND = re.compile(r"(?<![\w/.$-])ferrokms((?:[ \t]+[^\s|;&`)]+)+)")
SPAN_COMMAND = re.compile(r"(?<![\w/.$-])ferrokms((?:[ \t]+[^\s`]+)+)")


def doc_commands(text: str):
    """Every `ferrokms WORDS...` in code: fenced blocks (with backslash
    continuations joined) and code spans (which may wrap lines)."""
    prose, code = strip_fences(text)
    code = code.replace("\\\n", " ")
    spans = [s.replace("\n", " ") for s in re.findall(r"`([^`]+)`", prose)]
    for pattern, chunks in ((COMMAND, code.splitlines()), (SPAN_COMMAND, spans)):
        for chunk in chunks:
            for m in pattern.finditer(chunk):
                yield m.group(0), [w.strip("[]") for w in m.group(1).split()]


# Hidden from --help on purpose (tests and benchmarks only), documented as such.
HIDDEN = {("serve",): {"--test-clock"}}


def test_every_flag_the_docs_give_a_subcommand_is_in_its_help(ferrokms_bin):
    help = Help(ferrokms_bin)
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        for whole, words in doc_commands(text):
            path = help.resolve(words)
            if not path:
                continue
            known = help.flags(path) | HIDDEN.get(path, set())
            for w in words[len(path):]:
                flag = w.split("=", 1)[0].rstrip(",.:")
                if re.fullmatch(r"--[a-z0-9][a-z0-9-]*", flag) and flag not in known:
                    missing.append(f"{doc.name}: `{whole.strip()}`: {flag} is not in `ferrokms {' '.join(path)} --help`")
        # Tables under a heading that names a subcommand (README's
        # "## `ferrokms serve`"): their first column's flags.
        path = ()
        for line in text.splitlines():
            h = re.match(r"^#+\s+(.*)$", line)
            if h:
                m = re.search(r"ferrokms ([a-z][a-z -]*)", h.group(1))
                path = help.resolve(m.group(1).split()) if m else ()
                continue
            if path and line.startswith("|"):
                first = line.split("|")[1]
                for flag in re.findall(r"--[a-z0-9][a-z0-9-]*", first):
                    if flag not in help.flags(path):
                        missing.append(f"{doc.name}: table under `ferrokms {' '.join(path)}`: {flag} is not in its --help")
    assert not missing, "\n".join(missing)


def test_every_ferrokms_variable_the_docs_name_is_read_by_the_program(ferrokms_bin):
    sources = []
    for d in ("crates", "tests", "scripts", "bench"):
        for p in (ROOT / d).rglob("*"):
            if p.suffix in (".rs", ".py", ".sh") and p.is_file() and p.name != "test_docs.py":
                sources.append(p.read_text(errors="replace"))
    program = "\n".join(sources)
    unknown = []
    for doc in DOCS:
        for name in sorted(set(re.findall(r"\bFERROKMS_[A-Z0-9_]*[A-Z0-9]\b", doc.read_text()))):
            if name not in program:
                unknown.append(f"{doc.name}: {name}")
    assert not unknown, "variables no code reads:\n" + "\n".join(unknown)
