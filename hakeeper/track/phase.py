"""Spread periodic tracker work over its interval, so many trackers never fire at once."""

from __future__ import annotations

import zlib


def phase(name: str, interval: float) -> float:
    """A stable offset in [0, interval) for `name`: the same on every start and reload."""
    return (zlib.crc32(name.encode()) % 1000) / 1000 * interval
