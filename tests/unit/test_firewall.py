"""The firewall check over real `nft -j list ruleset` output, hakeeper's table, the config.

The golden rulesets were listed by nft 1.0.6 from a namespace (tests/unit/golden/README.md):
keepalived 2.2.7's own tables for `vrrp_strict`, and a typical host firewall.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hakeeper.config.convert import to_yaml
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.model import Config
from hakeeper.config.yaml_reader import parse_yaml_text
from hakeeper.firewall.audit import Finding, audit, describe
from hakeeper.firewall.table import remove_batch, replace_batch

GOLDEN = Path(__file__).resolve().parent / "golden"
LOCAL = {
    ("hkv0", 4): ipaddress.ip_address("198.18.7.1"),
    ("hkv0", 6): ipaddress.ip_address("fe80::1"),
    ("eth0", 4): ipaddress.ip_address("198.18.7.1"),
    ("eth0", 6): ipaddress.ip_address("fe80::1"),
}


def ruleset(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"nft-{name}.json").read_text())


def instance(name: str, vrid: int, iface: str, vips: str, extra: str = "") -> str:
    return (
        f"vrrp_instance {name} {{\n interface {iface}\n virtual_router_id {vrid}\n version 3\n"
        f"{extra} virtual_ipaddress {{\n{vips}\n }}\n}}\n"
    )


def config(*instances: str, glob: str = "") -> Config:
    return parse_keepalived_text(f"global_defs {{\n{glob}}}\n" + "".join(instances))


def lines(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings]


# ------------------------------------------------------------- keepalived's vrrp_strict tables


def test_keepalived_strict_tables_drop_the_vips_not_vrrp() -> None:
    cfg = config(
        instance("V4", 51, "hkv0", "198.18.7.100/24\n198.18.7.200/24"),
        instance("V6", 52, "hkv0", "fd00:198:18:7::100/64"),
    )
    found = audit(ruleset("keepalived-vrrp_strict"), cfg, LOCAL)
    assert lines(found) == [
        "V4: TCP to VIP 198.18.7.100 on hkv0 is dropped by table ip keepalived chain in "
        "rule handle 4 (ip daddr @vips drop)",
        "V4: TCP from VIP 198.18.7.100 on hkv0 is dropped by table ip keepalived chain out "
        "rule handle 5 (ip saddr @vips drop)",
        "V6: TCP to VIP fd00:198:18:7::100 on hkv0 is dropped by table ip6 keepalived chain in "
        "rule handle 11 (ip6 daddr @vips drop)",
        "V6: TCP from VIP fd00:198:18:7::100 on hkv0 is dropped by table ip6 keepalived chain "
        "out rule handle 12 (ip6 saddr @vips drop)",
    ]
    assert all(f.sure for f in found)  # 198.18.7.200 is not in the set: nothing said of it


def test_unknown_advert_source_makes_a_vip_set_a_maybe() -> None:
    """Without the interface's own address, the adverts' source might be a VIP."""
    cfg = config(instance("V4", 51, "hkv0", "198.18.7.100/24"))
    found = [f for f in audit(ruleset("keepalived-vrrp_strict"), cfg) if not f.flow.vip]
    assert lines(found) == [
        "V4: VRRP to 224.0.0.18 on hkv0 may be dropped by table ip keepalived chain out "
        "rule handle 5 (ip saddr @vips drop)"
    ]


# ------------------------------------------------------------- a typical host firewall


def test_typical_host_firewall() -> None:
    cfg = config(
        instance("M4", 54, "eth1", "198.18.7.60/24"),  # accepted: ip daddr 224.0.0.18 vrrp
        instance("M6", 55, "eth1", "fd00:198:18:7::60/64"),  # pkttype multicast drop first
        instance(
            "U4",
            53,
            "eth1",
            "198.18.7.50/24",
            " unicast_peer {\n 198.18.7.3\n 198.18.8.1\n }\n",
        ),
        instance("O4", 56, "eth0", "198.18.7.70/24"),  # its output chain drops VRRP on eth0
    )
    found = lines(audit(ruleset("typical-host"), cfg, LOCAL))
    assert found == [
        "M6: VRRP to ff02::12 on eth1 is dropped by table inet filter chain input "
        "rule handle 17 (meta pkttype multicast drop)",
        "M6: VRRP to ff02::12 on eth1 is dropped by table ip6 x chain i "
        "rule handle 2 (meta l4proto != tcp drop)",
        # the peer in @peers4 is accepted; the other may meet `meta mark 0x10 accept` first
        "U4: VRRP from 198.18.8.1 on eth1 may be dropped by table inet filter chain input "
        "rule handle 21 (log reject)",
        "O4: VRRP to 224.0.0.18 on eth0 is dropped by table inet filter chain output "
        "rule handle 25 (oifname eth0 ip protocol vrrp drop)",
    ]


def test_verdict_maps_and_an_ingress_chain() -> None:
    cfg = config(
        instance("E0", 51, "eth0", "198.18.7.10/24"),  # iifname vmap: accept
        instance("E1", 52, "eth1", "198.18.7.11/24"),  # iifname vmap: drop
        instance("E2", 53, "eth2", "198.18.7.12/24"),  # l4proto vmap: vrrp accept
        instance("U2", 54, "eth2", "198.18.7.13/24", " unicast_peer {\n 198.18.7.3\n }\n"),
    )
    found = [str(f) for f in audit(ruleset("vmap-netdev"), cfg, LOCAL) if f.flow.direction == "in"]
    # nft's JSON leaves out the device an ingress chain is bound to: "may" for every one
    ingress = "may be dropped by table netdev guard chain ing rule handle 2 (ip protocol vrrp drop)"
    assert found == [
        f"E0: VRRP to 224.0.0.18 on eth0 {ingress}",
        f"E1: VRRP to 224.0.0.18 on eth1 {ingress}",  # in the packet's path order
        "E1: VRRP to 224.0.0.18 on eth1 is dropped by table inet filter chain input "
        "rule handle 6 (iifname vmap @ifaces)",
        f"E2: VRRP to 224.0.0.18 on eth2 {ingress}",
        f"U2: VRRP from 198.18.7.3 on eth2 {ingress}",
    ]


def test_describe_a_verdict_map() -> None:
    rules = [i["rule"] for i in ruleset("vmap-netdev")["nftables"] if "rule" in i]
    assert describe(rules[0]) == (
        "ct state vmap { invalid : drop, established : accept, related : accept }"
    )
    assert describe(rules[2]) == "meta l4proto vmap { tcp : jump tcp_in, vrrp : accept }"


# ------------------------------------------------------------- small hand-made rulesets


def chain(name: str, hook: str | None = None, policy: str = "accept", **kw: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"family": "inet", "table": "t", "name": name, **kw}
    if hook is not None:
        c |= {"type": "filter", "hook": hook, "prio": 0, "policy": policy}
    return {"chain": c}


def rule(chain_name: str, handle: int, *expr: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": {
            "family": "inet",
            "table": "t",
            "chain": chain_name,
            "handle": handle,
            "expr": list(expr),
        }
    }


def match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


IIF = {"meta": {"key": "iifname"}}
L4 = {"meta": {"key": "l4proto"}}
SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
ACCEPT, DROP = {"accept": None}, {"drop": None}
VI = instance("VI_1", 51, "eth0", "198.18.0.100/24")


def vrrp_in(doc_items: list[dict[str, Any]], *insts: str) -> list[Finding]:
    found = audit({"nftables": doc_items}, config(*(insts or (VI,))), LOCAL)
    return [f for f in found if f.flow.direction == "in" and not f.flow.vip]


def test_policy_drop_with_nothing_accepting_is_sure() -> None:
    (f,) = vrrp_in([chain("input", "input", "drop"), rule("input", 2, match(L4, "tcp"), ACCEPT)])
    assert f.sure and f.where == "table inet t chain input (policy drop)"


def test_interface_wildcards_and_negation() -> None:
    items = [
        chain("input", "input", "drop"),
        rule("input", 2, match(IIF, "eth*"), match(L4, "vrrp"), ACCEPT),
    ]
    assert vrrp_in(items) == []
    items[1] = rule("input", 2, match(IIF, "eth*", "!="), ACCEPT)
    assert [f.sure for f in vrrp_in(items)] == [True]


def test_a_jump_into_a_dropping_chain_names_the_rule_there() -> None:
    items = [
        chain("input", "input"),
        chain("vrrp_guard"),
        rule("input", 3, match(L4, 112), {"jump": {"target": "vrrp_guard"}}),
        rule("vrrp_guard", 4, match(DADDR, {"prefix": {"addr": "198.18.9.0", "len": 24}}), ACCEPT),
        rule("vrrp_guard", 5, {"counter": None}, DROP),
    ]
    (f,) = vrrp_in(items)
    assert (f.sure, f.where) == (True, "table inet t chain vrrp_guard rule handle 5 (drop)")


def test_a_dynamic_set_or_a_rate_limit_only_may_match() -> None:
    dyn = {
        "set": {
            "family": "inet",
            "table": "t",
            "name": "banned",
            "type": "ipv4_addr",
            "flags": ["dynamic"],
        }
    }
    items = [
        chain("input", "input"),
        dyn,
        rule("input", 2, match(SADDR, "@banned"), DROP),
        rule("input", 3, match(L4, "vrrp"), {"limit": {"rate": 10, "per": "second"}}, DROP),
    ]
    found = vrrp_in(items)
    assert [(f.sure, f.where.split(" rule ")[1]) for f in found] == [
        (False, "handle 2 (ip saddr @banned drop)")
    ]


def test_conntrack_state_of_multicast_adverts_is_new() -> None:
    ct = {"ct": {"key": "state"}}
    items = [
        chain("input", "input", "drop"),
        rule("input", 2, match(ct, ["established", "related"], "in"), ACCEPT),
        rule("input", 3, match(ct, "invalid", "in"), DROP),
    ]
    (f,) = vrrp_in(items)  # the accept cannot match, the policy drops it: sure
    assert f.sure and f.where.endswith("(policy drop)")
    unicast = instance("U", 52, "eth0", "198.18.0.101/24", " unicast_peer {\n 198.18.0.2\n }\n")
    (u,) = vrrp_in(items, unicast)  # a unicast advert may be an answer: may
    assert not u.sure


def test_other_hooks_and_families_are_not_read() -> None:
    items = [
        {
            "chain": {
                "family": "ip6",
                "table": "t",
                "name": "c",
                "type": "filter",
                "hook": "input",
                "prio": 0,
                "policy": "drop",
            }
        },
        {
            "chain": {
                "family": "inet",
                "table": "t",
                "name": "f",
                "type": "filter",
                "hook": "forward",
                "prio": 0,
                "policy": "drop",
            }
        },
    ]
    assert vrrp_in(items) == []


def test_skipped_tables_are_not_read() -> None:
    doc = {"nftables": [chain("input", "input", "drop")]}
    assert audit(doc, config(VI), LOCAL, skip=[("inet", "t")]) == []


def test_describe_reads_like_nft() -> None:
    r = rule(
        "i",
        1,
        match(IIF, "lo"),
        match(L4, {"set": ["tcp", "udp"]}),
        {"counter": None},
        {"jump": {"target": "x"}},
    )
    assert describe(r["rule"]) == "iifname lo meta l4proto { tcp, udp } jump x"


# ------------------------------------------------------------- hakeeper's own table


def test_replace_batch_is_one_transaction_over_whatever_was_there() -> None:
    cfg = config(
        instance("A", 51, "eth0", "198.18.0.100/24"),
        instance("B", 52, "eth0", "198.18.0.101/24"),  # shares A's rules
        instance("U", 53, "eth1", "198.18.1.100/24", " unicast_peer {\n 198.18.1.2\n }\n"),
        instance("S", 54, "eth0", "fd00:198:18::100/64"),
        glob=" vrrp_firewall\n vrrp_firewall_priority -50\n",
    )
    batch = replace_batch(cfg)
    assert batch[:2] == remove_batch()  # add + delete: works with or without a stale table
    chains = [c["add"]["chain"] for c in batch if "chain" in c.get("add", {})]
    assert {(c["name"], c["hook"], c["prio"], c["policy"]) for c in chains} == {
        ("input", "input", -50, "accept"),
        ("output", "output", -50, "accept"),
    }
    got = [
        (r["chain"], r["comment"], [e["match"]["right"] for e in r["expr"] if "match" in e])
        for r in (c["add"]["rule"] for c in batch if "rule" in c.get("add", {}))
    ]
    assert got == [
        ("input", "A B", ["eth0", "224.0.0.18", 112]),
        ("input", "S", ["eth0", "ff02::12", 112]),
        ("input", "U", ["eth1", "198.18.1.2", 112]),  # from the peer
        ("output", "A B", ["eth0", "224.0.0.18", 112]),
        ("output", "S", ["eth0", "ff02::12", 112]),
        ("output", "U", ["eth1", "198.18.1.2", 112]),  # to the peer
        ("input", "A B", ["eth0", "ipv4", "igmp"]),
        ("input", "S", ["eth0", "ipv6", {"set": ["mld-listener-query"]}]),
        ("output", "A B", ["eth0", "ipv4", "igmp"]),
        ("output", "S", ["eth0", "ipv6", {"set": ["mld-listener-report", "mld2-listener-report"]}]),
    ]
    peer_rule = next(
        c["add"]["rule"] for c in batch if c.get("add", {}).get("rule", {}).get("comment") == "U"
    )
    assert peer_rule["expr"][1]["match"]["left"]["payload"]["field"] == "saddr"


# ------------------------------------------------------------- config: both formats, -t


def test_vrrp_firewall_in_both_formats() -> None:
    cfg = config(VI, glob=" vrrp_firewall\n vrrp_firewall_priority -200\n")
    g = cfg.global_defs
    assert (g.vrrp_firewall, g.vrrp_firewall_priority) == (True, -200)
    text = to_yaml(cfg)
    assert "vrrp_firewall: true" in text and "vrrp_firewall_priority: -200" in text
    assert parse_yaml_text(text) == cfg
    assert config(VI).global_defs.vrrp_firewall is False


def test_bad_priority_names_the_line() -> None:
    from hakeeper.config.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as e:
        config(VI, glob=" vrrp_firewall_priority 5000\n")
    assert str(e.value.errors[0]).startswith("keepalived.conf:2: vrrp_firewall_priority")


def test_strict_mode_on_a_non_owner_is_a_warning_at_its_line() -> None:
    cfg = config(instance("VI_1", 51, "eth0", "198.18.0.100/24"), glob=" vrrp_strict\n")
    (w,) = [w for w in cfg.warnings if "accept mode" in w.message]
    assert str(w).startswith("keepalived.conf:4: VI_1: accept mode is off (vrrp_strict)")
    assert "198.18.0.100" in w.message
    owner = config(
        instance("VI_1", 51, "eth0", "198.18.0.100/24", " priority 255\n"), glob=" vrrp_strict\n"
    )
    accepting = config(
        instance("VI_1", 51, "eth0", "198.18.0.100/24", " accept\n"), glob=" vrrp_strict\n"
    )
    plain = config(instance("VI_1", 51, "eth0", "198.18.0.100/24"))
    for c in (owner, accepting, plain):
        assert not [w for w in c.warnings if "accept mode" in w.message]


def test_scope_host_vip_is_a_warning_at_its_line() -> None:
    cfg = config(instance("VI_1", 51, "eth0", "198.18.0.100/24 scope host"))
    (w,) = cfg.warnings
    assert (
        str(w) == "keepalived.conf:8: VI_1: VIP 198.18.0.100 has scope host: no other host "
        "can reach it"
    )


def test_config_check_prints_the_warning(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "global_defs {\n vrrp_strict\n}\n" + instance("VI_1", 51, "eth0", "198.18.0.100/24")
    )
    r = subprocess.run(
        [sys.executable, "-m", "hakeeper.cli", "-t", "-f", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert f"{conf}:4: VI_1: accept mode is off (vrrp_strict)" in r.stderr
