"""Periodic tracker tasks: spread over their interval (so many trackers never fire at once)
and finished cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import zlib


def phase(name: str, interval: float) -> float:
    """A stable offset in [0, interval) for `name`: the same on every start and reload."""
    return (zlib.crc32(name.encode()) % 1000) / 1000 * interval


async def finish(task: asyncio.Task[None] | None) -> None:
    """Wait for a cancelled tracker task to end."""
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await task
