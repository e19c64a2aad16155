"""What a reload from one config to another changes, as lines a keepalived user reads.

It also holds the rule the daemon reloads by (`LIVE_FIELDS`, `identity`): which vrrp_instance
changes apply in place and which make the instance leave and rejoin, so the lines say what
the daemon really does. Pure: configs in, lines out.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from hakeeper.config.build import SCRIPT_KEYWORDS
from hakeeper.config.lvs_model import Checker, RealServer, VirtualServer
from hakeeper.config.model import (
    Config,
    GlobalDefs,
    TrackFile,
    TrackInterface,
    TrackProcess,
    TrackScript,
    VirtualAddress,
    VrrpInstance,
    VrrpSyncGroup,
)

# Fields a reload may change without restarting the instance (the core takes them live).
LIVE_FIELDS = (
    "priority",
    "advert_int",
    "nopreempt",
    "preempt_delay",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "notify",
    "track_script",
    "track_interface",
    "track_file",
    "state",
    "debug",
)


def identity(inst: VrrpInstance) -> VrrpInstance:
    """The instance with its live fields blanked: equal identities reload without a restart."""
    blank = VrrpInstance(inst.name, inst.interface, inst.virtual_router_id)
    return dataclasses.replace(inst, **{f: getattr(blank, f) for f in LIVE_FIELDS})


def renamed(old: Config, new: Config) -> dict[str, VrrpInstance]:
    """Instances a reload renames in place: old name -> new instance. keepalived matches an
    instance across reloads by (interface, virtual_router_id, family), not by name, so a
    renamed one keeps its state; so do we, when nothing else about it needs a restart (one
    of each name only: the old name gone, the new one not there before)."""
    old_names = {i.name for i in old.vrrp_instances}
    new_names = {i.name for i in new.vrrp_instances}
    arrived = {
        (i.interface, i.virtual_router_id, i.family): i
        for i in new.vrrp_instances
        if i.name not in old_names
    }
    out: dict[str, VrrpInstance] = {}
    for inst in old.vrrp_instances:
        if inst.name in new_names:
            continue
        match = arrived.get((inst.interface, inst.virtual_router_id, inst.family))
        if match is None:
            continue
        if identity(dataclasses.replace(inst, name=match.name)) == identity(match):
            out[inst.name] = match
    return out


RESTART = "restart: the instance leaves and rejoins"
RESTART_GLOBAL = "restart: global_defs changed"
RESTART_ALL = "restart of every instance"
# live fields a user may expect to move the state at once; a reload keeps the state and
# only later elections follow them
NO_STATE_CHANGE = frozenset({"priority", "state", "nopreempt", "preempt_delay"})
# argv values, shown as the command line (other lists are joined with commas)
ARGV_FIELDS = SCRIPT_KEYWORDS
SECRET_FIELDS = frozenset({"auth_pass", "password"})  # never written to a log
MAX_VALUE = 40  # a longer value is just "changed"
_TRACK_REFS = (TrackScript, TrackInterface, TrackFile, TrackProcess)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T")
N = TypeVar("N", bound=_Named)


# global_defs keys an instance cannot take live: its sockets join the multicast group at start.
# Every other key is either folded into each instance by the reader (vrrp_version, garp
# defaults, vrrp_strict: the instance's own fields then say whether it restarts) or taken live
# by a running instance (receive checks) or not VRRP's at all (notify, SMTP, SNMP, D-Bus, LVS).
RESTART_GLOBALS = ("vrrp_mcast_group4", "vrrp_mcast_group6")


# global_defs keys of the SNMP side: a change re-makes the SNMP service (a new AgentX session,
# the embedded agent bound again), never an instance.
SNMP_GLOBALS = (
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "snmp_socket",
    "snmp_agent",
)
SNMP_RESTART = "SNMP restarts, VRRP untouched"


def snmp_changed(old: GlobalDefs, new: GlobalDefs) -> bool:
    return any(getattr(old, f) != getattr(new, f) for f in SNMP_GLOBALS)


def globals_restart(old: GlobalDefs, new: GlobalDefs) -> bool:
    """Does this global_defs change restart every instance?"""
    return any(getattr(old, f) != getattr(new, f) for f in RESTART_GLOBALS)


def config_changes(old: Config, new: Config) -> list[str]:
    """What reloading `new` over a daemon running `old` changes, one line per change, in a
    stable order (global_defs, trackers, instances, sync groups, then LVS); [] when nothing
    does."""
    gdefs_changed = globals_restart(old.global_defs, new.global_defs)
    kept = {i.name for i in old.vrrp_instances} & {i.name for i in new.vrrp_instances}
    out: list[str] = []
    for field, text in _changes(old.global_defs, new.global_defs):
        if not text.startswith(field):  # a line of a block (metrics, snmp_agent): say which
            text = f"{field} {text}"
        note = RESTART_ALL if kept and field in RESTART_GLOBALS else None
        if field in SNMP_GLOBALS:
            note = SNMP_RESTART
        out.append(f"global_defs: {text}" + (f" ({note})" if note else ""))
    out += _named_lines("vrrp_script", old.vrrp_scripts, new.vrrp_scripts)
    out += _named_lines("vrrp_track_file", old.vrrp_track_files, new.vrrp_track_files)
    out += _named_lines("vrrp_track_process", old.vrrp_track_processes, new.vrrp_track_processes)
    out += _instance_lines(old, new, gdefs_changed)
    out += _group_lines(old, new, _restarted(old, new, gdefs_changed))
    out += _named_lines(
        "virtual_server_group", old.virtual_server_groups, new.virtual_server_groups, brief=True
    )
    out += _virtual_server_lines(old.virtual_servers, new.virtual_servers)
    if old.ssl != new.ssl:
        if old.ssl is None or new.ssl is None:
            out.append("SSL: added" if old.ssl is None else "SSL: removed")
        else:
            out += [f"SSL: {text}" for _, text in _changes(old.ssl, new.ssl)]
    return out


# -- VRRP ----------------------------------------------------------------------------------


def _instance_lines(old: Config, new: Config, gdefs_changed: bool) -> list[str]:
    def per_instance(prev: VrrpInstance, inst: VrrpInstance) -> Iterator[str]:
        if identity(prev) != identity(inst):
            restart: str | None = RESTART
        else:
            restart = RESTART_GLOBAL if gdefs_changed else None
        for field, text in _changes(prev, inst):
            note = restart or ("live, no state change" if field in NO_STATE_CHANGE else "live")
            yield f"{text} ({note})"

    moved = {} if gdefs_changed else renamed(old, new)
    # a renamed instance is compared under its new name: only its live changes show
    was = [dataclasses.replace(i, name=moved[i.name].name) if i.name in moved else i
           for i in old.vrrp_instances]  # fmt: skip
    lines = [f"vrrp_instance {a}: renamed to {b.name} (keeps its state)" for a, b in moved.items()]
    return lines + _keyed_lines("vrrp_instance", was, new.vrrp_instances, _name, per_instance)


def _restarted(old: Config, new: Config, gdefs_changed: bool) -> set[str]:
    """Instances the daemon stops and starts again (those that stay but not in place)."""
    wanted = {i.name: i for i in new.vrrp_instances}
    return {
        i.name
        for i in old.vrrp_instances
        if i.name in wanted and (gdefs_changed or identity(i) != identity(wanted[i.name]))
    }


def _group_lines(old: Config, new: Config, restarted: set[str]) -> list[str]:
    """The daemon keeps a sync group only when its definition and its running members are
    unchanged; otherwise it rebuilds it."""
    old_names = {i.name for i in old.vrrp_instances}
    new_names = {i.name for i in new.vrrp_instances}

    def per_group(prev: VrrpSyncGroup, cfg: VrrpSyncGroup) -> Iterator[str]:
        if prev != cfg:
            yield from (f"{text} (the group is rebuilt)" for _, text in _changes(prev, cfg))
            return
        moved = [n for n in cfg.group if n in restarted or (n in old_names) != (n in new_names)]
        if moved:
            yield f"rebuilt (member {', '.join(moved)} restarts)"

    return _keyed_lines(
        "vrrp_sync_group",
        old.vrrp_sync_groups,
        new.vrrp_sync_groups,
        _name,
        per_group,
        always=True,
    )


# -- LVS -----------------------------------------------------------------------------------


def _virtual_server_lines(old: Sequence[VirtualServer], new: Sequence[VirtualServer]) -> list[str]:
    def per_vs(a: VirtualServer, b: VirtualServer) -> Iterator[str]:
        yield from (t for _, t in _changes(a, b, skip=("real_servers", "sorry_server")))
        for kind, was, now in (
            ("real_server", a.real_servers, b.real_servers),
            ("sorry_server", _opt(a.sorry_server), _opt(b.sorry_server)),
        ):
            yield from _keyed_lines(kind, was, now, _name, _real_server_lines, sep=" ")

    return _keyed_lines("virtual_server", old, new, _name, per_vs)


def _real_server_lines(a: RealServer, b: RealServer) -> Iterator[str]:
    yield from (t for _, t in _changes(a, b, skip=("checkers",)))
    for line in _checker_lines(a.checkers, b.checkers):
        yield f": {line} (checks restart)"


def _checker_lines(old: Sequence[Checker], new: Sequence[Checker]) -> list[str]:
    """Checkers have no names: pair them by kind, in order."""
    out: list[str] = []
    for kind in dict.fromkeys(c.kind for c in (*old, *new)):
        was = [c for c in old if c.kind == kind]
        now = [c for c in new if c.kind == kind]
        for a, b in zip(was, now, strict=False):
            if a != b:
                out.append(f"{kind} changed ({', '.join(f for f, _ in _changes(a, b))})")
        out += [f"{kind} removed"] * (len(was) - len(now))
        out += [f"{kind} added"] * (len(now) - len(was))
    if not out and old != new:
        out.append("checkers reordered")
    return out


# -- shared --------------------------------------------------------------------------------


def _name(x: _Named) -> str:
    return x.name


def _opt(x: T | None) -> tuple[T, ...]:
    return () if x is None else (x,)


def _named_lines(kind: str, old: Sequence[N], new: Sequence[N], brief: bool = False) -> list[str]:
    def per_item(a: N, b: N) -> Iterator[str]:
        if brief:
            yield "changed"
        else:
            yield from (t for _, t in _changes(a, b))

    return _keyed_lines(kind, old, new, _name, per_item)


def _keyed_lines(
    kind: str,
    old: Iterable[T],
    new: Iterable[T],
    key: Callable[[T], str],
    changed: Callable[[T, T], Iterable[str]],
    sep: str = ": ",
    always: bool = False,
) -> list[str]:
    """`KIND NAME: removed` (old order), then `added` or each change (new order); `sep`
    follows the name (" " for a line inside another object's).

    `changed(a, b)` yields the text after the name (asked even for equal objects when
    `always`); a text starting with ":" follows the name directly (a line about a part of
    the object, as a real server's checker)."""
    before = {key(x): x for x in old}
    after = {key(x): x for x in new}
    out = [f"{kind} {k}{sep}removed" for k in before if k not in after]
    for k, item in after.items():
        prev = before.get(k)
        if prev is None:
            out.append(f"{kind} {k}{sep}added")
        elif prev != item or always:
            for text in changed(prev, item):
                out.append(f"{kind} {k}{'' if text.startswith(':') else sep}{text}")
    return out


def _changes(a: Any, b: Any, skip: Iterable[str] = ()) -> Iterator[tuple[str, str]]:
    """(top-level field, `field old -> new`) for each compared field that differs; a nested
    value object (Notify) gives one line per field of its own."""
    for f in dataclasses.fields(a):
        if not f.compare or f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x == y:
            continue
        if dataclasses.is_dataclass(x) and dataclasses.is_dataclass(y) and type(x) is type(y):
            yield from ((f.name, text) for _, text in _changes(x, y))
        else:
            yield f.name, _change(f.name, x, y)


def _change(name: str, old: object, new: object) -> str:
    a, b = _value(name, old), _value(name, new)
    if name in SECRET_FIELDS or a is None or b is None or a == b:
        return f"{name} changed"
    if len(a) <= MAX_VALUE and len(b) <= MAX_VALUE:
        return f"{name} {a} -> {b}"
    if isinstance(old, tuple) and isinstance(new, tuple) and name not in ARGV_FIELDS:
        # a long list (virtual_ipaddress...): what went and what came
        was, now = [_item(x) for x in old], [_item(x) for x in new]
        moved = [f"-{x}" for x in was if x not in now] + [f"+{x}" for x in now if x not in was]
        if moved and len(text := " ".join(moved)) <= 2 * MAX_VALUE:
            return f"{name} {text}"
    return f"{name} changed"


def _value(name: str, v: object) -> str | None:
    """A short text for a value, or None when only "changed" can be said."""
    if isinstance(v, tuple):
        items = [_item(x) for x in v]
        if any(i is None for i in items):
            return None
        return (" " if name in ARGV_FIELDS else ",").join(i for i in items if i) or "none"
    return _item(v)


def _item(v: object) -> str | None:
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return format(v, "g")
    if isinstance(v, str):
        return v or '""'
    if isinstance(v, int | ipaddress.IPv4Address | ipaddress.IPv6Address | VirtualAddress):
        return str(v)
    if isinstance(v, _TRACK_REFS):
        return v.name
    return None
