"""HAKEEPER-MIB (mibs/HAKEEPER-MIB.txt) over the runtime model: the view the subagent serves.

Every OID, column number, enumeration, size and range comes from hakeeper/snmp/mib.py. The
getters here say what a cell means in the model's terms (a bool, a state string, an int, a
str); `_encode` turns that into the wire value the column's syntax asks for, so the same
getter serves a Get, a walk and a notification varbind.

Rows are keys (names, positions), never model objects: a reload replaces the model's objects,
and a key resolved at read time always reads the live one. What the tree caches is only the
row order, rebuilt on the model's add/remove/config/reload events.

The values are the D-Bus API's (hakeeper/dbus/objects.py), in SNMP's units: intervals in
centiseconds, timestamps as DateAndTime in UTC ('0000010100000000'H for none), states as the
MIB's numbers. Sets go through the one control layer, like the D-Bus methods.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from hakeeper import __version__
from hakeeper.snmp import mib
from hakeeper.snmp.agentx.pdu import (
    Counter32,
    Counter64,
    Error,
    Gauge32,
    Integer,
    OctetString,
    Oid,
    TimeTicks,
    Value,
    VarBind,
)
from hakeeper.snmp.agentx.session import Registration
from hakeeper.snmp.tree import MibTree, Writable

if TYPE_CHECKING:
    from hakeeper.config.model import VirtualAddress
    from hakeeper.state import (
        Event,
        GroupState,
        InstanceState,
        RealServerState,
        Runtime,
        VirtualServerState,
    )

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_OWNER = 255  # an address owner's priority: the control layer keeps it

Trap = tuple[Oid, list[VarBind]]


class Control(Protocol):
    """What a Set may ask of the daemon (hakeeper.control.Control; ControlError refuses)."""

    def set_priority(self, name: str, priority: int | None) -> None: ...
    def rs_enable(self, vs: str, rs: str, enabled: bool) -> None: ...
    def rs_weight(self, vs: str, rs: str, weight: int | None) -> None: ...


# --- encoding: model meaning -> the column's wire value ---------------------------------------


def _encode(column: mib.Column, value: object) -> Value | None:
    """The wire value of a model value for `column`; None (cell left out) for a label the
    MIB does not know."""
    if value is None:
        return None
    if column.enum is not None:
        label = ("true" if value else "false") if isinstance(value, bool) else str(value)
        number = dict(column.enum).get(label.lower())
        return None if number is None else Integer(number)
    syntax = column.syntax
    if syntax == "OCTET STRING":
        hi = column.range[1] if column.range is not None else 65535
        if isinstance(value, bytes):
            return OctetString(value[:hi])
        # a DisplayString holds 255 octets at most: cut there, not inside a character
        return OctetString(str(value).encode()[:hi].decode(errors="ignore").encode())
    number = int(value)  # type: ignore[call-overload]
    if syntax == "Integer32":
        lo, hi = column.range or (_I32_MIN, _I32_MAX)
        return Integer(min(max(number, lo), hi))
    if syntax in ("Unsigned32", "Gauge32"):  # a gauge latches at its maximum (RFC 2578 §7.1.7)
        return Gauge32(min(max(number, 0), _U32))
    if syntax == "Counter32":  # counters wrap
        return Counter32(number & _U32)
    if syntax == "Counter64":
        return Counter64(number & _U64)
    if syntax == "TimeTicks":
        return TimeTicks(max(number, 0) % (_U32 + 1))
    raise ValueError(f"{column.name}: no encoding for {syntax}")


def date_and_time(ts: float | None) -> bytes:
    """DateAndTime (SNMPv2-TC) of a wall-clock time, in UTC with its '+0:00' offset; the
    MIB's 'never' for no time (the D-Bus API's 0.0)."""
    if not ts:
        return mib.DATE_NONE
    d = datetime.fromtimestamp(ts, UTC)
    return struct.pack(
        ">HBBBBBBcBB",
        d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond // 100_000, b"+", 0, 0,
    )  # fmt: skip


def _centi(seconds: float) -> int:
    return round(seconds * 100)


def _family(version: int) -> str:
    return f"ipv{version}"


# --- what each column means in the model ------------------------------------------------------
# Getters take the resolved model object(s) of a row; the tables below name every readable
# column of mib.py, and HakeeperMib refuses to build if one is missing.

Getter = Callable[[Any], object]


def _instance_getters() -> dict[str, Getter]:
    out: dict[str, Callable[[InstanceState], object]] = {
        "hakeeperInstanceState": lambda i: i.state,
        "hakeeperInstanceVrid": lambda i: i.config.virtual_router_id,
        "hakeeperInstanceInterface": lambda i: i.config.interface,
        "hakeeperInstanceVmacInterface": lambda i: i.config.vmac_interface or "",
        "hakeeperInstanceFamily": lambda i: _family(i.config.family),
        "hakeeperInstanceVersion": lambda i: f"vrrpv{i.config.version}",
        "hakeeperInstanceBasePriority": lambda i: i.base_priority,
        "hakeeperInstanceConfigPriority": lambda i: i.config.priority,
        "hakeeperInstancePriority": lambda i: i.effective_priority,
        "hakeeperInstancePriorityOverride": lambda i: i.priority_override or 0,
        "hakeeperInstanceAdvertInt": lambda i: _centi(i.config.advert_int),
        "hakeeperInstanceMasterAdvertInt": lambda i: _centi(i.master_adver_interval),
        "hakeeperInstancePreempt": lambda i: not i.config.nopreempt,
        "hakeeperInstancePreemptDelay": lambda i: _centi(i.config.preempt_delay),
        "hakeeperInstanceMasterAddress": lambda i: i.master_address or "",
        "hakeeperInstanceSyncGroup": lambda i: i.sync_group or "",
        "hakeeperInstanceMaintenance": lambda i: i.maintenance,
        "hakeeperInstanceYielding": lambda i: i.yielding,
        "hakeeperInstanceVipsPresent": lambda i: i.vips_present,
        "hakeeperInstanceLastTransition": lambda i: date_and_time(i.last_transition),
        "hakeeperInstanceLastReason": lambda i: i.last_reason,
    }
    for c in mib.INSTANCE_TABLE.columns:
        if c.syntax == "Counter32" and c.source is not None:
            out[c.name] = lambda i, s=c.source: getattr(i.stats, s)
    return out


VipRow = tuple["InstanceState", "VirtualAddress", bool]  # instance, address, excluded

_VIP_GETTERS: dict[str, Callable[[VipRow], object]] = {
    "hakeeperVipFamily": lambda r: _family(r[1].family),
    "hakeeperVipAddress": lambda r: str(r[1].address),
    "hakeeperVipPrefixLength": lambda r: r[1].prefixlen,
    "hakeeperVipInterface": lambda r: r[1].dev or r[0].config.interface,
    "hakeeperVipLabel": lambda r: r[1].label or "",
    "hakeeperVipExcluded": lambda r: r[2],
    # the model knows presence per instance: all of its addresses are added and removed at once
    "hakeeperVipPresent": lambda r: r[0].vips_present,
}

# a TrackerView (hakeeper.track.tracking), read as D-Bus's Instance.Trackers reads it
_TRACKER_GETTERS: dict[str, Callable[[Any], object]] = {
    "hakeeperTrackerKind": lambda t: t.kind,
    "hakeeperTrackerName": lambda t: t.name,
    "hakeeperTrackerState": lambda t: t.state,
    "hakeeperTrackerWeight": lambda t: t.weight,
    "hakeeperTrackerReverse": lambda t: t.reverse,
    "hakeeperTrackerHasValue": lambda t: t.value is not None,
    "hakeeperTrackerValue": lambda t: t.value or 0,
    "hakeeperTrackerContribution": lambda t: t.contribution if t.contribution is not None else 0,
    "hakeeperTrackerFaults": lambda t: t.contribution is None,
    "hakeeperTrackerViaGroup": lambda t: t.via_group or "",
}

_GROUP_GETTERS: dict[str, Callable[[GroupState], object]] = {
    "hakeeperSyncGroupState": lambda g: g.state,
    "hakeeperSyncGroupMemberCount": lambda g: len(g.config.group),
    "hakeeperSyncGroupLastReason": lambda g: g.last_reason,
}

MemberRow = tuple[str, "InstanceState | None"]  # member name, its instance if it runs

_MEMBER_GETTERS: dict[str, Callable[[MemberRow], object]] = {
    "hakeeperSyncGroupMemberInstance": lambda r: r[0],
    "hakeeperSyncGroupMemberState": lambda r: r[1].state if r[1] is not None else None,
}


def alive_weight(vs: VirtualServerState) -> int:
    """What the quorum is measured against (D-Bus VirtualServer.AliveWeight)."""
    return sum(r.weight for r in vs.real_servers.values() if r.alive)


def _vs_getters() -> dict[str, Getter]:
    out: dict[str, Callable[[VirtualServerState], object]] = {
        "hakeeperVirtualServerFamily": lambda v: _family(v.config.family),
        "hakeeperVirtualServerAddress": lambda v: _str(v.config.address),
        "hakeeperVirtualServerPort": lambda v: v.config.port or 0,
        "hakeeperVirtualServerFwmark": lambda v: v.config.fwmark or 0,
        "hakeeperVirtualServerGroup": lambda v: v.config.group or "",
        "hakeeperVirtualServerProtocol": lambda v: v.config.protocol,
        "hakeeperVirtualServerScheduler": lambda v: v.config.lvs_sched,
        "hakeeperVirtualServerMethod": lambda v: v.config.lvs_method,
        "hakeeperVirtualServerPersistence": lambda v: v.config.persistence_timeout or 0,
        "hakeeperVirtualServerQuorum": lambda v: v.config.quorum,
        "hakeeperVirtualServerHysteresis": lambda v: v.config.hysteresis,
        "hakeeperVirtualServerQuorumState": lambda v: "up" if v.quorum_up else "down",
        "hakeeperVirtualServerSorryServer": lambda v: (
            v.sorry_server.config.name if v.sorry_server is not None else ""
        ),
        "hakeeperVirtualServerSorryActive": lambda v: v.sorry_active,
        "hakeeperVirtualServerAliveWeight": alive_weight,
        "hakeeperVirtualServerRsTotal": lambda v: len(v.real_servers),
        "hakeeperVirtualServerRsAlive": lambda v: sum(
            1 for r in v.real_servers.values() if r.alive
        ),
        "hakeeperVirtualServerQuorumTime": lambda v: date_and_time(v.last_quorum_change),
    }
    for c in mib.VIRTUAL_SERVER_TABLE.columns:
        if c.syntax == "Counter64" and c.source is not None:
            out[c.name] = lambda v, s=c.source: v.counters.get(s, 0)
    return out


def _rs_getters() -> dict[str, Getter]:
    out: dict[str, Callable[[RealServerState], object]] = {
        "hakeeperRealServerFamily": lambda r: _family(r.config.family),
        "hakeeperRealServerAddress": lambda r: str(r.config.address),
        "hakeeperRealServerPort": lambda r: r.config.port or 0,
        "hakeeperRealServerState": lambda r: "up" if r.alive else "down",
        "hakeeperRealServerEnabled": lambda r: r.enabled,
        "hakeeperRealServerWeight": lambda r: r.weight,
        "hakeeperRealServerConfigWeight": lambda r: r.config.weight,
        "hakeeperRealServerWeightSet": lambda r: r.weight_override is not None,
        "hakeeperRealServerInPool": lambda r: r.in_pool,
        "hakeeperRealServerPoolWeight": lambda r: -1 if r.pool_weight is None else r.pool_weight,
        "hakeeperRealServerSorryServer": lambda r: r.sorry,
        "hakeeperRealServerLastChange": lambda r: date_and_time(r.last_change),
        "hakeeperRealServerLastDetail": lambda r: r.last_detail,
        "hakeeperRealServerFailedCheckers": lambda r: len(r.failed_checkers),
    }
    for c in mib.REAL_SERVER_TABLE.columns:
        if c.syntax == "Counter64" and c.source is not None:
            out[c.name] = lambda r, s=c.source: r.counters.get(s, 0)
    return out


def _str(value: object) -> str:
    return "" if value is None else str(value)


# which table holds a column (notification objects are named by column)
_TABLE_OF: dict[str, mib.Table] = {c.name: t for t in mib.TABLES for c in t.columns}
_PREVIOUS = {
    mib.INSTANCE_TABLE.name: "hakeeperInstancePreviousState",
    mib.SYNC_GROUP_TABLE.name: "hakeeperSyncGroupPreviousState",
}


@dataclass(slots=True)
class _Remembered:
    """A state as notifications last saw it: the one before, and the event that changed it
    (so the daemon's hook and this view's own listener may see an event in either order)."""

    current: object
    previous: object = None
    by: Event | None = None


@dataclass(slots=True)
class _SetTx:
    refused: bool = False
    committed: bool = False


class HakeeperMib(MibTree):
    """HAKEEPER-MIB as one `MibView`; give `registrations()` to the AgentX Subagent and call
    `notifications_for(event)` for every runtime Event (it returns what to send).

    `control` carries out Sets (hakeeper.control.Control); `clock` is the wall clock the
    model's timestamps use (the uptime scalar reads it)."""

    def __init__(
        self,
        runtime: Runtime,
        control: Control,
        *,
        clock: Callable[[], float] = time.time,
        max_age: float | None = 5.0,
    ) -> None:
        super().__init__(max_age=max_age, clock=time.monotonic)
        self.runtime = runtime
        self.control = control
        self.wall = clock
        # table name -> column name -> (row key -> wire value), for cells and varbinds
        self._cells: dict[str, dict[str, Callable[[Any], Value | None]]] = {}
        self._scalars: dict[str, Callable[[], Value | None]] = {}
        self._seen: dict[tuple[str, ...], _Remembered] = {}
        self._set_txs: dict[int, _SetTx] = {}
        self._build()
        self._seed()
        runtime.subscribe(self._follow)

    def detach(self) -> None:
        """Stop following the model (the view is being replaced)."""
        self.runtime.unsubscribe(self._follow)

    def registrations(self) -> list[Registration]:
        return [Registration(mib.ROOT)]

    # --- resolving row keys against the live model ---------------------------------------

    def _instance(self, name: str) -> InstanceState | None:
        return self.runtime.instances.get(name)

    def _vip(self, key: tuple[str, int]) -> VipRow | None:
        inst = self.runtime.instances.get(key[0])
        if inst is None:
            return None
        c = inst.config
        pos = key[1] - 1
        if pos < len(c.virtual_ipaddress):
            return inst, c.virtual_ipaddress[pos], False
        pos -= len(c.virtual_ipaddress)
        if pos < len(c.virtual_ipaddress_excluded):
            return inst, c.virtual_ipaddress_excluded[pos], True
        return None

    def _tracker(self, key: tuple[str, int]) -> Any:
        inst = self.runtime.instances.get(key[0])
        if inst is None or inst.trackers is None:
            return None
        views = inst.trackers()
        return views[key[1] - 1] if key[1] <= len(views) else None

    def _group(self, name: str) -> GroupState | None:
        return self.runtime.groups.get(name)

    def _member(self, key: tuple[str, int]) -> MemberRow | None:
        group = self.runtime.groups.get(key[0])
        if group is None or key[1] > len(group.config.group):
            return None
        name = group.config.group[key[1] - 1]
        return name, self.runtime.instances.get(name)

    def _vs(self, name: str) -> VirtualServerState | None:
        return self.runtime.virtual_servers.get(name)

    def _rs(self, key: tuple[str, str]) -> RealServerState | None:
        vs = self.runtime.virtual_servers.get(key[0])
        if vs is None:
            return None
        rs = vs.real_servers.get(key[1])
        if rs is None and vs.sorry_server is not None and vs.sorry_server.config.name == key[1]:
            rs = vs.sorry_server
        return rs

    # --- the rows of each table, in the model's order (the tree sorts them) --------------

    def _instance_keys(self) -> Iterator[str]:
        return iter(list(self.runtime.instances))

    def _vip_keys(self) -> Iterator[tuple[str, int]]:
        for name, inst in list(self.runtime.instances.items()):
            c = inst.config
            for pos in range(len(c.virtual_ipaddress) + len(c.virtual_ipaddress_excluded)):
                yield name, pos + 1

    def _tracker_keys(self) -> Iterator[tuple[str, int]]:
        for name, inst in list(self.runtime.instances.items()):
            if inst.trackers is not None:
                for pos in range(len(inst.trackers())):
                    yield name, pos + 1

    def _group_keys(self) -> Iterator[str]:
        return iter(list(self.runtime.groups))

    def _member_keys(self) -> Iterator[tuple[str, int]]:
        for name, group in list(self.runtime.groups.items()):
            for pos in range(len(group.config.group)):
                yield name, pos + 1

    def _vs_keys(self) -> Iterator[str]:
        return iter(list(self.runtime.virtual_servers))

    def _rs_keys(self) -> Iterator[tuple[str, str]]:
        for name, vs in list(self.runtime.virtual_servers.items()):
            for rs in vs.real_servers:
                yield name, rs
            if vs.sorry_server is not None:
                yield name, vs.sorry_server.config.name

    # --- indexes (None: a name too long for the index's SIZE leaves the row out) ----------

    @staticmethod
    def name_index(name: str, max_len: int = mib.NAME_MAX) -> Oid | None:
        try:
            return mib.name_index(name, max_len)
        except ValueError:
            return None

    def _named(self, max_len: int) -> Callable[[str], Oid | None]:
        return lambda name: self.name_index(name, max_len)

    def _positioned(self, key: tuple[str, int]) -> Oid | None:
        base = self.name_index(key[0])
        return None if base is None or key[1] > 65535 else (*base, key[1])

    def _rs_index(self, key: tuple[str, str]) -> Oid | None:
        vs = self.name_index(key[0], mib.VS_NAME_MAX)
        rs = self.name_index(key[1], mib.RS_NAME_MAX)
        return None if vs is None or rs is None else (*vs, *rs)

    # --- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        self._build_scalars()
        writable_instance = {"hakeeperInstancePriorityOverride": self._priority_writable()}
        writable_rs = {
            "hakeeperRealServerEnabled": self._rs_writable(self._check_enabled, self._set_enabled),
            "hakeeperRealServerWeight": self._rs_writable(self._check_weight, self._set_weight),
            "hakeeperRealServerWeightSet": self._rs_writable(
                self._check_weight_set, self._set_weight_set
            ),
        }
        self._table(
            mib.INSTANCE_TABLE,
            self._instance_keys,
            self._named(mib.NAME_MAX),
            self._instance,
            _instance_getters(),
            writable_instance,
        )
        self._table(mib.VIP_TABLE, self._vip_keys, self._positioned, self._vip, _VIP_GETTERS)
        self._table(
            mib.TRACKER_TABLE,
            self._tracker_keys,
            self._positioned,
            self._tracker,
            _TRACKER_GETTERS,
        )
        self._table(
            mib.SYNC_GROUP_TABLE,
            self._group_keys,
            self._named(mib.NAME_MAX),
            self._group,
            _GROUP_GETTERS,
        )
        self._table(
            mib.SYNC_GROUP_MEMBER_TABLE,
            self._member_keys,
            self._positioned,
            self._member,
            _MEMBER_GETTERS,
        )
        self._table(
            mib.VIRTUAL_SERVER_TABLE,
            self._vs_keys,
            self._named(mib.VS_NAME_MAX),
            self._vs,
            _vs_getters(),
        )
        self._table(
            mib.REAL_SERVER_TABLE,
            self._rs_keys,
            self._rs_index,
            self._rs,
            _rs_getters(),
            writable_rs,
        )

    def _build_scalars(self) -> None:
        rt = self.runtime
        meanings: dict[str, Callable[[], object]] = {
            "hakeeperVersion": lambda: __version__,
            "hakeeperRouterId": lambda: rt.router_id,
            "hakeeperConfigFile": lambda: rt.config_file,
            "hakeeperStartTime": lambda: date_and_time(rt.started),
            "hakeeperUptime": lambda: _centi(self.wall() - rt.started),
            "hakeeperReloads": lambda: rt.reloads,
            "hakeeperLvsBackend": lambda: rt.lvs_backend or "none",
            "hakeeperInstanceCount": lambda: len(rt.instances),
            "hakeeperSyncGroupCount": lambda: len(rt.groups),
            "hakeeperVirtualServerCount": lambda: len(rt.virtual_servers),
        }
        for s in mib.GLOBAL_SCALARS:
            get = meanings.get(s.name)
            if get is None and s.column.source is not None:  # a daemon-wide counter
                get = _bind(lambda src: rt.global_counters.get(src, 0), s.column.source)
            if get is None:
                raise ValueError(f"{s.name}: no model value")
            cell = _bind_scalar(s.column, get)
            self._scalars[s.name] = cell
            self.scalar(s.oid, cell)

    def _table(
        self,
        spec: mib.Table,
        keys: Callable[[], Iterator[Any]],
        index: Callable[[Any], Oid | None],
        resolve: Callable[[Any], Any],
        getters: dict[str, Getter],
        writables: dict[str, Writable[Any]] | None = None,
    ) -> None:
        table = self.table(spec.entry, keys, index)
        cells = self._cells.setdefault(spec.name, {})
        for column in spec.readable():
            get = getters.get(column.name)
            if get is None:
                raise ValueError(f"{column.name}: no model value")
            cell = _bind_cell(column, resolve, get)
            cells[column.name] = cell
            table.column(column.subid, cell, (writables or {}).get(column.name))

    # --- Sets ----------------------------------------------------------------------------

    def _priority_writable(self) -> Writable[str]:
        def check(name: str, value: Value) -> int:
            inst = self.runtime.instances.get(name)
            if inst is None:
                return Error.NO_CREATION
            if not isinstance(value, Gauge32):  # Unsigned32 travels as Gauge32
                return Error.WRONG_TYPE
            if not _in_range(mib.INSTANCE_TABLE.column("hakeeperInstancePriorityOverride"), value):
                return Error.WRONG_VALUE
            if value.value and inst.config.priority == _OWNER:
                return Error.INCONSISTENT_VALUE  # the address owner stays 255
            return Error.NO_ERROR

        def apply(name: str, value: Value) -> Callable[[], None]:
            inst = self.runtime.instances[name]
            before = inst.priority_override
            assert isinstance(value, Gauge32)
            self.control.set_priority(name, value.value or None)
            return lambda: self.control.set_priority(name, before)

        return Writable(check, apply)

    def _rs_writable(
        self,
        check: Callable[[RealServerState, Value], int],
        apply: Callable[[tuple[str, str], RealServerState, Value], Callable[[], None]],
    ) -> Writable[tuple[str, str]]:
        def checked(key: tuple[str, str], value: Value) -> int:
            rs = self._rs(key)
            if rs is None:
                return Error.NO_CREATION
            if rs.sorry:  # no control reaches a sorry server (D-Bus has no object for it)
                return Error.NOT_WRITABLE
            return check(rs, value)

        def applied(key: tuple[str, str], value: Value) -> Callable[[], None]:
            rs = self._rs(key)
            if rs is None:
                raise LookupError(f"{key[0]} {key[1]} is gone")
            return apply(key, rs, value)

        return Writable(checked, applied)

    @staticmethod
    def _check_enabled(rs: RealServerState, value: Value) -> int:
        if not isinstance(value, Integer):
            return Error.WRONG_TYPE
        if value.value not in (mib.TRUE, mib.FALSE):
            return Error.WRONG_VALUE
        return Error.NO_ERROR

    def _set_enabled(
        self, key: tuple[str, str], rs: RealServerState, value: Value
    ) -> Callable[[], None]:
        before = rs.enabled
        assert isinstance(value, Integer)
        self.control.rs_enable(key[0], key[1], value.value == mib.TRUE)
        return lambda: self.control.rs_enable(key[0], key[1], before)

    @staticmethod
    def _check_weight(rs: RealServerState, value: Value) -> int:
        if not isinstance(value, Integer):
            return Error.WRONG_TYPE
        if not 0 <= value.value <= mib.WEIGHT_SET_MAX:  # reads go higher than Sets may
            return Error.WRONG_VALUE
        return Error.NO_ERROR

    def _set_weight(
        self, key: tuple[str, str], rs: RealServerState, value: Value
    ) -> Callable[[], None]:
        before = rs.weight_override
        assert isinstance(value, Integer)
        self.control.rs_weight(key[0], key[1], value.value)
        return lambda: self.control.rs_weight(key[0], key[1], before)

    @staticmethod
    def _check_weight_set(rs: RealServerState, value: Value) -> int:
        if not isinstance(value, Integer):
            return Error.WRONG_TYPE
        # false drops the operator's weight; true has no weight to set (the MIB: wrongValue)
        return Error.NO_ERROR if value.value == mib.FALSE else Error.WRONG_VALUE

    def _set_weight_set(
        self, key: tuple[str, str], rs: RealServerState, value: Value
    ) -> Callable[[], None]:
        before = rs.weight_override
        self.control.rs_weight(key[0], key[1], None)
        return lambda: self.control.rs_weight(key[0], key[1], before)

    # the Set counters (hakeeperSnmpSets / hakeeperSnmpSetsRefused), one per request

    def test_set(self, tx: int, oid: Oid, value: Value) -> int:
        error = super().test_set(tx, oid, value)
        state = self._set_txs.setdefault(tx, _SetTx())
        state.refused |= error != Error.NO_ERROR
        return error

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int:
        error = super().commit_set(tx, oid, value)
        state = self._set_txs.setdefault(tx, _SetTx())
        if error == Error.NO_ERROR:
            state.committed = True
        else:
            state.refused = True
        return error

    def cleanup_set(self, tx: int) -> None:
        super().cleanup_set(tx)
        state = self._set_txs.pop(tx, None)
        if state is None:
            return
        if state.refused:
            self.runtime.count(mib.scalar("hakeeperSnmpSetsRefused").column.source or "")
        elif state.committed:
            self.runtime.count(mib.scalar("hakeeperSnmpSets").column.source or "")

    # --- following the model -------------------------------------------------------------

    def _seed(self) -> None:
        rt = self.runtime
        for name, inst in rt.instances.items():
            self._seen[("instance", name)] = _Remembered(inst.state)
        for name, group in rt.groups.items():
            self._seen[("group", name)] = _Remembered(group.state)
        for name in rt.virtual_servers:
            self._seed_vs(name)

    def _seed_vs(self, name: str) -> None:
        vs = self.runtime.virtual_servers.get(name)
        if vs is None:
            return
        self._seen[("vs", name)] = _Remembered(vs.quorum_up)
        for rs_name, rs in vs.real_servers.items():
            self._seen[("rs", name, rs_name)] = _Remembered(rs.alive)

    def _follow(self, event: Event) -> None:
        changed = set(event.changed)
        if event.kind == "global" or changed & {"added", "removed", "config"}:
            self.invalidate()  # rows, their VIPs or their trackers may have changed
        if "removed" in changed:
            self._forget(event)
        elif "added" in changed:
            if event.kind == "virtual_server":
                self._seed_vs(event.name)
            elif event.kind in ("instance", "group"):
                self._note(event)
        else:
            self._note(event)

    def _forget(self, event: Event) -> None:
        kind = {"instance": "instance", "group": "group", "virtual_server": "vs"}.get(event.kind)
        if kind is None:
            return
        self._seen.pop((kind, event.name), None)
        if kind == "vs":
            for key in [k for k in self._seen if k[0] == "rs" and k[1] == event.name]:
                del self._seen[key]

    def _watched(self, event: Event) -> tuple[tuple[str, ...], object] | None:
        """The remembered key and the live state of what a state event is about."""
        rt = self.runtime
        if event.kind == "instance" and {"state", "added"} & set(event.changed):
            inst = rt.instances.get(event.name)
            return (("instance", event.name), inst.state) if inst is not None else None
        if event.kind == "group" and {"state", "added"} & set(event.changed):
            group = rt.groups.get(event.name)
            return (("group", event.name), group.state) if group is not None else None
        if event.kind == "virtual_server" and "quorum_up" in event.changed:
            vs = rt.virtual_servers.get(event.name)
            return (("vs", event.name), vs.quorum_up) if vs is not None else None
        if event.kind == "real_server" and "alive" in event.changed:
            vs_name, _, rs_name = event.name.rpartition("/")
            rs = self._rs((vs_name, rs_name))
            return (("rs", vs_name, rs_name), rs.alive) if rs is not None else None
        return None

    def _note(self, event: Event) -> _Remembered | None:
        """Remember the state an event is about; idempotent for one event."""
        watched = self._watched(event)
        if watched is None:
            return None
        key, now = watched
        if "added" in event.changed:  # a new object: nothing to notify yet
            self._seen.setdefault(key, _Remembered(now))
            return None
        seen = self._seen.get(key)
        if seen is None:  # an instance or group comes from INIT, as D-Bus signals it
            seen = self._seen[key] = _Remembered("INIT" if key[0] in _STATEFUL else None)
        if seen.current != now:
            seen.previous, seen.current, seen.by = seen.current, now, event
        return seen

    def notifications_for(self, event: Event) -> list[Trap]:
        """What to send for a runtime Event: a state change of an instance or sync group, a
        real server going up or down, a virtual server's quorum gained or lost. Empty when
        the event changed nothing notifications report."""
        seen = self._note(event)
        if seen is None or seen.by is not event:
            return []
        if event.kind == "instance":
            made = self.instance_state_change(event.name, str(seen.previous))
        elif event.kind == "group":
            made = self.sync_group_state_change(event.name, str(seen.previous))
        elif event.kind == "virtual_server":
            made = self.quorum_change(event.name)
        else:
            vs, _, rs = event.name.rpartition("/")
            made = self.real_server_change(vs, rs)
        return [made] if made is not None else []

    # --- notifications: (snmpTrapOID value, varbinds after sysUpTime and snmpTrapOID) ------

    def instance_state_change(self, name: str, previous: str) -> Trap | None:
        """hakeeperInstanceStateChange: `name` left `previous` (a model state: "BACKUP")."""
        index = self.name_index(name)
        if index is None or name not in self.runtime.instances:
            return None
        return self._notification(
            mib.INSTANCE_STATE_CHANGE, {mib.INSTANCE_TABLE.name: (index, name)}, previous
        )

    def sync_group_state_change(self, name: str, previous: str) -> Trap | None:
        index = self.name_index(name)
        if index is None or name not in self.runtime.groups:
            return None
        return self._notification(
            mib.SYNC_GROUP_STATE_CHANGE, {mib.SYNC_GROUP_TABLE.name: (index, name)}, previous
        )

    def real_server_change(self, vs: str, rs: str) -> Trap | None:
        """hakeeperRealServerUp or ...Down, whichever the server is now."""
        server = self._rs((vs, rs))
        vs_index = self.name_index(vs, mib.VS_NAME_MAX)
        rs_index = self._rs_index((vs, rs))
        if server is None or vs_index is None or rs_index is None:
            return None
        kind = mib.REAL_SERVER_UP if server.alive else mib.REAL_SERVER_DOWN
        rows = {
            mib.REAL_SERVER_TABLE.name: (rs_index, (vs, rs)),
            mib.VIRTUAL_SERVER_TABLE.name: (vs_index, vs),
        }
        return self._notification(kind, rows)

    def quorum_change(self, vs: str) -> Trap | None:
        """hakeeperVirtualServerQuorumUp or ...Down, whichever holds now."""
        server = self._vs(vs)
        index = self.name_index(vs, mib.VS_NAME_MAX)
        if server is None or index is None:
            return None
        kind = mib.QUORUM_UP if server.quorum_up else mib.QUORUM_DOWN
        return self._notification(kind, {mib.VIRTUAL_SERVER_TABLE.name: (index, vs)})

    def _notification(
        self,
        kind: mib.Notification,
        rows: dict[str, tuple[Oid, Any]],
        previous: str | None = None,
    ) -> Trap | None:
        varbinds = []
        for name in kind.objects:
            if name in self._scalars:
                value = self._scalars[name]()
                oid: Oid = (*mib.scalar(name).oid, 0)
            else:
                table = _TABLE_OF[name]
                index, key = rows[table.name]
                oid = (*table.column_oid(name), *index)
                if name == _PREVIOUS.get(table.name):
                    value = _encode(table.column(name), previous)
                else:
                    value = self._cells[table.name][name](key)
            if value is None:  # the object went away while we read it
                return None
            varbinds.append(VarBind(oid, value))
        return kind.oid, varbinds


_STATEFUL = ("instance", "group")


def _in_range(column: mib.Column, value: Gauge32 | Integer) -> bool:
    lo, hi = column.range or (_I32_MIN, _U32)
    return lo <= value.value <= hi


def _bind(fn: Callable[[str], object], source: str) -> Callable[[], object]:
    return lambda: fn(source)


def _bind_scalar(column: mib.Column, get: Callable[[], object]) -> Callable[[], Value | None]:
    return lambda: _encode(column, get())


def _bind_cell(
    column: mib.Column, resolve: Callable[[Any], Any], get: Getter
) -> Callable[[Any], Value | None]:
    def cell(key: Any) -> Value | None:
        obj = resolve(key)
        return None if obj is None else _encode(column, get(obj))

    return cell
