"""Ordered delivery: one queue of jobs per object, one job at a time per object.

keepalived forks every notify script the moment a transition happens, so a fast
MASTER -> BACKUP -> MASTER flap can run the three scripts at once and finish them in any
order; users end up with the wrong final state. Here each object (instance or group) has its
own queue and a worker that runs its jobs one after the other, each bounded by the job's own
timeout, while different objects proceed in parallel. The queue is bounded too: when an
object's scripts keep hanging and transitions keep coming, the oldest waiting job is dropped
(counted and logged), so the newest state is always delivered and memory stays bounded; the
sequence numbers let a consumer see the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("hakeeper.notify")

Job = Callable[[], Awaitable[None]]

DEFAULT_MAX_PENDING = 256  # per object: far beyond any real flap rate, small in memory


class OrderedQueues:
    """Jobs keyed by object; a key's jobs run in the order they were put, never overlapping.

    `put` is synchronous and never waits, so the VRRP engine can call it from the event loop.
    Jobs put before `start` wait for it. A job that raises is logged and the next one runs.
    """

    def __init__(self, name: str, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.name = name
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: dict[Hashable, deque[tuple[str, Job]]] = {}
        self._running: dict[Hashable, str] = {}  # key -> label of the job in progress
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- feeding

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for key in list(self._pending):
            self._spawn(key)

    def put(self, key: Hashable, job: Job, label: str) -> None:
        q = self._pending.setdefault(key, deque())
        if len(q) >= self.max_pending:
            old_label, _ = q.popleft()
            self.dropped += 1
            # rate-limited: a stuck object would otherwise log once per transition
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("%s: %s queue full (%d waiting); dropped %s (%d dropped in all)",
                            key, self.name, len(q), old_label, self.dropped)  # fmt: skip
        q.append((label, job))
        self._idle.clear()
        if self._loop is not None and key not in self._workers:
            self._spawn(key)

    def _spawn(self, key: Hashable) -> None:
        assert self._loop is not None
        self._workers[key] = self._loop.create_task(self._work(key), name=f"{self.name} {key}")

    async def _work(self, key: Hashable) -> None:
        q = self._pending[key]
        try:
            while q:
                label, job = q.popleft()
                self._running[key] = label
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug in one job must not stop the object's queue
                    log.exception("%s: %s failed", key, label)
                finally:
                    del self._running[key]
        finally:
            del self._workers[key]
            if not q:
                self._pending.pop(key, None)
            if not self._workers:
                self._idle.set()

    # -- reading (metrics, tests)

    def depth(self, key: Hashable) -> int:
        """Jobs waiting or running for one object."""
        return len(self._pending.get(key, ())) + (key in self._running)

    def depths(self) -> dict[Hashable, int]:
        keys = set(self._pending) | set(self._running)
        return {k: self.depth(k) for k in keys if self.depth(k)}

    def total(self) -> int:
        return sum(len(q) for q in self._pending.values()) + len(self._running)

    # -- ending

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` for every queued job to finish; True if they all did."""
        if self._loop is None:
            return self.total() == 0
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> int:
        """Cancel what is running (a script is killed) and forget what waits; returns how
        many jobs were abandoned."""
        abandoned = self.total()
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending.clear()
        self._idle.set()
        return abandoned


__all__ = ["DEFAULT_MAX_PENDING", "Job", "OrderedQueues"]
