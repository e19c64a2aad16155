"""The daemon's side of the checker worker process: CheckRunner's API, run in a child.

The child (`python -m hakeeper.check.worker`) runs in its own session with pipes on stdin and
stdout; its stderr is ours, so its logs reach the journal. This side never blocks: it writes
a target set as one line (no drain: a stuck child costs buffer, not time), reads lines through
an asyncio stream, and keeps the latest status snapshot as received, turning its rows into
CheckStatus values only when someone reads them.

A child that exits, or says nothing for `heartbeat_timeout` (it beats every 0.5 s), is killed
with its process group and started again with backoff, and the targets are sent again. keepalived
restarts its checker child with every checker afresh; here the new child also gets the state
this side last saw (up/down, weight) as a seed, so a crash neither re-adds a dead real server
nor drops a live one while the checks run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hakeeper
from hakeeper.check import wire
from hakeeper.check.sched import CheckStatus
from hakeeper.check.target import CheckKey, CheckTarget

log = logging.getLogger("hakeeper.check")

LINE_LIMIT = 1 << 26  # the worker's snapshot of thousands of checks is one line
STOP_GRACE = 1.0  # at stop: time for the worker to leave after stdin's EOF, then SIGKILL


class CheckProcess:
    def __init__(
        self,
        on_change: Callable[[CheckKey, CheckStatus], None],
        *,
        heartbeat_timeout: float = 3.0,
        startup_timeout: float = 15.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        stable_after: float = 30.0,
        lvs_backend: str | None = None,
        on_counters: Callable[[list[Any]], None] | None = None,
        snapshot_interval: float = 1.0,
        counters_interval: float = 30.0,
    ) -> None:
        self._on_change = on_change
        # the worker also reads the data plane's counters (as keepalived's checker child
        # owns IPVS): parsing a big table listing would hold up the daemon's loop
        self.lvs_backend = lvs_backend
        self._on_counters = on_counters
        # statuses arrive as one snapshot line of every check: the daemon takes one every
        # few seconds (changes come at once anyway; parsing thousands of rows costs ms)
        self.snapshot_interval = snapshot_interval
        self.counters_interval = counters_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.startup_timeout = startup_timeout  # the first line may wait for imports
        self.backoff = backoff  # (first, max) delay before a restart, doubling
        self.stable_after = stable_after  # a child that lived this long resets the backoff
        self._targets: dict[CheckKey, CheckTarget] = {}
        self._encoded: dict[CheckTarget, dict[str, Any]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # statuses: the latest snapshot's rows (decoded on demand), then changes since it
        self._rows: list[Any] = []
        self._snap: dict[CheckKey, CheckStatus] | None = {}
        self._after: dict[CheckKey, CheckStatus] = {}
        self._seeded: set[CheckKey] = set()
        self._worker_counters: dict[str, int] = {}
        self.restarts = 0
        self.bad_lines = 0

    # -- public ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> None:
        """Start the worker (and keep it running until stop())."""
        if self._task is not None:
            return
        spawned = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(spawned), name="check-process")
        await spawned

    def update(self, targets: Iterable[CheckTarget]) -> None:
        """Send the full target set; the worker keeps unchanged checks as they are."""
        self._targets = {t.key: t for t in targets}
        # a reload mostly repeats targets: encode only the new ones
        old = self._encoded
        self._encoded = {t: old.get(t) or wire.encode_target(t) for t in self._targets.values()}
        self._send_targets({})

    def status(self, key: CheckKey) -> CheckStatus:
        target = self._targets[key]  # KeyError for an unknown check, as CheckRunner
        return self._status(key, target)

    def statuses(self) -> dict[CheckKey, CheckStatus]:
        return {key: self._status(key, t) for key, t in self._targets.items()}

    def counters(self) -> dict[str, int]:
        """The worker's counters (late, stuck, errors...) and this side's."""
        return {**self._worker_counters, "restarts": self.restarts, "bad_lines": self.bad_lines}

    async def stop(self) -> None:
        """Stop the worker: EOF on its stdin, SIGKILL to its group if it lingers; it is
        reaped before this returns."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            await _kill(proc)

    # -- the child ------------------------------------------------------------------------

    async def _supervise(self, spawned: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff[0]
        while not self._stopping:
            proc = None
            try:
                proc = await self._spawn()
            except OSError as e:
                log.error("cannot start the checker process: %s", e)
            finally:
                if not spawned.done():
                    spawned.set_result(None)
            if proc is not None:
                born = loop.time()
                try:
                    why = await self._pump(proc)  # cancelled by stop(), which ends the child
                except Exception as e:  # a bug on this side: still replace the child
                    log.exception("checker process %d: reading it failed", proc.pid)
                    why = f"was dropped after an error reading it ({type(e).__name__})"
                await _kill(proc)
                self._proc = None
                if loop.time() - born >= self.stable_after:
                    delay = self.backoff[0]
                self.restarts += 1
                log.warning("checker process %d %s; restarting it in %.1fs (restart %d)",
                            proc.pid, why, delay, self.restarts)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _spawn(self) -> asyncio.subprocess.Process:
        argv = [sys.executable, "-m", "hakeeper.check.worker", "--parent", str(os.getpid())]
        if logging.getLogger("hakeeper").isEnabledFor(logging.DEBUG):
            argv.append("--debug")
        if self.lvs_backend is not None:
            argv += ["--lvs-backend", self.lvs_backend]
            argv += ["--counters-interval", str(self.counters_interval)]
        argv += ["--snapshot-interval", str(self.snapshot_interval)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            start_new_session=True,
            limit=LINE_LIMIT,
            env=_child_env(),
        )
        self._proc = proc
        log.info("checker process %d started", proc.pid)
        # the new child starts every check afresh, from the state we last saw
        seed = {
            key: (st.up, st.weight)
            for key, st in self.statuses().items()
            if st.checks or key in self._seeded
        }
        self._seeded = set(seed)
        self._send_targets(seed)
        return proc

    async def _pump(self, proc: asyncio.subprocess.Process) -> str:
        """Read the child's lines until it exits or falls silent; return why it ended."""
        assert proc.stdout is not None
        timeout = self.startup_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    line = await proc.stdout.readline()
            except TimeoutError:
                return f"sent nothing for {timeout:g}s (stuck)"
            except ValueError:
                self._bad("a line longer than the limit")
                continue
            if not line:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 1.0)
                return _exit_reason(proc.returncode)
            timeout = self.heartbeat_timeout
            self._handle(line)

    def _handle(self, line: bytes) -> None:
        try:
            msg = wire.loads(line)
            kind = msg["t"]
            if kind == "hb":
                return
            if kind == "statuses":
                rows, counters = msg.get("rows"), msg.get("counters")
                if not isinstance(rows, list) or not isinstance(counters, dict):
                    raise wire.WireError("statuses: bad message")
                self._rows, self._snap = rows, None
                self._after.clear()
                self._worker_counters = counters
            elif kind == "change":
                key, status = wire.decode_status_row(msg.get("row"))
                self._after[key] = status
                if key in self._targets:  # else it raced a reload that removed it
                    self._notify(key, self._status(key, self._targets[key]))
            elif kind == "counters":
                rows = msg.get("rows")
                if not isinstance(rows, list):
                    raise wire.WireError("counters: bad message")
                if self._on_counters is not None:
                    self._on_counters(rows)
            elif kind == "hello":
                log.debug("checker process %s is up", msg.get("pid"))
            else:
                raise wire.WireError(f"unknown message {kind!r}")
        except wire.WireError as e:
            self._bad(str(e))

    def _notify(self, key: CheckKey, status: CheckStatus) -> None:
        try:
            self._on_change(key, status)
        except Exception:
            log.exception("check %s: the change handler failed", key)

    def _send_targets(self, seed: dict[CheckKey, tuple[bool, int | None]]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return  # sent when the next child starts
        proc.stdin.write(wire.targets_message(self._encoded.values(), seed))

    # -- statuses -------------------------------------------------------------------------

    def _status(self, key: CheckKey, target: CheckTarget) -> CheckStatus:
        status = self._after.get(key)
        if status is None:
            status = self._snapshot().get(key)
        if status is None:  # not reported yet: as the check starts
            status = CheckStatus(up=not target.alpha)
        if self.restarts:
            status = dataclasses.replace(status, restarts=status.restarts + self.restarts)
        return status

    def _snapshot(self) -> dict[CheckKey, CheckStatus]:
        if self._snap is None:
            snap = {}
            for row in self._rows:
                try:
                    key, status = wire.decode_status_row(row)
                except wire.WireError as e:
                    self._bad(str(e))
                    continue
                snap[key] = status
            self._snap = snap
        return self._snap

    def _bad(self, why: str) -> None:
        self.bad_lines += 1
        if self.bad_lines <= 10 or self.bad_lines % 1000 == 0:
            log.error("checker process: bad line (%d so far): %s", self.bad_lines, why)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's process group (it leads its own session) and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def _exit_reason(rc: int | None) -> str:
    if rc is None:
        return "closed its output"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def _child_env() -> dict[str, str]:
    """Our environment, with this copy of hakeeper first on the path: the child runs the
    same code as the daemon, installed or from a source tree."""
    env = dict(os.environ)
    root = str(Path(hakeeper.__file__).resolve().parent.parent)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not path else f"{root}{os.pathsep}{path}"
    return env
