"""ber.py, the embedded agent's v2c read path, against pysnmp's codec as the reference:
what pysnmp encodes we parse to the same request, what we encode pysnmp decodes to the same
response; anything else (v1, Set, non-NULL values, damage) is left to pysnmp (None), and no
input makes the parser raise."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import rfc1902
from pysnmp.proto.api import v1, v2c

from hakeeper.snmp import ber
from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.embedded import from_pysnmp
from tests.unit.test_agentx_pdu import snmp_values

# what an SNMP OID can be: two first arcs (0..2, 0..39 under 0 and 1), any 32-bit rest
ARC = st.integers(0, 2**32 - 1) | st.integers(0, 300)
OIDS = st.builds(
    lambda first, second, rest: (first, second % 40 if first < 2 else second, *rest),
    st.integers(0, 2),
    st.integers(0, 1000),
    st.lists(ARC, max_size=40),
)
VALUES = snmp_values(OIDS, max_octets=300, null=False)
REQUEST_ID = st.integers(-(2**31), 2**31 - 1)
PDUS = {ber.GET: v2c.GetRequestPDU, ber.GET_NEXT: v2c.GetNextRequestPDU}


def pysnmp_request(
    tag: int, community: bytes, rid: int, names: list[tuple[int, ...]], nr: int = 0, mr: int = 0
) -> bytes:
    if tag == ber.GET_BULK:
        pdu = v2c.GetBulkRequestPDU()
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, nr)
        v2c.apiBulkPDU.set_max_repetitions(pdu, mr)
    else:
        pdu = PDUS[tag]()
        v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, rid)
    v2c.apiPDU.set_varbinds(pdu, [(n, v2c.null) for n in names])
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, community)
    v2c.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([ber.GET, ber.GET_NEXT, ber.GET_BULK]),
    st.binary(max_size=200),
    REQUEST_ID,
    st.lists(OIDS, max_size=30),
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
)
def test_parses_what_pysnmp_encodes(
    tag: int, community: bytes, rid: int, names: list[tuple[int, ...]], nr: int, mr: int
) -> None:
    req = ber.parse_v2c_request(pysnmp_request(tag, community, rid, names, nr, mr))
    assert req is not None
    assert (req.tag, req.community, req.request_id, req.names) == (
        tag, community, rid, tuple(names),
    )  # fmt: skip
    if tag == ber.GET_BULK:
        assert (req.non_repeaters, req.max_repetitions) == (nr, mr)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=200),
    REQUEST_ID,
    st.integers(0, 18),
    st.integers(0, 300),
    st.lists(st.tuples(OIDS, VALUES), max_size=40),
)
def test_pysnmp_decodes_what_we_encode(
    community: bytes,
    rid: int,
    status: int,
    index: int,
    varbinds: list[tuple[tuple[int, ...], p.Value]],
) -> None:
    wire = ber.encode_v2c_response(community, rid, status, index, varbinds)
    msg, rest = decoder.decode(wire, asn1Spec=v2c.Message())
    assert rest == b""
    assert encoder.encode(msg) == wire  # the same octets pysnmp would send
    pdu = v2c.apiMessage.get_pdu(msg)
    assert pdu.tagSet == v2c.ResponsePDU.tagSet
    assert bytes(v2c.apiMessage.get_community(msg)) == community
    assert int(v2c.apiPDU.get_request_id(pdu)) == rid
    assert (int(v2c.apiPDU.get_error_status(pdu)), int(pdu.getComponentByPosition(2))) == (
        status, index,
    )  # fmt: skip
    got = [(tuple(n), from_pysnmp(v)) for n, v in v2c.apiPDU.get_varbinds(pdu)]
    assert got == varbinds


def test_other_shapes_are_left_to_pysnmp() -> None:
    name = (1, 3, 6, 1, 2, 1, 1, 3, 0)
    plain = pysnmp_request(ber.GET, b"public", 7, [name])
    assert ber.parse_v2c_request(plain) is not None
    # SNMPv1: the same PDU in a version-0 message
    msg = v1.Message()
    v1.apiMessage.set_defaults(msg)
    v1.apiMessage.set_community(msg, b"public")
    pdu = v1.GetRequestPDU()
    v1.apiPDU.set_defaults(pdu)
    v1.apiPDU.set_varbinds(pdu, [(name, v1.null)])
    v1.apiMessage.set_pdu(msg, pdu)
    assert ber.parse_v2c_request(encoder.encode(msg)) is None
    # a Set carries values; a Get with a value is odd: both go the full way
    for pdu in (v2c.SetRequestPDU(), v2c.GetRequestPDU()):
        v2c.apiPDU.set_defaults(pdu)
        v2c.apiPDU.set_varbinds(pdu, [(name, rfc1902.Integer32(5))])
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_pdu(msg, pdu)
        assert ber.parse_v2c_request(encoder.encode(msg)) is None
    assert ber.parse_v2c_request(plain + b"\x00") is None  # trailing octets
    assert ber.parse_v2c_request(plain[:-1]) is None  # cut short
    assert ber.parse_v2c_request(b"") is None


@pytest.mark.parametrize(
    ("oid", "octets"),
    [
        ((1, 3, 6, 1), b"\x06\x03\x2b\x06\x01"),
        ((1, 3, 6, 1, 4, 1, 2**32 - 1), b"\x06\x0a\x2b\x06\x01\x04\x01\x8f\xff\xff\xff\x7f"),
        ((2, 999), b"\x06\x02\x88\x37"),
        ((), b"\x06\x01\x00"),  # the null OID travels as 0.0
    ],
)
def test_oid_octets(oid: tuple[int, ...], octets: bytes) -> None:
    assert ber.encode_oid(oid) == octets


@settings(max_examples=2000)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    ber.parse_v2c_request(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(REQUEST_ID, st.lists(OIDS, min_size=1, max_size=5), st.data())
def test_damaged_requests_parse_to_none_or_to_what_pysnmp_reads(
    rid: int, names: list[tuple[int, ...]], data: st.DataObject
) -> None:
    wire = bytearray(pysnmp_request(ber.GET_NEXT, b"public", rid, names))
    for _ in range(data.draw(st.integers(1, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    req = ber.parse_v2c_request(bytes(wire))
    if req is None:
        return
    # whatever we accept, pysnmp reads the same way
    msg, rest = decoder.decode(bytes(wire), asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(msg)
    assert bytes(v2c.apiMessage.get_community(msg)) == req.community
    assert int(v2c.apiPDU.get_request_id(pdu)) == req.request_id
    assert tuple(tuple(n) for n, _ in v2c.apiPDU.get_varbinds(pdu)) == req.names
