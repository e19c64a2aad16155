"""hakeeper-genhash: the MD5 digest of a web page, as HTTP_GET / SSL_GET will compute it.

keepalived's genhash, same options: `-s ADDRESS -p PORT -u PATH [-S] [-I] [-V HOST]
[-P 1.0|1.0c|1.1] [-t SECONDS] [-m FWMARK] [-v]`. The page is fetched by the checker's own
code (hakeeper.check.http.fetch), so the digest printed is exactly the one a `digest` line
must hold. The last line of the output is the digest alone, as keepalived prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import time
from collections.abc import Sequence

from hakeeper.check.base import CheckFailed
from hakeeper.check.http import Response, fetch, host_header, request_bytes
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import DEFAULT_CONNECT_TIMEOUT, Checker, CheckUrl

VERBOSE_BODY = 65536  # body bytes shown with --verbose


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: {message}\n")


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(text)
    return port


def _protocol(text: str) -> str:
    if text not in ("1.0", "1.0c", "1.0C", "1.1"):
        raise ValueError(text)
    return text


def _timeout(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


_port.__name__ = "port"
_protocol.__name__ = "protocol"
_timeout.__name__ = "timeout"


def build_parser(prog: str = "hakeeper-genhash") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Print the MD5 digest of a web page, for an HTTP_GET/SSL_GET `digest`.",
    )
    p.add_argument(
        "-s", "--server", required=True, type=ipaddress.ip_address, help="the server's IP address"
    )
    p.add_argument("-p", "--port", required=True, type=_port, help="the server's port")
    p.add_argument("-u", "--url", required=True, help="the path to fetch, e.g. /index.html")
    p.add_argument("-S", "--use-ssl", action="store_true", help="use TLS (SSL_GET)")
    p.add_argument(
        "-I", "--use-sni", action="store_true", help="send the virtualhost (-V) as TLS SNI"
    )
    p.add_argument("-V", "--use-virtualhost", metavar="HOST", help="the Host header to send")
    p.add_argument(
        "-P",
        "--protocol",
        type=_protocol,
        default="1.0",
        help="HTTP protocol: 1.0 (default), 1.0c (1.0 with Connection: close), 1.1",
    )
    p.add_argument(
        "-t",
        "--timeout",
        type=_timeout,
        default=DEFAULT_CONNECT_TIMEOUT,
        help=f"connect and read timeout in seconds (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    p.add_argument("-m", "--fwmark", type=int, help="set this firewall mark on the connection")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the request, the response header and the body",
    )
    return p


def target_of(args: argparse.Namespace) -> CheckTarget:
    """The same target an HTTP_GET / SSL_GET with this one url would have."""
    checker = Checker(
        kind="SSL_GET" if args.use_ssl else "HTTP_GET",
        url=(CheckUrl(path=args.url),),
        virtualhost=args.use_virtualhost,
        http_protocol=args.protocol,
        enable_sni=args.use_sni,
    )
    return CheckTarget(
        key=("genhash", "genhash", 0),
        checker=checker,
        address=args.server,
        port=args.port,
        delay_loop=args.timeout,
        connect_timeout=args.timeout,
        retry=0,
        delay_before_retry=0.0,
        warmup=0.0,
        alpha=False,
        virtualhost=args.use_virtualhost,
    )


def _show(target: CheckTarget, response: Response, elapsed: float) -> None:
    request = request_bytes(
        target.checker.url[0].path, host_header(target), target.checker.http_protocol
    )
    print("---- request ----")
    print(request.decode("utf-8", "replace").rstrip("\r\n"))
    print("---- response header ----")
    print((response.header or b"").decode("latin-1"))
    length = response.content_length
    declared = f", Content-Length {length}" if length is not None else ""
    print(f"---- body: {response.body_bytes} bytes{declared} ----")
    sys.stdout.write(response.body.decode("utf-8", "replace"))
    if response.body_bytes > len(response.body):
        print(f"\n[... {response.body_bytes - len(response.body)} more bytes]")
    print(f"\n---- fetched in {elapsed * 1000:.1f} ms ----")


def main(argv: Sequence[str] | None = None, prog: str = "hakeeper-genhash") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already reported
        return e.code if isinstance(e.code, int) else 1
    target = target_of(args)
    start = time.monotonic()
    try:
        response = asyncio.run(
            fetch(
                target,
                target.checker.url[0],
                keep_body=VERBOSE_BODY if args.verbose else 0,
                fwmark=args.fwmark,
            )
        )
    except (CheckFailed, OSError) as e:  # OSError: -m without the right to set a mark
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    if response.header is None:
        print(f"{prog}: no HTTP response from {args.server} port {args.port}", file=sys.stderr)
        return 1
    if args.verbose:
        _show(target, response, time.monotonic() - start)
    if response.status is None or not 200 <= response.status <= 299:
        # keepalived prints the digest whatever the status; say so, the checker would fail
        print(
            f"{prog}: warning: HTTP status {response.status} (HTTP_GET wants 2xx by default)",
            file=sys.stderr,
        )
    print(response.digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
