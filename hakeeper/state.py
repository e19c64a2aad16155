"""The one runtime model every view (JSON dump, hakeeperctl, later D-Bus and SNMP) reads.

Views never keep a copy: they read these objects and subscribe to their change events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hakeeper import __version__
from hakeeper.config.lvs_model import RealServer, VirtualServer
from hakeeper.config.model import VrrpInstance, VrrpSyncGroup
from hakeeper.vrrp.stats import InstanceStats

log = logging.getLogger("hakeeper.state")


@dataclass(frozen=True)
class Event:
    """A change in the model: `kind` is e.g. 'instance', `name` the object, `changed` the keys."""

    kind: str
    name: str
    changed: tuple[str, ...]


Listener = Callable[[Event], None]
# (instance name, the receive check's reason, the sender): an advert the instance dropped
DropListener = Callable[[str, str, str], None]


@dataclass(slots=True)
class InstanceState:
    """Live state of one VRRP instance; the engine writes it, views read it."""

    config: VrrpInstance
    stats: InstanceStats
    state: str = "INIT"
    effective_priority: int = 0
    master_address: str | None = None
    master_adver_interval: float = 0.0
    last_transition: float | None = None  # wall clock, for humans
    last_reason: str = ""
    vips_present: bool = False
    priority_override: int | None = None  # an operator's base priority (SetPriority)
    maintenance: bool = False  # out of elections by an operator's order
    yielding: bool = False  # handed mastership away (Failover) and not taking it back
    sync_group: str | None = None
    # the trackers' live views, computed on demand by the tracking side (never copied)
    trackers: Callable[[], list[Any]] | None = None

    @property
    def base_priority(self) -> int:
        """The priority elections start from: the operator's, else the configured one."""
        override = self.priority_override
        return override if override is not None else self.config.priority

    def as_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": c.name,
            "state": self.state,
            "interface": c.interface,
            "vmac_interface": c.vmac_interface,
            "virtual_router_id": c.virtual_router_id,
            "family": f"IPv{c.family}",
            "version": c.version,
            "base_priority": self.base_priority,
            "config_priority": c.priority,
            "effective_priority": self.effective_priority,
            "maintenance": self.maintenance,
            "yielding": self.yielding,
            "sync_group": self.sync_group,
            "advert_int": c.advert_int,
            "master_adver_interval": self.master_adver_interval,
            "preempt": not c.nopreempt,
            "preempt_delay": c.preempt_delay,
            "virtual_ipaddress": [str(v) for v in c.virtual_ipaddress],
            "unicast_peer": [str(p) for p in c.unicast_peer],
            "master_address": self.master_address,
            "last_transition": self.last_transition,
            "last_reason": self.last_reason,
            "trackers": [asdict(t) for t in self.trackers()] if self.trackers else [],
            "stats": self.stats.as_dict(),
        }


@dataclass(slots=True)
class GroupState:
    """Live state of one vrrp_sync_group."""

    config: VrrpSyncGroup
    state: str = "INIT"
    last_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "state": self.state,
            "members": list(self.config.group),
            "last_reason": self.last_reason,
        }


@dataclass(slots=True)
class RealServerState:
    """Live state of one real server (or a sorry server) of a virtual server."""

    config: RealServer
    alive: bool = True  # every checker up (a server without checkers is always alive)
    failed_checkers: set[int] = field(default_factory=set)
    dynamic_weight: int | None = None  # MISC_CHECK misc_dynamic / FILE_CHECK, else None
    in_pool: bool = False  # in the kernel table with a weight above zero
    pool_weight: int | None = None  # the weight the kernel has, None when not in the table
    enabled: bool = True  # False: drained by an operator (weight 0, connections kept)
    weight_override: int | None = None  # an operator's weight, until reset or reload
    last_change: float | None = None  # wall clock of the last up/down
    last_detail: str = ""
    # checker statuses, computed on demand by the checker side (never copied)
    checks: Callable[[], list[dict[str, Any]]] | None = None
    counters: dict[str, int] = field(default_factory=dict)
    sorry: bool = False

    @property
    def weight(self) -> int:
        """The weight the server gets when it is in the pool."""
        if self.weight_override is not None:
            return self.weight_override
        if self.dynamic_weight is not None:
            return self.dynamic_weight
        return self.config.weight

    def as_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": c.name,
            "address": str(c.address),
            "port": c.port,
            "alive": self.alive,
            "enabled": self.enabled,
            "weight": self.weight,
            "config_weight": c.weight,
            "in_pool": self.in_pool,
            "pool_weight": self.pool_weight,
            "sorry_server": self.sorry,
            "failed_checkers": sorted(self.failed_checkers),
            "last_change": self.last_change,
            "last_detail": self.last_detail,
            "checkers": self.checks() if self.checks else [],
            "counters": dict(self.counters),
        }


@dataclass(slots=True)
class VirtualServerState:
    """Live state of one virtual_server: its real servers, quorum and sorry server."""

    config: VirtualServer
    real_servers: dict[str, RealServerState] = field(default_factory=dict)
    sorry_server: RealServerState | None = None
    quorum_up: bool = True
    sorry_active: bool = False
    last_quorum_change: float | None = None
    services: tuple[str, ...] = ()  # the kernel services it expands to (groups: several)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def as_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": c.name,
            "address": str(c.address) if c.address is not None else None,
            "port": c.port,
            "fwmark": c.fwmark,
            "group": c.group,
            "family": f"IPv{c.family}",
            "protocol": c.protocol,
            "lvs_sched": c.lvs_sched,
            "lvs_method": c.lvs_method,
            "persistence_timeout": c.persistence_timeout,
            "quorum": c.quorum,
            "hysteresis": c.hysteresis,
            "quorum_up": self.quorum_up,
            "sorry_server_active": self.sorry_active,
            "alive_weight": sum(r.weight for r in self.real_servers.values() if r.alive),
            "last_quorum_change": self.last_quorum_change,
            "services": list(self.services),
            "real_servers": [r.as_dict() for r in self.real_servers.values()],
            "sorry_server": self.sorry_server.as_dict() if self.sorry_server else None,
            "counters": dict(self.counters),
        }


@dataclass
class Runtime:
    """All live objects of one daemon, and the listeners that turn changes into views."""

    config_file: str = ""
    router_id: str = ""
    started: float = field(default_factory=time.time)
    reloads: int = 0
    last_reload: tuple[str, ...] = ()  # what the last successful reload changed
    instances: dict[str, InstanceState] = field(default_factory=dict)
    groups: dict[str, GroupState] = field(default_factory=dict)
    virtual_servers: dict[str, VirtualServerState] = field(default_factory=dict)
    lvs_backend: str = ""  # "ipvs" or "nftables" once LVS runs
    global_counters: dict[str, int] = field(default_factory=dict)
    _listeners: list[Listener] = field(default_factory=list)
    _drop_listeners: list[DropListener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """A view that goes away (SNMP re-made by a reload) stops following the model."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def subscribe_drops(self, listener: DropListener) -> None:
        """Dropped adverts are no model change (only counters move), so they have their own
        channel: views that report protocol errors (SNMP notifications) listen here."""
        self._drop_listeners.append(listener)

    def unsubscribe_drops(self, listener: DropListener) -> None:
        if listener in self._drop_listeners:
            self._drop_listeners.remove(listener)

    def dropped(self, name: str, reason: str, source: str) -> None:
        for listener in self._drop_listeners:
            try:
                listener(name, reason, source)
            except Exception:  # a broken view must never stop the engine
                log.exception("view failed on a drop of %s (%s)", name, reason)

    def emit(self, kind: str, name: str, *changed: str) -> None:
        event = Event(kind, name, changed)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken view must never stop the engine
                log.exception("view failed on %s", event)

    def count(self, counter: str) -> None:
        self.global_counters[counter] = self.global_counters.get(counter, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "config_file": self.config_file,
            "router_id": self.router_id,
            "started": self.started,
            "reloads": self.reloads,
            "counters": dict(self.global_counters),
            "instances": [i.as_dict() for i in self.instances.values()],
            "groups": [g.as_dict() for g in self.groups.values()],
            "lvs_backend": self.lvs_backend,
            "virtual_servers": [v.as_dict() for v in self.virtual_servers.values()],
        }
