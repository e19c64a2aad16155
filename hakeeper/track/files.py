"""`vrrp_track_file` (keepalived's `track_file`): the integer in a file, times a weight.

keepalived watches the file's directory with inotify; hakeeper polls (1 s by default),
which needs no watch descriptors and sees the same values. The file is read as keepalived's
process_track_file reads it: up to 127 bytes, `strtol(buf, NULL, 0)` (leading blanks, a
sign, 0x hex or 0 octal, then digits; whatever follows is ignored; no digits at all is 0).
A missing, unreadable or empty file is 0. A number outside the 32-bit range is logged and
ignored: the previous value stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable

from hakeeper.config.model import VrrpTrackFile
from hakeeper.track.phase import finish, phase

log = logging.getLogger(__name__)

READ_SIZE = 127  # keepalived's char buf[128]
INT32_MIN = -(2**31)
INT32_MAX_PLUS_1 = 2**31  # keepalived accepts INT32_MAX + 1 (it compares > INT32_MAX + 1)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


class OutOfRange(ValueError):
    pass


def parse_value(text: bytes | str) -> int:
    """strtol(text, NULL, 0): the leading number, 0 when there is none; OutOfRange when
    keepalived would ignore it (ERANGE, or outside INT32_MIN..INT32_MAX+1)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    m = _NUMBER.match(text)
    if m is None:
        return 0
    sign, digits = m.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits, 10)
    if sign == "-":
        value = -value
    if not _LONG_MIN <= value <= _LONG_MAX or not INT32_MIN <= value <= INT32_MAX_PLUS_1:
        raise OutOfRange(f"invalid number {value}")
    return value


def read_value(path: str) -> int | None:
    """The file's value as keepalived reads it; None when it must be ignored."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0  # keepalived: open() failed -> status 0
    try:
        data = os.read(fd, READ_SIZE)
    except OSError:
        data = b""
    finally:
        os.close(fd)
    try:
        return parse_value(data)
    except OutOfRange as e:
        log.info("%s read from %s - ignoring", e, path)
        return None


def init_file(config: VrrpTrackFile) -> None:
    """`init_file [VALUE] [overwrite]`: write VALUE when the file is missing (or always,
    with overwrite) at startup, never on reload (track_file.c track_file_end_handler)."""
    if config.init_file is None:
        return
    exists = os.path.lexists(config.file)
    if exists and not config.init_file_overwrite:
        return
    if exists and not os.path.isfile(config.file):
        log.error("Cannot initialise track file %s - it is not a regular file", config.name)
        return
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(config.file, flags, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(f"{config.init_file}\n")
    except OSError as e:
        log.error("Unable to initialise track file %s: %s", config.name, e.strerror)


class TrackFileWatcher:
    """Polls one file; `on_change(watcher)` when its value changes."""

    def __init__(
        self,
        config: VrrpTrackFile,
        *,
        on_change: Callable[[TrackFileWatcher], None] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.on_change = on_change
        self.poll_interval = poll_interval
        self.value = 0
        self._task: asyncio.Task[None] | None = None

    def initialise(self, *, reload: bool = False) -> None:
        """Apply init_file (not on reload) and take the first reading without reporting."""
        if not reload:
            init_file(self.config)
        value = read_value(self.config.file)
        if value is not None:
            self.value = value

    def poll(self) -> bool:
        """Read the file now; True (and on_change) if the value changed."""
        value = read_value(self.config.file)
        if value is None or value == self.value:
            return False
        log.info("track_file %s: value %d -> %d", self.name, self.value, value)
        self.value = value
        if self.on_change is not None:
            self.on_change(self)
        return True

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._task is None:
            loop = loop or asyncio.get_running_loop()
            self._task = loop.create_task(self._loop(), name=f"track_file {self.name}")

    async def _loop(self) -> None:
        # each file on its own phase of the poll interval (see track/phase.py)
        await asyncio.sleep(phase(self.config.name, self.poll_interval))
        while True:
            await asyncio.sleep(self.poll_interval)
            self.poll()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        self.stop()
        await finish(self._task)
        self._task = None


__all__ = ["TrackFileWatcher", "init_file", "parse_value", "read_value"]
