"""AgentX (RFC 2741) wire format: PDUs as frozen dataclasses, `encode` and `decode`.

Sans-IO: bytes in, PDU objects out and back. `decode` raises only `AgentxError`, whose
`reason` is a short counter name; when the 20-octet header was readable the error carries
it, so the session can still answer the right packetID with parseError (§6.1).

Header (§6.1), every integer in the byte order the NETWORK_BYTE_ORDER flag says::

    | h.version=1 | h.type | h.flags | reserved |
    |                 h.sessionID               |
    |               h.transactionID             |
    |                 h.packetID                |
    |              h.payload_length             |

We always encode in network byte order and decode both orders.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, NamedTuple

Oid = tuple[int, ...]

VERSION = 1
HEADER_LEN = 20
# A PDU larger than this is not something snmpd sends; refusing it bounds the buffer.
MAX_PAYLOAD = 1 << 20
MAX_SUBIDS = 128  # §5.1: n_subid is 0..128
_INTERNET = (1, 3, 6, 1)

# h.flags (§6.1)
INSTANCE_REGISTRATION = 0x01
NEW_INDEX = 0x02
ANY_INDEX = 0x04
NON_DEFAULT_CONTEXT = 0x08
NETWORK_BYTE_ORDER = 0x10


class PduType(IntEnum):
    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class CloseReason(IntEnum):
    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


class Error(IntEnum):
    """res.error values: SNMP error-status (RFC 3416) and AgentX's own (§6.2.16)."""

    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


class Header(NamedTuple):
    """A NamedTuple, not a frozen dataclass: one is built for every PDU received (a walk
    through snmpd is one PDU a varbind) and a tuple is four times cheaper to make."""

    version: int
    type: int
    flags: int
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int


class AgentxError(Exception):
    """A received PDU is malformed; `reason` names the counter the caller bumps."""

    def __init__(self, reason: str, detail: str = "", header: Header | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.header = header


# --- values (§5.4) -------------------------------------------------------------------------


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name} {value} is out of range {lo}..{hi}")


@dataclass(frozen=True, slots=True)
class Integer:
    value: int
    TAG: ClassVar[int] = 2

    def __post_init__(self) -> None:
        _check_range("Integer", self.value, -(1 << 31), (1 << 31) - 1)


@dataclass(frozen=True, slots=True)
class OctetString:
    value: bytes
    TAG: ClassVar[int] = 4


@dataclass(frozen=True, slots=True)
class Null:
    TAG: ClassVar[int] = 5


@dataclass(frozen=True, slots=True)
class ObjectIdentifier:
    value: Oid
    TAG: ClassVar[int] = 6


@dataclass(frozen=True, slots=True)
class IpAddress:
    value: bytes  # 4 octets, network order
    TAG: ClassVar[int] = 64

    def __post_init__(self) -> None:
        if len(self.value) != 4:
            raise ValueError(f"IpAddress needs 4 octets, got {len(self.value)}")


@dataclass(frozen=True, slots=True)
class Counter32:
    value: int
    TAG: ClassVar[int] = 65

    def __post_init__(self) -> None:
        _check_range("Counter32", self.value, 0, (1 << 32) - 1)


@dataclass(frozen=True, slots=True)
class Gauge32:
    value: int
    TAG: ClassVar[int] = 66

    def __post_init__(self) -> None:
        _check_range("Gauge32", self.value, 0, (1 << 32) - 1)


@dataclass(frozen=True, slots=True)
class TimeTicks:
    value: int
    TAG: ClassVar[int] = 67

    def __post_init__(self) -> None:
        _check_range("TimeTicks", self.value, 0, (1 << 32) - 1)


@dataclass(frozen=True, slots=True)
class Opaque:
    value: bytes
    TAG: ClassVar[int] = 68


@dataclass(frozen=True, slots=True)
class Counter64:
    value: int
    TAG: ClassVar[int] = 70

    def __post_init__(self) -> None:
        _check_range("Counter64", self.value, 0, (1 << 64) - 1)


@dataclass(frozen=True, slots=True)
class NoSuchObject:
    TAG: ClassVar[int] = 128


@dataclass(frozen=True, slots=True)
class NoSuchInstance:
    TAG: ClassVar[int] = 129


@dataclass(frozen=True, slots=True)
class EndOfMibView:
    TAG: ClassVar[int] = 130


NULL = Null()
NO_SUCH_OBJECT = NoSuchObject()
NO_SUCH_INSTANCE = NoSuchInstance()
END_OF_MIB_VIEW = EndOfMibView()

Value = (
    Integer
    | OctetString
    | Null
    | ObjectIdentifier
    | IpAddress
    | Counter32
    | Gauge32
    | TimeTicks
    | Opaque
    | Counter64
    | NoSuchObject
    | NoSuchInstance
    | EndOfMibView
)
_U32_VALUES: dict[int, type[Counter32 | Gauge32 | TimeTicks]] = {
    65: Counter32,
    66: Gauge32,
    67: TimeTicks,
}
_EMPTY_VALUES: dict[int, Value] = {
    5: NULL,
    128: NO_SUCH_OBJECT,
    129: NO_SUCH_INSTANCE,
    130: END_OF_MIB_VIEW,
}


@dataclass(frozen=True, slots=True)
class VarBind:
    name: Oid
    value: Value


@dataclass(frozen=True, slots=True)
class SearchRange:
    """[start, end) or (start, end); an empty `end` means no upper bound (§5.2)."""

    start: Oid
    end: Oid = ()
    include: bool = False


# --- PDUs (§6.2) ---------------------------------------------------------------------------
# kw_only lets the shared header fields keep their defaults ahead of each PDU's own fields.


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pdu:
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    TYPE: ClassVar[PduType]


@dataclass(frozen=True, slots=True, kw_only=True)
class Open(_Pdu):
    timeout: int = 0
    id: Oid = ()
    descr: bytes = b""
    TYPE: ClassVar[PduType] = PduType.OPEN


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(_Pdu):
    reason: int = CloseReason.OTHER
    TYPE: ClassVar[PduType] = PduType.CLOSE


@dataclass(frozen=True, slots=True, kw_only=True)
class Register(_Pdu):
    subtree: Oid
    timeout: int = 0
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0  # only on the wire when range_subid != 0
    instance_registration: bool = False
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.REGISTER


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregister(_Pdu):
    subtree: Oid
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.UNREGISTER


@dataclass(frozen=True, slots=True, kw_only=True)
class Get(_Pdu):
    ranges: tuple[SearchRange, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.GET


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNext(_Pdu):
    ranges: tuple[SearchRange, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.GET_NEXT


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBulk(_Pdu):
    non_repeaters: int = 0
    max_repetitions: int = 0
    ranges: tuple[SearchRange, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.GET_BULK


@dataclass(frozen=True, slots=True, kw_only=True)
class TestSet(_Pdu):
    __test__: ClassVar[bool] = False  # not a pytest class, despite the name
    varbinds: tuple[VarBind, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.TEST_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitSet(_Pdu):
    TYPE: ClassVar[PduType] = PduType.COMMIT_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class UndoSet(_Pdu):
    TYPE: ClassVar[PduType] = PduType.UNDO_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class CleanupSet(_Pdu):
    TYPE: ClassVar[PduType] = PduType.CLEANUP_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify(_Pdu):
    varbinds: tuple[VarBind, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.NOTIFY


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(_Pdu):
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.PING


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexAllocate(_Pdu):
    varbinds: tuple[VarBind, ...] = ()
    new_index: bool = False
    any_index: bool = False
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.INDEX_ALLOCATE


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexDeallocate(_Pdu):
    varbinds: tuple[VarBind, ...] = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.INDEX_DEALLOCATE


@dataclass(frozen=True, slots=True, kw_only=True)
class AddAgentCaps(_Pdu):
    id: Oid = ()
    descr: bytes = b""
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.ADD_AGENT_CAPS


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveAgentCaps(_Pdu):
    id: Oid = ()
    context: bytes | None = None
    TYPE: ClassVar[PduType] = PduType.REMOVE_AGENT_CAPS


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(_Pdu):
    sys_uptime: int = 0
    error: int = Error.NO_ERROR
    index: int = 0
    varbinds: tuple[VarBind, ...] = ()
    TYPE: ClassVar[PduType] = PduType.RESPONSE


Pdu = (
    Open
    | Close
    | Register
    | Unregister
    | Get
    | GetNext
    | GetBulk
    | TestSet
    | CommitSet
    | UndoSet
    | CleanupSet
    | Notify
    | Ping
    | IndexAllocate
    | IndexDeallocate
    | AddAgentCaps
    | RemoveAgentCaps
    | Response
)

# --- encoding ------------------------------------------------------------------------------


# Precompiled layouts: the hot path (a GetNext in, a Response out) runs for every varbind of
# a walk, and building a format string for each field costs more than the packing.
_HEADER = {o: struct.Struct(o + "BBBBIIII") for o in "><"}
_U16 = {o: struct.Struct(o + "H") for o in "><"}
_U16X2 = {o: struct.Struct(o + "HH") for o in "><"}
_U32 = {o: struct.Struct(o + "I") for o in "><"}
_I32 = {o: struct.Struct(o + "i") for o in "><"}
_U64 = {o: struct.Struct(o + "Q") for o in "><"}
_RESPONSE_HEAD = {o: struct.Struct(o + "IHH") for o in "><"}
_SUBIDS: dict[tuple[str, int], struct.Struct] = {}


def _subids(order: str, n: int) -> struct.Struct:
    """The layout of n sub-identifiers (n <= MAX_SUBIDS, so the cache stays small)."""
    st = _SUBIDS.get((order, n))
    if st is None:
        st = _SUBIDS[order, n] = struct.Struct(f"{order}{n}I")
    return st


class _Writer:
    def __init__(self, order: str) -> None:
        self.order = order
        self.parts: list[bytes] = []

    def u8(self, *values: int) -> None:
        self.parts.append(bytes(values))

    def u16(self, value: int) -> None:
        self.parts.append(_U16[self.order].pack(value))

    def u32(self, value: int) -> None:
        self.parts.append(_U32[self.order].pack(value))

    def oid(self, oid: Oid, include: bool = False) -> None:
        prefix = 0
        subids = oid
        # §5.1: 1.3.6.1.x.* travels as prefix x and the rest, x in 1..255
        if len(oid) >= 5 and oid[:4] == _INTERNET and 0 < oid[4] < 256:
            prefix, subids = oid[4], oid[5:]
        n = len(subids)
        if n > MAX_SUBIDS:
            raise ValueError(f"OID has {len(oid)} sub-identifiers, at most {MAX_SUBIDS} fit")
        # a sub-identifier outside 0..2^32-1 makes pack raise struct.error -> ValueError
        head = bytes((n, prefix, 1 if include else 0, 0))
        self.parts += (head, _subids(self.order, n).pack(*subids))

    def octets(self, data: bytes) -> None:
        self.u32(len(data))
        self.parts.append(bytes(data) + b"\0" * (-len(data) % 4))

    def context(self, pdu: Pdu) -> None:
        ctx = getattr(pdu, "context", None)
        if ctx is not None:
            self.octets(ctx)

    def ranges(self, ranges: tuple[SearchRange, ...]) -> None:
        for r in ranges:
            self.oid(r.start, r.include)
            self.oid(r.end)

    def varbinds(self, varbinds: tuple[VarBind, ...]) -> None:
        self.pairs([(vb.name, vb.value) for vb in varbinds])

    def pairs(self, pairs: Iterable[tuple[Oid, Value]]) -> None:
        head = _U16X2[self.order]
        for name, v in pairs:
            self.parts.append(head.pack(v.TAG, 0))
            self.oid(name)
            self.value(v)

    def value(self, v: Value) -> None:
        # by exact type: a match over the value classes was a third of a Response's cost
        kind = _VALUE_KIND.get(type(v))
        o = self.order
        if kind == "i32":
            self.parts.append(_I32[o].pack(v.value))  # type: ignore[union-attr]
        elif kind == "u32":
            self.parts.append(_U32[o].pack(v.value))  # type: ignore[union-attr]
        elif kind == "u64":
            self.parts.append(_U64[o].pack(v.value))  # type: ignore[union-attr]
        elif kind == "octets":
            self.octets(v.value)  # type: ignore[union-attr]
        elif kind == "oid":
            self.oid(v.value)  # type: ignore[union-attr]
        # Null and the three exceptions carry no data


_VALUE_KIND: dict[type, str] = {
    Integer: "i32",
    Counter32: "u32",
    Gauge32: "u32",
    TimeTicks: "u32",
    Counter64: "u64",
    OctetString: "octets",
    Opaque: "octets",
    IpAddress: "octets",
    ObjectIdentifier: "oid",
}


def encode(pdu: Pdu, *, network_order: bool = True) -> bytes:
    """The PDU's bytes; big-endian unless a test asks for the other order.

    A value out of range for its field raises ValueError: that is the caller's bug,
    not the peer's, so it is not an AgentxError.
    """
    try:
        return _encode(pdu, ">" if network_order else "<")
    except struct.error as e:
        raise ValueError(f"{pdu.TYPE.name}: {e}") from None


def _encode(pdu: Pdu, order: str) -> bytes:
    network_order = order == ">"
    w = _Writer(order)
    flags = NETWORK_BYTE_ORDER if network_order else 0
    if getattr(pdu, "context", None) is not None:
        flags |= NON_DEFAULT_CONTEXT
    match pdu:
        case Response():  # first: the answer to every Get/GetNext
            w.parts.append(_RESPONSE_HEAD[order].pack(pdu.sys_uptime, pdu.error, pdu.index))
            w.varbinds(pdu.varbinds)
        case Open():
            w.u8(pdu.timeout, 0, 0, 0)
            w.oid(pdu.id)
            w.octets(pdu.descr)
        case Close():
            w.u8(pdu.reason, 0, 0, 0)
        case Register() | Unregister():
            if isinstance(pdu, Register):
                if pdu.instance_registration:
                    flags |= INSTANCE_REGISTRATION
                first = pdu.timeout
            else:
                first = 0
            w.context(pdu)
            w.u8(first, pdu.priority, pdu.range_subid, 0)
            w.oid(pdu.subtree)
            if pdu.range_subid:
                w.u32(pdu.upper_bound)
        case Get() | GetNext():
            w.context(pdu)
            w.ranges(pdu.ranges)
        case GetBulk():
            w.context(pdu)
            w.u16(pdu.non_repeaters)
            w.u16(pdu.max_repetitions)
            w.ranges(pdu.ranges)
        case TestSet() | Notify() | IndexDeallocate():
            w.context(pdu)
            w.varbinds(pdu.varbinds)
        case IndexAllocate():
            flags |= (NEW_INDEX if pdu.new_index else 0) | (ANY_INDEX if pdu.any_index else 0)
            w.context(pdu)
            w.varbinds(pdu.varbinds)
        case AddAgentCaps():
            w.context(pdu)
            w.oid(pdu.id)
            w.octets(pdu.descr)
        case RemoveAgentCaps():
            w.context(pdu)
            w.oid(pdu.id)
        case Ping():
            w.context(pdu)
        case CommitSet() | UndoSet() | CleanupSet():
            pass
    payload = b"".join(w.parts)
    header = _HEADER[order].pack(
        VERSION,
        pdu.TYPE,
        flags,
        0,
        pdu.session_id,
        pdu.transaction_id,
        pdu.packet_id,
        len(payload),
    )
    return header + payload


# --- decoding ------------------------------------------------------------------------------


class _Reader:
    """Reads the payload in place (unpack_from: no slice per field); every read checks the
    bounds first, so a short PDU is "truncated", never a struct.error."""

    __slots__ = ("data", "header", "order", "pos")

    def __init__(self, data: bytes, pos: int, order: str, header: Header) -> None:
        self.data = data
        self.pos = pos
        self.order = order
        self.header = header

    def fail(self, reason: str, detail: str = "") -> AgentxError:
        return AgentxError(reason, detail, self.header)

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > len(self.data):
            raise self.fail("truncated", f"need {n} octets at offset {pos}")
        self.pos = pos + n
        return pos

    def take(self, n: int) -> bytes:
        pos = self._need(n)
        return self.data[pos : pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def u8(self) -> int:
        return self.data[self._need(1)]

    def u16(self) -> int:
        return _U16[self.order].unpack_from(self.data, self._need(2))[0]

    def u32(self) -> int:
        return _U32[self.order].unpack_from(self.data, self._need(4))[0]

    def i32(self) -> int:
        return _I32[self.order].unpack_from(self.data, self._need(4))[0]

    def u64(self) -> int:
        return _U64[self.order].unpack_from(self.data, self._need(8))[0]

    def oid(self) -> tuple[Oid, bool]:
        pos = self._need(4)
        data = self.data
        n, prefix, include = data[pos], data[pos + 1], data[pos + 2]
        if n > MAX_SUBIDS:
            raise self.fail("bad_oid", f"{n} sub-identifiers")
        subids = _subids(self.order, n).unpack_from(data, self._need(4 * n))
        if prefix:
            return (*_INTERNET, prefix, *subids), bool(include)
        return subids, bool(include)

    def octets(self) -> bytes:
        n = self.u32()
        if n > len(self.data) - self.pos:
            raise self.fail("truncated", f"octet string of {n} octets")
        data = self.take(n)
        self._need(-n % 4)
        return data

    def context(self) -> bytes | None:
        return self.octets() if self.header.flags & NON_DEFAULT_CONTEXT else None

    def ranges(self) -> tuple[SearchRange, ...]:
        return tuple(SearchRange(start, end, inc) for start, end, inc in self.range_tuples())

    def range_tuples(self) -> list[tuple[Oid, Oid, bool]]:
        """The SearchRanges to the end as (start, end, include): no objects on the hot path."""
        out = []
        while not self.at_end():
            start, include = self.oid()
            end, _ = self.oid()
            out.append((start, end, include))
        return out

    def varbinds(self) -> tuple[VarBind, ...]:
        out = []
        while not self.at_end():
            tag = self.u16()
            self._need(2)
            name, _ = self.oid()
            out.append(VarBind(name, self.value(tag)))
        return tuple(out)

    def value(self, tag: int) -> Value:
        if tag == Integer.TAG:
            return Integer(self.i32())
        if tag in _U32_VALUES:
            return _U32_VALUES[tag](self.u32())
        if tag == Counter64.TAG:
            return Counter64(self.u64())
        if tag == OctetString.TAG:
            return OctetString(self.octets())
        if tag == Opaque.TAG:
            return Opaque(self.octets())
        if tag == IpAddress.TAG:
            data = self.octets()
            if len(data) != 4:
                raise self.fail("bad_value", f"IpAddress of {len(data)} octets")
            return IpAddress(data)
        if tag == ObjectIdentifier.TAG:
            return ObjectIdentifier(self.oid()[0])
        if tag in _EMPTY_VALUES:
            return _EMPTY_VALUES[tag]
        raise self.fail("bad_value_type", f"type {tag}")


def decode_header(data: bytes, pos: int = 0) -> Header:
    """The header at `pos` in `data` (at least HEADER_LEN octets from there), checked enough
    to frame the stream: version, type, a payload length that is sane and a multiple of 4."""
    if len(data) - pos < HEADER_LEN:
        got = len(data) - pos
        raise AgentxError("truncated", f"header needs {HEADER_LEN} octets, got {got}")
    order = ">" if data[pos + 2] & NETWORK_BYTE_ORDER else "<"
    version, type_, flags, _, sid, tid, pid, length = _HEADER[order].unpack_from(data, pos)
    header = Header(version, type_, flags, sid, tid, pid, length)
    if header.version != VERSION:
        raise AgentxError("bad_version", f"version {header.version}", header)
    if header.payload_length % 4 or header.payload_length > MAX_PAYLOAD:
        raise AgentxError("bad_length", f"payload length {header.payload_length}", header)
    if header.type not in PduType._value2member_map_:
        raise AgentxError("bad_type", f"type {header.type}", header)
    return header


def decode(data: bytes, header: Header | None = None) -> Pdu:
    """Exactly one PDU: header and the whole payload, nothing after it. A caller that has
    framed the stream passes the header it read, so it is not decoded twice."""
    if header is None:
        header = decode_header(data)
    if len(data) != HEADER_LEN + header.payload_length:
        raise AgentxError(
            "bad_length",
            f"{len(data) - HEADER_LEN} payload octets, header says {header.payload_length}",
            header,
        )
    order = ">" if header.flags & NETWORK_BYTE_ORDER else "<"
    r = _Reader(bytes(data), HEADER_LEN, order, header)
    ids = {
        "session_id": header.session_id,
        "transaction_id": header.transaction_id,
        "packet_id": header.packet_id,
    }
    pdu = _decode_payload(header.type, r, header, ids)
    if not r.at_end():
        raise r.fail("trailing_data", f"{len(data) - r.pos} octets after the {pdu.TYPE.name}")
    return pdu


# --- the hot path of a walk -------------------------------------------------------------------
# snmpd asks a subagent one varbind at a time, so a walk is thousands of plain Get/GetNext
# PDUs. These two read such a PDU and write its Response without the PDU objects; anything
# unusual (other types, a context, little-endian, damage) returns None and goes the general
# way above, which also names the error. tests/unit/test_agentx_session.py checks both agree.

PlainRead = tuple[Header, list[tuple[Oid, Oid, bool]]]
_PLAIN_TYPES = (PduType.GET_NEXT, PduType.GET)


def decode_plain_read(data: bytes) -> PlainRead | None:
    """(header, [(start, end, include)...]) of a whole network-order Get or GetNext in the
    default context, or None."""
    try:
        header = decode_header(data)
        if header.flags != NETWORK_BYTE_ORDER or header.type not in _PLAIN_TYPES:
            return None
        if header.payload_length != len(data) - HEADER_LEN:
            return None
        return header, _Reader(data, HEADER_LEN, ">", header).range_tuples()
    except AgentxError:
        return None


def encode_plain_response(header: Header, pairs: Iterable[tuple[Oid, Value]]) -> bytes:
    """The Response (no error) to the request `header` came with, in network order."""
    w = _Writer(">")
    w.parts.append(_RESPONSE_HEAD[">"].pack(0, 0, 0))
    w.pairs(pairs)
    payload = b"".join(w.parts)
    return _HEADER[">"].pack(
        VERSION, PduType.RESPONSE, NETWORK_BYTE_ORDER, 0,
        header.session_id, header.transaction_id, header.packet_id, len(payload),
    ) + payload  # fmt: skip


def _decode_payload(t: int, r: _Reader, header: Header, ids: dict[str, int]) -> Pdu:
    flags = header.flags
    # the requests of a walk first; decode_header has checked t is a PduType
    if t == PduType.GET_NEXT:
        ctx = r.context()
        return GetNext(ranges=r.ranges(), context=ctx, **ids)
    if t == PduType.GET:
        ctx = r.context()
        return Get(ranges=r.ranges(), context=ctx, **ids)
    if t == PduType.GET_BULK:
        ctx = r.context()
        nr, mr = r.u16(), r.u16()
        return GetBulk(non_repeaters=nr, max_repetitions=mr, ranges=r.ranges(), context=ctx, **ids)
    if t == PduType.OPEN:
        timeout = r.u8()
        r.take(3)
        return Open(timeout=timeout, id=r.oid()[0], descr=r.octets(), **ids)
    if t == PduType.CLOSE:
        reason = r.u8()
        r.take(3)
        return Close(reason=reason, **ids)
    if t == PduType.REGISTER or t == PduType.UNREGISTER:
        ctx = r.context()
        timeout, priority, range_subid, _ = r.take(4)
        subtree = r.oid()[0]
        if range_subid > len(subtree):
            raise r.fail("bad_range", f"range_subid {range_subid} past the subtree")
        upper = r.u32() if range_subid else 0
        if t == PduType.UNREGISTER:
            return Unregister(
                subtree=subtree,
                priority=priority,
                range_subid=range_subid,
                upper_bound=upper,
                context=ctx,
                **ids,
            )
        return Register(
            subtree=subtree,
            timeout=timeout,
            priority=priority,
            range_subid=range_subid,
            upper_bound=upper,
            instance_registration=bool(flags & INSTANCE_REGISTRATION),
            context=ctx,
            **ids,
        )
    if t == PduType.TEST_SET:
        ctx = r.context()
        return TestSet(varbinds=r.varbinds(), context=ctx, **ids)
    if t == PduType.COMMIT_SET:
        return CommitSet(**ids)
    if t == PduType.UNDO_SET:
        return UndoSet(**ids)
    if t == PduType.CLEANUP_SET:
        return CleanupSet(**ids)
    if t == PduType.NOTIFY:
        ctx = r.context()
        return Notify(varbinds=r.varbinds(), context=ctx, **ids)
    if t == PduType.PING:
        return Ping(context=r.context(), **ids)
    if t == PduType.INDEX_ALLOCATE:
        ctx = r.context()
        return IndexAllocate(
            varbinds=r.varbinds(),
            new_index=bool(flags & NEW_INDEX),
            any_index=bool(flags & ANY_INDEX),
            context=ctx,
            **ids,
        )
    if t == PduType.INDEX_DEALLOCATE:
        ctx = r.context()
        return IndexDeallocate(varbinds=r.varbinds(), context=ctx, **ids)
    if t == PduType.ADD_AGENT_CAPS:
        ctx = r.context()
        return AddAgentCaps(id=r.oid()[0], descr=r.octets(), context=ctx, **ids)
    if t == PduType.REMOVE_AGENT_CAPS:
        ctx = r.context()
        return RemoveAgentCaps(id=r.oid()[0], context=ctx, **ids)
    uptime, error, index = r.u32(), r.u16(), r.u16()
    return Response(sys_uptime=uptime, error=error, index=index, varbinds=r.varbinds(), **ids)


def parse_oid(text: str) -> Oid:
    """'1.3.6.1.2' or '.1.3.6.1.2' as a tuple; '' is the null OID."""
    text = text.strip().lstrip(".")
    if not text:
        return ()
    oid = tuple(int(part) for part in text.split("."))
    if any(not 0 <= sub < 1 << 32 for sub in oid):
        raise ValueError(f"OID {text!r} has a sub-identifier out of range")
    return oid


def format_oid(oid: Oid) -> str:
    return ".".join(map(str, oid))
