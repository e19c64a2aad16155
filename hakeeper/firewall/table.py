"""hakeeper's own nftables table (`vrrp_firewall`): the JSON batch that installs it whole.

One `inet hakeeper` table with an input and an output chain that accept, and count, VRRP on
the instances' interfaces: to the multicast group, or from/to the unicast peers, plus the
IGMP/MLD a multicast group needs. The batch adds, deletes and re-adds the table, so one
transaction replaces whatever was there (a reload, or a table left by a killed daemon).
"""

from __future__ import annotations

from typing import Any

from hakeeper.config.model import Config, GlobalDefs, IPAddress, VrrpInstance

FAMILY = "inet"
TABLE = "hakeeper"
VRRP = 112  # IANA protocol number
COMMENT_MAX = 128  # nftables' limit on a rule comment
# what a multicast listener must hear (queries) and say (reports)
MLD_IN = ("mld-listener-query",)
MLD_OUT = ("mld-listener-report", "mld2-listener-report")

Json = dict[str, Any]
# (direction, ifname, family, peers or the group): the instances sharing one rule
Key = tuple[str, str, int, tuple[IPAddress, ...]]


def receive_ifname(inst: VrrpInstance) -> str:
    """The interface VRRP arrives on: the VMAC, unless adverts go out on the base."""
    vmac = inst.vmac_interface
    return vmac if vmac is not None and not inst.vmac_xmit_base else inst.interface


def _group(g: GlobalDefs, inst: VrrpInstance) -> IPAddress:
    return g.vrrp_mcast_group6 if inst.family == 6 else g.vrrp_mcast_group4


def _match(left: Json, right: Any) -> Json:
    return {"match": {"op": "==", "left": left, "right": right}}


def _addr(family: int, field: str) -> Json:
    return {"payload": {"protocol": "ip6" if family == 6 else "ip", "field": field}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _values(addrs: tuple[IPAddress, ...]) -> Any:
    return str(addrs[0]) if len(addrs) == 1 else {"set": [str(a) for a in addrs]}


def _rule(chain: str, expr: list[Json], names: list[str]) -> Json:
    comment = " ".join(sorted(names))
    if len(comment) > COMMENT_MAX:
        comment = comment[: COMMENT_MAX - 3] + "..."
    return {
        "rule": {
            "family": FAMILY,
            "table": TABLE,
            "chain": chain,
            "comment": comment,
            "expr": [*expr, {"counter": None}, {"accept": None}],
        }
    }


def _keys(config: Config) -> dict[Key, list[str]]:
    """Each VRRP rule to write, with the instances it serves."""
    g = config.global_defs
    keys: dict[Key, list[str]] = {}
    for inst in config.vrrp_instances:
        targets = inst.unicast_peer or (_group(g, inst),)
        for direction in ("in", "out"):
            ifname = receive_ifname(inst) if direction == "in" else inst.interface
            keys.setdefault((direction, ifname, inst.family, targets), []).append(inst.name)
    return keys


def rules(config: Config) -> list[Json]:
    """The table's rules: one per interface, family and peer list, VRRP then IGMP/MLD."""
    out: list[Json] = []
    multicast: dict[tuple[str, str, int], list[str]] = {}
    for (direction, ifname, family, targets), names in sorted(
        _keys(config).items(),
        key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], [str(t) for t in kv[0][3]]),
    ):
        chain = "input" if direction == "in" else "output"
        iface = _match(_meta("iifname" if direction == "in" else "oifname"), ifname)
        unicast = not targets[0].is_multicast
        # multicast: the group is the destination both ways; unicast: the peers are the
        # source of what comes in and the destination of what goes out
        field = "saddr" if unicast and direction == "in" else "daddr"
        expr = [iface, _match(_addr(family, field), _values(targets))]
        out.append(_rule(chain, [*expr, _match(_meta("l4proto"), VRRP)], names))
        if not unicast:
            multicast.setdefault((chain, ifname, family), []).extend(names)
    for (chain, ifname, family), names in sorted(multicast.items()):
        iface = _match(_meta("iifname" if chain == "input" else "oifname"), ifname)
        if family == 4:
            proto = [_match(_meta("nfproto"), "ipv4"), _match(_meta("l4proto"), "igmp")]
        else:
            types = MLD_IN if chain == "input" else MLD_OUT
            icmp = {"payload": {"protocol": "icmpv6", "field": "type"}}
            proto = [_match(_meta("nfproto"), "ipv6"), _match(icmp, {"set": list(types)})]
        out.append(_rule(chain, [iface, *proto], names))
    return out


def _table() -> Json:
    return {"table": {"family": FAMILY, "name": TABLE}}


def replace_batch(config: Config) -> list[Json]:
    """One transaction that leaves exactly our table, whatever was there before."""
    prio = config.global_defs.vrrp_firewall_priority
    chains = [
        {
            "chain": {
                "family": FAMILY,
                "table": TABLE,
                "name": name,
                "type": "filter",
                "hook": name,
                "prio": prio,
                "policy": "accept",  # never ours to drop anything
            }
        }
        for name in ("input", "output")
    ]
    return [
        *remove_batch(),
        {"add": _table()},
        *({"add": c} for c in chains),
        *({"add": r} for r in rules(config)),
    ]


def remove_batch() -> list[Json]:
    """Delete the table; adding it first makes this succeed when it is not there."""
    return [{"add": _table()}, {"delete": _table()}]
