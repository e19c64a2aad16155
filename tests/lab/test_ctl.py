"""hakeeperctl against real daemons over a private bus: its answers are the kernel's truth."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import VENV_BIN, start_daemon, wait_for
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import Lab, Node

pytestmark = pytest.mark.lab

VIP_A, VIP_B = "198.18.0.100", "198.18.0.101"


def conf(prio_a: int, prio_b: int) -> str:
    return keepalived_conf(
        vrrp_instance("VI_A", vrid=51, priority=prio_a, vips=[f"{VIP_A}/24"]),
        vrrp_instance("VI_B", vrid=52, priority=prio_b, vips=[f"{VIP_B}/24"]),
    )


def ctl(node: Node, bus: PrivateBus, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / "hakeeperctl"), "--bus", bus.address, *args]
    return node.run(argv, check=False)


def rows(node: Node, bus: PrivateBus) -> dict[str, dict[str, object]]:
    out = ctl(node, bus, "show", "instances", "-o", "json")
    assert out.returncode == 0, out.stderr
    return {r["Name"]: r for r in json.loads(out.stdout)}


def test_show_instances_matches_the_kernel_and_controls_work(lab: Lab) -> None:
    """Dual master: r1 masters VI_A, r2 masters VI_B; what hakeeperctl says of each instance
    is where the kernel holds the VIP, and a failover through it moves the VIP."""
    r1, r2 = lab.add_nodes("r1", "r2")
    with PrivateBus() as b1, PrivateBus() as b2:
        d1 = start_daemon(r1, "hakeeper", conf(150, 100), suffix=".conf", bus=b1.address)
        d2 = start_daemon(r2, "hakeeper", conf(100, 150), suffix=".conf", bus=b2.address)
        assert r1.wait_vip(VIP_A, within=5) and r2.wait_vip(VIP_B, within=5), (
            d1.log_text() + d2.log_text()
        )
        time.sleep(0.5)
        for node, bus in ((r1, b1), (r2, b2)):
            for name, row in rows(node, bus).items():
                vip = VIP_A if name == "VI_A" else VIP_B
                holds = vip in node.addresses("eth0")
                assert (row["State"] == "MASTER") == holds, (node, name, row)
        table = ctl(r1, b1, "show", "instances").stdout.splitlines()
        assert table[0].split()[:3] == ["NAME", "STATE", "PRIO"]
        assert table[1].split()[:2] == ["VI_A", "MASTER"]
        assert table[2].split()[:2] == ["VI_B", "BACKUP"]

        # watch streams the transitions of a failover requested with hakeeperctl
        watch = r1.popen(
            [str(VENV_BIN / "hakeeperctl"), "--bus", b1.address, "-o", "json", "watch",
             "--count", "1"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.5)  # its match rules are in place
        done = ctl(r1, b1, "failover", "VI_A")
        assert done.returncode == 0, done.stderr
        assert r2.wait_vip(VIP_A, within=1) and r1.wait_no_vip(VIP_A, within=1)
        out, _ = watch.communicate(timeout=5)
        event = json.loads(out.splitlines()[0])
        assert (event["Kind"], event["Name"], event["Old"], event["New"]) == (
            "instance", "VI_A", "MASTER", "BACKUP")  # fmt: skip
        time.sleep(1.0)
        assert VIP_A not in r1.addresses("eth0")  # yielding: no preemption back
        assert rows(r1, b1)["VI_A"]["State"] == "BACKUP"

        # exit codes a script can rely on
        assert ctl(r1, b1, "failover", "VI_A").returncode == 1  # not MASTER any more
        assert ctl(r1, b1, "set-priority", "VI_A", "0").returncode == 2
        assert ctl(r1, b1, "show", "instances", "VI_X").returncode == 5
        with PrivateBus() as empty:
            assert ctl(r1, empty, "status").returncode == 3  # nobody owns the name there

        # reset-priority ends the hand-over: r1 preempts back
        assert ctl(r1, b1, "reset-priority", "VI_A").returncode == 0
        assert r1.wait_vip(VIP_A, within=2)


def test_reload_check_and_a_bad_reload_keep_the_running_config(lab: Lab, bus: PrivateBus) -> None:
    r1 = lab.add_node("r1")
    d = start_daemon(r1, "hakeeper", conf(150, 150), suffix=".conf", bus=bus.address)
    assert r1.wait_vip(VIP_A, within=5), d.log_text()
    path = Path(d.config)
    path.write_text(conf(120, 150))
    check = ctl(r1, bus, "reload", "--check")
    assert check.returncode == 0, check.stderr
    assert "vrrp_instance VI_A: priority 150 -> 120 (live, no state change)" in check.stdout
    assert rows(r1, bus)["VI_A"]["BasePriority"] == 150  # a check changes nothing

    path.write_text(conf(120, 150) + "vrrp_instance VI_C {\n    priority 900\n}\n")
    bad = ctl(r1, bus, "reload")
    assert bad.returncode == 1
    assert f"{path}:" in bad.stderr  # the problem is named with its file and line
    assert rows(r1, bus)["VI_A"]["BasePriority"] == 150
    assert VIP_A in r1.addresses("eth0")

    path.write_text(conf(120, 150))
    good = ctl(r1, bus, "reload")
    assert good.returncode == 0, good.stderr
    assert wait_for(lambda: rows(r1, bus)["VI_A"]["BasePriority"] == 120, within=2)
    assert VIP_A in r1.addresses("eth0")  # a live change: no flap

    # a global_defs change no VRRP socket depends on (router_id) restarts nothing
    before = rows(r1, bus)["VI_A"]["LastTransition"]
    path.write_text(
        keepalived_conf(
            vrrp_instance("VI_A", vrid=51, priority=120, vips=[f"{VIP_A}/24"]),
            vrrp_instance("VI_B", vrid=52, priority=150, vips=[f"{VIP_B}/24"]),
            router_id="renamed",
        )
    )
    check = ctl(r1, bus, "reload", "--check")
    assert check.stdout.strip() == "global_defs: router_id lab -> renamed", check.stdout
    assert ctl(r1, bus, "reload").returncode == 0
    assert wait_for(lambda: json.loads(ctl(r1, bus, "status", "-o", "json").stdout)[
        "RouterId"] == "renamed", within=2)  # fmt: skip
    after = rows(r1, bus)["VI_A"]
    assert after["State"] == "MASTER" and after["LastTransition"] == before
    assert VIP_A in r1.addresses("eth0")
