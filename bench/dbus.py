"""The D-Bus API under load: 1000 VRRPv3 instances (advert_int 0.1 s), hakeeper vs keepalived.

Lab: a master M and a capture node C. M carries the instances the way bench/scale.py lays
them out: 250 per segment (VRID 1..250 on eth0, eth1...), one VIP each
(198.19.<segment>.<vrid>/32), priority 200, no peer, so every instance is MASTER. C sits on
the first segment only. Each daemon gets its own private system-like dbus-daemon
(tests/lab/dbusbus.PrivateBus, the project's bus policy); hakeeper runs with enable_dbus, so
it serves org.hakeeper.Hakeeper1 and keepalived's org.keepalived.Vrrp1 at once. The daemons
run one after the other, never together.

Measured, with a dbus-fast client in this process (one connection, calls one at a time):

  (a) hakeeper: `hakeeperctl --bus ADDRESS show instances` wall time (a subprocess, as a
      user runs it) beside the parts of it: interpreter start (`hakeeperctl completion
      bash`), connecting to the bus, the ListInstances call; GetManagedObjects latency and
      reply size; Properties.GetAll of one instance; State of every instance read one by one
      (N Properties.Get calls), per instance.
  (b) State of every instance through keepalived's objects (org.keepalived.Vrrp1: one Get
      per instance object is all keepalived offers), from keepalived 2.2.7 and from
      hakeeper's compat objects: per instance with the same client, and with one
      `busctl get-property` process per instance for a subset (the issue's reference:
      keepalived took 2.4 ms per instance with busctl).
  (c) hakeeper's advert spacing while a client hammers the bus: C captures the adverts of
      one master instance (VRID 1 on eth0; tcpdump, kernel timestamps, BPF-filtered) for
      --seconds, once with no client (baseline), once while another process calls
      ListInstances back to back, once with GetManagedObjects (bounded in count and time).

Run from the repo root as root:  .venv/bin/python bench/dbus.py [--instances 1000]
It prints figures; it never fails because something is slow (exit status != 0 only when
the lab could not be built or driven).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from bench.jitter import capture as jitter_capture
from bench.jitter import host_busy, proc_times
from bench.scale import tree
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import VENV_BIN, Daemon, start_daemon
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import Lab, LabError, Node, ip_netns_list

PER_SEGMENT = 250  # a VRID is per interface: 250 instances per segment, as bench/scale.py
PRIORITY = 200
ADV = 0.1  # s
TOLERANCE = 0.005  # s: the "within 5 ms of nominal"
GAP = 1.5 * ADV
CAPTURE_VRID = 1  # the master instance whose adverts C captures (on eth0)
CLK_TCK = os.sysconf("SC_CLK_TCK")

HK_NAME = "org.hakeeper.Hakeeper1"
HK_ROOT = "/org/hakeeper/Hakeeper1"
HK_MANAGER = "org.hakeeper.Hakeeper1.Manager"
HK_INSTANCE = "org.hakeeper.Hakeeper1.Instance"
KA_NAME = "org.keepalived.Vrrp1"
KA_INSTANCE = "org.keepalived.Vrrp1.Instance"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
HAMMERS = {  # member -> (path, interface) of the call a hammering client repeats
    "ListInstances": (HK_ROOT, HK_MANAGER),
    "GetManagedObjects": (HK_ROOT, OM),
}


# -- the lab's config -----------------------------------------------------------------------


def layout(n: int) -> list[tuple[int, int]]:
    """(segment, vrid) of each instance: 250 per segment, VRID 1..250."""
    return [(i // PER_SEGMENT, i % PER_SEGMENT + 1) for i in range(n)]


def master_instances(n: int) -> list[str]:
    """The n VRRPv3 instances of the scaled lab, all MASTER (no peer), one VIP each."""
    return [
        vrrp_instance(
            f"VI_{seg}_{vrid}", interface=f"eth{seg}", vrid=vrid, priority=PRIORITY,
            vips=(f"198.19.{seg}.{vrid}/32",), advert_int=ADV, version=3,
        )
        for seg, vrid in layout(n)
    ]  # fmt: skip


def scaled_lab(lab: Lab, n: int) -> tuple[Node, Node]:
    """M on as many segments as n instances need (eth0 on "lan"), C on "lan" only."""
    segs = ["lan"]
    for i in range(1, math.ceil(n / PER_SEGMENT)):
        lab.add_segment(f"s{i}")
        segs.append(f"s{i}")
    return lab.add_node("M", segments=segs), lab.add_node("C")


def config(n: int) -> str:
    return keepalived_conf(*master_instances(n), global_extra="    enable_dbus\n")


def keepalived_path(seg: int, vrid: int) -> str:
    return f"/org/keepalived/Vrrp1/Instance/eth{seg}/{vrid}/IPv4"


def count_vips(node: Node) -> int:
    try:
        r = node.run(["ip", "-j", "-4", "addr", "show"], check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return -1
    return sum(
        1
        for link in json.loads(r.stdout or "[]")
        for a in link.get("addr_info", [])
        if a.get("local", "").startswith("198.19.")
    )


# -- statistics -----------------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


@dataclass
class Timing:
    """Repeated measurements of one thing, in seconds."""

    samples: list[float] = field(default_factory=list)
    errors: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.samples)

    def median(self) -> float:
        return statistics.median(self.samples)

    def p90(self) -> float:
        return pct(self.samples, 90)

    def describe(self, per: int = 1) -> str:
        if not self.samples:
            return f"n/a ({self.note or 'no sample'})"
        ms = [s * 1000 / per for s in self.samples]
        text = (
            f"median {statistics.median(ms):.3f} ms, p90 {pct(ms, 90):.3f}, "
            f"min {min(ms):.3f}, max {max(ms):.3f} ({len(ms)} runs"
        )
        if self.errors:
            text += f", {self.errors} errors"
        return text + (f"; {self.note})" if self.note else ")")


# -- the dbus-fast client --------------------------------------------------------------------


class Client:
    """One connection; every call is timed from send to the decoded reply."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, address: str) -> Client:
        return cls(await MessageBus(bus_address=address).connect())

    async def call(
        self, dest: str, path: str, iface: str, member: str, sig: str = "", body: Any = ()
    ) -> tuple[Message, float]:
        msg = Message(
            destination=dest, path=path, interface=iface, member=member,
            signature=sig, body=list(body),
        )  # fmt: skip
        t0 = time.perf_counter()
        reply = await asyncio.wait_for(self.bus.call(msg), 60)
        return reply, time.perf_counter() - t0

    async def repeat(
        self, count: int, dest: str, path: str, iface: str, member: str, sig: str = "",
        body: Any = (),
    ) -> tuple[Timing, Message | None]:  # fmt: skip
        t, last = Timing(), None
        for _ in range(count):
            reply, dt = await self.call(dest, path, iface, member, sig, body)
            if reply.message_type is MessageType.METHOD_RETURN:
                t.samples.append(dt)
                last = reply
            else:
                t.errors += 1
                t.note = f"{reply.error_name}: {reply.body[:1]}"
        return t, last

    async def get_each(self, dest: str, paths: list[str], iface: str, prop: str) -> ReadAll:
        """Property `prop` of every path, one Get at a time (what a busctl loop does)."""
        out = ReadAll(len(paths))
        t0 = time.perf_counter()
        for path in paths:
            reply, dt = await self.call(dest, path, PROPS, "Get", "ss", (iface, prop))
            if reply.message_type is MessageType.METHOD_RETURN:
                out.per_call.samples.append(dt)
                out.values[_value(reply.body[0].value)] = (
                    out.values.get(_value(reply.body[0].value), 0) + 1
                )
            else:
                out.per_call.errors += 1
                out.per_call.note = f"{reply.error_name}"
        out.total = time.perf_counter() - t0
        return out

    def close(self) -> None:
        self.bus.disconnect()


def _value(v: Any) -> str:
    """A State value as text: `MASTER`, or keepalived's struct `(us)` as `2 Master`."""
    return " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def size_of(msg: Message | None) -> int | None:
    """The reply's size on the wire (marshalled again; the same bytes the daemon sent)."""
    return None if msg is None else len(msg._marshall(False))


@dataclass
class ReadAll:
    """N Get calls one after the other."""

    n: int
    per_call: Timing = field(default_factory=Timing)
    total: float = 0.0
    values: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.per_call.ok:
            return f"n/a ({self.per_call.note})"
        ms = [s * 1000 for s in self.per_call.samples]
        err = (
            f", {self.per_call.errors} errors ({self.per_call.note})"
            if self.per_call.errors
            else ""
        )
        return (
            f"{self.total * 1000 / self.n:.3f} ms per instance ({self.total:.2f} s for "
            f"{self.n}); per call median {statistics.median(ms):.3f} ms, p99 "
            f"{pct(ms, 99):.3f}, max {max(ms):.3f}{err}; values {self.values}"
        )


def busctl_each(address: str, dest: str, paths: list[str], iface: str, prop: str) -> Timing:
    """One `busctl get-property` process per path, wall time each (start to exit)."""
    t = Timing()
    for path in paths:
        argv = ["busctl", f"--address={address}", "get-property", dest, path, iface, prop]
        t0 = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        dt = time.perf_counter() - t0
        if r.returncode == 0:
            t.samples.append(dt)
        else:
            t.errors += 1
            t.note = r.stderr.strip()[:200]
    return t


def timed_run(argv: list[str], repeat: int, check: Callable[[str], bool]) -> Timing:
    """Wall time of a command run `repeat` times; a run whose output fails `check` is an error."""
    t = Timing()
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        dt = time.perf_counter() - t0
        if r.returncode == 0 and check(r.stdout):
            t.samples.append(dt)
        else:
            t.errors += 1
            t.note = f"rc {r.returncode}: {(r.stderr or r.stdout).strip()[-200:]}"
    return t


# -- (a) and (b): hakeeper ----------------------------------------------------------------------


@dataclass
class HakeeperFigures:
    ctl_wall: Timing = field(default_factory=Timing)
    ctl_start: Timing = field(default_factory=Timing)
    connect: Timing = field(default_factory=Timing)
    list_instances: Timing = field(default_factory=Timing)
    list_size: int | None = None
    gmo: Timing = field(default_factory=Timing)
    gmo_size: int | None = None
    gmo_objects: int = 0
    get_all: Timing = field(default_factory=Timing)
    get_all_size: int | None = None
    own_get: ReadAll | None = None
    own_busctl: Timing = field(default_factory=Timing)
    compat_get: ReadAll | None = None
    compat_busctl: Timing = field(default_factory=Timing)


async def measure_hakeeper(address: str, n: int, args: argparse.Namespace) -> HakeeperFigures:
    f = HakeeperFigures()
    for _ in range(args.calls):
        t0 = time.perf_counter()
        c = await Client.connect(address)
        f.connect.samples.append(time.perf_counter() - t0)
        c.close()
    c = await Client.connect(address)
    try:
        f.list_instances, reply = await c.repeat(
            args.calls, HK_NAME, HK_ROOT, HK_MANAGER, "ListInstances"
        )
        f.list_size = size_of(reply)
        paths = [row[-1] for row in reply.body[0]] if reply is not None else []
        f.gmo, reply = await c.repeat(args.calls, HK_NAME, HK_ROOT, OM, "GetManagedObjects")
        f.gmo_size = size_of(reply)
        f.gmo_objects = len(reply.body[0]) if reply is not None else 0
        if paths:
            f.get_all, reply = await c.repeat(
                args.calls, HK_NAME, paths[0], PROPS, "GetAll", "s", (HK_INSTANCE,)
            )
            f.get_all_size = size_of(reply)
            f.own_get = await c.get_each(HK_NAME, paths, HK_INSTANCE, "State")
        ka_paths = [keepalived_path(seg, vrid) for seg, vrid in layout(n)]
        f.compat_get = await c.get_each(KA_NAME, ka_paths, KA_INSTANCE, "State")
    finally:
        c.close()
    sub = subset(n, args.busctl)
    f.own_busctl = busctl_each(
        address, HK_NAME, [p for i, p in enumerate(paths) if i in sub], HK_INSTANCE, "State"
    )
    f.compat_busctl = busctl_each(
        address, KA_NAME, [keepalived_path(*layout(n)[i]) for i in sorted(sub)], KA_INSTANCE,
        "State",
    )  # fmt: skip
    ctl = str(VENV_BIN / "hakeeperctl")
    f.ctl_start = timed_run([ctl, "completion", "bash"], args.repeat, lambda out: bool(out))
    # the table has a header line and one line per instance
    f.ctl_wall = timed_run(
        [ctl, "--bus", address, "show", "instances"], args.repeat,
        lambda out: len(out.splitlines()) >= n + 1,
    )  # fmt: skip
    return f


def subset(n: int, k: int) -> set[int]:
    """k instance indexes spread over all segments."""
    if k >= n:
        return set(range(n))
    return {round(i * (n - 1) / max(1, k - 1)) for i in range(k)}


async def wait_masters(address: str, n: int, within: float) -> tuple[bool, str]:
    """hakeeper answers ListInstances with n rows, all MASTER."""
    deadline = time.monotonic() + within
    seen = "no answer"
    while time.monotonic() < deadline:
        try:
            c = await Client.connect(address)
            try:
                reply, _ = await c.call(HK_NAME, HK_ROOT, HK_MANAGER, "ListInstances")
            finally:
                c.close()
            if reply.message_type is MessageType.METHOD_RETURN:
                states = [row[1] for row in reply.body[0]]
                masters = states.count("MASTER")
                seen = f"{len(states)} instances, {masters} MASTER"
                if len(states) == n and masters == n:
                    return True, seen
            else:
                seen = str(reply.error_name)
        except (OSError, EOFError, TimeoutError) as e:
            seen = f"{type(e).__name__}: {e}"
        await asyncio.sleep(0.5)
    return False, seen


async def wait_keepalived(address: str, n: int, within: float) -> tuple[bool, str]:
    """keepalived answers State = Master (2) on its first and last instance objects."""
    deadline = time.monotonic() + within
    seen = "no answer"
    probe = [keepalived_path(*layout(n)[0]), keepalived_path(*layout(n)[-1])]
    while time.monotonic() < deadline:
        try:
            c = await Client.connect(address)
            try:
                r = await c.get_each(KA_NAME, probe, KA_INSTANCE, "State")
            finally:
                c.close()
            seen = f"{r.values} {r.per_call.note}"
            if r.values.get("2 Master") == len(probe):
                return True, seen
        except (OSError, EOFError, TimeoutError) as e:
            seen = f"{type(e).__name__}: {e}"
        await asyncio.sleep(0.5)
    return False, seen


# -- (c): advert spacing under a hammering client ----------------------------------------------


@dataclass
class Capture:
    times: list[float]  # receive timestamps of the captured instance's adverts
    window: float
    dropped: str


def capture(c: Node, src: str, seconds: float, on_start: threading.Event) -> Capture:
    """tcpdump on C's eth0: adverts of VRID CAPTURE_VRID from src, bounded in time and count."""
    # BPF in the kernel keeps tcpdump's own load out of the picture: only one instance passes
    # (ip[21] is the VRRP header's VRID, after a 20-byte IPv4 header; VRRP has no options)
    bpf = f"ip proto 112 and src host {src} and ip[0] = 0x45 and ip[21] = {CAPTURE_VRID}"
    cap = jitter_capture(
        c, seconds, on_start, bpf=bpf, max_pkts=int(seconds / ADV * 3) + 100, buffer_kib=4096
    )
    times = sorted(ts for ts, s, vrid, _ in cap.packets if s == src and vrid == CAPTURE_VRID)
    return Capture(times, cap.window, cap.dropped)


@dataclass
class SpacingRun:
    label: str
    spacings: list[float] = field(default_factory=list)
    adverts: int = 0
    window: float = 0.0
    dropped: str = "?"
    daemon_cpu: float | None = None
    bus_cpu: float | None = None
    client_cpu: float | None = None
    host: float | None = None
    hammer: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def start_hammer(address: str, member: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    """Another process (a monitoring client would be one) that calls `member` back to back
    once told to go; bounded by --hammer-calls and the capture window."""
    argv = [
        sys.executable, str(Path(__file__).resolve()), "--hammer", member, "--address", address,
        "--hammer-calls", str(args.hammer_calls), "--seconds", str(args.seconds),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        err = proc.stderr.read() if proc.stderr else ""
        proc.kill()
        proc.wait(5)
        raise LabError(f"hammer client did not start: {line} {err[-500:]}")
    return proc


def end_hammer(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=5)
        return {"error": "did not end in time"}
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": (err or out).strip()[-300:]}


def measured_capture(
    c: Node, src: str, seconds: float, pids: dict[str, list[int]], go: Callable[[], None]
) -> tuple[Capture | None, dict[str, float], float]:
    """Capture `src`'s adverts on C for `seconds`, calling `go()` once the capture listens
    (a client starts its load then); returns the capture, the CPU % of a core of each group
    of `pids` over the window, and how busy the host was (% of all CPUs)."""
    started = threading.Event()
    box: dict[str, Any] = {}

    def cap() -> None:
        try:
            box["cap"] = capture(c, src, seconds, started)
        except BaseException as e:  # re-raised below
            box["err"] = e
            started.set()

    th = threading.Thread(target=cap, daemon=True)
    th.start()
    started.wait(15)
    go()
    before = {k: proc_times(v) for k, v in pids.items()}
    h0, w0 = host_busy(), time.monotonic()
    th.join(seconds + 30)
    after = {k: proc_times(v) for k, v in pids.items()}
    h1, elapsed = host_busy(), time.monotonic() - w0
    if "err" in box:
        raise box["err"]
    cpu = {
        k: sum(after[k][p][0] - before[k][p][0] for p in before[k] if p in after[k])
        / CLK_TCK / elapsed * 100
        for k in pids
    }  # fmt: skip
    host = (h1[0] - h0[0]) / max(1, h1[1] - h0[1]) * 100
    cp = box.get("cap")
    return (cp if isinstance(cp, Capture) else None), cpu, host


def spacing_run(
    label: str, member: str | None, d: Daemon, bus: PrivateBus, m: Node, c: Node,
    args: argparse.Namespace,
) -> SpacingRun:  # fmt: skip
    res = SpacingRun(label)
    print(f"== spacing: {label}", flush=True)
    hammer = start_hammer(bus.address, member, args) if member else None
    try:
        assert d.proc is not None
        pids = {"daemon": tree(d.proc.pid), "bus": [bus.proc.pid]}
        if hammer is not None:
            pids["client"] = [hammer.pid]

        def go() -> None:
            if hammer is not None and hammer.stdin is not None:
                hammer.stdin.write("go\n")
                hammer.stdin.flush()  # communicate() closes it

        cp, cpu, res.host = measured_capture(c, m.ipv4, args.seconds, pids, go)
        res.daemon_cpu, res.bus_cpu = cpu["daemon"], cpu["bus"]
        res.client_cpu = cpu.get("client")
        if cp is None:
            res.notes.append("capture did not finish")
        else:
            res.adverts, res.window, res.dropped = len(cp.times), cp.window, cp.dropped
            res.spacings = [b - a for a, b in itertools.pairwise(cp.times)]
    finally:
        if hammer is not None:
            res.hammer = end_hammer(hammer, args.seconds + 60)
    if not d.alive():
        res.notes.append("hakeeper died")
    return res


async def hammer_main(address: str, member: str, max_calls: int, max_seconds: float) -> int:
    """The hammering client (this script run with --hammer): its figures as one JSON line."""
    path, iface = HAMMERS[member]
    c = await Client.connect(address)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    lat: list[float] = []
    errors = 0
    t0 = time.perf_counter()
    end = t0 + max_seconds
    while len(lat) + errors < max_calls and time.perf_counter() < end:
        reply, dt = await c.call(HK_NAME, path, iface, member)
        if reply.message_type is MessageType.METHOD_RETURN:
            lat.append(dt)
        else:
            errors += 1
    elapsed = time.perf_counter() - t0
    c.close()
    ms = [x * 1000 for x in lat] or [float("nan")]
    print(json.dumps({
        "calls": len(lat), "errors": errors, "seconds": elapsed,
        "per_s": len(lat) / elapsed if elapsed else 0.0,
        "median_ms": statistics.median(ms), "p90_ms": pct(ms, 90), "max_ms": max(ms),
    }), flush=True)  # fmt: skip
    return 0


# -- the runs ----------------------------------------------------------------------------------


def log_errors(d: Daemon, limit: int = 5) -> list[str]:
    lines = [ln for ln in d.log_text().splitlines() if re.search(r"ERROR|Traceback|rror:", ln)]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def converge(d: Daemon, m: Node, n: int, within: float) -> str:
    """Wait until M holds the n VIPs (3 checks in a row); say how it went."""
    t0 = time.monotonic()
    deadline = t0 + within
    good, seen = 0, 0
    while time.monotonic() < deadline and good < 3 and d.alive():
        seen = count_vips(m)
        good = good + 1 if seen == n else 0
        time.sleep(0.5)
    return f"VIPs on M {seen}/{n} after {time.monotonic() - t0:.1f} s (alive {d.alive()})"


def run_hakeeper(
    m: Node, c: Node, n: int, args: argparse.Namespace
) -> tuple[HakeeperFigures | None, list[SpacingRun], list[str]]:
    notes: list[str] = []
    spacing: list[SpacingRun] = []
    figures = None
    print(f"== hakeeper: {n} instances, enable_dbus, private bus", flush=True)
    with PrivateBus() as bus:
        d = start_daemon(m, "hakeeper", config(n), suffix=".conf", bus=bus.address)
        try:
            print("   " + converge(d, m, n, args.converge_timeout), flush=True)
            ok, seen = asyncio.run(wait_masters(bus.address, n, args.converge_timeout))
            print(f"   D-Bus ready={ok}: {seen}", flush=True)
            if not d.alive():
                notes.append("hakeeper died: " + " | ".join(d.log_text().splitlines()[-5:]))
                return None, [], notes
            if not ok:
                notes.append(f"not all MASTER on D-Bus ({seen}); measured anyway")
            time.sleep(args.warmup)
            print("== (a)/(b) hakeeper calls", flush=True)
            figures = asyncio.run(measure_hakeeper(bus.address, n, args))
            print("== (c) spacing", flush=True)
            for label, member in (
                ("no client", None),
                ("ListInstances loop", "ListInstances"),
                ("GetManagedObjects loop", "GetManagedObjects"),
            ):
                spacing.append(spacing_run(label, member, d, bus, m, c, args))
                time.sleep(1)
            counters = asyncio.run(dbus_counters(bus.address))
            notes.append(f"hakeeper's D-Bus counters after the runs: {counters}")
            notes += [f"hakeeper log: {e}" for e in log_errors(d)]
        finally:
            rc = d.stop(timeout=args.stop_timeout)
            print(f"   stopped hakeeper: rc {rc}", flush=True)
            if rc != 0:
                notes.append(f"hakeeper's exit status after SIGTERM: {rc}")
                errors = [ln for ln in d.log_text().splitlines() if " ERROR " in ln]
                notes += [f"hakeeper log at stop: {e}" for e in errors[-3:]]
    return figures, spacing, notes


async def dbus_counters(address: str) -> dict[str, int] | str:
    """The manager's dbus_* counters (a lost connection shows as dbus_reconnects)."""
    c = await Client.connect(address)
    try:
        reply, _ = await c.call(HK_NAME, HK_ROOT, PROPS, "Get", "ss", (HK_MANAGER, "Counters"))
    finally:
        c.close()
    if reply.message_type is not MessageType.METHOD_RETURN:
        return str(reply.error_name)
    return {k: v for k, v in reply.body[0].value.items() if k.startswith("dbus")}


@dataclass
class KeepalivedFigures:
    get: ReadAll | None = None
    busctl: Timing = field(default_factory=Timing)


def run_keepalived(
    m: Node, n: int, args: argparse.Namespace
) -> tuple[KeepalivedFigures | None, list[str]]:
    notes: list[str] = []
    print(f"== keepalived: {n} instances, enable_dbus, its own private bus", flush=True)
    with PrivateBus() as bus:
        d = start_daemon(
            m, "keepalived", config(n), env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address}, quiet=True
        )
        try:
            print("   " + converge(d, m, n, args.converge_timeout), flush=True)
            ok, seen = asyncio.run(wait_keepalived(bus.address, n, args.converge_timeout))
            print(f"   D-Bus ready={ok}: {seen}", flush=True)
            if not d.alive():
                notes.append("keepalived died: " + " | ".join(d.log_text().splitlines()[-5:]))
                return None, notes
            if not ok:
                notes.append(f"keepalived's D-Bus objects not ready ({seen}); measured anyway")
            time.sleep(args.warmup)
            f = KeepalivedFigures()

            async def gets() -> ReadAll:
                cl = await Client.connect(bus.address)
                try:
                    paths = [keepalived_path(seg, vrid) for seg, vrid in layout(n)]
                    return await cl.get_each(KA_NAME, paths, KA_INSTANCE, "State")
                finally:
                    cl.close()

            f.get = asyncio.run(gets())
            paths = [keepalived_path(*layout(n)[i]) for i in sorted(subset(n, args.busctl))]
            f.busctl = busctl_each(bus.address, KA_NAME, paths, KA_INSTANCE, "State")
            if not d.alive():
                notes.append("keepalived died during the calls")
        finally:
            rc = d.stop(timeout=args.stop_timeout)
            print(f"   stopped keepalived: rc {rc}", flush=True)
            if rc != 0:
                notes.append(f"keepalived's exit status after SIGTERM: {rc}")
    return f, notes


# -- the report --------------------------------------------------------------------------------


def ms(t: Timing | None, per: int = 1, q: str = "median") -> str:
    if t is None or not t.ok:
        return "n/a"
    v = t.median() if q == "median" else t.p90()
    return f"{v * 1000 / per:.3f}"


def kib(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 1024:.1f} KiB"


def per_instance(r: ReadAll | None) -> str:
    return "n/a" if r is None or not r.per_call.ok else f"{r.total * 1000 / r.n:.3f}"


def report(
    command: str, n: int, hk: HakeeperFigures | None, ka: KeepalivedFigures | None,
    spacing: list[SpacingRun], notes: list[str], args: argparse.Namespace,
) -> None:  # fmt: skip
    segs = math.ceil(n / PER_SEGMENT)
    print()
    print(f"# {command}")
    print(
        f"# {n} VRRPv3 instances (advert_int {ADV * 1000:g} ms, {segs} segment(s) x <= "
        f"{PER_SEGMENT}, all MASTER), enable_dbus; private dbus-daemon per daemon; "
        f"{os.cpu_count()} CPUs; {args.calls} calls per latency, {args.repeat} runs per "
        f"command, busctl on {min(n, args.busctl)} instances"
    )
    print()
    print("(a) hakeeper's API (dbus-fast client, one connection, calls one at a time)")
    rows = []
    if hk is not None:
        rows = [
            ("hakeeperctl show instances, wall", ms(hk.ctl_wall), ms(hk.ctl_wall, q="p90"), ""),
            ("  of it: interpreter + imports", ms(hk.ctl_start), ms(hk.ctl_start, q="p90"),
             "hakeeperctl completion bash"),
            ("  of it: connect + Hello", ms(hk.connect), ms(hk.connect, q="p90"), ""),
            ("  of it: ListInstances call", ms(hk.list_instances),
             ms(hk.list_instances, q="p90"), f"reply {kib(hk.list_size)}"),
            ("GetManagedObjects", ms(hk.gmo), ms(hk.gmo, q="p90"),
             f"reply {kib(hk.gmo_size)}, {hk.gmo_objects} objects"),
            ("GetAll of one instance", ms(hk.get_all), ms(hk.get_all, q="p90"),
             f"reply {kib(hk.get_all_size)}"),
        ]  # fmt: skip
    print(f"{'figure':34s} {'median ms':>10s} {'p90 ms':>9s}  note")
    for name, med, p90, note in rows:
        print(f"{name:34s} {med:>10s} {p90:>9s}  {note}")
    print()
    print("(b) State of every instance, one Get per instance object, ms per instance")
    cols = ("hakeeper own", "hakeeper compat", "keepalived 2.2.7")
    print(f"{'method':34s} " + " ".join(f"{c:>16s}" for c in cols))
    get_row = [
        per_instance(hk.own_get if hk else None),
        per_instance(hk.compat_get if hk else None),
        per_instance(ka.get if ka else None),
    ]
    bus_row = [
        ms(hk.own_busctl if hk else None),
        ms(hk.compat_busctl if hk else None),
        ms(ka.busctl if ka else None),
    ]
    print(f"{'dbus-fast Get, 1 connection (all)':34s} " + " ".join(f"{v:>16s}" for v in get_row))
    print(f"{'busctl get-property (median)':34s} " + " ".join(f"{v:>16s}" for v in bus_row))
    print("  issue's reference: keepalived 2.4 ms per instance with busctl")
    print()
    print(
        f"(c) hakeeper's advert spacing, VRID {CAPTURE_VRID} on eth0 captured on C for "
        f"{args.seconds:g} s, while another process calls back to back"
    )

    def sp(r: SpacingRun, fn: Callable[[list[float]], float]) -> str:
        return f"{fn(r.spacings) * 1000:.2f}" if r.spacings else "n/a"

    srows: list[tuple[str, Callable[[SpacingRun], str]]] = [
        ("adverts captured", lambda r: str(r.adverts)),
        ("spacing min ms", lambda r: sp(r, min)),
        ("spacing median ms", lambda r: sp(r, statistics.median)),
        ("spacing p99 ms", lambda r: sp(r, lambda x: pct(x, 99))),
        ("spacing max ms", lambda r: sp(r, max)),
        ("within 100+-5 ms %", lambda r: (
            f"{sum(abs(s - ADV) <= TOLERANCE for s in r.spacings) / len(r.spacings) * 100:.1f}"
            if r.spacings else "n/a")),
        (f"gaps > {GAP * 1000:g} ms", lambda r: str(sum(s > GAP for s in r.spacings))),
        ("client calls", lambda r: str(r.hammer.get("calls", "-")) if r.hammer else "-"),
        ("client calls/s", lambda r: f"{r.hammer['per_s']:.1f}" if "per_s" in r.hammer else "-"),
        ("client call median ms", lambda r: (
            f"{r.hammer['median_ms']:.2f}" if "median_ms" in r.hammer else "-")),
        ("client call max ms", lambda r: (
            f"{r.hammer['max_ms']:.2f}" if "max_ms" in r.hammer else "-")),
        ("hakeeper CPU % (1 core)", lambda r: f"{r.daemon_cpu:.1f}"),
        ("dbus-daemon CPU %", lambda r: f"{r.bus_cpu:.1f}"),
        ("client CPU %", lambda r: "-" if r.client_cpu is None else f"{r.client_cpu:.1f}"),
        ("host busy % (all CPUs)", lambda r: f"{r.host:.1f}"),
        ("tcpdump kernel drops", lambda r: r.dropped),
    ]  # fmt: skip
    w = max([22, *(len(r.label) for r in spacing)])
    print(f"{'':24s} " + " ".join(f"{r.label:>{w}s}" for r in spacing))
    for name, fn in srows:
        vals = []
        for r in spacing:
            try:
                vals.append(fn(r))
            except (TypeError, ValueError, KeyError, ZeroDivisionError):
                vals.append("n/a")
        print(f"{name:24s} " + " ".join(f"{v:>{w}s}" for v in vals))
    print()
    print("figures:")
    if hk is not None:
        lines = [
            ("hakeeperctl show instances wall", hk.ctl_wall.describe()),
            ("hakeeperctl startup (completion bash)", hk.ctl_start.describe()),
            ("connect + Hello", hk.connect.describe()),
            (f"ListInstances ({kib(hk.list_size)})", hk.list_instances.describe()),
            (f"GetManagedObjects ({kib(hk.gmo_size)}, {hk.gmo_objects} objects)",
             hk.gmo.describe()),
            (f"GetAll one instance ({kib(hk.get_all_size)})", hk.get_all.describe()),
            ("hakeeper own State, dbus-fast Get each",
             hk.own_get.describe() if hk.own_get else "n/a"),
            ("hakeeper own State, busctl each", hk.own_busctl.describe()),
            ("hakeeper compat State, dbus-fast Get each",
             hk.compat_get.describe() if hk.compat_get else "n/a"),
            ("hakeeper compat State, busctl each", hk.compat_busctl.describe()),
        ]  # fmt: skip
        for name, text in lines:
            print(f"  {name}: {text}")
    if ka is not None:
        print(f"  keepalived State, dbus-fast Get each: {ka.get.describe() if ka.get else 'n/a'}")
        print(f"  keepalived State, busctl each: {ka.busctl.describe()}")
    for r in spacing:
        if r.spacings:
            xs = r.spacings
            inside = sum(abs(s - ADV) <= TOLERANCE for s in xs) / len(xs) * 100
            print(
                f"  spacing, {r.label}: min {min(xs) * 1000:.2f} / median "
                f"{statistics.median(xs) * 1000:.2f} / p99 {pct(xs, 99) * 1000:.2f} / max "
                f"{max(xs) * 1000:.2f} ms, {inside:.1f} % within 100+-5 ms "
                f"({len(xs)} spacings)"
            )
        if r.hammer:
            print(f"  client, {r.label}: {json.dumps(r.hammer)}")
        for note in r.notes:
            print(f"  note: {r.label}: {note}")
    for note in notes:
        print(f"  note: {note[:600]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0, help="capture window per spacing run")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each timed command")
    ap.add_argument("--calls", type=int, default=20, help="calls per latency figure")
    ap.add_argument("--busctl", type=int, default=50, help="instances read with busctl")
    ap.add_argument("--hammer-calls", type=int, default=100000, help="bound on a client's calls")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=15.0)
    ap.add_argument("--daemons", default="hakeeper,keepalived")
    ap.add_argument("--hammer", choices=sorted(HAMMERS), help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hammer:
        return asyncio.run(hammer_main(args.address, args.hammer, args.hammer_calls, args.seconds))
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    n = args.instances
    if not 1 <= n <= 255 * PER_SEGMENT:
        print("--instances: 1..63750", file=sys.stderr)
        return 2
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    daemons = args.daemons.split(",")
    hk = ka = None
    spacing: list[SpacingRun] = []
    notes: list[str] = []
    with Lab() as lab:
        m, c = scaled_lab(lab, n)
        if "hakeeper" in daemons:
            hk, spacing, more = run_hakeeper(m, c, n, args)
            notes += more
        if "keepalived" in daemons:
            ka, more = run_keepalived(m, n, args)
            notes += more
        prefix = lab.prefix
    report(command, n, hk, ka, spacing, notes, args)
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
