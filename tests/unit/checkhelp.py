"""Shared by the checker tests: a CheckTarget factory and small async test helpers."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hakeeper.check.sched import CheckStatus
from hakeeper.check.target import CheckKey, CheckTarget
from hakeeper.config.lvs_model import Checker

LOCAL = ipaddress.ip_address("127.0.0.1")


def make_target(checker: Checker, port: int | None, **kw: Any) -> CheckTarget:
    """A target on 127.0.0.1 with one attempt per round (retry 0) unless `kw` says else;
    `address` may be given as text."""
    fields: dict[str, Any] = dict(
        key=("vs", "rs", 0),
        checker=checker,
        address=LOCAL,
        port=port,
        delay_loop=5.0,
        connect_timeout=1.0,
        retry=0,
        delay_before_retry=1.0,
        warmup=0.0,
        alpha=False,
    )
    fields.update(kw)
    fields["address"] = ipaddress.ip_address(fields["address"])
    return CheckTarget(**fields)


class Recorder:
    """An on_change callback that remembers every change."""

    def __init__(self) -> None:
        self.changes: list[tuple[CheckKey, CheckStatus]] = []

    def __call__(self, key: CheckKey, status: CheckStatus) -> None:
        self.changes.append((key, status))

    def ups(self, key: CheckKey) -> list[bool]:
        return [s.up for k, s in self.changes if k == key]


async def until(cond: Callable[[], bool], timeout: float = 3.0, step: float = 0.01) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made by openssl now: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
