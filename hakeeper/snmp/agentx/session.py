"""AgentX subagent session (RFC 2741): open, register, answer the master, notify, close.

Sans-IO: the shell feeds `receive_data(bytes, now)` and sends what every call returns (a
list of PDUs); time comes in as `now` and `next_deadline()` says when `handle_timer(now)`
is due. Values come from a `MibView`; the session owns the protocol rules around it
(SearchRange bounds, GetBulk repetitions, the four Set phases, packetIDs) so a view only
answers "this OID" and "the next OID after this one".

States::

    CLOSED --start--> OPENING --Open ok--> REGISTERING --last Register answered--> READY
       ^                 |                      |                                   |
       +-- open failed, Close from master, parse failure, timeout, connection lost -+
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from hakeeper.snmp.agentx.pdu import (
    END_OF_MIB_VIEW,
    HEADER_LEN,
    NO_SUCH_OBJECT,
    AgentxError,
    CleanupSet,
    Close,
    CloseReason,
    CommitSet,
    EndOfMibView,
    Error,
    Get,
    GetBulk,
    GetNext,
    Header,
    NoSuchInstance,
    NoSuchObject,
    Notify,
    ObjectIdentifier,
    Oid,
    Open,
    Pdu,
    PduType,
    Ping,
    Register,
    Response,
    SearchRange,
    TestSet,
    TimeTicks,
    UndoSet,
    Value,
    VarBind,
    decode,
    decode_header,
    decode_plain_read,
    encode_plain_response,
)

SYS_UPTIME_0: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
# PDU types only a master sends us; anything else arriving is a protocol error.
_EXCEPTIONS = (NoSuchObject, NoSuchInstance, EndOfMibView)  # not answers to GetNext
_REQUESTS = {
    PduType.GET,
    PduType.GET_NEXT,
    PduType.GET_BULK,
    PduType.TEST_SET,
    PduType.COMMIT_SET,
    PduType.UNDO_SET,
    PduType.CLEANUP_SET,
}


class MibView(Protocol):
    """What the session asks of the MIB. Errors are `Error` members (0 = fine).

    `next` returns the first OID after `oid` (or at it when `include`) and strictly below
    `end` (no bound when `end` is empty), or END_OF_MIB_VIEW. The `tx` of the set methods
    is the master's transactionID: it ties the phases of one SNMP Set together.
    """

    def get(self, oid: Oid) -> Value: ...

    def next(self, oid: Oid, include: bool, end: Oid) -> tuple[Oid, Value] | EndOfMibView: ...

    def test_set(self, tx: int, oid: Oid, value: Value) -> int: ...

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int: ...

    def undo_set(self, tx: int, oid: Oid, value: Value) -> int: ...

    def cleanup_set(self, tx: int) -> None: ...


class ReadOnlySets:
    """Set methods for a view with nothing writable: every Set is notWritable."""

    def test_set(self, tx: int, oid: Oid, value: Value) -> int:
        return Error.NOT_WRITABLE

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int:
        return Error.COMMIT_FAILED

    def undo_set(self, tx: int, oid: Oid, value: Value) -> int:
        return Error.UNDO_FAILED

    def cleanup_set(self, tx: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Registration:
    """One subtree to register (§6.2.3); timeout 0 means the session's default."""

    subtree: Oid
    priority: int = 127
    timeout: int = 0
    range_subid: int = 0
    upper_bound: int = 0


class State(Enum):
    CLOSED = "closed"
    OPENING = "opening"
    REGISTERING = "registering"
    READY = "ready"


# --- events the shell logs and counts --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    session_id: int


@dataclass(frozen=True, slots=True)
class OpenFailed:
    error: int


@dataclass(frozen=True, slots=True)
class Registered:
    registration: Registration


@dataclass(frozen=True, slots=True)
class RegisterFailed:
    registration: Registration
    error: int  # an Error, or -1 when the master never answered


@dataclass(frozen=True, slots=True)
class Closed:
    reason: int
    by_master: bool


@dataclass(frozen=True, slots=True)
class ParseFailed:
    """A malformed PDU arrived; `reason` is the AgentxError reason (the counter name)."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """A well-formed PDU the protocol does not allow here (unknown packetID, wrong type)."""

    detail: str


@dataclass(frozen=True, slots=True)
class ViewFailed:
    """The view raised or broke its contract; the master got genErr or endOfMibView."""

    detail: str


@dataclass(frozen=True, slots=True)
class Answered:
    """The master answered one of our Notify or Ping PDUs."""

    kind: str
    packet_id: int
    error: int


@dataclass(frozen=True, slots=True)
class TimedOut:
    kind: str
    packet_id: int


Event = (
    Opened
    | OpenFailed
    | Registered
    | RegisterFailed
    | Closed
    | ParseFailed
    | ProtocolViolation
    | ViewFailed
    | Answered
    | TimedOut
)


@dataclass(slots=True)
class _Pending:
    kind: str  # "open", "register", "notify", "ping"
    deadline: float
    registration: Registration | None = None


@dataclass(slots=True)
class _SetTx:
    varbinds: tuple[VarBind, ...]
    committed: int = 0  # how many varbinds commit_set applied, for UndoSet


class Session:
    def __init__(
        self,
        view: MibView,
        registrations: Sequence[Registration],
        *,
        subagent_id: Oid = (),
        description: str = "",
        timeout: int = 0,
        response_timeout: float = 5.0,
    ) -> None:
        self.view = view
        self.registrations = tuple(registrations)
        self.subagent_id = subagent_id
        self.description = description
        self.timeout = timeout  # o.timeout: seconds the master waits for us; 0 = its default
        self.response_timeout = response_timeout  # how long we wait for the master
        self.state = State.CLOSED
        self.session_id = 0
        self._buffer = b""  # the start of a PDU whose rest has not arrived
        self._packet_ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._sets: dict[int, _SetTx] = {}
        self._events: list[Event] = []

    # --- driven by the shell -------------------------------------------------------------

    def start(self, now: float) -> list[Pdu]:
        """A fresh connection is up: forget the old one and send Open."""
        self._reset()
        self.state = State.OPENING
        return [
            self._request(
                "open",
                now,
                Open(
                    timeout=self.timeout,
                    id=self.subagent_id,
                    descr=self.description.encode(),
                    packet_id=self._next_packet_id(),
                ),
            )
        ]

    def connection_lost(self) -> None:
        if self.state is not State.CLOSED:
            self._events.append(Closed(CloseReason.OTHER, by_master=False))
        self._reset()
        self.state = State.CLOSED

    def receive_data(self, data: bytes, now: float) -> list[Pdu]:
        """Bytes from the master, any fragment of the stream; returns what to send."""
        # Framed in place: the usual read is exactly one whole PDU, decoded without a copy.
        buf = self._buffer + data if self._buffer else data
        pos, end = 0, len(buf)
        out: list[Pdu] = []
        while self.state is not State.CLOSED and end - pos >= HEADER_LEN:
            try:
                header = decode_header(buf, pos)
            except AgentxError as e:
                self._events.append(ParseFailed(e.reason, e.detail))
                # An unknown type still has a usable length; anything else loses framing.
                if e.reason == "bad_type" and e.header is not None:
                    if end - pos < HEADER_LEN + e.header.payload_length:
                        break
                    pos += HEADER_LEN + e.header.payload_length
                    continue
                out += self._fail(CloseReason.PARSE_ERROR)
                pos = end  # _fail emptied the buffer: nothing of this stream is kept
                break
            size = HEADER_LEN + header.payload_length
            if end - pos < size:
                break
            chunk = buf[pos : pos + size]  # the whole of buf (no copy) in the usual case
            pos += size
            try:
                pdu = decode(chunk, header)
            except AgentxError as e:
                self._events.append(ParseFailed(e.reason, e.detail))
                if header.type != PduType.RESPONSE:
                    out.append(self._answer(header, Error.PARSE_ERROR))
                continue
            out += self._handle(pdu, now)
        # what is left waits for the rest of its PDU; a reset (Close, failure) dropped it all
        self._buffer = bytes(buf[pos:]) if self.state is not State.CLOSED else b""
        return out

    def next_deadline(self) -> float | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def handle_timer(self, now: float) -> list[Pdu]:
        out: list[Pdu] = []
        for packet_id, p in list(self._pending.items()):
            if p.deadline > now or packet_id not in self._pending:
                continue
            del self._pending[packet_id]
            self._events.append(TimedOut(p.kind, packet_id))
            if p.kind == "register" and p.registration is not None:
                self._events.append(RegisterFailed(p.registration, -1))
                self._maybe_ready()
            elif p.kind in ("open", "ping"):
                # A master that does not answer Open or Ping is gone or stuck: start over.
                out += self._fail(CloseReason.TIMEOUTS)
                break
        return out

    def has_events(self) -> bool:
        return bool(self._events)

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # --- asked for by the application ----------------------------------------------------

    def notify(
        self,
        trap_oid: Oid,
        varbinds: Iterable[VarBind] = (),
        now: float = 0.0,
        uptime: int | None = None,
    ) -> list[Pdu]:
        """A notification (§6.2.10): [sysUpTime.0,] snmpTrapOID.0, then `varbinds`.
        Nothing to send unless the session is open; the caller counts the drop."""
        if self.state not in (State.REGISTERING, State.READY):
            return []
        head = [VarBind(SNMP_TRAP_OID_0, ObjectIdentifier(trap_oid))]
        if uptime is not None:
            head.insert(0, VarBind(SYS_UPTIME_0, TimeTicks(uptime)))
        pdu = Notify(
            varbinds=(*head, *varbinds),
            session_id=self.session_id,
            packet_id=self._next_packet_id(),
        )
        return [self._request("notify", now, pdu)]

    def ping(self, now: float) -> list[Pdu]:
        if self.state not in (State.REGISTERING, State.READY):
            return []
        pdu = Ping(session_id=self.session_id, packet_id=self._next_packet_id())
        return [self._request("ping", now, pdu)]

    def close(self, reason: int = CloseReason.SHUTDOWN) -> list[Pdu]:
        """Leave politely; the shell sends the Close and drops the connection."""
        if self.state in (State.CLOSED, State.OPENING):
            self._reset()
            self.state = State.CLOSED
            return []
        return self._fail(reason, by_master=False)

    # --- internals -----------------------------------------------------------------------

    def _next_packet_id(self) -> int:
        return next(self._packet_ids) & 0xFFFFFFFF

    def _request(self, kind: str, now: float, pdu: Pdu, reg: Registration | None = None) -> Pdu:
        self._pending[pdu.packet_id] = _Pending(kind, now + self.response_timeout, reg)
        return pdu

    def _reset(self) -> None:
        self._buffer = b""
        self._pending.clear()
        for tx in list(self._sets):
            self._cleanup(tx)
        self.session_id = 0

    def _fail(self, reason: int, by_master: bool = False) -> list[Pdu]:
        """End the session from our side: a Close to send if it was open, then CLOSED."""
        out: list[Pdu] = []
        if self.state in (State.REGISTERING, State.READY):
            out.append(Close(reason=reason, session_id=self.session_id))
        self._events.append(Closed(reason, by_master))
        self._reset()
        self.state = State.CLOSED
        return out

    def _answer(
        self, req: Pdu | Header, error: int = 0, index: int = 0, vbs: Iterable[VarBind] = ()
    ) -> Response:
        """The Response to `req`: its IDs echoed, sysUpTime 0 (only a master sets it)."""
        return Response(
            session_id=req.session_id,
            transaction_id=req.transaction_id,
            packet_id=req.packet_id,
            error=error,
            index=index,
            varbinds=tuple(vbs),
        )

    def _handle(self, pdu: Pdu, now: float) -> list[Pdu]:
        if isinstance(pdu, Response):
            return self._on_response(pdu, now)
        if isinstance(pdu, Close):
            self._events.append(Closed(pdu.reason, by_master=True))
            self._reset()
            self.state = State.CLOSED
            return []
        if pdu.TYPE not in _REQUESTS or self.state in (State.CLOSED, State.OPENING):
            self._events.append(ProtocolViolation(f"unexpected {pdu.TYPE.name} in {self.state}"))
            return []
        if pdu.session_id != self.session_id:
            self._events.append(ProtocolViolation(f"sessionID {pdu.session_id} is not ours"))
            return [] if isinstance(pdu, CleanupSet) else [self._answer(pdu, Error.NOT_OPEN)]
        if getattr(pdu, "context", None) is not None:
            return [self._answer(pdu, Error.UNSUPPORTED_CONTEXT)]
        match pdu:
            case Get():
                return [self._on_get(pdu)]
            case GetNext():
                return [self._on_get_next(pdu)]
            case GetBulk():
                return [self._on_get_bulk(pdu)]
            case TestSet():
                return [self._on_test_set(pdu)]
            case CommitSet():
                return [self._on_commit_set(pdu)]
            case UndoSet():
                return [self._on_undo_set(pdu)]
            case CleanupSet():
                self._cleanup(pdu.transaction_id)
                return []  # §7.2.4.4: no response to CleanupSet
        return []

    def _on_response(self, pdu: Response, now: float) -> list[Pdu]:
        pending = self._pending.pop(pdu.packet_id, None)
        if pending is None:
            self._events.append(ProtocolViolation(f"response to unknown packetID {pdu.packet_id}"))
            return []
        if pending.kind == "open":
            if pdu.error:
                self._events.append(OpenFailed(pdu.error))
                self._reset()
                self.state = State.CLOSED
                return []
            self.session_id = pdu.session_id
            self.state = State.REGISTERING
            self._events.append(Opened(pdu.session_id))
            out: list[Pdu] = [
                self._request(
                    "register",
                    now,
                    Register(
                        subtree=reg.subtree,
                        priority=reg.priority,
                        timeout=reg.timeout,
                        range_subid=reg.range_subid,
                        upper_bound=reg.upper_bound,
                        session_id=self.session_id,
                        packet_id=self._next_packet_id(),
                    ),
                    reg,
                )
                for reg in self.registrations
            ]
            self._maybe_ready()
            return out
        if pending.kind == "register":
            assert pending.registration is not None
            if pdu.error:
                self._events.append(RegisterFailed(pending.registration, pdu.error))
            else:
                self._events.append(Registered(pending.registration))
            self._maybe_ready()
            return []
        self._events.append(Answered(pending.kind, pdu.packet_id, pdu.error))
        return []

    def _maybe_ready(self) -> None:
        if self.state is State.REGISTERING and not any(
            p.kind == "register" for p in self._pending.values()
        ):
            self.state = State.READY

    # --- reads ---------------------------------------------------------------------------

    def _view_get(self, oid: Oid) -> Value:
        value = self.view.get(oid)
        if isinstance(value, EndOfMibView):  # not an answer to Get (§7.2.3.1)
            return NO_SUCH_OBJECT
        return value

    def _view_next(self, r: SearchRange) -> VarBind:
        """The view's next OID in the range, or endOfMibView named by the range start."""
        found = self._next_in_range(r.start, r.end, r.include)
        if isinstance(found, str):
            self._events.append(ViewFailed(found))
            return VarBind(r.start, END_OF_MIB_VIEW)
        return VarBind(*found)

    def _next_in_range(self, start: Oid, end: Oid, include: bool) -> tuple[Oid, Value] | str:
        """(OID, value) after `start` within the range, (start, endOfMibView) past the view;
        what went wrong (a str) when the view broke its contract."""
        found = self.view.next(start, include, end)
        if isinstance(found, EndOfMibView):
            return start, END_OF_MIB_VIEW
        oid, value = found
        after = oid >= start if include else oid > start
        # An answer outside the range would send the master round in circles: drop it.
        if not after or (end and oid >= end):
            return f"next({start}) gave {oid} outside the range"
        if isinstance(value, _EXCEPTIONS):
            return f"next({start}) gave {type(value).__name__}"
        return oid, value

    def answer_plain_read(self, data: bytes) -> bytes | None:
        """The hot path of a walk: a whole plain Get/GetNext of this open session answered
        straight to bytes (no PDU objects, ~2x cheaper); None sends it the general way
        (receive_data), which also answers everything unusual: a view error, a foreign
        session, a context, damage."""
        if self._buffer or self.state is not State.READY:
            return None
        read = decode_plain_read(data)
        if read is None:
            return None
        header, ranges = read
        if header.session_id != self.session_id:
            return None
        pairs: list[tuple[Oid, Value]] = []
        try:
            if header.type == PduType.GET_NEXT:
                for start, end, include in ranges:
                    found = self._next_in_range(start, end, include)
                    if isinstance(found, str):
                        return None
                    pairs.append(found)
            else:
                pairs = [(start, self._view_get(start)) for start, _, _ in ranges]
            return encode_plain_response(header, pairs)
        except Exception:  # the general way answers genErr and records why
            return None

    def _on_get(self, pdu: Get) -> Response:
        vbs = []
        for i, r in enumerate(pdu.ranges, 1):
            try:
                vbs.append(VarBind(r.start, self._view_get(r.start)))
            except Exception as e:
                self._events.append(ViewFailed(f"get({r.start}): {e!r}"))
                return self._answer(pdu, Error.GEN_ERR, i)
        return self._answer(pdu, vbs=vbs)

    def _on_get_next(self, pdu: GetNext) -> Response:
        vbs = []
        for i, r in enumerate(pdu.ranges, 1):
            try:
                vbs.append(self._view_next(r))
            except Exception as e:
                self._events.append(ViewFailed(f"next({r.start}): {e!r}"))
                return self._answer(pdu, Error.GEN_ERR, i)
        return self._answer(pdu, vbs=vbs)

    def _on_get_bulk(self, pdu: GetBulk) -> Response:
        """§7.2.3.2: the first non_repeaters ranges once, the rest max_repetitions times,
        each repetition continuing after the previous answer; stops early once every
        repeater has reached the end of the view."""
        n = min(pdu.non_repeaters, len(pdu.ranges))
        vbs: list[VarBind] = []
        try:
            vbs += (self._view_next(r) for r in pdu.ranges[:n])
            cursors = list(pdu.ranges[n:])
            for _ in range(pdu.max_repetitions if cursors else 0):
                row = [self._view_next(r) for r in cursors]
                vbs += row
                if all(isinstance(vb.value, EndOfMibView) for vb in row):
                    break
                # A repeater at the end stays there; the others continue after their answer.
                cursors = [
                    r if isinstance(vb.value, EndOfMibView) else SearchRange(vb.name, r.end)
                    for vb, r in zip(row, cursors, strict=True)
                ]
        except Exception as e:
            self._events.append(ViewFailed(f"getbulk: {e!r}"))
            return self._answer(pdu, Error.GEN_ERR, len(vbs) + 1)
        return self._answer(pdu, vbs=vbs)

    # --- the four Set phases (§7.2.4) ----------------------------------------------------

    def _on_test_set(self, pdu: TestSet) -> Response:
        tx = pdu.transaction_id
        if tx in self._sets:  # a TestSet reusing a live transaction: start it over
            self._cleanup(tx)
        self._sets[tx] = _SetTx(pdu.varbinds)
        for i, vb in enumerate(pdu.varbinds, 1):
            try:
                error = self.view.test_set(tx, vb.name, vb.value)
            except Exception as e:
                self._events.append(ViewFailed(f"test_set({vb.name}): {e!r}"))
                error = Error.GEN_ERR
            if error:
                return self._answer(pdu, error, i)
        return self._answer(pdu)

    def _on_commit_set(self, pdu: CommitSet) -> Response:
        state = self._sets.get(pdu.transaction_id)
        if state is None:
            self._events.append(ProtocolViolation(f"CommitSet for unknown tx {pdu.transaction_id}"))
            return self._answer(pdu, Error.COMMIT_FAILED, 1)
        for i, vb in enumerate(state.varbinds, 1):
            try:
                error = self.view.commit_set(pdu.transaction_id, vb.name, vb.value)
            except Exception as e:
                self._events.append(ViewFailed(f"commit_set({vb.name}): {e!r}"))
                error = Error.COMMIT_FAILED
            if error:
                return self._answer(pdu, Error.COMMIT_FAILED, i)
            state.committed = i
        return self._answer(pdu)

    def _on_undo_set(self, pdu: UndoSet) -> Response:
        state = self._sets.get(pdu.transaction_id)
        if state is None:
            self._events.append(ProtocolViolation(f"UndoSet for unknown tx {pdu.transaction_id}"))
            return self._answer(pdu, Error.UNDO_FAILED, 1)
        # Undo what was committed, newest first.
        for i in range(state.committed, 0, -1):
            vb = state.varbinds[i - 1]
            try:
                error = self.view.undo_set(pdu.transaction_id, vb.name, vb.value)
            except Exception as e:
                self._events.append(ViewFailed(f"undo_set({vb.name}): {e!r}"))
                error = Error.UNDO_FAILED
            if error:
                return self._answer(pdu, Error.UNDO_FAILED, i)
            state.committed = i - 1
        return self._answer(pdu)

    def _cleanup(self, tx: int) -> None:
        if self._sets.pop(tx, None) is None:
            return
        try:
            self.view.cleanup_set(tx)
        except Exception as e:
            self._events.append(ViewFailed(f"cleanup_set({tx}): {e!r}"))
