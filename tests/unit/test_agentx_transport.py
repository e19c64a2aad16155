"""The asyncio shell: address syntax, backoff while no master listens, a scripted master over
TCP (open, register, a Get, garbage on the wire), and close() from any state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.session import Registration, State
from hakeeper.snmp.agentx.transport import Address, Subagent, parse_address
from tests.unit.agentxhelp import DictView

ROOT = (1, 3, 6, 1, 3, 9999)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("unix:/var/agentx/master", Address("unix", path="/var/agentx/master")),
        ("/run/agentx", Address("unix", path="/run/agentx")),
        ("tcp:127.0.0.1:705", Address("tcp", host="127.0.0.1", port=705)),
        ("tcp:[::1]:705", Address("tcp", host="::1", port=705)),
        ("localhost:705", Address("tcp", host="localhost", port=705)),
    ],
)
def test_address_syntax(text: str, address: Address) -> None:
    assert parse_address(text) == address
    assert parse_address(str(address)) == address


@pytest.mark.parametrize("text", ["udp:127.0.0.1:705", "unix:", "tcp:host", "tcp:h:0", "x"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


async def _within(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def test_backoff_doubles_while_no_master_and_close_ends_run(tmp_path: Path) -> None:
    async def main() -> None:
        agent = Subagent(
            DictView({}),
            [Registration(ROOT)],
            address=f"unix:{tmp_path}/nobody",
            min_backoff=0.05,
            max_backoff=0.2,
        )
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(0.7)  # attempts at 0, .05, .15, .35, .55 (then .75)
        assert 4 <= agent.stats.connect_failures <= 6
        assert agent._backoff == 0.2  # capped
        agent.close()  # in the middle of a backoff sleep
        await asyncio.wait_for(task, 1)
        assert agent.state is State.CLOSED

    asyncio.run(main())


class ScriptedMaster:
    """A TCP AgentX master played by the test with the codec under test."""

    def __init__(self) -> None:
        self.conns: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def start(self) -> int:
        self.server = await asyncio.start_server(
            lambda r, w: self.conns.put_nowait((r, w)), "127.0.0.1", 0
        )
        return self.server.sockets[0].getsockname()[1]

    @staticmethod
    async def read_pdu(r: asyncio.StreamReader) -> p.Pdu:
        head = await r.readexactly(p.HEADER_LEN)
        body = await r.readexactly(p.decode_header(head).payload_length)
        return p.decode(head + body)


def test_tcp_master_open_register_get_and_garbage() -> None:
    async def main() -> None:
        master = ScriptedMaster()
        port = await master.start()
        view = DictView({(*ROOT, 1, 0): p.Gauge32(3)})
        agent = Subagent(
            view,
            [Registration(ROOT, priority=50)],
            address=f"tcp:127.0.0.1:{port}",
            subagent_id=ROOT,
            min_backoff=0.05,
        )
        task = asyncio.create_task(agent.run())
        r, w = await asyncio.wait_for(master.conns.get(), 2)
        op = await master.read_pdu(r)
        assert isinstance(op, p.Open) and op.id == ROOT
        w.write(p.encode(p.Response(session_id=9, packet_id=op.packet_id)))
        reg = await master.read_pdu(r)
        assert isinstance(reg, p.Register) and (reg.subtree, reg.priority) == (ROOT, 50)
        # The Register answer and a Get in one write, the Get split across two writes.
        get = p.encode(p.Get(session_id=9, packet_id=77, ranges=(p.SearchRange((*ROOT, 1, 0)),)))
        w.write(p.encode(p.Response(session_id=9, packet_id=reg.packet_id)) + get[:7])
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(get[7:])
        resp = await master.read_pdu(r)
        assert isinstance(resp, p.Response) and resp.packet_id == 77
        assert resp.varbinds == (p.VarBind((*ROOT, 1, 0), p.Gauge32(3)),)
        assert agent.ready
        # A header no AgentX speaker sends: the subagent closes and comes back.
        w.write(b"GET / HTTP/1.1\r\n\r\nxx")
        bye = await master.read_pdu(r)
        assert bye == p.Close(session_id=9, reason=p.CloseReason.PARSE_ERROR)
        assert await r.read() == b""
        r2, w2 = await asyncio.wait_for(master.conns.get(), 2)
        op2 = await master.read_pdu(r2)
        assert isinstance(op2, p.Open) and op2.packet_id != op.packet_id
        assert agent.stats.parse_errors == 1 and agent.stats.connects == 2
        # Closing while open says goodbye properly.
        w2.write(p.encode(p.Response(session_id=10, packet_id=op2.packet_id)))
        await _within(lambda: agent.state is State.REGISTERING)
        agent.close()
        await asyncio.wait_for(task, 1)
        while not isinstance(pdu := await master.read_pdu(r2), p.Close):
            assert isinstance(pdu, p.Register)
        assert pdu.reason == p.CloseReason.SHUTDOWN
        for writer in (w, w2):
            writer.close()
        master.server.close()
        await master.server.wait_closed()

    asyncio.run(main())


def test_a_master_that_stops_reading_gets_no_pile_of_notifications() -> None:
    """The master answers Open and Register, then reads nothing more: once the socket is
    full, notifications are dropped and counted instead of queued without end."""

    async def main() -> None:
        master = ScriptedMaster()
        port = await master.start()
        agent = Subagent(DictView({}), [Registration(ROOT)], address=f"tcp:127.0.0.1:{port}")
        task = asyncio.create_task(agent.run())
        r, w = await asyncio.wait_for(master.conns.get(), 2)
        op = await master.read_pdu(r)
        w.write(p.encode(p.Response(session_id=3, packet_id=op.packet_id)))
        reg = await master.read_pdu(r)
        w.write(p.encode(p.Response(session_id=3, packet_id=reg.packet_id)))
        await _within(lambda: agent.ready)
        payload = [p.VarBind((*ROOT, 1), p.OctetString(b"x" * 1000))]
        sent = 0
        for _ in range(20000):  # bounded: ~20 MB if nothing were ever dropped
            if not agent.notify((*ROOT, 0, 1), payload):
                break
            sent += 1
            if sent % 50 == 0:
                await asyncio.sleep(0)  # let the loop flush to the socket
        assert agent.stats.notifications_dropped == 1
        assert 0 < sent < 20000
        assert agent._conn is not None and agent._conn.paused
        # closing does not wait for the master to read what is queued
        agent.close()
        await asyncio.wait_for(task, 3)
        w.close()
        master.server.close()
        await master.server.wait_closed()

    asyncio.run(main())
