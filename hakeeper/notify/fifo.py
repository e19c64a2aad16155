"""notify_fifo / vrrp_notify_fifo: one line per transition written to a named pipe.

keepalived's behaviour (core/notify.c fifo_open/fifo_close, vrrp_notify.c notify_fifo):

- the FIFO is created (mode 0644) if missing, and unlinked at the end only if we created it;
- it is opened O_RDWR|O_NONBLOCK: holding a read end ourselves means the open never waits
  for a reader and a reader coming and going never gets us SIGPIPE; a path that is not a
  FIFO, or a FIFO owned by someone else, is refused (an attacker could plant one);
- `notify_fifo_script` is started with the FIFO path appended to its argv and left running;
- a line is `INSTANCE "VI_1" MASTER 100` or `GROUP "VG_1" BACKUP 0`.

hakeeper appends the sequence number as a last field: `INSTANCE "VI_1" MASTER 100 7`.
keepalived has no such field; a consumer that splits on spaces (keepalived's sample script
does `set $line`) sees one extra trailing field and can ignore it.

A write never blocks: a line is far below PIPE_BUF, so it goes in whole or not at all; when
nobody drains the pipe and its buffer is full the line is dropped, counted and logged
(keepalived drops it silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat

from hakeeper.notify.events import Transition
from hakeeper.notify.scripts import ScriptPolicy
from hakeeper.scripts import prepare_script, run_script

log = logging.getLogger("hakeeper.notify")


def fifo_line(event: Transition) -> str:
    """keepalived's line plus hakeeper's sequence number."""
    return f'{event.kind} "{event.name}" {event.state} {event.priority} {event.seq}\n'


class NotifyFifo:
    """One FIFO (`keyword` is notify_fifo or vrrp_notify_fifo) and its optional script."""

    def __init__(
        self,
        keyword: str,
        path: str,
        script: tuple[str, ...] | None,
        policy: ScriptPolicy,
    ) -> None:
        self.keyword = keyword
        self.path = path
        self.script = script
        self.policy = policy
        self.written = 0
        self.dropped = 0
        self._fd = -1
        self._created = False
        self._script_task: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._fd != -1

    def open(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Create and open the FIFO, then start its script; False (logged) if unusable."""
        try:
            os.mkfifo(self.path, 0o644)
            self._created = True
        except FileExistsError:
            pass
        except OSError as e:
            log.error("%s %s: cannot create: %s", self.keyword, self.path, e.strerror)
            return False
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as e:
            log.error("%s %s: cannot open: %s", self.keyword, self.path, e.strerror)
            self._unlink()
            return False
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.geteuid():
            log.error("%s %s: not a FIFO owned by us; not used", self.keyword, self.path)
            os.close(fd)
            return False
        self._fd = fd
        if self.script:
            self._script_task = loop.create_task(self._run_script(self.script))
        return True

    async def _run_script(self, script: tuple[str, ...]) -> None:
        # keepalived runs it with no timeout (TIMER_NEVER) and does not restart it
        who = f"{self.keyword}_script {script[0]}"
        if self.policy.user_error is not None:
            log.error("%s not run: %s", who, self.policy.user_error)
            return
        prepared = prepare_script(
            (*script, self.path),
            enable_script_security=self.policy.enable_script_security,
            uid=self.policy.uid,
            gid=self.policy.gid,
        )
        if prepared.refused is not None:
            log.error("%s refused: %s", who, prepared.refused)
            return
        if prepared.warning is not None:
            log.warning("%s has an unsafe path: %s", who, prepared.warning)
        result = await run_script(
            prepared.argv, timeout=None, uid=self.policy.uid, gid=self.policy.gid
        )
        if result.error is not None:
            log.error("%s failed to start: %s", who, result.error)
        else:
            log.warning("%s terminated (status %s, signal %s)",
                        who, result.exit_code, result.signal)  # fmt: skip

    def write(self, line: str) -> bool:
        """Write one line without blocking; False (counted, logged) if it was dropped."""
        if self._fd == -1:
            return False
        try:
            os.write(self._fd, line.encode())
        except OSError as e:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:  # one line per burst, not per drop
                reason = "full (no reader?)" if e.errno == errno.EAGAIN else e.strerror
                log.warning("%s %s: %s; %d line(s) dropped",
                            self.keyword, self.path, reason, self.dropped)  # fmt: skip
            return False
        self.written += 1
        return True

    def _unlink(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self._created = False

    def close_fifo(self) -> None:
        """Unlink first (keepalived: a reader looping on reopen must not find it again),
        then close our end so the reader sees EOF. Synchronous, so a reload can reopen the
        same path at once without a late unlink removing the new FIFO."""
        self._unlink()
        if self._fd != -1:
            os.close(self._fd)
            self._fd = -1

    async def close(self) -> None:
        """Close the FIFO, then stop its script (the script's whole process group)."""
        self.close_fifo()
        task, self._script_task = self._script_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["NotifyFifo", "fifo_line"]
