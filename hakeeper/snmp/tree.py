"""An OID tree over the live model: the generic `MibView` every SNMP view is built from.

Objects are getters, never copies: a scalar is `get() -> Value | None`, a table column is
`get(row) -> Value | None` over rows that a table's `rows()` lists and its `index(row)`
names (None leaves a row out; a getter's None leaves that one cell out). Values are the AgentX
value classes, returned as they are.

What is cached is only the order: per table, the sorted index suffixes of its rows. It is
rebuilt when the caller says the set of rows changed (`invalidate()`, on add/remove/reconfig
events), and at the latest `max_age` seconds after the last build, for renames no event
reports (an interface's ifIndex). A Get is then one dict lookup and a GetNext a few bisects,
whatever the table size.

Layout: a scalar object `O` has the one instance `O.0`; a table entry `E` has the instances
`E.column.index`. Objects must not overlap (no prefix of another), so the object holding an
OID is found by one bisect over the sorted prefixes.

Sets: an object without a `Writable` answers notWritable; a writable column whose row does
not exist answers noCreation (rows are never created over SNMP). `Writable.check` runs at
TestSet, `Writable.apply` at CommitSet and returns the closure UndoSet calls.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hakeeper.snmp.agentx.pdu import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    EndOfMibView,
    Error,
    Oid,
    Value,
)

R = TypeVar("R")
_MAX_SUBID = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class Writable(Generic[R]):
    """How a Set reaches the model. `check(row, value)` is the TestSet answer (0, or an Error
    such as WRONG_TYPE / WRONG_VALUE / INCONSISTENT_VALUE) and must not change anything;
    `apply(row, value)` makes the change and returns what undoes it."""

    check: Callable[[R, Value], int]
    apply: Callable[[R, Value], Callable[[], None]]


@dataclass(frozen=True, slots=True)
class Column(Generic[R]):
    subid: int
    get: Callable[[R], Value | None]
    writable: Writable[R] | None = None


@dataclass(slots=True)
class Scalar:
    """A scalar object: `prefix` is the object, `prefix.0` its one instance."""

    prefix: Oid
    getter: Callable[[], Value | None]
    writable: Writable[None] | None = None

    def get(self, oid: Oid) -> Value:
        if len(oid) == len(self.prefix) + 1 and oid[-1] == 0:
            value = self.getter()
            return NO_SUCH_INSTANCE if value is None else value
        # below the object but not its .0: an instance that cannot exist
        return NO_SUCH_INSTANCE if len(oid) > len(self.prefix) else NO_SUCH_OBJECT

    def next(self, oid: Oid, include: bool) -> tuple[Oid, Value] | None:
        instance = (*self.prefix, 0)
        if oid < instance or (include and oid == instance):
            return self.first()
        return None

    def first(self) -> tuple[Oid, Value] | None:
        value = self.getter()
        return None if value is None else ((*self.prefix, 0), value)

    def target(self, oid: Oid) -> tuple[Writable[Any] | None, Any, bool]:
        """(writable, row, instance exists) for a Set."""
        exists = len(oid) == len(self.prefix) + 1 and oid[-1] == 0
        return self.writable, None, exists


class Table(Generic[R]):
    """A conceptual table: its entry OID, where its rows come from and how each is indexed.
    Columns are added with `column()`; the index itself is never a readable column here
    (SMIv2 index objects are not-accessible)."""

    def __init__(
        self,
        tree: MibTree,
        entry: Oid,
        rows: Callable[[], Iterable[R]],
        index: Callable[[R], Oid | None],
    ) -> None:
        self.tree = tree
        self.prefix = entry
        self.rows = rows
        self.index = index
        self.columns: list[Column[R]] = []
        self._subids: list[int] = []
        self._built: Hashable = None
        self._keys: list[Oid] = []
        self._row_list: list[R] = []
        self._by_key: dict[Oid, R] = {}
        self.duplicates = 0  # rows left out because another row had the same index
        self.bad_index = 0  # rows left out because their index is not a valid OID suffix

    def column(
        self, subid: int, get: Callable[[R], Value | None], writable: Writable[R] | None = None
    ) -> Table[R]:
        if subid in self._subids:
            raise ValueError(f"column {subid} registered twice under {self.prefix}")
        pos = bisect.bisect_left(self._subids, subid)
        self._subids.insert(pos, subid)
        self.columns.insert(pos, Column(subid, get, writable))
        return self

    # --- the row index ---------------------------------------------------------------------

    def _refresh(self) -> None:
        stamp = self.tree._stamp()
        if stamp == self._built:
            return
        pairs: dict[Oid, R] = {}
        duplicates = bad = 0
        for row in self.rows():
            key = self.index(row)
            if key is None:
                continue
            if not key or not all(0 <= s <= _MAX_SUBID for s in key):
                bad += 1
                continue
            if key in pairs:
                duplicates += 1
                continue
            pairs[key] = row
        self._keys = sorted(pairs)
        self._row_list = [pairs[k] for k in self._keys]
        self._by_key = pairs
        self.duplicates, self.bad_index = duplicates, bad
        self._built = stamp

    def keys(self) -> list[Oid]:
        """The index suffixes in OID order (rebuilding them if stale)."""
        self._refresh()
        return self._keys

    def row(self, key: Oid) -> R | None:
        self._refresh()
        return self._by_key.get(key)

    # --- answers ---------------------------------------------------------------------------

    def get(self, oid: Oid) -> Value:
        rest = oid[len(self.prefix) :]
        if not rest:
            return NO_SUCH_OBJECT
        pos = bisect.bisect_left(self._subids, rest[0])
        if pos == len(self._subids) or self._subids[pos] != rest[0]:
            return NO_SUCH_OBJECT
        row = self.row(rest[1:])
        if row is None:
            return NO_SUCH_INSTANCE
        value = self.columns[pos].get(row)
        return NO_SUCH_INSTANCE if value is None else value

    def first(self) -> tuple[Oid, Value] | None:
        self._refresh()
        return self._scan(0, 0)

    def next(self, oid: Oid, include: bool) -> tuple[Oid, Value] | None:
        self._refresh()
        rest = oid[len(self.prefix) :]
        if not rest:
            return self._scan(0, 0)
        col = bisect.bisect_left(self._subids, rest[0])
        if col == len(self._subids):
            return None
        if self._subids[col] != rest[0]:  # between columns: the next column from its top
            return self._scan(col, 0)
        find = bisect.bisect_left if include else bisect.bisect_right
        return self._scan(col, find(self._keys, rest[1:]))

    def _scan(self, col: int, pos: int) -> tuple[Oid, Value] | None:
        """The first cell with a value from (column `col`, row `pos`) on, column-major."""
        keys, rows = self._keys, self._row_list
        while col < len(self.columns):
            column = self.columns[col]
            for i in range(pos, len(keys)):
                value = column.get(rows[i])
                if value is not None:
                    return (*self.prefix, column.subid, *keys[i]), value
            col, pos = col + 1, 0
        return None

    def target(self, oid: Oid) -> tuple[Writable[Any] | None, Any, bool]:
        rest = oid[len(self.prefix) :]
        if not rest:
            return None, None, False
        pos = bisect.bisect_left(self._subids, rest[0])
        if pos == len(self._subids) or self._subids[pos] != rest[0]:
            return None, None, False
        row = self.row(rest[1:])
        return self.columns[pos].writable, row, row is not None


_Region = Scalar | Table[Any]


@dataclass(slots=True)
class _Tx:
    undo: dict[Oid, Callable[[], None]] = field(default_factory=dict)


class MibTree:
    """A `MibView` (hakeeper.snmp.agentx.session) over scalars and tables of getters."""

    def __init__(
        self, *, max_age: float | None = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self.generation = 0
        self._epoch = 0  # bumped by max_age expiry
        self._epoch_at = clock()
        self._prefixes: list[Oid] = []
        self._regions: list[_Region] = []
        self._txs: dict[int, _Tx] = {}

    # --- building --------------------------------------------------------------------------

    def scalar(
        self,
        oid: Oid,
        get: Callable[[], Value | None],
        writable: Writable[None] | None = None,
    ) -> Scalar:
        """The scalar object `oid`; its instance is `oid.0`."""
        return self._add(Scalar(oid, get, writable))

    def table(
        self,
        entry: Oid,
        rows: Callable[[], Iterable[R]],
        index: Callable[[R], Oid | None],
    ) -> Table[R]:
        """A table whose entry OID is `entry`; add its columns on the result."""
        return self._add(Table(self, entry, rows, index))

    def _add(self, region: Any) -> Any:
        prefix = region.prefix
        pos = bisect.bisect_left(self._prefixes, prefix)
        for near in self._prefixes[max(0, pos - 1) : pos + 1]:
            short, long = sorted((near, prefix), key=len)
            if long[: len(short)] == short:
                raise ValueError(f"{prefix} overlaps {near}")
        self._prefixes.insert(pos, prefix)
        self._regions.insert(pos, region)
        return region

    def invalidate(self) -> None:
        """The set of rows (or their indexes) changed: re-index before the next answer."""
        self.generation += 1

    def _stamp(self) -> Hashable:
        if self.max_age is not None:
            now = self.clock()
            if now - self._epoch_at >= self.max_age:
                self._epoch += 1
                self._epoch_at = now
        return (self.generation, self._epoch)

    def _region(self, oid: Oid) -> tuple[int, _Region | None]:
        """(position of the first region at or after `oid`, the region holding `oid`)."""
        i = bisect.bisect_right(self._prefixes, oid) - 1
        if i >= 0:
            prefix = self._prefixes[i]
            if oid[: len(prefix)] == prefix:
                return i, self._regions[i]
        return i + 1, None

    # --- reads -----------------------------------------------------------------------------

    def get(self, oid: Oid) -> Value:
        _, region = self._region(oid)
        return NO_SUCH_OBJECT if region is None else region.get(oid)

    def next(self, oid: Oid, include: bool, end: Oid) -> tuple[Oid, Value] | EndOfMibView:
        i, region = self._region(oid)
        found = region.next(oid, include) if region is not None else None
        if region is not None:
            i += 1
        while found is None and i < len(self._regions):
            if end and self._prefixes[i] >= end:
                return END_OF_MIB_VIEW
            found = self._regions[i].first()
            i += 1
        if found is None or (end and found[0] >= end):
            return END_OF_MIB_VIEW
        return found

    def walk(self, start: Oid = ()) -> Iterable[tuple[Oid, Value]]:
        """Every instance after `start`, in order (for tests and dumps)."""
        found = self.next(start, True, ())
        while not isinstance(found, EndOfMibView):
            yield found
            found = self.next(found[0], False, ())

    # --- the four Set phases ---------------------------------------------------------------

    def _target(self, oid: Oid) -> tuple[Writable[Any] | None, Any, int]:
        _, region = self._region(oid)
        if region is None:
            return None, None, Error.NOT_WRITABLE
        writable, row, exists = region.target(oid)
        if writable is None:
            return None, None, Error.NOT_WRITABLE
        if not exists:
            return None, None, Error.NO_CREATION
        return writable, row, Error.NO_ERROR

    def test_set(self, tx: int, oid: Oid, value: Value) -> int:
        writable, row, error = self._target(oid)
        if writable is None:
            return error
        self._txs.setdefault(tx, _Tx())
        return writable.check(row, value)

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int:
        writable, row, _ = self._target(oid)
        if writable is None:  # the row went away since TestSet
            return Error.COMMIT_FAILED
        try:
            undo = writable.apply(row, value)
        except Exception:
            return Error.COMMIT_FAILED
        self._txs.setdefault(tx, _Tx()).undo[oid] = undo
        return Error.NO_ERROR

    def undo_set(self, tx: int, oid: Oid, value: Value) -> int:
        state = self._txs.get(tx)
        undo = state.undo.pop(oid, None) if state is not None else None
        if undo is None:
            return Error.UNDO_FAILED
        try:
            undo()
        except Exception:
            return Error.UNDO_FAILED
        return Error.NO_ERROR

    def cleanup_set(self, tx: int) -> None:
        self._txs.pop(tx, None)
