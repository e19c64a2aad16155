"""The D-Bus service against a real dbus-daemon (a private session bus, no root needed).

The runtime model here is built by hand (no VRRP running), so these tests pin the dispatch:
properties read the model, errors are named and counted, changes are signalled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from hakeeper.config.model import VirtualAddress, VrrpInstance
from hakeeper.control import ControlError
from hakeeper.dbus.names import BUS_NAME, INSTANCE_IFACE, MANAGER_IFACE, ROOT_PATH, instance_path
from hakeeper.dbus.objects import HakeeperObjects
from hakeeper.dbus.service import DbusService
from hakeeper.state import InstanceState, Runtime
from hakeeper.vrrp.stats import InstanceStats

PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"


class FakeControl:
    """Records orders; refuses the ones a real daemon would refuse for these states."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls: list[tuple[Any, ...]] = []

    def set_priority(self, instance: str, priority: int | None) -> None:
        self.calls.append(("set_priority", instance, priority))
        if priority is not None and not 1 <= priority <= 254:
            raise ControlError("InvalidArgs", f"priority {priority} is out of range 1..254")

    def failover(self, instance: str) -> None:
        if self.runtime.instances[instance].state != "MASTER":
            raise ControlError("NotMaster", f"{instance} is not MASTER")
        self.calls.append(("failover", instance))

    def maintenance(self, instance: str, on: bool) -> None:
        self.calls.append(("maintenance", instance, on))

    def send_garp(self, instance: str) -> None:
        self.calls.append(("send_garp", instance))

    def group_failover(self, group: str) -> None:
        self.calls.append(("group_failover", group))

    def rs_enable(self, vs: str, rs: str, enabled: bool) -> None:
        self.calls.append(("rs_enable", vs, rs, enabled))

    def rs_weight(self, vs: str, rs: str, weight: int | None) -> None:
        self.calls.append(("rs_weight", vs, rs, weight))

    def reload(self, dry_run: bool) -> list[str]:
        self.calls.append(("reload", dry_run))
        return ["vrrp_instance VI_2: added"]


def add_instance(rt: Runtime, name: str, state: str = "BACKUP") -> InstanceState:
    inst = VrrpInstance(
        name,
        "eth0",
        51,
        priority=100,
        virtual_ipaddress=(VirtualAddress(ipaddress.ip_address("198.18.0.100"), 24),),
    )
    view = InstanceState(config=inst, stats=InstanceStats(), state=state, effective_priority=100)
    rt.instances[name] = view
    return view


@pytest.fixture
def bus_address() -> Iterator[str]:
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    yield address
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(5)
    proc.stdout.close()


class Setup:
    def __init__(self, address: str) -> None:
        self.address = address
        self.runtime = Runtime(config_file="/etc/hakeeper/hakeeper.yaml", router_id="lab")
        self.control = FakeControl(self.runtime)
        self.service = DbusService(
            self.runtime, [HakeeperObjects(self.runtime, self.control)], address
        )
        self.client: MessageBus | None = None

    async def call(
        self, path: str, iface: str, member: str, sig: str = "", body: list[Any] | None = None
    ) -> Message:
        assert self.client is not None
        return await self.client.call(
            Message(
                destination=BUS_NAME,
                path=path,
                interface=iface,
                member=member,
                signature=sig,
                body=body or [],
            )
        )


@contextlib.asynccontextmanager
async def serving(address: str) -> AsyncIterator[Setup]:
    s = Setup(address)
    add_instance(s.runtime, "VI_1", "MASTER")
    assert await s.service.start()
    s.client = await MessageBus(bus_address=address).connect()
    try:
        yield s
    finally:
        s.client.disconnect()
        await s.service.stop()


def error_of(reply: Message) -> tuple[str | None, str]:
    assert reply.message_type is MessageType.ERROR, reply.body
    return reply.error_name, reply.body[0]


def test_properties_read_the_model(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            path = instance_path("VI_1")
            reply = await s.call(path, PROPS, "GetAll", "s", [INSTANCE_IFACE])
            props = {k: v.value for k, v in reply.body[0].items()}
            assert props["Name"] == "VI_1" and props["State"] == "MASTER"
            assert props["VirtualAddresses"] == ["198.18.0.100/24"]
            assert props["BasePriority"] == 100 and props["Family"] == "IPv4"
            s.runtime.instances["VI_1"].state = "BACKUP"  # the model changes: so does the read
            reply = await s.call(path, PROPS, "Get", "ss", [INSTANCE_IFACE, "State"])
            assert reply.body[0].value == "BACKUP"

    asyncio.run(scenario())


def test_get_managed_objects_returns_every_object(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            reply = await s.call(ROOT_PATH, OM, "GetManagedObjects")
            objects = reply.body[0]
            assert set(objects) == {instance_path("VI_1")}
            assert objects[instance_path("VI_1")][INSTANCE_IFACE]["VRID"].value == 51

    asyncio.run(scenario())


def test_list_instances_is_one_row_per_instance(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            add_instance(s.runtime, "VI_2")
            reply = await s.call(ROOT_PATH, MANAGER_IFACE, "ListInstances")
            assert reply.signature == "a(ssssyyyydassbbdso)"
            rows = {r[0]: r for r in reply.body[0]}
            assert rows["VI_1"][1] == "MASTER" and rows["VI_2"][1] == "BACKUP"
            assert rows["VI_2"][-1] == instance_path("VI_2")

    asyncio.run(scenario())


def test_bad_calls_get_named_errors_and_are_counted(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            path = instance_path("VI_1")
            cases = [
                (s.call(path, PROPS, "Get", "ss", [INSTANCE_IFACE, "Nope"]), "UnknownProperty"),
                (s.call(path, PROPS, "Set", "ssv", [INSTANCE_IFACE, "State", Variant("s", "X")]),
                 "PropertyReadOnly"),
                (s.call(instance_path("VI_9"), INSTANCE_IFACE, "Failover"), "UnknownObject"),
                (s.call(path, INSTANCE_IFACE, "SetPriority", "s", ["high"]), "InvalidArgs"),
                (s.call(path, INSTANCE_IFACE, "Explode"), "UnknownMethod"),
                (s.call(path, "org.example.Nothing", "Failover"), "UnknownInterface"),
            ]  # fmt: skip
            for call, expected in cases:
                name, text = error_of(await call)
                assert name == f"org.freedesktop.DBus.Error.{expected}", text
                assert text
            assert s.runtime.global_counters["dbus_bad_call"] == len(cases)
            assert s.control.calls == []

    asyncio.run(scenario())


def test_control_methods_reach_the_control_layer(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            path = instance_path("VI_1")
            ok = await s.call(path, INSTANCE_IFACE, "SetPriority", "y", [120])
            assert ok.message_type is MessageType.METHOD_RETURN
            await s.call(path, INSTANCE_IFACE, "Maintenance", "b", [True])
            await s.call(path, INSTANCE_IFACE, "Failover")
            changes = await s.call(ROOT_PATH, MANAGER_IFACE, "CheckReload")
            assert changes.body == [["vrrp_instance VI_2: added"]]
            assert s.control.calls == [
                ("set_priority", "VI_1", 120),
                ("maintenance", "VI_1", True),
                ("failover", "VI_1"),
                ("reload", True),
            ]
            # a refusal of the control layer is a hakeeper error with its message
            name, text = error_of(await s.call(path, INSTANCE_IFACE, "SetPriority", "y", [0]))
            assert name == "org.hakeeper.Hakeeper1.Error.InvalidArgs"
            assert text == "priority 0 is out of range 1..254"
            s.runtime.instances["VI_1"].state = "BACKUP"
            name, _ = error_of(await s.call(path, INSTANCE_IFACE, "Failover"))
            assert name == "org.hakeeper.Hakeeper1.Error.NotMaster"
            assert s.runtime.global_counters["dbus_refused"] == 2

    asyncio.run(scenario())


def test_changes_are_signalled_once_and_new_objects_announced(bus_address: str) -> None:
    async def scenario() -> None:
        async with serving(bus_address) as s:
            assert s.client is not None
            seen: list[Message] = []
            s.client.add_message_handler(lambda m: seen.append(m) if m.message_type is
                                         MessageType.SIGNAL else None)  # fmt: skip
            await s.client.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                body=[f"type='signal',sender='{BUS_NAME}'"],
            ))  # fmt: skip
            view = s.runtime.instances["VI_1"]
            view.state, view.last_reason = "BACKUP", "higher priority (150) advert"
            s.runtime.emit("instance", "VI_1", "state")
            s.runtime.emit("instance", "VI_1", "state")  # a repeat changes nothing more
            add_instance(s.runtime, "VI_2")
            s.runtime.emit("instance", "VI_2", "added")
            for _ in range(100):
                await asyncio.sleep(0.01)
                if len(seen) >= 3:
                    break
            await asyncio.sleep(0.1)
            members = [(m.path, m.member) for m in seen]
            assert members.count((instance_path("VI_1"), "StateChanged")) == 1
            assert members.count((instance_path("VI_1"), "PropertiesChanged")) == 1
            assert (ROOT_PATH, "InterfacesAdded") in members
            state = next(m for m in seen if m.member == "StateChanged")
            assert state.body == ["MASTER", "BACKUP", "higher priority (150) advert"]
            changed = next(m for m in seen if m.member == "PropertiesChanged")
            assert changed.body[0] == INSTANCE_IFACE
            assert set(changed.body[1]) == {"State", "LastReason"}
            added = next(m for m in seen if m.member == "InterfacesAdded")
            assert added.body[0] == instance_path("VI_2")

    asyncio.run(scenario())


def test_no_bus_means_d_bus_off_not_a_crash(tmp_path: Any) -> None:
    async def scenario() -> None:
        rt = Runtime()
        service = DbusService(
            rt, [HakeeperObjects(rt, FakeControl(rt))], f"unix:path={tmp_path}/none"
        )
        assert await service.start() is False
        await service.stop()

    asyncio.run(scenario())


def _bus_daemon(socket: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address=unix:path={socket}",
         "--print-address=1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip()
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def test_a_restarted_bus_daemon_gets_the_names_back(tmp_path: Path) -> None:
    """The bus daemon restarts (an upgrade, a crash): hakeeper reconnects by itself."""
    socket = tmp_path / "bus"
    address = f"unix:path={socket}"

    async def owner() -> str | None:
        client = await MessageBus(bus_address=address).connect()
        try:
            reply = await client.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                body=[BUS_NAME],
            ))  # fmt: skip
            return reply.body[0]
        finally:
            client.disconnect()

    async def scenario() -> None:
        first = _bus_daemon(socket)
        rt = Runtime()
        add_instance(rt, "VI_1")
        service = DbusService(rt, [HakeeperObjects(rt, FakeControl(rt))], address)
        try:
            assert await service.start()
            assert await owner() is True
            _end(first)
            socket.unlink(missing_ok=True)
            await asyncio.sleep(0.3)
            second = _bus_daemon(socket)
            try:
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    with contextlib.suppress(Exception):
                        if await owner():
                            break
                assert await owner() is True
                assert rt.global_counters["dbus_reconnects"] == 1
            finally:
                await service.stop()
                _end(second)
        finally:
            _end(first)

    asyncio.run(scenario())
