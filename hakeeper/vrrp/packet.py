"""VRRP advertisement wire format (RFC 3768 v2, RFC 5798 v3): encode, decode, checksum.

Sans-IO: bytes in, `Advert` out and back. `decode` raises only `PacketError`, whose
`reason` is the `InstanceStats` counter the receive shell bumps. Instance-level checks
(TTL, our version, auth, interval, VIP list) live in `checks.py`.

v2 (RFC 3768 §5.1)::

    0       4       8              16              24             31
    | ver=2 | type  |    VRID      |   priority    | count IP addrs |
    |   auth type   | adver int (s)|           checksum             |
    |                    IPv4 address(es)                           |
    |                  authentication data (8 octets)               |

v3 (RFC 5798 §5.1)::

    | ver=3 | type  |    VRID      |   priority    | count IPvX addr|
    | rsvd  |  max adver int (cs, 12 bits)         |   checksum     |
    |                    IPvX address(es)                           |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address

VRRP_PROTO = 112
MCAST_V4 = IPv4Address("224.0.0.18")
MCAST_V6 = IPv6Address("ff02::12")

ADVERT = 1  # the only VRRP packet type (RFC 5798 §5.2.2)
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2  # RFC 2338 §5.3.6; RFC 3768 keeps the field
AUTH_LEN = 8  # v2 authentication data, always present on the wire (RFC 3768 §5.3.10)
HEADER_LEN = 8

# Ethernet pads frames to ETH_ZLEN (60 octets) less the 14-octet header: an IP packet
# shorter than 46 octets may arrive with trailing zeros, 4 fewer per VLAN tag stripped.
_ETH_MIN_PAYLOAD = 46
_VLAN_TAG = 4

_HDR = struct.Struct("!BBBBBBH")


class PacketError(Exception):
    """A received packet is malformed; `reason` is the InstanceStats counter to bump."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement, version-independent.

    `interval_cs` is the (max) advertisement interval in centiseconds for both versions,
    so the core never converts units: v2 carries whole seconds (times 100 on decode).
    v2 `auth_data` is normalised to its 8 wire octets (NUL padded), so an Advert built with
    `auth_data=b"pw"` equals the one decoded from the wire.
    """

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddress, ...]
    type: int = ADVERT
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""

    def __post_init__(self) -> None:
        if self.version == 2 and len(self.auth_data) < AUTH_LEN:
            object.__setattr__(self, "auth_data", self.auth_data.ljust(AUTH_LEN, b"\0"))


def checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 internet checksum: one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """RFC 5798 §5.2.8: v3 checksums cover the IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1)
    pseudo-header."""
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, VRRP_PROTO, length)
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return src.packed + dst.packed + struct.pack("!I3xB", length, VRRP_PROTO)
    raise ValueError(f"source {src} and destination {dst} are different address families")


def _vrrp_checksum(version: int, msg: bytes, src: IPAddress, dst: IPAddress) -> int:
    """Checksum of `msg` (checksum field zeroed or not: a valid packet yields 0)."""
    if version == 2:
        return checksum(msg)  # RFC 3768 §5.3.8: the VRRP message only
    return checksum(_pseudo_header(src, dst, len(msg)) + msg)


def _addr_len(src: IPAddress) -> int:
    return 4 if isinstance(src, IPv4Address) else 16


def encode(adv: Advert, src: IPAddress, dst: IPAddress) -> bytes:
    """The VRRP message (no IP header) with its checksum filled in.

    Raises ValueError for an Advert that cannot go on the wire: that is our bug or our
    config's, never the peer's.
    """
    family = type(src)
    if type(dst) is not family:
        raise ValueError(f"source {src} and destination {dst} are different address families")
    if any(type(a) is not family for a in adv.addresses):
        raise ValueError(f"addresses {adv.addresses} are not all IPv{src.version} like {src}")
    if not 1 <= adv.vrid <= 255:
        raise ValueError(f"virtual_router_id {adv.vrid} is out of range 1..255")
    if not 0 <= adv.priority <= 255:
        raise ValueError(f"priority {adv.priority} is out of range 0..255")
    if not 0 <= adv.type <= 15:
        raise ValueError(f"type {adv.type} does not fit in 4 bits")
    if len(adv.addresses) > 255:
        raise ValueError(f"{len(adv.addresses)} addresses do not fit in one advert (max 255)")
    addrs = b"".join(a.packed for a in adv.addresses)
    count = len(adv.addresses)

    if adv.version == 2:
        # RFC 3768 is IPv4 only; IPv6 VRRP exists only as v3 (RFC 5798).
        if family is not IPv4Address:
            raise ValueError("VRRPv2 does not exist over IPv6")
        seconds, rest = divmod(adv.interval_cs, 100)
        if rest or not 1 <= seconds <= 255:
            raise ValueError(f"v2 advert_int {adv.interval_cs}cs is not a whole 1..255 seconds")
        if not 0 <= adv.auth_type <= 255:
            raise ValueError(f"auth_type {adv.auth_type} does not fit in one octet")
        if len(adv.auth_data) > AUTH_LEN:
            raise ValueError(f"auth_pass is longer than {AUTH_LEN} octets")
        first = (2 << 4) | adv.type
        head = (first, adv.vrid, adv.priority, count, adv.auth_type, seconds)
        auth = adv.auth_data.ljust(AUTH_LEN, b"\0")
        msg = _HDR.pack(*head, 0) + addrs + auth
    elif adv.version == 3:
        # RFC 5798 §5.2.7: 12 bits of centiseconds; 0 would make Master_Down_Interval 0.
        if not 1 <= adv.interval_cs <= 4095:
            raise ValueError(f"v3 advert_int {adv.interval_cs}cs is out of range 1..4095")
        if adv.auth_type or adv.auth_data:
            raise ValueError("VRRPv3 has no authentication (RFC 5798 §9)")
        head = ((3 << 4) | adv.type, adv.vrid, adv.priority, count)
        msg = struct.pack("!BBBBHH", *head, adv.interval_cs, 0) + addrs
    else:
        raise ValueError(f"VRRP version {adv.version} is not 2 or 3")

    csum = _vrrp_checksum(adv.version, msg, src, dst)
    return msg[:6] + struct.pack("!H", csum) + msg[8:]


def expected_len(version: int, count: int, src: IPAddress) -> int:
    """Length of a VRRP message with `count` addresses: header, addresses, v2 auth data."""
    auth = AUTH_LEN if version == 2 and isinstance(src, IPv4Address) else 0
    return HEADER_LEN + count * _addr_len(src) + auth


def _is_ethernet_padding(ip_total: int, extra: int) -> bool:
    """True if `extra` trailing octets on an `ip_total`-octet IP packet can be Ethernet
    minimum-frame padding (possibly less whole VLAN tags).

    keepalived accepts trailing bytes only in this case (vrrp_check_packet); it checks the
    remainder modulo 4 only, we also require the padded packet not to exceed 46 octets,
    because longer frames are never padded.
    """
    padded = ip_total + extra
    return extra > 0 and padded <= _ETH_MIN_PAYLOAD and (_ETH_MIN_PAYLOAD - padded) % _VLAN_TAG == 0


def decode(
    data: bytes, src: IPAddress, dst: IPAddress, *, ip_header_len: int | None = None
) -> Advert:
    """Parse a VRRP message (no IP header); the address family follows `src`.

    Checks, in keepalived's order: complete header, length agrees with the address count
    (trailing Ethernet padding tolerated), version 2|3 (v2 only over IPv4), type, checksum.
    `ip_header_len` (default 20 for IPv4, 40 for IPv6) is only used to tell padding
    from garbage. Raises PacketError and nothing else, whatever the bytes.
    """
    if len(data) < HEADER_LEN:
        raise PacketError("packet_len_err", f"{len(data)} octets, shorter than the header")
    first, vrid, priority, count, b4, b5, _csum = _HDR.unpack_from(data)
    version, ptype = first >> 4, first & 0x0F

    # RFC 5798 §7.1: MUST verify the packet contains the complete VRRP packet including
    # fixed fields and the IPvX addresses.
    need = expected_len(version, count, src)
    if len(data) != need:
        hdr = ip_header_len if ip_header_len is not None else 20 if src.version == 4 else 40
        if not (len(data) > need and _is_ethernet_padding(hdr + need, len(data) - need)):
            raise PacketError(
                "packet_len_err", f"{len(data)} octets, {count} addresses need {need}"
            )

    # RFC 5798 §7.1: MUST verify the version. v2 is IPv4 only (RFC 3768 §1).
    if version not in (2, 3) or (version == 2 and isinstance(src, IPv6Address)):
        raise PacketError("version_err", f"version {version} over IPv{src.version}")
    # RFC 5798 §5.2.2: an advertisement is type 1; other types are dropped.
    if ptype != ADVERT:
        raise PacketError("invalid_type_rcvd", f"type {ptype}")

    # RFC 3768 §7.1 / RFC 5798 §7.1: MUST verify the checksum. Over the message proper,
    # never the padding.
    msg = data[:need]
    try:
        bad = _vrrp_checksum(version, msg, src, dst) != 0
    except ValueError:  # v3 pseudo-header with mixed families: cannot verify, so not valid
        bad = True
    if bad:
        raise PacketError("checksum_err", f"from {src}")

    alen = _addr_len(src)
    raw = msg[HEADER_LEN : HEADER_LEN + count * alen]
    family = IPv4Address if alen == 4 else IPv6Address
    addresses = tuple(family(raw[i : i + alen]) for i in range(0, len(raw), alen))
    if version == 2:
        return Advert(
            version=2,
            vrid=vrid,
            priority=priority,
            interval_cs=b5 * 100,
            addresses=addresses,
            type=ptype,
            auth_type=b4,
            auth_data=msg[need - AUTH_LEN : need],
        )
    # the top 4 bits are reserved: ignored on receive (RFC 5798 §5.2.6)
    interval = ((b4 << 8) | b5) & 0x0FFF
    return Advert(3, vrid, priority, interval, addresses, type=ptype)


def vrid_of(data: bytes) -> int | None:
    """The VRID of a VRRP message, to dispatch it to an instance before decoding; None if
    the fixed header is incomplete (keepalived also needs the whole header first)."""
    return data[1] if len(data) >= HEADER_LEN else None


def parse_ipv4_header(data: bytes) -> tuple[IPv4Address, IPv4Address, int, bytes]:
    """Split what an IPv4 raw socket delivers into (src, dst, ttl, VRRP message).

    Honours IHL (options) and Total Length; octets past Total Length are accepted only as
    Ethernet padding (as keepalived does). An AH-protected packet (protocol 51) is refused
    with `authtype_mismatch`: hakeeper does not implement receiving VRRPv2 AH.
    """
    if len(data) < 20:
        raise PacketError("packet_len_err", f"{len(data)} octets, shorter than an IPv4 header")
    vihl, _tos, total, _id, _frag, ttl, proto, _csum = struct.unpack_from("!BBHHHBBH", data)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(data) < ihl:
        raise PacketError("packet_len_err", f"bad IPv4 header (version/IHL 0x{vihl:02x})")
    if total < ihl or total > len(data):
        raise PacketError("packet_len_err", f"IPv4 total length {total}, received {len(data)}")
    if total < len(data) and not _is_ethernet_padding(total, len(data) - total):
        raise PacketError("packet_len_err", f"IPv4 total length {total}, received {len(data)}")
    if proto != VRRP_PROTO:
        reason = "authtype_mismatch" if proto == 51 else "packet_len_err"
        raise PacketError(reason, f"IP protocol {proto}")
    src = IPv4Address(data[12:16])
    dst = IPv4Address(data[16:20])
    return src, dst, ttl, data[ihl:total]
