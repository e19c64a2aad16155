"""Shared by the AgentX tests: a small in-memory MibView (sorted OID -> value)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.pdu import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    EndOfMibView,
    Error,
    Oid,
    Value,
)


class DictView:
    """Values in a dict kept sorted for `next`. `writable` maps an OID to the value class
    a Set must carry and an optional check (False -> wrongValue); `fail_commit` makes the
    commit of those OIDs fail, to drive UndoSet."""

    def __init__(
        self,
        values: Mapping[Oid, Value],
        writable: Mapping[Oid, tuple[type, Callable[[Value], bool] | None]] | None = None,
    ) -> None:
        self.values: dict[Oid, Value] = dict(values)
        self.writable = dict(writable or {})
        self.fail_commit: set[Oid] = set()
        self.calls: list[tuple[str, int, Oid]] = []
        self._saved: dict[int, dict[Oid, Value]] = {}
        self._resort()

    def _resort(self) -> None:
        self._keys = sorted(self.values)

    def get(self, oid: Oid) -> Value:
        if oid in self.values:
            return self.values[oid]
        # A known column with an unknown index is a missing instance, not a missing object.
        if oid and any(k[: len(oid) - 1] == oid[:-1] for k in self._keys):
            return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT

    def next(self, oid: Oid, include: bool, end: Oid) -> tuple[Oid, Value] | EndOfMibView:
        find = bisect.bisect_left if include else bisect.bisect_right
        i = find(self._keys, oid)
        if i >= len(self._keys) or (end and self._keys[i] >= end):
            return END_OF_MIB_VIEW
        key = self._keys[i]
        return key, self.values[key]

    def test_set(self, tx: int, oid: Oid, value: Value) -> int:
        self.calls.append(("test", tx, oid))
        if oid not in self.writable:
            return Error.NOT_WRITABLE if oid in self.values else Error.NO_CREATION
        kind, check = self.writable[oid]
        if not isinstance(value, kind):
            return Error.WRONG_TYPE
        if check is not None and not check(value):
            return Error.WRONG_VALUE
        return Error.NO_ERROR

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int:
        self.calls.append(("commit", tx, oid))
        if oid in self.fail_commit:
            return Error.COMMIT_FAILED
        self._saved.setdefault(tx, {}).setdefault(oid, self.values[oid])
        self.values[oid] = value
        return Error.NO_ERROR

    def undo_set(self, tx: int, oid: Oid, value: Value) -> int:
        self.calls.append(("undo", tx, oid))
        self.values[oid] = self._saved[tx][oid]
        return Error.NO_ERROR

    def cleanup_set(self, tx: int) -> None:
        self.calls.append(("cleanup", tx, ()))
        self._saved.pop(tx, None)


def sample_view(root: Oid) -> DictView:
    """Every value type once under `root`, and a little writable table (priority per
    instance)."""
    return DictView(
        {
            (*root, 1, 0): p.OctetString(b"hakeeper"),
            (*root, 2, 0): p.Integer(-5),
            (*root, 3, 0): p.ObjectIdentifier((1, 3, 6, 1, 4, 1)),
            (*root, 4, 0): p.IpAddress(bytes([192, 0, 2, 7])),
            (*root, 5, 0): p.Counter32(4000000000),
            (*root, 6, 0): p.Gauge32(42),
            (*root, 7, 0): p.TimeTicks(12345),
            (*root, 8, 0): p.Opaque(b"\x01\x02"),
            (*root, 9, 0): p.Counter64(2**40 + 1),
            (*root, 10, 1, 1): p.Integer(100),
            (*root, 10, 1, 2): p.Integer(200),
            (*root, 10, 2, 1): p.OctetString(b"VI_1"),
            (*root, 10, 2, 2): p.OctetString(b"VI_2"),
        },
        writable={
            (*root, 10, 1, 1): (p.Integer, lambda v: 1 <= v.value <= 254),
            (*root, 10, 1, 2): (p.Integer, lambda v: 1 <= v.value <= 254),
        },
    )
