"""VRRP as a user sees it: real hakeeper daemons in namespaces, real packets, kernel VIPs."""

from __future__ import annotations

import signal
import time

import pytest

from tests.lab.adverts import send_adverts
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon, wait_for

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
VIP6 = "fd00:198:18::100"
# v3 at 0.1 s: master down = 3 x 10 cs + skew (< 10 cs) = under 0.4 s; allow for a busy CI
DOWN = 2.0


def has_vip(node, vip: str = VIP, ifname: str = "eth0") -> bool:
    return vip in node.addresses(ifname)


def pair(lab, conf1: str, conf2: str, r1_first: bool = False) -> tuple:
    """Two routers; with `r1_first`, r2 starts only once r1 holds the VIP."""
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1 = start_daemon(r1, "hakeeper", conf1, suffix=".conf")
    if r1_first:
        assert wait_for(lambda: has_vip(r1), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", conf2, suffix=".conf")
    return r1, r2, d1, d2


def transitions(d: Daemon) -> list[str]:
    return [line.split(" INFO ", 1)[-1] for line in d.log_text().splitlines() if " -> " in line]


def test_election_higher_priority_is_master(lab):
    r1, r2, d1, d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150)),
        keepalived_conf(vrrp_instance(priority=100)),
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2), d1.log_text()
    time.sleep(0.5)
    assert not has_vip(r2)
    assert d1.instance("VI_1")["state"] == "MASTER"
    s2 = d2.instance("VI_1")
    assert s2["state"] == "BACKUP"
    assert s2["master_address"] == r1.ipv4
    assert s2["stats"]["advert_rcvd"] > 0


def test_hard_failover_on_link_cut_then_preempt(lab):
    r1, r2, d1, d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150)),
        keepalived_conf(vrrp_instance(priority=100)),
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    lab.cut(r1)
    t0 = time.monotonic()
    assert wait_for(lambda: has_vip(r2), within=DOWN), d2.log_text()
    assert time.monotonic() - t0 < 1.0
    # r1 saw its own link go: FAULT, VIP removed
    assert wait_for(lambda: d1.instance("VI_1")["state"] == "FAULT", within=DOWN)
    assert not has_vip(r1)
    lab.restore(r1)
    assert wait_for(lambda: has_vip(r1) and not has_vip(r2), within=DOWN * 2), d1.log_text()
    assert d2.instance("VI_1")["state"] == "BACKUP"


def test_nopreempt_keeps_the_backup_as_master(lab):
    r1, r2, d1, _d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150, nopreempt=True)),
        keepalived_conf(vrrp_instance(priority=100, nopreempt=True)),
        r1_first=True,  # with nopreempt, whoever is master first stays master
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    lab.cut(r1)
    assert wait_for(lambda: has_vip(r2), within=DOWN)
    lab.restore(r1)
    time.sleep(1.5)  # many master-down intervals: r1 must not take over
    assert has_vip(r2) and not has_vip(r1)
    assert d1.instance("VI_1")["state"] == "BACKUP"


def test_preempt_delay_waits_before_taking_over(lab):
    r1, r2, d1, _d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150, preempt_delay=1.5)),
        keepalived_conf(vrrp_instance(priority=100)),
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 3)
    lab.cut(r1)
    assert wait_for(lambda: has_vip(r2), within=DOWN)
    lab.restore(r1)
    t0 = time.monotonic()
    assert wait_for(lambda: has_vip(r1), within=5), d1.log_text()
    assert time.monotonic() - t0 >= 1.2
    assert wait_for(lambda: not has_vip(r2), within=DOWN)


def test_graceful_stop_hands_over_within_skew(lab):
    r1, r2, d1, d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150)),
        keepalived_conf(vrrp_instance(priority=100)),
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    t0 = time.monotonic()
    d1.signal(signal.SIGTERM)
    # priority 0 advert: the backup waits only skew_time (~0.06 s), not the master down time
    assert wait_for(lambda: has_vip(r2), within=DOWN, step=0.002)
    assert time.monotonic() - t0 < 0.3
    assert d1.proc.wait(5) == 0
    assert not has_vip(r1)
    assert d2.instance("VI_1")["stats"]["pri_zero_rcvd"] >= 1


def test_split_brain_and_heal(lab):
    client = lab.add_node("client")
    r1, r2, d1, d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150)),
        keepalived_conf(vrrp_instance(priority=100)),
    )
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    lab.block_vrrp(r1)  # a firewall drops proto 112 both ways on r1: both become master
    assert wait_for(lambda: has_vip(r2), within=DOWN)
    assert has_vip(r1)
    # the client's ARP entry for the VIP follows r2's gratuitous ARPs (let both bursts pass)
    client.run(["ping", "-c", "1", "-W", "1", VIP], check=False)
    time.sleep(1.5)
    assert client.neighbour(VIP) == r2.mac("eth0")
    # heal, r1 hearing first: r1 (master) gets r2's lower-priority adverts, answers and
    # re-announces the VIP with gratuitous ARPs (keepalived's garp_lower_prio_repeat)
    r1.run(["nft", "flush", "chain", "inet", "hk_lab", "input"])
    time.sleep(0.3)
    lab.unblock_vrrp(r1)
    assert wait_for(lambda: not has_vip(r2), within=DOWN), d2.log_text()
    assert has_vip(r1)
    assert d1.instance("VI_1")["state"] == "MASTER"
    assert d2.instance("VI_1")["state"] == "BACKUP"
    r1_mac = r1.mac("eth0")

    # no traffic from the client needed: the GARPs alone move its neighbour entry
    assert wait_for(lambda: client.neighbour(VIP) == r1_mac, within=DOWN * 2)


def test_unicast_peers(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    c1 = vrrp_instance(priority=150, unicast_src_ip=r1.ipv4, unicast_peers=[r2.ipv4])
    c2 = vrrp_instance(priority=100, unicast_src_ip=r2.ipv4, unicast_peers=[r1.ipv4])
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(c1), suffix=".conf")
    d2 = start_daemon(r2, "hakeeper", keepalived_conf(c2), suffix=".conf")
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    time.sleep(0.5)
    assert not has_vip(r2)
    assert d2.instance("VI_1")["master_address"] == r1.ipv4
    d1.stop()
    assert wait_for(lambda: has_vip(r2), within=DOWN)
    assert d2.alive()


def test_ipv6_instance(lab):
    r1, r2, d1, _d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150, vips=[f"{VIP6}/64"])),
        keepalived_conf(vrrp_instance(priority=100, vips=[f"{VIP6}/64"])),
    )
    assert wait_for(lambda: has_vip(r1, VIP6), within=DOWN * 3), d1.log_text()
    time.sleep(0.5)
    assert not has_vip(r2, VIP6)
    s1 = d1.instance("VI_1")
    assert (s1["family"], s1["version"]) == ("IPv6", 3)
    lab.cut(r1)
    assert wait_for(lambda: has_vip(r2, VIP6), within=DOWN)


def test_vmac_carries_the_vip(lab):
    r1, r2, d1, _d2 = pair(
        lab,
        keepalived_conf(vrrp_instance(priority=150, use_vmac=True)),
        keepalived_conf(vrrp_instance(priority=100, use_vmac=True)),
    )
    assert wait_for(lambda: VIP in r1.addresses("vrrp.51"), within=DOWN * 3), d1.log_text()
    assert r1.mac("vrrp.51") == "00:00:5e:00:01:33"
    # r2 may have won the first election on a slow start: r1's higher priority takes it back
    assert wait_for(lambda: VIP not in r2.addresses("vrrp.51"), within=DOWN)
    d1.stop()
    assert wait_for(lambda: VIP in r2.addresses("vrrp.51"), within=DOWN)
    # the daemon removes the macvlan it made when it stops
    assert "vrrp.51" not in r1.run(["ip", "-o", "link"]).stdout


def test_reload_keeps_state_and_adds_instance(lab):
    r1 = lab.add_node("r1")
    conf = keepalived_conf(vrrp_instance(priority=150))
    d1 = start_daemon(r1, "hakeeper", conf, suffix=".conf")
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    before = d1.instance("VI_1")["last_transition"]
    # unchanged instance + one new instance: VI_1 must not flap
    d1.config.write_text(
        keepalived_conf(
            vrrp_instance(priority=150),
            vrrp_instance("VI_2", vrid=52, priority=150, vips=["198.18.0.101/24"]),
        )
    )
    d1.reload()
    assert wait_for(lambda: has_vip(r1, "198.18.0.101"), within=DOWN * 2), d1.log_text()
    assert has_vip(r1)
    assert d1.instance("VI_1")["last_transition"] == before
    assert d1.state()["reloads"] == 1
    # a priority change is applied live, still without a flap
    d1.config.write_text(keepalived_conf(vrrp_instance(priority=140)))
    d1.reload()
    assert wait_for(lambda: not has_vip(r1, "198.18.0.101"), within=DOWN)
    assert d1.instance("VI_1")["base_priority"] == 140
    assert d1.instance("VI_1")["last_transition"] == before
    assert has_vip(r1)


def test_bad_reload_keeps_running_config(lab):
    r1 = lab.add_node("r1")
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150)), ".conf")
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    before = d1.instance("VI_1")["last_transition"]
    d1.config.write_text(keepalived_conf(vrrp_instance(priority=300)))
    d1.reload()
    assert wait_for(lambda: "reload refused" in d1.log_text(), within=DOWN)
    assert f"{d1.config}:" in d1.log_text() and "priority" in d1.log_text()
    assert d1.alive()
    assert has_vip(r1)
    inst = d1.instance("VI_1")
    assert inst["base_priority"] == 150 and inst["last_transition"] == before
    assert d1.state()["reloads"] == 0


def test_malformed_packets_are_counted_not_fatal(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150)), ".conf")
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2)
    # from r2, for VRID 51: an advert cut short of its address, one with a bad checksum,
    # and one with TTL 1 and priority 200 that would take over if it were not dropped
    send_adverts(r2, VIP, ("short", "checksum", "ttl"))
    assert wait_for(
        lambda: (
            (s := d1.instance("VI_1")["stats"])["packet_len_err"] >= 1
            and s["checksum_err"] >= 1
            and s["ip_ttl_err"] >= 1
        ),
        within=DOWN,
    ), d1.instance("VI_1")["stats"]
    assert d1.alive()
    assert d1.instance("VI_1")["state"] == "MASTER"


def test_master_owns_labels_excluded_addresses_routes_and_rules(lab):
    r1 = lab.add_node("r1")
    extra = (
        "    virtual_ipaddress_excluded {\n        198.18.0.102/24\n    }\n"
        "    virtual_routes {\n        198.18.50.0/24 via 198.18.0.254 dev eth0\n    }\n"
        "    virtual_rules {\n        from 198.18.0.100 table 100 priority 100\n    }\n"
    )
    inst = vrrp_instance(
        priority=150, vips=["198.18.0.100/24 dev eth0 label eth0:vip"], extra=extra
    )
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(inst), suffix=".conf")
    assert wait_for(lambda: has_vip(r1), within=DOWN * 2), d1.log_text()
    assert has_vip(r1, "198.18.0.102")
    assert "eth0:vip" in r1.run(["ip", "-4", "addr", "show", "dev", "eth0"]).stdout
    assert "198.18.50.0/24 via 198.18.0.254" in r1.run(["ip", "route"]).stdout
    assert "from 198.18.0.100 lookup 100" in r1.run(["ip", "rule"]).stdout
    d1.stop()
    assert not has_vip(r1) and not has_vip(r1, "198.18.0.102")
    assert "198.18.50.0/24" not in r1.run(["ip", "route"]).stdout
    assert "from 198.18.0.100 lookup 100" not in r1.run(["ip", "rule"]).stdout
