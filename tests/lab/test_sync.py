"""vrrp_sync_group: two instances on two interfaces move together."""

from __future__ import annotations

import time

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab

VIP_A, VIP_B = "198.18.0.100", "198.18.1.100"
DOWN = 2.0


def group_conf(priority: int) -> str:
    return keepalived_conf(
        vrrp_instance("VI_A", interface="eth0", vrid=51, priority=priority,
                      vips=[f"{VIP_A}/24"]),
        vrrp_instance("VI_B", interface="eth1", vrid=52, priority=priority,
                      vips=[f"{VIP_B}/24"]),
        "vrrp_sync_group VG_1 {\n    group {\n        VI_A\n        VI_B\n    }\n}\n",
    )  # fmt: skip


def holds_both(node) -> bool:
    return VIP_A in node.addresses("eth0") and VIP_B in node.addresses("eth1")


def holds_none(node) -> bool:
    return VIP_A not in node.addresses("eth0") and VIP_B not in node.addresses("eth1")


def test_one_interface_down_moves_the_whole_group(lab, bus):
    lab.add_segment("wan")
    r1 = lab.add_node("r1", segments=("lan", "wan"))
    r2 = lab.add_node("r2", segments=("lan", "wan"))
    d1 = start_daemon(r1, "hakeeper", group_conf(150), suffix=".conf")
    assert wait_for(lambda: holds_both(r1), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", group_conf(100), suffix=".conf", bus=bus.address)
    time.sleep(1.0)
    assert holds_none(r2)
    assert d1.state()["groups"][0]["state"] == "MASTER"
    assert d2.state()["groups"][0]["state"] == "BACKUP"

    # only eth1 of r1 fails; VI_A on eth0 could go on, but the group moves as one
    lab.cut(r1, "eth1")
    assert wait_for(lambda: holds_both(r2), within=DOWN), d2.log_text()
    assert wait_for(lambda: holds_none(r1), within=DOWN), d1.log_text()
    s1 = d1.state()
    assert {i["name"]: i["state"] for i in s1["instances"]} == {"VI_A": "FAULT", "VI_B": "FAULT"}
    assert s1["groups"][0]["state"] == "FAULT"
    assert d2.state()["groups"][0]["state"] == "MASTER"

    # the link returns: the group comes back together and preempts as a whole
    lab.restore(r1, "eth1")
    assert wait_for(lambda: holds_both(r1), within=DOWN * 2), d1.log_text()
    assert wait_for(lambda: holds_none(r2), within=DOWN), d2.log_text()
    assert d2.state()["groups"][0]["state"] == "BACKUP"
    table = d2.ctl("show", "groups")
    assert table.splitlines()[1].split()[:3] == ["VG_1", "BACKUP", "VI_A,VI_B"]


def test_group_goes_master_only_when_every_member_may(lab):
    """r2 hears r1 on eth0 only (eth1 cut on r1): VI_B's timer fires on r2, VI_A's does not,
    so r2's group stays BACKUP instead of splitting the pair across two routers."""
    lab.add_segment("wan")
    r1 = lab.add_node("r1", segments=("lan", "wan"))
    r2 = lab.add_node("r2", segments=("lan", "wan"))
    conf1 = keepalived_conf(
        vrrp_instance("VI_A", interface="eth0", vrid=51, priority=150, vips=[f"{VIP_A}/24"]),
        vrrp_instance("VI_B", interface="eth1", vrid=52, priority=150, vips=[f"{VIP_B}/24"]),
    )  # r1: no sync group, so VI_A stays master while its eth1 is cut
    d1 = start_daemon(r1, "hakeeper", conf1, suffix=".conf")
    assert wait_for(lambda: holds_both(r1), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", group_conf(100), suffix=".conf")
    time.sleep(1.0)
    lab.cut(r1, "eth1")
    time.sleep(1.5)  # several master down intervals of VI_B on r2
    s2 = {i["name"]: i["state"] for i in d2.state()["instances"]}
    assert s2 == {"VI_A": "BACKUP", "VI_B": "BACKUP"}, d2.log_text()
    assert holds_none(r2)
