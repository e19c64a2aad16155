"""Raw VRRP sockets (IP protocol 112) for asyncio: one per (interface, address family).

Receiving: a raw socket bound to the interface, joined to the VRRP group there, read with
`loop.add_reader`. The VRRP codec needs the IP source, destination and TTL/hop limit
(RFC 5798 §7.1 drops packets whose TTL is not 255), so they are handed up with the payload.

Sending: a separate IPPROTO_RAW socket, for which the kernel takes the IP header from us. That
makes the source address exactly the one the VRRPv3 checksum pseudo-header was computed with
(keepalived also builds the IPv4 header itself), and an IPPROTO_RAW socket never receives, so
a send-only socket (a VMAC instance sends from its macvlan, receives on the base) queues
nothing. Multicast loop is off so we never hear ourselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable

from hakeeper.config.model import IPAddress

log = logging.getLogger(__name__)

IPPROTO_VRRP = 112
VRRP_GROUP = {4: ipaddress.ip_address("224.0.0.18"), 6: ipaddress.ip_address("ff02::12")}
TOS_INTERNETWORK_CONTROL = 0xC0  # keepalived's TOS for adverts
RECV_SIZE = 65535
# Linux values, not all exported by Python's socket module
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_HDRINCL = 36
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

OnPacket = Callable[[bytes, IPAddress, IPAddress, int, int], None]


# One socket receives every instance's adverts on an interface, and peers' instances send in
# step (they started together): 200 instances at 0.1 s arrive as bursts of 200 packets that
# overflowed the default ~208 KiB buffer (~1 KiB a packet in the kernel) while the loop was
# busy, so the same instances lost adverts again and again and the backup flapped
# (bench/soak.py). keepalived has vrrp_rx_bufs_policy for this; here a fixed 4 MiB holds a
# burst of a few thousand and costs memory only while packets wait.
RECV_BUFFER = 4 << 20
DRAIN_MAX = 4096  # bounded even so: a flood must not hold the loop


def _big_receive_buffer(s: socket.socket) -> None:
    try:  # root (CAP_NET_ADMIN) may go beyond net.core.rmem_max
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER)
    except PermissionError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)  # capped by rmem_max


class VrrpSocket:
    """VRRP on one interface for one family.

    `on_packet(payload, src, dst, ttl, ifindex)` is called for each packet received on
    `ifname` that we did not send ourselves; `send()` transmits from `send_ifname` (default
    `ifname`). `receive=False` makes a send-only socket (no group join, no reader).
    """

    def __init__(
        self,
        ifname: str,
        family: int,
        on_packet: OnPacket | None = None,
        *,
        group: IPAddress | None = None,
        unicast_ttl: int = 255,
        send_ifname: str | None = None,
        receive: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family}")
        self.ifname = ifname
        self.family = family
        self.send_ifname = send_ifname or ifname
        self.group = group if group is not None else VRRP_GROUP[family]
        self.unicast_ttl = unicast_ttl
        self.on_packet = on_packet
        self.ifindex = socket.if_nametoindex(ifname)
        # the sources we send from: a packet from one of them is our own coming back
        self.own: set[IPAddress] = set()
        self._headers: dict[tuple[IPAddress, IPAddress, int], tuple[bytes, tuple]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recv: socket.socket | None = None
        self._send = self._open_send()
        if receive:
            try:
                self._recv = self._open_recv()
                self._loop = loop or asyncio.get_running_loop()
                self._loop.add_reader(self._recv.fileno(), self._readable)
            except BaseException:
                self.close()
                raise

    # -- sockets --------------------------------------------------------------------------

    def _open_send(self) -> socket.socket:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        s = socket.socket(af, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_RAW)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.send_ifname.encode())
            if self.family == 4:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.unicast_ttl)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, self.unicast_ttl)
                send_index = socket.if_nametoindex(self.send_ifname)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, send_index)
        except BaseException:
            s.close()
            raise
        return s

    def _open_recv(self) -> socket.socket:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        s = socket.socket(af, socket.SOCK_RAW | socket.SOCK_NONBLOCK, IPPROTO_VRRP)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            _big_receive_buffer(s)
            if self.family == 4:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                if self.group.is_multicast:
                    # struct ip_mreqn: group, local address (any), ifindex
                    mreq = self.group.packed + bytes(4) + struct.pack("=i", self.ifindex)
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                if self.group.is_multicast:
                    mreq6 = self.group.packed + struct.pack("=I", self.ifindex)
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        except BaseException:
            s.close()
            raise
        return s

    # -- sending --------------------------------------------------------------------------

    def send(self, payload: bytes, dst: IPAddress, src: IPAddress) -> None:
        """Send one VRRP packet; `src` goes into the IP header verbatim."""
        # the advert path: a master sends the same header every advert_int, so build it once
        key = (src, dst, len(payload))
        cached = self._headers.get(key)
        if cached is None:
            cached = self._headers[key] = self._header(payload, dst, src)
        header, sockaddr = cached
        self._send.sendto(header + payload, sockaddr)

    def _header(self, payload: bytes, dst: IPAddress, src: IPAddress) -> tuple[bytes, tuple]:
        dst = ipaddress.ip_address(dst)
        src = ipaddress.ip_address(src)
        if dst.version != self.family or src.version != self.family:
            raise ValueError(f"IPv{self.family} socket cannot send {src} -> {dst}")
        ttl = 255 if dst.is_multicast else self.unicast_ttl
        self.own.add(src)
        if self.family == 4:
            header = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                TOS_INTERNETWORK_CONTROL,
                20 + len(payload),
                0,  # id: the kernel fills it in
                0,
                ttl,
                IPPROTO_VRRP,
                0,  # checksum: the kernel fills it in
                src.packed,
                dst.packed,
            )
            return header, (str(dst), 0)
        else:
            header = struct.pack(
                "!IHBB16s16s", 6 << 28, len(payload), IPPROTO_VRRP, ttl, src.packed, dst.packed
            )
            scope = socket.if_nametoindex(self.send_ifname) if dst.is_link_local else 0
            return header, (str(dst), 0, 0, scope)

    # -- receiving ------------------------------------------------------------------------

    def drain(self) -> None:
        """Handle every packet queued now: a backup about to declare its master down first
        reads what arrived while the loop was busy (a reload, a burst), not after."""
        self._readable(DRAIN_MAX)

    def _readable(self, burst: int = 64) -> None:
        # drain what is queued, but yield to the loop after a burst so a flood cannot starve
        # the advert timers
        for _ in range(burst):
            if self._recv is None:
                return
            try:
                got = self._receive_one()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("%s: VRRP receive failed: %s", self.ifname, e)
                return
            if got is None:
                continue
            payload, src, dst, ttl, ifindex = got
            if src in self.own or self.on_packet is None:
                continue
            try:
                self.on_packet(payload, src, dst, ttl, ifindex)
            except Exception:
                log.exception("%s: error handling a VRRP packet from %s", self.ifname, src)

    def _receive_one(self) -> tuple[bytes, IPAddress, IPAddress, int, int] | None:
        assert self._recv is not None
        if self.family == 4:
            data, anc, _flags, _addr = self._recv.recvmsg(RECV_SIZE, socket.CMSG_SPACE(12))
            return parse_ipv4(data, _pktinfo4_ifindex(anc) or self.ifindex)
        data, anc, _flags, addr = self._recv.recvmsg(RECV_SIZE, socket.CMSG_SPACE(20) * 2)
        src = ipaddress.ip_address(addr[0].split("%", 1)[0])
        dst: IPAddress | None = None
        ttl = -1
        ifindex = self.ifindex
        for level, kind, value in anc:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == IPV6_PKTINFO and len(value) >= 20:
                dst = ipaddress.IPv6Address(value[:16])
                ifindex = struct.unpack("=I", value[16:20])[0]
            elif kind == IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack("=i", value[:4])[0]
        if dst is None:
            return None
        return data, src, dst, ttl, ifindex

    def close(self) -> None:
        if self._recv is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._recv.fileno())
            self._recv.close()
            self._recv = None
        if self._send is not None:
            self._send.close()
            self._send = None  # type: ignore[assignment]


def parse_ipv4(data: bytes, ifindex: int) -> tuple[bytes, IPAddress, IPAddress, int, int] | None:
    """Split what an IPv4 raw socket delivers into (payload, src, dst, ttl, ifindex)."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    total = struct.unpack_from("!H", data, 2)[0]
    if ihl < 20 or len(data) < ihl:
        return None
    end = min(total, len(data)) if total >= ihl else len(data)
    src = ipaddress.IPv4Address(data[12:16])
    dst = ipaddress.IPv4Address(data[16:20])
    return data[ihl:end], src, dst, data[8], ifindex


def _pktinfo4_ifindex(anc: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, value in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
            return int(struct.unpack("=i", value[:4])[0])
    return None
