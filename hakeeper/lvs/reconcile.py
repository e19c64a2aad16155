"""The LVS reconciler (sans-IO): the operations that turn one table into another.

`diff(current, desired)` gives the fewest operations, in an order that is valid to apply one
by one: removed services first (a service's deletion takes its destinations with it, in
IPVS as in the nftables backend), then the kept services in key order (service edit, then
their destinations removed, changed, added), then the new services each followed by their
destinations. `apply_ops` plays operations on a table without touching the kernel: the
property tests check `apply_ops(a, diff(a, b)) == b`, and a backend keeping a shadow of
what it put in the kernel uses it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey, Table


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service


@dataclass(frozen=True, slots=True)
class DelService:
    key: ServiceKey


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Dest


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: Dest


@dataclass(frozen=True, slots=True)
class DelDest:
    service: ServiceKey
    dest: DestKey


Op = AddService | EditService | DelService | AddDest | EditDest | DelDest


class OpError(ValueError):
    """An operation that does not fit the table (adding what is there, editing what is not)."""


def op_service(op: Op) -> ServiceKey:
    """The service an operation touches."""
    if isinstance(op, AddService | EditService):
        return op.service.key
    if isinstance(op, DelService):
        return op.key
    return op.service


def service_order(key: ServiceKey) -> tuple[object, ...]:
    """A total order on service keys (ServiceKey has none of its own: an address key and a
    fwmark key would compare None against a string)."""
    return (
        key.family,
        key.protocol,
        key.fwmark is not None,
        key.fwmark or 0,
        key.address or "",
        key.port,
    )


def diff(current: Table, desired: Table) -> list[Op]:
    ops: list[Op] = [
        DelService(key) for key in sorted(current.keys() - desired.keys(), key=service_order)
    ]
    for key in sorted(current.keys() & desired.keys(), key=service_order):
        old, new = current[key], desired[key]
        if old.service != new.service:
            ops.append(EditService(new.service))
        ops.extend(DelDest(key, d) for d in sorted(old.dests.keys() - new.dests.keys()))
        for dkey in sorted(old.dests.keys() & new.dests.keys()):
            if old.dests[dkey] != new.dests[dkey]:
                ops.append(EditDest(key, new.dests[dkey]))
        ops.extend(AddDest(key, new.dests[d]) for d in sorted(new.dests.keys() - old.dests.keys()))
    for key in sorted(desired.keys() - current.keys(), key=service_order):
        entry = desired[key]
        ops.append(AddService(entry.service))
        ops.extend(AddDest(key, entry.dests[d]) for d in sorted(entry.dests))
    return ops


def apply_ops(table: Table, ops: Iterable[Op]) -> Table:
    """A new table: `table` with `ops` applied in order (raises OpError on a misfit)."""
    out: Table = dict(table)
    copied: set[ServiceKey] = set()  # entries whose dests dict is already our own copy

    def entry_for(key: ServiceKey, op: Op) -> Entry:
        entry = out.get(key)
        if entry is None:
            raise OpError(f"{type(op).__name__}: no service {key}")
        if key not in copied:
            entry = Entry(entry.service, dict(entry.dests))
            out[key] = entry
            copied.add(key)
        return entry

    for op in ops:
        if isinstance(op, AddService):
            if op.service.key in out:
                raise OpError(f"AddService: service {op.service.key} exists")
            out[op.service.key] = Entry(op.service, {})
            copied.add(op.service.key)
        elif isinstance(op, EditService):
            old = entry_for(op.service.key, op)
            out[op.service.key] = Entry(op.service, old.dests)
        elif isinstance(op, DelService):
            if op.key not in out:
                raise OpError(f"DelService: no service {op.key}")
            del out[op.key]
            copied.discard(op.key)
        elif isinstance(op, AddDest):
            dests = entry_for(op.service, op).dests
            if op.dest.key in dests:
                raise OpError(f"AddDest: {op.service} already has {op.dest.key}")
            dests[op.dest.key] = op.dest
        elif isinstance(op, EditDest):
            dests = entry_for(op.service, op).dests
            if op.dest.key not in dests:
                raise OpError(f"EditDest: {op.service} has no {op.dest.key}")
            dests[op.dest.key] = op.dest
        else:
            dests = entry_for(op.service, op).dests
            if op.dest not in dests:
                raise OpError(f"DelDest: {op.service} has no {op.dest}")
            del dests[op.dest]
    return out
