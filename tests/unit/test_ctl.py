"""hakeeperctl: rendering, argument parsing, exit codes, and end to end over a real private
dbus-daemon against a small hakeeper service exported with dbus-fast in this process.

The fake takes its property names and signatures from the daemon's own interface tables
(hakeeper.dbus.objects), so it answers with exactly the contract's shapes; its behaviour
(NotMaster, range checks, state changes and their signals) follows dbus/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from dbus_fast import DBusError, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusByte, DBusInt32, DBusSignature, DBusStr
from dbus_fast.service import ServiceInterface, dbus_property, dbus_signal, method

from hakeeper.ctl import client as ctl_client
from hakeeper.ctl import render
from hakeeper.ctl.client import (
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    INSTANCE_COLUMNS,
    RS_COLUMNS,
    VS_COLUMNS,
    CtlError,
    exit_code,
)
from hakeeper.ctl.completion import bash_script
from hakeeper.ctl.main import build_parser, main, parse
from hakeeper.ctl.watch import Watcher
from hakeeper.dbus.names import (
    BUS_NAME,
    ERROR_PREFIX,
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
from hakeeper.dbus.objects import (
    GroupObject,
    InstanceObject,
    ManagerObject,
    RealServerObject,
    VirtualServerObject,
)

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HK = ERROR_PREFIX
DENIED = "org.freedesktop.DBus.Error.AccessDenied"

VS4 = "198.18.0.100:80/TCP"
VS6 = "[fd00:198:18::100]:443/TCP"
RS1, RS2 = "198.18.1.10:80", "198.18.1.11:80"
RS6 = "[fd00:198:18::10]:443"


# D-Bus signatures of the fake's methods and signals (dbus-fast reads them from annotations)
StrList = Annotated[list[str], DBusSignature("as")]
StateArgs = Annotated[list[str], DBusSignature("sss")]  # StateChanged(old, new, reason)
InstanceRows = Annotated[list[Any], DBusSignature("a(ssssyyyydassbbdso)")]
GroupRows = Annotated[list[Any], DBusSignature("a(ssasso)")]
VsRows = Annotated[list[Any], DBusSignature("a(sssssbbuuuo)")]
RsRows = Annotated[list[Any], DBusSignature("a(ssbbbiisuo)")]


# -- a private bus ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bus_address() -> Iterator[str]:
    yield from _dbus_daemon()


def _dbus_daemon() -> Iterator[str]:
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--print-address", "--nofork"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()  # by its PID
        proc.wait(5)


# -- the fake hakeeper ------------------------------------------------------------------


def _default(sig: str) -> Any:
    if sig in ("s", "o"):
        return "" if sig == "s" else "/"
    if sig == "b":
        return False
    if sig == "d":
        return 0.0
    if sig.startswith("a{"):
        return {}
    if sig.startswith("a"):
        return []
    return 0


def _ro(name: str, sig: str) -> Any:
    """A read-only D-Bus property reading `self.p[name]`."""

    def get(self: Any) -> Any:
        return self.p[name]

    get.__name__ = f"prop_{name}"  # dbus-fast reads the value by this attribute name
    get.__annotations__ = {"return": sig}
    return dbus_property(access=PropertyAccess.READ, name=name)(get)


def _with_props(cls: type, view: Any) -> type:
    for prop in view.interfaces[0].props:
        setattr(cls, f"prop_{prop.name}", _ro(prop.name, prop.signature))
    cls.signatures = {p.name: p.signature for p in view.interfaces[0].props}
    return cls


class _Obj(ServiceInterface):
    signatures: dict[str, str] = {}

    def __init__(self, hk: FakeHakeeper, iface: str, path: str, **values: Any) -> None:
        super().__init__(iface)
        self.hk, self.path = hk, path
        self.p = {k: _default(s) for k, s in self.signatures.items()}
        self.p.update(values)

    def change(self, **values: Any) -> None:
        self.p.update(values)
        self.emit_properties_changed(values)


class FakeInstance(_Obj):
    def __init__(self, hk: FakeHakeeper, name: str, **values: Any) -> None:
        super().__init__(hk, INSTANCE_IFACE, instance_path(name), Name=name, **values)

    def move(self, new: str, reason: str) -> None:
        old = self.p["State"]
        self.change(State=new, LastReason=reason, LastTransition=time.time())
        self.StateChanged(old, new, reason)

    @dbus_signal()
    def StateChanged(self, old: str, new: str, reason: str) -> StateArgs:
        return [old, new, reason]

    @method()
    def SetPriority(self, priority: DBusByte):
        self.hk.control("SetPriority")
        if not 1 <= priority <= 254:
            raise DBusError(HK + "InvalidArgs", f"priority {priority} is out of range 1..254")
        self.change(BasePriority=priority, EffectivePriority=priority, PriorityOverridden=True)

    @method()
    def ResetPriority(self):
        self.hk.control("ResetPriority")
        prio = self.p["ConfigPriority"]
        self.change(BasePriority=prio, EffectivePriority=prio, PriorityOverridden=False)

    @method()
    def Failover(self):
        self.hk.control("Failover")
        self.hk.need_master(self.p)
        self.change(Yielding=True)
        self.move("BACKUP", "failover requested")

    @method(name="Maintenance")
    def maintenance(self, on: DBusBool):
        self.hk.control("Maintenance")
        self.change(Maintenance=on)
        self.move("FAULT" if on else "BACKUP", "maintenance" if on else "maintenance ended")

    @method()
    def SendGarp(self):
        self.hk.control("SendGarp")
        self.hk.need_master(self.p)
        self.hk.garps.append(self.p["Name"])


class FakeGroup(_Obj):
    def __init__(self, hk: FakeHakeeper, name: str, members: list[str], **values: Any) -> None:
        super().__init__(
            hk, GROUP_IFACE, group_path(name), Name=name, Members=members,
            MemberPaths=[instance_path(m) for m in members], **values,
        )  # fmt: skip

    @dbus_signal()
    def StateChanged(self, old: str, new: str, reason: str) -> StateArgs:
        return [old, new, reason]

    @method()
    def Failover(self):
        self.hk.control("Failover")
        self.hk.need_master(self.p)
        for m in self.p["Members"]:
            self.hk.instances[m].move("BACKUP", "sync group failover")
        self.change(State="BACKUP", LastReason="failover requested")
        self.StateChanged("MASTER", "BACKUP", "failover requested")


class FakeVirtualServer(_Obj):
    def __init__(self, hk: FakeHakeeper, name: str, **values: Any) -> None:
        super().__init__(hk, VS_IFACE, virtual_server_path(name), Name=name, **values)


class FakeRealServer(_Obj):
    def __init__(self, hk: FakeHakeeper, vs: str, name: str, **values: Any) -> None:
        super().__init__(
            hk, RS_IFACE, real_server_path(vs, name), Name=name, VirtualServerName=vs,
            VirtualServer=virtual_server_path(vs), **values,
        )  # fmt: skip

    @method()
    def Enable(self):
        self.hk.control("Enable")
        self.change(Enabled=True, InPool=self.p["Alive"], PoolWeight=self.p["Weight"])

    @method()
    def Disable(self):
        self.hk.control("Disable")
        self.change(Enabled=False, InPool=False, PoolWeight=0)

    @method()
    def SetWeight(self, weight: DBusInt32):
        self.hk.control("SetWeight")
        if not 0 <= weight <= 65535:
            raise DBusError(HK + "InvalidArgs", f"weight {weight} is out of range 0..65535")
        self.change(Weight=weight, WeightOverridden=True, PoolWeight=weight)

    @method()
    def ResetWeight(self):
        self.hk.control("ResetWeight")
        w = self.p["ConfigWeight"]
        self.change(Weight=w, WeightOverridden=False, PoolWeight=w)


class FakeManager(_Obj):
    def __init__(self, hk: FakeHakeeper) -> None:
        super().__init__(
            hk, MANAGER_IFACE, ROOT_PATH, Version="0.1.0", ConfigFile="/etc/hakeeper/hk.yaml",
            RouterId="lb1", StartTime=time.time() - 3725, Reloads=2, LvsBackend="nftables",
            Counters={"reload_failed": 1, "vrid_err": 0},
        )  # fmt: skip

    @dbus_signal()
    def Reloaded(self, changes: list[str]) -> StrList:
        return changes

    def _reload(self) -> list[str]:
        self.hk.control("Reload")
        if self.hk.config_errors:
            raise DBusError(HK + "ConfigInvalid", "\n".join(self.hk.config_errors))
        return ["instance VI_3 added", "real server 198.18.1.12:80 added to " + VS4]

    @method()
    def Reload(self) -> StrList:
        changes = self._reload()
        self.change(Reloads=self.p["Reloads"] + 1)
        self.Reloaded(changes)
        return changes

    @method()
    def CheckReload(self) -> StrList:
        return self._reload()

    @method()
    async def Dump(self) -> DBusStr:
        if self.hk.stall:
            await asyncio.sleep(self.hk.stall)
        return json.dumps({"version": "0.1.0", "instances": sorted(self.hk.instances)})

    @method()
    def ListInstances(self) -> InstanceRows:
        rows = [[i.p[c] if c != "Path" else i.path for c in INSTANCE_COLUMNS]
                for i in self.hk.instances.values()]  # fmt: skip
        return rows + self.hk.extra_instance_rows

    @method()
    def ListGroups(self) -> GroupRows:
        return [[g.p["Name"], g.p["State"], g.p["Members"], g.p["LastReason"], g.path]
                for g in self.hk.groups.values()]  # fmt: skip

    @method()
    def ListVirtualServers(self) -> VsRows:
        out = []
        for v in self.hk.vss.values():
            rss = [r for r in self.hk.rss.values() if r.p["VirtualServerName"] == v.p["Name"]]
            out.append([
                v.p["Name"], v.p["Protocol"], v.p["Scheduler"], v.p["Method"],
                v.p["Address"], v.p["QuorumUp"], v.p["SorryServerActive"],
                sum(1 for r in rss if r.p["Alive"]), len(rss), v.p["Counters"].get("conns", 0),
                v.path,
            ])  # fmt: skip
        return out

    @method()
    def ListRealServers(self) -> RsRows:
        rows = [[r.p[c] if c not in ("Connections", "Path") else
                 (r.p["Counters"].get("conns", 0) if c == "Connections" else r.path)
                 for c in RS_COLUMNS] for r in self.hk.rss.values()]  # fmt: skip
        # a `watch` has seeded once this answer is out: let the test make things happen
        for hook in self.hk.after_seed:
            asyncio.get_running_loop().call_soon(hook)
        self.hk.after_seed.clear()
        return rows


for _cls, _view in (
    (FakeInstance, InstanceObject), (FakeGroup, GroupObject), (FakeManager, ManagerObject),
    (FakeVirtualServer, VirtualServerObject), (FakeRealServer, RealServerObject),
):  # fmt: skip
    _with_props(_cls, _view)


class FakeHakeeper:
    """The service, on its own event loop in a thread (the client under test runs its own)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.deny = False  # control calls refused (as for a caller that is not root)
        self.fail: str | None = None  # control calls fail with Error.Failed and this message
        self.config_errors: list[str] = []
        self.stall = 0.0  # Dump answers this late
        self.garps: list[str] = []
        self.calls: list[str] = []
        self.after_seed: list[Callable[[], None]] = []
        self.extra_instance_rows: list[list[Any]] = []
        self.instances: dict[str, FakeInstance] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.vss: dict[str, FakeVirtualServer] = {}
        self.rss: dict[tuple[str, str], FakeRealServer] = {}
        self.run(self._start())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapped() -> Any:
            return fn()

        return self.run(wrapped())

    def control(self, member: str) -> None:
        self.calls.append(member)
        if self.deny:
            raise DBusError(DENIED, f"{member}: only root may control hakeeper")
        if self.fail is not None:
            raise DBusError(HK + "Failed", self.fail)

    @staticmethod
    def need_master(p: dict[str, Any]) -> None:
        if p["State"] != "MASTER":
            raise DBusError(HK + "NotMaster", f"{p['Name']} is {p['State']}, not MASTER")

    async def _start(self) -> None:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.manager = FakeManager(self)
        tracker = ["script", "chk_nginx", "UP", -20, False, False, 0, 0, ""]
        self.instances = {
            "VI_1": FakeInstance(
                self, "VI_1", State="MASTER", BasePriority=150, ConfigPriority=150,
                EffectivePriority=150, VRID=51, Interface="eth0", Family="IPv4", Version=3,
                AdvertInterval=1.0, VirtualAddresses=["198.18.0.100/24"],
                MasterAddress="198.18.0.1", Preempt=True, SyncGroup="VG_1",
                LastTransition=time.time() - 90, LastReason="master down timer expired",
                Trackers=[tracker], Counters={"advert_rcvd": 3, "advert_sent": 120},
            ),
            "VI_2": FakeInstance(
                self, "VI_2", State="BACKUP", BasePriority=100, ConfigPriority=100,
                EffectivePriority=100, VRID=52, Interface="eth1", Family="IPv6", Version=3,
                AdvertInterval=0.5, VirtualAddresses=["fd00:198:18::100/64"],
                MasterAddress="fe80::2", Preempt=False,
                LastReason="higher priority (150) advert from fe80::2",
            ),
        }  # fmt: skip
        self.groups = {"VG_1": FakeGroup(self, "VG_1", ["VI_1"], State="MASTER")}
        self.vss = {
            VS4: FakeVirtualServer(
                self, VS4, Address="198.18.0.100", Port=80, Family="IPv4", Protocol="TCP",
                Scheduler="wrr", Method="NAT", Quorum=1, QuorumUp=True,
                Counters={"conns": 42},
            ),
            VS6: FakeVirtualServer(
                self, VS6, Address="fd00:198:18::100", Port=443, Family="IPv6",
                Protocol="TCP", Scheduler="rr", Method="DR", Quorum=1, QuorumUp=True,
            ),
        }  # fmt: skip
        for vs, rs, alive in ((VS4, RS1, True), (VS4, RS2, True), (VS6, RS6, True)):
            self.rss[(vs, rs)] = FakeRealServer(
                self, vs, rs, Alive=alive, Enabled=True, Weight=1, ConfigWeight=1,
                InPool=True, PoolWeight=1, LastDetail="connected",
                Checkers=[["TCP_CHECK", True, 10, 0, "connected"]], Counters={"conns": 21},
            )  # fmt: skip
        for vs, obj in self.vss.items():
            obj.p["RealServers"] = [r.path for (v, _), r in self.rss.items() if v == vs]
        for obj in (
            self.manager, *self.instances.values(), *self.groups.values(),
            *self.vss.values(), *self.rss.values(),
        ):  # fmt: skip
            self.bus.export(obj.path, obj)
        self.bus.add_message_handler(self._unknown_object)
        await self.bus.request_name(BUS_NAME)

    def _unknown_object(self, msg: Message) -> bool:
        """As the daemon: a call to a path with no object is UnknownObject."""
        if (
            msg.message_type is MessageType.METHOD_CALL
            and (msg.path or "").startswith(ROOT_PATH + "/")
            and msg.path not in self.bus._path_exports
        ):
            raise DBusError("org.freedesktop.DBus.Error.UnknownObject", f"no object {msg.path}")
        return False

    def rs_down(self, vs: str, rs: str, detail: str) -> None:
        """A checker fails: the server leaves the pool; the last one takes the quorum."""
        self.rss[(vs, rs)].change(Alive=False, InPool=False, PoolWeight=-1, LastDetail=detail)
        if not any(r.p["Alive"] for (v, _), r in self.rss.items() if v == vs):
            self.vss[vs].change(QuorumUp=False)

    def close(self) -> None:
        async def stop() -> None:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()

        with contextlib.suppress(Exception):
            self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def hk(bus_address: str) -> Iterator[FakeHakeeper]:
    fake = FakeHakeeper(bus_address)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def ctl(
    hk: FakeHakeeper, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """hakeeperctl on the private bus, in this process: (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--bus", hk.address, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def ok(ctl: Callable[..., tuple[int, str, str]]) -> Callable[..., str]:
    """hakeeperctl that must succeed quietly: its stdout."""

    def run(*argv: str) -> str:
        code, out, err = ctl(*argv)
        assert (code, err) == (EXIT_OK, ""), err
        return out

    return run


# -- rendering (no bus) -----------------------------------------------------------------

NOW = 1_800_000_000.0


def _instance_row(**kw: Any) -> dict[str, Any]:
    row = dict(
        Name="VI_1", State="MASTER", Interface="eth0", Family="IPv4", VRID=51, Version=3,
        BasePriority=150, EffectivePriority=130, AdvertInterval=1.0,
        VirtualAddresses=["198.18.0.100/24", "198.18.0.101/24"], MasterAddress="198.18.0.1",
        Preempt=True, Maintenance=False, LastTransition=NOW - 5, LastReason="x",
        Path=instance_path("VI_1"),
    )  # fmt: skip
    row.update(kw)
    return row


def test_instances_table_lines_up_columns_and_dashes_empty_cells():
    other = _instance_row(
        Name="VI_20", State="BACKUP", MasterAddress="", VirtualAddresses=[], Family="IPv6",
        Version=2,
    )  # fmt: skip
    assert render.instances_table([_instance_row(), other]).splitlines() == [
        "NAME   STATE   PRIO     VRID  INTERFACE  VERSION  MASTER      VIPS",
        "VI_1   MASTER  130/150  51    eth0       v3 IPv4  198.18.0.1  198.18.0.100/24,"
        "198.18.0.101/24",
        "VI_20  BACKUP  130/150  51    eth0       v2 IPv6  -           -",
    ]


def test_empty_tables_are_just_the_header():
    assert render.groups_table([]) == "NAME  STATE  MEMBERS  LAST CHANGE"
    assert render.real_servers_table([]).split() == [
        "VIRTUAL", "SERVER", "REAL", "SERVER", "STATE", "WEIGHT", "IN", "POOL", "CONNS", "DETAIL"
    ]  # fmt: skip


def test_server_tables_say_up_down_drained_and_not_in_table():
    rs = [dict(zip(RS_COLUMNS, r, strict=True)) for r in (
        (VS4, RS1, True, True, True, 3, 3, "connected", 7, "/p1"),
        (VS4, RS2, False, False, False, 1, -1, "connection refused", 0, "/p2"),
    )]  # fmt: skip
    lines = render.real_servers_table(rs).splitlines()
    assert lines[1].split() == [VS4, RS1, "UP", "3", "3", "7", "connected"]
    assert lines[2].split() == [VS4, RS2, "DOWN", "drained", "1", "-", "0", "connection", "refused"]
    vs = [dict(zip(VS_COLUMNS, r, strict=True)) for r in (
        (VS4, "TCP", "wrr", "NAT", "198.18.0.100", False, True, 0, 2, 9, "/v"),
    )]  # fmt: skip
    assert render.virtual_servers_table(vs).splitlines()[1].split() == [
        VS4, "wrr", "NAT", "DOWN", "0/2", "active", "9"
    ]  # fmt: skip


def test_properties_view_formats_times_durations_lists_and_nested_values():
    props = {
        "Name": "VI_1", "State": "MASTER", "Preempt": True, "AdvertInterval": 0.5,
        "LastTransition": NOW - 125, "MasterAddress": "", "VirtualAddresses": ["a/24", "b/24"],
        "MemberPaths": ["/hidden"], "Trackers": [
            {"Kind": "script", "Name": "chk", "State": "UP", "Weight": -20, "Reverse": False},
        ],
        "Counters": {"advert_rcvd": 3, "become_master": 1},
        "RealServers": [real_server_path(VS4, RS1)],
    }  # fmt: skip
    text = render.properties(props, NOW)
    lines = text.splitlines()
    assert lines[0] == "Name:             VI_1"
    assert "Preempt:          yes" in lines and "AdvertInterval:   0.5s" in lines
    assert "MasterAddress:    -" in lines and "VirtualAddresses: a/24, b/24" in lines
    assert any(
        line.startswith("LastTransition:   ") and line.endswith("(2m5s ago)") for line in lines
    )
    assert "hidden" not in text  # MemberPaths: the names are shown already
    assert f"RealServers:      {RS1}" in lines  # paths shown as the names they escape
    i = lines.index("Trackers:")
    assert lines[i + 1].split() == ["Kind", "Name", "State", "Weight", "Reverse"]
    assert lines[i + 2].split() == ["script", "chk", "UP", "-20", "no"]
    i = lines.index("Counters:")
    assert lines[i + 1 : i + 3] == ["  advert_rcvd    3", "  become_master  1"]


def test_duration_keeps_the_two_largest_units():
    assert [render.duration(s) for s in (0.1, 5, 59, 61, 3725, 90061)] == [
        "0.1s", "5s", "59s", "1m1s", "1h2m", "1d1h"
    ]  # fmt: skip


def test_status_data_counts_states_and_text_summarises_them():
    manager = {"Version": "0.1.0", "ConfigFile": "/c.yaml", "RouterId": "lb1",
               "StartTime": NOW - 3725, "Reloads": 2, "LvsBackend": "nftables",
               "Counters": {"reload_failed": 1, "vrid_err": 0}}  # fmt: skip
    inst = [_instance_row(State=s) for s in ("MASTER", "BACKUP", "MASTER")]
    vs = [{"QuorumUp": True, "RealServersAlive": 2, "RealServersTotal": 3},
          {"QuorumUp": False, "RealServersAlive": 0, "RealServersTotal": 1}]  # fmt: skip
    data = render.status_data(manager, inst, [{"State": "MASTER"}], vs)
    assert data["Instances"] == {"BACKUP": 1, "MASTER": 2}
    assert data["VirtualServers"] == {"Total": 2, "QuorumUp": 1}
    assert data["RealServers"] == {"Total": 4, "Alive": 2}
    assert render.status_text(data, NOW).splitlines() == [
        "hakeeper 0.1.0  router_id lb1",
        "config /c.yaml  up 1h2m  reloads 2",
        "instances: 1 BACKUP, 2 MASTER",
        "sync groups: 1 MASTER",
        "virtual servers: 2 on nftables (1 quorum down), real servers 2/4 up",
        "counters: reload_failed 1",
    ]


def test_event_line_reads_like_the_daemon_log():
    e = {
        "Time": NOW + 0.25,
        "Kind": "instance",
        "Name": "VI_1",
        "VirtualServerName": "",
        "Old": "BACKUP",
        "New": "MASTER",
        "Reason": "master down timer expired",
        "Path": "/",
    }
    assert render.event_line(e).endswith(
        ".250 instance VI_1: BACKUP -> MASTER (master down timer expired)"
    )
    rs = {**e, "Kind": "real_server", "Name": RS1, "VirtualServerName": VS4, "Old": "UP",
          "New": "DOWN", "Reason": ""}  # fmt: skip
    assert render.event_line(rs).endswith(f" real_server {VS4} {RS1}: UP -> DOWN")


# -- arguments (no bus) -----------------------------------------------------------------


def test_options_go_before_or_after_the_command_and_the_env_names_the_bus(monkeypatch):
    monkeypatch.delenv("HAKEEPER_BUS", raising=False)
    a = parse(["show", "instances"])
    assert (a.bus, a.output, a.timeout, a.name) == ("system", "table", 25.0, None)
    a = parse(["--bus", "session", "-o", "json", "show", "groups", "VG_1"])
    assert (a.bus, a.output, a.what, a.name) == ("session", "json", "groups", "VG_1")
    a = parse(["-o", "json", "show", "instances", "--bus", "unix:path=/x", "--timeout", "2"])
    assert (a.bus, a.output, a.timeout) == ("unix:path=/x", "json", 2.0)
    monkeypatch.setenv("HAKEEPER_BUS", "session")
    assert parse(["status"]).bus == "session"
    assert parse(["--bus", "system", "status"]).bus == "system"


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["set-priority", "VI_1", "200"], {"name": "VI_1", "priority": 200}),
        (["failover", "VI_1"], {"name": "VI_1", "group": False}),
        (["failover", "--group", "VG_1"], {"name": "VG_1", "group": True}),
        (["maintenance", "on", "VI_1"], {"state": "on", "name": "VI_1"}),
        (["weight", VS4, RS1, "5"], {"virtual_server": VS4, "real_server": RS1, "weight": 5}),
        (["weight", VS4, RS1, "--reset"], {"weight": None, "reset": True}),
        (["drain", VS6, RS6], {"virtual_server": VS6, "real_server": RS6}),
        (["reload", "--check"], {"check": True}),
        (["watch", "--count", "3"], {"count": 3}),
        (["show", "real-servers", VS4, RS1], {"name": VS4, "real_server": RS1}),
    ],
)
def test_commands_parse(argv, expect):
    args = vars(parse(argv))
    assert {k: args[k] for k in expect} == expect


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["show"],
        ["show", "nodes"],
        ["show", "instances", "VI_1", "extra"],
        ["maintenance", "maybe", "VI_1"],
        ["set-priority", "VI_1", "high"],
        ["weight", VS4, RS1],
        ["weight", VS4, RS1, "3", "--reset"],
        ["--timeout", "0", "status"],
        ["completion", "zsh"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_help_lists_the_exit_codes(capsys):
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for line in ("0  success", "3  hakeeper is not running", "5  no such instance"):
        assert line in out


def test_error_names_map_to_exit_codes():
    d = "org.freedesktop.DBus.Error."
    assert {name: exit_code(name) for name in (
        HK + "NotMaster", HK + "ConfigInvalid", HK + "Failed", HK + "InvalidArgs",
        d + "InvalidArgs", d + "UnknownMethod", d + "ServiceUnknown", d + "NameHasNoOwner",
        d + "AccessDenied", d + "UnknownObject", d + "NoReply",
    )} == {
        HK + "NotMaster": 1, HK + "ConfigInvalid": 1, HK + "Failed": 1, HK + "InvalidArgs": 2,
        d + "InvalidArgs": 1, d + "UnknownMethod": 1, d + "ServiceUnknown": 3,
        d + "NameHasNoOwner": 3, d + "AccessDenied": 4, d + "UnknownObject": 5, d + "NoReply": 1,
    }  # fmt: skip


def test_bus_addresses(monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/s")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/u")
    assert ctl_client.bus_address("system") == ("unix:path=/s", "the system bus")
    assert ctl_client.bus_address("session") == ("unix:path=/u", "the session bus")
    assert ctl_client.bus_address("tcp:host=h,port=1")[0] == "tcp:host=h,port=1"
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")
    with pytest.raises(CtlError) as e:
        ctl_client.bus_address("session")
    assert e.value.code == EXIT_NOT_RUNNING


# -- watch's signal logic (no bus) ------------------------------------------------------


def test_watcher_reports_changes_against_the_seed_and_ignores_repeats():
    w = Watcher(":1.7")
    rs_path, vs_path = real_server_path(VS4, RS1), virtual_server_path(VS4)
    w.seed(
        [{"Path": vs_path, "QuorumUp": True}], [{"Path": rs_path, "Alive": True, "Enabled": True}]
    )
    props = "org.freedesktop.DBus.Properties"

    def sig(path: str, iface: str, member: str, body: list[Any], sender: str = ":1.7") -> list:
        return w.on_signal(sender, path, iface, member, body, NOW)

    # a PropertiesChanged that repeats a known value is no transition
    assert (
        sig(rs_path, props, "PropertiesChanged", [RS_IFACE, {"Alive": Variant("b", True)}, []])
        == []
    )
    [e] = sig(rs_path, props, "PropertiesChanged",
              [RS_IFACE, {"Alive": Variant("b", False),
                          "LastDetail": Variant("s", "refused")}, []])  # fmt: skip
    assert (e["Kind"], e["VirtualServerName"], e["Name"], e["Old"], e["New"], e["Reason"]) == (
        "real_server", VS4, RS1, "UP", "DOWN", "refused"
    )  # fmt: skip
    [e] = sig(rs_path, props, "PropertiesChanged", [RS_IFACE, {"Enabled": Variant("b", False)}, []])
    assert (e["Old"], e["New"]) == ("DOWN", "DOWN drained")
    [e] = sig(
        vs_path, props, "PropertiesChanged", [VS_IFACE, {"QuorumUp": Variant("b", False)}, []]
    )
    assert (e["Kind"], e["Name"], e["Old"], e["New"], e["Reason"]) == (
        "virtual_server", VS4, "UP", "DOWN", "quorum lost"
    )  # fmt: skip
    [e] = sig(instance_path("VI_1"), INSTANCE_IFACE, "StateChanged", ["BACKUP", "MASTER", "why"])
    assert (e["Kind"], e["Name"], e["New"]) == ("instance", "VI_1", "MASTER")
    # someone else's signal on the same path is not hakeeper's
    assert sig(instance_path("VI_1"), INSTANCE_IFACE, "StateChanged", ["A", "B", ""], ":1.9") == []
    with pytest.raises(CtlError) as stopped:
        sig("/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
            [BUS_NAME, ":1.7", ""], "org.freedesktop.DBus")  # fmt: skip
    assert stopped.value.code == EXIT_NOT_RUNNING


# -- end to end over a private bus ------------------------------------------------------


def test_show_instances_is_one_list_call_with_the_contract_columns(ok):
    out = ok("show", "instances")
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATE",
        "PRIO",
        "VRID",
        "INTERFACE",
        "VERSION",
        "MASTER",
        "VIPS",
    ]
    assert lines[1].split() == ["VI_1", "MASTER", "150/150", "51", "eth0", "v3", "IPv4",
                                "198.18.0.1", "198.18.0.100/24"]  # fmt: skip
    assert lines[2].split()[:2] == ["VI_2", "BACKUP"]
    out = ok("show", "instances", "-o", "json")
    rows = json.loads(out)
    assert [list(r) for r in rows] == [list(INSTANCE_COLUMNS)] * 2
    assert rows[1]["Path"] == instance_path("VI_2") and rows[1]["VRID"] == 52
    assert rows[0]["VirtualAddresses"] == ["198.18.0.100/24"] and rows[1]["Preempt"] is False


def test_show_one_instance_is_getall_with_property_names_as_keys(ok):
    out = ok("-o", "json", "show", "instances", "VI_1")
    props = json.loads(out)
    assert set(props) == set(FakeInstance.signatures)  # every property of the contract
    assert props["Name"] == "VI_1" and props["EffectivePriority"] == 150
    assert props["Trackers"] == [{
        "Kind": "script", "Name": "chk_nginx", "State": "UP", "Weight": -20, "Reverse": False,
        "HasValue": False, "Value": 0, "Contribution": 0, "ViaGroup": "",
    }]  # fmt: skip
    assert props["Counters"] == {"advert_rcvd": 3, "advert_sent": 120}
    out = ok("show", "instances", "VI_1")
    assert "State:" in out and "MASTER" in out and "chk_nginx" in out


def test_show_groups_and_virtual_servers(ok):
    out = ok("show", "groups")
    assert out.splitlines()[1].split()[:3] == ["VG_1", "MASTER", "VI_1"]
    out = ok("-o", "json", "show", "virtual-servers")
    rows = json.loads(out)
    assert [list(r) for r in rows] == [list(VS_COLUMNS)] * 2
    assert rows[0]["RealServersAlive"] == 2 and rows[0]["Connections"] == 42
    # a name full of characters a path cannot hold: escaped on the way
    out = ok("-o", "json", "show", "virtual-servers", VS6)
    props = json.loads(out)
    assert (props["Name"], props["RealServers"]) == (VS6, [real_server_path(VS6, RS6)])
    out = ok("show", "virtual-servers", VS6)
    assert f"RealServers:        {RS6}" in out.splitlines()


def test_show_real_servers_all_by_name_and_one(ok):
    out = ok("show", "real-servers")
    assert len(out.splitlines()) == 4
    out = ok("-o", "json", "show", "real-servers", VS4)
    rows = json.loads(out)
    assert [r["Name"] for r in rows] == [RS1, RS2] and list(rows[0]) == list(RS_COLUMNS)
    out = ok("show", "real-servers", RS6)  # a real server's name finds it too
    assert [line.split()[1] for line in out.splitlines()[1:]] == [RS6]
    out = ok("-o", "json", "show", "real-servers", VS6, RS6)
    props = json.loads(out)
    assert set(props) == set(FakeRealServer.signatures)
    assert props["Checkers"] == [{"Kind": "TCP_CHECK", "Up": True, "Checks": 10, "Failures": 0,
                                  "LastDetail": "connected"}]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "instances", "VI_9"], "no instance named 'VI_9'"),
        (["show", "groups", "VG_9"], "no sync group named 'VG_9'"),
        (["show", "virtual-servers", "1.2.3.4:1/UDP"], "no virtual server named '1.2.3.4:1/UDP'"),
        (["show", "real-servers", "nope"], "no virtual server or real server named 'nope'"),
        (["show", "real-servers", VS4, RS6], f"no real server '{RS6}' in virtual server '{VS4}'"),
        (["set-priority", "VI_9", "100"], "no instance named 'VI_9'"),
        (["failover", "--group", "VI_1"], "no sync group named 'VI_1'"),
        (["drain", VS6, RS1], f"no real server '{RS1}' in virtual server '{VS6}'"),
    ],
)
def test_unknown_objects_exit_5(ctl, argv, message):
    code, out, err = ctl(*argv)
    assert (code, out, err) == (EXIT_NOT_FOUND, "", f"hakeeperctl: {message}\n")


def test_priority_set_and_reset_with_the_daemons_range_check(ctl, hk):
    assert ctl("set-priority", "VI_2", "200") == (EXIT_OK, "", "")
    props = json.loads(ctl("-o", "json", "show", "instances", "VI_2")[1])
    assert (props["BasePriority"], props["PriorityOverridden"]) == (200, True)
    # in a byte, so it goes to hakeeper, which refuses it: usage error, its message
    assert ctl("set-priority", "VI_2", "0") == (
        EXIT_USAGE, "", "hakeeperctl: priority 0 is out of range 1..254\n"
    )  # fmt: skip
    # not even a byte: refused here, same words
    assert ctl("set-priority", "VI_2", "300")[::2] == (
        EXIT_USAGE, "hakeeperctl: priority 300 is out of range 1..254\n"
    )  # fmt: skip
    assert ctl("reset-priority", "VI_2")[0] == EXIT_OK
    assert json.loads(ctl("-o", "json", "show", "instances", "VI_2")[1])["BasePriority"] == 100
    assert hk.calls == ["SetPriority", "SetPriority", "ResetPriority"]


def test_failover_needs_a_master(ctl, hk):
    assert ctl("failover", "VI_2") == (
        EXIT_FAILED, "", "hakeeperctl: VI_2 is BACKUP, not MASTER\n"
    )  # fmt: skip
    assert ctl("failover", "VI_1")[0] == EXIT_OK
    assert (hk.instances["VI_1"].p["State"], hk.instances["VI_1"].p["Yielding"]) == (
        "BACKUP", True
    )  # fmt: skip
    hk.call(lambda: hk.groups["VG_1"].p.update(State="BACKUP"))
    assert ctl("failover", "--group", "VG_1") == (
        EXIT_FAILED, "", "hakeeperctl: VG_1 is BACKUP, not MASTER\n"
    )  # fmt: skip


def test_group_failover_moves_the_members(ctl, hk):
    assert ctl("failover", "--group", "VG_1") == (EXIT_OK, "", "")
    assert hk.groups["VG_1"].p["State"] == "BACKUP"
    assert hk.instances["VI_1"].p["State"] == "BACKUP"


def test_maintenance_and_garp(ctl, hk):
    assert ctl("garp", "VI_1") == (EXIT_OK, "", "")
    assert hk.garps == ["VI_1"]
    assert ctl("garp", "VI_2")[0] == EXIT_FAILED
    assert ctl("maintenance", "on", "VI_1")[0] == EXIT_OK
    assert hk.instances["VI_1"].p["State"] == "FAULT"
    assert ctl("maintenance", "off", "VI_1")[0] == EXIT_OK
    assert (hk.instances["VI_1"].p["State"], hk.instances["VI_1"].p["Maintenance"]) == (
        "BACKUP", False
    )  # fmt: skip


def test_drain_enable_and_weights(ctl, hk):
    rs = hk.rss[(VS4, RS2)]
    assert ctl("drain", VS4, RS2) == (EXIT_OK, "", "")
    assert (rs.p["Enabled"], rs.p["PoolWeight"]) == (False, 0)
    assert "UP drained" in ctl("show", "real-servers", VS4)[1]
    assert ctl("enable", VS4, RS2)[0] == EXIT_OK and rs.p["Enabled"] is True
    assert ctl("weight", VS4, RS2, "7")[0] == EXIT_OK and rs.p["Weight"] == 7
    assert ctl("weight", VS4, RS2, "70000") == (
        EXIT_USAGE, "", "hakeeperctl: weight 70000 is out of range 0..65535\n"
    )  # fmt: skip
    assert ctl("weight", VS4, RS2, "--reset")[0] == EXIT_OK and rs.p["Weight"] == 1
    assert hk.calls == ["Disable", "Enable", "SetWeight", "SetWeight", "ResetWeight"]


def test_reload_prints_changes_check_applies_nothing_and_errors_list_every_line(ctl, hk):
    code, out, _ = ctl("reload", "--check")
    assert (code, out.splitlines()) == (
        EXIT_OK,
        ["instance VI_3 added", f"real server 198.18.1.12:80 added to {VS4}"],
    )
    assert hk.manager.p["Reloads"] == 2
    code, out, _ = ctl("-o", "json", "reload")
    assert (code, json.loads(out)[0]) == (EXIT_OK, "instance VI_3 added")
    assert hk.manager.p["Reloads"] == 3
    hk.config_errors = [
        "hk.yaml:3: priority 300 is out of range 1..254",
        "hk.yaml:9: unknown keyword 'bogus'",
    ]
    assert ctl("reload") == (EXIT_FAILED, "", (
        "hakeeperctl: hk.yaml:3: priority 300 is out of range 1..254\n"
        "hakeeperctl: hk.yaml:9: unknown keyword 'bogus'\n"
    ))  # fmt: skip


def test_dump_and_status(ok):
    out = ok("dump")
    assert json.loads(out)["instances"] == ["VI_1", "VI_2"]
    assert "\n  " in out  # indented for people
    out = ok("dump", "-o", "json")
    assert out.count("\n") == 1  # the daemon's compact document as it is
    out = ok("status")
    assert out.splitlines() == [
        "hakeeper 0.1.0  router_id lb1",
        "config /etc/hakeeper/hk.yaml  up 1h2m  reloads 2",
        "instances: 1 BACKUP, 1 MASTER",
        "sync groups: 1 MASTER",
        "virtual servers: 2 on nftables, real servers 3/3 up",
        "counters: reload_failed 1",
    ]
    data = json.loads(ok("status", "-o", "json"))
    # every Manager property, then the counts
    assert set(list(data)[:-4]) == set(FakeManager.signatures)
    assert list(data)[-4:] == ["Instances", "Groups", "VirtualServers", "RealServers"]
    assert data["Instances"] == {"BACKUP": 1, "MASTER": 1}


def test_permission_denied_exits_4_and_failures_exit_1(ctl, hk):
    hk.deny = True
    assert ctl("set-priority", "VI_1", "100") == (
        EXIT_DENIED, "",
        "hakeeperctl: permission denied: SetPriority: only root may control hakeeper\n",
    )  # fmt: skip
    assert ctl("show", "instances")[0] == EXIT_OK  # reading is for everyone
    hk.deny, hk.fail = False, "eth0: no such device"
    assert ctl("garp", "VI_1") == (EXIT_FAILED, "", "hakeeperctl: eth0: no such device\n")


def test_not_running_exits_3(bus_address, capsys):
    # a bus nobody on it owns hakeeper's name
    assert main(["--bus", bus_address, "status"]) == EXIT_NOT_RUNNING
    err = capsys.readouterr().err
    owner = f"nobody owns {BUS_NAME} on the bus at {bus_address}"
    assert err == f"hakeeperctl: hakeeper is not running ({owner})\n"
    # no bus at all
    assert main(["--bus", "unix:path=/nonexistent/bus", "show", "instances"]) == EXIT_NOT_RUNNING
    assert "cannot connect" in capsys.readouterr().err
    assert main(["--bus", "nonsense", "status"]) == EXIT_USAGE


def test_no_answer_in_time_exits_1(ctl, hk):
    hk.stall = 2.0
    assert ctl("--timeout", "0.2", "dump") == (
        EXIT_FAILED, "", "hakeeperctl: hakeeper did not answer Dump within 0.2s\n"
    )  # fmt: skip


def test_a_bus_that_hangs_up_on_us_is_permission_denied(tmp_path, capsys):
    """A bus that accepts the socket and closes it during authentication is how a bus
    turns away a user it does not allow (another user's session bus)."""
    path = tmp_path / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(64)
        conn.close()

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    try:
        assert main(["--bus", f"unix:path={path}", "status"]) == EXIT_DENIED
    finally:
        t.join(5)
        server.close()
    # dbus-fast sees a reset or an end of stream, depending on timing: the same answer
    assert capsys.readouterr().err.startswith(
        f"hakeeperctl: the bus at unix:path={path} refused the connection for this user ("
    )


def test_the_installed_command_honours_hakeeper_bus(hk):
    env = {**os.environ, "HAKEEPER_BUS": hk.address}
    r = subprocess.run([str(VENV_BIN / "hakeeperctl"), "-o", "json", "show", "groups"],
                       capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [g["Name"] for g in json.loads(r.stdout)] == ["VG_1"]
    r = subprocess.run([str(VENV_BIN / "hakeeperctl"), "failover", "VI_2"],
                       capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
    assert (r.returncode, r.stderr) == (EXIT_FAILED, "hakeeperctl: VI_2 is BACKUP, not MASTER\n")


def test_watch_streams_transitions_and_stops_after_count(ctl, hk):
    def happen() -> None:
        hk.instances["VI_2"].move("MASTER", "master down timer expired")
        hk.rss[(VS6, RS6)].change(LastDetail="connected")  # no transition: not an event
        hk.rs_down(VS6, RS6, "connection refused")  # the last one: the quorum goes too
        hk.groups["VG_1"].StateChanged("MASTER", "FAULT", "VI_1 is FAULT")

    hk.after_seed.append(happen)
    code, out, _ = ctl("-o", "json", "watch", "--count", "4")
    assert code == EXIT_OK
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["Kind"], e["Name"], e["Old"], e["New"], e["Reason"]) for e in events] == [
        ("instance", "VI_2", "BACKUP", "MASTER", "master down timer expired"),
        ("real_server", RS6, "UP", "DOWN", "connection refused"),
        ("virtual_server", VS6, "UP", "DOWN", "quorum lost"),
        ("group", "VG_1", "MASTER", "FAULT", "VI_1 is FAULT"),
    ]
    assert events[1]["VirtualServerName"] == VS6
    assert list(events[0]) == ["Time", "Kind", "Name", "VirtualServerName", "Old", "New",
                               "Reason", "Path"]  # fmt: skip

    hk.after_seed.append(lambda: hk.instances["VI_2"].move("BACKUP", "higher priority"))
    code, out, _ = ctl("watch", "--count", "1")
    assert out.rstrip().endswith("instance VI_2: MASTER -> BACKUP (higher priority)")


def test_watch_ends_when_hakeeper_leaves_the_bus(ctl, hk):
    async def leave() -> None:
        await hk.bus.release_name(BUS_NAME)

    hk.after_seed.append(lambda: asyncio.ensure_future(leave()))
    assert ctl("watch") == (EXIT_NOT_RUNNING, "", "hakeeperctl: hakeeper stopped\n")


def test_a_thousand_instances_are_one_quick_call(ctl, hk):
    template = [hk.instances["VI_2"].p[c] if c != "Path" else "/" for c in INSTANCE_COLUMNS]
    hk.extra_instance_rows = [
        [f"VI_{n}", *template[1:-1], instance_path(f"VI_{n}")] for n in range(1000)
    ]
    start = time.monotonic()
    code, out, _ = ctl("show", "instances")
    took = time.monotonic() - start
    assert code == EXIT_OK and len(out.splitlines()) == 1 + 2 + 1000
    assert took < 2.0, took  # generous: ~0.05 s here; a property call per row would be seconds


# -- bash completion --------------------------------------------------------------------


def test_the_shipped_completion_file_is_the_printed_script(capsys):
    assert main(["completion", "bash"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert printed == bash_script()
    assert (REPO / "completion" / "hakeeperctl.bash").read_text() == printed


def test_the_completion_script_knows_every_command_and_option():
    script = bash_script()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert name in script, name
        for action in p._actions:
            for opt in action.option_strings:
                if opt.startswith("--"):
                    assert opt in script, (name, opt)


def _complete(line: str, env: dict[str, str] | None = None) -> list[str]:
    script = REPO / "completion" / "hakeeperctl.bash"
    prog = f"""
source {script}
COMP_LINE={_sh(line)}; COMP_POINT=${{#COMP_LINE}}
_hakeeperctl
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})}
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=full_env,
                       timeout=30)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def _sh(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def test_bash_completes_commands_and_options_without_a_daemon():
    assert _complete("hakeeperctl s") == ["show", "status", "set-priority"]
    assert _complete("hakeeperctl show ") == [
        "instances",
        "groups",
        "virtual-servers",
        "real-servers",
    ]
    assert _complete("hakeeperctl reload --c") == ["--check"]
    assert _complete("hakeeperctl --bus s") == ["system", "session"]
    assert _complete("hakeeperctl -o ") == ["table", "json"]
    assert _complete("hakeeperctl maintenance o") == ["on", "off"]
    # a bus with no hakeeper: quietly nothing
    assert _complete("hakeeperctl --bus unix:path=/nonexistent show instances ") == []


def test_bash_completes_live_names_on_the_bus_the_line_names(hk):
    bus = f"--bus {hk.address}"
    assert _complete(f"hakeeperctl {bus} show instances ") == ["VI_1", "VI_2"]
    assert _complete(f"hakeeperctl {bus} failover --group V") == ["VG_1"]
    # HAKEEPER_BUS works too
    assert _complete("hakeeperctl garp VI_", {"HAKEEPER_BUS": hk.address}) == ["VI_1", "VI_2"]
    # ':' is a word break for readline: only the part after the last one is replaced
    assert _complete(f"hakeeperctl {bus} drain 198.18.0.100:") == ["80/TCP"]
    assert _complete(f"hakeeperctl {bus} drain [fd00:198:18::1") == ["100]:443/TCP"]
    assert _complete(f"hakeeperctl {bus} weight {VS4} ") == [RS1, RS2]
    assert _complete(f"hakeeperctl {bus} show real-servers {VS4} 198.18.1.1") == [RS1, RS2]
    assert _complete(f"hakeeperctl {bus} weight {VS4} 198.18.1.11:") == ["80"]
