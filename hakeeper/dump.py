"""The JSON dump view: the runtime model written to a file for `hakeeperctl` and scripts.

Written atomically on every model event and on SIGUSR1 (keepalived's data-dump signal), so a
reader never sees half a file. Counters are as fresh as the last write; `hakeeperctl` asks
for a fresh write with SIGUSR1 before it reads.
"""

from __future__ import annotations

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
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        runtime.subscribe(self.on_event)

    def on_event(self, _event: Event) -> None:
        self.write()

    def write(self) -> None:
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
