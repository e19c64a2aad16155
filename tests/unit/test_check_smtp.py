"""SMTP_CHECK against aiosmtpd and against scripted servers that misbehave, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiosmtpd.smtp import SMTP

from hakeeper.check.base import CheckFailed, Outcome
from hakeeper.check.kinds import run_check
from hakeeper.check.smtp import DEFAULT_HELO, ReplyReader, reply_code
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import Checker
from tests.unit.checkhelp import make_target

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def target(port: int, timeout: float = 1.0, **kw: object) -> CheckTarget:
    return make_target(Checker("SMTP_CHECK", **kw), port, connect_timeout=timeout)  # type: ignore[arg-type]


def scripted(lines: list[bytes], heard: list[bytes] | None = None) -> Handler:
    """Sends lines[0] (the greeting), then one reply per command it reads."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(lines[0])
            for answer in lines[1:]:
                command = await reader.readline()
                if heard is not None:
                    heard.append(command)
                writer.write(answer)
            await writer.drain()
            await asyncio.sleep(5)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return handler


def check_with(handler: Handler, **kw: object) -> Outcome:
    async def main() -> Outcome:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await run_check(target(port, **kw))  # type: ignore[arg-type]

    return asyncio.run(main())


@pytest.mark.parametrize(("line", "code", "last"), [
    (b"220 mail.example ESMTP", 220, True), (b"250-mail.example", 250, False),
    (b"250", 250, True), (b"2500 x", None, True), (b"hello", None, True),
])  # fmt: skip
def test_reply_code(line: bytes, code: int | None, last: bool) -> None:
    assert reply_code(line) == (code, last)


def test_multi_line_reply_is_read_whole() -> None:
    r = ReplyReader()
    assert r.feed(b"220-first line\r\n220-second") is None
    assert r.feed(b" line\r\n220 last\r\n") == (220, "220-first line")


def test_endless_reply_line_is_refused() -> None:
    r = ReplyReader()
    with pytest.raises(CheckFailed):
        r.feed(b"2" * 10000)


def test_up_against_aiosmtpd() -> None:
    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    async def main() -> Outcome:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Sink(), hostname="rs.example"), "127.0.0.1", 0
        )
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await run_check(target(port))

    assert asyncio.run(main()) == Outcome(True, "SMTP 220/250")


def test_sends_helo_name_then_quit() -> None:
    heard: list[bytes] = []
    handler = scripted([b"220 hi\r\n", b"250 hello\r\n", b"221 bye\r\n"], heard)
    assert check_with(handler, helo_name="checker.example").ok
    assert heard == [b"HELO checker.example\r\n", b"QUIT\r\n"]
    heard.clear()
    assert check_with(handler).ok
    assert heard[0] == f"HELO {DEFAULT_HELO}\r\n".encode()


def test_multi_line_greeting_is_up() -> None:
    handler = scripted(
        [b"220-mail.example\r\n220-policy text\r\n220 ready\r\n", b"250 hello\r\n", b"221 bye\r\n"]
    )
    assert check_with(handler).ok


def test_bad_greeting_is_down() -> None:
    handler = scripted([b"554 no service\r\n"])
    assert check_with(handler) == Outcome(False, "bad SMTP greeting: '554 no service'")


def test_bad_helo_reply_is_down() -> None:
    handler = scripted([b"220 hi\r\n", b"501 who are you\r\n"])
    assert check_with(handler) == Outcome(False, "bad HELO reply: '501 who are you'")


def test_closed_before_greeting_is_down() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    assert check_with(handler) == Outcome(False, "connection closed waiting for greeting")


def test_silent_server_is_down_within_the_timeout() -> None:
    handler = scripted([b""])
    start = time.monotonic()
    assert check_with(handler, timeout=0.3) == Outcome(
        False, "timeout waiting for greeting after 0.3s"
    )
    assert time.monotonic() - start < 1.0


def test_dripping_server_is_cut_by_the_budget() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(100):
                writer.write(b"220-still talking\r\n")  # each line well inside the read timeout
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    start = time.monotonic()
    assert check_with(handler, timeout=0.2) == Outcome(False, "timeout in SMTP dialogue after 0.8s")
    assert time.monotonic() - start < 1.5
