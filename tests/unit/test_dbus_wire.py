"""Big replies marshalled in slices are byte for byte the reply marshalled at once; a full
socket does not cost the connection."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast._private.marshaller import Marshaller
from dbus_fast.aio import MessageBus

from hakeeper.dbus.names import ROOT_PATH, instance_path
from hakeeper.dbus.objects import HakeeperObjects
from hakeeper.dbus.service import DbusService
from hakeeper.dbus.wire import marshal_array, slices
from hakeeper.state import Runtime
from tests.unit.test_dbus_service import FakeControl, _bus_daemon, _end, add_instance


def rows(n: int) -> list[tuple[str, int, list[str], float]]:
    # strings of varying length: slices end at every alignment
    return [(f"VI_{'x' * (i % 7)}{i}", i, ["a" * (i % 3)] * (i % 4), i / 3) for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 49, 50, 51, 237])
def test_sliced_struct_array_equals_the_whole(n: int) -> None:
    sig = "a(siasd)"
    whole = bytes(Marshaller(sig, [rows(n)]).marshall())
    sliced = asyncio.run(marshal_array(sig, slices(rows(n)), as_dict=False))
    assert sliced == whole


@pytest.mark.parametrize("n", [0, 3, 120])
def test_sliced_dict_equals_the_whole(n: int) -> None:
    sig = "a{oa{sa{sv}}}"
    items = [
        (f"/o/{i}", {"i.f": {"A": Variant("s", "x" * (i % 5)), "B": Variant("ay", b"z" * i)}})
        for i in range(n)
    ]
    whole = bytes(Marshaller(sig, [dict(items)]).marshall())
    sliced = asyncio.run(marshal_array(sig, slices(items, 7), as_dict=True))
    assert sliced == whole


def test_big_replies_and_a_stalled_bus_daemon(tmp_path: Path) -> None:
    """237 instances (several slices) read back intact; then the bus daemon stops reading
    (SIGSTOP) while the daemon emits megabytes of signals: once it reads again, the connection
    is still the same one and answers."""
    socket = tmp_path / "bus"
    address = f"unix:path={socket}"

    async def scenario() -> None:
        bus_proc = _bus_daemon(socket)
        rt = Runtime()
        for i in range(237):
            add_instance(rt, f"VI_{i}")
        service = DbusService(rt, [HakeeperObjects(rt, FakeControl(rt))], address)
        try:
            assert await service.start()
            client = await MessageBus(bus_address=address).connect()
            reply = await client.call(Message(
                destination="org.hakeeper.Hakeeper1", path=ROOT_PATH,
                interface="org.freedesktop.DBus.ObjectManager", member="GetManagedObjects",
            ))  # fmt: skip
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            objects = reply.body[0]
            assert len(objects) == 237
            assert objects[instance_path("VI_236")]["org.hakeeper.Hakeeper1.Instance"][
                "Name"].value == "VI_236"  # fmt: skip
            listed = await client.call(Message(
                destination="org.hakeeper.Hakeeper1", path=ROOT_PATH,
                interface="org.hakeeper.Hakeeper1.Manager", member="ListInstances",
            ))  # fmt: skip
            assert [r[0] for r in listed.body[0]] == [f"VI_{i}" for i in range(237)]

            os.kill(bus_proc.pid, signal.SIGSTOP)
            try:
                for i in range(3000):  # ~3 MB: far more than a socket buffer holds
                    service.emit(ROOT_PATH, "org.hakeeper.Hakeeper1.Manager", "Reloaded",
                                 "as", [[f"line {i} " + "x" * 1000]])  # fmt: skip
                await asyncio.sleep(0.2)
            finally:
                os.kill(bus_proc.pid, signal.SIGCONT)
            await asyncio.sleep(0.5)
            assert service.bus is not None and service.bus.connected
            assert "dbus_reconnects" not in rt.global_counters
            again = await asyncio.wait_for(client.call(Message(
                destination="org.hakeeper.Hakeeper1", path=ROOT_PATH,
                interface="org.hakeeper.Hakeeper1.Manager", member="ListGroups",
            )), 10)  # fmt: skip
            assert again.message_type is MessageType.METHOD_RETURN
            client.disconnect()
        finally:
            await service.stop()
            if bus_proc.poll() is None:
                os.kill(bus_proc.pid, signal.SIGCONT)
            _end(bus_proc)

    asyncio.run(scenario())
