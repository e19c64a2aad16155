"""The reconciler: minimal, ordered, deterministic operations between two LVS tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.lvs.reconcile import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    OpError,
    apply_ops,
    diff,
    op_service,
    service_order,
)
from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey, Table

# small pools, so that two random tables share services and destinations
SERVICE_KEYS = [
    ServiceKey(4, "TCP", "198.18.0.100", 80),
    ServiceKey(4, "TCP", "198.18.0.100", 443),
    ServiceKey(4, "UDP", "198.18.0.101", 53),
    ServiceKey(6, "TCP", "fd00:198:18::100", 80),
    ServiceKey(4, "TCP", fwmark=7),
    ServiceKey(6, "UDP", fwmark=7),
]
DEST_KEYS = [DestKey(f"198.18.1.{i}", 80) for i in range(1, 5)] + [DestKey("198.18.1.1", 8080)]

services = st.builds(
    Service,
    key=st.just(SERVICE_KEYS[0]),  # replaced by the table's key below
    sched=st.sampled_from(["rr", "wrr", "sh"]),
    flags=st.sampled_from([(), ("sh-port",), ("ops",)]),
    persistence_timeout=st.sampled_from([None, 60]),
    netmask=st.sampled_from([None, "255.255.255.0"]),
)
dests = st.builds(
    Dest,
    key=st.just(DEST_KEYS[0]),
    method=st.sampled_from(["NAT", "DR"]),
    weight=st.integers(0, 3),
    u_threshold=st.sampled_from([0, 10]),
)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    table: Table = {}
    for key in draw(st.lists(st.sampled_from(SERVICE_KEYS), unique=True)):
        svc = draw(services)
        entry_dests = {}
        for dkey in draw(st.lists(st.sampled_from(DEST_KEYS), unique=True)):
            d = draw(dests)
            entry_dests[dkey] = Dest(dkey, d.method, d.weight, d.u_threshold, d.l_threshold)
        table[key] = Entry(
            Service(key, svc.sched, svc.flags, svc.persistence_timeout, svc.netmask), entry_dests
        )
    return table


def reordered(table: Table) -> Table:
    """The same table built in the opposite insertion order."""
    return {
        k: Entry(e.service, dict(reversed(e.dests.items()))) for k, e in reversed(table.items())
    }


@settings(max_examples=300)
@given(tables(), tables())
def test_applying_the_diff_gives_the_desired_table(a: Table, b: Table) -> None:
    ops = diff(a, b)
    assert apply_ops(a, ops) == b  # apply_ops is strict: this also proves the order valid
    assert diff(reordered(a), reordered(b)) == ops  # deterministic


@given(tables())
def test_no_change_no_ops(t: Table) -> None:
    assert diff(t, t) == []
    assert diff(t, reordered(t)) == []


@settings(max_examples=300)
@given(tables(), tables())
def test_the_diff_is_minimal(a: Table, b: Table) -> None:
    ops = diff(a, b)
    expected = len(a.keys() - b.keys())  # a removed service takes its destinations along
    for key in b.keys() - a.keys():
        expected += 1 + len(b[key].dests)
    for key in a.keys() & b.keys():
        old, new = a[key], b[key]
        expected += old.service != new.service
        expected += len(old.dests.keys() ^ new.dests.keys())
        expected += sum(old.dests[d] != new.dests[d] for d in old.dests.keys() & new.dests.keys())
    assert len(ops) == expected


@given(tables(), tables())
def test_services_come_before_their_destinations(a: Table, b: Table) -> None:
    ops = diff(a, b)
    seen_add: set[ServiceKey] = set()
    deleted: set[ServiceKey] = set()
    for op in ops:
        key = op_service(op)
        if isinstance(op, AddService):
            seen_add.add(key)
        elif isinstance(op, DelService):
            assert not seen_add, "deletions come first"
            deleted.add(key)
        else:
            assert key not in deleted
            if key not in a:
                assert key in seen_add


def test_order_of_operations() -> None:
    k80, k443, fw = SERVICE_KEYS[0], SERVICE_KEYS[1], SERVICE_KEYS[4]
    d1, d2, d3 = DEST_KEYS[:3]
    a: Table = {
        k80: Entry(Service(k80, "rr"), {d1: Dest(d1), d2: Dest(d2, weight=2)}),
        k443: Entry(Service(k443, "rr"), {d1: Dest(d1)}),
    }
    b: Table = {
        k80: Entry(Service(k80, "wrr"), {d2: Dest(d2, weight=5), d3: Dest(d3)}),
        fw: Entry(Service(fw, "sh"), {d1: Dest(d1)}),
    }
    assert diff(a, b) == [
        DelService(k443),
        EditService(Service(k80, "wrr")),
        DelDest(k80, d1),
        EditDest(k80, Dest(d2, weight=5)),
        AddDest(k80, Dest(d3)),
        AddService(Service(fw, "sh")),
        AddDest(fw, Dest(d1)),
    ]


def test_fwmark_and_address_services_sort_together() -> None:
    """ServiceKey's own ordering fails between None and an address: diff must not use it."""
    ops = diff({}, {k: Entry(Service(k)) for k in reversed(SERVICE_KEYS)})
    assert [op.service.key for op in ops] == sorted(SERVICE_KEYS, key=service_order)


def test_apply_ops_is_pure_and_strict() -> None:
    k, d = SERVICE_KEYS[0], DEST_KEYS[0]
    table: Table = {k: Entry(Service(k), {d: Dest(d)})}
    out = apply_ops(table, [EditDest(k, Dest(d, weight=9))])
    assert out[k].dests[d].weight == 9 and table[k].dests[d].weight == 1
    for bad in (
        AddService(Service(k)),
        AddDest(k, Dest(d)),
        EditDest(k, Dest(DEST_KEYS[1])),
        DelDest(k, DEST_KEYS[1]),
        DelService(SERVICE_KEYS[1]),
        EditService(Service(SERVICE_KEYS[1])),
        AddDest(SERVICE_KEYS[1], Dest(d)),
    ):
        with pytest.raises(OpError):
            apply_ops(table, [bad])
