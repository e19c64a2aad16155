"""SMTP_CHECK: a 220 greeting, `HELO <helo_name>` answered 250, then QUIT (check_smtp.c).

Each read and write is bounded by connect_timeout, as keepalived does, and the whole attempt
by BUDGET of them (a server dripping one byte a second cannot hold it). keepalived reads one
line per reply; a multi-line reply (`250-...` lines then `250 ...`) is read whole here, so a
server with a long greeting is not failed for it.
"""

from __future__ import annotations

import asyncio

from hakeeper.check.base import (
    CheckFailed,
    Outcome,
    close_stream,
    open_stream,
    read_some,
    seconds,
    send_all,
)
from hakeeper.check.target import CheckTarget

DEFAULT_HELO = "smtpchecker.keepalived.org"  # keepalived's SMTP_DEFAULT_HELO
MAX_REPLY = 8192
BUDGET = 4  # the whole attempt (connect and dialogue) within 4 connect_timeouts


def reply_code(line: bytes) -> tuple[int | None, bool]:
    """(code, last): `250 ok` -> (250, True); `250-more` -> (250, False); junk -> (None, True)."""
    code = line[:3]
    sep = line[3:4]
    if len(code) != 3 or not code.isdigit() or sep not in (b"", b" ", b"-", b"\r"):
        return None, True
    return int(code), sep != b"-"


class ReplyReader:
    """Sans-IO: collects lines until the last line of one SMTP reply."""

    def __init__(self) -> None:
        self.buf = b""
        self.first: str | None = None

    def feed(self, data: bytes) -> tuple[int | None, str] | None:
        """The reply's (code, first line) once its last line is in, else None."""
        self.buf += data
        while (nl := self.buf.find(b"\n")) >= 0:
            line, self.buf = self.buf[:nl].rstrip(b"\r"), self.buf[nl + 1 :]
            if self.first is None:
                self.first = line[:80].decode("latin-1")
            code, last = reply_code(line)
            if last:
                return code, self.first
        if len(self.buf) > MAX_REPLY:
            raise CheckFailed(f"SMTP reply line over {MAX_REPLY} bytes")
        return None


async def _reply(reader: asyncio.StreamReader, timeout: float, what: str) -> tuple[int | None, str]:
    parser = ReplyReader()
    while True:
        data = await read_some(reader, timeout, f"waiting for {what}")
        if not data:
            raise CheckFailed(f"connection closed waiting for {what}")
        if (reply := parser.feed(data)) is not None:
            return reply


async def check(target: CheckTarget) -> Outcome:
    budget = BUDGET * target.connect_timeout
    try:
        async with asyncio.timeout(budget):
            return await _dialogue(target)
    except TimeoutError:
        raise CheckFailed(f"timeout in SMTP dialogue after {seconds(budget)}") from None


async def _dialogue(target: CheckTarget) -> Outcome:
    helo = target.checker.helo_name or DEFAULT_HELO
    timeout = target.connect_timeout
    reader, writer = await open_stream(target)
    try:
        code, line = await _reply(reader, timeout, "greeting")
        if code != 220:
            return Outcome(False, f"bad SMTP greeting: {line!r}")
        await send_all(writer, f"HELO {helo}\r\n".encode(), timeout, "HELO")
        code, line = await _reply(reader, timeout, "HELO reply")
        if code != 250:
            return Outcome(False, f"bad HELO reply: {line!r}")
        await send_all(writer, b"QUIT\r\n", timeout, "QUIT")
        await _reply(reader, timeout, "QUIT reply")  # keepalived waits for it, whatever it is
        return Outcome(True, "SMTP 220/250")
    finally:
        close_stream(writer)
