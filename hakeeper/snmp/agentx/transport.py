"""The asyncio shell around `Session`: connect to the master, move bytes, reconnect.

It owns the socket, the clock and the backoff, nothing else: the session decides what to
send and the view computes every answer. When the master goes away (EOF, a Close, an
unanswered Ping) the shell waits 1 s, doubling up to 60 s, and connects again; the
session opens and registers afresh. The backoff restarts once a session is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from hakeeper.snmp.agentx.pdu import Oid, Pdu, VarBind, encode, format_oid
from hakeeper.snmp.agentx.session import (
    Answered,
    Closed,
    Event,
    MibView,
    Opened,
    OpenFailed,
    ParseFailed,
    ProtocolViolation,
    Registered,
    RegisterFailed,
    Registration,
    Session,
    State,
    TimedOut,
    ViewFailed,
)

log = logging.getLogger("hakeeper.snmp.agentx")

DEFAULT_ADDRESS = "unix:/var/agentx/master"
CLOSE_GRACE = 1.0  # seconds a closing connection may take to send what is queued


@dataclass(frozen=True, slots=True)
class Address:
    kind: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp:{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """net-snmp / keepalived `snmp_socket` syntax: `unix:/path`, `/path`, `tcp:host:port`
    or `host:port` (TCP); `[v6]:port` for IPv6. AgentX needs a stream, so no UDP."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if text.startswith("/"):
        return Address("unix", path=text)
    if sep and kind.lower() == "unix":
        if not rest:
            raise ValueError(f"{text!r}: unix socket needs a path")
        return Address("unix", path=rest)
    if sep and kind.lower() in ("tcp", "tcp6"):
        text = rest
    elif sep and kind.lower() in ("udp", "udp6"):
        raise ValueError(f"{text!r}: AgentX runs over a stream (unix: or tcp:), not UDP")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected unix:/path or tcp:host:port")
    return Address("tcp", host=host.strip("[]") or "localhost", port=int(port))


@dataclass(slots=True)
class AgentxStats:
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    open_failures: int = 0
    register_failures: int = 0
    parse_errors: int = 0
    protocol_errors: int = 0
    view_errors: int = 0
    timeouts: int = 0
    notifications_sent: int = 0
    notifications_dropped: int = 0


class Subagent:
    """One AgentX subagent: `await run()` until `close()`."""

    def __init__(
        self,
        view: MibView,
        registrations: Sequence[Registration],
        *,
        address: str = DEFAULT_ADDRESS,
        subagent_id: Oid = (),
        description: str = "hakeeper",
        timeout: int = 0,
        ping_interval: float = 15.0,
        response_timeout: float = 5.0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        connect_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = parse_address(address)
        self.session = Session(
            view,
            registrations,
            subagent_id=subagent_id,
            description=description,
            timeout=timeout,
            response_timeout=response_timeout,
        )
        self.stats = AgentxStats()
        self.ping_interval = ping_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.clock = clock
        self._backoff = min_backoff
        self._conn: _Connection | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self._failing_since_ok = False  # log the first failure of a run loudly, later ones quietly

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def ready(self) -> bool:
        return self.session.state is State.READY

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns once `close()` was called."""
        self._stop = asyncio.Event()
        if self._closing:
            return
        while not self._closing:
            try:
                conn = await self._connect()
            except (OSError, TimeoutError) as e:
                self.stats.connect_failures += 1
                self._log_failure(f"cannot connect to {self.address}: {e}")
            else:
                self.stats.connects += 1
                self._conn = conn
                try:
                    self._start(conn)
                    await conn.lost
                finally:
                    self._conn = None
                    conn.close()
                    self.session.connection_lost()
                    self._drain_events()
                if self._closing:
                    break
                self.stats.disconnects += 1
            await self._sleep_backoff()

    def close(self) -> None:
        """Send Close if a session is open, drop the connection, end `run()`."""
        self._closing = True
        if self._conn is not None:
            self._write(self.session.close())
            self._conn.close()
        if self._stop is not None:
            self._stop.set()

    def notify(self, trap_oid: Oid, varbinds: Iterable[VarBind] = ()) -> bool:
        """Send a notification now if the session is open; False (and counted) if not."""
        # a master that stopped reading gets no more notifications piled up for it
        if self._conn is None or self._conn.paused:
            self.stats.notifications_dropped += 1
            return False
        out = self.session.notify(trap_oid, varbinds, now=self.clock())
        if not out:
            self.stats.notifications_dropped += 1
            return False
        self._write(out)
        self._conn.arm(self.session.next_deadline())
        self.stats.notifications_sent += 1
        return True

    # --- internals -----------------------------------------------------------------------

    async def _connect(self) -> _Connection:
        a, loop = self.address, asyncio.get_running_loop()
        factory = lambda: _Connection(self, loop)  # noqa: E731
        if a.kind == "unix":
            made = loop.create_unix_connection(factory, a.path)
        else:
            made = loop.create_connection(factory, a.host, a.port)
        _, conn = await asyncio.wait_for(made, self.connect_timeout)
        return conn

    def _start(self, conn: _Connection) -> None:
        now = self.clock()
        conn.next_ping = now + self.ping_interval
        self._write(self.session.start(now))
        conn.arm(self.session.next_deadline())

    def _received(self, conn: _Connection, data: bytes) -> None:
        """The hot path: answer what the master asked right here, in one loop callback (no
        task or timer per PDU: snmpd sends a walk to a subagent one varbind per PDU)."""
        fast = self.session.answer_plain_read(data)
        if fast is not None:
            conn.write(fast)  # nothing else changed: no events, no new deadline
            return
        self._write(self.session.receive_data(data, self.clock()))
        self._after(conn)

    def _timer(self, conn: _Connection) -> None:
        now = self.clock()
        self._write(self.session.handle_timer(now))
        if now >= conn.next_ping:
            self._write(self.session.ping(now))
            conn.next_ping = now + self.ping_interval
        self._after(conn)

    def _after(self, conn: _Connection) -> None:
        if self.session.has_events():
            self._drain_events()
        if self.session.state is State.CLOSED:
            conn.close()
        else:
            conn.arm(self.session.next_deadline())

    def _write(self, pdus: list[Pdu]) -> None:
        if self._conn is None or not pdus:
            return
        self._conn.write(b"".join(encode(p) for p in pdus))

    async def _sleep_backoff(self) -> None:
        delay, self._backoff = self._backoff, min(self._backoff * 2, self.max_backoff)
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)

    def _log_failure(self, msg: str) -> None:
        if self._failing_since_ok:
            log.debug("AgentX: %s (retrying in %.0f s)", msg, self._backoff)
        else:
            log.warning("AgentX: %s (retrying in %.0f s)", msg, self._backoff)
            self._failing_since_ok = True

    def _drain_events(self) -> None:
        for ev in self.session.drain_events():
            self._on_event(ev)

    def _on_event(self, ev: Event) -> None:
        s = self.stats
        match ev:
            case Opened():
                self._backoff = self.min_backoff
                self._failing_since_ok = False
                log.info("AgentX: session %d open with %s", ev.session_id, self.address)
            case OpenFailed():
                s.open_failures += 1
                self._log_failure(f"master at {self.address} refused Open (error {ev.error})")
            case Registered():
                log.debug("AgentX: registered %s", format_oid(ev.registration.subtree))
            case RegisterFailed():
                s.register_failures += 1
                log.warning(
                    "AgentX: registering %s failed (error %d)",
                    format_oid(ev.registration.subtree),
                    ev.error,
                )
            case Closed():
                if ev.by_master:
                    log.info("AgentX: master closed the session (reason %d)", ev.reason)
                else:
                    log.debug("AgentX: session closed (reason %d)", ev.reason)
            case ParseFailed():
                s.parse_errors += 1
                log.warning("AgentX: malformed PDU from master: %s %s", ev.reason, ev.detail)
            case ProtocolViolation():
                s.protocol_errors += 1
                log.warning("AgentX: protocol error: %s", ev.detail)
            case ViewFailed():
                s.view_errors += 1
                log.error("AgentX: MIB view error: %s", ev.detail)
            case TimedOut():
                s.timeouts += 1
                log.warning("AgentX: no answer to %s %d", ev.kind, ev.packet_id)
            case Answered():
                if ev.error:
                    log.warning("AgentX: %s refused (error %d)", ev.kind, ev.error)


class _Connection(asyncio.Protocol):
    """One connection to the master: bytes in go straight to the subagent, bytes out straight
    to the socket; one timer for the next ping or session deadline."""

    def __init__(self, agent: Subagent, loop: asyncio.AbstractEventLoop) -> None:
        self.agent, self.loop = agent, loop
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.next_ping = 0.0
        self.paused = False  # the socket's send buffer is full: the master is not reading
        self._timer: asyncio.TimerHandle | None = None
        self._wake = float("inf")  # the agent clock's time the timer fires

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.agent._received(self, data)

    def eof_received(self) -> bool:
        log.info("AgentX: master at %s closed the connection", self.agent.address)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("AgentX: connection to %s failed: %s", self.agent.address, exc)
        self._cancel()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self._cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
            if self.transport.get_write_buffer_size():
                # close() waits for the buffer to drain: a master that reads nothing more
                # would keep the connection (and the reconnect) waiting for ever
                self.loop.call_later(CLOSE_GRACE, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self.lost.done():
            self.transport.abort()

    def arm(self, deadline: float | None) -> None:
        """Wake at the next ping or session deadline; moved only when that is earlier than
        the wake-up already set (or it has fired), so answering a PDU costs no timer."""
        wake = self.next_ping if deadline is None else min(deadline, self.next_ping)
        if self._timer is not None and wake >= self._wake:
            return
        self._cancel()
        self._wake = wake
        delay = max(0.0, wake - self.agent.clock())
        self._timer = self.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer, self._wake = None, float("inf")
        if self.transport is not None and not self.transport.is_closing():
            self.agent._timer(self)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._wake = None, float("inf")
