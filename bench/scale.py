"""CPU and memory with 1000 VRRP instances, hakeeper vs keepalived.

Lab: nodes M (priority 200, master of everything) and B (priority 100, backup of
everything) on 4 L2 segments (eth0..eth3). A VRID is per interface, so each segment carries
250 instances (VRID 1..250), 1000 in all, VRRPv2 (default; --version 3 for v3) with
advert_int 1 s, each with its own VIP 198.19.<segment>.<vrid>/32 (inside 198.18.0.0/15 and
never a node's own address, which are all in 198.18.0.0/16).

Per daemon (hakeeper first, then keepalived, never both at once): start on M and B, wait
until M holds all 1000 VIPs and B none (printed), warm up, then measure over --seconds:

  CPU %  of one core, from utime+stime in /proc/<pid>/stat, summed over the daemon's
         process tree (keepalived: parent + VRRP child), delta / (CLK_TCK x seconds);
  RSS    VmRSS from /proc/<pid>/status summed over the tree, at the end of the window.

Run from the repo root as root:  .venv/bin/python bench/scale.py [--seconds 30]
It prints figures and the targets; it never fails because something is slow or big.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon
from tests.lab.lab import Lab, Node, ip_netns_list

SEGMENTS = 4
PER_SEGMENT = 250
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_CPU_RATIO = 2.0
TARGET_RSS_MIB = 48.0


def vip(seg: int, vrid: int) -> str:
    return f"198.19.{seg}.{vrid}"


def config(priority: int, version: int, adv: float) -> str:
    insts = [
        vrrp_instance(
            f"VI_{seg}_{vrid}",
            interface=f"eth{seg}",
            vrid=vrid,
            priority=priority,
            vips=(f"{vip(seg, vrid)}/32",),
            advert_int=adv,
            version=version,
        )
        for seg in range(SEGMENTS)
        for vrid in range(1, PER_SEGMENT + 1)
    ]
    return keepalived_conf(*insts)


def count_vips(node: Node) -> int:
    try:
        r = node.run(["ip", "-j", "-4", "addr", "show"], check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return -1  # the host is too busy to answer: counts as not converged
    return sum(
        1
        for link in json.loads(r.stdout or "[]")
        for a in link.get("addr_info", [])
        if a.get("local", "").startswith("198.19.")
    )


# -- /proc --------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def rss_kib(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M)
        except OSError:
            continue
        if m:
            total += int(m.group(1))
    return total


# -- the bench ----------------------------------------------------------------------------


def log_errors(d: Daemon, limit: int = 5) -> list[str]:
    lines = [ln for ln in d.log_text().splitlines() if re.search(r"ERROR|Traceback|rror:", ln)]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def bench(lab: Lab, kind: str, m: Node, b: Node, args: argparse.Namespace) -> list[tuple]:
    total = SEGMENTS * PER_SEGMENT
    print(f"== {kind}: starting {total} instances on M and B", flush=True)
    t0 = time.monotonic()
    dm = start_daemon(m, kind, config(200, args.version, args.adv), suffix=".conf", quiet=True)
    db = start_daemon(b, kind, config(100, args.version, args.adv), suffix=".conf", quiet=True)
    rows: list[tuple] = []
    try:
        # convergence: all VIPs on M, none on B, stable for 3 consecutive checks
        deadline = time.monotonic() + args.converge_timeout
        good, nm, nb = 0, 0, 0
        while time.monotonic() < deadline and good < 3:
            if not (dm.alive() and db.alive()):
                break
            nm, nb = count_vips(m), count_vips(b)
            good = good + 1 if (nm == total and nb == 0) else 0
            time.sleep(0.5)
        took = time.monotonic() - t0
        print(
            f"   converged={good >= 3}: VIPs on M {nm}/{total}, on B {nb} "
            f"after {took:.1f} s (M alive {dm.alive()}, B alive {db.alive()})",
            flush=True,
        )
        if good < 3:
            for name, d in (("M", dm), ("B", db)):
                print(f"   {name} log errors: {log_errors(d)}")
                print(f"   {name} log tail:\n" + "\n".join(d.log_text().splitlines()[-15:]))
            if not (dm.alive() and db.alive()):
                return [(kind, "M", None, None, "daemon died"), (kind, "B", None, None, "")]
            print("   measuring anyway", flush=True)
        time.sleep(args.warmup)
        assert dm.proc is not None and db.proc is not None
        trees = {"M": tree(dm.proc.pid), "B": tree(db.proc.pid)}
        start = {r: cpu_ticks(p) for r, p in trees.items()}
        t_start = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - t_start
        end = {r: cpu_ticks(p) for r, p in trees.items()}
        after_m, after_b = count_vips(m), count_vips(b)
        for role in ("M", "B"):
            cpu = (end[role] - start[role]) / CLK_TCK / elapsed * 100
            rss = rss_kib(trees[role]) / 1024
            note = f"{len(trees[role])} proc"
            rows.append((kind, role, cpu, rss, note))
        stable = after_m == total and after_b == 0
        print(f"   after the window: VIPs on M {after_m}, on B {after_b} (stable={stable})")
        for name, d in (("M", dm), ("B", db)):
            errs = log_errors(d)
            if errs:
                print(f"   {name} log errors: {errs}")
    finally:
        t_stop = time.monotonic()
        for d in (db, dm):
            rc = d.stop(timeout=args.stop_timeout)
            print(
                f"   stopped {kind} on {d.node.name}: rc {rc} in {time.monotonic() - t_stop:.1f} s"
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--version", type=int, default=2, choices=(2, 3))
    ap.add_argument("--adv", type=float, default=1.0)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=15.0)
    ap.add_argument("--daemons", default="hakeeper,keepalived")
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    rows: list[tuple] = []
    with Lab() as lab:
        segs = ["lan"]
        for i in range(1, SEGMENTS):
            lab.add_segment(f"s{i}")
            segs.append(f"s{i}")
        m = lab.add_node("M", segments=segs)
        b = lab.add_node("B", segments=segs)
        for kind in args.daemons.split(","):
            rows += bench(lab, kind, m, b, args)
        prefix = lab.prefix
    total = SEGMENTS * PER_SEGMENT
    print()
    print(
        f"{total} instances (VRRPv{args.version}, advert_int {args.adv:g} s, "
        f"{SEGMENTS} segments x {PER_SEGMENT}), window {args.seconds:g} s, "
        f"warm-up {args.warmup:g} s, {os.cpu_count()} CPUs"
    )
    print(f"{'daemon':11s} {'role':9s} {'CPU %':>7s} {'RSS MiB':>8s}  note")
    for kind, role, cpu, rss, note in rows:
        c = "n/a" if cpu is None else f"{cpu:.2f}"
        r = "n/a" if rss is None else f"{rss:.1f}"
        print(f"{kind:11s} {role + ('(master)' if role == 'M' else '(backup)'):9s} "
              f"{c:>7s} {r:>8s}  {note}")  # fmt: skip
    by = {(k, r): (c, s) for k, r, c, s, _ in rows}
    print(
        f"targets: hakeeper CPU <= {TARGET_CPU_RATIO:g} x keepalived, RSS <= {TARGET_RSS_MIB:g} MiB"
    )
    for role in ("M", "B"):
        hk, ka = by.get(("hakeeper", role)), by.get(("keepalived", role))
        if not hk or not ka or hk[0] is None or ka[0] is None:
            print(f"  {role}: n/a")
            continue
        ratio = hk[0] / ka[0] if ka[0] else float("inf")
        print(
            f"  {role}: CPU ratio {ratio:.2f} ({'met' if ratio <= TARGET_CPU_RATIO else 'MISSED'}),"
            f" RSS {hk[1]:.1f} MiB ({'met' if hk[1] <= TARGET_RSS_MIB else 'MISSED'})"
        )
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
