"""Gratuitous ARP and unsolicited neighbour advertisements, so neighbours learn a VIP's MAC.

Frames are built whole and sent on AF_PACKET sockets, the way keepalived does it
(vrrp_arp.c, vrrp_ndisc.c):
- GARP: an ARP *request*, Ethernet and ARP target broadcast, sender = target = the VIP;
- NA: ICMPv6 type 136 from the VIP to ff02::1 (33:33:00:00:00:01), hop limit 255, Override
  set (Router too when the interface forwards), a target link-layer address option.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable
from pathlib import Path

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
NA_ROUTER = 0x80000000
NA_OVERRIDE = 0x20000000


def mac_bytes(mac: bytes | str) -> bytes:
    return bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else bytes(mac)


def garp_frame(addr: ipaddress.IPv4Address, mac: bytes) -> bytes:
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)  # Ethernet, IPv4, request
    arp += mac + addr.packed + BROADCAST + addr.packed
    return eth + arp


def icmp6_checksum(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, body: bytes) -> int:
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(body), socket.IPPROTO_ICMPV6)
    data = pseudo + body + (b"\0" if len(body) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def na_frame(addr: ipaddress.IPv6Address, mac: bytes, router: bool = False) -> bytes:
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0)
    option = struct.pack("!BB", 2, 1) + mac  # target link-layer address, 8 octets
    body = struct.pack("!BBHI16s", 136, 0, 0, flags, addr.packed) + option
    csum = icmp6_checksum(addr, ALL_NODES, body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    ip6 = struct.pack(
        "!IHBB16s16s", 6 << 28, len(body), socket.IPPROTO_ICMPV6, 255, addr.packed, ALL_NODES.packed
    )
    eth = ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6)
    return eth + ip6 + body


def _forwarding(ifname: str) -> bool:
    try:
        return Path(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding").read_text().strip() == "1"
    except OSError:
        return False


class GarpSender:
    """Keeps one AF_PACKET socket per (interface, ethertype) open between bursts."""

    def __init__(self) -> None:
        self._socks: dict[tuple[str, int], socket.socket] = {}

    def _socket(self, ifname: str, proto: int) -> socket.socket:
        s = self._socks.get((ifname, proto))
        if s is None:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
            try:
                # only ever sends: a zero receive buffer keeps copies of traffic from piling up
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
                s.bind((ifname, proto))
            except BaseException:
                s.close()
                raise
            self._socks[(ifname, proto)] = s
        return s

    def _send(self, ifname: str, proto: int, build: Callable[[bytes], bytes]) -> None:
        # a VMAC deleted and made again has a new ifindex: retry once on a fresh socket
        for attempt in (0, 1):
            s = self._socket(ifname, proto)
            try:
                # getsockname() on a bound packet socket reads the device's current MAC
                own_mac = s.getsockname()[4]
                s.send(build(own_mac))
                return
            except OSError:
                self._drop(ifname, proto)
                if attempt:
                    raise

    def _drop(self, ifname: str, proto: int) -> None:
        s = self._socks.pop((ifname, proto), None)
        if s is not None:
            s.close()

    def send_garp(
        self, ifname: str, addr: ipaddress.IPv4Address, mac: bytes | str | None = None
    ) -> None:
        addr = ipaddress.IPv4Address(addr)
        self._send(ifname, ETH_P_ARP, lambda own: garp_frame(addr, mac_bytes(mac) if mac else own))

    def send_unsolicited_na(
        self, ifname: str, addr: ipaddress.IPv6Address, mac: bytes | str | None = None
    ) -> None:
        addr = ipaddress.IPv6Address(addr)
        router = _forwarding(ifname)
        self._send(
            ifname,
            ETH_P_IPV6,
            lambda own: na_frame(addr, mac_bytes(mac) if mac else own, router),
        )

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()


def send_garp(ifname: str, addr: ipaddress.IPv4Address, mac: bytes | str | None = None) -> None:
    """One gratuitous ARP for `addr` on `ifname` (from the interface's MAC unless `mac`)."""
    sender = GarpSender()
    try:
        sender.send_garp(ifname, addr, mac)
    finally:
        sender.close()


def send_unsolicited_na(
    ifname: str, addr: ipaddress.IPv6Address, mac: bytes | str | None = None
) -> None:
    """One unsolicited neighbour advertisement for `addr` to all nodes on `ifname`."""
    sender = GarpSender()
    try:
        sender.send_unsolicited_na(ifname, addr, mac)
    finally:
        sender.close()
