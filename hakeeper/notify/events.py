"""The notification event: one VRRP instance or sync group entering a state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["INSTANCE", "GROUP", "RS", "VS"]  # RS/VS: LVS real server, quorum

# keepalived's names (vrrp_notify.c notify_fifo()); MASTER_RX_LOWER_PRI is an event, not a
# state: a master heard an advert with a lower priority (split brain healing).
STATES = frozenset({"MASTER", "BACKUP", "FAULT", "STOP", "MASTER_RX_LOWER_PRI"})


@dataclass(frozen=True)
class Transition:
    """One notification. `seq` counts the transitions of this one object, from 1, so a
    consumer can tell the order and see a gap; `at` is the wall clock, for humans."""

    kind: Kind
    name: str
    state: str
    priority: int  # effective priority for an instance; 0 for a group, as keepalived sends
    seq: int
    at: float

    @property
    def key(self) -> tuple[str, str]:
        """The object this is about: notifications with the same key are ordered."""
        return (self.kind, self.name)

    @property
    def label(self) -> str:
        """How logs name the object: `VI_1`, `group VG_1`, `real server ...`."""
        prefix = {"INSTANCE": "", "GROUP": "group ", "RS": "real server ", "VS": "virtual server "}
        return prefix[self.kind] + self.name


__all__ = ["STATES", "Kind", "Transition"]
