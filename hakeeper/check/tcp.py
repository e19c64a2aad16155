"""TCP_CHECK: the real server is up when a TCP connection to it opens (check_tcp.c)."""

from __future__ import annotations

from hakeeper.check.base import Outcome, open_tcp
from hakeeper.check.target import CheckTarget


async def check(target: CheckTarget) -> Outcome:
    sock = await open_tcp(target)
    sock.close()
    return Outcome(True, "connected")
