"""The nftables backend's rules, without root: scheduling maps, comments, transactions.

The transactions are played on a small model of nft's objects that refuses what the kernel
refuses (a reference to a missing chain or set, deleting something still referenced,
adding an element twice), then read back with the backend's own parser: create then change
then read must give the desired table, with nothing left over and nothing else touched.
The lab test (tests/lab/test_lvs_nft.py) runs the same batches against the real kernel.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.lvs import nft
from hakeeper.lvs.reconcile import diff, op_service
from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey, Table

WEB = ServiceKey(4, "TCP", "198.18.0.100", 80)
D = [DestKey(f"198.18.1.{i}", 80) for i in range(1, 5)]


# -- scheduling -------------------------------------------------------------------------------


def test_wrr_walks_ipvs_order() -> None:
    assert nft.wrr_sequence([1, 2, 3]) == [2, 1, 2, 0, 1, 2]
    assert nft.wrr_sequence([4, 2]) == [0, 0, 1]  # gcd 2: one cycle is 2 + 1 long
    assert nft.wrr_sequence([5]) == [0]


@given(st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_wrr_cycle_gives_each_its_share(weights: list[int]) -> None:
    seq = nft.wrr_sequence(weights)
    g = __import__("math").gcd(*weights)
    assert Counter(seq) == {i: w // g for i, w in enumerate(weights)}


def test_slots_cover_the_modulus_once() -> None:
    assert nft.slots("rr", [5, 1, 1]) == (3, [(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    assert nft.slots("wrr", [1, 2, 3]) == (
        6,
        [(0, 0, 2), (1, 1, 1), (2, 2, 2), (3, 3, 0), (4, 4, 1), (5, 5, 2)],
    )
    assert nft.slots("wrr", [3, 1]) == (4, [(0, 2, 0), (3, 3, 1)])  # runs merged
    assert nft.slots("sh", [2, 4]) == (3, [(0, 0, 0), (1, 2, 1)])
    # past WRR_SLOTS_MAX, one run per destination: as many elements as destinations
    big = [nft.WRR_SLOTS_MAX, 1]
    assert nft.slots("wrr", big) == (
        nft.WRR_SLOTS_MAX + 1,
        [(0, nft.WRR_SLOTS_MAX - 1, 0), (nft.WRR_SLOTS_MAX, nft.WRR_SLOTS_MAX, 1)],
    )


def goto(chain: str) -> dict[str, Any]:
    return {"goto": {"target": chain}}


def test_balance_rules() -> None:
    dests = [Dest(D[0], weight=1), Dest(D[1], weight=3), Dest(D[2], weight=3)]
    chains = [nft.dest_chain(WEB, d.key) for d in dests]
    assert nft.balance_rule(Service(WEB, "fo"), dests) == [goto(chains[1])]  # first highest
    assert nft.balance_rule(Service(WEB, "wrr"), dests[:1]) == [goto(chains[0])]
    assert nft.balance_rule(Service(WEB, "rr"), []) is None
    (rule,) = nft.balance_rule(Service(WEB, "rr"), dests) or []
    assert rule["vmap"]["key"] == {"numgen": {"mode": "inc", "mod": 3}}
    assert rule["vmap"]["data"]["set"] == [
        [0, goto(chains[0])],
        [1, goto(chains[1])],
        [2, goto(chains[2])],
    ]
    (rule,) = nft.balance_rule(Service(WEB, "sh", ("sh-port",)), dests) or []
    jhash = rule["vmap"]["key"]["jhash"]
    assert jhash["mod"] == 7 and jhash["expr"] == {
        "concat": [
            {"payload": {"protocol": "ip", "field": "saddr"}},
            {"payload": {"protocol": "th", "field": "sport"}},
        ]
    }
    assert rule["vmap"]["data"]["set"][1] == [{"range": [1, 3]}, goto(chains[1])]
    (rule,) = nft.balance_rule(Service(WEB, "dh"), dests) or []
    assert rule["vmap"]["key"]["jhash"]["expr"] == {"payload": {"protocol": "ip", "field": "daddr"}}


# -- what the backend refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "dests", "reason"),
    [
        (
            Service(WEB, "wlc"),
            [],
            "nftables backend cannot do scheduler 'wlc' (needs IPVS): use "
            "rr, wrr, sh, mh, dh or fo",
        ),
        (
            Service(WEB, "rr"),
            [Dest(D[0], "DR")],
            "does NAT only: real server 198.18.1.1:80 has lvs_method DR (needs IPVS)",
        ),
        (Service(WEB, "rr"), [Dest(D[0], u_threshold=5)], "cannot enforce uthreshold"),
        (Service(WEB, "rr", ("ops",)), [], "one-packet scheduling"),
        (Service(WEB, "sh", ("mh-port",)), [], "cannot do scheduler flag 'mh-port' with sh"),
        (Service(WEB, "rr"), [Dest(DestKey("fd00::1", 80))], "other family"),
        (Service(WEB, "rr", persistence_timeout=60, netmask="255.0.255.0"), [], "not a netmask"),
        (Service(WEB, "rr", persistence_timeout=0), [], "1 second or more"),
    ],
)
def test_unsupported_says_why(service: Service, dests: list[Dest], reason: str) -> None:
    why = nft.unsupported_reason(service, dests)
    assert why is not None and reason in why, why


def test_supported() -> None:
    for sched in nft.SCHEDULERS:
        assert nft.unsupported_reason(Service(WEB, sched), [Dest(D[0])]) is None
    ok = Service(WEB, "sh", ("sh-fallback", "sh-port"), 300, "255.255.255.0")
    assert nft.unsupported_reason(ok, [Dest(D[0], weight=0)]) is None


# -- the service's comment --------------------------------------------------------------------

keys = st.one_of(
    st.builds(
        ServiceKey,
        st.just(4),
        st.sampled_from(["TCP", "UDP", "SCTP"]),
        st.ip_addresses(v=4).map(str),
        st.integers(1, 65535),
    ),
    st.builds(
        ServiceKey,
        st.just(6),
        st.sampled_from(["TCP", "UDP", "SCTP"]),
        st.ip_addresses(v=6).map(str),
        st.integers(1, 65535),
    ),
    st.builds(
        lambda f, p, m: ServiceKey(f, p, fwmark=m),
        st.sampled_from([4, 6]),
        st.sampled_from(["TCP", "UDP"]),
        st.integers(1, 2**32 - 1),
    ),
)


@given(
    keys,
    st.sampled_from(nft.SCHEDULERS),
    st.sampled_from([(), ("sh-fallback", "sh-port")]),
    st.one_of(st.none(), st.integers(1, 2**32 - 1)),
)
def test_service_comment_round_trip(
    key: ServiceKey, sched: str, flags: tuple[str, ...], timeout: int | None
) -> None:
    netmask = None if timeout is None else ("255.255.255.0" if key.family == 4 else "128")
    svc = Service(key, sched, flags, timeout, netmask)
    text = nft.service_comment(svc)
    assert len(text) <= nft.COMMENT_MAX
    assert nft.parse_service_comment(text) == svc
    assert nft.parse_service_key(str(key)) == key
    assert all(c.isalnum() or c in "/-_." for c in nft.service_chain(key))  # nft's alphabet


# -- transactions on a model of nft ------------------------------------------------------------


class NftModel:
    """Tables objects as the kernel keeps them, refusing what the kernel refuses."""

    def __init__(self) -> None:
        self.table = False
        self.chains: dict[str, list[dict[str, Any]]] = {}
        self.maps: dict[str, dict[str, tuple[Any, str | None, Any]]] = {}
        self.sets: set[str] = set()
        self.counters: set[str] = set()

    def run(self, cmds: list[dict[str, Any]]) -> None:
        for cmd in cmds:
            ((verb, body),) = cmd.items()
            ((kind, obj),) = body.items()
            getattr(self, f"{verb}_{kind}")(obj)

    # references held by rules and map elements
    def refs(self) -> Counter[str]:
        found: Counter[str] = Counter()

        def walk(x: Any) -> None:
            if isinstance(x, dict):
                if "goto" in x and isinstance(x["goto"], dict):
                    found["chain " + x["goto"]["target"]] += 1
                if isinstance(x.get("counter"), str):
                    found["counter " + x["counter"]] += 1
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
            elif isinstance(x, str) and x.startswith("@"):
                found["set " + x[1:]] += 1

        for rules in self.chains.values():
            walk(rules)
        for elems in self.maps.values():
            walk([v for _, _, v in elems.values()])
        return found

    def check_refs(self, expr: Any) -> None:
        saved = self.chains
        self.chains = {"probe": [expr]}
        try:
            refs = self.refs()
        finally:
            self.chains = saved
        for ref in refs:
            kind, name = ref.split(" ", 1)
            exists = {
                "chain": name in self.chains,
                "counter": name in self.counters,
                "set": name in self.sets or name in self.maps,
            }[kind]
            assert exists, f"reference to missing {ref}"

    def add_table(self, obj: dict[str, Any]) -> None:
        self.table = True

    def add_chain(self, obj: dict[str, Any]) -> None:
        self.chains.setdefault(obj["name"], [])

    def add_map(self, obj: dict[str, Any]) -> None:
        self.maps.setdefault(obj["name"], {})

    def add_set(self, obj: dict[str, Any]) -> None:
        assert obj["name"] not in self.sets, f"set {obj['name']} exists"  # we never re-add
        self.sets.add(obj["name"])

    def add_counter(self, obj: dict[str, Any]) -> None:
        self.counters.add(obj["name"])

    def add_rule(self, obj: dict[str, Any]) -> None:
        assert obj["chain"] in self.chains, f"no chain {obj['chain']}"
        self.check_refs(obj["expr"])
        self.chains[obj["chain"]].append(copy.deepcopy(obj))

    def add_element(self, obj: dict[str, Any]) -> None:
        elems = self.maps[obj["name"]]
        for key, verdict in obj["elem"]:
            comment = None
            if isinstance(key, dict) and "elem" in key:
                key, comment = key["elem"]["val"], key["elem"]["comment"]
            k = json.dumps(key, sort_keys=True)
            assert k not in elems, f"element {k} exists in {obj['name']}"
            self.check_refs(verdict)
            elems[k] = (key, comment, verdict)

    def delete_element(self, obj: dict[str, Any]) -> None:
        for key in obj["elem"]:
            del self.maps[obj["name"]][json.dumps(key, sort_keys=True)]

    def flush_chain(self, obj: dict[str, Any]) -> None:
        self.chains[obj["name"]] = []

    def _unreferenced(self, ref: str) -> None:
        assert not self.refs()[ref], f"delete {ref}: still referenced (EBUSY)"

    def delete_chain(self, obj: dict[str, Any]) -> None:
        self._unreferenced("chain " + obj["name"])
        del self.chains[obj["name"]]

    def delete_map(self, obj: dict[str, Any]) -> None:
        self._unreferenced("set " + obj["name"])
        del self.maps[obj["name"]]

    def delete_set(self, obj: dict[str, Any]) -> None:
        self._unreferenced("set " + obj["name"])
        self.sets.remove(obj["name"])

    def delete_counter(self, obj: dict[str, Any]) -> None:
        self._unreferenced("counter " + obj["name"])
        self.counters.remove(obj["name"])

    def listing(self) -> list[dict[str, Any]]:
        """What `nft -j list table` would print."""
        items: list[dict[str, Any]] = [{"table": {"family": "inet", "name": nft.TABLE}}]
        items += [{"counter": {"name": n, "packets": 0, "bytes": 0}} for n in self.counters]
        for name, elems in self.maps.items():
            out = []
            for key, comment, verdict in elems.values():
                val = key if comment is None else {"elem": {"val": key, "comment": comment}}
                out.append([val, verdict])
            items.append({"map": {"name": name, "elem": out}})
        for chain, rules in self.chains.items():
            items.append({"chain": {"name": chain}})
            for r in rules:
                expr = [
                    {"counter": {"packets": 0, "bytes": 0}} if e == {"counter": None} else e
                    for e in r["expr"]
                ]
                items.append({"rule": {**r, "expr": expr}})
        return items

    def names(self) -> set[str]:
        chains = {f"chain {c}" for c in self.chains}
        maps = {f"map {m}" for m in self.maps}
        return (
            chains
            | maps
            | {f"set {s}" for s in self.sets}
            | {f"counter {c}" for c in self.counters}
        )


POOL = [
    ServiceKey(4, "TCP", "198.18.0.100", 80),
    ServiceKey(4, "UDP", "198.18.0.100", 53),
    ServiceKey(6, "TCP", "fd00:198:18::100", 443),
    ServiceKey(4, "TCP", fwmark=7),
]


@st.composite
def nft_tables(draw: st.DrawFn) -> Table:
    table: Table = {}
    for key in draw(st.lists(st.sampled_from(POOL), unique=True)):
        sched = draw(st.sampled_from(nft.SCHEDULERS))
        flags = draw(st.sampled_from([(), (f"{sched}-port",)])) if sched in ("sh", "mh") else ()
        timeout = draw(st.sampled_from([None, 60, 300]))
        netmask = None
        if timeout is not None:
            netmask = draw(
                st.sampled_from(
                    ["255.255.255.0", "255.255.255.255"] if key.family == 4 else ["64", "128"]
                )
            )
        hosts = draw(st.lists(st.integers(1, 5), unique=True, max_size=4))
        dests = {}
        for h in hosts:
            addr = f"198.18.1.{h}" if key.family == 4 else f"fd00:198:18:1::{h}"
            dk = DestKey(addr, draw(st.sampled_from([80, 0])) if key.fwmark else 80)
            dests[dk] = Dest(dk, "NAT", draw(st.integers(0, 3)))
        table[key] = Entry(Service(key, sched, flags, timeout, netmask), dests)
    return table


def build(table: Table) -> NftModel:
    model = NftModel()
    model.run(nft.transaction({}, table, table.keys(), with_base=True))
    return model


@settings(max_examples=150, deadline=None)
@given(nft_tables(), nft_tables())
def test_transactions_reach_the_desired_table_and_touch_nothing_else(a: Table, b: Table) -> None:
    model = build(a)
    assert nft.parse_ruleset(model.listing())[0] == a
    before = copy.deepcopy(model)
    ops = diff(a, b)
    touched = {op_service(op) for op in ops}
    cmds = nft.transaction(a, b, touched, with_base=False)
    model.run(cmds)
    table, counters, exists = nft.parse_ruleset(model.listing())
    assert exists and table == b
    assert model.names() == build(b).names()  # nothing leaked, nothing missing
    for key in a.keys() - touched:  # untouched services: the very same rules
        for name, rules in before.chains.items():
            if nft.service_id(key) + "/" in name + "/":
                assert model.chains[name] == rules
    assert set(counters) == {(k, None) for k in b} | {(k, d) for k in b for d in b[k].dests}
    if not ops:
        assert cmds == []


def test_a_weight_change_rewrites_one_element_and_the_service_chain() -> None:
    a: Table = {WEB: Entry(Service(WEB, "wrr"), {d: Dest(d) for d in D})}
    b: Table = {WEB: Entry(Service(WEB, "wrr"), {**a[WEB].dests, D[1]: Dest(D[1], weight=4)})}
    cmds = nft.transaction(a, b, [WEB], with_base=False)
    verbs = [
        (verb, kind, obj.get("name") or obj.get("chain"))
        for c in cmds
        for verb, body in c.items()
        for kind, obj in body.items()
    ]
    svc, rs = nft.service_chain(WEB), nft.dests_map(WEB)
    assert verbs == [
        ("flush", "chain", svc),
        ("delete", "element", rs),
        ("add", "element", rs),
        ("add", "rule", svc),
        ("add", "rule", svc),
    ]
    assert cmds[1]["delete"]["element"]["elem"] == [{"concat": ["198.18.1.2", 80]}]
    assert cmds[2]["add"]["element"]["elem"][0][0]["elem"]["comment"] == "weight=4"


def test_weight_zero_destinations_get_no_slot_and_no_persistence_lookup() -> None:
    svc = Service(WEB, "rr", persistence_timeout=60, netmask="255.255.255.0")
    t: Table = {WEB: Entry(svc, {D[0]: Dest(D[0]), D[1]: Dest(D[1], weight=0)})}
    model = build(t)
    rules = model.chains[nft.service_chain(WEB)]
    text = json.dumps(rules)
    assert nft.dest_chain(WEB, D[0]) in text and nft.dest_chain(WEB, D[1]) not in text
    assert nft.persist_set(WEB, D[1]) in model.sets  # kept while the destination exists
    (dest_rule,) = model.chains[nft.dest_chain(WEB, D[0])]
    assert dest_rule["expr"][0] == {
        "set": {
            "op": "update",
            "elem": {"&": [{"payload": {"protocol": "ip", "field": "saddr"}}, "255.255.255.0"]},
            "set": "@" + nft.persist_set(WEB, D[0]),
        }
    }


def test_parse_ignores_what_is_not_ours() -> None:
    model = build({WEB: Entry(Service(WEB, "rr"), {D[0]: Dest(D[0])})})
    items = model.listing()
    items.append({"chain": {"name": "svc/junk"}})
    items.append({"rule": {"chain": "svc/junk", "comment": "not a service", "expr": []}})
    # a comment that does not match its chain
    wrong = {"chain": "svc/TCP/198.18.0.1/1", "comment": "198.18.0.100:80/TCP sched=rr"}
    items.append({"rule": {**wrong, "expr": []}})
    table, _, _ = nft.parse_ruleset(items)
    assert list(table) == [WEB]
    assert nft.parse_ruleset([])[2] is False
