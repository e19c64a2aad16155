"""The generic OID tree: Get/GetNext semantics against a brute-force sorted dict, holes, range
ends, re-indexing on invalidate and on age, Sets through `Writable`, and the cost of a
GetNext walk over 1000 rows x 25 columns."""

from __future__ import annotations

import bisect
import random
import time
from dataclasses import dataclass

import pytest

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.session import Session
from hakeeper.snmp.tree import MibTree, Writable

ROOT = (1, 3, 6, 1, 3, 77)
SCALAR_A = (*ROOT, 1)
SCALAR_B = (*ROOT, 2)
ENTRY = (*ROOT, 3, 1)
SCALAR_C = (*ROOT, 4)  # after the table


@dataclass
class Row:
    key: tuple[int, ...]
    prio: int
    name: str
    hole: bool = False  # column 3 has no instance for this row


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def build(rows: dict[str, Row], clock: Clock | None = None) -> MibTree:
    tree = MibTree(max_age=None if clock is None else 10.0, clock=clock or time.monotonic)
    tree.scalar(SCALAR_A, lambda: p.Integer(len(rows)))
    tree.scalar(SCALAR_B, lambda: None)  # an object with no value now
    t = tree.table(ENTRY, lambda: rows.values(), lambda r: r.key)
    # registered out of order on purpose: columns are kept sorted
    t.column(3, lambda r: None if r.hole else p.Counter32(r.prio * 2))
    t.column(1, lambda r: p.Integer(r.prio), writable=prio_writable())
    t.column(2, lambda r: p.OctetString(r.name.encode()))
    tree.scalar(SCALAR_C, lambda: p.Gauge32(7))
    return tree


def prio_writable() -> Writable[Row]:
    def check(row: Row, value: p.Value) -> int:
        if not isinstance(value, p.Integer):
            return p.Error.WRONG_TYPE
        return p.Error.NO_ERROR if 1 <= value.value <= 254 else p.Error.WRONG_VALUE

    def apply(row: Row, value: p.Value) -> object:
        assert isinstance(value, p.Integer)
        old, row.prio = row.prio, value.value

        def undo() -> None:
            row.prio = old

        return undo

    return Writable(check, apply)  # type: ignore[arg-type]


def flat(rows: dict[str, Row]) -> dict[tuple[int, ...], p.Value]:
    """What the tree must show, computed the slow and obvious way."""
    out: dict[tuple[int, ...], p.Value] = {(*SCALAR_A, 0): p.Integer(len(rows))}
    for r in rows.values():
        out[(*ENTRY, 1, *r.key)] = p.Integer(r.prio)
        out[(*ENTRY, 2, *r.key)] = p.OctetString(r.name.encode())
        if not r.hole:
            out[(*ENTRY, 3, *r.key)] = p.Counter32(r.prio * 2)
    out[(*SCALAR_C, 0)] = p.Gauge32(7)
    return out


def some_rows(n: int, seed: int = 1) -> dict[str, Row]:
    rnd = random.Random(seed)
    rows = {}
    while len(rows) < n:
        key = (rnd.randint(1, 9), rnd.randint(1, 255), rnd.choice((1, 2)))
        rows[f"r{key}"] = Row(key, rnd.randint(1, 254), f"n{len(rows)}", hole=rnd.random() < 0.2)
    return rows


def brute_next(
    expected: dict[tuple[int, ...], p.Value], oid: tuple[int, ...], include: bool, end: tuple
) -> object:
    keys = sorted(expected)
    i = (bisect.bisect_left if include else bisect.bisect_right)(keys, oid)
    if i == len(keys) or (end and keys[i] >= end):
        return p.END_OF_MIB_VIEW
    return keys[i], expected[keys[i]]


def test_walk_is_the_sorted_model() -> None:
    rows = some_rows(40)
    tree = build(rows)
    expected = flat(rows)
    assert list(tree.walk()) == sorted(expected.items())


def test_next_matches_brute_force_from_any_oid() -> None:
    rows = some_rows(30, seed=2)
    tree = build(rows)
    expected = flat(rows)
    rnd = random.Random(3)
    probes = [(), ROOT, (*ROOT, 0), (*ROOT, 3), ENTRY, (*ENTRY, 0), (*ENTRY, 4), (1, 4), (2,)]
    probes += [k[: rnd.randint(len(ROOT), len(k))] for k in expected]
    probes += [(*k[:-1], k[-1] + 1) for k in expected] + list(expected)
    probes += [
        (*ENTRY, rnd.randint(0, 4), rnd.randint(0, 10), rnd.randint(0, 300)) for _ in range(200)
    ]
    ends = [(), (*ENTRY, 2), (*ENTRY, 3), SCALAR_C, (*ROOT, 5)]
    for oid in probes:
        for include in (False, True):
            for end in ends:
                assert tree.next(oid, include, end) == brute_next(expected, oid, include, end), (
                    oid,
                    include,
                    end,
                )


def test_get_distinguishes_object_and_instance() -> None:
    rows = {"a": Row((2, 51, 1), 100, "VI_1"), "b": Row((2, 52, 1), 90, "VI_2", hole=True)}
    tree = build(rows)
    assert tree.get((*ENTRY, 1, 2, 51, 1)) == p.Integer(100)
    assert tree.get((*ENTRY, 2, 2, 52, 1)) == p.OctetString(b"VI_2")
    assert tree.get((*ENTRY, 3, 2, 52, 1)) == p.NO_SUCH_INSTANCE  # a hole
    assert tree.get((*ENTRY, 1, 2, 53, 1)) == p.NO_SUCH_INSTANCE  # no such row
    assert tree.get((*ENTRY, 1)) == p.NO_SUCH_INSTANCE  # a column, no index
    assert tree.get((*ENTRY, 9, 2, 51, 1)) == p.NO_SUCH_OBJECT  # no such column
    assert tree.get(ENTRY) == p.NO_SUCH_OBJECT
    assert tree.get((*SCALAR_A, 0)) == p.Integer(2)
    assert tree.get((*SCALAR_A, 1)) == p.NO_SUCH_INSTANCE
    assert tree.get(SCALAR_A) == p.NO_SUCH_OBJECT
    assert tree.get((*SCALAR_B, 0)) == p.NO_SUCH_INSTANCE
    assert tree.get((*ROOT, 9, 0)) == p.NO_SUCH_OBJECT
    assert tree.get((1, 3, 6)) == p.NO_SUCH_OBJECT


def test_walk_ends_at_the_end_of_the_view() -> None:
    tree = build({"a": Row((1, 1, 1), 5, "x")})
    assert tree.next((*SCALAR_C, 0), False, ()) == p.END_OF_MIB_VIEW
    assert tree.next((*ROOT, 5), True, ()) == p.END_OF_MIB_VIEW
    assert tree.next((2,), False, ()) == p.END_OF_MIB_VIEW
    # a range that ends before the next object
    assert tree.next((*SCALAR_A, 0), False, (*ENTRY, 1)) == p.END_OF_MIB_VIEW


def test_rows_follow_the_model_on_invalidate() -> None:
    rows = {"a": Row((1, 1, 1), 5, "x")}
    tree = build(rows)
    assert [o for o, _ in tree.walk(ENTRY)][:1] == [(*ENTRY, 1, 1, 1, 1)]
    rows["b"] = Row((1, 0, 1), 6, "y")
    # the index is cached: the new row shows once the caller says the rows changed
    assert tree.get((*ENTRY, 1, 1, 0, 1)) == p.NO_SUCH_INSTANCE
    tree.invalidate()
    assert tree.get((*ENTRY, 1, 1, 0, 1)) == p.Integer(6)
    assert tree.next(ENTRY, False, ()) == ((*ENTRY, 1, 1, 0, 1), p.Integer(6))
    del rows["a"]
    tree.invalidate()
    assert list(tree.walk()) == sorted(flat(rows).items())
    # values are read live, no invalidate needed
    rows["b"].prio = 9
    assert tree.get((*ENTRY, 1, 1, 0, 1)) == p.Integer(9)


def test_rows_reindexed_after_max_age() -> None:
    clock = Clock()
    rows = {"a": Row((1, 1, 1), 5, "x")}
    tree = build(rows, clock)
    assert tree.get((*ENTRY, 1, 1, 1, 1)) == p.Integer(5)
    rows["a"].key = (3, 1, 1)  # re-keyed without an event (an ifIndex changed)
    clock.now = 9.0
    assert tree.get((*ENTRY, 1, 3, 1, 1)) == p.NO_SUCH_INSTANCE
    clock.now = 10.5
    assert tree.get((*ENTRY, 1, 3, 1, 1)) == p.Integer(5)
    assert tree.get((*ENTRY, 1, 1, 1, 1)) == p.NO_SUCH_INSTANCE


def test_bad_and_duplicate_indexes_are_left_out() -> None:
    rows = {
        "a": Row((1, 1, 1), 5, "x"),
        "b": Row((1, 1, 1), 6, "dup"),
        "c": Row((1, -1, 1), 7, "neg"),
        "d": Row((), 8, "empty"),
    }
    tree = build(rows)
    assert [o for o, _ in tree.walk(ENTRY) if o[: len(ENTRY) + 1] == (*ENTRY, 1)] == [
        (*ENTRY, 1, 1, 1, 1)
    ]
    table = tree._regions[2]
    assert (table.duplicates, table.bad_index) == (1, 2)


def test_overlapping_objects_are_refused() -> None:
    tree = MibTree()
    tree.scalar((*ROOT, 1), lambda: None)
    with pytest.raises(ValueError):
        tree.table((*ROOT, 1, 1), lambda: [], lambda r: None)
    with pytest.raises(ValueError):
        tree.scalar(ROOT, lambda: None)


def test_sets_read_only_writable_and_undo() -> None:
    rows = {"a": Row((1, 1, 1), 5, "x")}
    tree = build(rows)
    prio = (*ENTRY, 1, 1, 1, 1)
    assert tree.test_set(1, (*ENTRY, 2, 1, 1, 1), p.OctetString(b"z")) == p.Error.NOT_WRITABLE
    assert tree.test_set(1, (*SCALAR_A, 0), p.Integer(1)) == p.Error.NOT_WRITABLE
    assert tree.test_set(1, (*ROOT, 99, 0), p.Integer(1)) == p.Error.NOT_WRITABLE
    assert tree.test_set(1, (*ENTRY, 1, 9, 9, 9), p.Integer(1)) == p.Error.NO_CREATION
    assert tree.test_set(1, prio, p.OctetString(b"1")) == p.Error.WRONG_TYPE
    assert tree.test_set(1, prio, p.Integer(255)) == p.Error.WRONG_VALUE
    assert tree.test_set(2, prio, p.Integer(42)) == p.Error.NO_ERROR
    assert rows["a"].prio == 5  # test changes nothing
    assert tree.commit_set(2, prio, p.Integer(42)) == p.Error.NO_ERROR
    assert tree.get(prio) == p.Integer(42)
    assert tree.undo_set(2, prio, p.Integer(42)) == p.Error.NO_ERROR
    assert rows["a"].prio == 5
    assert tree.undo_set(2, prio, p.Integer(42)) == p.Error.UNDO_FAILED  # nothing left to undo
    tree.cleanup_set(1)
    tree.cleanup_set(2)
    assert tree._txs == {}


def test_the_session_drives_the_tree() -> None:
    """Through the AgentX session's GetNext path: the tree keeps its contract (no
    out-of-range answers, endOfMibView at the end)."""
    rows = some_rows(5)
    tree = build(rows)
    session = Session(tree, [])
    r = p.SearchRange((*SCALAR_C, 0), ())
    assert session._view_next(r) == p.VarBind((*SCALAR_C, 0), p.END_OF_MIB_VIEW)
    assert session.drain_events() == []


def test_getnext_walk_of_1000_rows_by_25_columns_is_cheap() -> None:
    rows = {
        f"i{n}": Row((2 + n // 255, 1 + n % 255, 1), n % 254 + 1, f"VI_{n}") for n in range(1000)
    }
    tree = MibTree()
    t = tree.table(ENTRY, lambda: rows.values(), lambda r: r.key)
    for c in range(1, 26):
        t.column(c, lambda r, c=c: p.Counter64(r.prio * c))
    start = time.perf_counter()
    oid: tuple[int, ...] = ROOT
    n = 0
    while True:
        found = tree.next(oid, False, ())
        if isinstance(found, p.EndOfMibView):
            break
        oid = found[0]
        n += 1
    elapsed = time.perf_counter() - start
    assert n == 25_000
    print(f"\n25,000 GetNexts over 1000 rows x 25 columns: {elapsed * 1000:.0f} ms")
    assert elapsed < 0.5
