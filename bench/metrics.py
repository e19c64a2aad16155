"""The Prometheus endpoint with 1000 VRRPv3 instances (advert_int 0.1 s): scrape cost, and
advert spacing while a scraper hammers the endpoint.

Lab: a master M carrying the instances as bench/dbus.py lays them out (250 per segment, one
VIP each, all MASTER) and a client C on the first segment. hakeeper on M serves
`metrics { listen M:9165 }`. Measured:

  (a) scrape wall time seen by C (urllib in C's namespace, one at a time), plain and gzip,
      body size and number of samples;
  (b) the spacing of one master instance's adverts captured on C (tcpdump, kernel
      timestamps) for --seconds, with no scraper, then while C scrapes back to back (bounded
      by --scrapes and the window).

Run from the repo root as root:  .venv/bin/python bench/metrics.py [--instances 1000]
It prints figures; it never fails because something is slow.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dbus import (
    ADV,
    TOLERANCE,
    converge,
    log_errors,
    master_instances,
    measured_capture,
    pct,
    scaled_lab,
)
from bench.scale import tree
from tests.lab.configs import keepalived_conf
from tests.lab.daemons import start_daemon
from tests.lab.lab import Lab, Node, ip_netns_list

PORT = 9165

# C's scraper: N timed GETs, one at a time; prints one JSON line
SCRAPER = """
import gzip, json, sys, time, urllib.request as u
url, n, zipped, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4])
o = u.build_opener(u.ProxyHandler({}))
times, size, raw, samples = [], 0, 0, 0
end = time.monotonic() + limit
for _ in range(n):
    if time.monotonic() > end:
        break
    req = u.Request(url, headers={"Accept-Encoding": "gzip"} if zipped else {})
    t = time.perf_counter()
    body = o.open(req, timeout=30).read()
    times.append(time.perf_counter() - t)
    size = len(body)
    text = gzip.decompress(body) if zipped else body
    raw = len(text)
    samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
print(json.dumps({"times": times, "size": size, "raw": raw, "samples": samples}))
"""


def config(n: int, listen: str) -> str:
    return keepalived_conf(
        *master_instances(n), global_extra=f"    metrics {{\n        listen {listen}\n    }}\n"
    )


def scrape(c: Node, url: str, n: int, zipped: bool, limit: float) -> dict[str, Any]:
    argv = [sys.executable, "-c", SCRAPER, url, str(n), "1" if zipped else "0", str(limit)]
    r = c.run(argv, check=False, timeout=limit + 120)
    try:
        return dict(json.loads(r.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": (r.stderr or r.stdout).strip()[-300:]}


def spacing_line(label: str, spacings: list[float], extra: str = "") -> str:
    if not spacings:
        return f"  {label:<24} no adverts captured"
    inside = sum(abs(s - ADV) <= TOLERANCE for s in spacings) / len(spacings) * 100
    return (
        f"  {label:<24} adverts {len(spacings) + 1:>5}"
        f"  median {statistics.median(spacings) * 1000:6.1f} ms"
        f"  p99 {pct(spacings, 99) * 1000:6.1f} ms  max {max(spacings) * 1000:6.1f} ms"
        f"  within 5 ms {inside:5.1f}%{extra}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=15.0, help="capture window per run")
    ap.add_argument("--repeat", type=int, default=10, help="timed scrapes in (a)")
    ap.add_argument("--scrapes", type=int, default=1000, help="bound on (b)'s scrapes")
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `timeout` still tears down
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    n = args.instances
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    lines: list[str] = []
    with Lab() as lab:
        m, c = scaled_lab(lab, n)
        url = f"http://{m.ipv4}:{PORT}/metrics"
        d = start_daemon(m, "hakeeper", config(n, f"{m.ipv4}:{PORT}"), suffix=".conf")
        try:
            print("   " + converge(d, m, n, args.converge_timeout), flush=True)
            time.sleep(3)
            print("== (a) scrapes", flush=True)
            for zipped in (False, True):
                r = scrape(c, url, args.repeat, zipped, 120)
                if "error" in r:
                    lines.append(f"  scrape ({'gzip' if zipped else 'plain'}): {r['error']}")
                    continue
                t = r["times"]
                lines.append(
                    f"  scrape {'gzip ' if zipped else 'plain'} x{len(t)}: median "
                    f"{statistics.median(t) * 1000:.0f} ms, max {max(t) * 1000:.0f} ms; body "
                    f"{r['size'] / 1024:.0f} KiB ({r['raw'] / 1024:.0f} KiB text), "
                    f"{r['samples']} samples"
                )
            print("== (b) spacing", flush=True)
            assert d.proc is not None
            pids = {"daemon": tree(d.proc.pid)}
            for label, load in (("no scraper", False), ("scraping back to back", True)):
                box: dict[str, Any] = {}
                proc: subprocess.Popen[str] | None = None

                def go(load: bool = load) -> None:
                    nonlocal proc
                    if load:
                        argv = [sys.executable, "-c", SCRAPER, url, str(args.scrapes), "0",
                                str(args.seconds)]  # fmt: skip
                        proc = c.popen(argv, stdout=subprocess.PIPE, text=True)

                cp, cpu, host = measured_capture(c, m.ipv4, args.seconds, pids, go)
                if proc is not None:
                    out, _ = proc.communicate(timeout=args.seconds + 120)
                    try:
                        box = json.loads(out.strip().splitlines()[-1])
                    except (ValueError, IndexError):
                        box = {}
                spacings = [b - a for a, b in itertools.pairwise(cp.times)] if cp else []
                extra = f"  daemon CPU {cpu['daemon']:.0f}%  host {host:.0f}%"
                if box.get("times"):
                    t = box["times"]
                    extra += f"  scrapes {len(t)} (median {statistics.median(t) * 1000:.0f} ms)"
                lines.append(spacing_line(label, spacings, extra))
            lines += [f"  hakeeper log: {e}" for e in log_errors(d)]
        finally:
            rc = d.stop(timeout=15)
            lines.append(f"  hakeeper stopped: rc {rc}")
        prefix = lab.prefix
    print(f"\n# {command}\n# {n} instances, VRRPv3 advert_int {ADV:g} s, all MASTER")
    print("\n".join(lines))
    left = [ns for ns in ip_netns_list() if ns.startswith(prefix)]
    print(f"lab namespaces left after close: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
