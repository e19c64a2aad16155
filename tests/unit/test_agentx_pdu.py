"""AgentX codec: golden bytes from RFC 2741's layouts, round trips in both byte orders for
every PDU type, and fuzzing: whatever arrives, decode raises AgentxError or nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.pdu import AgentxError, decode, encode

U32 = st.integers(0, 2**32 - 1)
IDS = st.fixed_dictionaries({"session_id": U32, "transaction_id": U32, "packet_id": U32})
CONTEXT = st.none() | st.binary(max_size=9)
SUBIDS = st.lists(U32, max_size=12)
OIDS = (
    st.builds(tuple, SUBIDS)
    | st.builds(lambda tail: (1, 3, 6, 1, *tail), SUBIDS)
    | st.builds(tuple, st.lists(st.integers(0, 9), min_size=120, max_size=128))
)


def snmp_values(
    oids: st.SearchStrategy[tuple[int, ...]], max_octets: int = 13, null: bool = True
) -> st.SearchStrategy[p.Value]:
    """Every value type (Null only if asked: it is no SNMP answer), OIDs from `oids`."""
    return st.one_of(
        st.builds(p.Integer, st.integers(-(2**31), 2**31 - 1)),
        st.builds(p.OctetString, st.binary(max_size=max_octets)),
        *([st.just(p.NULL)] if null else []),
        st.builds(p.ObjectIdentifier, oids),
        st.builds(p.IpAddress, st.binary(min_size=4, max_size=4)),
        st.builds(p.Counter32, U32),
        st.builds(p.Gauge32, U32),
        st.builds(p.TimeTicks, U32),
        st.builds(p.Opaque, st.binary(max_size=13)),
        st.builds(p.Counter64, st.integers(0, 2**64 - 1)),
        st.just(p.NO_SUCH_OBJECT),
        st.just(p.NO_SUCH_INSTANCE),
        st.just(p.END_OF_MIB_VIEW),
    )


VALUES = snmp_values(OIDS)
VARBINDS = st.lists(st.builds(p.VarBind, OIDS, VALUES), max_size=5).map(tuple)
RANGES = st.lists(st.builds(p.SearchRange, OIDS, OIDS, st.booleans()), max_size=5).map(tuple)
U8 = st.integers(0, 255)
U16 = st.integers(0, 65535)


@st.composite
def registers(draw: st.DrawFn, cls: type) -> p.Pdu:
    subtree = draw(OIDS)
    range_subid = draw(st.integers(0, len(subtree)))
    kw = dict(
        subtree=subtree,
        priority=draw(U8),
        range_subid=range_subid,
        upper_bound=draw(U32) if range_subid else 0,
        context=draw(CONTEXT),
        **draw(IDS),
    )
    if cls is p.Register:
        kw.update(timeout=draw(U8), instance_registration=draw(st.booleans()))
    return cls(**kw)


def pdus_of(cls: type) -> st.SearchStrategy[p.Pdu]:
    """Every field of `cls` drawn from its whole range."""
    b = {
        p.Open: lambda: st.builds(p.Open, timeout=U8, id=OIDS, descr=st.binary(max_size=9)),
        p.Close: lambda: st.builds(p.Close, reason=st.sampled_from(list(p.CloseReason))),
        p.Register: lambda: registers(p.Register),
        p.Unregister: lambda: registers(p.Unregister),
        p.Get: lambda: st.builds(p.Get, ranges=RANGES, context=CONTEXT),
        p.GetNext: lambda: st.builds(p.GetNext, ranges=RANGES, context=CONTEXT),
        p.GetBulk: lambda: st.builds(
            p.GetBulk, non_repeaters=U16, max_repetitions=U16, ranges=RANGES, context=CONTEXT
        ),
        p.TestSet: lambda: st.builds(p.TestSet, varbinds=VARBINDS, context=CONTEXT),
        p.CommitSet: lambda: st.builds(p.CommitSet),
        p.UndoSet: lambda: st.builds(p.UndoSet),
        p.CleanupSet: lambda: st.builds(p.CleanupSet),
        p.Notify: lambda: st.builds(p.Notify, varbinds=VARBINDS, context=CONTEXT),
        p.Ping: lambda: st.builds(p.Ping, context=CONTEXT),
        p.IndexAllocate: lambda: st.builds(
            p.IndexAllocate,
            varbinds=VARBINDS,
            new_index=st.booleans(),
            any_index=st.booleans(),
            context=CONTEXT,
        ),
        p.IndexDeallocate: lambda: st.builds(p.IndexDeallocate, varbinds=VARBINDS, context=CONTEXT),
        p.AddAgentCaps: lambda: st.builds(
            p.AddAgentCaps, id=OIDS, descr=st.binary(max_size=9), context=CONTEXT
        ),
        p.RemoveAgentCaps: lambda: st.builds(p.RemoveAgentCaps, id=OIDS, context=CONTEXT),
        p.Response: lambda: st.builds(
            p.Response, sys_uptime=U32, error=U16, index=U16, varbinds=VARBINDS
        ),
    }[cls]()
    return st.tuples(b, IDS).map(lambda t: dataclasses.replace(t[0], **t[1]))


PDU_TYPES = [
    p.Open,
    p.Close,
    p.Register,
    p.Unregister,
    p.Get,
    p.GetNext,
    p.GetBulk,
    p.TestSet,
    p.CommitSet,
    p.UndoSet,
    p.CleanupSet,
    p.Notify,
    p.Ping,
    p.IndexAllocate,
    p.IndexDeallocate,
    p.AddAgentCaps,
    p.RemoveAgentCaps,
    p.Response,
]
ANY_PDU = st.one_of([pdus_of(c) for c in PDU_TYPES])


def test_every_pdu_type_has_a_strategy() -> None:
    assert {c.TYPE for c in PDU_TYPES} == set(p.PduType)


# --- golden bytes ----------------------------------------------------------------------------


def test_open_golden_bytes() -> None:
    pdu = p.Open(timeout=5, id=(1, 3, 6, 1, 4, 1, 8072), descr=b"hk", packet_id=7)
    header = bytes([1, 1, 0x10, 0]) + struct.pack(">IIII", 0, 0, 7, 24)
    payload = (
        bytes([5, 0, 0, 0])
        # 1.3.6.1.4.1.8072: prefix 4 (internet.private), then 1.8072
        + bytes([2, 4, 0, 0])
        + struct.pack(">II", 1, 8072)
        + struct.pack(">I", 2)
        + b"hk\0\0"  # padded to 4
    )
    assert encode(pdu) == header + payload
    assert decode(header + payload) == pdu


def test_oid_outside_internet_is_not_compressed() -> None:
    data = encode(p.Close(reason=1))  # no OID; build one through RemoveAgentCaps
    assert data[:2] == b"\x01\x02"
    data = encode(p.RemoveAgentCaps(id=(1, 3, 6, 1, 0, 5)))  # 1.3.6.1.0 has no prefix byte
    assert data[20:24] == bytes([6, 0, 0, 0])
    data = encode(p.RemoveAgentCaps(id=(1, 3, 6, 1, 256)))
    assert data[20:24] == bytes([5, 0, 0, 0])


def test_get_next_little_endian_from_the_wire() -> None:
    """A GetNext as a little-endian master sends it: one range, include set, null end."""
    start = bytes([3, 3, 1, 0]) + struct.pack("<III", 9999, 1, 2)  # 1.3.6.1.3.9999.1.2
    end = bytes([0, 0, 0, 0])
    payload = start + end
    header = bytes([1, 6, 0, 0]) + struct.pack("<IIII", 12, 34, 56, len(payload))
    assert decode(header + payload) == p.GetNext(
        session_id=12,
        transaction_id=34,
        packet_id=56,
        ranges=(p.SearchRange((1, 3, 6, 1, 3, 9999, 1, 2), (), include=True),),
    )


def test_varbind_values_on_the_wire() -> None:
    vbs = (
        p.VarBind((1, 3, 6, 1, 3, 1), p.IpAddress(bytes([192, 0, 2, 1]))),
        p.VarBind((1, 3, 6, 1, 3, 2), p.Counter64(2**40)),
        p.VarBind((1, 3, 6, 1, 3, 3), p.Integer(-1)),
    )
    data = encode(p.Response(varbinds=vbs))
    body = data[28:]
    assert body[:4] == struct.pack(">HH", 64, 0)
    assert body[4:12] == bytes([1, 3, 0, 0]) + struct.pack(">I", 1)
    assert body[12:20] == struct.pack(">I", 4) + bytes([192, 0, 2, 1])
    assert body[20:24] == struct.pack(">HH", 70, 0)
    assert body[32:40] == struct.pack(">Q", 2**40)
    assert body[-4:] == b"\xff\xff\xff\xff"


def test_context_sets_the_flag_and_leads_the_payload() -> None:
    data = encode(p.Ping(context=b"abcde"))
    assert data[2] == p.NETWORK_BYTE_ORDER | p.NON_DEFAULT_CONTEXT
    assert data[20:] == struct.pack(">I", 5) + b"abcde\0\0\0"


def test_register_range_and_instance_flag() -> None:
    reg = p.Register(
        subtree=(1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 1), range_subid=11, upper_bound=9, priority=1
    )
    data = encode(reg)
    assert data[20:24] == bytes([0, 1, 11, 0])
    assert data[-4:] == struct.pack(">I", 9)
    assert decode(data) == reg
    assert encode(p.Register(subtree=(1,), instance_registration=True))[2] & 0x01


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", PDU_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_both_byte_orders(cls: type, data: st.DataObject) -> None:
    pdu = data.draw(pdus_of(cls))
    wire = encode(pdu)
    assert decode(wire) == pdu
    assert decode(encode(pdu, network_order=False)) == pdu
    assert p.decode_header(wire).payload_length == len(wire) - p.HEADER_LEN
    assert encode(decode(wire)) == wire


def test_encode_refuses_values_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode(p.Open(timeout=256))
    with pytest.raises(ValueError):
        encode(p.RemoveAgentCaps(id=(1,) * 129))
    with pytest.raises(ValueError):
        encode(p.RemoveAgentCaps(id=(2**32,)))
    with pytest.raises(ValueError):
        p.Counter32(-1)
    with pytest.raises(ValueError):
        p.IpAddress(b"\x01\x02\x03")


# --- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x0d\x10", "truncated"),
        (bytes([2, 13, 0x10, 0]) + bytes(16), "bad_version"),
        (bytes([1, 99, 0x10, 0]) + bytes(16), "bad_type"),
        (bytes([1, 13, 0x10, 0]) + struct.pack(">IIII", 0, 0, 0, 3), "bad_length"),
        (bytes([1, 13, 0x10, 0]) + struct.pack(">IIII", 0, 0, 0, 2**30), "bad_length"),
        (bytes([1, 13, 0x10, 0]) + struct.pack(">IIII", 0, 0, 0, 4), "bad_length"),
        (bytes([1, 13, 0x10, 0]) + struct.pack(">IIII", 0, 0, 0, 4) + bytes(4), "trailing_data"),
        (
            bytes([1, 2, 0x10, 0]) + struct.pack(">IIII", 0, 0, 0, 4) + bytes([129, 0, 0, 0])[:4],
            None,
        ),
    ],
)
def test_malformed_header_and_payload(data: bytes, reason: str | None) -> None:
    if reason is None:  # a Close with reason 129 is odd but well-formed
        assert decode(data) == p.Close(reason=129)
        return
    with pytest.raises(AgentxError) as e:
        decode(data)
    assert e.value.reason == reason


def _response_with(body: bytes) -> bytes:
    payload = struct.pack(">IHH", 0, 0, 0) + body
    return bytes([1, 18, 0x10, 0]) + struct.pack(">IIII", 1, 2, 3, len(payload)) + payload


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (struct.pack(">HH", 64, 0) + bytes(4) + struct.pack(">I", 3) + bytes(4), "bad_value"),
        (struct.pack(">HH", 3, 0) + bytes(4), "bad_value_type"),
        (struct.pack(">HH", 2, 0) + bytes([129, 0, 0, 0]) + bytes(129 * 4), "bad_oid"),
        (struct.pack(">HH", 4, 0) + bytes(4) + struct.pack(">I", 100), "truncated"),
    ],
)
def test_malformed_varbinds_keep_the_header(body: bytes, reason: str) -> None:
    with pytest.raises(AgentxError) as e:
        decode(_response_with(body))
    assert e.value.reason == reason
    assert e.value.header is not None and e.value.header.packet_id == 3


@settings(max_examples=2000)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_agentx_error(data: bytes) -> None:
    with contextlib.suppress(AgentxError):
        decode(data)


@settings(max_examples=1000)
@given(U8, st.integers(0, 0xFF), st.binary(max_size=160).map(lambda b: b[: len(b) // 4 * 4]))
def test_random_payloads_behind_a_valid_header(t: int, flags: int, payload: bytes) -> None:
    order = ">" if flags & p.NETWORK_BYTE_ORDER else "<"
    data = bytes([1, t, flags, 0]) + struct.pack(order + "IIII", 1, 2, 3, len(payload)) + payload
    with contextlib.suppress(AgentxError):
        decode(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_PDU, st.data())
def test_damaged_pdus_raise_only_agentx_error(pdu: p.Pdu, data: st.DataObject) -> None:
    wire = bytearray(encode(pdu, network_order=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(U8)
    cut = data.draw(st.integers(0, len(wire)))
    for damaged in (bytes(wire), bytes(wire[:cut])):
        with contextlib.suppress(AgentxError):
            decode(damaged)


def test_oid_text() -> None:
    assert p.parse_oid(".1.3.6.1.3.9999") == (1, 3, 6, 1, 3, 9999)
    assert p.parse_oid("") == ()
    assert p.format_oid((1, 3, 6)) == "1.3.6"
    with pytest.raises(ValueError):
        p.parse_oid("1.x")
