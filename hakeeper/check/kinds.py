"""One attempt of a health check, whatever its kind: `run_check(target) -> Outcome`.

The runner (scheduling, retries, state) calls this and nothing else. It never raises but
for cancellation: a step's CheckFailed and any unexpected exception become a down Outcome,
and an attempt that overruns its bound (`attempt_limit`) is cut short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hakeeper.check import dns, file, http, misc, ping, smtp, tcp, udp
from hakeeper.check.base import CheckFailed, Outcome, os_reason, seconds
from hakeeper.check.target import CheckTarget

log = logging.getLogger(__name__)

Check = Callable[[CheckTarget], Awaitable[Outcome]]

CHECKS: dict[str, Check] = {
    "TCP_CHECK": tcp.check,
    "HTTP_GET": http.check,
    "SSL_GET": http.check,
    "SMTP_CHECK": smtp.check,
    "DNS_CHECK": dns.check,
    "MISC_CHECK": misc.check,
    "UDP_CHECK": udp.check,
    "PING_CHECK": ping.check,
    "FILE_CHECK": file.check,
}

SLACK = 1.0  # seconds on top of a kind's own bounds, before the guard cuts in


def attempt_limit(target: CheckTarget) -> float:
    """The longest one attempt may take: each kind bounds its own steps; this guard is
    only reached if one of them does not."""
    ck = target.checker
    t = target.connect_timeout
    if ck.kind == "MISC_CHECK":
        return (target.misc_timeout or target.delay_loop) + SLACK + 1.0  # the kill and reap
    if ck.kind in ("HTTP_GET", "SSL_GET"):
        return http.URL_BUDGET * t * max(1, len(ck.url)) + SLACK
    if ck.kind == "SMTP_CHECK":
        return smtp.BUDGET * t + SLACK
    return 2 * t + SLACK


async def run_check(target: CheckTarget) -> Outcome:
    """One attempt of `target`'s check; no retries (the runner retries)."""
    kind = target.checker.kind
    check = CHECKS.get(kind)
    if check is None:
        return Outcome(False, f"unknown checker kind {kind}")
    limit = attempt_limit(target)
    guard = asyncio.timeout(limit)
    try:
        async with guard:
            return await check(target)
    except CheckFailed as e:
        return Outcome(False, str(e))
    except TimeoutError:
        if guard.expired():
            return Outcome(False, f"attempt overran its {seconds(limit)} bound")
        return Outcome(False, "timeout")  # a kind's own timeout that it did not name
    except asyncio.CancelledError:
        raise
    except OSError as e:  # a socket the kind did not expect to fail (EMFILE, ENOBUFS...)
        log.warning("%s %s: %s", kind, target.key, e)
        return Outcome(False, os_reason(e))
    except Exception as e:
        log.exception("%s %s: internal error", kind, target.key)
        return Outcome(False, f"internal error: {type(e).__name__}: {e}")
