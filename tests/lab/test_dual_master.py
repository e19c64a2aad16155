"""Dual master (seed scenario): two VRIDs, each node master of one VIP; DNS round-robin
spreads clients over both. When a node dies, the other holds both VIPs."""

from __future__ import annotations

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab

VIP1, VIP2 = "198.18.0.100", "198.18.0.101"
DOWN = 2.0


def dual(prio_1: int, prio_2: int) -> str:
    return keepalived_conf(
        vrrp_instance("VI_1", vrid=51, priority=prio_1, vips=[f"{VIP1}/24"]),
        vrrp_instance("VI_2", vrid=52, priority=prio_2, vips=[f"{VIP2}/24"]),
    )


def test_each_node_masters_one_vip_and_the_survivor_takes_both(lab):
    client = lab.add_node("client")
    n1, n2 = lab.add_node("n1"), lab.add_node("n2")
    d1 = start_daemon(n1, "hakeeper", dual(150, 100), suffix=".conf")
    d2 = start_daemon(n2, "hakeeper", dual(100, 150), suffix=".conf")
    assert wait_for(lambda: VIP1 in n1.addresses() and VIP2 in n2.addresses(), within=DOWN * 2)
    assert VIP2 not in n1.addresses() and VIP1 not in n2.addresses()
    # a client reaches both VIPs (the DNS round-robin targets)
    for vip in (VIP1, VIP2):
        assert client.run(["ping", "-c", "1", "-W", "1", vip], check=False).returncode == 0
    d1.kill()  # n1's daemon dies hard (SIGKILL): no priority 0, n2 waits master down
    lab.cut(n1)  # and the node is gone from the segment
    assert wait_for(lambda: {VIP1, VIP2} <= n2.addresses(), within=DOWN), d2.log_text()
    states = {i["name"]: i["state"] for i in d2.state()["instances"]}
    assert states == {"VI_1": "MASTER", "VI_2": "MASTER"}
    for vip in (VIP1, VIP2):
        assert client.run(["ping", "-c", "1", "-W", "1", vip], check=False).returncode == 0
