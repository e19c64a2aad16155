"""The SNMPv2c read path in BER, by hand: parse a plain Get/GetNext/GetBulk message, encode
its Response.

Why: the embedded agent's message layer is pysnmp, whose pyasn1 codec costs 60-80 µs a
varbind; a monitoring system walking a 1000-instance table through it spent most of the time
there. This module does the one common shape in a few µs a varbind. It is deliberately
narrow and sans-IO: `parse_v2c_request` returns None for anything that is not exactly a
v2c request of those three types with NULL values and definite minimal lengths, and the
caller hands such datagrams to pysnmp, which decodes, answers or counts them as before
(SNMPv3, Set, bad versions, malformed packets all take that way).

Message (RFC 3416, RFC 1901)::

    SEQUENCE { version INTEGER (1 = v2c), community OCTET STRING,
               PDU [A0 Get | A1 GetNext | A5 GetBulk | A2 Response] {
                   request-id INTEGER, error-status/non-repeaters INTEGER,
                   error-index/max-repetitions INTEGER,
                   SEQUENCE OF SEQUENCE { name OBJECT IDENTIFIER, value } } }
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from hakeeper.snmp.agentx.pdu import (
    Counter32,
    Counter64,
    EndOfMibView,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    Oid,
    Opaque,
    TimeTicks,
    Value,
)

GET, GET_NEXT, RESPONSE, GET_BULK = 0xA0, 0xA1, 0xA2, 0xA5
_SEQUENCE, _INTEGER, _OCTETS, _NULL, _OID = 0x30, 0x02, 0x04, 0x05, 0x06
V2C = 1  # the version field of an SNMPv2c message


@dataclass(frozen=True, slots=True)
class V2cRequest:
    community: bytes
    tag: int  # GET, GET_NEXT or GET_BULK
    request_id: int
    non_repeaters: int  # GetBulk's; the error-status field of Get/GetNext (ignored)
    max_repetitions: int  # GetBulk's; the error-index field of Get/GetNext (ignored)
    names: tuple[Oid, ...]


class _Unfit(Exception):
    """Not the plain shape: the full decoder takes the datagram."""


def _header(data: bytes, pos: int, tag: int, end: int) -> tuple[int, int]:
    """(content start, content end) of the TLV at pos, which must have `tag` and fit."""
    if pos + 2 > end or data[pos] != tag:
        raise _Unfit
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 3 or pos + n > end:
            raise _Unfit
        length = int.from_bytes(data[pos : pos + n], "big")
        if length < 0x80 or data[pos] == 0:  # long form where short fits: not minimal
            raise _Unfit
        pos += n
    if pos + length > end:
        raise _Unfit
    return pos, pos + length


def _integer(data: bytes, pos: int, end: int) -> tuple[int, int]:
    start, stop = _header(data, pos, _INTEGER, end)
    if not 1 <= stop - start <= 5:
        raise _Unfit
    value = int.from_bytes(data[start:stop], "big", signed=True)
    if not -(1 << 31) <= value < 1 << 31:
        raise _Unfit
    return value, stop


def _oid(data: bytes, start: int, stop: int) -> Oid:
    if start >= stop:
        raise _Unfit
    subids: list[int] = []
    acc = 0
    fresh = True
    for b in data[start:stop]:
        if fresh and b == 0x80:  # a leading 0x80 is not minimal
            raise _Unfit
        acc = (acc << 7) | (b & 0x7F)
        if b & 0x80:
            fresh = False
            continue
        subids.append(acc)
        acc, fresh = 0, True
    if not fresh:  # the last sub-identifier did not end
        raise _Unfit
    first = subids[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    oid = (*head, *subids[1:])
    if any(s >= 1 << 32 for s in oid):
        raise _Unfit
    return oid


def parse_v2c_request(data: bytes) -> V2cRequest | None:
    """The request in `data` if it is a plain v2c Get/GetNext/GetBulk, else None."""
    try:
        end = len(data)
        pos, msg_end = _header(data, 0, _SEQUENCE, end)
        if msg_end != end:
            return None
        version, pos = _integer(data, pos, end)
        if version != V2C:
            return None
        c_start, pos = _header(data, pos, _OCTETS, end)
        community = data[c_start:pos]
        if pos >= end:
            return None
        tag = data[pos]
        if tag not in (GET, GET_NEXT, GET_BULK):
            return None
        pos, pdu_end = _header(data, pos, tag, end)
        if pdu_end != end:
            return None
        request_id, pos = _integer(data, pos, end)
        second, pos = _integer(data, pos, end)
        third, pos = _integer(data, pos, end)
        # RFC 3416's ranges, as pysnmp checks them: error-status 0..18, the rest >= 0
        if second < 0 or third < 0 or (tag != GET_BULK and second > 18):
            return None
        pos, list_end = _header(data, pos, _SEQUENCE, end)
        if list_end != end:
            return None
        names: list[Oid] = []
        while pos < end:
            vb_start, vb_end = _header(data, pos, _SEQUENCE, end)
            o_start, o_end = _header(data, vb_start, _OID, vb_end)
            names.append(_oid(data, o_start, o_end))
            if data[o_end : o_end + 2] != b"\x05\x00" or o_end + 2 != vb_end:
                return None  # a request's values are NULL
            pos = vb_end
    except _Unfit:
        return None
    return V2cRequest(bytes(community), tag, request_id, second, third, tuple(names))


# --- encoding ----------------------------------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _int_body(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def _unsigned_body(value: int) -> bytes:
    # BER integers are signed: an unsigned value with the top bit set gets a leading 0
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


@functools.lru_cache(maxsize=1024)
def _big_arc(sub: int) -> bytes:
    """An arc of 128 or more in base 128, high bit set on all octets but the last (the
    experimental root's 5798 is in every OID of HAKEEPER-MIB: cached)."""
    chunk = []
    while sub:
        chunk.append(sub & 0x7F)
        sub >>= 7
    return bytes(b | 0x80 for b in reversed(chunk[1:])) + bytes((chunk[0],))


def encode_oid(oid: Oid) -> bytes:
    """The OBJECT IDENTIFIER TLV; an OID of fewer than two arcs is padded with 0 as
    net-snmp and pysnmp do (a null OID is 0.0)."""
    if len(oid) < 2:
        oid = (*oid, 0, 0)[:2]
    rest = oid[2:]
    first = 40 * oid[0] + oid[1]
    if first < 0x80 and (not rest or max(rest) < 0x80):
        return _tlv(_OID, bytes((first, *rest)))  # the usual case: one octet an arc
    out = bytearray()
    for sub in (first, *rest):
        if sub < 0x80:
            out.append(sub)
        else:
            out += _big_arc(sub)
    return _tlv(_OID, bytes(out))


_U32_TAGS = {Counter32: 0x41, Gauge32: 0x42, TimeTicks: 0x43}
_OCTET_TAGS = {OctetString: _OCTETS, IpAddress: 0x40, Opaque: 0x44}
_EMPTY = {
    Null: bytes((_NULL, 0)),
    NoSuchObject: b"\x80\x00",
    NoSuchInstance: b"\x81\x00",
    EndOfMibView: b"\x82\x00",
}


def encode_value(value: Value) -> bytes:
    kind = type(value)
    if kind is Integer:
        return _tlv(_INTEGER, _int_body(value.value))  # type: ignore[union-attr]
    if kind in _OCTET_TAGS:
        return _tlv(_OCTET_TAGS[kind], value.value)  # type: ignore[union-attr]
    if kind in _U32_TAGS:
        return _tlv(_U32_TAGS[kind], _unsigned_body(value.value))  # type: ignore[union-attr]
    if kind is Counter64:
        return _tlv(0x46, _unsigned_body(value.value))  # type: ignore[union-attr]
    if kind is ObjectIdentifier:
        return encode_oid(value.value)  # type: ignore[union-attr]
    if kind in _EMPTY:
        return _EMPTY[kind]
    raise TypeError(f"not an SNMP value: {value!r}")


def encode_v2c_response(
    community: bytes,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: Sequence[tuple[Oid, Value]],
) -> bytes:
    """The whole Response message for a v2c request."""
    vbs = b"".join(_tlv(_SEQUENCE, encode_oid(o) + encode_value(v)) for o, v in varbinds)
    pdu = (
        _tlv(_INTEGER, _int_body(request_id))
        + _tlv(_INTEGER, _int_body(error_status))
        + _tlv(_INTEGER, _int_body(error_index))
        + _tlv(_SEQUENCE, vbs)
    )
    msg = _tlv(_INTEGER, _int_body(V2C)) + _tlv(_OCTETS, community) + _tlv(RESPONSE, pdu)
    return _tlv(_SEQUENCE, msg)
