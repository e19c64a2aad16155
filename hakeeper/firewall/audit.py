"""Does the live firewall drop VRRP or a VIP's traffic? A sans-IO reading of `nft -j list ruleset`.

Each packet hakeeper needs through is a `Flow`: what is known of it (protocol, addresses,
interface, packet type, conntrack state) and nothing more. Every base chain on the flow's
hooks (prerouting and input coming in, output and postrouting going out) runs in turn, and a
drop in any of them is final, so each is walked on its own. A rule matches surely, surely not,
or perhaps (it tests something the flow leaves unknown: a port, a mark, a rate limit); a drop
is reported as sure only when no earlier rule may have ended the walk, else as "may".
Traffic to VIPs is reported only when sure: any real firewall perhaps drops some of it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hakeeper.config.model import Config, IPAddress, VrrpInstance
from hakeeper.firewall.table import VRRP, receive_ifname

Json = dict[str, Any]

HOOKS = {"in": ("ingress", "prerouting", "input"), "out": ("output", "postrouting", "egress")}
FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6), "netdev": (4, 6)}
DEVICE_HOOKS = ("ingress", "egress")  # chains bound to devices
TCP = 6
PROTOCOLS = {
    "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
    "icmpv6": 58, "ipv6-icmp": 58, "vrrp": VRRP, "sctp": 132, "udplite": 136, "dccp": 33,
}  # fmt: skip
# transport headers `th` covers (ports at the same place)
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
# statements that neither match nor end the walk
PASSIVE = {"counter", "log", "mangle", "notrack", "ct helper", "set", "map", "meter", "synproxy"}
MAX_DEPTH = 16  # nftables' own jump limit is deeper; a ruleset that deep is read as unknown


@dataclass(frozen=True, slots=True)
class Flow:
    """A packet hakeeper needs through; None is "unknown", which rules may or may not match."""

    what: str  # how the log names it
    direction: str  # "in" or "out"
    family: int
    l4proto: int | None
    saddr: IPAddress | None
    daddr: IPAddress | None
    ifname: str | None  # the input interface coming in, the output one going out
    pkttype: str | None = None  # host, multicast
    # the conntrack states it can be in: multicast VRRP is never answered, so always new;
    # unicast VRRP flows both ways (new or established). None: unknown. (A notrack rule
    # for VRRP would make it untracked: rare enough to read as unknown is not worth it.)
    ct_state: frozenset[str] | None = None
    vip: bool = False  # report only sure drops


@dataclass(frozen=True, slots=True)
class Finding:
    instance: str
    flow: Flow
    sure: bool
    where: str  # table, chain and the rule or policy

    def __str__(self) -> str:
        verb = "is dropped" if self.sure else "may be dropped"
        return f"{self.instance}: {self.flow.what} {verb} by {self.where}"


# ----------------------------------------------------------------- the flows


NEW = frozenset({"new"})
NEW_OR_ESTABLISHED = frozenset({"new", "established"})
Local = Mapping[tuple[str, int], IPAddress | None]


def flows(inst: VrrpInstance, config: Config, local: Local | None = None) -> list[Flow]:
    """What one instance needs through: its adverts both ways, and TCP to and from its VIPs.
    `local` gives an interface's own address (the adverts' source) where the caller knows it."""
    g = config.global_defs
    fam, ifname, iif = inst.family, inst.interface, receive_ifname(inst)
    own = (local or {}).get((ifname, fam))
    out: list[Flow] = []
    if inst.unicast_peer:
        src, states = inst.unicast_src_ip or own, NEW_OR_ESTABLISHED
        for peer in inst.unicast_peer:
            out.append(Flow(f"VRRP from {peer} on {iif}", "in", fam, VRRP, peer, src, iif,
                            "host", states))  # fmt: skip
            out.append(Flow(f"VRRP to {peer} on {ifname}", "out", fam, VRRP, src, peer, ifname,
                            None, states))  # fmt: skip
    else:
        group = g.vrrp_mcast_group6 if fam == 6 else g.vrrp_mcast_group4
        src = inst.mcast_src_ip or own
        out.append(Flow(f"VRRP to {group} on {iif}", "in", fam, VRRP, None, group, iif,
                        "multicast", NEW))  # fmt: skip
        out.append(Flow(f"VRRP to {group} on {ifname}", "out", fam, VRRP, src, group, ifname,
                        None, NEW))  # fmt: skip
    for vip in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded:
        dev, addr = vip.dev or ifname, vip.address
        out.append(Flow(f"TCP to VIP {addr} on {dev}", "in", vip.family, TCP, None, addr, dev,
                        "host", vip=True))  # fmt: skip
        out.append(Flow(f"TCP from VIP {addr} on {dev}", "out", vip.family, TCP, addr, None,
                        dev, vip=True))  # fmt: skip
    return out


# ----------------------------------------------------------------- the ruleset


class Ruleset:
    """Chains, their rules in order, and named sets, from `nft -j list ruleset`."""

    def __init__(self, doc: Json) -> None:
        self.chains: dict[tuple[str, str, str], Json] = {}
        self.rules: dict[tuple[str, str, str], list[Json]] = {}
        self.sets: dict[tuple[str, str, str], Json] = {}
        for item in doc.get("nftables", []):
            if not isinstance(item, dict):
                continue
            for kind in ("chain", "rule", "set", "map"):
                obj = item.get(kind)
                if isinstance(obj, dict):
                    name = obj.get("chain") if kind == "rule" else obj.get("name")
                    key = (obj.get("family", ""), obj.get("table", ""), str(name))
                    if kind == "chain":
                        self.chains[key] = obj
                        self.rules.setdefault(key, [])
                    elif kind == "rule":
                        self.rules.setdefault(key, []).append(obj)
                    else:
                        self.sets[key] = obj

    def base_chains(self, flow: Flow) -> list[Json]:
        hooks = HOOKS[flow.direction]
        found = [
            c
            for c in self.chains.values()
            if c.get("hook") in hooks
            and flow.family in FAMILIES.get(c.get("family", ""), ())
            and c.get("type", "filter") in ("filter", "route")
        ]
        return sorted(found, key=lambda c: (hooks.index(c["hook"]), _prio(c)))


def _prio(chain: Json) -> int:
    prio = chain.get("prio", 0)
    return prio if isinstance(prio, int) else 0


# ----------------------------------------------------------------- one value against a rule


def _elements(right: Any, chain: Json, rs: Ruleset) -> tuple[list[Any], bool] | None:
    """The values a match compares with, and whether that list is complete (a set filled
    at run time is not); None when the right side is beyond this reading."""
    if isinstance(right, str) and right.startswith("@"):
        named = rs.sets.get((chain["family"], chain["table"], right[1:]))
        if named is None:
            return None
        flags = named.get("flags", [])
        flags = [flags] if isinstance(flags, str) else flags
        complete = "dynamic" not in flags and "timeout" not in flags and "timeout" not in named
        elems = named.get("elem", [])
        return (elems if isinstance(elems, list) else [elems]), complete
    if isinstance(right, dict) and "set" in right:
        elems = right["set"]
        return (elems if isinstance(elems, list) else [elems]), True
    if isinstance(right, list):
        return right, True
    return [right], True


def _unwrap(elem: Any) -> Any:
    while isinstance(elem, dict) and "elem" in elem:
        elem = elem["elem"].get("val")
    return elem


def _contains(elem: Any, value: Any, kind: str) -> bool | None:
    """Is `value` (a known flow value of `kind`) this element, or in its prefix or range?"""
    elem = _unwrap(elem)
    try:
        if kind == "addr":
            if isinstance(elem, dict) and "prefix" in elem:
                p = elem["prefix"]
                return value in ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False)
            if isinstance(elem, dict) and "range" in elem:
                lo, hi = (ipaddress.ip_address(a) for a in elem["range"])
                return lo.version == value.version and lo <= value <= hi
            if isinstance(elem, str):
                return ipaddress.ip_address(elem) == value
            return None
        if kind == "proto":
            if isinstance(elem, dict) and "range" in elem:
                lo, hi = (_proto(x) for x in elem["range"])
                return None if lo is None or hi is None else lo <= value <= hi
            number = _proto(elem)
            return None if number is None else number == value
        if kind == "ifname" and isinstance(elem, str):
            if elem.endswith("*") and not elem.endswith("\\*"):
                return value.startswith(elem[:-1])
            return elem == value
        if isinstance(elem, str):
            return elem == value
    except (ValueError, TypeError, KeyError):
        return None
    return None


def _proto(word: Any) -> int | None:
    if isinstance(word, int):
        return word
    if isinstance(word, str):
        return PROTOCOLS.get(word)
    return None


def _subject(left: Any, flow: Flow) -> tuple[str, Any] | bool | None:
    """What a match's left side reads from the flow: (kind, value); or False when it can
    never match this flow (an IPv4 header field on IPv6, a TCP port on VRRP); None unknown."""
    if not isinstance(left, dict):
        return None
    if "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto":
            return None if flow.l4proto is None else ("proto", flow.l4proto)
        if key == "nfproto":
            return ("word", "ipv6" if flow.family == 6 else "ipv4")
        if key == "protocol":
            return ("word", "ip6" if flow.family == 6 else "ip")
        if key in ("iifname", "iif"):
            return _iface(flow, "in")
        if key in ("oifname", "oif"):
            return _iface(flow, "out")
        if key == "pkttype":
            return None if flow.pkttype is None else ("word", flow.pkttype)
        return None
    if "ct" in left:
        if left["ct"].get("key") == "state" and flow.ct_state is not None:
            return ("states", flow.ct_state)
        return None
    if "payload" in left:
        p = left["payload"]
        proto, field = p.get("protocol"), p.get("field")
        if proto in ("ip", "ip6"):
            if (proto == "ip6") != (flow.family == 6):
                return False
            if field in ("protocol", "nexthdr"):
                return None if flow.l4proto is None else ("proto", flow.l4proto)
            if field in ("saddr", "daddr"):
                addr = flow.saddr if field == "saddr" else flow.daddr
                return None if addr is None else ("addr", addr)
            return None
        number = PROTOCOLS.get(proto) if isinstance(proto, str) else None
        if flow.l4proto is not None:
            if proto == "th" and flow.l4proto not in PORT_PROTOCOLS:
                return False
            if number is not None and number != flow.l4proto:
                return False
        return None
    return None


def _iface(flow: Flow, direction: str) -> tuple[str, Any] | None:
    if flow.direction != direction or flow.ifname is None:
        return None
    return ("ifname", flow.ifname)


def _match(m: Json, flow: Flow, chain: Json, rs: Ruleset) -> bool | None:
    subject = _subject(m.get("left"), flow)
    if subject is False:
        return False
    op = m.get("op", "==")
    if subject is None or subject is True or op not in ("==", "!=", "in"):
        return None
    kind, value = subject
    elems = _elements(m.get("right"), chain, rs)
    if elems is None:
        return None
    items, complete = elems
    if kind == "states":  # every state it may be in is listed, none is, or some are
        listed = {_unwrap(e) for e in items}
        hit: bool | None = True if value <= listed else (False if not value & listed else None)
        return None if hit is None else (hit if op != "!=" else not hit)
    hit = False
    for elem in items:
        found = _contains(elem, value, kind)
        if found:
            hit = True
            break
        if found is None:
            hit = None
    if hit is False and not complete:
        hit = None
    if op == "!=":
        return None if hit is None else not hit
    return hit


# ----------------------------------------------------------------- walking chains


@dataclass(slots=True)
class Walk:
    """Where a walk through a chain ended: "accept", "drop" or "return" (fell through);
    `unsure` when an earlier rule may have ended it; `maybe_drop` names the first rule that
    may have dropped it."""

    end: str
    where: str = ""
    unsure: bool = False
    maybe_drop: str = ""


def _where(chain: Json, rule: Json | None = None) -> str:
    text = f"table {chain['family']} {chain['table']} chain {chain['name']}"
    if rule is None:
        return f"{text} (policy drop)"
    return f"{text} rule handle {rule.get('handle', '?')} ({describe(rule)})"


def _walk(chain: Json, flow: Flow, rs: Ruleset, depth: int) -> Walk:
    state = Walk("return")
    if depth > MAX_DEPTH:
        state.unsure, state.maybe_drop = True, _where(chain, {"expr": []})
        return state
    key = (chain["family"], chain["table"], chain["name"])
    for rule in rs.rules.get(key, []):
        matched: bool | None = True
        verdict: Json | None = None
        for expr in rule.get("expr", []):
            if not isinstance(expr, dict) or not expr:
                continue
            name = next(iter(expr))
            if name == "match":
                m = _match(expr["match"], flow, chain, rs)
                if m is False:
                    matched = False
                    break
                if m is None:
                    matched = None
            elif name in PASSIVE:
                continue
            elif name in ("accept", "drop", "reject", "jump", "goto", "return", "continue"):
                verdict = expr
                break
            elif name in ("limit", "quota"):
                matched = None  # passes some packets, not others
            elif name == "vmap":
                verdict, sure_hit = _vmap(expr["vmap"], flow, chain, rs)
                if verdict is None:  # no element: the rule stops here
                    matched = False
                elif not sure_hit:
                    matched = None
                break
            else:
                verdict = {"unknown": None}  # queue, xt...: what it decides is unknown
                break
        if matched is False or verdict is None:
            continue
        sure = matched is True
        kind = next(iter(verdict))
        where = _where(chain, rule)
        if kind in ("jump", "goto"):
            target = rs.chains.get((chain["family"], chain["table"], verdict[kind].get("target")))
            if target is None:
                continue
            sub = _walk(target, flow, rs, depth + 1)
            state.maybe_drop = state.maybe_drop or sub.maybe_drop
            if sure and sub.end in ("accept", "drop"):
                return Walk(sub.end, sub.where, state.unsure or sub.unsure, state.maybe_drop)
            if sure and kind == "goto":
                return Walk("return", "", state.unsure or sub.unsure, state.maybe_drop)
            if sub.end == "drop":
                state.maybe_drop = state.maybe_drop or sub.where
            state.unsure = state.unsure or sub.unsure or sub.end == "accept" or kind == "goto"
            continue
        if kind == "continue":
            continue
        if kind in ("drop", "reject"):
            if sure:
                return Walk("drop", where, state.unsure, state.maybe_drop)
            state.maybe_drop = state.maybe_drop or where
            continue
        if kind == "unknown":
            state.maybe_drop = state.maybe_drop or where
            state.unsure = True
            continue
        # accept or return
        if sure:
            return Walk(kind, where, state.unsure, state.maybe_drop)
        state.unsure = True
    return state


def _vmap(vmap: Json, flow: Flow, chain: Json, rs: Ruleset) -> tuple[Json | None, bool]:
    """The verdict a verdict map gives the flow, and whether that is sure: (None, True) when
    no element matches (the rule ends); ({"unknown": None}, False) when it depends on what
    the flow leaves unknown."""
    unknown: tuple[Json | None, bool] = ({"unknown": None}, False)
    subject = _subject(vmap.get("key"), flow)
    if subject is False:
        return None, True
    elems = _elements(vmap.get("data"), chain, rs)
    if subject is None or subject is True or elems is None:
        return unknown
    kind, value = subject
    items, complete = elems
    pairs = [e for e in items if isinstance(e, list) and len(e) == 2]
    if kind == "states":  # the flow may be in any of these states
        found = [next((v for k, v in pairs if _unwrap(k) == st), None) for st in sorted(value)]
        verdicts = {json.dumps(v, sort_keys=True) for v in found if v is not None}
        if not complete:
            return unknown
        if not verdicts:
            return None, True
        if len(verdicts) == 1:  # one verdict, for some states or all
            return json.loads(verdicts.pop()), None not in found
        return unknown
    for key, verdict in pairs:
        hit = _contains(key, value, kind)
        if hit is None:
            return unknown
        if hit:
            return (verdict, True) if isinstance(verdict, dict) else unknown
    return (None, True) if complete else unknown


def _on_device(chain: Json, flow: Flow) -> bool | None:
    """Does an ingress/egress chain see the flow's interface? None: nft did not say which
    device it is bound to (1.0.6's JSON leaves it out)."""
    if chain.get("hook") not in DEVICE_HOOKS:
        return True
    dev = chain.get("dev")
    if dev is None or flow.ifname is None:
        return None
    return flow.ifname in ([dev] if isinstance(dev, str) else dev)


def chain_finding(chain: Json, flow: Flow, rs: Ruleset) -> tuple[bool, str] | None:
    """(sure, where) when this base chain drops, or may drop, the flow."""
    walk = _walk(chain, flow, rs, 0)
    if walk.end == "return" and chain.get("policy") == "drop":
        walk = Walk("drop", _where(chain), walk.unsure, walk.maybe_drop)
    if walk.end == "drop":
        return (not walk.unsure, walk.where)
    if walk.maybe_drop:
        return (False, walk.maybe_drop)
    return None


def audit(
    doc: Json, config: Config, local: Local | None = None, skip: Iterable[tuple[str, str]] = ()
) -> list[Finding]:
    """Every base chain that drops (or may drop) what an instance needs, one finding each;
    `skip` names tables not to read, as (family, name)."""
    rs = Ruleset(doc)
    skipped = set(skip)
    out: list[Finding] = []
    for inst in config.vrrp_instances:
        for flow in flows(inst, config, local):
            for chain in rs.base_chains(flow):
                on_device = _on_device(chain, flow)
                if (chain["family"], chain["table"]) in skipped or on_device is False:
                    continue
                found = chain_finding(chain, flow, rs)
                if found is None:
                    continue
                sure, where = found[0] and on_device is True, found[1]
                if flow.vip and not sure:
                    continue
                out.append(Finding(inst.name, flow, sure, where))
    return out


# ----------------------------------------------------------------- rule text for the log


def _text(value: Any) -> str:
    if isinstance(value, dict):
        if "set" in value:
            return "{ " + ", ".join(_text(v) for v in value["set"]) + " }"
        if "prefix" in value:
            return f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}"
        if "range" in value:
            return "-".join(_text(v) for v in value["range"])
        if "payload" in value:
            p = value["payload"]
            return f"{p.get('protocol', 'raw')} {p.get('field', '')}".strip()
        if "meta" in value:
            key = value["meta"].get("key")
            return key if key in ("iifname", "oifname", "iif", "oif") else f"meta {key}"
        if "ct" in value:
            return f"ct {value['ct'].get('key')}"
        return next(iter(value), "?")
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _verdict(v: Any) -> str:
    if isinstance(v, dict) and v:
        name, body = next(iter(v.items()))
        return f"{name} {body['target']}" if isinstance(body, dict) and "target" in body else name
    return str(v)


def describe(rule: Json) -> str:
    """A rule in words close to `nft list`: `ip daddr @vips drop`."""
    words: list[str] = []
    for expr in rule.get("expr", []):
        if not isinstance(expr, dict) or not expr:
            continue
        name, body = next(iter(expr.items()))
        if name == "match":
            op = body.get("op", "==")
            op_text = "" if op in ("==", "in") else f"{op} "
            words.append(f"{_text(body.get('left'))} {op_text}{_text(body.get('right'))}")
        elif name in ("jump", "goto"):
            words.append(f"{name} {body.get('target')}")
        elif name == "vmap":
            data = body.get("data")
            if isinstance(data, dict) and "set" in data:
                pairs = [p for p in data["set"] if isinstance(p, list) and len(p) == 2]
                data = "{ " + ", ".join(f"{_text(k)} : {_verdict(v)}" for k, v in pairs) + " }"
            words.append(f"{_text(body.get('key'))} vmap {data}")
        elif name != "counter":
            words.append(name)
    return " ".join(words)
