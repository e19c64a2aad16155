"""The sans-IO schedule and up/down state of one health check (keepalived's checker rules).

No sockets, no sleeps, no clock: the runner sleeps until `next_deadline()`, asks `on_timer(now)`
whether to start an attempt, and feeds the attempt's `Outcome` to `on_result(outcome, now)`,
which returns a `Change` when the check went up or down or its dynamic weight moved.

keepalived's rules (check_tcp.c `tcp_epilog`, check_http.c `epilog`, check_data.c, check_api.c):
- a checker starts up, unless alpha: then down until its first success;
- the first attempt starts at a random point of [0, warmup] (warmup defaults to delay_loop),
  so checks of one real server do not all fire together;
- before its first result a single failure is enough to go down ("for non alpha mode, one
  failure is enough initially": retry_it starts at retry);
- once it has run, a failure while up is retried `retry` more times, `delay_before_retry`
  apart, and only when all of them fail does the check go down;
- while down, one success brings it up; failures while down are not retried;
- the next attempt is timed from the end of the previous one (delay_loop, or
  delay_before_retry while retrying), as keepalived re-arms its timer in the epilog.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hakeeper.check.target import CheckTarget


class Verdict(Protocol):
    """One attempt's outcome: hakeeper.check.base.Outcome, read through its attributes only so
    this core depends on nothing but data."""

    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...
    @property
    def weight(self) -> int | None: ...  # a dynamic weight (misc_dynamic, FILE_CHECK)


@dataclass(frozen=True, slots=True)
class Timing:
    """What the schedule needs of a target; seconds."""

    delay_loop: float
    retry: int
    delay_before_retry: float
    warmup: float
    alpha: bool

    @classmethod
    def of(cls, target: CheckTarget) -> Timing:
        return cls(
            delay_loop=target.delay_loop,
            retry=target.retry,
            delay_before_retry=target.delay_before_retry,
            warmup=target.warmup,
            alpha=target.alpha,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """The check went up or down, or its dynamic weight changed."""

    up: bool
    weight: int | None
    up_changed: bool
    weight_changed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """What a view shows of one check. `last_check` is wall-clock epoch seconds (display only);
    `restarts` counts fresh starts of the check (its target changed, or the checker process
    was restarted)."""

    up: bool
    weight: int | None = None
    checks: int = 0
    failures: int = 0
    last_detail: str = ""
    last_duration: float | None = None
    last_check: float | None = None
    restarts: int = 0
    consecutive_failures: int = 0


class CheckSched:
    """One check's schedule and state. Times are monotonic seconds supplied by the caller."""

    def __init__(
        self,
        timing: Timing,
        now: float,
        *,
        rng: Callable[[], float] = random.random,
        seed_up: bool | None = None,
        seed_weight: int | None = None,
    ) -> None:
        """`seed_up` resumes a check whose state is known from before (a restarted checker
        process, a reload that changed only its timing): that state, as having run."""
        self.timing = timing
        self.up = not timing.alpha
        self.has_run = False
        self.retry_it = timing.retry  # keepalived: one failure is enough before the first run
        self.weight: int | None = None
        if seed_up is not None:
            self.up = seed_up
            self.has_run = True
            self.retry_it = 0 if seed_up else timing.retry
            self.weight = seed_weight
        self.checks = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_detail = ""
        self.last_duration: float | None = None
        self.last_check: float | None = None  # monotonic time of the last result
        self.running = False
        self.started: float | None = None
        offset = max(0.0, timing.warmup) * min(max(rng(), 0.0), 1.0)
        self._deadline = now + offset

    def next_deadline(self) -> float:
        """When `on_timer` next wants to run; infinity while an attempt is in flight."""
        return math.inf if self.running else self._deadline

    def on_timer(self, now: float) -> bool:
        """True: start one attempt now (and report it with `on_result`)."""
        if self.running or now < self._deadline:
            return False
        self.running = True
        self.started = now
        return True

    def on_result(
        self, outcome: Verdict, now: float, *, duration: float | None = None
    ) -> Change | None:
        """Apply one attempt's outcome; arm the next attempt; return the change, if any."""
        if not self.running:
            return None  # a late result of an attempt already given up on
        self.running = False
        self.checks += 1
        self.last_detail = outcome.detail
        self.last_check = now
        start = self.started if self.started is not None else now
        self.last_duration = duration if duration is not None else max(0.0, now - start)
        if outcome.ok:
            self.consecutive_failures = 0
        else:
            self.failures += 1
            self.consecutive_failures += 1

        t = self.timing
        was_up, old_weight = self.up, self.weight
        delay = t.delay_loop
        reason = ""
        if outcome.ok or ((self.up or not self.has_run) and self.retry_it >= t.retry):
            retries_done = self.retry_it if self.has_run else 0
            self.retry_it = 0
            if outcome.ok:
                self.up = True
                reason = f"succeeded: {outcome.detail}"
            elif self.up:
                self.up = False
                self.weight = None  # keepalived drops a failed checker's weight (cur_weight = 0)
                more = f" after {retries_done} retries" if retries_done else ""
                reason = f"failed{more}: {outcome.detail}"
        elif self.up:
            delay = t.delay_before_retry
            self.retry_it += 1
        if outcome.ok and outcome.weight is not None:
            self.weight = outcome.weight
        self.has_run = True
        self._deadline = now + delay

        up_changed = self.up != was_up
        weight_changed = self.weight != old_weight
        if not (up_changed or weight_changed):
            return None
        if not up_changed:
            reason = f"weight {old_weight} -> {self.weight}: {outcome.detail}"
        return Change(self.up, self.weight, up_changed, weight_changed, reason)

    def status(self, *, last_check: float | None = None, restarts: int = 0) -> CheckStatus:
        """A snapshot; the caller turns the monotonic `last_check` into wall-clock time."""
        return CheckStatus(
            up=self.up,
            weight=self.weight,
            checks=self.checks,
            failures=self.failures,
            last_detail=self.last_detail,
            last_duration=self.last_duration,
            last_check=last_check,
            restarts=restarts,
            consecutive_failures=self.consecutive_failures,
        )
