"""UDP_CHECK: send a datagram; down on an ICMP unreachable, or without the reply required.

keepalived's rules (check_udp.c, layer4.c udp_bind_connect / udp_socket_state):
- the payload is the configured one, else 32 bytes of keepalived's filler text;
- the socket is connected and asks for ICMP errors (IP_RECVERR): a destination or port
  unreachable coming back fails the check at once;
- without `require_reply`, silence until connect_timeout is success (UDP servers need not
  answer); with it, a reply must arrive in time, and with reply data it must be 0..255
  bytes long and agree with the data on the bytes both have (keepalived compares the
  shorter of the two).
"""

from __future__ import annotations

import asyncio
import socket

from hakeeper.check.base import (
    CheckFailed,
    Outcome,
    ask_icmp_errors,
    make_socket,
    need_port,
    os_reason,
    seconds,
    sockaddr,
)
from hakeeper.check.target import CheckTarget

DEFAULT_PAYLOAD = (b"keepalived check - " * 2)[:32]  # keepalived's set_buf() over UDP_BUFSIZE
MAX_REPLY_LEN = 255  # keepalived's default max_reply_length
RECV_SIZE = 65536


def reply_matches(reply: bytes, require: bytes) -> bool:
    """keepalived's check_udp_reply: length within 0..255, and the common prefix equal."""
    if len(reply) > MAX_REPLY_LEN:
        return False
    n = min(len(reply), len(require))
    return reply[:n] == require[:n]


def open_udp(target: CheckTarget) -> socket.socket:
    """A UDP socket connected to the target, reporting ICMP errors as socket errors."""
    port = need_port(target)
    sock = make_socket(target, socket.SOCK_DGRAM)
    try:
        ask_icmp_errors(sock, target.address.version)
        try:
            sock.connect(sockaddr(target.address, port))  # UDP: no handshake, no wait
        except OSError as e:
            raise CheckFailed(f"connect failed: {os_reason(e)}") from e
    except BaseException:
        sock.close()
        raise
    return sock


async def send(sock: socket.socket, data: bytes) -> None:
    try:
        await asyncio.get_running_loop().sock_sendall(sock, data)
    except OSError as e:
        raise CheckFailed(f"send failed: {os_reason(e)}") from e


async def check(target: CheckTarget) -> Outcome:
    ck = target.checker
    timeout = target.connect_timeout
    loop = asyncio.get_running_loop()
    with open_udp(target) as sock:
        await send(sock, ck.payload or DEFAULT_PAYLOAD)
        try:
            async with asyncio.timeout(timeout):
                reply = await loop.sock_recv(sock, RECV_SIZE)
        except TimeoutError:
            if ck.require_reply is None:
                return Outcome(True, f"no ICMP error within {seconds(timeout)}")
            return Outcome(False, f"no reply within {seconds(timeout)}")
        except OSError as e:  # the ICMP error that came back
            return Outcome(False, os_reason(e))
    if ck.require_reply and not reply_matches(reply, ck.require_reply):
        return Outcome(False, f"reply of {len(reply)} bytes does not match")
    return Outcome(True, f"reply of {len(reply)} bytes")
