"""The JSON dump view: the runtime model written to a file for `hakeeperctl` and scripts.

Written atomically after model events and on SIGUSR1 (keepalived's data-dump signal), so a
reader never sees half a file. Events are coalesced into one write per loop turn: a start or
reload of a thousand instances writes the file once, not a thousand times. Counters are as
fresh as the last write; `hakeeperctl` asks for a fresh write with SIGUSR1 before it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile

from hakeeper.state import Event, Runtime

log = logging.getLogger("hakeeper.dump")

DEFAULT_STATE_FILE = "/run/hakeeper/state.json"


class JsonDump:
    def __init__(self, runtime: Runtime, path: str) -> None:
        self.runtime = runtime
        self.path = path
        self._pending: asyncio.Handle | None = None
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        runtime.subscribe(self.on_event)

    def on_event(self, _event: Event) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.runtime.as_dict(), f, indent=1)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("cannot write %s: %s", self.path, e)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
