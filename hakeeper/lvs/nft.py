"""The nftables backend: LVS-NAT built from nftables DNAT, for kernels without IPVS.

Layout, all in hakeeper's own `table inet hakeeper_lvs` (nothing outside it is touched):

    chain prerouting / output      nat hooks at dstnat priority; fixed rules that look the
                                   packet up in four verdict maps, fwmark services first
                                   (as IPVS does): fwmark4/6 by `meta mark`, services4/6 by
                                   `meta l4proto . ip[6] daddr . th dport`
    chain svc/<id>                 one per service: `counter name svc/<id>` carrying the
                                   service in its comment, then the balancing rule
    counter svc/<id>               the service's new connections (survives rebuilds)
    map rs/<id>                    the service's destinations: `addr . port : goto rs/...`,
                                   each element's comment holding its weight
    chain rs/<id>/<addr>/<port>    one per destination: `counter dnat to addr:port`
    set persist/<id>/<addr>/<port> persistent services only: clients (masked by the
                                   granularity) that went to this destination lately

<id> is the service key in nft's name alphabet: `TCP/198.18.0.100/80`,
`TCP/fd00-198-18--100/80` (IPv6 colons as dashes), `fwmark/7/v4`. The comments make the
table self-describing: `load()` rebuilds the Table from the kernel, so a restarted daemon
adopts what its predecessor left.

Balancing over the destinations with weight > 0 (a weight 0 destination gets no new
connection; its established ones keep their conntrack NAT binding and continue):
- rr: `numgen inc mod N`, so new connections go exactly round-robin;
- wrr: `numgen inc mod sum(weights)/gcd` over slots in IPVS's own wrr order (the
  interleaved sequence its scheduler walks), or in one run per destination when that
  sequence would exceed WRR_SLOTS_MAX: proportions are exact over every cycle either way;
- sh / mh: `jhash ip saddr [. th sport] mod sum(weights)/gcd`, a run of slots per
  destination (mh's minimal-disruption property is not kept); sh-fallback/mh-fallback are
  implied, since only available destinations are in the map;
- dh: the same hash over the destination address; fo: everything to the first destination
  of highest weight.
Persistence: the destination chain records the client in its set (`update`, which also
restarts the timeout); the service chain first sends a client found in a set to that
destination. The affinity lasts persistence_timeout after the client's last new
connection (IPVS also keeps it while a connection lives); a client whose destination has
weight 0 is balanced afresh (as IPVS with expire_quiescent_template).

Counters: `conns` per destination and per service (the nat chains see only the first packet
of a connection); packets and bytes are not counted (they stay 0).

`apply(ops)` sends one JSON batch per call, which nft commits as one transaction. Only the
services the ops name are touched: their service chain is rebuilt, their destination
chains are added or removed (a weight change only rewrites a map element), so other
services keep their rule handles, counters and numgen positions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hakeeper.lvs.backend import BackendError
from hakeeper.lvs.libnft import Nft, NftError
from hakeeper.lvs.reconcile import Op, OpError, apply_ops, op_service, service_order
from hakeeper.lvs.table import Counters, Dest, DestKey, Entry, Service, ServiceKey, Table

TABLE = "hakeeper_lvs"
FAMILY = "inet"
SCHEDULERS = ("rr", "wrr", "sh", "mh", "dh", "fo")
HASHED = ("sh", "mh", "dh")
PORT_FLAGS = {"sh": "sh-port", "mh": "mh-port"}
IGNORED_FLAGS = frozenset({"sh-fallback", "mh-fallback", "flag-1", "flag-2", "flag-3"})
WRR_SLOTS_MAX = 4096  # interleave wrr like IPVS up to this many slots per cycle
JHASH_SEED = 0x686B  # fixed: a source keeps its destination across restarts and rebuilds
DSTNAT = -100  # nat hook priority "dstnat"
ADDR = {4: "ipv4_addr", 6: "ipv6_addr"}
IP = {4: "ip", 6: "ip6"}
L4 = ("tcp", "udp", "sctp")
COMMENT_MAX = 128  # nft refuses longer comments


def unsupported_reason(service: Service, dests: Iterable[Dest]) -> str | None:
    """Why the nftables backend cannot serve this service, or None."""
    key = service.key
    if service.sched not in SCHEDULERS:
        return (
            f"nftables backend cannot do scheduler '{service.sched}' (needs IPVS): use "
            f"{', '.join(SCHEDULERS[:-1])} or {SCHEDULERS[-1]}"
        )
    if key.protocol.lower() not in L4:
        return f"nftables backend cannot balance protocol {key.protocol}"
    if "ops" in service.flags:
        return "nftables backend cannot do one-packet scheduling (ops) (needs IPVS)"
    for flag in service.flags:
        if flag not in IGNORED_FLAGS and flag != PORT_FLAGS.get(service.sched):
            return f"nftables backend cannot do scheduler flag '{flag}' with {service.sched}"
    if service.persistence_timeout is not None:
        if service.persistence_timeout < 1:
            return "nftables backend needs persistence_timeout of 1 second or more"
        try:
            _mask(key.family, service.netmask)
        except ValueError:
            return f"persistence granularity {service.netmask!r} is not a netmask"
    for d in dests:
        if d.method != "NAT":
            return (
                f"nftables backend does NAT only: real server {d.key} has lvs_method "
                f"{d.method} (needs IPVS)"
            )
        if (":" in d.key.address) != (key.family == 6):
            return f"nftables backend cannot NAT {key} to real server {d.key} (other family)"
        if d.u_threshold or d.l_threshold:
            return (
                f"nftables backend cannot enforce uthreshold/lthreshold (real server "
                f"{d.key}; needs IPVS)"
            )
    if len(service_comment(service)) > COMMENT_MAX:
        return "service description too long for an nftables comment"
    return None


# -- names ---------------------------------------------------------------------------------


def _addr_name(address: str) -> str:
    return address.replace(":", "-")


def service_id(key: ServiceKey) -> str:
    if key.fwmark is not None:
        return f"fwmark/{key.fwmark}/v{key.family}"
    assert key.address is not None
    return f"{key.protocol}/{_addr_name(key.address)}/{key.port}"


def service_chain(key: ServiceKey) -> str:
    return f"svc/{service_id(key)}"


def dests_map(key: ServiceKey) -> str:
    return f"rs/{service_id(key)}"


def dest_chain(key: ServiceKey, dest: DestKey) -> str:
    return f"rs/{service_id(key)}/{_addr_name(dest.address)}/{dest.port}"


def persist_set(key: ServiceKey, dest: DestKey) -> str:
    return f"persist/{service_id(key)}/{_addr_name(dest.address)}/{dest.port}"


# -- the service's description in its comment -------------------------------------------------

_KEY_RE = re.compile(
    r"^(?:fwmark:(?P<mark>\d+)/(?P<mproto>\w+)/v(?P<mfam>[46])"
    r"|\[(?P<v6>[0-9a-fA-F:.]+)\]:(?P<port6>\d+)/(?P<proto6>\w+)"
    r"|(?P<v4>[0-9.]+):(?P<port4>\d+)/(?P<proto4>\w+))$"
)


def parse_service_key(text: str) -> ServiceKey | None:
    """`str(ServiceKey)` back to the key."""
    m = _KEY_RE.match(text)
    if m is None:
        return None
    if m["mark"]:
        return ServiceKey(int(m["mfam"]), m["mproto"], fwmark=int(m["mark"]))
    if m["v6"]:
        return ServiceKey(6, m["proto6"], m["v6"], int(m["port6"]))
    return ServiceKey(4, m["proto4"], m["v4"], int(m["port4"]))


def service_comment(service: Service) -> str:
    parts = [str(service.key), f"sched={service.sched}"]
    if service.flags:
        parts.append(f"flags={','.join(service.flags)}")
    if service.persistence_timeout is not None:
        parts.append(f"persistence={service.persistence_timeout}")
    if service.netmask is not None:
        parts.append(f"netmask={service.netmask}")
    return " ".join(parts)


def parse_service_comment(text: str) -> Service | None:
    first, _, rest = text.partition(" ")
    key = parse_service_key(first)
    if key is None:
        return None
    fields = dict(p.partition("=")[::2] for p in rest.split())
    try:
        timeout = fields.get("persistence")
        return Service(
            key=key,
            sched=fields["sched"],
            flags=tuple(f for f in fields.get("flags", "").split(",") if f),
            persistence_timeout=int(timeout) if timeout is not None else None,
            netmask=fields.get("netmask"),
        )
    except (KeyError, ValueError):
        return None


def dest_comment(dest: Dest) -> str:
    return f"weight={dest.weight}"


def parse_dest_comment(key: DestKey, text: str | None) -> Dest | None:
    m = re.fullmatch(r"weight=(\d+)", text or "")
    return Dest(key, "NAT", int(m[1])) if m else None


# -- expressions ------------------------------------------------------------------------------


def _payload(family: int, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": IP[family], "field": field}}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _goto(chain: str) -> dict[str, Any]:
    return {"goto": {"target": chain}}


def _mask(family: int, netmask: str | None) -> str | None:
    """The mask to AND the source with for persistence; None: the whole address."""
    if netmask is None:
        return None
    if family == 4:
        net = ipaddress.IPv4Network(f"0.0.0.0/{netmask}")
    else:
        net = ipaddress.IPv6Network(f"::/{int(netmask)}")
    return None if net.prefixlen == net.max_prefixlen else str(net.netmask)


def _client(service: Service) -> Any:
    """The persistence key: the client's address masked by the granularity."""
    family = service.key.family
    saddr = _payload(family, "saddr")
    mask = _mask(family, service.netmask)
    return saddr if mask is None else {"&": [saddr, mask]}


def wrr_sequence(weights: Sequence[int]) -> list[int]:
    """IPVS's wrr order over one cycle: indexes of `weights` (all > 0), sum/gcd long."""
    g = math.gcd(*weights)
    mw, n = max(weights), len(weights)
    length = sum(weights) // g
    seq: list[int] = []
    i, cw = -1, 0
    while len(seq) < length:
        i = (i + 1) % n
        if i == 0:
            cw -= g
            if cw <= 0:
                cw = mw
        if weights[i] >= cw:
            seq.append(i)
    return seq


def slots(sched: str, weights: Sequence[int]) -> tuple[int, list[tuple[int, int, int]]]:
    """(modulus, [(first, last, dest index)]) for the numgen/jhash verdict map."""
    if sched == "rr":
        return len(weights), [(i, i, i) for i in range(len(weights))]
    g = math.gcd(*weights)
    shares = [w // g for w in weights]
    total = sum(shares)
    if sched == "wrr" and total <= WRR_SLOTS_MAX:
        runs: list[tuple[int, int, int]] = []
        for pos, idx in enumerate(wrr_sequence(weights)):
            if runs and runs[-1][2] == idx:
                runs[-1] = (runs[-1][0], pos, idx)
            else:
                runs.append((pos, pos, idx))
        return total, runs
    out, start = [], 0
    for idx, share in enumerate(shares):
        out.append((start, start + share - 1, idx))
        start += share
    return total, out


def balance_rule(service: Service, dests: Sequence[Dest]) -> list[dict[str, Any]] | None:
    """The statements of the rule that picks a destination among `dests` (weight > 0)."""
    if not dests:
        return None
    key = service.key
    chains = [dest_chain(key, d.key) for d in dests]
    if len(dests) == 1:
        return [_goto(chains[0])]
    if service.sched == "fo":
        best = max(range(len(dests)), key=lambda i: (dests[i].weight, -i))
        return [_goto(chains[best])]
    mod, runs = slots(service.sched, [d.weight for d in dests])
    vmap = [[lo if lo == hi else {"range": [lo, hi]}, _goto(chains[i])] for lo, hi, i in runs]
    if service.sched in HASHED:
        field = "daddr" if service.sched == "dh" else "saddr"
        expr: Any = _payload(key.family, field)
        if PORT_FLAGS.get(service.sched) in service.flags:
            expr = {"concat": [expr, {"payload": {"protocol": "th", "field": "sport"}}]}
        gen: dict[str, Any] = {"jhash": {"mod": mod, "seed": JHASH_SEED, "expr": expr}}
    else:
        gen = {"numgen": {"mode": "inc", "mod": mod}}
    return [{"vmap": {"key": gen, "data": {"set": vmap}}}]


# -- commands ---------------------------------------------------------------------------------


def _obj(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {kind: {"family": FAMILY, "table": TABLE, "name": name, **extra}}


def _rule(chain: str, expr: list[dict[str, Any]], comment: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr}
    if comment is not None:
        rule["comment"] = comment
    return {"add": {"rule": rule}}


def _dispatch_map(key: ServiceKey) -> str:
    return f"{'fwmark' if key.fwmark is not None else 'services'}{key.family}"


def _dispatch_key(key: ServiceKey) -> Any:
    if key.fwmark is not None:
        return key.fwmark
    return {"concat": [key.protocol.lower(), key.address, key.port]}


def base_commands() -> list[dict[str, Any]]:
    """The table, the dispatch maps and the two nat base chains with their fixed rules."""
    cmds: list[dict[str, Any]] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}]
    for fam in (4, 6):
        cmds.append(
            {
                "add": _obj(
                    "map",
                    f"services{fam}",
                    map="verdict",
                    type=["inet_proto", ADDR[fam], "inet_service"],
                )
            }
        )
        cmds.append({"add": _obj("map", f"fwmark{fam}", type="mark", map="verdict")})
    for hook in ("prerouting", "output"):
        cmds.append(
            {"add": _obj("chain", hook, type="nat", hook=hook, prio=DSTNAT, policy="accept")}
        )
        for fam in (4, 6):
            nfproto = _match({"meta": {"key": "nfproto"}}, f"ipv{fam}")
            l4 = _match({"meta": {"key": "l4proto"}}, {"set": list(L4)})
            mark = {"vmap": {"key": {"meta": {"key": "mark"}}, "data": f"@fwmark{fam}"}}
            cmds.append(_rule(hook, [nfproto, l4, mark]))
        for fam in (4, 6):
            concat = {
                "concat": [
                    {"meta": {"key": "l4proto"}},
                    _payload(fam, "daddr"),
                    {"payload": {"protocol": "th", "field": "dport"}},
                ]
            }
            cmds.append(_rule(hook, [{"vmap": {"key": concat, "data": f"@services{fam}"}}]))
    return cmds


def dest_rule(service: Service, dest: DestKey, seed: tuple[int, int] | None = None) -> list[Any]:
    key = service.key
    expr: list[Any] = []
    if service.persistence_timeout is not None:
        expr.append(
            {"set": {"op": "update", "elem": _client(service), "set": f"@{persist_set(key, dest)}"}}
        )
    target: dict[str, Any] = {"family": IP[key.family], "addr": dest.address}
    if dest.port:
        target["port"] = dest.port
        # nft maps a port only after a transport match; a fwmark service takes any of them
        proto: Any = {"set": list(L4)} if key.fwmark is not None else key.protocol.lower()
        expr.append(_match({"meta": {"key": "l4proto"}}, proto))
    counter = None if seed is None else {"packets": seed[0], "bytes": seed[1]}
    expr += [{"counter": counter}, {"dnat": target}]
    return expr


def _persist_set_cmd(service: Service, dest: DestKey) -> dict[str, Any]:
    family, timeout = service.key.family, service.persistence_timeout
    name = persist_set(service.key, dest)
    return {"add": _obj("set", name, type=ADDR[family], flags=["timeout"], timeout=timeout)}


def _dest_element(key: ServiceKey, dest: Dest) -> list[Any]:
    """`addr . port comment "weight=N" : goto rs/...`, an element of the service's map."""
    val = {"concat": [dest.key.address, dest.key.port]}
    return [{"elem": {"val": val, "comment": dest_comment(dest)}}, _goto(dest_chain(key, dest.key))]


def _persist_shape(s: Service | None) -> tuple[Any, ...] | None:
    """What a destination chain and its set depend on beyond the destination itself."""
    if s is None or s.persistence_timeout is None:
        return None
    return (s.persistence_timeout, _mask(s.key.family, s.netmask))


def service_commands(
    key: ServiceKey,
    old: Entry | None,
    new: Entry | None,
    seeds: dict[str, tuple[int, int]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(create, tear down, fill) commands turning `old` into `new` for one service.

    A batch runs every service's creates first, then the tear downs (references dropped
    before what they point at is deleted), then the fills.
    """
    create: list[dict[str, Any]] = []
    down: list[dict[str, Any]] = []
    fill: list[dict[str, Any]] = []
    seeds = seeds or {}
    svc_chain, rs_map = service_chain(key), dests_map(key)
    dispatch = {"family": FAMILY, "table": TABLE, "name": _dispatch_map(key)}
    old_dests = old.dests if old is not None else {}
    new_dests = new.dests if new is not None else {}
    old_shape = _persist_shape(old.service if old else None)
    new_shape = _persist_shape(new.service if new else None)
    reshape = old is not None and new is not None and old_shape != new_shape

    if old is not None:
        down.append({"flush": _obj("chain", svc_chain)})
        gone = [d for d in old_dests if d not in new_dests]
        changed = [d for d in old_dests if d in new_dests and old_dests[d] != new_dests[d]]
        if new is None:
            down.append({"delete": {"element": {**dispatch, "elem": [_dispatch_key(key)]}}})
            down.append({"delete": _obj("map", rs_map)})
        elif gone or changed:
            elems = [{"concat": [d.address, d.port]} for d in (*gone, *changed)]
            down.append({"delete": {"element": {**_obj("map", rs_map)["map"], "elem": elems}}})
        for d in sorted(old_dests if new is None else gone):
            down.append({"flush": _obj("chain", dest_chain(key, d))})
            down.append({"delete": _obj("chain", dest_chain(key, d))})
            if old_shape is not None:
                down.append({"delete": _obj("set", persist_set(key, d))})
        if reshape:
            for d in sorted(k for k in old_dests if k in new_dests):
                down.append({"flush": _obj("chain", dest_chain(key, d))})
                if old_shape is not None:
                    down.append({"delete": _obj("set", persist_set(key, d))})
        if new is None:
            down.append({"delete": _obj("chain", svc_chain)})
            down.append({"delete": _obj("counter", svc_chain)})
    if new is None:
        return create, down, fill

    svc = new.service
    if old is None:
        create.append({"add": _obj("chain", svc_chain)})
        create.append({"add": _obj("counter", svc_chain)})
        create.append(
            {"add": _obj("map", rs_map, type=[ADDR[key.family], "inet_service"], map="verdict")}
        )
    added = sorted(d for d in new_dests if d not in old_dests)
    rebuilt = sorted(d for d in new_dests if d in old_dests) if reshape else []
    for d in (*added, *rebuilt):
        if d in added:
            create.append({"add": _obj("chain", dest_chain(key, d))})
        if new_shape is not None:
            # a rebuilt destination's old set is deleted in the tear down: make it after
            (create if d in added else fill).append(_persist_set_cmd(svc, d))
        fill.append(_rule(dest_chain(key, d), dest_rule(svc, d, seeds.get(dest_chain(key, d)))))
    # map elements: the new ones and those whose weight changed
    elems = [
        _dest_element(key, new_dests[d])
        for d in sorted(new_dests)
        if d not in old_dests or old_dests[d] != new_dests[d]
    ]
    if elems:
        fill.append({"add": {"element": {**_obj("map", rs_map)["map"], "elem": elems}}})
    # the service chain, rebuilt whole
    fill.append(_rule(svc_chain, [{"counter": svc_chain}], comment=service_comment(svc)))
    active = [new_dests[d] for d in sorted(new_dests) if new_dests[d].weight > 0]
    if new_shape is not None:
        for d in active:
            lookup = _match(_client(svc), f"@{persist_set(key, d.key)}")
            fill.append(_rule(svc_chain, [lookup, _goto(dest_chain(key, d.key))]))
    balance = balance_rule(svc, active)
    if balance is not None:
        fill.append(_rule(svc_chain, balance))
    if old is None:
        fill.append(
            {"add": {"element": {**dispatch, "elem": [[_dispatch_key(key), _goto(svc_chain)]]}}}
        )
    return create, down, fill


def transaction(
    old: Table,
    new: Table,
    touched: Iterable[ServiceKey],
    with_base: bool,
    seeds: dict[str, tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """One batch taking the kernel from `old` to `new` for the `touched` services."""
    create, down, fill = [], [], []
    for key in sorted(set(touched), key=service_order):
        c, d, f = service_commands(key, old.get(key), new.get(key), seeds)
        create += c
        down += d
        fill += f
    return [*(base_commands() if with_base else []), *create, *down, *fill]


# -- reading the kernel back -------------------------------------------------------------------


def parse_ruleset(items: list[dict[str, Any]]) -> tuple[Table, dict[Any, Counters], bool]:
    """`nft -j list table inet hakeeper_lvs` → (Table, counters, table exists)."""
    exists = False
    services: dict[str, Service] = {}  # by service chain name
    svc_counters: dict[str, int] = {}
    elements: dict[str, list[Any]] = {}  # rs map name → elements
    dest_conns: dict[str, int] = {}  # dest chain → conns
    for item in items:
        if "table" in item:
            exists = exists or item["table"].get("name") == TABLE
        elif "rule" in item:
            rule = item["rule"]
            chain = rule.get("chain", "")
            if chain.startswith("svc/") and rule.get("comment"):
                svc = parse_service_comment(rule["comment"])
                if svc is not None and service_chain(svc.key) == chain:
                    services[chain] = svc
            elif chain.startswith("rs/"):
                for e in rule.get("expr", []):
                    if isinstance(e, dict) and isinstance(e.get("counter"), dict):
                        dest_conns[chain] = int(e["counter"].get("packets", 0))
        elif "counter" in item:
            c = item["counter"]
            svc_counters[c.get("name", "")] = int(c.get("packets", 0))
        elif "map" in item and item["map"].get("name", "").startswith("rs/"):
            elements[item["map"]["name"]] = item["map"].get("elem", [])
    table: Table = {}
    counters: dict[Any, Counters] = {}
    for chain, svc in services.items():
        key = svc.key
        dests: dict[DestKey, Dest] = {}
        for elem in elements.get(dests_map(key), []):
            dest = _parse_element(key, elem)
            if dest is not None:
                dests[dest.key] = dest
                conns = dest_conns.get(dest_chain(key, dest.key), 0)
                counters[(key, dest.key)] = Counters(conns=conns)
        table[key] = Entry(svc, dests)
        counters[(key, None)] = Counters(conns=svc_counters.get(chain, 0))
    return table, counters, exists


def _parse_element(key: ServiceKey, elem: Any) -> Dest | None:
    try:
        val, verdict = elem
        comment = None
        if isinstance(val, dict) and "elem" in val:
            comment = val["elem"].get("comment")
            val = val["elem"]["val"]
        addr, port = val["concat"]
        dkey = DestKey(str(ipaddress.ip_address(addr)), int(port))
    except (TypeError, ValueError, KeyError):
        return None
    if verdict != _goto(dest_chain(key, dkey)):
        return None
    return parse_dest_comment(dkey, comment)


# -- the backend ------------------------------------------------------------------------------


class NftBackend:
    name = "nftables"

    def __init__(self, nft: Nft | None = None) -> None:
        self._nft = nft
        self._shadow: Table | None = None  # what the kernel holds, as we last read/wrote it
        self._have_table = False

    def unsupported(self, service: Service, dests: Iterable[Dest]) -> str | None:
        return unsupported_reason(service, dests)

    def _ctx(self) -> Nft:
        if self._nft is None:
            try:
                self._nft = Nft()
            except NftError as e:
                raise BackendError(f"nftables unavailable: {e}") from e
        return self._nft

    def _list(self) -> list[dict[str, Any]]:
        try:
            out = self._ctx().json(
                {"nftables": [{"list": {"table": {"family": FAMILY, "name": TABLE}}}]}
            )
        except NftError as e:
            if "No such file or directory" in str(e):
                return []
            raise BackendError(f"nftables: cannot list table {FAMILY} {TABLE}: {e}") from e
        items = out.get("nftables", [])
        return items if isinstance(items, list) else []

    def _load(self) -> Table:
        table, _, exists = parse_ruleset(self._list())
        self._shadow, self._have_table = table, exists
        return {k: Entry(e.service, dict(e.dests)) for k, e in table.items()}

    async def load(self) -> Table:
        return await asyncio.to_thread(self._load)

    def _counters(self) -> dict[tuple[ServiceKey, DestKey | None], Counters]:
        _, counters, _ = parse_ruleset(self._list())
        return counters

    async def counters(self) -> dict[tuple[ServiceKey, DestKey | None], Counters]:
        return await asyncio.to_thread(self._counters)

    def _apply(self, ops: Sequence[Op]) -> None:
        if self._shadow is None:
            self._load()
        assert self._shadow is not None
        old = self._shadow
        try:
            new = apply_ops(old, ops)
        except OpError as e:
            raise BackendError(f"nftables: {e} (the table changed underneath?)") from e
        touched = {op_service(op) for op in ops}
        for key in sorted(touched, key=service_order):
            if key in new:
                why = unsupported_reason(new[key].service, new[key].dests.values())
                if why is not None:
                    raise BackendError(f"service {key}: {why}")
        seeds = self._seeds(old, new, touched)
        cmds = transaction(old, new, touched, not self._have_table, seeds)
        try:
            self._ctx().json({"nftables": cmds})
        except NftError as e:
            names = ", ".join(str(k) for k in sorted(touched, key=service_order))
            raise BackendError(f"nftables refused the change to {names}: {e}") from e
        self._shadow, self._have_table = new, True

    def _seeds(
        self, old: Table, new: Table, touched: set[ServiceKey]
    ) -> dict[str, tuple[int, int]]:
        """Counters of destination chains about to be rebuilt (persistence changed)."""
        kept = [k for k in touched if k in old and k in new]
        if all(_persist_shape(old[k].service) == _persist_shape(new[k].service) for k in kept):
            return {}
        seeds = {}
        for item in self._list():
            rule = item.get("rule")
            if rule and rule.get("chain", "").startswith("rs/"):
                for e in rule.get("expr", []):
                    if isinstance(e, dict) and isinstance(e.get("counter"), dict):
                        c = e["counter"]
                        seeds[rule["chain"]] = (int(c.get("packets", 0)), int(c.get("bytes", 0)))
        return seeds

    async def apply(self, ops: Sequence[Op]) -> None:
        if ops:
            await asyncio.to_thread(self._apply, ops)

    def _close(self, remove: bool) -> None:
        try:
            if remove:
                try:
                    self._ctx().json(
                        {
                            "nftables": [
                                {"add": {"table": {"family": FAMILY, "name": TABLE}}},
                                {"delete": {"table": {"family": FAMILY, "name": TABLE}}},
                            ]
                        }
                    )
                except NftError as e:
                    raise BackendError(f"nftables: cannot delete table {TABLE}: {e}") from e
                self._shadow, self._have_table = {}, False
        finally:
            if self._nft is not None:
                self._nft.close()
                self._nft = None

    async def close(self, remove: bool) -> None:
        await asyncio.to_thread(self._close, remove)
