"""Advert timing under tracking load: 200 VRRPv3 instances at advert_int 0.1 s, each with
a vrrp_script (interval 1 s) and a track_file, hakeeper vs keepalived, in one lab run.

Lab: a master M and a capture node C on one segment. M runs 200 instances (VRID 1..200 on
eth0, priority 200, one VIP each: 198.19.0.<vrid>/32). In the tracked runs every instance
has its own `vrrp_script` (all 200 run the same root-owned `exit 0` shell script, interval
1 s, weight -10) and its own `vrrp_track_file` (200 files holding 0, weight 1), so the
priority on the wire stays 200 unless a tracker misbehaves. The baseline runs use the same
200 instances without trackers.

Per run (never two daemons at once): start the daemon on M, wait until M holds all 200 VIPs,
warm up, then capture on C for --seconds with `tcpdump --time-stamp-precision=nano` (kernel
receive timestamps, pcap on a pipe, parsed here). From the capture, per VRID, the spacing
of consecutive adverts from M; all spacings together give min / p1 / median / p99 / max and
the share within 100 +- 5 ms. Over the same window: the daemon's CPU (utime+stime of its
long-lived processes from /proc/<pid>/stat), the CPU of the scripts it ran and reaped
(cutime+cstime), its RSS and how busy the whole host was.

Run from the repo root as root:  .venv/bin/python bench/jitter.py [--seconds 20]
It prints figures; it never fails because something is slow (exit status != 0 only when
the lab could not be built or driven).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import signal
import stat
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import tree
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import VENV_BIN, Daemon, start_daemon
from tests.lab.lab import Lab, LabError, Node, ip_netns_list

N_INSTANCES = 200
PRIORITY = 200
ADV = 0.1  # s
TOLERANCE = 0.005  # s: the "within 5 ms of nominal"
GAP = 1.5 * ADV  # a spacing this long means an advert is missing
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
GLOBAL_EXTRA = "    enable_script_security\n    script_user root\n"


def vip(vrid: int) -> str:
    return f"198.19.0.{vrid}"


def config(tracked: bool, scripts: Path) -> str:
    blocks: list[str] = []
    for vrid in range(1, N_INSTANCES + 1):
        extra = ""
        if tracked:
            blocks.append(
                f"vrrp_script chk_{vrid} {{\n    script {scripts / 'chk.sh'}\n"
                "    interval 1\n    weight -10\n}\n"
                f"vrrp_track_file tf_{vrid} {{\n    file {scripts / f'track_{vrid}'}\n"
                "    weight 1\n}\n"
            )
            extra = (
                f"    track_script {{\n        chk_{vrid}\n    }}\n"
                f"    track_file {{\n        tf_{vrid}\n    }}"
            )
        blocks.append(
            vrrp_instance(
                f"VI_{vrid}", vrid=vrid, priority=PRIORITY, vips=(f"{vip(vrid)}/32",),
                advert_int=ADV, version=3, extra=extra,
            )
        )  # fmt: skip
    return keepalived_conf(*blocks, global_extra=GLOBAL_EXTRA)


def make_scripts_dir() -> Path:
    """Root-owned, private (mkdtemp: 0700): passes the script security checks."""
    d = Path(tempfile.mkdtemp(prefix="hk-jitter-"))
    chk = d / "chk.sh"
    chk.write_text("#!/bin/sh\nexit 0\n")
    chk.chmod(stat.S_IRWXU)
    for vrid in range(1, N_INSTANCES + 1):
        (d / f"track_{vrid}").write_text("0\n")
    return d


def count_vips(node: Node) -> int:
    try:
        r = node.run(["ip", "-j", "-4", "addr", "show", "dev", "eth0"], check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return -1
    return sum(
        1
        for link in json.loads(r.stdout or "[]")
        for a in link.get("addr_info", [])
        if a.get("local", "").startswith("198.19.0.")
    )


# -- /proc --------------------------------------------------------------------------------


def proc_times(pids: list[int]) -> dict[int, tuple[int, int, int]]:
    """pid -> (utime+stime, cutime+cstime, rss pages) for the pids still there."""
    out = {}
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(f[11]) + int(f[12]), int(f[13]) + int(f[14]), int(f[21]))
    return out


def host_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f[:8]) - idle, sum(f[:8])


# -- capture ------------------------------------------------------------------------------


def parse_pcap(data: bytes) -> list[tuple[float, str, int, int]]:
    """(timestamp, src, vrid, priority) for every IPv4 VRRP packet in a pcap stream."""
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    magic = struct.unpack_from(endian + "I", data)[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, off)
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(pkt) < incl:
            break  # truncated last record
        if linktype == 1:  # Ethernet (skip one VLAN tag if any)
            l2 = 14
            ethertype = struct.unpack_from("!H", pkt, 12)[0] if len(pkt) >= 14 else 0
            if ethertype == 0x8100 and len(pkt) >= 18:
                ethertype, l2 = struct.unpack_from("!H", pkt, 16)[0], 18
            if ethertype != 0x0800:
                continue
        elif linktype == 113:  # Linux cooked
            l2 = 16
        else:
            continue
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 112:
            continue
        vrrp = ip[(ip[0] & 0x0F) * 4 :]
        if len(vrrp) < 4:
            continue
        src = ".".join(str(b) for b in ip[12:16])
        out.append((sec + frac * scale, src, vrrp[1], vrrp[2]))
    return out


@dataclass
class Capture:
    packets: list[tuple[float, str, int, int]]
    window: float
    dropped: str  # tcpdump's own report ("N packets dropped by kernel")


def capture(
    c: Node,
    seconds: float,
    on_start: threading.Event,
    bpf: str = "ip proto 112",
    max_pkts: int | None = None,
    buffer_kib: int = 16384,
) -> Capture:
    """tcpdump on C's eth0 for `seconds`, pcap on a pipe; bounded in time and packets.
    `bpf` filters in the kernel (bench/dbus.py keeps one instance's adverts only)."""
    if max_pkts is None:
        max_pkts = int(seconds / ADV * N_INSTANCES * 3) + 1000
    argv = [
        "tcpdump", "-i", "eth0", "-n", "-p", "-B", str(buffer_kib), "-s", "96",
        "--time-stamp-precision=nano", "-c", str(max_pkts), "-w", "-", bpf,
    ]  # fmt: skip
    proc = c.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: list[bytes] = []
    err: list[bytes] = []

    def pump(stream, into: list[bytes]) -> None:  # type: ignore[no-untyped-def]
        for chunk in iter(lambda: stream.read1(1 << 16), b""):
            into.append(chunk)

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, chunks), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err), daemon=True),
    ]
    for t in threads:
        t.start()
    # tcpdump says "listening on eth0" on stderr once the socket is open
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b"listening on" not in b"".join(err):
        if proc.poll() is not None:
            raise LabError(f"tcpdump exited: {b''.join(err).decode(errors='replace')}")
        time.sleep(0.02)
    t0 = time.monotonic()
    on_start.set()
    time.sleep(seconds)
    window = time.monotonic() - t0
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)  # tcpdump flushes and prints its counters
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    for t in threads:
        t.join(5)
    text = b"".join(err).decode(errors="replace")
    m = re.search(r"(\d+) packets? dropped by kernel", text)
    return Capture(parse_pcap(b"".join(chunks)), window, m.group(1) if m else "?")


# -- the bench ----------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    spacings: list[float] = field(default_factory=list)  # s
    adverts: int = 0
    window: float = 0.0
    vrids_seen: int = 0
    bad_prio: int = 0
    prios: dict[int, int] = field(default_factory=dict)
    dropped: str = "?"
    cpu: float | None = None
    child_cpu: float | None = None
    rss: float | None = None
    host: float | None = None
    nproc: int = 0
    notes: list[str] = field(default_factory=list)


def log_errors(d: Daemon, limit: int = 5) -> list[str]:
    lines = [
        ln
        for ln in d.log_text().splitlines()
        if re.search(r"ERROR|Traceback|rror:|timed out|WARNING", ln)
    ]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def run(kind: str, tracked: bool, m: Node, c: Node, scripts: Path, args) -> Result:  # type: ignore[no-untyped-def]
    label = f"{kind} {'track' if tracked else 'base'}"
    res = Result(label)
    print(f"== {label}: {N_INSTANCES} instances" + (" + trackers" if tracked else ""), flush=True)
    t0 = time.monotonic()
    d = start_daemon(m, kind, config(tracked, scripts), suffix=".conf")
    try:
        good, n = 0, 0
        deadline = time.monotonic() + args.converge_timeout
        while time.monotonic() < deadline and good < 2 and d.alive():
            n = count_vips(m)
            good = good + 1 if n == N_INSTANCES else 0
            time.sleep(0.3)
        print(f"   VIPs on M {n}/{N_INSTANCES} after {time.monotonic() - t0:.1f} s "
              f"(alive {d.alive()})", flush=True)  # fmt: skip
        if not d.alive():
            res.notes.append("daemon died: " + " | ".join(d.log_text().splitlines()[-5:]))
            return res
        if good < 2:
            res.notes.append(f"not converged ({n}/{N_INSTANCES} VIPs); measured anyway")
        time.sleep(args.warmup)
        assert d.proc is not None
        pids = tree(d.proc.pid)
        started = threading.Event()
        box: dict[str, object] = {}

        def cap() -> None:
            try:
                box["cap"] = capture(c, args.seconds, started)
            except BaseException as e:  # re-raised by the caller
                box["err"] = e
                started.set()

        th = threading.Thread(target=cap, daemon=True)
        th.start()
        started.wait(15)
        before, h0, w0 = proc_times(pids), host_busy(), time.monotonic()
        th.join(args.seconds + 30)
        after, h1, w1 = proc_times(pids), host_busy(), time.monotonic()
        if "err" in box:
            raise box["err"]  # type: ignore[misc]
        cp = box.get("cap")
        if not isinstance(cp, Capture):
            res.notes.append("capture did not finish")
            return res
        # long-lived processes only (the daemon, keepalived's VRRP child): a script that
        # happened to be running at one end of the window is not counted here, it is in
        # the parent's cutime/cstime once reaped
        both = [p for p in before if p in after]
        elapsed = w1 - w0
        res.nproc = len(both)
        res.cpu = sum(after[p][0] - before[p][0] for p in both) / CLK_TCK / elapsed * 100
        res.child_cpu = sum(after[p][1] - before[p][1] for p in both) / CLK_TCK / elapsed * 100
        res.rss = sum(after[p][2] for p in both) * PAGE / 2**20
        res.host = (h1[0] - h0[0]) / max(1, h1[1] - h0[1]) * 100
        analyse(res, cp, m.ipv4)
        if count_vips(m) != N_INSTANCES:
            res.notes.append("VIPs on M changed during the window")
        errs = log_errors(d)
        if errs:
            res.notes.append("log: " + " | ".join(errs))
    finally:
        rc = d.stop(timeout=args.stop_timeout)
        print(f"   stopped {kind}: rc {rc}", flush=True)
    return res


def analyse(res: Result, cp: Capture, src: str) -> None:
    by_vrid: dict[int, list[float]] = {}
    for ts, s, vrid, prio in cp.packets:
        if s != src:
            continue
        by_vrid.setdefault(vrid, []).append(ts)
        res.prios[prio] = res.prios.get(prio, 0) + 1
        if prio != PRIORITY:
            res.bad_prio += 1
        res.adverts += 1
    for ts in by_vrid.values():
        ts.sort()
        res.spacings += [b - a for a, b in itertools.pairwise(ts)]
    res.vrids_seen = len(by_vrid)
    res.window = cp.window
    res.dropped = cp.dropped


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted xs."""
    return xs[max(0, min(len(xs) - 1, math.ceil(q / 100 * len(xs)) - 1))]


def within(xs: list[float]) -> float:
    return sum(abs(s - ADV) <= TOLERANCE for s in xs) / len(xs)


def report(results: list[Result], args) -> None:  # type: ignore[no-untyped-def]
    print()
    print(
        f"{N_INSTANCES} VRRPv3 instances, advert_int {ADV * 1000:g} ms, master M, capture on C "
        f"for {args.seconds:g} s after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs"
    )
    print("track = every instance: own vrrp_script (exit 0, interval 1 s, weight -10) + own "
          "vrrp_track_file (value 0, weight 1); base = no trackers")  # fmt: skip

    def col(fn) -> list[str]:  # type: ignore[no-untyped-def]
        out = []
        for r in results:
            try:
                out.append(fn(r))
            except (ValueError, IndexError, TypeError, ZeroDivisionError):
                out.append("n/a")
        return out

    def ms(q: float | None) -> list[str]:
        def f(r: Result) -> str:
            xs = sorted(r.spacings)
            v = (
                xs[0] if q == 0 else xs[-1] if q == 100 else statistics.median(xs)
                if q == 50 else pct(xs, q)  # type: ignore[arg-type]
            )  # fmt: skip
            return f"{v * 1000:.2f}"

        return col(f)

    nominal = N_INSTANCES / ADV
    rows = [
        ("adverts captured", col(lambda r: str(r.adverts))),
        (f"adverts/s (nominal {nominal:g})", col(lambda r: f"{r.adverts / r.window:.0f}")),
        ("VRIDs seen", col(lambda r: str(r.vrids_seen))),
        ("spacing min ms", ms(0)),
        ("spacing p1 ms", ms(1)),
        ("spacing median ms", ms(50)),
        ("spacing p99 ms", ms(99)),
        ("spacing max ms", ms(100)),
        (
            "within 100+-5 ms %",
            col(lambda r: f"{within(r.spacings) * 100:.2f}"),
        ),
        (f"gaps > {GAP * 1000:g} ms", col(lambda r: str(sum(s > GAP for s in r.spacings)))),
        (f"adverts prio != {PRIORITY}", col(lambda r: str(r.bad_prio))),
        ("daemon CPU % (1 core)", col(lambda r: f"{r.cpu:.1f}")),
        ("reaped scripts CPU %", col(lambda r: f"{r.child_cpu:.1f}")),
        ("RSS MiB", col(lambda r: f"{r.rss:.1f}")),
        ("host busy % (all CPUs)", col(lambda r: f"{r.host:.1f}")),
        ("daemon processes", col(lambda r: str(r.nproc))),
        ("tcpdump kernel drops", col(lambda r: r.dropped)),
    ]
    w = max(16, *(len(r.label) for r in results))
    head = f"{'metric':28s} | " + " | ".join(f"{r.label:>{w}s}" for r in results)
    print(head)
    print("-" * len(head))
    for name, vals in rows:
        print(f"{name:28s} | " + " | ".join(f"{v:>{w}s}" for v in vals))
    print(
        f"target (issue): with trackers, every spacing within {ADV * 1000:g} +- "
        f"{TOLERANCE * 1000:g} ms"
    )
    for r in results:
        if r.spacings:
            lo, hi = min(r.spacings), max(r.spacings)
            ok = abs(lo - ADV) <= TOLERANCE and abs(hi - ADV) <= TOLERANCE
            ok99 = (
                abs(pct(sorted(r.spacings), 1) - ADV) <= TOLERANCE
                and abs(pct(sorted(r.spacings), 99) - ADV) <= TOLERANCE
            )
            print(f"  {r.label:{w}s}: min..max {'met' if ok else 'MISSED'}, "
                  f"p1..p99 {'met' if ok99 else 'MISSED'}")  # fmt: skip
        if r.prios and set(r.prios) != {PRIORITY}:
            print(f"  {r.label}: priorities on the wire {dict(sorted(r.prios.items()))}")
        for n in r.notes:
            print(f"  note: {r.label}: {n[:600]}")


def check_config(scripts: Path) -> None:
    """hakeeper must accept the tracked config (the same text keepalived gets)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", dir=scripts, delete=False) as f:
        f.write(config(True, scripts))
    try:
        r = subprocess.run(
            [str(VENV_BIN / "hakeeper"), "-t", "-f", f.name],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise LabError(f"hakeeper -t rejects the config: {(r.stderr or r.stdout)[-1500:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="capture window per run")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--converge-timeout", type=float, default=60.0)
    ap.add_argument("--stop-timeout", type=float, default=15.0)
    ap.add_argument(
        "--runs",
        default="hakeeper:base,hakeeper:track,keepalived:track,keepalived:base",
        help="comma-separated DAEMON:base|track, run in this order",
    )
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    runs = [(k, t == "track") for k, t in (s.split(":") for s in args.runs.split(","))]
    scripts = make_scripts_dir()
    results: list[Result] = []
    try:
        check_config(scripts)
        with Lab() as lab:
            m, c = lab.add_nodes("M", "C")
            for kind, tracked in runs:
                results.append(run(kind, tracked, m, c, scripts, args))
            prefix = lab.prefix
    finally:
        shutil.rmtree(scripts, ignore_errors=True)
    report(results, args)
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
