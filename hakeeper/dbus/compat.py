"""keepalived's D-Bus objects (org.keepalived.Vrrp1), for tools written against keepalived.

Names, paths, types, state numbers, files and the order of the signals are keepalived 2.2.7's
(its vrrp_dbus.c; tests/lab/test_dbus_keepalived.py runs both and compares). Name is the struct
`(s)` and State `(us)` on the wire; 2.2.7's interface file says `s` for Name, a slip keepalived
fixed later, so hakeeper declares `(s)`, what both send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
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
    """keepalived's path: every byte of the interface name that is not an ASCII letter or
    digit becomes `_` (byte by byte, as its C loop: `é` is two bytes, so `__`)."""
    escaped = re.sub(rb"[^A-Za-z0-9]", b"_", os.fsencode(ifname)).decode("ascii")
    return f"{INSTANCE_ROOT}/{escaped}/{vrid}/IPv{family}"


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
            try:
                self.control.send_garp(self.name)
            except ControlError as e:
                if e.kind != "NotMaster":  # it stopped being master meanwhile: still success
                    raise


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
        # keepalived's ReloadConfig is a SIGHUP to itself: the reply goes out first, then the
        # reload runs; a bad file is only logged
        asyncio.get_running_loop().call_soon(self._reload)

    def _reload(self) -> None:
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
    # mode 0600 as keepalived's; a private temporary name, so two calls cannot mix
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".stats-", dir=directory)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        # keepalived only logs this and answers success; the caller had better know
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        log.warning("cannot write %s: %s", path, e)
        raise ControlError("Failed", f"cannot write {path}: {e.strerror or e}") from None
    if clear:  # only once written, as keepalived: a failed write loses nothing
        for view in runtime.instances.values():
            view.stats.clear()


class KeepalivedObjects:
    """The provider the service exports when `enable_dbus` is set.

    VrrpStatusChange follows keepalived 2.2.7's order of things. At start: VrrpStarted, then
    each instance's state. A reload: FAULT (3) from each added instance that starts in FAULT,
    FAULT from each removed one (keepalived's word for deleted without `notify_deleted`;
    nothing if it was in FAULT already), VrrpReloaded, then the other states of the added
    ones. At stop: STOP (98) for every instance, then VrrpStopped. The daemon stops an instance
    the same way for a reload and at exit, so a STOP is held until the reload's event or the
    stop hook says which it was.
    """

    bus_name = BUS_NAME
    tree = "/org/keepalived/Vrrp1"
    object_manager = None
    emits_properties_changed = False  # keepalived sends VrrpStatusChange, not that
    SETTLE = 1.0  # seconds a held STOP waits for its reload's event (a reload that failed)

    def __init__(
        self,
        runtime: Runtime,
        control: Control,
        print_data: Callable[[], None],
        stats_file: str,
    ) -> None:
        self.runtime, self.control = runtime, control
        self.vrrp = CompatVrrp(runtime, control, print_data, stats_file)
        self._service: Any = None  # set by started(): silent until VrrpStarted is out
        self._last: dict[str, int] = {}  # instance name -> the state number last sent
        self._gone: list[tuple[str, int]] = []  # stopped instances: (path, last number sent)
        self._new: dict[str, list[tuple[str, int]]] = {}  # added instances' states, held
        self._settle: asyncio.TimerHandle | None = None
        self._clashes: set[str] = set()

    def _path(self, view: InstanceState) -> str:
        c = view.config
        return instance_path(c.interface, c.virtual_router_id, c.family)

    def wanted(self, have: dict[str, Exported]) -> dict[str, Exported]:
        out: dict[str, Exported] = {VRRP_PATH: self.vrrp}
        for name, view in self.runtime.instances.items():
            path = self._path(view)
            taken = out.get(path)
            if isinstance(taken, CompatInstance):
                # `eth0.5` and `eth0_5` with one VRID escape alike: the first keeps the path,
                # as keepalived (the second registration fails there)
                if path not in self._clashes:
                    self._clashes.add(path)
                    log.warning("D-Bus: %s and %s share %s; only %s is served there",
                                taken.name, name, path, taken.name)  # fmt: skip
                continue
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
        self._service = service
        service.emit(VRRP_PATH, VRRP_IFACE, "VrrpStarted", "", [])
        for name, view in self.runtime.instances.items():
            self._status(self._path(view), name, state_value(view.state)[0])

    def stopping(self, service: Any) -> None:
        self._flush(stopping=True)
        # instances the daemon has not stopped yet are stopping now: keepalived's last word
        for name, view in self.runtime.instances.items():
            if view.state != "STOP":
                self._status(self._path(view), name, STATES["STOP"][0])
        service.emit(VRRP_PATH, VRRP_IFACE, "VrrpStopped", "", [])
        self._service = None

    def on_event(self, event: Event, service: Any) -> None:
        if self._service is None:
            return
        if event.kind == "global" and event.name == "reload":
            self._flush(stopping=False, reloaded=True)
        elif event.kind == "instance" and "state" in event.changed:
            view = self.runtime.instances.get(event.name)
            if view is None:
                return
            number, path = state_value(view.state)[0], self._path(view)
            if view.state == "STOP":  # a reload removed it, or the daemon is stopping
                self._gone.append((path, self._last.pop(event.name, -1)))
                self._hold()
            elif event.name not in self._last:  # a reload added it: told after VrrpReloaded
                self._new.setdefault(event.name, []).append((path, number))
                self._hold()
            else:
                self._status(path, event.name, number)

    def _hold(self) -> None:
        if self._settle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a direct call): nothing to wait for
                self._flush(stopping=False)
                return
            self._settle = loop.call_later(self.SETTLE, self._flush, False)

    def _flush(self, stopping: bool, reloaded: bool = False) -> None:
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        gone, self._gone = self._gone, []
        new, self._new = self._new, {}
        fault, stop = STATES["FAULT"][0], STATES["STOP"][0]
        if not stopping:  # keepalived reads the new config first: who starts in FAULT says so
            for name, states in new.items():
                if states[0][1] == fault:
                    self._status(states.pop(0)[0], name, fault)
        for path, last in gone:
            if stopping:
                self._emit(path, stop)
            elif last != fault:  # keepalived tells a deleted instance as FAULT, once
                self._emit(path, fault)
        if reloaded and self._service is not None:
            self._service.emit(VRRP_PATH, VRRP_IFACE, "VrrpReloaded", "", [])
        if stopping:
            return
        for name, states in new.items():  # then it starts the others
            for path, number in states:
                self._status(path, name, number)
            if name in self.runtime.instances:
                self._last.setdefault(name, fault)
            else:  # added and removed again before its reload ended
                self._last.pop(name, None)

    def _status(self, path: str, name: str, number: int) -> None:
        self._last[name] = number
        self._emit(path, number)

    def _emit(self, path: str, number: int) -> None:
        if self._service is not None:
            self._service.emit(path, INSTANCE_IFACE, "VrrpStatusChange", "u", [number])
