"""The checker worker process: `python -m hakeeper.check.worker`.

keepalived runs its checkers in a child process; so does hakeeper, so that a thousand checks,
a stuck check or a crash in one never delays a VRRP advert in the daemon. The parent
(hakeeper.check.process) sends the full target set as one JSON line on stdin; this process
runs them in a CheckRunner and answers on stdout with a line per change, a heartbeat every
HEARTBEAT_INTERVAL and a snapshot of every status each SNAPSHOT_INTERVAL (hakeeper.check.wire).
It exits when stdin reaches EOF, so it never outlives the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from typing import Any

from hakeeper.check import wire
from hakeeper.check.runner import CheckFn, CheckRunner
from hakeeper.check.sched import CheckStatus
from hakeeper.check.target import CheckKey

log = logging.getLogger("hakeeper.check")

PROCESS_NAME = b"hakeeper-check"
HEARTBEAT_INTERVAL = 0.5
SNAPSHOT_EVERY = 2  # heartbeats: a status snapshot about once a second, unless told
# checks yield the CPU to the daemon (VRRP adverts) when the host is busy
NICE = 10
LINE_LIMIT = 1 << 26  # a target set of thousands of checks is one line
MAX_BACKLOG = 1 << 22  # unread output beyond which heartbeats and snapshots wait
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


class Worker:
    """Reads target sets, runs them, reports. `out` is where the lines go (stdout's pipe)."""

    def __init__(
        self,
        out: asyncio.WriteTransport,
        *,
        check: CheckFn | None = None,
        lvs_backend: str | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        counters_every: int = 60,
    ) -> None:
        self._out = out
        self._snapshot_every = max(1, snapshot_every)
        self._counters_every = max(1, counters_every)
        self.runner = CheckRunner(self._on_change, check=check)
        self.bad_input = 0
        self._lvs_backend = lvs_backend
        self._backend: Any = None
        self._reading = False

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self._send({"t": "hello", "pid": os.getpid()})
        beat = asyncio.create_task(self._beat(), name="check-heartbeat")
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than LINE_LIMIT: dropped by the reader
                    self._bad("a line longer than the limit")
                    continue
                if not line:
                    log.debug("stdin closed: the daemon is gone or stopping us")
                    return
                self.handle(line)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await self.runner.stop()

    def handle(self, line: bytes) -> None:
        try:
            msg = wire.loads(line)
            if msg["t"] != "targets":
                raise wire.WireError(f"unknown message {msg['t']!r}")
            targets, seed, errors = wire.decode_targets_message(msg)
        except wire.WireError as e:
            self._bad(str(e))
            return
        for err in errors:
            self._bad(err)
        try:
            self.runner.update(targets, seed=seed)
        except Exception:  # a bug here must not become a crash loop
            log.exception("checker process: cannot take the new target set")
            return
        log.debug("running %d check(s)", len(targets))
        self._snapshot()

    def _on_change(self, key: CheckKey, status: CheckStatus) -> None:
        self._send({"t": "change", "row": wire.status_row(key, status)})

    async def _beat(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            n += 1
            if self._out.get_write_buffer_size() > MAX_BACKLOG:
                continue  # the daemon is not reading: do not pile snapshots up
            if n % self._snapshot_every == 0:
                self._snapshot()
            else:
                self._send({"t": "hb"})
            if (
                self._lvs_backend is not None
                and n % self._counters_every == 1
                and not self._reading
            ):
                self._reading = True
                task = asyncio.create_task(self._counters())
                task.add_done_callback(lambda _t: setattr(self, "_reading", False))

    async def _counters(self) -> None:
        """One `counters` line: [service, dest address or null, dest port, conns, inpkts,
        outpkts, inbytes, outbytes] per row."""
        from hakeeper.lvs.backend import BackendError, select_backend

        try:
            if self._backend is None:
                self._backend = select_backend(self._lvs_backend or "auto")
            table = await self._backend.counters()
        except BackendError as e:
            log.warning("checker process: LVS counters unreadable: %s", e)
            return
        rows = [
            [str(skey), dkey.address if dkey else None, dkey.port if dkey else None,
             c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]
            for (skey, dkey), c in table.items()
        ]  # fmt: skip
        self._send({"t": "counters", "rows": rows})

    def _snapshot(self) -> None:
        counters = {**self.runner.counters(), "bad_input": self.bad_input}
        rows = [wire.status_row(k, s) for k, s in self.runner.statuses().items()]
        self._send({"t": "statuses", "rows": rows, "counters": counters})

    def _send(self, msg: dict[str, Any]) -> None:
        if not self._out.is_closing():
            self._out.write(wire.dumps(msg))

    def _bad(self, why: str) -> None:
        self.bad_input += 1
        log.error("checker process: bad input from the daemon: %s", why)


def _prctl(option: int, arg: int | bytes) -> None:
    """Best effort: a name in ps/top, and death with the daemon even if stdin stays open."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _private_stdio() -> tuple[int, int]:
    """Keep the pipes to the daemon on private descriptors; point 0 at /dev/null and 1 at
    stderr, so a check script neither reads our commands nor writes into our replies."""
    rfd, wfd = os.dup(0), os.dup(1)  # os.dup: not inherited by children
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return rfd, wfd


async def amain(
    lvs_backend: str | None = None, snapshot_every: int = SNAPSHOT_EVERY, counters_every: int = 60
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rfd, wfd = _private_stdio()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(rfd, "rb", buffering=0)
    )
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(wfd, "wb", buffering=0))
    worker = Worker(
        out,  # type: ignore[arg-type]
        lvs_backend=lvs_backend,
        snapshot_every=snapshot_every,
        counters_every=counters_every,
    )
    serve = asyncio.create_task(worker.serve(reader))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serve, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not serve.done():
        serve.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serve
    out.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hakeeper.check.worker")
    p.add_argument("--debug", action="store_true", help="log at debug level")
    p.add_argument("--parent", type=int, help="exit at once unless this is our parent's PID")
    p.add_argument("--lvs-backend", help="also report this LVS backend's counters")
    p.add_argument("--counters-interval", type=float, default=30.0,
                   help="seconds between two readings of the LVS counters")  # fmt: skip
    p.add_argument("--snapshot-interval", type=float, default=SNAPSHOT_EVERY * HEARTBEAT_INTERVAL,
                   help="seconds between status snapshots")  # fmt: skip
    args = p.parse_args(argv)
    _prctl(PR_SET_NAME, PROCESS_NAME)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if args.parent is not None and os.getppid() != args.parent:
        return 0  # the daemon died before PR_SET_PDEATHSIG was in place
    fmt = "%(levelname)s %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s.%(msecs)03d " + fmt
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format=fmt,
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the daemon's reload is not for us
    with contextlib.suppress(OSError):
        os.nice(NICE)
    every = round(args.snapshot_interval / HEARTBEAT_INTERVAL)
    counters = round(args.counters_interval / HEARTBEAT_INTERVAL)
    return asyncio.run(amain(args.lvs_backend, every, counters))


if __name__ == "__main__":
    sys.exit(main())
