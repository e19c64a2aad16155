"""UDP_CHECK and DNS_CHECK against real UDP servers on 127.0.0.1 (a DNS one built with
dnspython), and their datagram rules on their own."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from hakeeper.check import dns as dns_check
from hakeeper.check.base import CheckFailed, Outcome
from hakeeper.check.kinds import run_check
from hakeeper.check.target import CheckTarget
from hakeeper.check.udp import DEFAULT_PAYLOAD, reply_matches
from hakeeper.config.lvs_model import Checker
from tests.unit.checkhelp import make_target

# what a server does with one datagram: the replies to send back (none: stay silent)
Answer = Callable[[bytes], list[bytes]]


def target(
    kind: str, port: int, timeout: float = 0.5, address: str = "127.0.0.1", **kw: object
) -> CheckTarget:
    checker = Checker(kind, **kw)  # type: ignore[arg-type]
    return make_target(checker, port, connect_timeout=timeout, address=address)


class Server(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        assert self.transport is not None
        for out in self.answer(data):
            self.transport.sendto(out, addr)


def check_with(
    answer: Answer | None, kind: str, family: int = socket.AF_INET, **kw: object
) -> tuple[Outcome, list[bytes], float]:
    """Run one check against a server answering with `answer` (None: a closed port)."""

    async def main() -> tuple[Outcome, list[bytes], float]:
        loop = asyncio.get_running_loop()
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        transport, server = await loop.create_datagram_endpoint(
            lambda: Server(answer or (lambda _: [])), local_addr=(host, 0)
        )
        port = transport.get_extra_info("sockname")[1]
        if answer is None:
            transport.close()  # nothing listens there any more: ICMP port unreachable
            await asyncio.sleep(0)
        start = time.monotonic()
        try:
            outcome = await run_check(target(kind, port, address=host, **kw))  # type: ignore[arg-type]
        finally:
            transport.close()
        return outcome, server.received, time.monotonic() - start

    return asyncio.run(main())


# -- UDP_CHECK ---------------------------------------------------------------------------


def test_reply_matching_as_keepalived() -> None:
    assert reply_matches(b"PONG", b"PONG")
    assert reply_matches(b"PONG and more", b"PONG")
    assert reply_matches(b"PO", b"PONG")  # keepalived compares the shorter of the two
    assert not reply_matches(b"PING", b"PONG")
    assert not reply_matches(b"P" * 256, b"P")  # over keepalived's 255-byte default maximum
    assert reply_matches(b"", b"PONG")


def test_default_payload_is_keepalived_s() -> None:
    assert DEFAULT_PAYLOAD == b"keepalived check - keepalived ch"
    outcome, received, _ = check_with(lambda d: [d], "UDP_CHECK")
    assert received == [DEFAULT_PAYLOAD]
    assert outcome == Outcome(True, "reply of 32 bytes")


def test_echo_with_payload_and_required_reply() -> None:
    outcome, received, _ = check_with(
        lambda d: [d], "UDP_CHECK", payload=b"\x01ping", require_reply=b"\x01pi"
    )
    assert received == [b"\x01ping"]
    assert outcome.ok


def test_required_reply_mismatch_is_down() -> None:
    outcome, _, _ = check_with(lambda d: [b"nope"], "UDP_CHECK", require_reply=b"PONG")
    assert outcome == Outcome(False, "reply of 4 bytes does not match")


def test_silence_is_up_unless_a_reply_is_required() -> None:
    outcome, _, took = check_with(lambda d: [], "UDP_CHECK", timeout=0.3)
    assert outcome == Outcome(True, "no ICMP error within 0.3s")
    assert 0.25 < took < 1.0
    outcome, _, _ = check_with(lambda d: [], "UDP_CHECK", timeout=0.3, require_reply=b"")
    assert outcome == Outcome(False, "no reply within 0.3s")


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_port_unreachable_is_down_at_once(family: int) -> None:
    outcome, _, took = check_with(None, "UDP_CHECK", family=family, timeout=2.0)
    assert outcome == Outcome(False, "connection refused")
    assert took < 0.5


# -- DNS_CHECK ---------------------------------------------------------------------------


def dns_answer(rcode: int = 0, wrong_first: bool = False) -> Answer:
    """A resolver: SOA for the root, A for the name asked; `rcode` in every reply."""

    def answer(data: bytes) -> list[bytes]:
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.Rcode.make(rcode))
        q = query.question[0]
        if rcode == 0 and q.rdtype == dns.rdatatype.SOA:
            reply.answer.append(
                dns.rrset.from_text(
                    q.name, 60, "IN", "SOA", "ns.example. admin.example. 1 60 60 60 60"
                )
            )
        elif rcode == 0 and q.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "198.18.0.53"))
        out = [reply.to_wire()]
        if wrong_first:  # a stray reply with another id, and a query, come first
            stray = dns.message.make_response(query)
            stray.id = (query.id + 1) % 65536
            out.insert(0, stray.to_wire())
            out.insert(0, data)
        return out

    return answer


def test_query_is_recursive_without_edns() -> None:
    wire, qid = dns_check.make_query(".", "SOA")
    msg = dns.message.from_wire(wire)
    assert msg.id == qid and msg.flags & dns.flags.RD and msg.edns < 0
    assert msg.question[0].rdtype == dns.rdatatype.SOA
    with pytest.raises(CheckFailed):
        dns_check.make_query("example.", "NOSUCHTYPE")


def test_reply_rcode_reads_the_header_only() -> None:
    wire, qid = dns_check.make_query("example.", "A")
    reply = dns.message.make_response(dns.message.from_wire(wire))
    reply.set_rcode(dns.rcode.SERVFAIL)
    assert dns_check.reply_rcode(reply.to_wire(), qid) == dns.rcode.SERVFAIL
    assert dns_check.reply_rcode(reply.to_wire(), qid ^ 1) is None  # another id
    assert dns_check.reply_rcode(wire, qid) is None  # a query, not a reply
    assert dns_check.reply_rcode(b"\x00\x01", qid) is None  # too short


def test_dns_soa_of_root_is_up() -> None:
    outcome, received, _ = check_with(dns_answer(), "DNS_CHECK")
    assert outcome == Outcome(True, "DNS NOERROR for SOA .")
    assert dns.message.from_wire(received[0]).question[0].name.to_text() == "."


def test_dns_a_record_is_up_after_stray_datagrams() -> None:
    outcome, _, _ = check_with(
        dns_answer(wrong_first=True), "DNS_CHECK", type="A", name="www.example"
    )
    assert outcome == Outcome(True, "DNS NOERROR for A www.example")


def test_dns_error_rcode_is_down() -> None:
    outcome, _, _ = check_with(
        dns_answer(rcode=dns.rcode.NXDOMAIN), "DNS_CHECK", type="A", name="missing.example"
    )
    assert outcome == Outcome(False, "DNS NXDOMAIN for A missing.example")


def test_dns_silence_and_closed_port_are_down() -> None:
    outcome, _, took = check_with(lambda d: [], "DNS_CHECK", timeout=0.3)
    assert outcome == Outcome(False, "no DNS reply within 0.3s")
    assert took < 1.0
    outcome, _, _ = check_with(None, "DNS_CHECK")
    assert outcome == Outcome(False, "connection refused")
