"""What every health-check kind shares: the attempt's outcome and the sockets it opens.

A check kind is `async def check(target) -> Outcome`: one attempt, no retries (the runner
retries). A step that fails raises `CheckFailed(reason)`; `kinds.run_check` turns it (and any
other exception) into a down Outcome, so a kind can stop at the first problem.

Sockets are made here so every kind honours the checker's `bindto`, `bind_port` and
`bind_if` the same way (keepalived's conn_opts: SO_BINDTODEVICE, then bind, then connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl as ssl_module
from dataclasses import dataclass

from hakeeper.check.target import CheckTarget
from hakeeper.config.model import IPAddress

INT32_MAX = 2**31 - 1
# Linux's values; Python 3.11's socket module does not name them
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt: up or down, why, and the weight it asks for (None: leave it)."""

    ok: bool
    detail: str  # short and human: "connected", "HTTP 503 on /health", "timeout after 3s"
    weight: int | None = None  # a dynamic weight (MISC_CHECK misc_dynamic, FILE_CHECK)


class CheckFailed(Exception):
    """A step of an attempt failed; the message is the Outcome's detail."""


def seconds(value: float) -> str:
    """`3s`, `0.5s`: how details name a timeout."""
    return f"{value:g}s"


def host_port(address: IPAddress, port: int | None) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return host if port is None else f"{host}:{port}"


def sockaddr(address: IPAddress, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    if address.version == 6:
        return (str(address), port, 0, 0)
    return (str(address), port)


def family_of(address: IPAddress) -> int:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def os_reason(e: OSError) -> str:
    """`connection refused`, `no route to host`: strerror in lower case, or the exception."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if e.strerror:
        return e.strerror[0].lower() + e.strerror[1:]
    return str(e) or type(e).__name__


def ask_icmp_errors(sock: socket.socket, version: int) -> None:
    """ICMP errors about what this socket sent come back as errors on it (keepalived sets
    IP_RECVERR too): an unreachable fails the attempt at once instead of timing out."""
    if version == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)


def make_socket(
    target: CheckTarget, kind: int, proto: int = 0, *, fwmark: int | None = None
) -> socket.socket:
    """A non-blocking socket towards target.address, bound as the checker says.

    Raises CheckFailed when the binding cannot be honoured (a wrong-family bindto, an
    address not on this host, an unknown interface): a check that cannot leave from where
    it was told to is failed rather than sent from elsewhere."""
    ck = target.checker
    family = family_of(target.address)
    if ck.bindto is not None and ck.bindto.version != target.address.version:
        raise CheckFailed(f"bindto {ck.bindto} is not of the family of {target.address}")
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        if ck.bind_if:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ck.bind_if.encode())
            except OSError as e:
                raise CheckFailed(f"cannot bind to device {ck.bind_if}: {os_reason(e)}") from e
        if fwmark is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, fwmark)
        if ck.bindto is not None or ck.bind_port is not None:
            if ck.bind_port is not None and kind == socket.SOCK_STREAM:
                # a fixed source port is reused attempt after attempt (TIME_WAIT)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            local = str(ck.bindto) if ck.bindto is not None else ""
            try:
                sock.bind((local, ck.bind_port or 0))
            except OSError as e:
                where = host_port(ck.bindto, ck.bind_port) if ck.bindto else f"port {ck.bind_port}"
                raise CheckFailed(f"cannot bind to {where}: {os_reason(e)}") from e
    except BaseException:
        sock.close()
        raise
    return sock


async def connect(sock: socket.socket, target: CheckTarget, port: int, timeout: float) -> None:
    """Connect `sock` within `timeout`; CheckFailed says why not."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, sockaddr(target.address, port))
    except TimeoutError:
        raise CheckFailed(f"timeout connecting after {seconds(timeout)}") from None
    except OSError as e:
        raise CheckFailed(f"connect failed: {os_reason(e)}") from e


def need_port(target: CheckTarget) -> int:
    if target.port is None or not 0 < target.port < 65536:
        raise CheckFailed(f"{target.checker.kind} needs a port (connect_port or the real server's)")
    return target.port


async def open_tcp(target: CheckTarget, *, fwmark: int | None = None) -> socket.socket:
    """A connected TCP socket to the target (bounded by connect_timeout)."""
    port = need_port(target)
    sock = make_socket(target, socket.SOCK_STREAM, fwmark=fwmark)
    try:
        await connect(sock, target, port, target.connect_timeout)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_stream(
    target: CheckTarget,
    *,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    fwmark: int | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (or TLS) stream to the target: connect, then the TLS handshake, each bounded by
    connect_timeout."""
    sock = await open_tcp(target, fwmark=fwmark)
    timeout = target.connect_timeout
    try:
        if ssl is None:
            return await asyncio.open_connection(sock=sock, limit=2**16)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.open_connection(
                    sock=sock,
                    ssl=ssl,
                    server_hostname=server_hostname or "",  # "": no SNI, no name check
                    ssl_handshake_timeout=timeout,
                    limit=2**16,
                )
        except TimeoutError:
            raise CheckFailed(f"timeout in TLS handshake after {seconds(timeout)}") from None
        except (OSError, EOFError) as e:  # ssl.SSLError is an OSError
            raise CheckFailed(f"TLS handshake failed: {tls_reason(e)}") from e
    except BaseException:
        sock.close()
        raise


def tls_reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.lower().replace("_", " ")
    if isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE):
        return os_reason(e)
    return str(e) or type(e).__name__


def close_stream(writer: asyncio.StreamWriter) -> None:
    """Drop the connection now: a check has what it came for and must not linger in a
    TLS close_notify exchange or a slow peer's FIN."""
    with contextlib.suppress(Exception):
        writer.transport.abort()


async def read_some(reader: asyncio.StreamReader, timeout: float, what: str) -> bytes:
    """One read bounded by `timeout` (keepalived's per-read connect_timeout)."""
    try:
        async with asyncio.timeout(timeout):
            return await reader.read(2**16)
    except TimeoutError:
        raise CheckFailed(f"timeout {what} after {seconds(timeout)}") from None
    except OSError as e:
        raise CheckFailed(f"error {what}: {tls_reason(e)}") from e


async def send_all(writer: asyncio.StreamWriter, data: bytes, timeout: float, what: str) -> None:
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError:
        raise CheckFailed(f"timeout sending {what} after {seconds(timeout)}") from None
    except OSError as e:
        raise CheckFailed(f"error sending {what}: {tls_reason(e)}") from e


def clamp_weight(value: int) -> int:
    """keepalived's real_weight(): an effective weight is kept within 0..INT32_MAX."""
    return max(0, min(INT32_MAX, value))
