"""SNMP with 200 and 1000 VRRPv3 instances (advert_int 0.1 s): hakeeper vs keepalived.

Lab: a master M and a capture node C, laid out as bench/scale.py and bench/dbus.py do: 250
instances per segment (VRID 1..250 on eth0, eth1...), one VIP each
(198.19.<segment>.<vrid>/32), priority 200, no peer, so every instance is MASTER. C sits on
the first segment only. For each size, ONE net-snmp snmpd runs in the host namespace as the
AgentX master (tests/unit/test_agentx_snmpd.Snmpd: private temp config, unix socket and a
127.0.0.1 UDP port; ended by its PID). Both daemons are its subagents, one after the other
(`enable_snmp_vrrp`, `enable_snmp_rfcv3`, `snmp_socket unix:<path>` in global_defs; the
unix socket reaches from M's network namespace since the file system is shared).

Measured, with the net-snmp tools as clients (numeric OIDs, `-On`: no MIB parsing in the
figures, and keepalived's MIB needs modules this host lacks):

  (a) hakeeper: `snmpbulkwalk -v2c -Cr50` of the HAKEEPER-MIB instance table and of the
      VRRPV3-MIB operations table: wall time (median of --repeat), varbinds returned, µs
      per varbind. Beside it, `snmpget sysUpTime.0` answered by snmpd itself (the tool's own
      start and one round trip, no subagent).
  (b) keepalived 2.2.7, same instances, same snmpd: its vrrpInstanceTable
      (KEEPALIVED-MIB 1.3.6.1.4.1.9586.100.5.2.3) and the VRRPV3 operations table.
  (c) advert spacing of one instance (VRID 1 on eth0, captured on C with tcpdump, kernel
      timestamps, BPF-filtered) for --seconds with no client and while a client runs
      snmpbulkwalk of the instance table back to back (bounded by --loop-walks and the
      window), for hakeeper and keepalived.
  (d) hakeeper's embedded agent (its own SNMP port, no snmpd), in the same hakeeper run.

Run from the repo root as root:
    .venv/bin/python bench/snmp.py [--sizes 200,1000] [--seconds 20] [--repeat 5]
        [--pin none|same|split]
It prints figures; it never fails because something is slow (exit status != 0 only when
the lab could not be built or driven).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dbus import (
    ADV,
    CAPTURE_VRID,
    GAP,
    PER_SEGMENT,
    TOLERANCE,
    Timing,
    converge,
    log_errors,
    master_instances,
    measured_capture,
    pct,
    scaled_lab,
)
from bench.scale import tree
from hakeeper.snmp.mib import INSTANCE_TABLE, NAME_MAX, name_index
from hakeeper.snmp.vrrp_mibs import V3_OPER_ENTRY, V3_OPER_STATUS
from tests.lab.configs import keepalived_conf
from tests.lab.daemons import Daemon, start_daemon
from tests.lab.lab import Lab, Node, ip_netns_list
from tests.unit.test_agentx_snmpd import Snmpd, free_udp_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
EMBEDDED_PORT = 1161  # hakeeper's own agent, on M's address in the lab


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


@dataclass(frozen=True, slots=True)
class Walked:
    """A table to walk and the column that says an instance is master."""

    label: str
    root: str  # the table's OID (the walk's root)
    state_column: str  # OID of the state column
    master: int  # its value for MASTER


HK_TABLE = Walked(
    "HAKEEPER-MIB instance table",
    dotted(INSTANCE_TABLE.oid),
    dotted(INSTANCE_TABLE.column_oid("hakeeperInstanceState")),
    INSTANCE_TABLE.column("hakeeperInstanceState").number("MASTER"),
)
V3_TABLE = Walked(
    "VRRPV3-MIB operations table",
    dotted(V3_OPER_ENTRY[:-1]),
    dotted((*V3_OPER_ENTRY, V3_OPER_STATUS)),
    3,  # vrrpv3OperationsStatus master(3), RFC 6527
)
KA_TABLE = Walked(
    "KEEPALIVED-MIB vrrpInstanceTable",
    "1.3.6.1.4.1.9586.100.5.2.3",
    "1.3.6.1.4.1.9586.100.5.2.3.1.4",  # vrrpInstanceState
    2,  # VrrpState master(2)
)
TABLES = {"hakeeper": (HK_TABLE, V3_TABLE), "keepalived": (KA_TABLE, V3_TABLE)}
LOOP_TABLE = {"hakeeper": HK_TABLE, "keepalived": KA_TABLE}


# -- the lab's config -----------------------------------------------------------------------


def config(n: int, socket_path: Path, extra: str = "") -> str:
    insts = master_instances(n)
    snmp = (
        f"    enable_snmp_vrrp\n    enable_snmp_rfcv3\n    snmp_socket unix:{socket_path}\n{extra}"
    )
    return keepalived_conf(*insts, global_extra=snmp)


# -- the net-snmp client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """Where the net-snmp tools run (host namespace or a lab node) and which agent they ask."""

    label: str
    target: str  # host:port
    env: dict[str, str]
    node: Node | None = None  # None: the host namespace

    def argv(self, name: str, *args: str, timeout: float = 10.0) -> list[str]:
        """A net-snmp tool: v2c, numeric OIDs, no retries."""
        argv = [
            name, "-v2c", "-c", "public", "-On", "-t", f"{timeout:g}", "-r", "0", self.target,
            *args,
        ]  # fmt: skip
        return argv if self.node is None else self.node.argv(argv)

    def bulkwalk(self, root: str) -> list[str]:
        return self.argv("snmpbulkwalk", "-Cr50", root)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)


def via_snmpd(snmpd: Snmpd) -> Agent:
    return Agent("snmpd (AgentX)", f"127.0.0.1:{snmpd.port}", snmpd.env)


def varbinds(out: str) -> list[str]:
    """The varbind lines of -On output (a long hex string continues on the next lines)."""
    return [ln for ln in out.splitlines() if ln.startswith(".")]


@dataclass
class Walk:
    """Repeated snmpbulkwalks of one table."""

    table: Walked
    via: str
    wall: Timing = field(default_factory=Timing)
    varbinds: int = 0
    rows: int = 0
    columns: int = 0
    masters: int = 0

    def us_per_varbind(self) -> float | None:
        if not self.wall.ok or not self.varbinds:
            return None
        return self.wall.median() * 1e6 / self.varbinds


def shape(table: Walked, lines: list[str]) -> tuple[int, int, int]:
    """(rows, columns, masters) of a walk's output: a table's OIDs are root.1.column.index."""
    prefix = "." + table.root + ".1."
    cols: dict[str, int] = {}
    masters = 0
    state = "." + table.state_column + "."
    for ln in lines:
        oid, _, value = ln.partition(" = ")
        if not oid.startswith(prefix):
            continue
        col = oid[len(prefix) :].split(".", 1)[0]
        cols[col] = cols.get(col, 0) + 1
        if oid.startswith(state) and value.strip().endswith(f" {table.master}"):
            masters += 1
    return max(cols.values(), default=0), len(cols), masters


def walk(agent: Agent, table: Walked, repeat: int) -> Walk:
    w = Walk(table, agent.label)
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = agent.run(agent.bulkwalk(table.root))
        dt = time.perf_counter() - t0
        lines = varbinds(r.stdout)
        if r.returncode == 0 and lines:
            w.wall.samples.append(dt)
            w.varbinds = len(lines)
            w.rows, w.columns, w.masters = shape(table, lines)
        else:
            w.wall.errors += 1
            w.wall.note = f"rc {r.returncode}: {(r.stderr or r.stdout).strip()[-200:]}"
    return w


def baseline(agent: Agent, oid: str, repeat: int) -> Timing:
    """snmpget of one object: the tool's start + one round trip."""
    t = Timing()
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = agent.run(agent.argv("snmpget", oid))
        dt = time.perf_counter() - t0
        if r.returncode == 0:
            t.samples.append(dt)
        else:
            t.errors += 1
    return t


def masters_seen(agent: Agent, table: Walked) -> int:
    r = agent.run(agent.bulkwalk(table.state_column))
    if r.returncode != 0:
        return -1
    return sum(1 for ln in varbinds(r.stdout) if ln.rstrip().endswith(f" {table.master}"))


def wait_snmp(agent: Agent, d: Daemon, table: Walked, n: int, within: float) -> str:
    """Wait until the table says n masters through the agent; say how it went."""
    t0 = time.monotonic()
    seen = -1
    while time.monotonic() - t0 < within and d.alive():
        seen = masters_seen(agent, table)
        if seen == n:
            break
        time.sleep(0.5)
    took = time.monotonic() - t0
    return f"{table.label}: {seen}/{n} MASTER through {agent.label} after {took:.1f} s"


# -- (c): advert spacing under a walking client ------------------------------------------------


@dataclass
class SpacingRun:
    label: str
    spacings: list[float] = field(default_factory=list)
    adverts: int = 0
    dropped: str = "?"
    daemon_cpu: float | None = None
    snmpd_cpu: float | None = None
    host: float | None = None
    walks: list[float] = field(default_factory=list)  # wall time of each client walk
    walk_errors: int = 0
    notes: list[str] = field(default_factory=list)


class WalkLoop:
    """A client that runs snmpbulkwalk of one table back to back, bounded in count and time."""

    def __init__(self, agent: Agent, table: Walked, seconds: float, max_walks: int) -> None:
        self.argv = agent.bulkwalk(table.root)
        self.env = agent.env
        self.end = 0.0
        self.seconds, self.max_walks = seconds, max_walks
        self.times: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.end = time.monotonic() + self.seconds
        self.thread.start()

    def _run(self) -> None:
        while (
            not self.stop.is_set()
            and time.monotonic() < self.end
            and len(self.times) + self.errors < self.max_walks
        ):
            t0 = time.perf_counter()
            r = subprocess.run(self.argv, env=self.env, capture_output=True, timeout=120)
            if r.returncode == 0:
                self.times.append(time.perf_counter() - t0)
            else:
                self.errors += 1

    def join(self) -> None:
        self.stop.set()
        self.thread.join(150)


def spacing_run(
    label: str, client: tuple[Agent, Walked] | None, d: Daemon, snmpd: Snmpd, m: Node, c: Node,
    args: argparse.Namespace,
) -> SpacingRun:  # fmt: skip
    res = SpacingRun(label)
    print(f"   spacing: {label}", flush=True)
    loop = WalkLoop(*client, args.seconds, args.loop_walks) if client else None
    assert d.proc is not None and snmpd.proc is not None
    pids = {"daemon": tree(d.proc.pid), "snmpd": [snmpd.proc.pid]}
    try:
        cp, cpu, res.host = measured_capture(
            c, m.ipv4, args.seconds, pids, loop.start if loop is not None else lambda: None
        )
    finally:
        if loop is not None:
            loop.join()
    res.daemon_cpu, res.snmpd_cpu = cpu["daemon"], cpu["snmpd"]
    if cp is None:
        res.notes.append("capture did not finish")
    else:
        res.adverts, res.dropped = len(cp.times), cp.dropped
        res.spacings = [b - a for a, b in itertools.pairwise(cp.times)]
    if loop is not None:
        res.walks, res.walk_errors = loop.times, loop.errors
    if not d.alive():
        res.notes.append(f"{d.kind} died")
    return res


# -- one daemon ---------------------------------------------------------------------------------


@dataclass
class DaemonRun:
    kind: str
    ready: str = ""
    walks: list[Walk] = field(default_factory=list)
    spacing: list[SpacingRun] = field(default_factory=list)
    embedded_get: Timing | None = None  # snmpget of one object through the embedded agent
    snmpd_get: Timing | None = None  # the same object through snmpd
    notes: list[str] = field(default_factory=list)


def embedded_block(m: Node, c: Node) -> str:
    """hakeeper's own agent on M's first address, read-only for C (the monitoring host)."""
    return (
        "    snmp_agent {\n"
        f"        listen {m.ipv4}:{EMBEDDED_PORT}\n"
        f"        community public ro {c.ipv4}/32\n"
        "    }\n"
    )


def run_daemon(
    kind: str, n: int, snmpd: Snmpd, m: Node, c: Node, tmp: Path, args: argparse.Namespace
) -> DaemonRun:
    out = DaemonRun(kind)
    agent = via_snmpd(snmpd)
    embedded: Agent | None = None
    print(f"== {kind}: {n} instances, AgentX subagent of snmpd (pid {snmpd.proc_pid})", flush=True)
    if kind == "hakeeper":
        extra = ""
        if args.embedded:
            # the same daemon serves both ways at once: the views are shared
            extra = embedded_block(m, c)
            embedded = Agent("embedded", f"{m.ipv4}:{EMBEDDED_PORT}", agent.env, node=c)
        d = start_daemon(m, "hakeeper", config(n, snmpd.socket, extra), suffix=".conf")
    else:
        # keepalived's net-snmp library reads snmp config and writes persistent files: point
        # both at private dirs so nothing of the host's is read or written
        conf, persist = tmp / f"{kind}-snmpconf", tmp / f"{kind}-persist"
        conf.mkdir(exist_ok=True)
        persist.mkdir(exist_ok=True)
        env = {
            "SNMPCONFPATH": str(conf), "SNMP_PERSISTENT_DIR": str(persist), "MIBS": "",
            "MIBDIRS": str(conf),
        }  # fmt: skip
        d = start_daemon(m, "keepalived", config(n, snmpd.socket), env=env, quiet=True)
    try:
        print("   " + converge(d, m, n, args.converge_timeout), flush=True)
        if args.pin != "none":
            assert d.proc is not None and snmpd.proc is not None
            print("   " + pin(args.pin, tree(d.proc.pid), snmpd.proc.pid), flush=True)
        tables = TABLES[kind]
        ready = [wait_snmp(agent, d, t, n, args.converge_timeout) for t in tables]
        if embedded is not None:
            ready.append(wait_snmp(embedded, d, HK_TABLE, n, args.converge_timeout))
        out.ready = "; ".join(ready)
        print("   " + out.ready, flush=True)
        if not d.alive():
            out.notes.append(f"{kind} died: " + " | ".join(d.log_text().splitlines()[-5:]))
            return out
        time.sleep(args.warmup)
        todo = [(agent, t) for t in tables]
        if embedded is not None:
            todo += [(embedded, t) for t in tables]
            first = dotted((*INSTANCE_TABLE.column_oid("hakeeperInstanceState"),
                            *name_index("VI_0_1", NAME_MAX)))  # fmt: skip
            out.embedded_get = baseline(embedded, first, args.repeat)
            out.snmpd_get = baseline(agent, first, args.repeat)
        for via, t in todo:
            w = walk(via, t, args.repeat)
            out.walks.append(w)
            print(
                f"   walk {t.label} via {via.label}: {w.wall.describe()}, {w.varbinds} "
                f"varbinds ({w.rows} rows x {w.columns} columns)",
                flush=True,
            )
        if not args.no_spacing:
            runs: list[tuple[str, tuple[Agent, Walked] | None]] = [
                ("no client", None),
                ("bulkwalk loop via snmpd", (agent, LOOP_TABLE[kind])),
            ]
            if embedded is not None:
                runs.append(("bulkwalk loop, embedded", (embedded, HK_TABLE)))
            for label, client in runs:
                out.spacing.append(spacing_run(label, client, d, snmpd, m, c, args))
                time.sleep(1)
        if kind == "hakeeper":
            out.notes += [f"hakeeper log: {e}" for e in log_errors(d)]
    finally:
        rc = d.stop(timeout=args.stop_timeout)
        print(f"   stopped {kind}: rc {rc}", flush=True)
        if rc != 0:
            out.notes.append(f"{kind}'s exit status after SIGTERM: {rc}")
    return out


def pin(mode: str, daemon: list[int], snmpd: int) -> str:
    """Put snmpd and the daemon's processes (every thread) on fixed CPUs. Each round trip of
    a walk wakes the other side; in a VM, where that side runs decides much of the time
    (same CPU: a context switch; another, idle CPU: an inter-processor wake-up through the
    hypervisor), and unpinned the scheduler's choice can differ from one start to the next.
    "same": both on the last CPU (the pure CPU cost of each side); "split": snmpd on the
    first, the daemon on the last."""
    last = os.cpu_count() or 1
    cpus = {"same": (last - 1, last - 1), "split": (0, last - 1)}[mode]
    for pid, cpu in ((snmpd, cpus[0]), *((p, cpus[1]) for p in daemon)):
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], capture_output=True)
    return f"pinned ({mode}): snmpd on CPU {cpus[0]}, daemon pids {daemon} on CPU {cpus[1]}"


class BenchSnmpd(Snmpd):
    @property
    def proc_pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


# -- the report --------------------------------------------------------------------------------


def fmt_ms(t: Timing) -> str:
    return f"{t.median() * 1000:.1f}" if t.ok else "n/a"


def spacing_line(r: SpacingRun) -> str:
    xs = r.spacings
    if not xs:
        return "n/a"
    inside = sum(abs(s - ADV) <= TOLERANCE for s in xs) / len(xs) * 100
    gaps = sum(s > GAP for s in xs)
    return (
        f"min {min(xs) * 1000:.2f} / median {statistics.median(xs) * 1000:.2f} / p99 "
        f"{pct(xs, 99) * 1000:.2f} / max {max(xs) * 1000:.2f} ms, {inside:.1f} % within "
        f"100+-5 ms, gaps > {GAP * 1000:g} ms: {gaps}, {r.adverts} adverts"
    )


def report(n: int, base: Timing, runs: list[DaemonRun], args: argparse.Namespace) -> None:
    segs = math.ceil(n / PER_SEGMENT)
    print()
    print(
        f"# {n} VRRPv3 instances (advert_int {ADV * 1000:g} ms, {segs} segment(s) x <= "
        f"{PER_SEGMENT}, all MASTER); one snmpd (AgentX master) for both daemons; "
        f"{os.cpu_count()} CPUs; snmpbulkwalk -v2c -Cr50 -On, median of {args.repeat}; "
        f"CPU pinning: {args.pin}"
    )
    print(f"snmpget sysUpTime.0 from snmpd itself (tool start + 1 round trip): {fmt_ms(base)} ms")
    print()
    print(f"{'daemon':11s} {'via':9s} {'table':34s} {'wall ms':>9s} {'varbinds':>9s} "
          f"{'rows x cols':>12s} {'us/varbind':>11s} {'p90 ms':>8s}")  # fmt: skip
    for r in runs:
        for w in r.walks:
            us = w.us_per_varbind()
            via = w.via.split()[0]
            print(
                f"{r.kind:11s} {via:9s} {w.table.label:34s} {fmt_ms(w.wall):>9s} {w.varbinds:>9d} "
                f"{f'{w.rows} x {w.columns}':>12s} {'n/a' if us is None else f'{us:.1f}':>11s} "
                f"{w.wall.p90() * 1000 if w.wall.ok else float('nan'):>8.1f}"
            )
    print("  issue's reference: keepalived ~0.10 s for 200 rows x 25 columns (~20 us a varbind),")
    print("  its VRRPv3 operations table ~0.05 s")
    print()
    print(f"(c) advert spacing of VRID {CAPTURE_VRID} on eth0, {args.seconds:g} s captured on C")
    for r in runs:
        for s in r.spacing:
            print(f"  {r.kind}, {s.label}: {spacing_line(s)}")
            walks = (
                f"; client walks {len(s.walks)} ({len(s.walks) / args.seconds:.1f}/s), "
                f"median {statistics.median(s.walks) * 1000:.1f} ms, max "
                f"{max(s.walks) * 1000:.1f} ms, errors {s.walk_errors}"
                if s.walks
                else (f"; client walk errors {s.walk_errors}" if s.walk_errors else "")
            )
            cpu = (
                f"    CPU % of a core: {r.kind} {s.daemon_cpu:.1f}, snmpd {s.snmpd_cpu:.1f}, "
                f"host busy {s.host:.1f} % (all CPUs); tcpdump drops {s.dropped}{walks}"
            )
            print(cpu)
            for note in s.notes:
                print(f"    note: {note}")
    print()
    hk = [r for r in runs if r.kind == "hakeeper"]
    if not args.embedded:
        print("(d) embedded: skipped (--no-embedded)")
    elif hk and hk[0].embedded_get is not None and hk[0].snmpd_get is not None:
        print(
            "(d) embedded agent (snmp_agent listen on M, tools run in C's namespace through "
            "`ip netns exec`): rows 'embedded' above; snmpget of one instance's state: "
            f"{fmt_ms(hk[0].embedded_get)} ms embedded (from C), "
            f"{fmt_ms(hk[0].snmpd_get)} ms through snmpd (host)"
        )
    else:
        print("(d) embedded: wired, but hakeeper was not measured")
    print()
    print("details:")
    for r in runs:
        print(f"  {r.kind} ready: {r.ready}")
        for w in r.walks:
            print(
                f"  {r.kind} via {w.via}: {w.table.label} ({w.table.root}): {w.wall.describe()}; "
                f"{w.masters} MASTER rows"
            )
        for note in r.notes:
            print(f"  note: {r.kind}: {note[:600]}")


# -- main ----------------------------------------------------------------------------------------


def bench_size(n: int, args: argparse.Namespace) -> None:
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="hk-bench-snmp-") as tmpdir:
        tmp = Path(tmpdir)
        m, c = scaled_lab(lab, n)
        (tmp / "snmpd").mkdir()
        snmpd = BenchSnmpd(tmp / "snmpd", free_udp_port())  # traps: nobody listens
        runs: list[DaemonRun] = []
        snmpd.start()
        try:
            print(f"== snmpd pid {snmpd.proc_pid}, udp 127.0.0.1:{snmpd.port}", flush=True)
            base = baseline(via_snmpd(snmpd), SYS_UPTIME, args.repeat)
            for kind in args.daemons.split(","):
                runs.append(run_daemon(kind, n, snmpd, m, c, tmp, args))
                time.sleep(1)  # snmpd drops the stopped subagent's registrations
        finally:
            snmpd.stop()
        prefix = lab.prefix
    report(n, base, runs, args)
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--sizes", help="comma-separated sizes, e.g. 200,1000 (overrides --instances)")
    ap.add_argument("--seconds", type=float, default=20.0, help="capture window per spacing run")
    ap.add_argument("--repeat", type=int, default=5, help="walks per table")
    ap.add_argument("--loop-walks", type=int, default=10000, help="bound on the client's walks")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=15.0)
    ap.add_argument("--daemons", default="hakeeper,keepalived")
    ap.add_argument("--no-spacing", action="store_true", help="skip (c)")
    ap.add_argument(
        "--pin", choices=("none", "same", "split"), default="none",
        help="CPU placement of snmpd and the daemon (see pin())",
    )  # fmt: skip
    ap.add_argument("--no-embedded", dest="embedded", action="store_false", help="skip (d)")
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    sizes = [int(s) for s in re.split(r"[,\s]+", args.sizes.strip())] if args.sizes else None
    sizes = sizes or [args.instances]
    if not all(1 <= n <= 255 * PER_SEGMENT for n in sizes):
        print("sizes: 1..63750", file=sys.stderr)
        return 2
    print(f"# {shlex.join([os.path.relpath(sys.executable), *sys.argv])}", flush=True)
    for n in sizes:
        bench_size(n, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
