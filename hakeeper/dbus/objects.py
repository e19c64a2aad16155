"""hakeeper's own objects: thin views over the runtime model (dbus/README.md is the contract).

Each class reads the model object by name at call time (never a copy) and turns control
methods into calls on the one control layer (hakeeper.control), whichever door they came in by.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from hakeeper import __version__
from hakeeper.dbus.export import Exported, Interface, Method, Prop, Signal
from hakeeper.dbus.names import (
    GROUP_IFACE,
    INSTANCE_IFACE,
    MANAGER_IFACE,
    ROOT_PATH,
    RS_IFACE,
    VS_IFACE,
    group_path,
    instance_path,
    real_server_path,
    virtual_server_path,
)
from hakeeper.state import (
    Event,
    GroupState,
    InstanceState,
    RealServerState,
    Runtime,
    VirtualServerState,
)


class Control(Protocol):
    """What the D-Bus doors may ask of the daemon (implemented by hakeeper.control)."""

    def set_priority(self, instance: str, priority: int | None) -> None: ...
    def failover(self, instance: str) -> None: ...
    def maintenance(self, instance: str, on: bool) -> None: ...
    def send_garp(self, instance: str) -> None: ...
    def group_failover(self, group: str) -> None: ...
    def rs_enable(self, vs: str, rs: str, enabled: bool) -> None: ...
    def rs_weight(self, vs: str, rs: str, weight: int | None) -> None: ...
    def reload(self, dry_run: bool) -> list[str]: ...


def _tracker_row(t: Any) -> tuple[Any, ...]:
    return (
        t.kind,
        t.name,
        t.state,
        t.weight,
        t.reverse,
        t.value is not None,
        t.value or 0,
        t.contribution if t.contribution is not None else 0,
        t.via_group or "",
    )


class InstanceObject(Exported):
    interfaces = (
        Interface(
            INSTANCE_IFACE,
            props=(
                Prop("Name", "s", lambda o: o.m.config.name),
                Prop("State", "s", lambda o: o.m.state),
                Prop("BasePriority", "y", lambda o: o.m.base_priority),
                Prop("ConfigPriority", "y", lambda o: o.m.config.priority),
                Prop("EffectivePriority", "y", lambda o: o.m.effective_priority),
                Prop("PriorityOverridden", "b", lambda o: o.m.priority_override is not None),
                Prop("VRID", "y", lambda o: o.m.config.virtual_router_id),
                Prop("Interface", "s", lambda o: o.m.config.interface),
                Prop("VmacInterface", "s", lambda o: o.m.config.vmac_interface or ""),
                Prop("Family", "s", lambda o: f"IPv{o.m.config.family}"),
                Prop("Version", "y", lambda o: o.m.config.version),
                Prop("AdvertInterval", "d", lambda o: float(o.m.config.advert_int)),
                Prop("MasterAdvertInterval", "d", lambda o: float(o.m.master_adver_interval)),
                Prop("VirtualAddresses", "as", lambda o: _vips(o.m)),
                Prop("UnicastPeers", "as", lambda o: [str(p) for p in o.m.config.unicast_peer]),
                Prop("MasterAddress", "s", lambda o: o.m.master_address or ""),
                Prop("Preempt", "b", lambda o: not o.m.config.nopreempt),
                Prop("PreemptDelay", "d", lambda o: float(o.m.config.preempt_delay)),
                Prop("SyncGroup", "s", lambda o: o.m.sync_group or ""),
                Prop("Maintenance", "b", lambda o: o.m.maintenance),
                Prop("Yielding", "b", lambda o: o.m.yielding),
                Prop("LastTransition", "d", lambda o: o.m.last_transition or 0.0),
                Prop("LastReason", "s", lambda o: o.m.last_reason),
                Prop(
                    "Trackers",
                    "a(sssibbxis)",
                    lambda o: [_tracker_row(t) for t in o.m.trackers()] if o.m.trackers else [],
                ),
                Prop("Counters", "a{st}", lambda o: o.m.stats.as_dict(), emits_change=False),
            ),
            methods=(
                Method(
                    "SetPriority",
                    lambda o, p: o.control.set_priority(o.name, p),
                    in_args=(("priority", "y"),),
                ),
                Method("ResetPriority", lambda o: o.control.set_priority(o.name, None)),
                Method("Failover", lambda o: o.control.failover(o.name)),
                Method(
                    "Maintenance",
                    lambda o, on: o.control.maintenance(o.name, on),
                    in_args=(("on", "b"),),
                ),
                Method("SendGarp", lambda o: o.control.send_garp(o.name)),
            ),
            signals=(Signal("StateChanged", (("old", "s"), ("new", "s"), ("reason", "s"))),),
        ),
    )

    def __init__(self, runtime: Runtime, control: Control, name: str) -> None:
        self.runtime, self.control, self.name = runtime, control, name
        self.path = instance_path(name)

    @property
    def m(self) -> InstanceState:
        return self.runtime.instances[self.name]

    def exists(self) -> bool:
        return self.name in self.runtime.instances


def _vips(m: InstanceState) -> list[str]:
    return [f"{v.address}/{v.prefixlen}" for v in m.config.virtual_ipaddress]


class GroupObject(Exported):
    interfaces = (
        Interface(
            GROUP_IFACE,
            props=(
                Prop("Name", "s", lambda o: o.m.config.name),
                Prop("State", "s", lambda o: o.m.state),
                Prop("Members", "as", lambda o: list(o.m.config.group)),
                Prop("MemberPaths", "ao", lambda o: [instance_path(n) for n in o.m.config.group]),
                Prop("LastReason", "s", lambda o: o.m.last_reason),
            ),
            methods=(Method("Failover", lambda o: o.control.group_failover(o.name)),),
            signals=(Signal("StateChanged", (("old", "s"), ("new", "s"), ("reason", "s"))),),
        ),
    )

    def __init__(self, runtime: Runtime, control: Control, name: str) -> None:
        self.runtime, self.control, self.name = runtime, control, name
        self.path = group_path(name)

    @property
    def m(self) -> GroupState:
        return self.runtime.groups[self.name]

    def exists(self) -> bool:
        return self.name in self.runtime.groups


class VirtualServerObject(Exported):
    interfaces = (
        Interface(
            VS_IFACE,
            props=(
                Prop("Name", "s", lambda o: o.m.name),
                Prop("Address", "s", lambda o: _str(o.m.config.address)),
                Prop("Port", "q", lambda o: o.m.config.port or 0),
                Prop("Fwmark", "u", lambda o: o.m.config.fwmark or 0),
                Prop("Group", "s", lambda o: o.m.config.group or ""),
                Prop("Family", "s", lambda o: f"IPv{o.m.config.family}"),
                Prop("Protocol", "s", lambda o: o.m.config.protocol),
                Prop("Scheduler", "s", lambda o: o.m.config.lvs_sched),
                Prop("Method", "s", lambda o: o.m.config.lvs_method),
                Prop("PersistenceTimeout", "u", lambda o: o.m.config.persistence_timeout or 0),
                Prop("Quorum", "u", lambda o: o.m.config.quorum),
                Prop("Hysteresis", "u", lambda o: o.m.config.hysteresis),
                Prop("QuorumUp", "b", lambda o: o.m.quorum_up),
                Prop("SorryServer", "s", lambda o: _sorry(o.m)),
                Prop("SorryServerActive", "b", lambda o: o.m.sorry_active),
                Prop("AliveWeight", "u", lambda o: _alive_weight(o.m)),
                Prop(
                    "RealServers",
                    "ao",
                    lambda o: [real_server_path(o.name, r) for r in o.m.real_servers],
                ),
                Prop("Counters", "a{st}", lambda o: dict(o.m.counters), emits_change=False),
            ),
        ),
    )

    def __init__(self, runtime: Runtime, name: str) -> None:
        self.runtime, self.name = runtime, name
        self.path = virtual_server_path(name)

    @property
    def m(self) -> VirtualServerState:
        return self.runtime.virtual_servers[self.name]

    def exists(self) -> bool:
        return self.name in self.runtime.virtual_servers


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _str(value: object) -> str:
    return "" if value is None else str(value)


def _sorry(vs: VirtualServerState) -> str:
    return vs.sorry_server.config.name if vs.sorry_server is not None else ""


def _alive_weight(vs: VirtualServerState) -> int:
    return sum(r.weight for r in vs.real_servers.values() if r.alive)


def _checker_rows(rs: RealServerState) -> list[tuple[str, bool, int, int, str]]:
    return [
        (c["kind"], bool(c["up"]), c["checks"] or 0, c["failures"] or 0, c["last_detail"] or "")
        for c in (rs.checks() if rs.checks else [])
    ]


class RealServerObject(Exported):
    interfaces = (
        Interface(
            RS_IFACE,
            props=(
                Prop("Name", "s", lambda o: o.m.config.name),
                Prop("VirtualServer", "o", lambda o: virtual_server_path(o.vs)),
                Prop("VirtualServerName", "s", lambda o: o.vs),
                Prop("Address", "s", lambda o: str(o.m.config.address)),
                Prop("Port", "q", lambda o: o.m.config.port or 0),
                Prop("Alive", "b", lambda o: o.m.alive),
                Prop("Enabled", "b", lambda o: o.m.enabled),
                Prop("Weight", "i", lambda o: o.m.weight),
                Prop("ConfigWeight", "i", lambda o: o.m.config.weight),
                Prop("WeightOverridden", "b", lambda o: o.m.weight_override is not None),
                Prop("InPool", "b", lambda o: o.m.in_pool),
                Prop(
                    "PoolWeight", "i", lambda o: -1 if o.m.pool_weight is None else o.m.pool_weight
                ),
                Prop("LastChange", "d", lambda o: o.m.last_change or 0.0),
                Prop("LastDetail", "s", lambda o: o.m.last_detail),
                Prop("Checkers", "a(sbtts)", lambda o: _checker_rows(o.m)),
                Prop("Counters", "a{st}", lambda o: dict(o.m.counters), emits_change=False),
            ),
            methods=(
                Method("Enable", lambda o: o.control.rs_enable(o.vs, o.name, True)),
                Method("Disable", lambda o: o.control.rs_enable(o.vs, o.name, False)),
                Method(
                    "SetWeight",
                    lambda o, w: o.control.rs_weight(o.vs, o.name, w),
                    in_args=(("weight", "i"),),
                ),
                Method("ResetWeight", lambda o: o.control.rs_weight(o.vs, o.name, None)),
            ),
        ),
    )

    def __init__(self, runtime: Runtime, control: Control, vs: str, name: str) -> None:
        self.runtime, self.control, self.vs, self.name = runtime, control, vs, name
        self.path = real_server_path(vs, name)

    @property
    def m(self) -> RealServerState:
        return self.runtime.virtual_servers[self.vs].real_servers[self.name]

    def exists(self) -> bool:
        vs = self.runtime.virtual_servers.get(self.vs)
        return vs is not None and self.name in vs.real_servers


class ManagerObject(Exported):
    interfaces = (
        Interface(
            MANAGER_IFACE,
            props=(
                Prop("Version", "s", lambda o: __version__),
                Prop("ConfigFile", "s", lambda o: o.runtime.config_file),
                Prop("RouterId", "s", lambda o: o.runtime.router_id),
                Prop("StartTime", "d", lambda o: float(o.runtime.started)),
                Prop("Reloads", "u", lambda o: o.runtime.reloads),
                Prop("LvsBackend", "s", lambda o: o.runtime.lvs_backend),
                Prop(
                    "Counters",
                    "a{st}",
                    lambda o: dict(o.runtime.global_counters),
                    emits_change=False,
                ),
            ),
            methods=(
                Method(
                    "Reload",
                    lambda o: o.control.reload(dry_run=False),
                    out_args=(("changes", "as"),),
                ),
                Method(
                    "CheckReload",
                    lambda o: o.control.reload(dry_run=True),
                    out_args=(("changes", "as"),),
                ),
                Method(
                    "Dump",
                    lambda o: json.dumps(o.runtime.as_dict()),
                    out_args=(("json", "s"),),
                    control=False,
                ),
                Method(
                    "ListInstances",
                    lambda o: o.instance_rows(),
                    out_args=(("instances", "a(ssssyyyydassbbdso)"),),
                    control=False,
                    bulk=True,
                ),
                Method(
                    "ListGroups",
                    lambda o: o.group_rows(),
                    out_args=(("groups", "a(ssasso)"),),
                    control=False,
                    bulk=True,
                ),
                Method(
                    "ListVirtualServers",
                    lambda o: o.vs_rows(),
                    out_args=(("virtual_servers", "a(sssssbbuuuo)"),),
                    control=False,
                    bulk=True,
                ),
                Method(
                    "ListRealServers",
                    lambda o: o.rs_rows(),
                    out_args=(("real_servers", "a(ssbbbiisuo)"),),
                    control=False,
                    bulk=True,
                ),
            ),
            signals=(Signal("Reloaded", (("changes", "as"),)),),
        ),
    )

    def __init__(self, runtime: Runtime, control: Control) -> None:
        self.runtime, self.control = runtime, control
        self.path = ROOT_PATH

    def instance_rows(self) -> Iterator[tuple[Any, ...]]:
        for name, m in list(self.runtime.instances.items()):
            c = m.config
            yield (
                name, m.state, c.interface, f"IPv{c.family}", c.virtual_router_id, c.version,
                m.base_priority, m.effective_priority, float(c.advert_int), _vips(m),
                m.master_address or "", not c.nopreempt, m.maintenance,
                m.last_transition or 0.0, m.last_reason, instance_path(name),
            )  # fmt: skip

    def group_rows(self) -> Iterator[tuple[Any, ...]]:
        for name, g in list(self.runtime.groups.items()):
            yield (name, g.state, list(g.config.group), g.last_reason, group_path(name))

    def vs_rows(self) -> Iterator[tuple[Any, ...]]:
        for name, vs in list(self.runtime.virtual_servers.items()):
            c = vs.config
            where = f"fwmark {c.fwmark}" if c.fwmark else (f"group {c.group}" if c.group else
                    f"{c.address}")  # fmt: skip
            alive = sum(1 for r in vs.real_servers.values() if r.alive)
            yield (
                name, c.protocol, c.lvs_sched, c.lvs_method, where, vs.quorum_up,
                vs.sorry_active, alive, len(vs.real_servers), vs.counters.get("conns", 0),
                virtual_server_path(name),
            )  # fmt: skip

    def rs_rows(self) -> Iterator[tuple[Any, ...]]:
        for vs_name, vs in list(self.runtime.virtual_servers.items()):
            for name, r in list(vs.real_servers.items()):
                yield (
                    vs_name, name, r.alive, r.enabled, r.in_pool, r.weight,
                    _or_minus_one(r.pool_weight), r.last_detail,
                    r.counters.get("conns", 0), real_server_path(vs_name, name),
                )  # fmt: skip


class SignalSink(Protocol):
    def emit(self, path: str, iface: str, member: str, signature: str, body: list[Any]) -> None: ...


class HakeeperObjects:
    """The set of hakeeper's own objects the model holds now, and which of them an event
    touches. The service calls `wanted()` after additions/removals and `touched()` per event."""

    bus_name = "org.hakeeper.Hakeeper1"
    tree = ROOT_PATH
    object_manager = ROOT_PATH

    def __init__(self, runtime: Runtime, control: Control) -> None:
        self.runtime, self.control = runtime, control
        self.manager = ManagerObject(runtime, control)
        self._states: dict[str, str] = {}  # last state signalled per path (to name the old one)

    def wanted(self, have: dict[str, Exported]) -> dict[str, Exported]:
        """Every object the model holds now, reusing the ones already exported."""
        rt, ctl = self.runtime, self.control
        out: dict[str, Exported] = {ROOT_PATH: self.manager}

        def keep(path: str, make: Any) -> None:
            out[path] = have.get(path) or make()

        for name, view in rt.instances.items():
            keep(instance_path(name), lambda n=name: InstanceObject(rt, ctl, n))
            self._states.setdefault(instance_path(name), view.state)
        for name, group in rt.groups.items():
            keep(group_path(name), lambda n=name: GroupObject(rt, ctl, n))
            self._states.setdefault(group_path(name), group.state)
        for vs_name, vs in rt.virtual_servers.items():
            keep(virtual_server_path(vs_name), lambda n=vs_name: VirtualServerObject(rt, n))
            for rs_name in vs.real_servers:
                keep(
                    real_server_path(vs_name, rs_name),
                    lambda v=vs_name, r=rs_name: RealServerObject(rt, ctl, v, r),
                )
        for path in [p for p in self._states if p not in out]:
            del self._states[path]
        return out

    def on_event(self, event: Event, service: SignalSink) -> None:
        """StateChanged(old, new, reason) for every transition, as it happens; Reloaded."""
        if event.kind == "global" and event.name == "reload":
            changes = list(self.runtime.last_reload)
            service.emit(ROOT_PATH, MANAGER_IFACE, "Reloaded", "as", [changes])
            return
        if "state" not in event.changed:
            return
        if event.kind == "instance":
            view: InstanceState | GroupState | None = self.runtime.instances.get(event.name)
            path, iface = instance_path(event.name), INSTANCE_IFACE
        elif event.kind == "group":
            view = self.runtime.groups.get(event.name)
            path, iface = group_path(event.name), GROUP_IFACE
        else:
            return
        if view is None:
            return
        old = self._states.get(path, "INIT")
        if old != view.state:
            self._states[path] = view.state
            service.emit(path, iface, "StateChanged", "sss", [old, view.state, view.last_reason])

    @staticmethod
    def touched(event: Event) -> list[str]:
        """Paths whose properties an event may have changed."""
        if event.kind == "instance":
            return [instance_path(event.name)]
        if event.kind == "group":
            return [group_path(event.name)]
        if event.kind == "virtual_server":
            return [virtual_server_path(event.name)]
        if event.kind == "real_server":
            vs, _, rs = event.name.rpartition("/")
            return [real_server_path(vs, rs), virtual_server_path(vs)]
        if event.kind == "global":
            return [ROOT_PATH]
        return []
