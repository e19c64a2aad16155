"""The JSON dump view: the runtime model written to a file for `hakeeperctl` and scripts.

Written atomically after model events and on SIGUSR1 (keepalived's data-dump signal), so a
reader never sees half a file. Events are coalesced: at most one event-driven write per
MIN_INTERVAL, so a start or reload of a thousand instances, or a thousand real servers going
down one after the other, costs the loop a few writes, not thousands (a dump of 1000 real
servers takes milliseconds of the loop that sends adverts). Compact JSON, written by the C
encoder. Counters are as fresh as the last write; `hakeeperctl` asks for a fresh write with
SIGUSR1 (answered at once) before it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time

from hakeeper.state import Event, Runtime

log = logging.getLogger("hakeeper.dump")

DEFAULT_STATE_FILE = "/run/hakeeper/state.json"
MIN_INTERVAL = 1.0  # seconds between two writes caused by model events


class JsonDump:
    def __init__(self, runtime: Runtime, path: str) -> None:
        self.runtime = runtime
        self.path = path
        self._pending: asyncio.Handle | None = None
        self._last = float("-inf")  # time.monotonic() of the last write
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        runtime.subscribe(self.on_event)

    def on_event(self, _event: Event) -> None:
        if self._pending is None:
            delay = max(0.0, self._last + MIN_INTERVAL - time.monotonic())
            self._pending = asyncio.get_running_loop().call_later(delay, self.write)

    def write(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._last = time.monotonic()
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.runtime.as_dict(), separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("cannot write %s: %s", self.path, e)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
