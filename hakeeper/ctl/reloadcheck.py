"""`hakeeper -t`'s second half: what reloading the checked file would change in the hakeeper
running with it, asked over D-Bus (CheckReload) and printed as `hakeeperctl reload --check`
prints it. A missing daemon, or one running another file, is said plainly: -t still checks
the file on a host where nothing runs yet."""

from __future__ import annotations

import asyncio
import os
import sys

from hakeeper.ctl import render
from hakeeper.ctl.client import EXIT_NOT_RUNNING, Client, CtlError
from hakeeper.dbus.names import ERROR_PREFIX, MANAGER_IFACE, PROPERTIES_IFACE, ROOT_PATH

TIMEOUT = 5.0  # -t must not hang on a bus that does not answer
HEADER = "running hakeeper ({where}): a reload of {path} would apply:"


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


async def _ask(path: str, bus: str, timeout: float) -> tuple[str, list[str] | str]:
    """(where, the change lines) or (where, the file the daemon runs instead)."""
    client = await Client.connect(bus, timeout)
    try:
        (running,) = await client.call(
            ROOT_PATH, PROPERTIES_IFACE, "Get", "ss", [MANAGER_IFACE, "ConfigFile"]
        )
        running_file = str(getattr(running, "value", running))
        if not same_file(path, running_file):
            return client.where, running_file
        (changes,) = await client.manager("CheckReload")
        return client.where, [str(c) for c in changes]
    finally:
        client.close()


def report(path: str, bus: str, timeout: float = TIMEOUT) -> bool:
    """Print what a reload of `path` would change in the running hakeeper (stdout), or why
    there is nothing to compare with. False when the daemon finds the file invalid (its
    message, FILE:LINE included, goes to stderr)."""
    if bus == "none":
        print("nothing to compare with: D-Bus is off (dbus address none)")
        return True
    try:
        where, answer = asyncio.run(_ask(path, bus, timeout))
    except CtlError as e:
        if e.code == EXIT_NOT_RUNNING:
            print(f"nothing to compare with: {e}")
            return True
        if e.name == ERROR_PREFIX + "ConfigInvalid":  # the daemon's FILE:LINE lines
            print(e, file=sys.stderr)
            return False
        print(f"cannot ask the running hakeeper for its reload diff: {e}", file=sys.stderr)
        return True
    if isinstance(answer, str):
        print(f"the running hakeeper reads {answer}, not {path}: nothing to compare with")
        return True
    print(HEADER.format(where=where, path=path))
    print(render.changes(answer))
    return True
