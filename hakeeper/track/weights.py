"""Effective priority from tracker states, with keepalived's exact arithmetic. Pure functions.

Two steps, both as keepalived does them:

1. `bindings()` decides, from the config alone, which trackers act on an instance and with
   which weight (keepalived/vrrp/vrrp.c vrrp_complete_instance and sync_group_tracking_init):
   the address owner and members of a sync group without `sync_group_tracking_weight` lose
   their weighted trackers; a tracker on a sync group acts on every member.
2. `effective_priority()` adds the contribution of every bound tracker in its current state
   to the base priority and clamps (vrrp_track.c, track_file.c, vrrp_set_effective_priority).
   0 means FAULT: a weight-0 tracker failed, or a track_file's value times its weight
   reached -254.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from hakeeper.config.model import Config, VrrpInstance

PRIO_OWNER = 255
FAULT = 0
# track_file.c process_update_vrrp_track_file_status: a file's weighted value is kept in
# -254..253, and -254 (or below) means FAULT.
FILE_FAULT = -254
FILE_MAX = 253


class Kind(StrEnum):
    SCRIPT = "script"
    INTERFACE = "interface"
    FILE = "file"
    PROCESS = "process"


@dataclass(frozen=True)
class Binding:
    """One tracker acting on one instance: what keepalived keeps as a `tracking_obj_t`
    (the tracked object, `weight`, and `weight_multiplier` = -1 when `reverse`)."""

    kind: Kind
    name: str
    weight: int
    reverse: bool = False
    via_group: str | None = None  # the sync group it came from, if any


@dataclass(frozen=True)
class Contribution:
    """A bound tracker and its current state.

    `up`: script good / interface up / process quorum held; None = not known yet (a script
    that has not exited once: keepalived's SCRIPT_INIT_STATE_INIT, which adds nothing).
    `value`: the number read from a track_file (missing file = 0)."""

    kind: Kind
    weight: int
    reverse: bool = False
    up: bool | None = None
    value: int = 0
    name: str = ""


def contribution(c: Contribution) -> int | None:
    """The priority delta of one tracker, or None when it puts the instance in FAULT."""
    multiplier = -1 if c.reverse else 1
    if c.kind is Kind.FILE:
        if c.weight == 0:
            # update_track_file_status: weight 0 -> a non-zero value means failure
            # (reversed: a zero value means failure)
            return None if (c.value != 0) == (multiplier == 1) else 0
        status = c.value * c.weight * multiplier
        if status <= FILE_FAULT:
            return None
        return min(status, FILE_MAX)
    if c.up is None:
        return 0  # initialise_track_script_state: a script still in INIT adds nothing
    if c.weight == 0:
        # process_script_update_priority / initialise_interface_tracking_priorities /
        # process_update_track_process_status: down != (multiplier == 1) -> down_instance
        return None if c.up != (multiplier == 1) else 0
    # A positive weight is added while up, a negative one while down; `reverse` negates it.
    # (vrrp_track.c initialise_track_script_state, process_script_update_priority.)
    if c.up:
        return c.weight * multiplier if c.weight > 0 else 0
    return c.weight * multiplier if c.weight < 0 else 0


def effective_priority(base: int, contributions: Iterable[Contribution]) -> int:
    """keepalived's effective priority: 0 for FAULT, else base + contributions in 1..254;
    the address owner (255) is never adjusted, but still faults (down_instance does not
    look at the priority)."""
    total = base
    for c in contributions:
        delta = contribution(c)
        if delta is None:
            return FAULT
        total += delta
    if base == PRIO_OWNER:
        return PRIO_OWNER
    return max(1, min(PRIO_OWNER - 1, total))


# ---------------------------------------------------------------- which trackers apply


def bindings(config: Config, inst: VrrpInstance) -> list[Binding]:
    """The trackers acting on `inst`, with keepalived's config-time adjustments."""
    scripts = {s.name: s for s in config.vrrp_scripts}
    files = {f.name: f for f in config.vrrp_track_files}
    processes = {p.name: p for p in getattr(config, "vrrp_track_processes", ())}
    group = next((g for g in config.vrrp_sync_groups if inst.name in g.group), None)
    owner = inst.priority == PRIO_OWNER
    # vrrp_parser.c: global_tracking is the deprecated name of sync_group_tracking_weight
    group_weights = group is not None and (
        group.sync_group_tracking_weight or group.global_tracking
    )
    strip = owner or (group is not None and not group_weights)
    out: dict[tuple[Kind, str], Binding] = {}

    # -- the instance's own trackers (vrrp_complete_instance)
    for ti in inst.track_interface:
        weight = ti.weight
        if weight and strip:
            if owner:
                continue  # "ignoring tracked interface due to address owner": removed
            weight = 0  # "ignoring weight ... due to SYNC group": becomes fault-only
        out[(Kind.INTERFACE, ti.name)] = Binding(Kind.INTERFACE, ti.name, weight, ti.reverse)
    for ts in inst.track_script:
        script = scripts.get(ts.name)
        if script is None:
            continue
        weight = ts.weight if ts.weight is not None else script.weight
        reverse = ts.reverse or script.weight_reverse  # alloc_track_script: script's default
        if weight and strip:
            continue  # "ignoring tracked script with weights": removed
        out[(Kind.SCRIPT, ts.name)] = Binding(Kind.SCRIPT, ts.name, weight, reverse)
    for tf in inst.track_file:
        tfile = files.get(tf.name)
        if tfile is None:
            continue
        weight = tf.weight if tf.weight is not None else tfile.weight
        reverse = tf.reverse or tfile.weight_reverse
        if weight and strip:
            if weight != 1:
                continue  # an explicit weight is removed ...
            weight = 0  # ... the default weight 1 becomes 0
        out[(Kind.FILE, tf.name)] = Binding(Kind.FILE, tf.name, weight, reverse)
    for tp in getattr(inst, "track_process", ()):
        proc = processes.get(tp.name)
        if proc is None:
            continue
        # keepalived does not strip weighted track_process from owners or sync members;
        # the owner's priority is simply never adjusted (vrrp_set_effective_priority).
        weight = tp.weight if tp.weight is not None else proc.weight
        reverse = tp.reverse or proc.weight_reverse
        out[(Kind.PROCESS, tp.name)] = Binding(Kind.PROCESS, tp.name, weight, reverse)

    if group is None:
        return list(out.values())

    # -- the sync group's trackers, on every member (sync_group_tracking_init). Their
    # weights stay, unless a member is the address owner ("clearing weight").
    members = {i.name: i for i in config.vrrp_instances}
    group_has_owner = any(members[m].priority == PRIO_OWNER for m in group.group if m in members)

    def add(kind: Kind, name: str, weight: int, reverse: bool) -> None:
        if group_has_owner:
            weight = 0
        key = (kind, name)
        mine = out.get(key)
        if mine is not None:
            # add_vrrp_to_track_script & co: the group's weight wins unless the
            # instance's own entry is unweighted
            if mine.weight:
                out[key] = Binding(kind, name, weight, reverse, group.name)
            return
        out[key] = Binding(kind, name, weight, reverse, group.name)

    for ti in group.track_interface:
        add(Kind.INTERFACE, ti.name, ti.weight, ti.reverse)
    for ts in group.track_script:
        script = scripts.get(ts.name)
        if script is not None:
            weight = ts.weight if ts.weight is not None else script.weight
            add(Kind.SCRIPT, ts.name, weight, ts.reverse or script.weight_reverse)
    for tf in group.track_file:
        tfile = files.get(tf.name)
        if tfile is not None:
            weight = tf.weight if tf.weight is not None else tfile.weight
            add(Kind.FILE, tf.name, weight, tf.reverse or tfile.weight_reverse)
    for tp in getattr(group, "track_process", ()):
        proc = processes.get(tp.name)
        if proc is not None:
            weight = tp.weight if tp.weight is not None else proc.weight
            add(Kind.PROCESS, tp.name, weight, tp.reverse or proc.weight_reverse)
    return list(out.values())


__all__ = [
    "FAULT",
    "PRIO_OWNER",
    "Binding",
    "Contribution",
    "Kind",
    "bindings",
    "contribution",
    "effective_priority",
]
