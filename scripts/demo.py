"""The hakeeper demo: three routers and a client in network namespaces, a failover to watch;
then a load balancer (LVS-NAT over nftables) with three health-checked web servers.

Run by scripts/demo.sh (which installs everything first). Every namespace and process it
makes is removed at the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import Lab
from tests.lab.lvsfarm import Farm, director_conf, real_server, vs_view, wait_alive

VIP = "198.18.0.100"
ADVERT = 0.1  # VRRPv3 centisecond adverts: master down after 3 x 0.1 s + skew


def say(msg: str) -> None:
    print(f"\n\033[1m== {msg}\033[0m", flush=True)


def indent(text: str) -> str:
    return "\n".join("   " + line for line in text.rstrip().splitlines())


def who_has_vip(routers: dict[str, object]) -> list[str]:
    return [name for name, node in routers.items() if VIP in node.addresses("eth0")]  # type: ignore[attr-defined]


def outage(ping_out: str, after: float) -> float | None:
    """The longest gap between echo replies after `after` (ping -D prints wall-clock stamps)."""
    stamps = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\].*bytes from", ping_out, re.M)]
    stamps = [s for s in stamps if s >= after - 1]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return max(gaps) if gaps else None


def main() -> int:
    # each router is its own machine, so each gets its own bus (they all own the same name)
    with Lab() as lab, contextlib.ExitStack() as buses:
        say("building the lab: a switch, routers r1 r2 r3 and a client (network namespaces)")
        prios = {"r1": 150, "r2": 100, "r3": 50}
        routers = {name: lab.add_node(name) for name in prios}
        client = lab.add_node("client")
        for name, node in routers.items():
            print(f"   {name}: eth0 {node.ipv4}, VRRP priority {prios[name]}")
        print(f"   client: eth0 {client.ipv4}")

        say(f"starting hakeeper on each router (VRRPv3, advert_int {ADVERT}s, VIP {VIP}/24)")
        daemons = {}
        for name, node in routers.items():
            conf = keepalived_conf(vrrp_instance(priority=prios[name], advert_int=ADVERT))
            bus = buses.enter_context(PrivateBus())
            daemons[name] = start_daemon(node, "hakeeper", conf, suffix=".conf", bus=bus.address)
        t0 = time.monotonic()
        if not wait_for(lambda: who_has_vip(routers) == ["r1"], within=5):
            print("   r1 did not become master; logs follow")
            for d in daemons.values():
                print(indent(d.log_text()))
            return 1
        print(f"   r1 holds {VIP} after {time.monotonic() - t0:.2f}s")
        for name in routers:
            print(f"\n   $ hakeeperctl show instances    # on {name}")
            print(indent(daemons[name].ctl("show", "instances")))

        say("the client pings the VIP every 10 ms")
        ping = client.popen(
            ["ping", "-D", "-n", "-i", "0.01", "-W", "0.05", "-c", "1500", VIP],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)

        say("r1 dies: its link to the switch is cut")
        cut_wall = time.time()
        t_cut = time.monotonic()
        lab.cut(routers["r1"])
        backups = {k: v for k, v in routers.items() if k != "r1"}
        wait_for(lambda: who_has_vip(backups) == ["r2"], within=5, step=0.002)
        t_vip = time.monotonic() - t_cut
        print(f"   r2 holds {VIP} {t_vip * 1000:.0f} ms after the cut")
        print(indent(daemons["r2"].ctl("show", "instances")))

        time.sleep(1.0)
        say("r1 comes back: it has the higher priority, so it preempts")
        t_back = time.monotonic()
        lab.restore(routers["r1"])
        wait_for(lambda: who_has_vip(routers) == ["r1"], within=5, step=0.002)
        print(f"   r1 holds {VIP} again {(time.monotonic() - t_back) * 1000:.0f} ms later")

        time.sleep(1.0)
        say("an operator hands r1's mastership over, over D-Bus: hakeeperctl failover VI_1")
        t_fo = time.monotonic()
        print(indent(daemons["r1"].ctl("failover", "VI_1") or "(done)"))
        wait_for(lambda: who_has_vip(routers) == ["r2"], within=5, step=0.002)
        took = (time.monotonic() - t_fo) * 1000
        print(f"   r2 holds {VIP} {took:.0f} ms after the command (hakeeperctl's start included);")
        print("   r1 stays BACKUP: it does not preempt back")
        time.sleep(1.0)
        print(indent(daemons["r1"].ctl("show", "instances", "VI_1")))
        say("hakeeperctl reset-priority VI_1 on r1 ends the hand-over: r1 preempts again")
        daemons["r1"].ctl("reset-priority", "VI_1")
        t_rs = time.monotonic()
        wait_for(lambda: who_has_vip(routers) == ["r1"], within=5, step=0.002)
        print(f"   r1 holds {VIP} again {(time.monotonic() - t_rs) * 1000:.0f} ms later")

        time.sleep(1.0)
        say("r1 is stopped gracefully (SIGTERM): it sends priority 0, r2 takes over at once")
        t_stop = time.monotonic()
        daemons["r1"].signal(signal.SIGTERM)
        wait_for(lambda: who_has_vip(backups) == ["r2"], within=5, step=0.002)
        print(f"   r2 holds {VIP} {(time.monotonic() - t_stop) * 1000:.0f} ms after SIGTERM")
        daemons["r1"].stop()
        print(indent(daemons["r2"].ctl("show", "instances")))
        print(indent(daemons["r2"].ctl("status")))

        time.sleep(0.5)
        ping.send_signal(signal.SIGINT)  # ping prints its summary on SIGINT
        out, _ = ping.communicate(timeout=5)
        gap = outage(out, cut_wall)
        say("what the client saw")
        summary = [line for line in out.splitlines() if "packets transmitted" in line]
        print(indent("\n".join(summary)))
        if gap is not None:
            print(f"   longest gap between replies: {gap * 1000:.0f} ms")

        say("logs of r2 (state changes)")
        print(indent("\n".join(line for line in daemons["r2"].log_text().splitlines()
                               if "->" in line)))  # fmt: skip
        for d in daemons.values():
            d.stop()
        say("removing the lab")
    lvs_demo()
    print("done: every namespace and process of the demo is gone")
    return 0


def lvs_demo() -> None:
    with Lab() as lab, PrivateBus() as bus:
        say("LVS: a director holding the VIP, web servers rs1 rs2 rs3 behind it, a client")
        farm = Farm(lab)
        conf = director_conf(
            f"virtual_server {VIP} 80 {{\n    delay_loop 1\n    lvs_sched rr\n"
            f"    lvs_method NAT\n    protocol TCP\n"
            + "".join(real_server(n, farm.tmp) for n in farm.servers)
            + "\n}\n"
        )
        director = start_daemon(farm.director, "hakeeper", conf, suffix=".conf", bus=bus.address)
        svc = f"{VIP}:80/TCP"
        rs1, rs2 = (f"{n.ipv4}:80" for n in farm.servers[:2])
        ready = wait_for(lambda: _all_in_pool(director, svc), within=10, step=0.2)
        if not ready:
            print(indent(director.log_text()))
            return
        print("\n   $ hakeeperctl show virtual-servers")
        print(indent(director.ctl("show", "virtual-servers")))
        print("\n   $ hakeeperctl show real-servers")
        print(indent(director.ctl("show", "real-servers")))
        print(f"\n   client, 6 requests to http://{VIP}/ (round robin): {farm.requests(6)}")

        say("rs2's web server dies; HTTP_GET notices, rs2 leaves the table")
        farm.stop(farm.servers[1])
        took = wait_alive(director, svc, rs2, False, within=5)
        print(f"   rs2 out of the pool {took:.2f} s later")
        print(indent(director.ctl("show", "real-servers")))
        print(f"\n   client, 6 requests: {farm.requests(6)}")

        say("rs2 comes back")
        farm.start(farm.servers[1])
        took = wait_alive(director, svc, rs2, True, within=5)
        print(f"   rs2 back in the pool {took:.2f} s later")
        print(f"   client, 6 requests: {farm.requests(6)}")

        say(f"an operator drains rs1 over D-Bus: hakeeperctl drain {svc} {rs1}")
        director.ctl("drain", svc, rs1)
        time.sleep(0.5)
        print(indent(director.ctl("show", "real-servers")))
        print(f"\n   client, 6 requests (rs1 gets no new ones): {farm.requests(6)}")
        director.ctl("enable", svc, rs1)
        print(f"   hakeeperctl enable ...: rs1 is back; 6 requests: {farm.requests(6)}")
        director.stop()
        say("removing the LVS lab")


def _all_in_pool(daemon: Daemon, svc: str) -> bool:
    try:
        return all(r["in_pool"] for r in vs_view(daemon, svc)["real_servers"])
    except KeyError:  # not configured yet
        return False


if __name__ == "__main__":
    sys.exit(main())
