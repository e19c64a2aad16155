"""`vrrp_track_process`: how many matching processes run, and whether that is a quorum.

keepalived follows fork/exit/comm events from the netlink proc connector; hakeeper scans
/proc (every second by default), which needs no CAP_NET_ADMIN connector and gives the same
counts a moment later. The matching rules are keepalived's (core/track_process.c):

- by default the process name is compared with comm (/proc/PID/stat, at most 15 chars),
  zombies excluded;
- with arguments, `param_match` or `full_command`, argv[0] of /proc/PID/cmdline must equal
  `process` and the arguments are compared: `exact` (all of them, the default when
  arguments are given), `partial` (the first ones), `initial` (the first ones, the last
  given one being a prefix of the process's argument);
- quorum is held while quorum <= count <= quorum_max; `fork_delay` postpones a change caused
  by more processes, `terminate_delay` one caused by fewer; a change that reverts within its
  delay is never reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable

from hakeeper.config.model import VrrpTrackProcess
from hakeeper.track.phase import finish

log = logging.getLogger(__name__)

PROC = "/proc"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read()
    except OSError:
        return None


def params_match(cfg: VrrpTrackProcess, args: list[str]) -> bool:
    """keepalived's check_params() on the words after argv[0]."""
    want = list(cfg.params)
    mode = cfg.param_match or ("exact" if cfg.params else None)
    if mode is None:
        return True  # full_command alone: argv[0] only
    if mode == "exact":
        return args == want
    if len(args) < len(want):
        return False
    if mode == "partial":
        return args[: len(want)] == want
    # initial: all but the last given word exactly, the last one as a prefix
    if not want:
        return True
    return args[: len(want) - 1] == want[:-1] and args[len(want) - 1].startswith(want[-1])


def matches(cfg: VrrpTrackProcess, comm: str | None, argv: list[str] | None) -> bool:
    if cfg.uses_cmdline:
        if not argv or argv[0] != cfg.process:
            return False
        return params_match(cfg, argv[1:])
    return comm is not None and comm == cfg.process


def scan(configs: Iterable[VrrpTrackProcess], proc: str = PROC) -> dict[str, set[int]]:
    """One pass over /proc: the PIDs matching each vrrp_track_process, by name."""
    configs = list(configs)
    out: dict[str, set[int]] = {c.name: set() for c in configs}
    if not configs:
        return out
    need_comm = any(not c.uses_cmdline for c in configs)
    need_argv = any(c.uses_cmdline for c in configs)
    try:
        entries = os.listdir(proc)
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        comm: str | None = None
        argv: list[str] | None = None
        if need_comm:
            stat = _read(f"{proc}/{entry}/stat")
            if stat is None:
                continue
            text = stat.decode("utf-8", "replace")
            left, right = text.find("("), text.rfind(")")
            if left < 0 or right < 0 or text[right + 2 : right + 3] == "Z":
                comm = None  # unreadable, or a zombie: not running
            else:
                comm = text[left + 1 : right]
        if need_argv:
            raw = _read(f"{proc}/{entry}/cmdline")
            if raw:
                argv = raw.decode("utf-8", "surrogateescape").split("\0")
                if argv and argv[-1] == "":
                    argv.pop()
        for cfg in configs:
            if matches(cfg, comm, argv):
                out[cfg.name].add(int(entry))
    return out


class ProcessTracker:
    """The quorum of one vrrp_track_process; `on_change(tracker)` when it is gained or lost."""

    def __init__(
        self,
        config: VrrpTrackProcess,
        *,
        on_change: Callable[[ProcessTracker], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.on_change = on_change
        self.pids: set[int] = set()
        self.have_quorum: bool | None = None  # None until the first scan
        self._timer: asyncio.TimerHandle | None = None

    @property
    def count(self) -> int:
        return len(self.pids)

    def quorum_for(self, count: int) -> bool:
        qmax = self.config.quorum_max
        return self.config.quorum <= count and (qmax is None or count <= qmax)

    def update(self, pids: set[int], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """A new scan's PIDs. The first scan sets the quorum at once (keepalived's
        initialise_process_tracking_priorities); later changes honour the delays."""
        previous = self.count
        self.pids = set(pids)
        wanted = self.quorum_for(self.count)
        if self.have_quorum is None:
            self.have_quorum = wanted
            return
        if wanted == self.have_quorum:
            if self._timer is not None:  # it went back within the delay: nothing happened
                self._timer.cancel()
                self._timer = None
            return
        if self._timer is not None:
            return  # already waiting to report this change
        cfg = self.config
        delay = cfg.fork_delay if self.count > previous else cfg.terminate_delay
        if delay > 0 and loop is not None:
            self._timer = loop.call_later(delay, self._expired)
            return
        self._set(wanted)

    def _expired(self) -> None:
        self._timer = None
        self._set(self.quorum_for(self.count))

    def _set(self, quorum: bool) -> None:
        if quorum == self.have_quorum:
            return
        self.have_quorum = quorum
        log.info("Quorum %s for tracked process %s (%d running)",
                 "gained" if quorum else "lost", self.name, self.count)  # fmt: skip
        if self.on_change is not None:
            self.on_change(self)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ProcessMonitor:
    """Scans /proc for every tracked process at once, every `poll_interval` seconds."""

    def __init__(self, poll_interval: float = 1.0, proc: str = PROC) -> None:
        self.poll_interval = poll_interval
        self.proc = proc
        self.trackers: dict[str, ProcessTracker] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def poll(self) -> None:
        """Scan now, in the caller's thread (startup, tests)."""
        self._apply(scan([t.config for t in self.trackers.values()], self.proc))

    def _apply(self, found: dict[str, set[int]]) -> None:
        for name, tracker in list(self.trackers.items()):
            tracker.update(found.get(name, set()), self._loop)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name="track_process scan")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            if self.trackers:
                # a /proc walk reads thousands of small files: off the loop, so adverts
                # never wait for it
                assert self._loop is not None
                configs = [t.config for t in self.trackers.values()]
                found = await self._loop.run_in_executor(None, scan, configs, self.proc)
                self._apply(found)

    def stop(self) -> None:
        for tracker in self.trackers.values():
            tracker.stop()
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        self.stop()
        await finish(self._task)
        self._task = None


__all__ = ["ProcessMonitor", "ProcessTracker", "matches", "params_match", "scan"]
