"""Network fault injection for the several-node tests (test_partitions.py).

What this machine's kernel offers, and what stands in for the rest:

* ``ip netns`` and veth pairs work (as root): every ferrokms node runs in a
  network namespace of its own (``ip netns exec NS ferrokms serve ...``)
  with two veth pairs of the tests' making, one for its clients and one for
  its database link, on addresses 10.231.x.y/24. IPv4 forwarding stays off
  in the root namespace and a namespace has routes only to its own two
  /24s, so the nodes cannot reach each other at all.
* ``tc qdisc ... netem`` is absent (the ``sch_netem`` module is not in the
  CI kernel: "Specified qdisc kind is unknown"), and neither iptables nor
  nft is installed. So latency and loss are injected by :class:`FaultProxy`,
  a userspace TCP proxy (asyncio, in a thread of the test process) that sits
  between a node and PostgreSQL. It delays every chunk by a fixed time
  (order kept), holds a chunk back for an extra retransmission timeout with
  probability ``stall_p`` (what a lost segment costs TCP), resets a
  connection with probability ``reset_p`` per chunk, and can "blackhole":
  stop reading and writing while keeping both sockets open, which is what a
  partition looks like to TCP on both ends. Partitions are also made in the
  kernel with ``ip link set DEV down`` on the node's database link.

The PostgreSQL of the suite listens on 127.0.0.1 in the root namespace; the
proxy listens on the root side of each node's database link and forwards
to it, so it also is how the namespaces reach PostgreSQL.

Everything made here is removed by :meth:`Network.close` (called from
fixture finalizers), and names carry a random run id.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

IP = shutil.which("ip") or "/usr/sbin/ip"


def run(*args, check=True, timeout=10) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, timeout=timeout, capture_output=True, text=True)


def netns_unavailable() -> Optional[str]:
    """Why this machine cannot run the suite, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth)"
    if not os.path.exists(IP):
        return "needs iproute2 (ip)"
    name = f"fkprobe{random.getrandbits(24):06x}"
    try:
        r = run(IP, "netns", "add", name, check=False)
        if r.returncode != 0:
            return f"`ip netns add` fails here: {r.stderr.strip()}"
        r = run(IP, "netns", "exec", name, IP, "link", "set", "lo", "up", check=False)
        if r.returncode != 0:
            return f"`ip netns exec` fails here: {r.stderr.strip()}"
    finally:
        run(IP, "netns", "del", name, check=False)
    return None


# --- namespaces ---------------------------------------------------------


@dataclass
class Link:
    """One veth pair: `host` in the root namespace (address .1), `inner`
    in the node's namespace (address .2)."""

    host: str
    inner: str
    net: int  # the third octet of 10.231.net.0/24

    @property
    def host_ip(self) -> str:
        return f"10.231.{self.net}.1"

    @property
    def inner_ip(self) -> str:
        return f"10.231.{self.net}.2"


@dataclass
class Namespace:
    name: str
    client: Link  # the node listens here; the tests' clients come this way
    db: Link  # the node reaches PostgreSQL (through its proxy) this way

    def exec_prefix(self) -> list:
        return [IP, "netns", "exec", self.name]

    def db_link(self, up: bool):
        """The kernel-level partition from PostgreSQL: the node's side of
        its database link down (nothing is sent or answered, no RST)."""
        run(IP, "-n", self.name, "link", "set", self.db.inner, "up" if up else "down")
        if up:
            # The address route comes back with the link.
            self._wait_carrier(self.db)

    def _wait_carrier(self, link: Link, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = run(IP, "-n", self.name, "-o", "addr", "show", "dev", link.inner, check=False)
            if "tentative" not in r.stdout and link.inner_ip in r.stdout:
                return
            time.sleep(0.05)

    def can_connect(self, ip: str, port: int, timeout=1.0) -> bool:
        """Whether a TCP connection from inside this namespace reaches
        ip:port (bash's /dev/tcp, run in the namespace)."""
        r = run(
            *self.exec_prefix(),
            "timeout", str(timeout), "bash", "-c", f"exec 3<>/dev/tcp/{ip}/{port}",
            check=False, timeout=timeout + 5,
        )
        return r.returncode == 0


class Network:
    """The namespaces and links of one test; `close` removes them all."""

    def __init__(self):
        self.run_id = f"{random.getrandbits(20):05x}"
        # Third octets for this run: a random block of 16 (two per node).
        self.base = random.randrange(0, 15) * 16 + 16
        self.namespaces: list[Namespace] = []
        self.proxies: list[FaultProxy] = []

    def add_namespace(self) -> Namespace:
        i = len(self.namespaces)
        assert i < 8
        name = f"fkms-{self.run_id}-{i}"
        client = Link(f"fk{self.run_id}c{i}", "eth-client", self.base + 2 * i)
        db = Link(f"fk{self.run_id}d{i}", "eth-db", self.base + 2 * i + 1)
        for link in (client, db):
            # A leftover of another run on the same /24 would route our
            # traffic elsewhere: refuse rather than guess.
            r = run(IP, "-o", "addr", "show", "to", f"10.231.{link.net}.0/24", check=False)
            if r.stdout.strip():
                raise RuntimeError(f"10.231.{link.net}.0/24 is already in use here: {r.stdout}")
        run(IP, "netns", "add", name)
        ns = Namespace(name, client, db)
        self.namespaces.append(ns)
        run(IP, "-n", name, "link", "set", "lo", "up")
        for link in (client, db):
            run(IP, "link", "add", link.host, "type", "veth", "peer", "name", link.inner, "netns", name)
            run(IP, "addr", "add", f"{link.host_ip}/24", "dev", link.host)
            run(IP, "link", "set", link.host, "up")
            run(IP, "-n", name, "addr", "add", f"{link.inner_ip}/24", "dev", link.inner)
            run(IP, "-n", name, "link", "set", link.inner, "up")
            ns._wait_carrier(link)
        return ns

    def proxy(self, listen_ip: str, upstream: tuple) -> "FaultProxy":
        p = FaultProxy(listen_ip, upstream)
        p.start()
        self.proxies.append(p)
        return p

    def close(self):
        for p in self.proxies:
            p.stop()
        for ns in self.namespaces:
            # Deleting the namespace deletes its ends of the veth pairs,
            # and with them the host ends.
            run(IP, "netns", "del", ns.name, check=False)
            for link in (ns.client, ns.db):
                run(IP, "link", "del", link.host, check=False)
        self.namespaces.clear()


# --- the fault proxy -----------------------------------------------------


class FaultProxy:
    """A TCP proxy from listen_ip:port to `upstream`, with faults.

    Knobs (set from any thread; they apply to the next chunk):
      delay_ms   fixed delay added to every chunk, each direction
      stall_p    probability that a chunk is held back `stall_ms` more
                 (a lost segment and its retransmission)
      reset_p    probability, per chunk, that the connection is reset
      blackhole  `partition()` / `heal()`: stop moving bytes, sockets open
    """

    def __init__(self, listen_ip: str, upstream: tuple):
        self.listen_ip = listen_ip
        self.upstream = upstream
        self.port = 0
        self.delay_ms = 0.0
        self.stall_p = 0.0
        self.stall_ms = 300.0
        self.reset_p = 0.0
        self.resets = 0
        self.stalls = 0
        self.connections = 0
        self._rng = random.Random()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._flowing: Optional[asyncio.Event] = None
        self._server = None
        self._writers: set = set()
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()

    # control, from the test's threads

    def start(self):
        self._thread = threading.Thread(target=self._main, name=f"proxy-{self.listen_ip}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")

    def partition(self):
        self._call(lambda: self._flowing.clear())

    def heal(self):
        self._call(lambda: self._flowing.set())

    def clear_faults(self):
        self.delay_ms = 0.0
        self.stall_p = 0.0
        self.reset_p = 0.0
        self.heal()

    def reset_all(self):
        """Resets every open connection at once (RST both ways)."""
        self._call(self._reset_all)

    def stop(self):
        if self._loop is None:
            return
        try:
            self._call(self._shutdown)
        except RuntimeError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _call(self, fn):
        done = threading.Event()

        def wrapped():
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(wrapped)
        if not done.wait(10):
            raise RuntimeError("the fault proxy is stuck")

    # the proxy itself, on its own event loop

    def _main(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._flowing = asyncio.Event()
        self._flowing.set()

        async def boot():
            self._server = await asyncio.start_server(self._handle, self.listen_ip, 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(boot())
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _shutdown(self):
        if self._server is not None:
            self._server.close()
        self._reset_all()
        self._flowing.set()
        self._loop.call_later(0.2, self._loop.stop)

    def _reset_all(self):
        for w in list(self._writers):
            self._rst(w)

    def _rst(self, writer):
        sock = writer.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        writer.transport.abort()
        self._writers.discard(writer)

    async def _handle(self, down_r, down_w):
        self.connections += 1
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (OSError, asyncio.TimeoutError):
            self._rst(down_w)
            return
        self._writers.update((down_w, up_w))
        pair = (down_w, up_w)
        await asyncio.gather(
            self._pipe(down_r, up_w, pair), self._pipe(up_r, down_w, pair), return_exceptions=True
        )
        for w in pair:
            if w in self._writers:
                self._writers.discard(w)
                w.close()

    async def _pipe(self, reader, writer, pair):
        """Moves one direction: a reader task stamps each chunk with its
        delivery time, the writer delivers them in order."""
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver():
            while True:
                item = await queue.get()
                if item is None:
                    return
                at, data = item
                while True:
                    await self._flowing.wait()
                    left = at - loop.time()
                    if left <= 0:
                        break
                    await asyncio.sleep(left)
                if writer not in self._writers:
                    return
                writer.write(data)
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    return

        sender = asyncio.ensure_future(deliver())
        last = 0.0
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if self.reset_p and self._rng.random() < self.reset_p:
                    self.resets += 1
                    for w in pair:
                        self._rst(w)
                    break
                extra = 0.0
                if self.stall_p and self._rng.random() < self.stall_p:
                    self.stalls += 1
                    extra = self.stall_ms / 1000
                at = max(loop.time() + self.delay_ms / 1000 + extra, last)
                last = at
                queue.put_nowait((at, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait(None)
            try:
                await sender
            except Exception:
                pass
            if writer in self._writers:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
