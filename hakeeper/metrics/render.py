"""The renderer process: turns a scrape's snapshot into exposition text, away from the loop.

Building ~30 samples per instance with prometheus-client is the costly part of a scrape; in a
thread of the daemon it would hold the GIL against the event loop (see server.py). So the
daemon starts `python -m hakeeper.metrics.render --parent PID` at the first scrape, at nice
10 like the checker process, and keeps it. Frames on its stdin/stdout: a request is a 4-byte
length, a gzip flag byte and the snapshot as JSON (plain values only); the answer is a 4-byte
length and the body. It dies with the daemon (PR_SET_PDEATHSIG, and EOF on stdin).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import gzip
import json
import logging
import os
import signal
import struct
import sys
from pathlib import Path

import hakeeper
from hakeeper.metrics.collector import Snapshot

log = logging.getLogger("hakeeper.metrics")

NICE = 10
RENDER_TIMEOUT = 30.0  # s: a renderer that takes longer is killed and replaced
HEAD = struct.Struct("!IB")  # request: length, gzip flag
LENGTH = struct.Struct("!I")  # answer: length
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


class RenderError(Exception):
    """The renderer died or hung; the scrape is answered 503 and a new one starts next time."""


def render(snap: Snapshot, gzipped: bool) -> bytes:
    """The exposition text of one snapshot."""
    from prometheus_client.exposition import generate_latest

    from hakeeper.metrics.collector import families

    class Frozen:  # generate_latest wants a registry: anything with collect()
        def collect(self):  # type: ignore[no-untyped-def]
            return families(snap)

    body = generate_latest(Frozen())  # type: ignore[arg-type]
    return gzip.compress(body, compresslevel=1) if gzipped else body


def encode(snap: Snapshot, gzipped: bool) -> bytes:
    payload = json.dumps(
        {f.name: getattr(snap, f.name) for f in dataclasses.fields(snap)}, separators=(",", ":")
    ).encode()
    return HEAD.pack(len(payload), gzipped) + payload


def decode(payload: bytes) -> Snapshot:
    return Snapshot(**json.loads(payload))


class Renderer:
    """The daemon's side: one child, one request at a time (the server serialises scrapes)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def render(self, snap: Snapshot, gzipped: bool) -> bytes:
        frame = encode(snap, gzipped)
        try:
            async with asyncio.timeout(RENDER_TIMEOUT):
                proc = await self._running()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(frame)
                await proc.stdin.drain()
                (length,) = LENGTH.unpack(await proc.stdout.readexactly(LENGTH.size))
                return await proc.stdout.readexactly(length)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as e:
            why = "did not answer in time" if isinstance(e, TimeoutError) else "died"
            log.warning("metrics: the renderer process %s; starting another next scrape", why)
            self.stop()
            raise RenderError(why) from None

    async def _running(self) -> asyncio.subprocess.Process:
        if self.proc is not None and self.proc.returncode is None:
            return self.proc
        argv = [sys.executable, "-m", "hakeeper.metrics.render", "--parent", str(os.getpid())]
        env = dict(os.environ)  # this copy of hakeeper first on the path, as the daemon runs
        root = str(Path(hakeeper.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # the daemon's terminal signals are not for it
            env=env,
        )
        self.starts += 1
        return self.proc

    def stop(self) -> None:
        """End the child (by its PID); it is reaped by asyncio's child watcher."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


def _prctl(option: int, arg: int | bytes) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(option, arg, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hakeeper.metrics.render")
    p.add_argument("--parent", type=int, help="exit at once unless this is our parent's PID")
    args = p.parse_args(argv)
    _prctl(PR_SET_NAME, b"hakeeper-metric")
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if args.parent is not None and os.getppid() != args.parent:
        return 0  # the daemon died before PR_SET_PDEATHSIG was in place
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(HEAD.size)
        if len(head) < HEAD.size:
            return 0  # EOF: the daemon closed the pipe
        length, gzipped = HEAD.unpack(head)
        body = render(decode(stdin.read(length)), bool(gzipped))
        stdout.write(LENGTH.pack(len(body)) + body)
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
