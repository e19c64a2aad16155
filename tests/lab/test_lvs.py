"""The seeds' LVS scenario for real: a VIP in front of three HTTP servers, health-checked.

A director namespace runs hakeeper (a VRRP instance holding the VIP and a virtual server on
it, nftables NAT since this kernel has no IPVS); three real servers and a sorry server live
on a second segment and route back through the director; a client on the first segment
makes real HTTP requests to the VIP.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.lab.daemons import start_daemon, wait_for
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import Lab, Node
from tests.lab.lvsfarm import (
    DELAY_LOOP,
    VIP,
    Farm,
    director_conf,
    events,
    kernel_table,
    real_server,
    rs_view,
    script,
    vs_view,
    wait_alive,
)

pytestmark = pytest.mark.lab

SVC = f"{VIP}:80/TCP"


def test_lvs_nat_round_robin_failure_return_and_sorry_server(lab: Lab, bus: PrivateBus) -> None:
    farm = Farm(lab)
    d = farm.tmp
    r1, r2, _r3 = farm.servers
    body = f"""
virtual_server {VIP} 80 {{
    delay_loop {DELAY_LOOP:g}
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum_up {script(d, "qup.sh", "quorum up")}
    quorum_down {script(d, "qdown.sh", "quorum down")}
    sorry_server {farm.sorry.ipv4} 80
    {"".join(real_server(n, d) for n in farm.servers)}
}}
"""
    hk = start_daemon(
        farm.director, "hakeeper", director_conf(body), suffix=".conf", bus=bus.address
    )
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    assert wait_for(lambda: kernel_table(farm.director).get(SVC, {}).keys() >= {
        f"{n.ipv4}:80" for n in farm.servers}, within=5, step=0.2), hk.log_text()  # fmt: skip

    # rr: exactly one in three to each server
    hits = Counter(farm.requests(30))
    assert hits == {"rs1": 10, "rs2": 10, "rs3": 10}, hits
    # the kernel's per-destination connection counters reach the model
    assert wait_for(lambda: vs_view(hk, SVC)["counters"].get("conns") == 30, within=4, step=0.3)
    assert [r["counters"]["conns"] for r in vs_view(hk, SVC)["real_servers"]] == [10, 10, 10]

    # rs2 dies: out of the table within delay_loop x (retry + 1) (+ connect slack)
    farm.stop(r2)
    took = wait_alive(hk, SVC, f"{r2.ipv4}:80", False, within=DELAY_LOOP * 2 + 2)
    assert took <= DELAY_LOOP * 2 + 2
    assert f"{r2.ipv4}:80" not in kernel_table(farm.director)[SVC]
    hits = Counter(farm.requests(20))
    assert hits == {"rs1": 10, "rs3": 10}, hits
    assert wait_for(lambda: "rs2 down" in events(d), within=2)
    table = hk.ctl("show", "real-servers", SVC)
    assert f"{r2.ipv4}:80" in table and "DOWN" in table

    # rs2 returns
    farm.start(r2)
    wait_alive(hk, SVC, f"{r2.ipv4}:80", True, within=DELAY_LOOP * 2 + 2)
    assert Counter(farm.requests(30)) == {"rs1": 10, "rs2": 10, "rs3": 10}
    assert wait_for(lambda: events(d)[-1:] == ["rs2 up"], within=2)

    # all down: the sorry server answers, quorum lost
    for node in farm.servers:
        farm.stop(node)
    assert wait_for(lambda: not vs_view(hk, SVC)["quorum_up"], within=DELAY_LOOP * 2 + 3)
    assert set(farm.requests(5)) == {"sorry"}
    assert kernel_table(farm.director)[SVC] == {f"{farm.sorry.ipv4}:80": 1}
    assert wait_for(lambda: "quorum down" in events(d), within=2)

    # one comes back: quorum regained, the sorry server leaves
    farm.start(r1)
    assert wait_for(lambda: vs_view(hk, SVC)["quorum_up"], within=DELAY_LOOP * 2 + 3)
    assert set(farm.requests(5)) == {"rs1"}
    # two objects, two ordered queues: the order between them is not defined
    assert wait_for(lambda: set(events(d)[-2:]) == {"rs1 up", "quorum up"}, within=2)

    # a clean stop removes what hakeeper put in the kernel
    assert hk.stop() == 0
    assert kernel_table(farm.director) == {}
    tables = farm.director.run(["nft", "list", "tables"]).stdout
    assert "hakeeper" not in tables, tables


def test_quorum_hysteresis_and_inhibit_on_failure(lab: Lab) -> None:
    farm = Farm(lab)
    d = farm.tmp
    r1, r2, _r3 = farm.servers
    # weights 2+2+2, quorum 4, hysteresis 1: lost below 3, regained at 5
    body = f"""
virtual_server {VIP} 80 {{
    delay_loop {DELAY_LOOP:g}
    lvs_sched wrr
    inhibit_on_failure
    quorum 4
    hysteresis 1
    quorum_up {script(d, "qup.sh", "quorum up")}
    quorum_down {script(d, "qdown.sh", "quorum down")}
    {"".join(real_server(n, d, weight=2) for n in farm.servers)}
}}
"""
    hk = start_daemon(farm.director, "hakeeper", director_conf(body), suffix=".conf")
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    assert wait_for(lambda: len(kernel_table(farm.director).get(SVC, {})) == 3, within=5)
    farm.stop(r1)
    wait_alive(hk, SVC, f"{r1.ipv4}:80", False, within=DELAY_LOOP * 2 + 2)
    # inhibited: still in the kernel at weight 0, and no new connection goes there
    assert kernel_table(farm.director)[SVC][f"{r1.ipv4}:80"] == 0
    assert set(farm.requests(10)) == {"rs2", "rs3"}
    assert vs_view(hk, SVC)["quorum_up"]  # 4 alive >= 3
    farm.stop(r2)
    assert wait_for(lambda: not vs_view(hk, SVC)["quorum_up"], within=DELAY_LOOP * 2 + 3)
    farm.start(r2)
    wait_alive(hk, SVC, f"{r2.ipv4}:80", True, within=DELAY_LOOP * 2 + 2)
    assert not vs_view(hk, SVC)["quorum_up"]  # 4 < 5: hysteresis holds it down
    farm.start(r1)
    assert wait_for(lambda: vs_view(hk, SVC)["quorum_up"], within=DELAY_LOOP * 2 + 3)
    quorum = [e for e in events(d) if e.startswith("quorum")]
    assert quorum == ["quorum down", "quorum up"], events(d)
    assert kernel_table(farm.director)[SVC] == {f"{n.ipv4}:80": 2 for n in farm.servers}


def checker_pid(daemon_pid: int) -> int | None:
    """The daemon's checker child (named hakeeper-check), found by its parent PID."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(stat_fields[1]) == daemon_pid and comm == "hakeeper-check":
            return int(entry.name)
    return None


def test_killed_checker_process_is_replaced_without_touching_vrrp(lab: Lab) -> None:
    farm = Farm(lab, n=2)
    _r1, r2 = farm.servers
    body = f"""
virtual_server {VIP} 80 {{
    delay_loop 0.5
    lvs_sched rr
    {"".join(real_server(n, farm.tmp) for n in farm.servers)}
}}
"""
    hk = start_daemon(farm.director, "hakeeper", director_conf(body), suffix=".conf")
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    assert wait_for(lambda: len(kernel_table(farm.director).get(SVC, {})) == 2, within=5)
    assert hk.proc is not None
    first = checker_pid(hk.proc.pid)
    assert first is not None
    farm.stop(r2)  # rs2 goes down before the crash: the new checker must not bring it back
    wait_alive(hk, SVC, f"{r2.ipv4}:80", False, within=4)
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: checker_pid(hk.proc.pid) not in (None, first), within=5)
    assert wait_for(lambda: "restarting it" in hk.log_text(), within=2)
    time.sleep(1.0)  # two delay_loops of the new checker process
    assert rs_view(hk, SVC, f"{r2.ipv4}:80")["alive"] is False
    assert kernel_table(farm.director)[SVC].keys() == {f"{farm.servers[0].ipv4}:80"}
    # checks resume: rs2 comes back when its server does, VRRP never noticed
    farm.start(r2)
    wait_alive(hk, SVC, f"{r2.ipv4}:80", True, within=5)
    assert Counter(farm.requests(4)) == {"rs1": 2, "rs2": 2}
    assert hk.instance("VI_1")["state"] == "MASTER"
    assert "MASTER ->" not in hk.log_text()


def test_fwmark_virtual_server(lab: Lab) -> None:
    farm = Farm(lab, n=2)
    d = farm.tmp
    # the operator marks what the fwmark service balances: here port 8080 on the VIP
    rules = f"""
table inet marking {{
    chain pre {{
        type filter hook prerouting priority mangle;
        ip daddr {VIP} tcp dport 8080 meta mark set 7
    }}
}}
"""
    farm.director.run(["nft", "-f", "-"], input=rules)
    body = f"""
virtual_server fwmark 7 {{
    delay_loop {DELAY_LOOP:g}
    lvs_sched rr
    {"".join(real_server(n, d) for n in farm.servers)}
}}
"""
    hk = start_daemon(farm.director, "hakeeper", director_conf(body), suffix=".conf")
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    key = "fwmark:7/TCP/v4"
    assert wait_for(lambda: len(kernel_table(farm.director).get(key, {})) == 2, within=5)
    assert Counter(farm.requests(10, port=8080)) == {"rs1": 5, "rs2": 5}


def test_restart_and_reload_change_only_what_changed(lab: Lab) -> None:
    farm = Farm(lab, n=2)
    d = farm.tmp
    r1, r2 = farm.servers

    def conf(weight2: int) -> str:
        return director_conf(f"""
virtual_server {VIP} 80 {{
    delay_loop {DELAY_LOOP:g}
    lvs_sched rr
    {"".join(real_server(n, d) for n in farm.servers)}
}}
virtual_server {VIP} 81 {{
    delay_loop {DELAY_LOOP:g}
    lvs_sched wrr
    {real_server(r1, d, port=81)}
    {real_server(r2, d, weight=weight2, port=81)}
}}
""")

    hk = start_daemon(farm.director, "hakeeper", conf(1), suffix=".conf")
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    svc81 = f"{VIP}:81/TCP"
    assert wait_for(lambda: len(kernel_table(farm.director).get(svc81, {})) == 2, within=5)
    before = chains(farm.director)

    # a crash leaves the table serving; the next run adopts it and changes only port 81
    hk.kill()
    assert set(farm.requests(4)) == {"rs1", "rs2"}
    hk.config.write_text(conf(3))
    hk.start()
    assert wait_for(
        lambda: kernel_table(farm.director).get(svc81, {}).get(f"{r2.ipv4}:81") == 3,
        within=8, step=0.2,
    ), hk.log_text()  # fmt: skip
    after = chains(farm.director)
    unchanged = {k: v for k, v in before.items() if f"/{VIP}/81" not in k}
    assert unchanged and all(after.get(k) == v for k, v in unchanged.items()), (before, after)

    # a reload the same way; a bad one changes nothing
    hk.config.write_text(conf(2))
    hk.reload()
    assert wait_for(
        lambda: kernel_table(farm.director)[svc81][f"{r2.ipv4}:81"] == 2, within=5, step=0.2
    )
    assert all(chains(farm.director).get(k) == v for k, v in unchanged.items())
    hk.config.write_text(conf(2).replace("lvs_sched wrr", "lvs_sched nosuch"))
    hk.reload()
    assert wait_for(lambda: "reload refused" in hk.log_text(), within=5)
    # a scheduler the nftables backend cannot do is refused too, before anything changes
    hk.config.write_text(conf(5).replace("lvs_sched wrr", "lvs_sched wlc"))
    hk.reload()
    assert wait_for(lambda: "cannot do scheduler 'wlc'" in hk.log_text(), within=5), hk.log_text()
    assert kernel_table(farm.director)[svc81][f"{r2.ipv4}:81"] == 2
    assert Counter(farm.requests(6, port=81)) == {"rs1": 2, "rs2": 4}


def chains(director: Node) -> dict[str, Any]:
    """Every chain and rule of hakeeper's nftables table, by name → (handles of its rules)."""
    out = json.loads(director.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    found: dict[str, list[int]] = {}
    for item in out:
        if "chain" in item and "hakeeper" in item["chain"]["table"]:
            found.setdefault(item["chain"]["name"], []).append(item["chain"]["handle"])
        if "rule" in item and "hakeeper" in item["rule"]["table"]:
            found.setdefault(item["rule"]["chain"], []).append(item["rule"]["handle"])
    return {k: tuple(v) for k, v in found.items()}


def test_ha_suspend_checks_only_while_the_address_is_local(lab: Lab) -> None:
    farm = Farm(lab, n=1)
    (r1,) = farm.servers
    other = "198.18.0.200"  # not a VIP of this director until the test adds it
    body = f"""
virtual_server {other} 80 {{
    delay_loop 0.5
    lvs_sched rr
    ha_suspend
    {real_server(r1, farm.tmp)}
}}
"""
    hk = start_daemon(farm.director, "hakeeper", director_conf(body), suffix=".conf")
    svc = f"{other}:80/TCP"

    def checkers() -> list[dict[str, Any]]:
        """The real server's scheduled checks (none while suspended)."""
        return rs_view(hk, svc, f"{r1.ipv4}:80")["checkers"]

    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    time.sleep(1.0)
    assert checkers() == [], "checks scheduled while the address is not on this host"
    farm.director.run(["ip", "addr", "add", f"{other}/32", "dev", "eth0"])
    assert wait_for(lambda: len(checkers()) == 1, within=4, step=0.2), hk.log_text()
    assert "resuming its checkers" in hk.log_text()
    # they really run: attempts are counted (statuses reach the daemon every 5 s)
    assert wait_for(lambda: (checkers() or [{}])[0].get("checks", 0) > 0, within=8, step=0.3)
    farm.director.run(["ip", "addr", "del", f"{other}/32", "dev", "eth0"])
    assert wait_for(lambda: "suspending its checkers" in hk.log_text(), within=5)
    assert checkers() == []
