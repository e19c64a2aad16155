"""Real daemons in lab nodes: hakeeper and keepalived, started and stopped by PID.

Used by the lab tests, the demo and the benchmarks, so all three drive the same thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Daemon:
    """One daemon process in one node; its files live in a private directory."""

    node: Any
    kind: str  # "hakeeper" or "keepalived"
    config: Path
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None  # extra environment (NOTIFY_SOCKET...)
    # keepalived without -l -D: at a thousand instances its per-packet log lines to the
    # console cost more than VRRP itself, which would skew a benchmark against it
    quiet: bool = False
    bus: str | None = None  # D-Bus address for hakeeper's API; None: D-Bus off
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.kind}.log"

    @property
    def pid_file(self) -> Path:
        return self.workdir / f"{self.kind}.pid"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    def start(self) -> Daemon:
        if self.kind == "hakeeper":
            argv = [
                str(VENV_BIN / "hakeeper"),
                "-f", str(self.config),
                "--pid-file", str(self.pid_file),
                "--state-file", str(self.state_file),
                "--dbus-address", self.bus or "none",
            ]  # fmt: skip
        else:
            # keepalived needs its own pid files per instance of it, and -n to stay in front
            argv = [
                "keepalived", "-n", *(() if self.quiet else ("-l", "-D")), "-P",
                "-f", str(self.config),
                "-p", str(self.workdir / "keepalived.pid"),
                "-r", str(self.workdir / "vrrp.pid"),
                "-c", str(self.workdir / "checkers.pid"),
            ]  # fmt: skip
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        try:
            env = {**os.environ, **self.env} if self.env else None
            self.proc = self.node.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            out.close()
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Graceful stop (SIGTERM), waited for; SIGKILL if it hangs."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait(timeout)

    def kill(self) -> None:
        """Hard death (SIGKILL to the process group: keepalived has children)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        self.signal(signal.SIGHUP)

    def state(self) -> dict[str, Any]:
        """hakeeper's live state, read the way hakeeperctl reads it (fresh dump)."""
        assert self.kind == "hakeeper"
        # the daemon writes its first dump once its config is applied (a slow start on a
        # busy machine): wait for it, then ask for a fresh one
        wait_for(self.state_file.exists, within=10)
        before = self.state_file.stat().st_mtime_ns if self.state_file.exists() else 0
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if self.state_file.exists() and self.state_file.stat().st_mtime_ns != before:
                break
            time.sleep(0.01)
        return json.loads(self.state_file.read_text())

    def instance(self, name: str) -> dict[str, Any]:
        for inst in self.state()["instances"]:
            if inst["name"] == name:
                return inst
        raise KeyError(name)

    def ctl(self, *args: str) -> str:
        """hakeeperctl's output, asked over this daemon's bus (the system bus without one)."""
        bus = ("--bus", self.bus) if self.bus else ()
        argv = [str(VENV_BIN / "hakeeperctl"), *bus, *args]
        return self.node.run(argv).stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_daemon(
    node: Any,
    kind: str,
    config_text: str,
    suffix: str = ".yaml",
    env: dict[str, str] | None = None,
    quiet: bool = False,
    bus: str | None = None,
) -> Daemon:
    """Write `config_text` into a private directory and start `kind` on `node`."""
    workdir = Path(tempfile.mkdtemp(prefix=f"hk-{node.name}-{kind}-"))
    config = workdir / ("keepalived.conf" if kind == "keepalived" else f"hakeeper{suffix}")
    config.write_text(config_text)
    daemon = Daemon(
        node=node, kind=kind, config=config, workdir=workdir, env=env, quiet=quiet, bus=bus
    )
    return daemon.start()


def wait_for(predicate: Any, within: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
