"""VRRP codec: golden wire bytes (hand-built and captured from keepalived), round trips,
and decode never raising anything but PacketError."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.config.model import IPAddress
from hakeeper.vrrp.packet import (
    MCAST_V4,
    MCAST_V6,
    Advert,
    PacketError,
    decode,
    encode,
    parse_ipv4_header,
    vrid_of,
)
from hakeeper.vrrp.stats import RECEIVE_ERRORS

GOLDEN = Path(__file__).parent / "golden"
SRC4 = IPv4Address("198.18.0.1")
SRC6 = IPv6Address("fe80::ff:fe00:1")


def ones_sum_checksum(data: bytes) -> int:
    """Independent RFC 1071 checksum: end-around carry by arithmetic modulo 0xFFFF."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    folded = (total - 1) % 0xFFFF + 1 if total else 0
    return 0xFFFF - folded


def with_checksum(msg: bytes, pseudo: bytes = b"") -> bytes:
    csum = ones_sum_checksum(pseudo + msg)
    return msg[:6] + csum.to_bytes(2, "big") + msg[8:]


# --- golden bytes, hand-built field by field --------------------------------------------


def test_golden_v2_ipv4_pass_auth() -> None:
    # RFC 3768 §5.1: ver 2/type 1, VRID 51, prio 150, 2 addrs, auth 1 (PASS), 1 s, csum.
    msg = (
        bytes([0x21, 51, 150, 2, 1, 1, 0, 0])
        + bytes([198, 18, 0, 100, 198, 18, 0, 101])
        + b"secret1\0"
    )
    wire = with_checksum(msg)
    adv = Advert(
        2,
        51,
        150,
        100,
        (IPv4Address("198.18.0.100"), IPv4Address("198.18.0.101")),
        auth_type=1,
        auth_data=b"secret1",
    )
    assert encode(adv, SRC4, MCAST_V4) == wire
    assert decode(wire, SRC4, MCAST_V4) == adv


def test_golden_v3_ipv4() -> None:
    # RFC 5798 §5.1 with the §5.2.8 pseudo-header: src, dst, 0, 112, length.
    msg = bytes([0x31, 52, 200, 1]) + struct.pack("!HH", 50, 0) + bytes([198, 18, 0, 110])
    pseudo = SRC4.packed + MCAST_V4.packed + bytes([0, 112]) + len(msg).to_bytes(2, "big")
    wire = with_checksum(msg, pseudo)
    adv = Advert(3, 52, 200, 50, (IPv4Address("198.18.0.110"),))
    assert encode(adv, SRC4, MCAST_V4) == wire
    assert decode(wire, SRC4, MCAST_V4) == adv


def test_golden_v3_ipv6() -> None:
    addrs = (IPv6Address("fe80::53"), IPv6Address("2001:db8::53"))
    msg = bytes([0x31, 53, 100, 2]) + struct.pack("!HH", 100, 0) + b"".join(a.packed for a in addrs)
    # RFC 8200 §8.1: src, dst, 32-bit length, 3 zero octets, next header.
    pseudo = SRC6.packed + MCAST_V6.packed + len(msg).to_bytes(4, "big") + bytes([0, 0, 0, 112])
    wire = with_checksum(msg, pseudo)
    adv = Advert(3, 53, 100, 100, addrs)
    assert encode(adv, SRC6, MCAST_V6) == wire
    assert decode(wire, SRC6, MCAST_V6) == adv


# --- golden bytes, captured from keepalived 2.2.7 ----------------------------------------


def _pcap_packets(path: Path) -> list[bytes]:
    """The IP packets of an Ethernet (linktype 1) little-endian pcap file."""
    data = path.read_bytes()
    magic, _maj, _min, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B2C3D4 and linktype == 1
    out, off = [], 24
    while off < len(data):
        _s, _us, caplen, _orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + caplen]
        out.append(frame[14:])  # no VLAN tags on a veth
        off += 16 + caplen
    return out


def _captured() -> list[tuple[IPAddress, IPAddress, int, bytes]]:
    result: list[tuple[IPAddress, IPAddress, int, bytes]] = []
    for pkt in _pcap_packets(GOLDEN / "keepalived-2.2.7.pcap"):
        if pkt[0] >> 4 == 4:
            result.append(parse_ipv4_header(pkt))
        else:
            plen, nxt, hlim = struct.unpack_from("!HBB", pkt, 4)
            assert nxt == 112
            src6, dst6 = IPv6Address(pkt[8:24]), IPv6Address(pkt[24:40])
            result.append((src6, dst6, hlim, pkt[40 : 40 + plen]))
    return result


CAPTURED_ADVERTS = {
    51: Advert(
        2,
        51,
        150,
        100,
        (IPv4Address("198.18.0.100"), IPv4Address("198.18.0.101")),
        auth_type=1,
        auth_data=b"secret1",
    ),
    52: Advert(3, 52, 200, 50, (IPv4Address("198.18.0.110"),)),
    53: Advert(3, 53, 100, 100, (IPv6Address("fe80::53"), IPv6Address("2001:db8::53"))),
}


def test_keepalived_capture_decodes_and_reencodes_byte_for_byte() -> None:
    seen: set[tuple[int, int]] = set()
    for src, dst, ttl, payload in _captured():
        adv = decode(payload, src, dst)
        want = CAPTURED_ADVERTS[adv.vrid]
        assert ttl == 255
        assert adv.priority in (want.priority, 0)  # 0: keepalived's shutdown advert
        assert adv == Advert(
            want.version,
            want.vrid,
            adv.priority,
            want.interval_cs,
            want.addresses,
            auth_type=want.auth_type,
            auth_data=want.auth_data,
        )
        assert encode(adv, src, dst) == payload
        assert vrid_of(payload) == adv.vrid
        seen.add((adv.vrid, adv.priority))
    assert {(51, 150), (52, 200), (53, 100), (51, 0), (52, 0), (53, 0)} <= seen


def test_captured_checksum_corruption_is_detected() -> None:
    for src, dst, _ttl, payload in _captured():
        for pos in (0 + 2, 6, len(payload) - 1):  # priority, checksum itself, last octet
            bad = bytearray(payload)
            bad[pos] ^= 0x01
            with pytest.raises(PacketError) as exc:
                decode(bytes(bad), src, dst)
            assert exc.value.reason == "checksum_err"


def test_v3_checksum_covers_pseudo_header() -> None:
    adv = Advert(3, 52, 200, 50, (IPv4Address("198.18.0.110"),))
    wire = encode(adv, SRC4, MCAST_V4)
    with pytest.raises(PacketError, match="checksum_err"):
        decode(wire, IPv4Address("198.18.0.2"), MCAST_V4)
    with pytest.raises(PacketError, match="checksum_err"):
        decode(wire, SRC4, IPv4Address("198.18.0.2"))


# --- length, version, type ----------------------------------------------------------------

V2 = Advert(2, 1, 100, 100, (IPv4Address("198.18.0.100"),))
V3_4 = Advert(3, 1, 100, 100, (IPv4Address("198.18.0.100"),))
V3_6 = Advert(3, 1, 100, 100, (IPv6Address("fe80::1"),))


def reason(data: bytes, src: IPAddress, dst: IPAddress) -> str:
    with pytest.raises(PacketError) as exc:
        decode(data, src, dst)
    return exc.value.reason


@pytest.mark.parametrize(
    ("adv", "src", "dst"),
    [(V2, SRC4, MCAST_V4), (V3_4, SRC4, MCAST_V4), (V3_6, SRC6, MCAST_V6)],
)
def test_truncated_or_extended_is_packet_len_err(
    adv: Advert, src: IPAddress, dst: IPAddress
) -> None:
    wire = encode(adv, src, dst)
    for n in range(len(wire)):
        assert reason(wire[:n], src, dst) == "packet_len_err"
    assert reason(wire + b"\0" * 4, src, dst) == "packet_len_err"
    # the address count says 2 but one address is there
    assert reason(wire[:3] + b"\x02" + wire[4:], src, dst) == "packet_len_err"


def test_ethernet_padding_is_tolerated() -> None:
    # 20 (IP) + 12 (v3, one IPv4 address) = 32 octets: Ethernet pads it to 46, or to 42,
    # 38, 34 with VLAN tags removed. keepalived accepts those; anything else is an error.
    wire = encode(V3_4, SRC4, MCAST_V4)
    for pad in (14, 10, 6, 2):
        assert decode(wire + b"\0" * pad, SRC4, MCAST_V4) == V3_4
    for pad in (1, 3, 4, 18):
        assert reason(wire + b"\0" * pad, SRC4, MCAST_V4) == "packet_len_err"
    # IPv6 packets are never short enough to be padded
    wire6 = encode(V3_6, SRC6, MCAST_V6)
    assert reason(wire6 + b"\0" * 2, SRC6, MCAST_V6) == "packet_len_err"


def test_version_errors() -> None:
    wire = bytearray(encode(V3_4, SRC4, MCAST_V4))
    wire[0] = 0x41
    assert reason(bytes(wire), SRC4, MCAST_V4) == "version_err"
    # a v2 header over IPv6 (length that of a v3 IPv6 packet): v2 is IPv4 only
    wire6 = bytearray(encode(V3_6, SRC6, MCAST_V6))
    wire6[0] = 0x21
    assert reason(bytes(wire6), SRC6, MCAST_V6) == "version_err"


def test_type_other_than_advert() -> None:
    wire = encode(Advert(3, 1, 100, 100, V3_4.addresses, type=2), SRC4, MCAST_V4)
    assert reason(wire, SRC4, MCAST_V4) == "invalid_type_rcvd"


def test_v3_reserved_bits_ignored() -> None:
    msg = bytearray(encode(V3_4, SRC4, MCAST_V4))
    msg[4] |= 0xF0
    msg[6:8] = b"\0\0"
    pseudo = SRC4.packed + MCAST_V4.packed + bytes([0, 112]) + len(msg).to_bytes(2, "big")
    assert decode(with_checksum(bytes(msg), pseudo), SRC4, MCAST_V4) == V3_4


def test_v2_seconds_become_centiseconds_and_auth_is_normalised() -> None:
    adv = decode(encode(Advert(2, 9, 1, 300, V2.addresses), SRC4, MCAST_V4), SRC4, MCAST_V4)
    assert adv.interval_cs == 300
    assert adv.auth_data == b"\0" * 8
    assert Advert(2, 1, 1, 100, (), auth_data=b"pw").auth_data == b"pw\0\0\0\0\0\0"


@pytest.mark.parametrize(
    ("adv", "src", "dst"),
    [
        (V2, SRC6, MCAST_V6),  # v2 over IPv6
        (Advert(2, 1, 100, 150, V2.addresses), SRC4, MCAST_V4),  # not whole seconds
        (Advert(2, 1, 100, 25600, V2.addresses), SRC4, MCAST_V4),  # 256 s
        (Advert(2, 1, 100, 100, V2.addresses, auth_data=b"123456789"), SRC4, MCAST_V4),
        (Advert(3, 1, 100, 4096, V3_4.addresses), SRC4, MCAST_V4),
        (Advert(3, 1, 100, 0, V3_4.addresses), SRC4, MCAST_V4),
        (Advert(3, 1, 100, 100, V3_4.addresses, auth_type=1), SRC4, MCAST_V4),
        (Advert(4, 1, 100, 100, V3_4.addresses), SRC4, MCAST_V4),
        (Advert(3, 0, 100, 100, V3_4.addresses), SRC4, MCAST_V4),
        (Advert(3, 1, 256, 100, V3_4.addresses), SRC4, MCAST_V4),
        (V3_4, SRC6, MCAST_V6),  # IPv4 VIPs from an IPv6 source
        (V3_4, SRC4, MCAST_V6),  # mixed families
    ],
)
def test_encode_refuses_what_cannot_go_on_the_wire(
    adv: Advert, src: IPAddress, dst: IPAddress
) -> None:
    with pytest.raises(ValueError):
        encode(adv, src, dst)


# --- properties ----------------------------------------------------------------------------

v4addrs = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
v6addrs = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
common = {"vrid": st.integers(1, 255), "priority": st.integers(0, 255)}

v2_adverts = st.builds(
    Advert,
    version=st.just(2),
    interval_cs=st.integers(1, 255).map(lambda s: s * 100),
    addresses=st.lists(v4addrs, max_size=20).map(tuple),
    auth_type=st.integers(0, 255),
    auth_data=st.binary(max_size=8),
    **common,
)
v3_v4_adverts = st.builds(
    Advert,
    version=st.just(3),
    interval_cs=st.integers(1, 4095),
    addresses=st.lists(v4addrs, max_size=20).map(tuple),
    **common,
)
v3_v6_adverts = st.builds(
    Advert,
    version=st.just(3),
    interval_cs=st.integers(1, 4095),
    addresses=st.lists(v6addrs, max_size=20).map(tuple),
    **common,
)


@given(adv=st.one_of(v2_adverts, v3_v4_adverts), src=v4addrs, dst=v4addrs)
def test_round_trip_ipv4(adv: Advert, src: IPv4Address, dst: IPv4Address) -> None:
    wire = encode(adv, src, dst)
    assert decode(wire, src, dst) == adv
    assert vrid_of(wire) == adv.vrid


@given(adv=v3_v6_adverts, src=v6addrs, dst=v6addrs)
def test_round_trip_ipv6(adv: Advert, src: IPv6Address, dst: IPv6Address) -> None:
    assert decode(encode(adv, src, dst), src, dst) == adv


@given(adv=st.one_of(v2_adverts, v3_v4_adverts), src=v4addrs, dst=v4addrs, data=st.data())
def test_any_single_bit_flip_is_rejected(
    adv: Advert, src: IPv4Address, dst: IPv4Address, data: st.DataObject
) -> None:
    # the internet checksum catches every single-bit error
    wire = bytearray(encode(adv, src, dst))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(PacketError) as exc:
        decode(bytes(wire), src, dst)
    assert exc.value.reason in RECEIVE_ERRORS


any_addr = st.one_of(v4addrs, v6addrs)


@given(data=st.binary(max_size=400), src=any_addr, dst=any_addr)
def test_random_bytes_raise_only_packet_error(data: bytes, src: IPAddress, dst: IPAddress) -> None:
    try:
        adv = decode(data, src, dst)
    except PacketError as exc:
        assert exc.reason in RECEIVE_ERRORS
    else:
        assert adv.version in (2, 3) and adv.type == 1
    vrid_of(data)


@given(head=st.binary(min_size=8, max_size=8), src=any_addr, dst=any_addr, data=st.data())
def test_plausible_headers_raise_only_packet_error(
    head: bytes, src: IPAddress, dst: IPAddress, data: st.DataObject
) -> None:
    # random bytes rarely get the length right; build ones that do, so the later checks run
    b = bytearray(head)
    b[0] = (data.draw(st.sampled_from([2, 3, 4])) << 4) | data.draw(st.integers(0, 15))
    alen = 4 if src.version == 4 else 16
    need = b[3] * alen + (8 if b[0] >> 4 == 2 and src.version == 4 else 0)
    tail = data.draw(st.binary(min_size=need, max_size=need + 8))
    try:
        decode(bytes(b) + tail, src, dst)
    except PacketError as exc:
        assert exc.reason in RECEIVE_ERRORS


# --- IPv4 header ---------------------------------------------------------------------------


def ipv4_packet(payload: bytes, *, ttl: int = 255, options: bytes = b"", proto: int = 112) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0xC0, total, 0, 0, ttl, proto, 0, SRC4.packed, MCAST_V4.packed
    )
    return hdr + options + payload


def test_parse_ipv4_header() -> None:
    wire = encode(V2, SRC4, MCAST_V4)
    assert parse_ipv4_header(ipv4_packet(wire, ttl=64)) == (SRC4, MCAST_V4, 64, wire)
    # options (router alert) are skipped via IHL
    opt = parse_ipv4_header(ipv4_packet(wire, options=b"\x94\x04\x00\x00"))
    assert opt == (SRC4, MCAST_V4, 255, wire)
    # Ethernet padding past Total Length is cut off
    assert parse_ipv4_header(ipv4_packet(wire) + b"\0\0")[3] == wire


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"\x45" + b"\0" * 10, "packet_len_err"),  # shorter than a header
        (b"\x44" + ipv4_packet(b"x" * 20)[1:], "packet_len_err"),  # IHL 4
        (b"\x65" + ipv4_packet(b"x" * 20)[1:], "packet_len_err"),  # IP version 6
        (b"\x4f" + ipv4_packet(b"x" * 20)[1:], "packet_len_err"),  # IHL past the data
        (ipv4_packet(b"x" * 20)[:-1], "packet_len_err"),  # Total Length > received
        (ipv4_packet(b"x" * 20) + b"\0" * 24, "packet_len_err"),  # trailing, not padding
        (ipv4_packet(b"x" * 20, proto=51), "authtype_mismatch"),  # AH: not supported
        (ipv4_packet(b"x" * 20, proto=6), "packet_len_err"),
    ],
)
def test_parse_ipv4_header_errors(packet: bytes, why: str) -> None:
    with pytest.raises(PacketError) as exc:
        parse_ipv4_header(packet)
    assert exc.value.reason == why


@given(data=st.binary(max_size=200))
def test_parse_ipv4_header_random_bytes(data: bytes) -> None:
    try:
        parse_ipv4_header(data)
    except PacketError as exc:
        assert exc.reason in RECEIVE_ERRORS
