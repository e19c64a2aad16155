"""HTTP_GET and SSL_GET: fetch each url and judge its status code and MD5 digest.

keepalived's behaviour (check_http.c, check_ssl.c, lib/html.c), kept so a digest made for
keepalived still matches:

- one connection per url, urls checked in order; the first failing url fails the attempt;
- `GET <path> HTTP/1.0` (or 1.1 / 1.0 with `Connection: close`, from http_protocol), a
  User-Agent, `Host: <virtualhost>` or the connect address and port (IPv6 in brackets);
- the response header ends at the first CRLFCRLF; the status code is the three digits after
  the first space of the status line; no header end before EOF is "no HTTP response";
- the digest is the MD5 of the body bytes as received (chunked framing is NOT decoded), cut
  at Content-Length when the header gives one;
- SSL_GET: TLS without certificate verification; SNI (enable_sni) names the virtualhost; a
  server closing without close_notify is fine.

Unlike keepalived, which reads until the server closes, the read also ends when the body is
complete (Content-Length reached, or the last chunk and trailer seen): a server that keeps
the connection open despite `Connection: close` is not failed for it. Each step (connect,
handshake, each read) is bounded by connect_timeout, and a whole url by URL_BUDGET of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from dataclasses import dataclass

from hakeeper.check.base import (
    CheckFailed,
    Outcome,
    close_stream,
    host_port,
    open_stream,
    read_some,
    seconds,
    send_all,
)
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import CheckUrl

USER_AGENT = "KeepAliveClient (hakeeper)"  # keepalived's agent name, for servers that filter on it
MAX_HEADER = 65536  # a response header longer than this is refused
MAX_CHUNK_LINE = 4096
URL_BUDGET = 3  # one url (connect, handshake, request, response) within 3 connect_timeouts
_BAD_PATH = re.compile(r"[\x00-\x20\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


def host_header(target: CheckTarget) -> str:
    """keepalived: the virtualhost as it is, else the connect address and port."""
    if target.virtualhost:
        return target.virtualhost
    return host_port(target.address, target.port)


def request_bytes(path: str, host: str, http_protocol: str | None) -> bytes:
    """The GET request keepalived sends for `http_protocol` (1.0 default, 1.1, 1.0C)."""
    if not path or _BAD_PATH.search(path) or _BAD_PATH.search(host):
        raise CheckFailed(f"url path {path!r} cannot be sent")
    proto = http_protocol or "1.0"
    version = "1.1" if proto == "1.1" else "1.0"
    close = "Connection: close\r\n" if proto in ("1.1", "1.0C", "1.0c") else ""
    text = f"GET {path} HTTP/{version}\r\nUser-Agent: {USER_AGENT}\r\n{close}Host: {host}\r\n\r\n"
    return text.encode()  # the config's bytes, as keepalived sends them


def parse_status_code(status_line: bytes) -> int | None:
    """The status code as keepalived's extract_status_code reads it: the three digits after
    the first space. A missing reason phrase (`HTTP/1.1 200`) is accepted too."""
    space = status_line.find(b" ")
    if space < 0:
        return None
    code = status_line[space + 1 : space + 4]
    rest = status_line[space + 4 : space + 5]
    if len(code) != 3 or not code.isdigit() or rest not in (b"", b" ", b"\r"):
        return None
    return int(code)


def _headers(block: bytes) -> list[tuple[str, str]]:
    out = []
    for line in block.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name.strip().decode("latin-1").lower(), value.strip().decode("latin-1")))
    return out


class _Chunks:
    """Follows chunked framing only to see where the body ends; `bad` framing means "read
    until the server closes" (keepalived never looks at it)."""

    def __init__(self) -> None:
        self.state = "size"  # size -> data -> data_crlf -> size ... -> trailer -> done | bad
        self.line = b""
        self.left = 0

    def feed(self, data: bytes) -> None:
        i = 0
        while i < len(data) and self.state not in ("done", "bad"):
            if self.state == "data":
                n = min(self.left, len(data) - i)
                i += n
                self.left -= n
                if self.left == 0:
                    self.state = "data_crlf"
                continue
            end = data.find(b"\n", i)
            if end < 0:
                self.line += data[i:]
                if len(self.line) > MAX_CHUNK_LINE:
                    self.state = "bad"
                return
            line = (self.line + data[i:end]).rstrip(b"\r")
            self.line = b""
            i = end + 1
            self._line(line)

    def _line(self, line: bytes) -> None:
        if self.state == "size":
            m = _HEX.match(line.strip())
            if m is None or len(m.group()) > 16:
                self.state = "bad"
            elif (size := int(m.group(), 16)) == 0:
                self.state = "trailer"
            else:
                self.left, self.state = size, "data"
        elif self.state == "data_crlf":
            self.state = "size" if not line else "bad"
        elif self.state == "trailer" and not line:
            self.state = "done"


@dataclass(frozen=True, slots=True)
class Response:
    """What one GET returned, as the checker judges it."""

    header: bytes | None  # up to the CRLFCRLF; None: the header never ended
    status: int | None  # None: no header, or no readable status code
    content_length: int | None
    digest: str  # MD5 hex of the body bytes (cut at Content-Length)
    body_bytes: int  # body bytes received (all of them, past Content-Length too)
    complete: bool  # the framing said the body was all there before EOF
    body: bytes = b""  # the first `keep_body` bytes, for genhash --verbose


class ResponseParser:
    """Sans-IO: feed it what the socket gave, ask `done`, then `finish()` (also at EOF)."""

    def __init__(self, keep_body: int = 0) -> None:
        self._buf = b""
        self._header: bytes | None = None
        self._status: int | None = None
        self._length: int | None = None
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._digested = 0
        self._received = 0
        self._chunks: _Chunks | None = None
        self._keep = keep_body
        self._kept = bytearray()
        self._no_body = False

    @property
    def header_done(self) -> bool:
        return self._header is not None

    @property
    def done(self) -> bool:
        """The framing says the whole response is here: no need to wait for EOF."""
        if self._header is None:
            return False
        if self._no_body:
            return True
        if self._chunks is not None:
            return self._chunks.state == "done"
        return self._length is not None and self._received >= self._length

    def feed(self, data: bytes) -> None:
        if self._header is None:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER:
                    raise CheckFailed(f"response header over {MAX_HEADER} bytes")
                return
            self._start(self._buf[:end])
            data, self._buf = self._buf[end + 4 :], b""
        self._body(data)

    def _start(self, header: bytes) -> None:
        self._header = header
        status_line = header.split(b"\r\n", 1)[0]
        self._status = parse_status_code(status_line)
        headers = _headers(header)
        lengths = {v for k, v in headers if k == "content-length"}
        if len(lengths) == 1 and (value := lengths.pop()).isdigit():
            self._length = int(value)
        codings = [v.lower() for k, v in headers if k == "transfer-encoding"]
        if codings and codings[-1].split(",")[-1].strip() == "chunked":
            self._chunks = _Chunks()
        self._no_body = self._status in (204, 304)

    def _body(self, data: bytes) -> None:
        if not data:
            return
        self._received += len(data)
        take = data
        if self._length is not None:
            take = data[: max(0, self._length - self._digested)]
        self._md5.update(take)
        self._digested += len(take)
        if len(self._kept) < self._keep:
            self._kept += data[: self._keep - len(self._kept)]
        if self._chunks is not None:
            self._chunks.feed(data)

    def finish(self) -> Response:
        return Response(
            header=self._header,
            status=self._status,
            content_length=self._length,
            digest=self._md5.hexdigest(),
            body_bytes=self._received,
            complete=self.done,
            body=bytes(self._kept),
        )


def judge(url: CheckUrl, response: Response) -> str | None:
    """Why `response` fails `url`, or None when it passes (status first, then digest)."""
    if response.header is None:
        return f"no HTTP response on {url.path}"
    if response.status is None:
        line = response.header.split(b"\r\n", 1)[0][:60].decode("latin-1")
        return f"bad HTTP status line {line!r} on {url.path}"
    if not url.status_ok(response.status):
        return f"HTTP {response.status} on {url.path}"
    if url.digest and response.digest != url.digest.lower():
        return f"digest mismatch on {url.path} (got {response.digest})"
    return None


_tls_context: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """keepalived's SSL_GET: no certificate verification, quiet shutdown accepted."""
    global _tls_context
    if _tls_context is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        _tls_context = ctx
    return _tls_context


def sni_name(target: CheckTarget) -> str | None:
    ck = target.checker
    return target.virtualhost if ck.kind == "SSL_GET" and ck.enable_sni else None


async def fetch(
    target: CheckTarget, url: CheckUrl, *, keep_body: int = 0, fwmark: int | None = None
) -> Response:
    """One GET of `url` on a new connection (TLS for SSL_GET), read to its end."""
    timeout = target.connect_timeout
    request = request_bytes(url.path, host_header(target), target.checker.http_protocol)
    budget = URL_BUDGET * timeout
    try:
        async with asyncio.timeout(budget):
            return await _fetch(target, url, request, keep_body, fwmark)
    except TimeoutError:
        raise CheckFailed(f"timeout fetching {url.path} after {seconds(budget)}") from None


async def _fetch(
    target: CheckTarget, url: CheckUrl, request: bytes, keep_body: int, fwmark: int | None
) -> Response:
    use_tls = target.checker.kind == "SSL_GET"
    reader, writer = await open_stream(
        target,
        ssl=tls_context() if use_tls else None,
        server_hostname=sni_name(target),
        fwmark=fwmark,
    )
    timeout = target.connect_timeout
    try:
        await send_all(writer, request, timeout, f"GET {url.path}")
        parser = ResponseParser(keep_body)
        while not parser.done:
            data = await read_some(reader, timeout, f"reading {url.path}")
            if not data:
                break
            parser.feed(data)
        return parser.finish()
    finally:
        close_stream(writer)


async def check(target: CheckTarget) -> Outcome:
    urls = target.checker.url
    if not urls:
        return Outcome(True, "no url to check")  # keepalived: up without checking
    passed = []
    for url in urls:
        response = await fetch(target, url)
        problem = judge(url, response)
        if problem is not None:
            return Outcome(False, problem)
        note = " (digest ok)" if url.digest else ""
        passed.append(f"HTTP {response.status} on {url.path}{note}")
    return Outcome(True, passed[0] if len(passed) == 1 else f"{len(passed)} urls ok")
