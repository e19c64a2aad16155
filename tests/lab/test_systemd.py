"""systemd's notify protocol, spoken to a socket the test listens on (as systemd would)."""

from __future__ import annotations

import contextlib
import signal
import socket
import time

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab


def receive_until(sock: socket.socket, wanted: str, within: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(wanted in m for m in got):
            break
    return got


def test_ready_watchdog_reload_stopping(lab, tmp_path):
    r1 = lab.add_node("r1")
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
        conf = keepalived_conf(vrrp_instance(priority=150))
        d = start_daemon(r1, "hakeeper", conf, suffix=".conf", env=env)
        msgs = receive_until(sock, "READY=1", within=10)
        assert any(m.startswith("READY=1") for m in msgs), (msgs, d.log_text())
        # READY comes once the config is applied: the instance exists in the state dump
        assert d.instance("VI_1")["state"] in ("BACKUP", "MASTER")
        # the watchdog is pinged every WATCHDOG_USEC / 2 (0.1 s) from the event loop
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while sock.recv(4096):  # drop what queued up so far
                pass
        # 2 s: ~20 pings; a loaded CI host delays some, none may be missing for long
        pings = [m for m in receive_until(sock, "never", within=2.0) if m == "WATCHDOG=1"]
        assert 10 <= len(pings) <= 25, pings
        d.reload()
        msgs = receive_until(sock, "READY=1", within=5)
        assert "RELOADING=1" in msgs and any(m.startswith("READY=1") for m in msgs), msgs
        d.signal(signal.SIGTERM)
        assert "STOPPING=1" in receive_until(sock, "STOPPING=1", within=5)
        assert wait_for(lambda: not d.alive(), within=5)
        assert d.proc.returncode == 0
