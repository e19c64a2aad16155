"""The one control layer: every operator order (D-Bus today, SNMP Set later) comes through here.

Each method checks its arguments, carries the order out on the running engine and logs it; a
refusal is a ControlError whose kind the doors turn into their own error (a D-Bus error name).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hakeeper.daemon import Daemon
    from hakeeper.vrrp.instance import InstanceRunner

log = logging.getLogger("hakeeper.control")

MAX_RS_WEIGHT = 65535  # keepalived's range for `weight`


class ControlError(Exception):
    """A refused order. kind: NotFound, InvalidArgs, NotMaster, ConfigInvalid, Failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Control:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    # -- VRRP instances --------------------------------------------------------------------

    def _runner(self, name: str) -> InstanceRunner:
        runner = self.daemon.runners.get(name)
        if runner is None:
            raise ControlError("NotFound", f"no vrrp_instance {name}")
        return runner

    def set_priority(self, name: str, priority: int | None) -> None:
        """A new base priority (None: back to the configured one); trackers still add their
        weights. An explicit priority also ends a Failover's hand-over period."""
        runner = self._runner(name)
        if priority is not None:
            if runner.inst.priority == 255:
                raise ControlError(
                    "InvalidArgs", f"{name} is the address owner (priority 255); it stays 255"
                )
            if not 1 <= priority <= 254:
                raise ControlError("InvalidArgs", f"priority {priority} is out of range 1..254")
        runner.view.priority_override = priority
        runner.end_yield()
        self.daemon.tracking.refresh(name)
        self.daemon.runtime.emit("instance", name, "priority_override")
        if priority is None:
            log.info("%s: base priority reset to the configured %d", name, runner.inst.priority)
        else:
            log.info("%s: base priority set to %d by an operator", name, priority)

    def failover(self, name: str) -> None:
        runner = self._runner(name)
        state = runner.core.state.value
        if not runner.failover():
            raise ControlError("NotMaster", f"{name} is {state}, not MASTER: nothing to hand over")
        log.info("%s: mastership handed over by an operator", name)

    def maintenance(self, name: str, on: bool) -> None:
        self._runner(name).set_maintenance(on)
        log.info("%s: maintenance %s", name, "on" if on else "off")

    def send_garp(self, name: str) -> None:
        runner = self._runner(name)
        state = runner.core.state.value
        if not runner.send_garp_now():
            raise ControlError("NotMaster", f"{name} is {state}, not MASTER: it holds no VIPs")

    # -- sync groups -----------------------------------------------------------------------

    def group_failover(self, name: str) -> None:
        group = self.daemon.groups.get(name)
        if group is None:
            raise ControlError("NotFound", f"no vrrp_sync_group {name}")
        if not group.failover():
            raise ControlError(
                "NotMaster", f"{name} is {group.view.state}, not MASTER: nothing to hand over"
            )
        log.info("%s: sync group mastership handed over by an operator", name)

    # -- real servers ----------------------------------------------------------------------

    def rs_enable(self, vs: str, rs: str, enabled: bool) -> None:
        lvs = self.daemon.lvs
        if lvs is None:
            raise ControlError("NotFound", f"no virtual server {vs}")
        try:
            lvs.set_enabled(vs, rs, enabled)
        except KeyError as e:
            raise ControlError("NotFound", str(e.args[0])) from None
        log.info("%s %s: %s by an operator", vs, rs, "enabled" if enabled else "drained")

    def rs_weight(self, vs: str, rs: str, weight: int | None) -> None:
        lvs = self.daemon.lvs
        if lvs is None:
            raise ControlError("NotFound", f"no virtual server {vs}")
        if weight is not None and not 0 <= weight <= MAX_RS_WEIGHT:
            raise ControlError("InvalidArgs", f"weight {weight} is out of range 0..{MAX_RS_WEIGHT}")
        try:
            lvs.set_weight(vs, rs, weight)
        except KeyError as e:
            raise ControlError("NotFound", str(e.args[0])) from None
        log.info("%s %s: weight %s by an operator", vs, rs, "reset" if weight is None else weight)

    # -- the daemon ------------------------------------------------------------------------

    def reload(self, dry_run: bool) -> list[str]:
        """Apply the config file again (or only say what that would change). A bad file:
        ConfigInvalid listing every FILE:LINE problem; the running config stays."""
        return self.daemon.reload_config(dry_run=dry_run)
