"""PING_CHECK: one ICMP (or ICMPv6) echo request, up when its echo reply comes back.

keepalived (check_ping.c) uses an unprivileged ICMP datagram socket, where the kernel owns
the echo id, and matches the reply's sequence number; it widens net.ipv4.ping_group_range
to allow that. hakeeper tries the datagram socket first and, when ping_group_range does not
let this process use one, falls back to a raw socket (root): then the id is its own and the
reply must match id and sequence. Replies to earlier attempts (another sequence) are
skipped; an ICMP error (unreachable) fails the attempt at once.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import struct

from hakeeper.check.base import (
    CheckFailed,
    Outcome,
    ask_icmp_errors,
    make_socket,
    os_reason,
    seconds,
    sockaddr,
)
from hakeeper.check.target import CheckTarget

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, id, sequence
PAYLOAD = (b"hakeeper check - " * 4)[:56]
_sequence = itertools.count(os.getpid() & 0x7FFF)


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, payload: bytes = PAYLOAD) -> bytes:
    """An echo request; its checksum is right for ICMPv4 (the kernel fills ICMPv6's)."""
    head = ICMP_HEADER.pack(ECHO_REQUEST[version], 0, 0, ident, seq)
    if version == 6:
        return head + payload
    csum = checksum(head + payload)
    return ICMP_HEADER.pack(ECHO_REQUEST[version], 0, csum, ident, seq) + payload


def parse_reply(version: int, data: bytes, *, seq: int, ident: int | None, ip_header: bool) -> bool:
    """Is `data` the echo reply to (ident, seq)? `ident` None: the kernel matched it.
    `ip_header`: a raw IPv4 socket hands over the IP header too."""
    if ip_header:
        if len(data) < 20 or data[0] >> 4 != 4:
            return False
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < ICMP_HEADER.size:
        return False
    kind, _code, _csum, rid, rseq = ICMP_HEADER.unpack_from(data)
    if kind != ECHO_REPLY[version] or rseq != seq:
        return False
    return ident is None or rid == ident


def _open(target: CheckTarget) -> tuple[socket.socket, bool]:
    """(socket, raw): a datagram ICMP socket if allowed, else a raw one."""
    proto = socket.IPPROTO_ICMPV6 if target.address.version == 6 else socket.IPPROTO_ICMP
    try:
        return make_socket(target, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        pass  # outside ping_group_range
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise
    try:
        return make_socket(target, socket.SOCK_RAW, proto), True
    except PermissionError as e:
        raise CheckFailed(
            "no ICMP socket: ping_group_range excludes this group and raw sockets need root"
        ) from e


async def check(target: CheckTarget) -> Outcome:
    version = target.address.version
    timeout = target.connect_timeout
    loop = asyncio.get_running_loop()
    sock, raw = _open(target)
    with sock:
        ask_icmp_errors(sock, version)
        seq = next(_sequence) & 0xFFFF
        ident = int.from_bytes(os.urandom(2), "big") if raw else None
        try:
            # connected: only the target's packets reach this socket
            sock.connect(sockaddr(target.address, 0))
            await loop.sock_sendall(sock, echo_request(version, ident or 0, seq))
        except OSError as e:
            raise CheckFailed(f"cannot send echo request: {os_reason(e)}") from e
        ip_header = raw and version == 4
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await loop.sock_recv(sock, 2048)
                    if parse_reply(version, data, seq=seq, ident=ident, ip_header=ip_header):
                        break
        except TimeoutError:
            return Outcome(False, f"no echo reply within {seconds(timeout)}")
        except OSError as e:
            return Outcome(False, os_reason(e))
    return Outcome(True, "echo reply")
