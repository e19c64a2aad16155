"""`vrrp_sync_group`: its member instances move together, as keepalived's vrrp_sync.c does.

- A member's master down timer fires: the group goes MASTER only when every other member is
  MASTER or wants to be (its own timer fired too); until then it waits (no thrashing).
- A MASTER member goes BACKUP: the other masters follow.
- A member faults for a reason of its own (link, tracker): every other member goes FAULT,
  and they all come back when no member has a fault of its own.

The group's state (MASTER if all are, FAULT if any is, else BACKUP) lives in the runtime model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hakeeper.config.model import VrrpSyncGroup
from hakeeper.state import GroupState, Runtime
from hakeeper.vrrp.core import State

if TYPE_CHECKING:
    from hakeeper.vrrp.instance import InstanceRunner

log = logging.getLogger("hakeeper.vrrp.sync")

# Called with the group and its new state (notifications hook in here).
GroupListener = Callable[[VrrpSyncGroup, str], None]


class SyncGroup:
    def __init__(
        self,
        cfg: VrrpSyncGroup,
        members: Sequence[InstanceRunner],
        runtime: Runtime,
        on_state: GroupListener | None = None,
    ) -> None:
        self.cfg = cfg
        self.members = list(members)
        self.runtime = runtime
        self.on_state = on_state
        self.view = GroupState(config=cfg)
        self._busy = False  # our own calls into members come back here: act once
        runtime.groups[cfg.name] = self.view
        for member in self.members:
            member.group = self
            member.core.sync_group = cfg.name
            member.view.sync_group = cfg.name
        self._settle("startup")

    @property
    def name(self) -> str:
        return self.cfg.name

    # -- called by member runners ---------------------------------------------------------

    def want_master(self, member: InstanceRunner) -> None:
        self._go_master_if_ready(f"sync group {self.name}: all members ready")

    def member_changed(self, member: InstanceRunner, old: State, new: State) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            if old is State.MASTER and new is State.BACKUP:
                for m in self._others(member):
                    m.sync_go_backup(f"sync group {self.name}: {member.inst.name} went BACKUP")
            self._sync_faults()
            if new is State.MASTER:
                self._go_master_if_ready(f"sync group {self.name}: {member.inst.name} is MASTER")
        finally:
            self._busy = False
        self._settle(f"{member.inst.name} {old.value} -> {new.value}")

    def failover(self) -> bool:
        """An operator's hand-over of the whole group: every MASTER member resigns at once
        (each sends priority 0), then the results are carried out. False: none was MASTER."""
        now = self.members[0].loop.time() if self.members else 0.0
        resigned = [m for m in self.members if m.core.failover(now)]
        for m in resigned:
            m.run_actions()
        return bool(resigned)

    def detach(self) -> None:
        for member in self.members:
            member.group = None
            member.core.sync_group = None
            member.view.sync_group = None
            member.sync_fault(False)
        self.runtime.groups.pop(self.name, None)
        self.runtime.emit("group", self.name, "removed")

    # -- internals ------------------------------------------------------------------------

    def _others(self, member: InstanceRunner) -> list[InstanceRunner]:
        return [m for m in self.members if m is not member]

    def _go_master_if_ready(self, reason: str) -> None:
        ready = all(m.core.state is State.MASTER or m.core.wants_master for m in self.members)
        if not ready:
            return
        busy, self._busy = self._busy, True
        try:
            for m in self.members:
                m.sync_go_master(reason)
        finally:
            self._busy = busy
        self._settle(reason)

    def _sync_faults(self) -> None:
        """Each member is in sync fault while another member has a fault of its own."""
        for m in self.members:
            faulty = [o.inst.name for o in self._others(m) if o.core.own_fault]
            m.sync_fault(bool(faulty))

    def _settle(self, reason: str) -> None:
        states = [m.core.state for m in self.members]
        if any(s is State.FAULT for s in states):
            new = "FAULT"
        elif states and all(s is State.MASTER for s in states):
            new = "MASTER"
        else:
            new = "BACKUP"
        if new == self.view.state:
            return
        log.info("%s: %s -> %s (%s)", self.name, self.view.state, new, reason)
        self.view.state = new
        self.view.last_reason = reason
        self.runtime.emit("group", self.name, "state")
        if self.on_state is not None:
            self.on_state(self.cfg, new)
