"""VRRP and the host firewall as a user sees it: real nftables in the routers' namespaces.

A user's table that drops VRRP splits the brain, and hakeeper says which chain does it;
`vrrp_firewall`'s own table cannot undo that drop (nftables runs every base chain and a drop
is final), it counts the adverts that reach the host; hakeeper's table lives exactly as long
as the daemon, replaced whole on reload and over what a killed daemon left.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.lab import Lab, Node

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
WITHIN = 10.0  # includes a daemon start on a busy machine
FIREWALL = "    vrrp_firewall\n"
# a host firewall as many write it: replies, ssh, and nothing else
USER_TABLE = """table inet userfw {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lo" accept
        tcp dport 22 accept
    }
}
"""


def has_vip(node: Node) -> bool:
    return VIP in node.addresses("eth0")


def state(d: Daemon, name: str = "VI_1") -> str:
    return str(d.instance(name)["state"])


def hakeeper_table(node: Node) -> list[dict[str, Any]] | None:
    """hakeeper's table as `nft -j` lists it (its rules with their counters), or None."""
    r = node.run(["nft", "-j", "list", "table", "inet", "hakeeper"], check=False)
    if r.returncode != 0:
        return None
    return [item for item in json.loads(r.stdout)["nftables"] if "metainfo" not in item]


def rules(node: Node) -> list[dict[str, Any]]:
    return [item["rule"] for item in hakeeper_table(node) or [] if "rule" in item]


def vrrp_in_packets(node: Node) -> int:
    """What hakeeper's input chain counted of VRRP."""
    total = 0
    for rule in rules(node):
        is_vrrp = any(e.get("match", {}).get("right") in (112, "vrrp") for e in rule["expr"])
        if rule["chain"] == "input" and is_vrrp:
            total += sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return total


def log_lines(d: Daemon, needle: str) -> list[str]:
    return [line for line in d.log_text().splitlines() if needle in line]


def pair(lab: Lab, extra2: str = "", user_table: bool = True) -> tuple[Node, Node, Daemon, Daemon]:
    """r1 (priority 150) and r2 (100); r2 behind the user's firewall, if asked."""
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    if user_table:
        r2.run(["nft", "-f", "-"], input=USER_TABLE)
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150)), ".conf")
    assert wait_for(lambda: has_vip(r1), within=WITHIN), d1.log_text()
    conf2 = keepalived_conf(vrrp_instance(priority=100), global_extra=extra2)
    d2 = start_daemon(r2, "hakeeper", conf2, ".conf")
    return r1, r2, d1, d2


def test_firewall_dropping_vrrp_splits_the_brain_and_is_named(lab: Lab) -> None:
    _r1, r2, d1, d2 = pair(lab)
    # r2 never hears r1: it takes the VIP too
    assert wait_for(lambda: has_vip(r2), within=WITHIN), d2.log_text()
    assert state(d1) == "MASTER" and state(d2) == "MASTER"
    needle = "VI_1: VRRP to 224.0.0.18 on eth0 is dropped by table inet userfw chain input"
    assert wait_for(lambda: log_lines(d2, needle), within=WITHIN), d2.log_text()
    (line,) = log_lines(d2, needle)
    assert " ERROR " in line and "(policy drop)" in line
    assert not log_lines(d1, "is dropped by")  # r1's host lets VRRP through


def test_own_table_counts_adverts_but_cannot_undo_a_drop_the_fix_can(lab: Lab) -> None:
    r1, r2, _d1, d2 = pair(lab, extra2=FIREWALL)
    assert wait_for(lambda: has_vip(r2), within=WITHIN), d2.log_text()
    # r1's adverts reach hakeeper's chain (it counts them), yet the user's chain drops them
    assert wait_for(lambda: vrrp_in_packets(r2) >= 5, within=WITHIN), hakeeper_table(r2)
    assert state(d2) == "MASTER"
    needle = "is dropped by table inet userfw chain input (policy drop)"
    assert wait_for(lambda: log_lines(d2, needle), within=WITHIN), d2.log_text()
    assert "cannot undo another table's drop" in log_lines(d2, needle)[0]
    # the fix the warning asks for: accept VRRP in the user's chain
    r2.run(["nft", "add", "rule", "inet", "userfw", "input", "meta", "l4proto", "vrrp", "accept"])
    assert wait_for(lambda: not has_vip(r2), within=WITHIN), d2.log_text()
    assert state(d2) == "BACKUP" and has_vip(r1)
    d2.reload()  # the check runs again and is satisfied
    ok = "firewall check: no rule drops VRRP or traffic to the VIPs"
    assert wait_for(lambda: log_lines(d2, ok), within=WITHIN), d2.log_text()


def test_table_lives_with_the_daemon_and_is_replaced_on_reload(lab: Lab) -> None:
    r1 = lab.add_node("r1")
    d = start_daemon(
        r1, "hakeeper", keepalived_conf(vrrp_instance(), global_extra=FIREWALL), ".conf"
    )
    assert wait_for(lambda: has_vip(r1), within=WITHIN), d.log_text()
    first = rules(r1)
    assert {r["comment"] for r in first} == {"VI_1"}
    # its own adverts pass its output chain
    out = [r for r in first if r["chain"] == "output"]
    assert out and out[0]["expr"][0]["match"]["right"] == "eth0"
    assert wait_for(lambda: vrrp_out_packets(r1) > 0, within=WITHIN)

    two = keepalived_conf(
        vrrp_instance(),
        vrrp_instance("VI_2", vrid=52, vips=["198.18.0.101/24"], unicast_peers=["198.18.0.9"]),
        global_extra=FIREWALL,
    )
    d.config.write_text(two)
    d.reload()
    assert wait_for(lambda: {r["comment"] for r in rules(r1)} == {"VI_1", "VI_2"}, WITHIN)
    tables = r1.run(["nft", "list", "tables"]).stdout.splitlines()
    assert tables.count("table inet hakeeper") == 1
    peers = [r for r in rules(r1) if r["comment"] == "VI_2" and r["chain"] == "input"]
    assert peers[0]["expr"][1]["match"]["right"] == "198.18.0.9"  # from the unicast peer

    d.config.write_text(keepalived_conf(vrrp_instance()))  # the option off: table gone
    d.reload()
    assert wait_for(lambda: hakeeper_table(r1) is None, WITHIN), d.log_text()
    d.config.write_text(keepalived_conf(vrrp_instance(), global_extra=FIREWALL))
    d.reload()
    assert wait_for(lambda: hakeeper_table(r1) is not None, WITHIN), d.log_text()

    assert d.stop() == 0
    assert hakeeper_table(r1) is None, r1.run(["nft", "list", "ruleset"]).stdout


def vrrp_out_packets(node: Node) -> int:
    return sum(
        e["counter"]["packets"]
        for r in rules(node)
        if r["chain"] == "output"
        for e in r["expr"]
        if "counter" in e
    )


def test_restart_after_kill_replaces_the_stale_table(lab: Lab) -> None:
    r1 = lab.add_node("r1")
    conf = keepalived_conf(vrrp_instance(), global_extra=FIREWALL)
    d = start_daemon(r1, "hakeeper", conf, ".conf")
    assert wait_for(lambda: hakeeper_table(r1) is not None and has_vip(r1), WITHIN)
    before = rules(r1)
    d.kill()
    assert hakeeper_table(r1) is not None  # SIGKILL leaves it behind
    stale_handle = next(i for i in hakeeper_table(r1) or [] if "table" in i)["table"]["handle"]

    d.start()  # same config: the same rules, once, in a fresh table
    holds = "firewall: table inet hakeeper holds"
    assert wait_for(lambda: len(log_lines(d, holds)) == 2, WITHIN), d.log_text()
    table = hakeeper_table(r1) or []
    assert next(i for i in table if "table" in i)["table"]["handle"] != stale_handle
    assert [(r["chain"], r["comment"]) for r in rules(r1)] == [
        (r["chain"], r["comment"]) for r in before
    ]
    d.kill()
    # started without the option, it still clears what a killed run of it left
    d.config.write_text(keepalived_conf(vrrp_instance()))
    d.start()
    assert wait_for(lambda: hakeeper_table(r1) is None, WITHIN), d.log_text()
    assert d.stop() == 0


def test_keepalived_strict_leftovers_make_the_vip_unreachable_and_are_named(lab: Lab) -> None:
    """keepalived's vrrp_strict rules (no accept mode) left on a host now running hakeeper."""
    r1, client = lab.add_node("r1"), lab.add_node("client")
    r1.run(["nft", "-f", "-"], input=KEEPALIVED_LEFTOVER)
    d = start_daemon(r1, "hakeeper", keepalived_conf(vrrp_instance()), ".conf")
    assert wait_for(lambda: has_vip(r1), within=WITHIN), d.log_text()
    ping = client.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", VIP], check=False)
    assert ping.returncode != 0  # the user's view: the VIP does not answer
    needle = f"VI_1: TCP to VIP {VIP} on eth0 is dropped by table ip keepalived chain in"
    assert wait_for(lambda: log_lines(d, needle), within=WITHIN), d.log_text()
    assert "(ip daddr @vips drop)" in log_lines(d, needle)[0]
    r1.run(["nft", "delete", "table", "ip", "keepalived"])
    ping = client.run(["ping", "-c", "1", "-W", "2", VIP], check=False)
    assert ping.returncode == 0, ping.stdout


# what keepalived 2.2.7 writes for `vrrp_strict` on a non-owner (nft list ruleset)
KEEPALIVED_LEFTOVER = f"""table ip keepalived {{
    set vips {{
        type ipv4_addr
        elements = {{ {VIP} }}
    }}
    chain out {{
        type filter hook output priority filter - 1; policy accept;
        ip saddr @vips drop
    }}
    chain in {{
        type filter hook input priority filter - 1; policy accept;
        ip daddr @vips drop
    }}
}}
"""
