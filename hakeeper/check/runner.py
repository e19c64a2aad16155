"""The asyncio engine that runs many checks: one timer over a heap of deadlines, attempts as
tasks bounded by a semaphore, each attempt under a hard ceiling.

One timer rather than one sleeping task per check keeps two thousand checks cheap. A slow
attempt never blocks another check's schedule; when every slot is busy an attempt starts late
(counted in `late`), never silently skipped. A kind that hangs is cancelled at its ceiling and
counted as `stuck`; a kind that raises is a failure "internal error", counted in `errors`, and
never stops the runner.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from hakeeper.check.base import Outcome
from hakeeper.check.sched import CheckSched, CheckStatus, Timing, Verdict
from hakeeper.check.target import CheckKey, CheckTarget

__all__ = ["CheckRunner", "CheckStatus", "attempt_ceiling"]

log = logging.getLogger("hakeeper.check")

CheckFn = Callable[[CheckTarget], Awaitable[Verdict]]
OnChange = Callable[[CheckKey, CheckStatus], None]
# (up, weight) known from before, for a check started afresh (see CheckRunner.update)
Seed = Mapping[CheckKey, tuple[bool, int | None]]

STUCK_GRACE = 1.0  # beyond a kind's own timeouts before an attempt counts as stuck
SCRIPT_GRACE = 2.0  # a MISC_CHECK script is killed at its timeout; allow for the kill
LATE_LOG_INTERVAL = 60.0
# what may change on reload and still be the same probe: keepalived's migrate_checkers keeps
# a checker's up/down when its connection and kind options compare equal
_TIMING = ("delay_loop", "retry", "delay_before_retry", "warmup", "alpha")


def attempt_ceiling(target: CheckTarget) -> float:
    """The hard limit of one attempt of an injected check function: a kind bounds each step
    by connect_timeout, an HTTP attempt has a step per url, a script has its own timeout.
    (With the real kinds, the ceiling lies STUCK_GRACE beyond kinds.attempt_limit, the
    kinds' own guard, so that guard reports first.)"""
    ck = target.checker
    if ck.kind == "MISC_CHECK":
        # keepalived: misc_timeout, else the delay_loop
        return (ck.misc_timeout or target.delay_loop) + SCRIPT_GRACE
    return target.connect_timeout * (len(ck.url) + 2) + STUCK_GRACE


def _kinds_ceiling(target: CheckTarget) -> float:
    from hakeeper.check.kinds import attempt_limit

    return attempt_limit(target) + STUCK_GRACE  # beyond the kinds' own guard, which reports


@dataclass(slots=True, eq=False)
class _Check:
    target: CheckTarget
    sched: CheckSched
    gen: int
    restarts: int = 0
    task: asyncio.Task[None] | None = None
    queued: float = math.inf  # the deadline this check has in the heap (inf: none)
    last_wall: float | None = None
    error_logged: bool = False
    name: str = field(init=False)

    def __post_init__(self) -> None:
        vs, rs, index = self.target.key
        self.name = f"{self.target.checker.kind} #{index} of {rs} in VS {vs}"


class CheckRunner:
    def __init__(
        self,
        on_change: OnChange,
        *,
        check: CheckFn | None = None,
        max_concurrent: int = 128,
        rng: Callable[[], float] = random.random,
        ceiling: Callable[[CheckTarget], float] | None = None,
    ) -> None:
        if check is None:
            # the kinds pull in TLS, DNS and script support: only the worker needs them
            from hakeeper.check.kinds import run_check

            check = run_check
            ceiling = ceiling or _kinds_ceiling
        self._check_fn = check
        self._ceiling = ceiling or attempt_ceiling
        self._on_change = on_change
        self._rng = rng
        self._sem = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self._checks: dict[CheckKey, _Check] = {}
        self._heap: list[tuple[float, int, CheckKey, int]] = []
        self._seq = itertools.count()
        self._gens = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._late_logged = -math.inf
        # counters
        self.late = 0  # attempts that waited for a free slot
        self.stuck = 0  # attempts cancelled at their ceiling
        self.errors = 0  # attempts whose kind raised or returned garbage
        self.running = 0  # attempts in flight now

    # -- public ---------------------------------------------------------------------------

    def update(self, targets: Iterable[CheckTarget], *, seed: Seed | None = None) -> None:
        """Take the full set of targets. An unchanged target keeps its state and schedule; a
        changed one starts afresh (from its alpha state; a change of timing only keeps up/down
        and weight, as keepalived does on reload); a removed one stops, its attempt cancelled.
        `seed` gives the state of checks that start afresh (a restarted checker process)."""
        loop = asyncio.get_running_loop()
        new: dict[CheckKey, CheckTarget] = {}
        for t in targets:
            if t.key in new:
                log.warning("check %s given twice; the last one counts", t.key)
            new[t.key] = t
        for key in [k for k in self._checks if k not in new]:
            self._drop(key)
        now = loop.time()
        for key, t in new.items():
            old = self._checks.get(key)
            if old is not None and old.target == t:
                continue
            seed_up: bool | None = None
            seed_weight: int | None = None
            restarts = 0
            if old is not None:
                restarts = old.restarts + 1
                if old.sched.has_run and _same_probe(old.target, t):
                    seed_up, seed_weight = old.sched.up, old.sched.weight
                self._drop(key)
            elif seed is not None and key in seed:
                seed_up, seed_weight = seed[key]
            sched = CheckSched(
                Timing.of(t), now, rng=self._rng, seed_up=seed_up, seed_weight=seed_weight
            )
            c = _Check(t, sched, next(self._gens), restarts)
            self._checks[key] = c
            self._schedule(c)
        if len(self._heap) > 2 * len(self._checks) + 64:
            self._compact()

    def status(self, key: CheckKey) -> CheckStatus:
        c = self._checks[key]
        return c.sched.status(last_check=c.last_wall, restarts=c.restarts)

    def statuses(self) -> dict[CheckKey, CheckStatus]:
        return {
            key: c.sched.status(last_check=c.last_wall, restarts=c.restarts)
            for key, c in self._checks.items()
        }

    def targets(self) -> dict[CheckKey, CheckTarget]:
        return {key: c.target for key, c in self._checks.items()}

    def counters(self) -> dict[str, int]:
        return {
            "checks": len(self._checks),
            "running": self.running,
            "late": self.late,
            "stuck": self.stuck,
            "errors": self.errors,
        }

    async def stop(self) -> None:
        """Stop every check and wait for their attempts to be cancelled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        for key in list(self._checks):
            self._drop(key)
        self._heap.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the timer ------------------------------------------------------------------------

    def _schedule(self, c: _Check) -> None:
        d = c.sched.next_deadline()
        if d == math.inf or d == c.queued:
            return
        c.queued = d
        heapq.heappush(self._heap, (d, next(self._seq), c.target.key, c.gen))
        if d < self._timer_at:
            self._arm(d)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, key, gen = heapq.heappop(heap)
            c = self._checks.get(key)
            if c is None or c.gen != gen or c.queued != d:
                continue  # a stale entry: the check was removed, replaced or re-queued
            c.queued = math.inf
            if c.sched.on_timer(now):
                task = loop.create_task(self._attempt(c))
                c.task = task
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._schedule(c)
        if heap:
            self._arm(heap[0][0])

    def _compact(self) -> None:
        self._heap = [
            e
            for e in self._heap
            if (c := self._checks.get(e[2])) is not None and c.gen == e[3] and c.queued == e[0]
        ]
        heapq.heapify(self._heap)

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, c: _Check) -> None:
        loop = asyncio.get_running_loop()
        if self._sem.locked():
            self._count_late(c)
        async with self._sem:
            self.running += 1
            started = loop.time()
            try:
                outcome = await self._run_one(c)
            finally:
                self.running -= 1
            ended = loop.time()
        if self._checks.get(c.target.key) is not c:
            return  # removed or replaced while it ran
        c.task = None
        change = c.sched.on_result(outcome, ended, duration=ended - started)
        c.last_wall = time.time()
        self._schedule(c)
        if change is not None:
            log.info("%s: %s", c.name, change.reason)
            try:
                self._on_change(c.target.key, self.status(c.target.key))
            except Exception:
                log.exception("%s: the change handler failed", c.name)

    async def _run_one(self, c: _Check) -> Verdict:
        ceiling = self._ceiling(c.target)
        limit = asyncio.timeout(ceiling)
        try:
            async with limit:
                outcome = await self._check_fn(c.target)
        except TimeoutError:
            if not limit.expired():
                return self._internal_error(c, "raised TimeoutError")
            self.stuck += 1
            log.warning("%s: attempt still running after %gs, cancelled", c.name, ceiling)
            return Outcome(False, f"stuck: cancelled after {ceiling:g}s")
        except Exception as e:
            return self._internal_error(c, f"raised {type(e).__name__}: {e}", exc=e)
        if not isinstance(getattr(outcome, "ok", None), bool):
            return self._internal_error(c, f"returned {outcome!r}")
        return outcome

    def _internal_error(self, c: _Check, what: str, exc: Exception | None = None) -> Outcome:
        self.errors += 1
        if not c.error_logged:  # once per check: a bug repeats every delay_loop
            c.error_logged = True
            log.error("%s: internal error, the check %s", c.name, what, exc_info=exc)
        return Outcome(False, f"internal error: {what}")

    def _count_late(self, c: _Check) -> None:
        self.late += 1
        now = asyncio.get_running_loop().time()
        if now - self._late_logged >= LATE_LOG_INTERVAL:
            self._late_logged = now
            log.warning("%s waits for a free slot: all %d are busy (%d late starts so far)",
                        c.name, self.max_concurrent, self.late)  # fmt: skip

    def _drop(self, key: CheckKey) -> None:
        c = self._checks.pop(key)
        if c.task is not None:
            c.task.cancel()
            c.task = None


def _same_probe(a: CheckTarget, b: CheckTarget) -> bool:
    """True when a and b differ at most in timing (what keepalived migrates across reload)."""

    def probe(t: CheckTarget) -> CheckTarget:
        ck = replace(t.checker, **dict.fromkeys(_TIMING))
        return replace(t, checker=ck, **dict.fromkeys(_TIMING))

    return probe(a) == probe(b)
