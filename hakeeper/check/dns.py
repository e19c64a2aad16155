"""DNS_CHECK: a query of `type` for `name`, answered with RCODE NOERROR (check_dns.c).

keepalived sends one recursive query over UDP from a connected socket and waits up to
connect_timeout; a datagram too short for a header, with another query id, or that is not
a response is ignored (keep waiting); a response with any RCODE but NOERROR is down. The
answer's content is not looked at.
"""

from __future__ import annotations

import asyncio
import struct

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from hakeeper.check.base import CheckFailed, Outcome, os_reason, seconds
from hakeeper.check.target import CheckTarget
from hakeeper.check.udp import open_udp, send

HEADER = struct.Struct("!HH")  # id, flags: all keepalived reads of a reply
QR = 0x8000


def make_query(name: str, rdtype: str) -> tuple[bytes, int]:
    """The wire query (RD set, no EDNS, as keepalived's) and its id."""
    try:
        qname = dns.name.from_text(name or ".")
        qtype = dns.rdatatype.from_text(rdtype)
    except (dns.exception.DNSException, ValueError) as e:
        raise CheckFailed(f"cannot make a DNS query for {rdtype} {name}: {e}") from e
    query = dns.message.make_query(qname, qtype)
    return query.to_wire(), query.id


def reply_rcode(data: bytes, query_id: int) -> int | None:
    """The reply's RCODE, or None when the datagram is not the reply to query_id."""
    if len(data) < 12:
        return None
    ident, flags = HEADER.unpack_from(data)
    if ident != query_id or not flags & QR:
        return None
    return flags & 0x000F


async def check(target: CheckTarget) -> Outcome:
    ck = target.checker
    wire, query_id = make_query(ck.name, ck.type)
    timeout = target.connect_timeout
    loop = asyncio.get_running_loop()
    with open_udp(target) as sock:
        await send(sock, wire)
        try:
            async with asyncio.timeout(timeout):
                while (rcode := reply_rcode(await loop.sock_recv(sock, 4096), query_id)) is None:
                    pass
        except TimeoutError:
            return Outcome(False, f"no DNS reply within {seconds(timeout)}")
        except OSError as e:
            return Outcome(False, os_reason(e))
    if rcode != 0:
        name = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
        return Outcome(False, f"DNS {name} for {ck.type} {ck.name}")
    return Outcome(True, f"DNS NOERROR for {ck.type} {ck.name}")
