"""run_check's contract (one attempt, never raises), TCP_CHECK, socket binding, the ICMP
echo codec, and genhash against a real local HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import struct
from dataclasses import replace

import pytest

from hakeeper.check import genhash, kinds, ping
from hakeeper.check.base import Outcome
from hakeeper.check.kinds import attempt_limit, run_check
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import CHECKER_KINDS, Checker, CheckUrl
from tests.unit.checkhelp import make_target

LOCAL = ipaddress.ip_address("127.0.0.1")


def target(kind: str = "TCP_CHECK", port: int | None = 1, **kw: object) -> CheckTarget:
    return make_target(Checker(kind, **kw), port, connect_timeout=0.5)  # type: ignore[arg-type]


def listening() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


# -- the contract ------------------------------------------------------------------------


def test_every_kind_has_a_check() -> None:
    assert set(kinds.CHECKS) == CHECKER_KINDS


def test_unknown_kind_is_down() -> None:
    assert asyncio.run(run_check(target("FOO_CHECK"))) == Outcome(
        False, "unknown checker kind FOO_CHECK"
    )


def test_an_unexpected_exception_becomes_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(t: CheckTarget) -> Outcome:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(kinds.CHECKS, "TCP_CHECK", broken)
    assert asyncio.run(run_check(target())) == Outcome(
        False, "internal error: ZeroDivisionError: boom"
    )


def test_a_hung_kind_is_cut_by_the_attempt_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hung(t: CheckTarget) -> Outcome:
        await asyncio.sleep(60)
        return Outcome(True, "never")

    monkeypatch.setitem(kinds.CHECKS, "TCP_CHECK", hung)
    monkeypatch.setattr(kinds, "SLACK", 0.0)
    t = replace(target(), connect_timeout=0.1)
    assert asyncio.run(run_check(t)) == Outcome(False, "attempt overran its 0.2s bound")


def test_cancellation_goes_through() -> None:
    async def main() -> None:
        s, port = listening()
        with s:
            # a listener that never accepts still completes the handshake; use HTTP so the
            # attempt waits on a read, then cancel it
            task = asyncio.create_task(run_check(target("HTTP_GET", port, url=(CheckUrl("/"),))))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_attempt_limits_are_a_small_multiple_of_the_timeout() -> None:
    t = target()
    assert attempt_limit(t) <= 3 * t.connect_timeout + kinds.SLACK
    http = target("HTTP_GET", url=(CheckUrl("/a"), CheckUrl("/b")))
    assert attempt_limit(http) == 2 * 3 * http.connect_timeout + kinds.SLACK


# -- TCP_CHECK and binding ---------------------------------------------------------------


def test_tcp_up_and_refused() -> None:
    s, port = listening()
    with s:
        assert asyncio.run(run_check(target(port=port))) == Outcome(True, "connected")
    assert asyncio.run(run_check(target(port=port))) == Outcome(
        False, "connect failed: connection refused"
    )


def test_tcp_bindto_and_bind_port_are_honoured() -> None:
    s, port = listening()
    probe = socket.socket()
    probe.bind(("127.0.0.2", 0))
    free = probe.getsockname()[1]
    probe.close()

    async def main() -> tuple[Outcome, tuple[str, int]]:
        t = target(port=port, bindto=ipaddress.ip_address("127.0.0.2"), bind_port=free)
        outcome = await run_check(t)
        conn, peer = s.accept()
        conn.close()
        return outcome, peer

    with s:
        outcome, peer = asyncio.run(main())
    assert outcome.ok
    assert peer == ("127.0.0.2", free)


def test_bad_bindings_are_down_with_the_reason() -> None:
    wrong_family = target(port=80, bindto=ipaddress.ip_address("::1"))
    assert asyncio.run(run_check(wrong_family)) == Outcome(
        False, "bindto ::1 is not of the family of 127.0.0.1"
    )
    not_here = target(port=80, bindto=ipaddress.ip_address("198.18.254.254"))
    outcome = asyncio.run(run_check(not_here))
    assert not outcome.ok and outcome.detail.startswith("cannot bind to 198.18.254.254")
    no_port = asyncio.run(run_check(target(port=None)))
    assert no_port == Outcome(False, "TCP_CHECK needs a port (connect_port or the real server's)")


# -- the ICMP echo codec -----------------------------------------------------------------


def test_checksum_rfc1071() -> None:
    packet = ping.echo_request(4, 0x1234, 7, b"abc")
    assert ping.checksum(packet) == 0  # a packet with its checksum in sums to zero
    assert ping.checksum(b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7") == 0x220D  # RFC 1071's example


def reply_of(request: bytes, kind: int = 0) -> bytes:
    return bytes([kind]) + request[1:]


def test_echo_reply_matching() -> None:
    req = ping.echo_request(4, 0xBEEF, 42)
    rep = reply_of(req)
    assert ping.parse_reply(4, rep, seq=42, ident=0xBEEF, ip_header=False)
    assert ping.parse_reply(4, rep, seq=42, ident=None, ip_header=False)  # kernel matched id
    assert not ping.parse_reply(4, rep, seq=41, ident=0xBEEF, ip_header=False)
    assert not ping.parse_reply(4, rep, seq=42, ident=0xBEEE, ip_header=False)
    assert not ping.parse_reply(4, req, seq=42, ident=0xBEEF, ip_header=False)  # a request
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(rep), 0, 0, 64, 1, 0, bytes(4), bytes(4))
    assert ping.parse_reply(4, ip + rep, seq=42, ident=0xBEEF, ip_header=True)
    assert not ping.parse_reply(4, rep[:5], seq=42, ident=None, ip_header=False)
    req6 = ping.echo_request(6, 1, 2)
    assert req6[0] == 128
    assert ping.parse_reply(6, reply_of(req6, 129), seq=2, ident=1, ip_header=False)


# -- genhash -----------------------------------------------------------------------------

BODY = b"<html><body>hakeeper genhash</body></html>\n"


async def http_server() -> tuple[asyncio.Server, int]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
        if path == b"/missing":
            writer.write(b"HTTP/1.0 404 Not Found\r\n\r\nnot here")
        else:
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + BODY)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_genhash_prints_the_digest_the_checker_computes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def main() -> tuple[int, Outcome]:
        server, port = await http_server()
        async with server:
            code = await asyncio.to_thread(
                genhash.main, ["-s", "127.0.0.1", "-p", str(port), "-u", "/index.html"]
            )
            digest = capsys.readouterr().out.strip()
            check = target("HTTP_GET", port, url=(CheckUrl("/index.html", digest=digest),))
            return code, await run_check(check)

    code, outcome = asyncio.run(main())
    assert code == 0
    assert outcome == Outcome(True, "HTTP 200 on /index.html (digest ok)")


def test_genhash_output_is_the_bare_digest_and_verbose_shows_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def main() -> None:
        server, port = await http_server()
        async with server:
            argv = ["--server", "127.0.0.1", "--port", str(port), "--url", "/"]
            assert await asyncio.to_thread(genhash.main, argv) == 0
            assert capsys.readouterr().out == hashlib.md5(BODY).hexdigest() + "\n"
            assert await asyncio.to_thread(genhash.main, [*argv, "-v", "-V", "www.example"]) == 0
            out = capsys.readouterr().out
            assert "Host: www.example" in out and "Content-Type: text/html" in out
            assert BODY.decode() in out
            assert out.splitlines()[-1] == hashlib.md5(BODY).hexdigest()
            assert await asyncio.to_thread(genhash.main, [*argv[:-1], "/missing"]) == 0
            captured = capsys.readouterr()
            assert captured.out == hashlib.md5(b"not here").hexdigest() + "\n"
            assert "HTTP status 404" in captured.err

    asyncio.run(main())


def test_genhash_failures_exit_1_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    s, port = listening()
    s.close()
    assert genhash.main(["-s", "127.0.0.1", "-p", str(port), "-u", "/", "-t", "0.5"]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert genhash.main(["-s", "not-an-ip", "-p", "80", "-u", "/"]) == 1
    assert "invalid ip_address value" in capsys.readouterr().err
    assert genhash.main(["-s", "127.0.0.1", "-p", "70000", "-u", "/"]) == 1
    assert "invalid port value" in capsys.readouterr().err
    assert genhash.main(["-s", "127.0.0.1", "-p", "80"]) == 1
    assert "-u/--url" in capsys.readouterr().err
    assert genhash.main(["--help"]) == 0
    assert "--use-ssl" in capsys.readouterr().out
