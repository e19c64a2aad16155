"""Soak: does hakeeper's memory or CPU creep over an hour of 200 instances and checkers?

Lab (tests/lab): a master M (segments lan + rs) running hakeeper with --instances VRRPv3
instances (default 200, VRID 1.., advert_int 0.1 s, one VIP each, 198.19.0.<vrid>/32) and
--vs virtual servers of --rs real servers each (default 20 x 10), every real server with a
TCP_CHECK and an HTTP_GET at delay_loop 1; a backup B with the same instances at a lower
priority (so M also receives adverts; B's figures are printed too); a farm node F on rs
holding the real-server addresses (198.18.4.0/22, routed to it by M and B) served by two
tiny HTTP processes (bench/lvs.py's). M's daemon serves its D-Bus API on a private bus
(tests/lab/dbusbus.py) unless --no-dbus.

Every --interval seconds: RSS (VmRSS) and CPU % of one core over the interval of M's daemon,
of its checker process (hakeeper-check) and of B's daemon. Every --reload-every minutes (0:
never) M and B are reloaded (SIGHUP) with a config that differs from the running one: the
last instance comes or goes and one real server's weight changes, so each reload creates or
drops an engine, its VIP and its objects.

Printed: the curve's first and last samples, RSS start -> end, the least-squares slope of
RSS (KiB per hour) over the samples after --warmup and over the last half, mean CPU, reloads
done, VIPs held at the end. It never fails on figures; an exit status other than 0 means the
lab could not be built.

Run by hand from the repo root as root (never in CI):
    .venv/bin/python bench/soak.py                    # 60 min
    .venv/bin/python bench/soak.py --minutes 3 --interval 5 --reload-every 1
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.jitter import count_vips, log_errors
from bench.lvs import FARM_SERVER, farm_address
from bench.scale import cpu_ticks, rss_kib
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import Lab, Node, ip_netns_list

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHECKER = "hakeeper-check"  # the checker process's name (comm)


def vip(vrid: int) -> str:
    return f"198.19.0.{vrid}"


def config(args: argparse.Namespace, priority: int, variant: int) -> str:
    """keepalived.conf text; `variant` 0/1 differ in the last instance and one weight."""
    n = args.instances - (1 if variant else 0)
    out = ["global_defs {\n    router_id soak\n    lvs_counters_interval 30\n}\n"]
    for vrid in range(1, n + 1):
        out.append(
            f"vrrp_instance VI_{vrid} {{\n    state BACKUP\n    interface eth0\n"
            f"    virtual_router_id {vrid}\n    priority {priority}\n    version 3\n"
            f"    advert_int {args.adv:g}\n"
            f"    virtual_ipaddress {{\n        {vip(vrid)}/32\n    }}\n}}\n"
        )
    for v in range(args.vs):
        rs = []
        for i in range(args.rs):
            weight = 2 if (variant and v == 0 and i == 0) else 1
            rs.append(
                f"    real_server {farm_address(v * args.rs + i)} 80 {{\n"
                f"        weight {weight}\n"
                "        TCP_CHECK {\n            connect_timeout 2\n        }\n"
                "        HTTP_GET {\n            url {\n                path /\n"
                "                status_code 200\n            }\n"
                "            connect_timeout 2\n        }\n    }\n"
            )
        out.append(
            f"virtual_server 198.18.0.100 {8000 + v} {{\n    delay_loop 1\n    protocol TCP\n"
            f"    lvs_sched wrr\n    lvs_method NAT\n{''.join(rs)}}}\n"
        )
    return "".join(out)


def build(lab: Lab, n_rs: int) -> tuple[Node, Node, Node]:
    lab.add_segment("rs")
    m = lab.add_node("M", segments=("lan", "rs"))
    b = lab.add_node("B", segments=("lan", "rs"))
    f = lab.add_node("farm", segments=("rs",))
    for d in (m, b):
        d.sysctl("net.ipv4.ip_forward", 1)
        d.run(["ip", "route", "add", "198.18.4.0/22", "via", f.ipv4])
    f.run(["ip", "route", "add", "default", "via", m.ports["eth1"].ipv4])
    f.run(["ip", "-batch", "-"], input="".join(
        f"addr add {farm_address(i)}/32 dev lo\n" for i in range(n_rs)))  # fmt: skip
    for _ in range(2):
        f.popen_python(FARM_SERVER, stderr=subprocess.DEVNULL)
    probe = f"import urllib.request as u; u.urlopen('http://{farm_address(n_rs - 1)}/', timeout=1)"
    if not wait_for(lambda: m.python(probe, check=False).returncode == 0, within=10):
        raise RuntimeError("the farm does not answer")
    return m, b, f


def checker_pid(daemon_pid: int) -> int | None:
    """The daemon's checker child, found by parent PID and name (it may have been replaced)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == daemon_pid and (entry / "comm").read_text().strip() == CHECKER:
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


@dataclass
class Sample:
    t: float  # seconds since the first sample
    rss: dict[str, float]  # MiB by process label
    cpu: dict[str, float]  # % of one core over the interval before this sample


@dataclass
class Watch:
    """Samples of a few processes; a process replaced under a label (checker) is followed."""

    pids: dict[str, int]
    samples: list[Sample] = field(default_factory=list)
    _last: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (pid, ticks)
    _t0: float = 0.0
    _prev: float = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if not self.samples:
            self._t0 = self._prev = now
        rss, cpu = {}, {}
        for label, pid in self.pids.items():
            ticks = cpu_ticks([pid])
            rss[label] = rss_kib([pid]) / 1024
            last = self._last.get(label)
            if last is not None and last[0] == pid and now > self._prev:
                cpu[label] = (ticks - last[1]) / CLK_TCK / (now - self._prev) * 100
            self._last[label] = (pid, ticks)
        self.samples.append(Sample(now - self._t0, rss, cpu))
        self._prev = now


def slope_kib_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) in KiB per hour."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx * 1024 * 3600


def vrrp_drops(node: Node) -> int:
    """Packets the kernel dropped on the node's VRRP (raw, protocol 112) sockets: a full
    receive buffer while the daemon's loop was busy."""
    total = 0
    for line in node.run(["cat", "/proc/net/raw", "/proc/net/raw6"]).stdout.splitlines():
        f = line.split()
        if len(f) > 12 and f[1].endswith(":0070"):
            total += int(f[-1])
    return total


def reload(daemon: Daemon, text: str) -> None:
    daemon.config.write_text(text)
    daemon.reload()


def soak(args: argparse.Namespace, m: Node, b: Node, bus: PrivateBus | None) -> dict:
    n_rs = args.vs * args.rs
    dm = start_daemon(m, "hakeeper", config(args, 200, 0), ".conf",
                      bus=bus.address if bus else None)  # fmt: skip
    db = start_daemon(b, "hakeeper", config(args, 100, 0), ".conf")
    out: dict = {"daemons": (dm, db)}
    ok = wait_for(lambda: count_vips(m) == args.instances and count_vips(b) == 0, 60, 0.5)
    print(f"converged: {ok} (VIPs on M {count_vips(m)}/{args.instances}, on B {count_vips(b)})",
          flush=True)  # fmt: skip
    ok = wait_for(lambda: checker_pid(dm.proc.pid) is not None, 30, 0.5) if dm.proc else False
    assert dm.proc is not None and db.proc is not None
    masters_before = db.log_text().count("-> MASTER")  # convergence is not the soak's
    watch = Watch({"M daemon": dm.proc.pid, "M checker": checker_pid(dm.proc.pid) or 0,
                   "B daemon": db.proc.pid})  # fmt: skip
    end = time.monotonic() + args.minutes * 60
    next_reload = time.monotonic() + args.reload_every * 60 if args.reload_every else None
    variant, reloads = 0, 0
    while True:
        if not (dm.alive() and db.alive()):
            out["died"] = True
            break
        watch.pids["M checker"] = checker_pid(dm.proc.pid) or 0
        watch.sample()
        s = watch.samples[-1]
        if len(watch.samples) % max(1, int(60 / args.interval)) == 1:
            cells = (f"{k} {s.rss[k]:.1f} MiB {s.cpu.get(k, 0):.1f}%" for k in s.rss)
            print(f"  t {s.t:6.0f} s  " + "  ".join(cells), flush=True)
        now = time.monotonic()
        if now >= end:
            break
        if next_reload is not None and now >= next_reload:
            variant ^= 1
            reload(dm, config(args, 200, variant))
            reload(db, config(args, 100, variant))
            reloads += 1
            next_reload += args.reload_every * 60
        time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
    out["watch"] = watch
    out["reloads"] = reloads
    want = args.instances - (1 if variant else 0)
    out["vips"] = (count_vips(m), count_vips(b), want)
    out["reloaded"] = (dm.log_text().count("reloaded "), db.log_text().count("reloaded "))
    out["errors"] = {"M": log_errors(dm), "B": log_errors(db)}
    out["drops"] = (vrrp_drops(m), vrrp_drops(b))
    out["b_masters"] = db.log_text().count("-> MASTER") - masters_before
    out["n_rs"] = n_rs
    return out


def report(args: argparse.Namespace, res: dict) -> None:
    watch: Watch = res["watch"]
    xs = watch.samples
    print()
    print(f"soak: {args.instances} VRRPv3 instances (advert {args.adv:g} s) on M and B, "
          f"{args.vs} x {args.rs} real servers (TCP_CHECK + HTTP_GET, delay_loop 1 s), "
          f"{xs[-1].t / 60:.1f} min, a sample every {args.interval:g} s, "
          f"reload every {args.reload_every:g} min; {os.cpu_count()} CPUs")  # fmt: skip
    labels = list(xs[0].rss)
    head = f"{'t s':>7s}  " + "  ".join(f"{lbl + ' MiB':>15s} {'CPU %':>6s}" for lbl in labels)

    def row(s: Sample) -> str:
        cpu = (f"{s.cpu[k]:6.1f}" if k in s.cpu else f"{'-':>6s}" for k in labels)
        cells = (f"{s.rss[k]:15.1f} {c}" for k, c in zip(labels, cpu, strict=True))
        return f"{s.t:7.0f}  " + "  ".join(cells)

    k = min(args.show, len(xs))
    print("curve start:")
    print(head)
    for s in xs[:k]:
        print(row(s))
    print("curve end:")
    print(head)
    for s in xs[-k:]:
        print(row(s))
    steady = [s for s in xs if s.t >= args.warmup] or xs
    half = xs[len(xs) // 2 :]
    print(f"RSS, after a {args.warmup:g} s warm-up (least-squares slope):")
    for lbl in labels:
        a, z = steady[0].rss[lbl], xs[-1].rss[lbl]
        s_all = slope_kib_per_hour([(s.t, s.rss[lbl]) for s in steady])
        s_half = slope_kib_per_hour([(s.t, s.rss[lbl]) for s in half])
        cpus = [s.cpu[lbl] for s in steady if lbl in s.cpu]
        fmt = lambda v: "n/a" if v is None else f"{v:+.0f}"  # noqa: E731
        mean_cpu = f"{sum(cpus) / len(cpus):.1f}" if cpus else "n/a"
        print(f"  {lbl:10s} {a:.1f} -> {z:.1f} MiB ({(z - a) * 1024:+.0f} KiB), slope "
              f"{fmt(s_all)} KiB/h (last half {fmt(s_half)}); mean CPU {mean_cpu} %")  # fmt: skip
    vm, vb, want = res["vips"]
    print(f"reloads: {res['reloads']} sent, logged {res['reloaded'][0]} on M, "
          f"{res['reloaded'][1]} on B; VIPs at the end: M {vm}/{want}, B {vb}")  # fmt: skip
    print(f"VRRP packets dropped by the kernel (receive buffer full): M {res['drops'][0]}, "
          f"B {res['drops'][1]}; B became MASTER {res['b_masters']} time(s) after convergence "
          "(0 when M's adverts always arrive in time)")  # fmt: skip
    if res.get("died"):
        print("a daemon died during the soak")
    for who, errs in res["errors"].items():
        for e in errs:
            print(f"  {who} log: {e}")


def write_csv(path: Path, watch: Watch) -> None:
    labels = list(watch.samples[0].rss)
    lines = ["t," + ",".join(f"{lbl} RSS MiB,{lbl} CPU %" for lbl in labels)]
    for s in watch.samples:
        cells = (f"{s.rss[k]:.2f},{s.cpu.get(k, float('nan')):.2f}" for k in labels)
        lines.append(f"{s.t:.1f}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    print(f"samples written to {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--reload-every", type=float, default=5.0, help="minutes; 0: no reloads")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the slope")
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--adv", type=float, default=0.1)
    ap.add_argument("--vs", type=int, default=20)
    ap.add_argument("--rs", type=int, default=10, help="real servers per virtual server")
    ap.add_argument("--show", type=int, default=5, help="samples printed at each end")
    ap.add_argument("--no-dbus", action="store_true", help="M without its D-Bus API")
    ap.add_argument("--csv", type=Path, help="write every sample to this file")
    args = ap.parse_args()
    if not 1 <= args.instances <= 255 or args.vs * args.rs > 1000:
        ap.error("--instances 1..255 (one segment), --vs x --rs at most 1000")
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the lab is still torn down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Lab() as lab:
        prefix = lab.prefix
        m, b, _f = build(lab, args.vs * args.rs)
        bus = None if args.no_dbus else PrivateBus()
        try:
            res = soak(args, m, b, bus)
            for d in res["daemons"]:
                d.stop(timeout=15)
        finally:
            if bus is not None:
                bus.close()
    report(args, res)
    if args.csv is not None:
        write_csv(args.csv, res["watch"])
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
