"""Log line format: journald-friendly under systemd, timestamped on a terminal or in a file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import IO

# syslog(3) priorities; journald reads a leading `<N>` on a stream line as the line's level
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def under_journal(env: Mapping[str, str], stream: IO[str]) -> bool:
    """True when `stream` goes to journald: JOURNAL_STREAM names this very stream's
    device:inode (systemd.exec(5)); an inherited variable with stderr redirected elsewhere
    does not count. INVOCATION_ID alone (a unit whose output goes elsewhere, a syslog or a
    file) also means systemd runs us, and the line needs no stamp of ours."""
    value = env.get("JOURNAL_STREAM", "")
    if value:
        dev, _, ino = value.partition(":")
        try:
            st = os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):
            return False
        return (dev, ino) == (str(st.st_dev), str(st.st_ino))
    return bool(env.get("INVOCATION_ID"))


class JournalFormatter(logging.Formatter):
    """`<N>LEVEL message`: no timestamp (the journal stamps each line), level kept as N."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prio = SYSLOG_PRIORITY.get(record.levelno)
        if prio is None:  # a custom level: the nearest standard one at or above it
            prio = next((p for lv, p in sorted(SYSLOG_PRIORITY.items()) if lv >= record.levelno), 2)
        # a multi-line message (a traceback) gets the priority on every line
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines())


def make_formatter(env: Mapping[str, str], stream: IO[str]) -> logging.Formatter:
    if under_journal(env, stream):
        return JournalFormatter()
    return logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(message)s", "%H:%M:%S")


def setup_logging(debug: bool, stream: IO[str], env: Mapping[str, str] | None = None) -> None:
    """Like logging.basicConfig: a handler already on the root logger (a test's) is kept."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if root.handlers:
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(os.environ if env is None else env, stream))
    root.addHandler(handler)
