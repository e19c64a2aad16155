"""Real servers for checker lab tests, and a runner for checks inside a lab node.

    python -m tests.lab.servers http ADDR PORT [--tls CERT KEY]   web server (see PAGES)
    python -m tests.lab.servers hang ADDR PORT                    accepts, never answers
    python -m tests.lab.servers dns ADDR PORT                     SOA of ".", A of www.example
    python -m tests.lab.servers udp-echo ADDR PORT                echoes datagrams
    python -m tests.lab.servers udp-silent ADDR PORT              reads datagrams, never answers
    python -m tests.lab.servers check < specs.json                runs checks, prints results

Every server prints `ready` once it listens, and serves until it is killed. `check` reads a
JSON list of target specs (see `build_target`), runs them all at once with
hakeeper.check.kinds.run_check, and prints a JSON list of {ok, detail, weight, took}.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import sys
import time
from typing import Any

BODY = b"<html><body><h1>real server</h1><p>hakeeper lab</p></body></html>\n"
PAGES = {
    "/": (200, BODY),
    "/health": (200, b"ok\n"),
    "/down": (503, b"maintenance\n"),
    "/missing": (404, b"not found\n"),
}


# -- servers -----------------------------------------------------------------------------


def ready() -> None:
    print("ready", flush=True)


async def http_server(addr: str, port: int, tls: ssl.SSLContext | None) -> None:
    sni: dict[int, str | None] = {}
    if tls is not None:

        def remember(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni[id(sock)] = name

        tls.sni_callback = remember  # type: ignore[assignment]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if not first.isalpha():  # a TLS hello on a plain port: answer as web servers do
                writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                await writer.drain()
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            version = head.split(b"\r\n")[0].split(b" ")[-1]
            if path == "/chunked" and version == b"HTTP/1.1":
                chunks = b"5\r\nhello\r\n7\r\n chunks\r\n0\r\n\r\n"
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
            else:
                if path == "/sni":  # the TLS server name the client sent
                    ssl_object = writer.get_extra_info("ssl_object")
                    name = sni.get(id(ssl_object)) if ssl_object is not None else None
                    code, body = 200, (name or "-").encode()
                else:
                    code, body = PAGES.get(path, (404, b"not found\n"))
                reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
                writer.write(
                    f"HTTP/1.0 {code} {reason}\r\nContent-Type: text/html\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, addr, port, ssl=tls)
    async with server:
        ready()
        await server.serve_forever()


async def hang_server(addr: str, port: int) -> None:
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep it open, say nothing

    server = await asyncio.start_server(handle, addr, port)
    async with server:
        ready()
        await server.serve_forever()


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        for out in self.answer(data):
            self.transport.sendto(out, addr)


def dns_answer(data: bytes) -> list[bytes]:
    """SOA for the root, A 198.18.0.53 for www.example, NXDOMAIN for anything else."""
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    try:
        query = dns.message.from_wire(data)
    except Exception:
        return []
    reply = dns.message.make_response(query)
    q = query.question[0]
    if q.name.to_text() == "." and q.rdtype == dns.rdatatype.SOA:
        soa = "ns.example. admin.example. 1 3600 600 86400 60"
        reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "SOA", soa))
    elif q.name.to_text() == "www.example." and q.rdtype == dns.rdatatype.A:
        reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "198.18.0.53"))
    else:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    return [reply.to_wire()]


async def datagram_server(addr: str, port: int, answer: Any) -> None:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Datagrams(answer), local_addr=(addr, port), family=family
    )
    ready()
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


# -- checks ------------------------------------------------------------------------------


def build_target(spec: dict[str, Any]) -> Any:
    """A CheckTarget from {"kind", "address", "port", "timeout", "checker": {...},
    "urls": [{"path", "digest", "status_code": [[lo, hi]]}], "virtualhost", "delay_loop"}.
    Byte fields (payload, require_reply) are hex; bindto is an address."""
    from hakeeper.check.target import CheckTarget
    from hakeeper.config.lvs_model import Checker, CheckUrl

    fields = dict(spec.get("checker", {}))
    for key in ("payload", "require_reply"):
        if fields.get(key) is not None:
            fields[key] = bytes.fromhex(fields[key])
    if fields.get("bindto"):
        fields["bindto"] = ipaddress.ip_address(fields["bindto"])
    if fields.get("misc_path"):
        fields["misc_path"] = tuple(fields["misc_path"])
    urls = tuple(
        CheckUrl(u["path"], u.get("digest"), tuple(tuple(r) for r in u.get("status_code", ())))
        for u in spec.get("urls", ())
    )
    checker = Checker(spec["kind"], url=urls, **fields)
    port = spec.get("port")
    return CheckTarget(
        key=("lab", spec.get("name", spec["kind"]), 0),
        checker=checker,
        address=ipaddress.ip_address(spec["address"]),
        port=port,
        delay_loop=spec.get("delay_loop", 5.0),
        connect_timeout=spec.get("timeout", 1.0),
        retry=0,
        delay_before_retry=1.0,
        warmup=0.0,
        alpha=False,
        virtualhost=spec.get("virtualhost"),
        misc_timeout=checker.misc_timeout,
    )


async def run_checks(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from hakeeper.check.kinds import run_check

    async def one(spec: dict[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        outcome = await run_check(build_target(spec))
        return {
            "ok": outcome.ok,
            "detail": outcome.detail,
            "weight": outcome.weight,
            "took": round(time.monotonic() - start, 3),
        }

    return list(await asyncio.gather(*(one(s) for s in specs)))


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "check":
        print(json.dumps(asyncio.run(run_checks(json.load(sys.stdin)))))
        return
    addr, port = argv[1], int(argv[2])
    if mode == "http":
        tls = None
        if len(argv) > 3 and argv[3] == "--tls":
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(argv[4], argv[5])
        asyncio.run(http_server(addr, port, tls))
    elif mode == "hang":
        asyncio.run(hang_server(addr, port))
    elif mode == "dns":
        asyncio.run(datagram_server(addr, port, dns_answer))
    elif mode == "udp-echo":
        asyncio.run(datagram_server(addr, port, lambda data: [data]))
    elif mode == "udp-silent":
        asyncio.run(datagram_server(addr, port, lambda data: []))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
