"""LVS under load: 1000 real servers health-checked at delay_loop 1 while VRRP adverts at 0.1 s.

Lab: a director D (segment lan + segment rs), a capture node C on lan, a farm node F on rs
holding 1000 real-server addresses (198.18.4.1 ..., routed to it by D) served by two processes
listening on 0.0.0.0:80 with SO_REUSEPORT (a tiny HTTP responder, so TCP_CHECK and
HTTP_GET both have a real peer). D runs hakeeper with one VRRPv3 instance (advert 0.1 s)
and 10 virtual servers of 100 real servers each; every real server has a TCP_CHECK and an
HTTP_GET (digest-less, status 200), delay_loop 1: 2000 checks a second are asked for.

Figures: checks per second reached (from the checker statuses in the daemon's state dump),
CPU of the daemon and of its checker process, RSS, and the advert spacing seen on C (kernel
timestamps from tcpdump) against a baseline run of the same instance without virtual
servers. Then, without a daemon: the time the nftables backend takes to apply a change of
1000 destinations (every weight of 10 services x 100 destinations, and one service of 1000).

keepalived is not measured here: its checker process needs IPVS, which this kernel lacks
(it exits at start), so there is no like-for-like reference in this lab.

Run from the repo root as root:  .venv/bin/python bench/lvs.py [--seconds 20]
It prints figures; it never fails because something is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.jitter import Result as SpacingResult
from bench.jitter import analyse, capture, log_errors, pct, proc_times
from bench.scale import rss_kib, tree
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.lab import Lab, Node

ADV = 0.1
N_VS = 10
PER_VS = 100
VIP = "198.18.0.100"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TOLERANCE = 0.005


def farm_address(i: int) -> str:
    """The i-th real server (0-based) on 198.18.4.0/22."""
    n = 4 * 256 + 1 + i
    return f"198.18.{n // 256}.{n % 256}"


FARM_SERVER = textwrap.dedent("""
    import asyncio, socket
    RESP = b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"
    async def handle(r, w):
        try:
            await asyncio.wait_for(r.readuntil(b"\\r\\n\\r\\n"), 2)
            w.write(RESP)
            await w.drain()
        except Exception:
            pass
        w.close()
    async def main():
        s = await asyncio.start_server(handle, "0.0.0.0", 80, reuse_port=True, backlog=4096)
        await s.serve_forever()
    asyncio.run(main())
""")


def config(with_lvs: bool) -> str:
    out = [
        "global_defs {\n    router_id bench\n}\n",
        "vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 1\n"
        f"    priority 200\n    version 3\n    advert_int {ADV}\n"
        f"    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n",
    ]
    if not with_lvs:
        return "".join(out)
    for v in range(N_VS):
        rs = []
        for i in range(PER_VS):
            addr = farm_address(v * PER_VS + i)
            rs.append(
                f"    real_server {addr} 80 {{\n"
                "        TCP_CHECK {\n            connect_timeout 2\n        }\n"
                "        HTTP_GET {\n            url {\n                path /\n"
                "                status_code 200\n            }\n"
                "            connect_timeout 2\n        }\n    }\n"
            )
        out.append(
            f"virtual_server {VIP} {8000 + v} {{\n    delay_loop 1\n    protocol TCP\n"
            f"    lvs_sched rr\n    lvs_method NAT\n{''.join(rs)}}}\n"
        )
    return "".join(out)


def build(lab: Lab) -> tuple[Node, Node, Node]:
    lab.add_segment("rs")
    d = lab.add_node("dir", segments=("lan", "rs"))
    c = lab.add_node("cap")
    f = lab.add_node("farm", segments=("rs",))
    d.sysctl("net.ipv4.ip_forward", 1)
    # the 1000 addresses sit behind F (routed, not on-link): one neighbour entry instead of
    # a thousand, as the kernel's neighbour table limits are global, not per namespace
    d.run(["ip", "route", "add", "198.18.4.0/22", "via", f.ipv4])
    f.run(["ip", "route", "add", "default", "via", d.ports["eth1"].ipv4])
    batch = "".join(f"addr add {farm_address(i)}/32 dev lo\n" for i in range(N_VS * PER_VS))
    f.run(["ip", "-batch", "-"], input=batch)
    for _ in range(2):
        f.popen_python(FARM_SERVER, stderr=subprocess.DEVNULL)
    probe = f"import urllib.request as u; u.urlopen('http://{farm_address(999)}/', timeout=1)"
    assert wait_for(lambda: d.python(probe, check=False).returncode == 0, within=10)
    return d, c, f


def checks_done(daemon: Daemon) -> tuple[int, int, int]:
    """(checks run, failures, checks known) summed over every checker of every server."""
    total = failed = n = 0
    for vs in daemon.state().get("virtual_servers", []):
        for rs in vs["real_servers"]:
            for ck in rs["checkers"]:
                total += ck.get("checks") or 0
                failed += ck.get("failures") or 0
                n += 1
    return total, failed, n


def run(lab_nodes: tuple[Node, Node, Node], with_lvs: bool, seconds: float) -> dict:
    d, c, _f = lab_nodes
    daemon = start_daemon(d, "hakeeper", config(with_lvs), suffix=".conf")
    res: dict = {"label": "1000 RS x (TCP+HTTP)" if with_lvs else "baseline (no LVS)"}
    try:
        assert d.wait_vip(VIP, within=15), daemon.log_text()
        if with_lvs:
            ok = wait_for(lambda: checks_done(daemon)[2] == 2 * N_VS * PER_VS, 30, 0.5)
            assert ok, log_errors(daemon)
        time.sleep(3)  # warm-up: every check has run at least once
        pids = tree(daemon.proc.pid) if daemon.proc else []
        t0 = proc_times(pids)
        c0 = checks_done(daemon) if with_lvs else (0, 0, 0)
        started = threading.Event()
        cp = capture(c, seconds, started)
        t1 = proc_times(pids)
        c1 = checks_done(daemon) if with_lvs else (0, 0, 0)
        spacing = SpacingResult(res["label"])
        analyse(spacing, cp, d.ipv4)
        res["spacings"] = sorted(spacing.spacings)
        res["window"] = cp.window
        res["cpu"] = {p: (t1[p][0] - t0[p][0]) / CLK_TCK / cp.window for p in t1 if p in t0}
        res["main_pid"] = daemon.proc.pid if daemon.proc else 0
        res["rss_mib"] = rss_kib(pids) / 1024
        res["checks_per_s"] = (c1[0] - c0[0]) / cp.window
        res["failures"] = c1[1] - c0[1]
        res["errors"] = log_errors(daemon)
    finally:
        daemon.stop(timeout=15)
    return res


APPLY = textwrap.dedent("""
    import asyncio, json, time
    from hakeeper.lvs.backend import select_backend
    from hakeeper.lvs.reconcile import diff
    from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey

    def table(n_svc, per, weight):
        t = {}
        for s in range(n_svc):
            key = ServiceKey(4, "TCP", "198.18.0.100", 9000 + s)
            dests = {}
            for i in range(per):
                n = 4 * 256 + 1 + s * per + i
                dk = DestKey(f"198.18.{n // 256}.{n % 256}", 80)
                dests[dk] = Dest(dk, "NAT", weight)
            t[key] = Entry(Service(key, "wrr"), dests)
        return t

    async def main():
        out = {}
        for n_svc, per in ((10, 100), (1, 1000)):
            b = select_backend("nftables")
            first, second = table(n_svc, per, 1), table(n_svc, per, 2)
            t0 = time.perf_counter()
            await b.apply(diff({}, first))
            t1 = time.perf_counter()
            times = []
            for _ in range(5):
                ops = diff(first, second)
                t2 = time.perf_counter()
                await b.apply(ops)
                times.append(time.perf_counter() - t2)
                first, second = second, first
            await b.close(remove=True)
            out[f"{n_svc}x{per}"] = {"create": t1 - t0, "change": times, "ops": len(ops)}
        print(json.dumps(out))
    asyncio.run(main())
""")


def apply_bench(d: Node) -> dict:
    return json.loads(d.python(APPLY, timeout=120).stdout)


def report(results: list[dict], applied: dict, seconds: float) -> None:
    print()
    print(f"VRRPv3 advert {ADV * 1000:g} ms on D, capture on C for {seconds:g} s; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    for r in results:
        xs = r["spacings"]
        print(f"\n{r['label']}")
        if not xs:
            print("  no adverts captured", r.get("errors"))
            continue
        inside = sum(abs(s - ADV) <= TOLERANCE for s in xs) / len(xs)
        print(f"  advert spacing ms: min {xs[0] * 1e3:.2f}  p1 {pct(xs, 1) * 1e3:.2f}  "
              f"median {statistics.median(xs) * 1e3:.2f}  p99 {pct(xs, 99) * 1e3:.2f}  "
              f"max {xs[-1] * 1e3:.2f}  within +-5 ms {inside * 100:.2f}% "
              f"({len(xs)} spacings)")  # fmt: skip
        main = r["cpu"].get(r["main_pid"], 0.0)
        others = sum(v for p, v in r["cpu"].items() if p != r["main_pid"])
        print(f"  CPU: daemon {main * 100:.1f}%  checker process(es) {others * 100:.1f}%  "
              f"RSS {r['rss_mib']:.1f} MiB (daemon + checker)")  # fmt: skip
        if r["checks_per_s"]:
            print(f"  checks/s reached: {r['checks_per_s']:.0f} (asked: "
                  f"{2 * N_VS * PER_VS}); failures in window: {r['failures']}")  # fmt: skip
        for e in r["errors"]:
            print("  log:", e)
    print("\nnftables backend, applying a change of every destination's weight (5 runs):")
    for shape, a in applied.items():
        ch = sorted(a["change"])
        print(f"  {shape} destinations: create {a['create'] * 1e3:.1f} ms; change "
              f"({a['ops']} ops) median {statistics.median(ch) * 1e3:.1f} ms, "
              f"max {ch[-1] * 1e3:.1f} ms")  # fmt: skip
    print("\nkeepalived: not run (its checker needs IPVS, absent from this kernel)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    with Lab() as lab:
        nodes = build(lab)
        results = [run(nodes, False, args.seconds), run(nodes, True, args.seconds)]
        applied = apply_bench(nodes[0])
    report(results, applied, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
