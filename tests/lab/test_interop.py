"""hakeeper and keepalived (the Debian package) on one segment and one VRID, both ways."""

from __future__ import annotations

import time

import pytest

from hakeeper.vrrp.stats import RECEIVE_ERRORS
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
VIP6 = "fd00:198:18::100"


def has_vip(node, vip: str = VIP) -> bool:
    return vip in node.addresses("eth0")


def no_receive_errors(d) -> dict[str, int]:
    stats = d.instance("VI_1")["stats"]
    return {k: stats[k] for k in RECEIVE_ERRORS if stats[k]}


@pytest.mark.parametrize(
    ("version", "advert_int", "auth", "vip"),
    [
        (3, 0.1, None, VIP),
        (2, 1, "secret", VIP),
        (3, 0.1, None, VIP6),
    ],
    ids=["v3-0.1s", "v2-1s-auth", "v3-ipv6"],
)
def test_hakeeper_master_keepalived_backup(lab, version, advert_int, auth, vip):
    hk_node, ka_node = lab.add_node("hk"), lab.add_node("ka")
    down = 3 * advert_int + 1 + 2  # master down interval plus slack for a busy CI
    common = {"version": version, "advert_int": advert_int, "auth_pass": auth, "vips": [vip]}
    hk = start_daemon(
        hk_node, "hakeeper", keepalived_conf(vrrp_instance(priority=150, **common)), ".conf"
    )
    ka = start_daemon(ka_node, "keepalived", keepalived_conf(vrrp_instance(priority=100, **common)))
    assert wait_for(lambda: has_vip(hk_node, vip), within=down * 2), hk.log_text()
    time.sleep(advert_int * 3)
    assert not has_vip(ka_node, vip), ka.log_text()
    assert "Entering BACKUP STATE" in ka.log_text()
    assert hk.instance("VI_1")["stats"]["advert_sent"] > 0
    # hakeeper stops gracefully: keepalived takes over quickly (priority 0 advert)
    hk.stop()
    assert wait_for(lambda: has_vip(ka_node, vip), within=down), ka.log_text()
    # hakeeper returns with the higher priority and preempts keepalived
    hk.start()
    assert wait_for(lambda: has_vip(hk_node, vip), within=down * 2), hk.log_text()
    assert wait_for(lambda: not has_vip(ka_node, vip), within=down), ka.log_text()
    assert no_receive_errors(hk) == {}
    assert hk.instance("VI_1")["stats"]["advert_rcvd"] > 0  # keepalived's adverts, accepted


@pytest.mark.parametrize(
    ("version", "advert_int", "auth"),
    [(3, 0.1, None), (2, 1, "secret")],
    ids=["v3-0.1s", "v2-1s-auth"],
)
def test_keepalived_master_hakeeper_backup(lab, version, advert_int, auth):
    hk_node, ka_node = lab.add_node("hk"), lab.add_node("ka")
    down = 3 * advert_int + 1 + 2
    common = {"version": version, "advert_int": advert_int, "auth_pass": auth}
    ka = start_daemon(ka_node, "keepalived", keepalived_conf(vrrp_instance(priority=150, **common)))
    hk = start_daemon(
        hk_node, "hakeeper", keepalived_conf(vrrp_instance(priority=100, **common)), ".conf"
    )
    assert wait_for(lambda: has_vip(ka_node), within=down * 2), ka.log_text()
    assert wait_for(lambda: hk.instance("VI_1")["master_address"] == ka_node.ipv4, within=down)
    assert not has_vip(hk_node)
    assert hk.instance("VI_1")["state"] == "BACKUP"
    assert no_receive_errors(hk) == {}
    # keepalived's link is cut: hakeeper takes the VIP after the master down interval
    lab.cut(ka_node)
    t0 = time.monotonic()
    assert wait_for(lambda: has_vip(hk_node), within=down), hk.log_text()
    assert time.monotonic() - t0 < 3 * advert_int + 1
    # keepalived comes back and preempts hakeeper
    lab.restore(ka_node)
    assert wait_for(lambda: not has_vip(hk_node), within=down * 2), hk.log_text()
    assert hk.instance("VI_1")["state"] == "BACKUP"
