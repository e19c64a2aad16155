"""The metrics endpoint: `GET /metrics` over HTTP on the daemon's own event loop.

Why not prometheus-client's start_http_server: it serves from a thread and calls the
collectors there, while the event loop mutates the model (dicts of instances resized by a
reload, trackers computed by the tracking side); a scrape could see half a change or raise.
Here the model is read on the loop, into plain tuples, a hundred instances at a time with
the loop free to send adverts in between (each object is read whole, between two events).

Building the families and the text from those tuples is most of the cost (about 30
samples per instance; ~0.2-0.6 s for 1000 instances on a busy 2-core host) and is done in
a renderer process at nice 10 (render.py), as the checker process runs: in a thread of the
daemon it would hold the GIL, and each of the loop's thousand sendto() calls per 0.1 s
releases the GIL and then waits up to the switch interval (5 ms) to get it back, so
bench/metrics.py saw adverts up to 0.5 s late while a scraper polled. One scrape at a time:
a scraper that hammers the endpoint queues up instead of taking more turns of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from hakeeper.config.model import Metrics
from hakeeper.metrics.collector import ModelCollector, Snapshot
from hakeeper.metrics.render import Renderer, RenderError

log = logging.getLogger("hakeeper.metrics")

# the classic text format every Prometheus reads (prometheus-client's "latest" is 1.0.0,
# for UTF-8 names, which older servers do not know; our names are all legacy-valid)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT = 5.0  # a client that sends no request line in time is dropped
MAX_HEADER = 16384  # bytes of request line and headers


async def read_model(collector: ModelCollector) -> Snapshot:
    """The model's values, read on the loop a part at a time (adverts go out in between)."""
    snap = Snapshot()
    for _ in collector.read_parts(snap):
        await asyncio.sleep(0)
    return snap


class MetricsServer:
    """Listens on the configured addresses; `configure` rebinds on reload."""

    def __init__(self, collector: ModelCollector) -> None:
        self.collector = collector
        self.servers: dict[tuple[str, int], asyncio.Server] = {}
        self._scrape = asyncio.Lock()
        self._binding = asyncio.Lock()  # two quick reloads rebind one after the other
        self.renderer = Renderer()  # started at the first scrape
        self.scrapes = 0

    async def apply(self, config: Metrics | None) -> None:
        """global_defs' `metrics` block, at start and on each reload (None: stop listening).
        An address that cannot be bound is logged; the daemon goes on without it."""
        for error in await self.configure(config.listen if config is not None else ()):
            log.error("%s", error)

    async def configure(self, listen: Iterable[tuple[str, int]]) -> list[str]:
        """Listen on exactly these addresses: keep the ones already bound, bind the new ones,
        close the rest. Returns one message per address that cannot be bound."""
        async with self._binding:
            return await self._configure(list(dict.fromkeys(listen)))

    async def _configure(self, wanted: list[tuple[str, int]]) -> list[str]:
        for where in [w for w in self.servers if w not in wanted]:
            server = self.servers.pop(where)
            server.close()
            await server.wait_closed()
            log.info("metrics: no longer listening on %s", _show(where))
        errors = []
        for where in wanted:
            if where in self.servers:
                continue
            host, port = where
            try:
                self.servers[where] = await asyncio.start_server(
                    self._serve, host, port, reuse_address=True
                )
            except OSError as e:
                errors.append(f"metrics: cannot listen on {_show(where)}: {e.strerror or e}")
                continue
            log.info("metrics: serving http://%s/metrics", _show(where))
        return errors

    async def close(self) -> None:
        await self.configure(())
        self.renderer.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
                return
            if len(head) > MAX_HEADER:
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await _answer(writer, 400, b"bad request\n")
                return
            method, target = parts[0], parts[1]
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                await _answer(writer, 405, b"only GET\n", extra=("Allow: GET, HEAD",))
                return
            if path == "/":
                await _answer(
                    writer, 200, b"hakeeper: metrics at /metrics\n", head_only=method == "HEAD"
                )
                return
            if path != "/metrics":
                await _answer(writer, 404, b"not found: metrics are at /metrics\n")
                return
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            gzipped = "gzip" in headers.get("accept-encoding", "")
            async with self._scrape:
                snap = await read_model(self.collector)
                try:
                    body = await self.renderer.render(snap, gzipped)
                except RenderError:
                    await _answer(writer, 503, b"renderer restarting, try again\n")
                    return
                self.scrapes += 1
            extra = ["Content-Encoding: gzip"] if gzipped else []
            await _answer(writer, 200, body, CONTENT_TYPE, extra=extra, head_only=method == "HEAD")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


async def _answer(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: Iterable[str] = (),
    head_only: bool = False,
) -> None:
    head = [
        f"HTTP/1.1 {status} {REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra,
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(body)
    await writer.drain()


def _show(where: tuple[str, int]) -> str:
    host, port = where
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
