"""HTTP_GET / SSL_GET: the request sent, the response parsed and judged, against real local
servers (asyncio on 127.0.0.1; TLS with a certificate made by openssl for the test)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Awaitable, Callable

import pytest

from hakeeper.check import http
from hakeeper.check.base import CheckFailed, Outcome
from hakeeper.check.http import ResponseParser, judge, parse_status_code, request_bytes
from hakeeper.check.kinds import run_check
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import Checker, CheckUrl
from tests.unit.checkhelp import make_target, self_signed

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def target(
    port: int,
    *urls: CheckUrl,
    kind: str = "HTTP_GET",
    timeout: float = 1.0,
    address: str = "127.0.0.1",
    virtualhost: str | None = None,
    **kw: object,
) -> CheckTarget:
    checker = Checker(kind, url=urls or (CheckUrl("/"),), **kw)  # type: ignore[arg-type]
    return make_target(
        checker, port, connect_timeout=timeout, address=address, virtualhost=virtualhost
    )


async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    async def quietly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up, or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(quietly, "127.0.0.1", 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1]


def reply(raw: bytes, *, keep_open: float = 0.0) -> tuple[Handler, list[bytes]]:
    """A server answering every request with `raw`; it records the requests."""
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(raw)
        await writer.drain()
        await asyncio.sleep(keep_open)

    return handler, requests


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and never answers (until the test ends)."""
    await asyncio.sleep(5)


def check_against(handler: Handler, *urls: CheckUrl, **kw: object) -> Outcome:
    async def main() -> Outcome:
        server, port = await serve(handler)
        async with server:
            return await run_check(target(port, *urls, **kw))  # type: ignore[arg-type]

    return asyncio.run(main())


# -- the request ------------------------------------------------------------------------


def test_request_is_keepalived_shaped_http10_by_default() -> None:
    req = request_bytes("/health", "198.18.1.10:80", None)
    assert req.startswith(b"GET /health HTTP/1.0\r\n")
    assert b"\r\nUser-Agent: KeepAliveClient" in req
    assert b"Connection:" not in req
    assert req.endswith(b"\r\nHost: 198.18.1.10:80\r\n\r\n")


@pytest.mark.parametrize(("proto", "line", "close"), [
    ("1.0", b"HTTP/1.0", False), ("1.1", b"HTTP/1.1", True), ("1.0C", b"HTTP/1.0", True),
    ("1.0c", b"HTTP/1.0", True),
])  # fmt: skip
def test_request_http_protocol(proto: str, line: bytes, close: bool) -> None:
    req = request_bytes("/", "h", proto)
    assert req.split(b"\r\n")[0] == b"GET / " + line
    assert (b"Connection: close\r\n" in req) == close


def test_host_header_is_virtualhost_or_address_and_port() -> None:
    assert http.host_header(target(80)) == "127.0.0.1:80"
    assert http.host_header(target(8080, address="fd00:198:18::10")) == "[fd00:198:18::10]:8080"
    assert http.host_header(target(80, virtualhost="www.example")) == "www.example"


def test_path_with_whitespace_is_refused() -> None:
    with pytest.raises(CheckFailed, match="cannot be sent"):
        request_bytes("/a b", "h", None)
    with pytest.raises(CheckFailed):
        request_bytes("/a\r\nX-Injected: 1", "h", None)


# -- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "code"), [
    (b"HTTP/1.1 200 OK", 200), (b"HTTP/1.0 503 Service Unavailable", 503),
    (b"HTTP/1.1 204", 204), (b"HTTP/1.1 200\r", 200), (b"HTTP/1.1 20 OK", None),
    (b"HTTP/1.1 2000 OK", None), (b"HTTP/1.1  200 OK", None), (b"garbage", None),
    (b"HTTP/1.1 abc OK", None), (b"", None),
])  # fmt: skip
def test_status_code_as_keepalived_reads_it(line: bytes, code: int | None) -> None:
    assert parse_status_code(line) == code


def parse(*pieces: bytes, keep: int = 0) -> tuple[ResponseParser, http.Response]:
    p = ResponseParser(keep)
    for piece in pieces:
        p.feed(piece)
    return p, p.finish()


def test_digest_is_over_the_body_cut_at_content_length() -> None:
    p, r = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
    assert p.done and r.complete
    assert r.status == 200 and r.content_length == 5
    assert r.digest == md5(b"hello")
    assert r.body_bytes == 10  # everything received is counted, only 5 digested


def test_header_and_body_split_across_reads() -> None:
    raw = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n" + b"0123456789" * 100
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    p, r = parse(*pieces)
    assert not p.done  # no Content-Length: the body ends at EOF only
    assert r.status == 200 and r.digest == md5(b"0123456789" * 100)


def test_content_length_is_case_insensitive() -> None:
    p, r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc")
    assert p.done and r.digest == md5(b"abc")


def test_chunked_digest_is_over_the_raw_bytes_like_keepalived() -> None:
    body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    p, r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", body[:9], body[9:])
    assert p.done  # the last chunk and the trailer end the body: no wait for EOF
    assert r.digest == md5(body)


def test_chunked_end_seen_byte_by_byte() -> None:
    body = b"3\r\nabc\r\n0\r\n\r\n"
    p = ResponseParser()
    p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for i in range(len(body)):
        assert not p.done
        p.feed(body[i : i + 1])
    assert p.done


def test_bad_chunked_framing_reads_to_eof() -> None:
    p, r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello0\r\n\r\n")
    assert not p.done and r.status == 200


def test_no_body_statuses_are_done_at_header_end() -> None:
    p, r = parse(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert p.done and r.digest == md5(b"")


def test_oversized_header_is_refused() -> None:
    p = ResponseParser()
    with pytest.raises(CheckFailed, match="header over"):
        p.feed(b"HTTP/1.0 200 OK\r\n" + b"X: y\r\n" * 20000)


def test_no_header_end_means_no_response() -> None:
    _, r = parse(b"HTTP/1.0 200 OK\r\nServer: x\r\n")
    assert r.header is None and r.status is None
    assert judge(CheckUrl("/"), r) == "no HTTP response on /"


def test_judge_status_then_digest() -> None:
    _, ok = parse(b"HTTP/1.0 200 OK\r\n\r\nbody")
    _, err = parse(b"HTTP/1.0 503 Unavailable\r\n\r\nbody")
    _, bad = parse(b"HTTP/1.0 2x0 OK\r\n\r\nbody")
    assert judge(CheckUrl("/"), ok) is None
    assert judge(CheckUrl("/", digest=md5(b"body")), ok) is None
    assert judge(CheckUrl("/", digest=md5(b"body").upper()), ok) is None
    assert judge(CheckUrl("/", digest=md5(b"other")), ok) == (
        f"digest mismatch on / (got {md5(b'body')})"
    )
    assert judge(CheckUrl("/h"), err) == "HTTP 503 on /h"
    assert judge(CheckUrl("/h", status_code=((500, 503),)), err) is None
    assert judge(CheckUrl("/"), bad) == "bad HTTP status line 'HTTP/1.0 2x0 OK' on /"


# -- against real servers ---------------------------------------------------------------


def test_up_on_200_and_request_names_the_host() -> None:
    handler, requests = reply(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    outcome = check_against(handler, CheckUrl("/health"), virtualhost="www.example")
    assert outcome == Outcome(True, "HTTP 200 on /health")
    assert requests[0].startswith(b"GET /health HTTP/1.0\r\n")
    assert b"\r\nHost: www.example\r\n" in requests[0]


def test_down_on_503() -> None:
    handler, _ = reply(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy")
    assert check_against(handler, CheckUrl("/health")) == Outcome(False, "HTTP 503 on /health")


def test_digest_match_and_mismatch() -> None:
    handler, _ = reply(b"HTTP/1.0 200 OK\r\n\r\n<html>hi</html>")
    good = check_against(handler, CheckUrl("/", digest=md5(b"<html>hi</html>")))
    assert good == Outcome(True, "HTTP 200 on / (digest ok)")
    bad = check_against(handler, CheckUrl("/", digest=md5(b"something else")))
    assert not bad.ok and bad.detail.startswith("digest mismatch on /")


def test_every_url_must_pass_in_order() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
        code = b"200 OK" if line != b"/b" else b"500 Oops"
        writer.write(b"HTTP/1.0 " + code + b"\r\n\r\n" + line)
        await writer.drain()
        writer.close()

    assert check_against(handler, CheckUrl("/a"), CheckUrl("/c")) == Outcome(True, "2 urls ok")
    assert check_against(handler, CheckUrl("/a"), CheckUrl("/b"), CheckUrl("/c")) == Outcome(
        False, "HTTP 500 on /b"
    )


def test_server_closing_without_answer_is_down() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    assert check_against(handler) == Outcome(False, "no HTTP response on /")


def test_keep_alive_server_is_not_waited_for() -> None:
    """A server ignoring `Connection: close` (HTTP/1.1): the body length ends the read."""
    handler, _ = reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", keep_open=5)
    start = time.monotonic()
    assert check_against(handler, http_protocol="1.1").ok
    assert time.monotonic() - start < 0.5


def test_silent_server_times_out_within_the_connect_timeout() -> None:
    start = time.monotonic()
    outcome = check_against(silent, timeout=0.3)
    assert outcome == Outcome(False, "timeout reading / after 0.3s")
    assert time.monotonic() - start < 1.0


def test_slow_drip_is_cut_by_the_url_budget() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
        for _ in range(100):
            writer.write(b".")  # each byte well inside the read timeout
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.close()

    start = time.monotonic()
    outcome = check_against(handler, timeout=0.2)
    assert outcome == Outcome(False, "timeout fetching / after 0.6s")
    assert time.monotonic() - start < 1.2


def test_connection_refused_is_down() -> None:
    async def main() -> Outcome:
        server, port = await serve(reply(b"")[0])
        server.close()
        await server.wait_closed()
        return await run_check(target(port))

    assert asyncio.run(main()) == Outcome(False, "connect failed: connection refused")


# -- SSL_GET ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A self-signed certificate, made by openssl now."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "rs.example")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def tls_check(
    ctx: ssl.SSLContext, handler: Handler, urls: tuple[CheckUrl, ...] = (), **kw: object
) -> tuple[Outcome, list[str]]:
    names: list[str] = []
    ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc]

    async def main() -> Outcome:
        server, port = await serve(handler, tls=ctx)
        async with server:
            return await run_check(target(port, *urls, kind="SSL_GET", **kw))  # type: ignore[arg-type]

    return asyncio.run(main()), names


def test_ssl_get_with_self_signed_certificate(server_tls: ssl.SSLContext) -> None:
    handler, requests = reply(b"HTTP/1.0 200 OK\r\n\r\nsecure")
    outcome, names = tls_check(server_tls, handler, urls=(CheckUrl("/", digest=md5(b"secure")),))
    assert outcome == Outcome(True, "HTTP 200 on / (digest ok)")
    assert names == [None]  # no SNI unless enable_sni
    assert requests


def test_ssl_get_sends_sni_when_enabled(server_tls: ssl.SSLContext) -> None:
    handler, requests = reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", keep_open=5)
    outcome, names = tls_check(
        server_tls, handler, virtualhost="www.example", enable_sni=True, http_protocol="1.1"
    )
    assert outcome.ok
    assert names == ["www.example"]
    assert b"Host: www.example\r\n" in requests[0]


def test_ssl_get_503_is_down(server_tls: ssl.SSLContext) -> None:
    handler, _ = reply(b"HTTP/1.0 503 Down\r\n\r\n")
    outcome, _ = tls_check(server_tls, handler)
    assert outcome == Outcome(False, "HTTP 503 on /")


def test_ssl_get_against_plain_http_fails_the_handshake() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")  # a plain server's answer to a hello
        await writer.drain()
        writer.close()

    outcome = check_against(handler, kind="SSL_GET")
    assert not outcome.ok and outcome.detail.startswith("TLS handshake failed"), outcome


def test_ssl_get_against_a_silent_server_times_out_in_the_handshake() -> None:
    outcome = check_against(silent, kind="SSL_GET", timeout=0.3)
    assert outcome == Outcome(False, "timeout in TLS handshake after 0.3s")
