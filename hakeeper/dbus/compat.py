"""keepalived's D-Bus objects (org.keepalived.Vrrp1), for tools written against keepalived.

Names, paths, types and state numbers are keepalived's (its interface XML files and
vrrp_dbus.c): Name is the struct `(s)` and State `(us)` there, so they are here too.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from hakeeper.control import ControlError
from hakeeper.dbus.export import Exported, Interface, Method, Prop, Signal
from hakeeper.dbus.objects import Control
from hakeeper.state import Event, InstanceState, Runtime

log = logging.getLogger("hakeeper.dbus")

BUS_NAME = "org.keepalived.Vrrp1"
VRRP_PATH = "/org/keepalived/Vrrp1/Vrrp"
INSTANCE_ROOT = "/org/keepalived/Vrrp1/Instance"
VRRP_IFACE = "org.keepalived.Vrrp1.Vrrp"
INSTANCE_IFACE = "org.keepalived.Vrrp1.Instance"

# keepalived's VRRP_STATE_* numbers and the words its D-Bus State property carries
STATES = {
    "INIT": (0, "Init"),
    "BACKUP": (1, "Backup"),
    "MASTER": (2, "Master"),
    "FAULT": (3, "Fault"),
    "STOP": (98, "Stop"),
}


def instance_path(ifname: str, vrid: int, family: int) -> str:
    """keepalived's path: every non-alphanumeric character of the interface becomes `_`."""
    return f"{INSTANCE_ROOT}/{re.sub('[^A-Za-z0-9]', '_', ifname)}/{vrid}/IPv{family}"


def state_value(state: str) -> tuple[int, str]:
    return STATES.get(state, (0, "Unknown"))


class CompatInstance(Exported):
    interfaces = (
        Interface(
            INSTANCE_IFACE,
            props=(
                Prop("Name", "(s)", lambda o: [o.name]),
                Prop("State", "(us)", lambda o: list(state_value(o.m.state))),
            ),
            methods=(Method("SendGarp", lambda o: o.send_garp()),),
            signals=(Signal("VrrpStatusChange", (("status", "u"),)),),
        ),
    )

    def __init__(self, runtime: Runtime, control: Control, name: str, path: str) -> None:
        self.runtime, self.control, self.name, self.path = runtime, control, name, path

    @property
    def m(self) -> InstanceState:
        return self.runtime.instances[self.name]

    def exists(self) -> bool:
        return self.name in self.runtime.instances

    def send_garp(self) -> None:
        # keepalived answers success whatever the state; only a master has VIPs to announce
        if self.m.state == "MASTER":
            self.control.send_garp(self.name)


class CompatVrrp(Exported):
    interfaces = (
        Interface(
            VRRP_IFACE,
            methods=(
                Method("PrintData", lambda o: o.print_data()),
                Method("PrintStats", lambda o: o.print_stats(clear=False)),
                Method("PrintStatsClear", lambda o: o.print_stats(clear=True)),
                Method("ReloadConfig", lambda o: o.reload()),
            ),
            signals=(Signal("VrrpStarted"), Signal("VrrpReloaded"), Signal("VrrpStopped")),
        ),
    )
    path = VRRP_PATH

    def __init__(
        self,
        runtime: Runtime,
        control: Control,
        print_data: Callable[[], None],
        stats_file: str,
    ) -> None:
        self.runtime, self.control = runtime, control
        self.print_data = print_data
        self.stats_file = stats_file

    def print_stats(self, clear: bool) -> None:
        write_stats(self.runtime, self.stats_file, clear)

    def reload(self) -> None:
        # keepalived's ReloadConfig is a SIGHUP: a bad file is logged, the call still succeeds
        try:
            self.control.reload(dry_run=False)
        except ControlError as e:
            for line in str(e).splitlines():
                log.error("reload refused: %s", line)


def write_stats(runtime: Runtime, path: str, clear: bool) -> None:
    """keepalived's /tmp/keepalived.stats layout, so scripts that parse it keep working."""
    lines = []
    for name, view in runtime.instances.items():
        st = view.stats
        lines += [
            f"VRRP Instance: {name}",
            "  Advertisements:",
            f"    Received: {st.advert_rcvd}",
            f"    Sent: {st.advert_sent}",
            f"  Became master: {st.become_master}",
            f"  Released master: {st.release_master}",
            "  Packet Errors:",
            f"    Length: {st.packet_len_err}",
            f"    TTL: {st.ip_ttl_err}",
            f"    Invalid Type: {st.invalid_type_rcvd}",
            f"    Advertisement Interval: {st.advert_interval_err}",
            f"    Address List: {st.addr_list_err}",
            "  Authentication Errors:",
            f"    Invalid Type: {st.invalid_authtype}",
            f"    Type Mismatch: {st.authtype_mismatch}",
            f"    Failure: {st.auth_failure}",
            "  Priority Zero:",
            f"    Received: {st.pri_zero_rcvd}",
            f"    Sent: {st.pri_zero_sent}",
        ]
        if clear:
            st.clear()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


class KeepalivedObjects:
    """The provider the service exports when `enable_dbus` is set."""

    bus_name = BUS_NAME
    tree = "/org/keepalived/Vrrp1"
    object_manager = None
    emits_properties_changed = False  # keepalived sends VrrpStatusChange, not that

    def __init__(
        self,
        runtime: Runtime,
        control: Control,
        print_data: Callable[[], None],
        stats_file: str,
    ) -> None:
        self.runtime, self.control = runtime, control
        self.vrrp = CompatVrrp(runtime, control, print_data, stats_file)

    def _path(self, view: InstanceState) -> str:
        c = view.config
        return instance_path(c.interface, c.virtual_router_id, c.family)

    def wanted(self, have: dict[str, Exported]) -> dict[str, Exported]:
        out: dict[str, Exported] = {VRRP_PATH: self.vrrp}
        for name, view in self.runtime.instances.items():
            path = self._path(view)
            old = have.get(path)
            if isinstance(old, CompatInstance) and old.name == name:
                out[path] = old
            else:
                out[path] = CompatInstance(self.runtime, self.control, name, path)
        return out

    def touched(self, event: Event) -> list[str]:
        return []

    # hooks the service calls

    def started(self, service: Any) -> None:
        service.emit(VRRP_PATH, VRRP_IFACE, "VrrpStarted", "", [])
        for view in self.runtime.instances.values():
            self._status(service, view)

    def stopping(self, service: Any) -> None:
        service.emit(VRRP_PATH, VRRP_IFACE, "VrrpStopped", "", [])

    def on_event(self, event: Event, service: Any) -> None:
        if event.kind == "instance" and "state" in event.changed:
            view = self.runtime.instances.get(event.name)
            if view is not None:
                self._status(service, view)
        elif event.kind == "global" and event.name == "reload":
            service.emit(VRRP_PATH, VRRP_IFACE, "VrrpReloaded", "", [])

    def _status(self, service: Any, view: InstanceState) -> None:
        number, _ = state_value(view.state)
        service.emit(self._path(view), INSTANCE_IFACE, "VrrpStatusChange", "u", [number])
