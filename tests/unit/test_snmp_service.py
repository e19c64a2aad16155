"""Several MIB views as one: the composite answers as one view over all their objects."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.snmp.agentx.pdu import END_OF_MIB_VIEW, NO_SUCH_OBJECT, Error, Integer
from hakeeper.snmp.agentx.session import Registration
from hakeeper.snmp.service import IfIndexCache, Views
from tests.unit.agentxhelp import DictView

A, B = (1, 3, 6, 1, 2, 1, 68), (1, 3, 6, 1, 3, 5798)
VALUES_A = {(*A, 1, i): Integer(i) for i in range(1, 6)}
VALUES_B = {(*B, 1, 1, j): Integer(100 + j) for j in range(1, 4)}


def views() -> Views:
    return Views([(DictView(VALUES_B), [Registration(B)]), (DictView(VALUES_A), [Registration(A)])])


def test_registrations_are_every_subtree_in_oid_order() -> None:
    assert [r.subtree for r in views().registrations] == [A, B]


def test_a_walk_crosses_from_one_view_to_the_next_and_ends() -> None:
    v = views()
    seen, oid, include = [], (1,), False
    while True:
        found = v.next(oid, include, ())
        if found is END_OF_MIB_VIEW:
            break
        oid, value = found
        seen.append((oid, value))
    assert seen == sorted({**VALUES_A, **VALUES_B}.items())


@given(
    st.lists(st.integers(0, 8), min_size=1, max_size=9),
    st.booleans(),
    st.sampled_from([(), B, (*B, 1, 1, 2), (1, 3, 6, 1, 2, 1, 68, 1, 3)]),
)
def test_next_equals_a_sorted_merge(start: list[int], include: bool, end: tuple[int, ...]) -> None:
    merged = sorted({**VALUES_A, **VALUES_B}.items())
    oid = (1, 3, 6, 1, *start)
    expected = next(
        itertools.dropwhile(lambda kv: kv[0] < oid or (kv[0] == oid and not include), merged),
        None,
    )
    if expected is not None and end and expected[0] >= end:
        expected = None
    found = views().next(oid, include, end)
    assert (found is END_OF_MIB_VIEW) if expected is None else found == expected


def test_get_and_sets_go_to_the_owner() -> None:
    v = views()
    assert v.get((*A, 1, 3)) == Integer(3)
    assert v.get((1, 3, 6, 1, 4, 1)) is NO_SUCH_OBJECT
    assert v.test_set(1, (1, 3, 6, 1, 4, 1), Integer(1)) == Error.NOT_WRITABLE


def test_ifindex_cache_asks_the_kernel_once_per_name_and_age() -> None:
    asked: list[str] = []
    now = [0.0]

    def lookup(name: str) -> int:
        asked.append(name)
        if name == "gone":
            raise OSError("no such device")
        return 7

    cache = IfIndexCache(lookup, clock=lambda: now[0])
    assert [cache("eth0") for _ in range(100)] == [7] * 100
    assert cache("gone") is None and cache("gone") is None
    now[0] = 10.0
    assert cache("eth0") == 7
    assert asked == ["eth0", "gone", "eth0"]
