"""Failover time, hakeeper vs keepalived, measured in one lab run.

Lab: routers r1 (priority 150) and r2 (priority 100) and a client on one segment,
VIP 198.18.0.100/24. For each daemon and each row ({hard cut, graceful SIGTERM} x
{VRRPv2 advert_int 1 s, VRRPv3 advert_int 0.1 s}) the master r1 is failed several times at
a random phase of its advert timer, and two delays are measured from the failure instant:

  vip   the VIP appears in r2's kernel: an rtnetlink listener in r2 (RTMGRP_IPV4_IFADDR)
        timestamps the RTM_NEWADDR for the VIP the moment it arrives;
  ping  the client reaches the VIP again: a probe in the client sends ICMP echo to the VIP
        every 1 ms and timestamps the replies; the figure is the receive time of the first
        reply after the outage (the first reply to a request sent after the last request,
        sent after the failure, that was lost).

Failure instant: for a cut, the time a persistent pyroute2 process in the switch namespace
got the kernel's ack for "switch-side veth down"; for a graceful stop, time.time() just
before os.kill(SIGTERM). CLOCK_REALTIME is shared by all namespaces.

Run from the repo root as root:  .venv/bin/python bench/failover.py [--reps N] [--quick]
It prints figures; it never fails because something is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon
from tests.lab.lab import PYTHON, REPO, Lab, Node, ip_netns_list, wait_until

VIP = "198.18.0.100"
VIP_CIDR = f"{VIP}/24"
PRIO_MASTER, PRIO_BACKUP = 150, 100

# -- probes (run inside the namespaces) ---------------------------------------------------

# Prints "A <time> <addr>" / "D <time> <addr>" for every IPv4 address added/removed.
ADDR_PROBE = r"""
import socket, struct, sys, time, ipaddress
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((0, 0x10))  # RTMGRP_IPV4_IFADDR
print("READY", flush=True)
while True:
    data = s.recv(65536)
    now = time.time()
    off = 0
    while off + 16 <= len(data):
        ln, typ = struct.unpack_from("=IH", data, off)
        if ln < 16:
            break
        if typ in (20, 21):  # RTM_NEWADDR, RTM_DELADDR
            a = off + 16 + 8
            addr = None
            while a + 4 <= off + ln:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype in (1, 2) and alen == 8:  # IFA_ADDRESS / IFA_LOCAL
                    addr = str(ipaddress.IPv4Address(data[a + 4 : a + 8]))
                    if atype == 2:
                        break
                a += (alen + 3) & ~3
            if addr:
                print("A" if typ == 20 else "D", repr(now), addr, flush=True)
        off += (ln + 3) & ~3
"""

# ICMP echo to the VIP every INTERVAL s; "READY" after the first reply; on "STOP" (stdin)
# waits 50 ms for stragglers and prints {"sent": [[seq, t]...], "rcvd": [[seq, t]...]}.
# Bounded: at most MAX_S seconds and MAX_S / INTERVAL requests.
PING_PROBE = r"""
import json, os, select, socket, struct, sys, time
DST, INTERVAL, MAX_S = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ident = os.getpid() & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setblocking(False)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF

sent, rcvd = [], []
seq = 0
start = time.monotonic()
next_tx = start
ready = False
stop_at = None
stdin = sys.stdin.fileno()
while True:
    now = time.monotonic()
    if now - start > MAX_S or (stop_at is not None and now >= stop_at):
        break
    if now >= next_tx and stop_at is None and seq < 65535:
        seq += 1
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"hakeeper-bench"
        pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
        t = time.time()
        try:
            s.sendto(pkt, (DST, 0))
            sent.append((seq, t))
        except OSError:
            sent.append((seq, t))  # counted as lost
        next_tx += INTERVAL
        if next_tx < now:
            next_tx = now + INTERVAL
    timeout = max(0.0, min(next_tx, stop_at or next_tx) - time.monotonic())
    r, _, _ = select.select([s, stdin] if stop_at is None else [s], [], [], timeout)
    if s in r:
        while True:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                break
            t = time.time()
            ihl = (data[0] & 0x0F) * 4
            typ, _code, _ck, rid, rseq = struct.unpack_from("!BBHHH", data, ihl)
            if typ == 0 and rid == ident:
                rcvd.append((rseq, t))
                if not ready:
                    ready = True
                    print("READY", flush=True)
    if stdin in r:
        line = os.read(stdin, 100)
        stop_at = time.monotonic() + 0.05
print(json.dumps({"sent": sent, "rcvd": rcvd}), flush=True)
"""

# Persistent link switch in the switch namespace: "down IF" / "up IF" on stdin, answers
# "OK <time after the kernel's ack>".
SWITCH_PROBE = r"""
import socket, sys, time
from pyroute2 import IPRoute
ipr = IPRoute()
print("READY", flush=True)
for line in sys.stdin:
    op, ifname = line.split()
    idx = socket.if_nametoindex(ifname)
    t0 = time.time()
    ipr.link("set", index=idx, state=op)
    t1 = time.time()
    print("OK", repr(t1), repr(t1 - t0), flush=True)
"""


class LineReader:
    """Reads a process's stdout lines in a thread into a queue (and an optional list)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))

    def get(self, timeout: float) -> str | None:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.get(left)
            if line is not None and line.startswith(prefix):
                return line
        raise RuntimeError(f"probe gave no {prefix!r} within {timeout} s")


class AddrWatch:
    """The rtnetlink listener in the backup: keeps every add/del event with its time."""

    def __init__(self, node: Node) -> None:
        proc = node.popen_python(
            ADDR_PROBE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.reader = LineReader(proc)
        self.reader.expect("READY", 10)
        self.events: list[tuple[str, float, str]] = []

    def _drain(self, timeout: float) -> None:
        line = self.reader.get(timeout)
        while line is not None:
            kind, t, addr = line.split()
            self.events.append((kind, float(t), addr))
            line = self.reader.get(0)

    def first_add_after(self, t0: float, addr: str, within: float) -> float | None:
        deadline = time.monotonic() + within
        while True:
            for kind, t, a in self.events:
                if kind == "A" and a == addr and t >= t0:
                    return t
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._drain(min(left, 0.05))


class Switch:
    def __init__(self, lab: Lab) -> None:
        argv = ["ip", "netns", "exec", lab.switch, PYTHON, "-c", SWITCH_PROBE]
        proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        lab.processes.append(proc)  # ended by PID at lab.close()
        self.proc = proc
        self.reader = LineReader(proc)
        self.reader.expect("READY", 10)

    def set(self, lab: Lab, node: Node, op: str) -> float:
        assert self.proc.stdin is not None
        port = node.ports[node.ifname]
        self.proc.stdin.write(f"{op} {port.switch_ifname}\n")
        self.proc.stdin.flush()
        return float(self.reader.expect("OK", 10).split()[1])


def ping_outage(result: dict[str, Any], t_fail: float) -> tuple[float | None, int]:
    """Receive time of the first reply after the outage that follows t_fail; lost count."""
    rcvd = {seq: t for seq, t in result["rcvd"]}
    after = [(seq, t) for seq, t in result["sent"] if t >= t_fail]
    lost = [t for seq, t in after if seq not in rcvd]
    last_lost = max(lost) if lost else t_fail
    answers = [rcvd[seq] for seq, t in after if seq in rcvd and t > last_lost]
    return (min(answers) if answers else None), len(lost)


# -- the bench ----------------------------------------------------------------------------


@dataclass
class Row:
    kind: str  # "hard" | "graceful"
    version: int
    adv: float
    reps: int
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kind:8s} v{self.version} adv {self.adv:g}s"

    def theory(self) -> tuple[float, float]:
        skew = (256 - PRIO_BACKUP) / 256 * self.adv
        if self.kind == "graceful":
            return skew, skew
        # master down = 3 x adv + skew after the last advert heard, which left 0..adv before
        # the failure
        return 2 * self.adv + skew, 3 * self.adv + skew


def conf(version: int, adv: float, priority: int) -> str:
    inst = vrrp_instance(
        "VI_1", vrid=51, priority=priority, vips=(VIP_CIDR,), advert_int=adv, version=version
    )
    return keepalived_conf(inst)


def has_vip(node: Node) -> bool:
    return VIP in node.addresses("eth0")


def converge(r1: Node, r2: Node, client: Node, adv: float, d1: Daemon, d2: Daemon) -> None:
    """r1 master with the VIP, r2 backup without it, the client's ARP entry on r1's MAC."""
    ok = wait_until(lambda: has_vip(r1) and not has_vip(r2), within=10 + 5 * adv, step=0.02)
    if not ok:
        raise RuntimeError(
            f"no convergence: r1 {has_vip(r1)} r2 {has_vip(r2)}\n--r1--\n"
            f"{d1.log_text()[-2000:]}\n--r2--\n{d2.log_text()[-2000:]}"
        )
    r1_mac = r1.mac()

    def client_on_r1() -> bool:
        client.run(["ping", "-c", "1", "-W", "0.2", VIP], check=False)
        return client.neighbour(VIP) == r1_mac

    if not wait_until(client_on_r1, within=5, step=0.1):
        raise RuntimeError("client's neighbour entry for the VIP never pointed at r1")
    # let r2 settle as backup (a few adverts) and r1's delayed GARPs go out
    time.sleep(max(1.2, 3 * adv))
    if not (has_vip(r1) and not has_vip(r2)):
        raise RuntimeError("lost convergence while settling")


def one_rep(
    lab: Lab, row: Row, r1: Node, r2: Node, client: Node, d1: Daemon, d2: Daemon,
    sw: Switch, watch: AddrWatch,
) -> tuple[float | None, float | None, str]:  # fmt: skip
    converge(r1, r2, client, row.adv, d1, d2)
    max_s = 3 * row.adv + 6
    ping = client.popen(
        [PYTHON, "-c", PING_PROBE, VIP, "0.001", str(max_s)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    reader = LineReader(ping)
    reader.expect("READY", 5)
    time.sleep(random.uniform(0, row.adv))
    if row.kind == "hard":
        t_fail = sw.set(lab, r1, "down")
    else:
        assert d1.proc is not None
        t_fail = time.time()
        os.kill(d1.proc.pid, signal.SIGTERM)
    t_vip = watch.first_add_after(t_fail, VIP, within=3 * row.adv + 3)
    time.sleep(0.3 if t_vip is not None else 0)
    assert ping.stdin is not None
    ping.stdin.write("STOP\n")
    ping.stdin.flush()
    line = reader.expect("{", max_s + 2)
    ping.wait(5)
    t_ping, lost = ping_outage(json.loads(line), t_fail)
    note = f"lost {lost}"
    # undo the failure
    if row.kind == "hard":
        sw.set(lab, r1, "up")
    else:
        d1.proc.wait(10)
        d1.start()
    return (
        None if t_vip is None else t_vip - t_fail,
        None if t_ping is None else t_ping - t_fail,
        note,
    )


def bench_daemon(lab: Lab, kind: str, rows: list[Row], nodes: tuple[Node, ...],
                 sw: Switch, watch: AddrWatch) -> None:  # fmt: skip
    r1, r2, client = nodes
    for version, adv in sorted({(r.version, r.adv) for r in rows}):
        d1 = start_daemon(r1, kind, conf(version, adv, PRIO_MASTER), suffix=".conf")
        d2 = start_daemon(r2, kind, conf(version, adv, PRIO_BACKUP), suffix=".conf")
        try:
            for row in rows:
                if (row.version, row.adv) != (version, adv):
                    continue
                s = row.samples.setdefault(kind, {"vip": [], "ping": []})
                for i in range(row.reps):
                    vip, png, note = one_rep(lab, row, r1, r2, client, d1, d2, sw, watch)
                    fmt = lambda x: "  n/a " if x is None else f"{x * 1000:6.1f}"  # noqa: E731
                    print(f"  {kind:10s} {row.label} rep {i + 1}: vip {fmt(vip)} ms"
                          f"  ping {fmt(png)} ms  ({note})", flush=True)  # fmt: skip
                    if vip is not None:
                        s["vip"].append(vip)
                    else:
                        row.notes.append(f"{kind}: rep {i + 1} VIP never seen on r2")
                    if png is not None:
                        s["ping"].append(png)
                    else:
                        row.notes.append(f"{kind}: rep {i + 1} client never reached VIP")
        finally:
            d1.stop()
            d2.stop()
        # both gone: no VIP left behind
        wait_until(lambda: not has_vip(r1) and not has_vip(r2), within=3)


def stats(xs: list[float]) -> str:
    if not xs:
        return f"{'n/a':>23s}"
    return (
        f"{min(xs) * 1000:6.0f} {statistics.median(xs) * 1000:7.0f} {max(xs) * 1000:7.0f}" + " " * 2
    )


def report(rows: list[Row]) -> None:
    print()
    print("Failover time from the failure instant, ms (min / median / max over reps)")
    print("vip = VIP in the backup's kernel (RTM_NEWADDR); ping = client reaches VIP again")
    head = (
        f"{'row':22s} {'metric':5s} | {'hakeeper min med max':>23s} | "
        f"{'keepalived min med max':>24s} | {'Δmed':>6s} | theory"
    )
    print(head)
    print("-" * len(head) + "-" * 12)
    for row in rows:
        lo, hi = row.theory()
        th = f"{lo * 1000:.0f}" if lo == hi else f"{lo * 1000:.0f}..{hi * 1000:.0f}"
        for metric in ("vip", "ping"):
            hk = row.samples.get("hakeeper", {}).get(metric, [])
            ka = row.samples.get("keepalived", {}).get(metric, [])
            diff = (
                f"{(statistics.median(hk) - statistics.median(ka)) * 1000:+6.0f}"
                if hk and ka
                else f"{'n/a':>6s}"
            )
            print(
                f"{row.label:22s} {metric:5s} | {stats(hk)} | {stats(ka)}  | {diff} | "
                f"{th if metric == 'vip' else ''}"
            )
    print(
        "theory: hard = master down interval (3 x adv + skew) minus the random phase of the "
        "last advert (0..adv) => 2 x adv + skew .. 3 x adv + skew; graceful = skew "
        f"((256 - {PRIO_BACKUP}) / 256 x adv). Δmed = hakeeper - keepalived."
    )
    for row in rows:
        for n in row.notes:
            print(f"note: {row.label}: {n}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, help="repetitions per row (default 5 for v3, 3 for v2)")
    ap.add_argument("--quick", action="store_true", help="2 reps for v3, 1 for v2")
    ap.add_argument("--daemons", default="hakeeper,keepalived")
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    random.seed(args.seed)

    def reps(v: int) -> int:
        if args.reps:
            return args.reps
        if args.quick:
            return 2 if v == 3 else 1
        return 5 if v == 3 else 3

    rows = [
        Row(kind, version, adv, reps(version))
        for kind in ("hard", "graceful")
        for version, adv in ((2, 1.0), (3, 0.1))
    ]
    with Lab() as lab:
        r1, r2, client = lab.add_nodes("r1", "r2", "client")
        sw = Switch(lab)
        watch = AddrWatch(r2)
        for kind in args.daemons.split(","):
            print(f"== {kind}", flush=True)
            bench_daemon(lab, kind, rows, (r1, r2, client), sw, watch)
        mine = [ns for ns in ip_netns_list() if ns.startswith(lab.prefix)]
    report(rows)
    left = [ns for ns in ip_netns_list() if ns.startswith(lab.prefix)]
    print(f"lab namespaces during run: {len(mine)}, left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
