"""A private dbus-daemon for the lab: a system-bus lookalike using the project's own policy.

Its policy is the system bus's default (deny method calls and name ownership, allow signals and
replies) plus exactly the files under dbus/ that hakeeper installs, so a test that passes here
passes for the policy a distribution ships. It runs in the host's namespaces (a unix socket in
a private directory), is recorded by PID and ended by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
{includes}
</busconfig>
"""


class PrivateBus:
    def __init__(self, policies: tuple[Path, ...] = (REPO / "dbus/org.hakeeper.Hakeeper1.conf",)):
        self.dir = Path(tempfile.mkdtemp(prefix="hk-bus-"))
        os.chmod(self.dir, 0o755)  # a non-root client (setpriv) must reach the socket
        socket = self.dir / "bus"
        includes = "\n".join(f"  <include>{p}</include>" for p in policies)
        self.config = self.dir / "bus.conf"
        self.config.write_text(_CONFIG.format(socket=socket, includes=includes))
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--config-file", str(self.config), "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.close()
            raise RuntimeError(f"dbus-daemon did not start: {err}")
        self.address = line

    def busctl(
        self, *args: str, uid: int | None = None, check: bool = True, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        """busctl against this bus; uid: run it as that user (setpriv), as a client would."""
        argv = ["busctl", f"--address={self.address}", *args]
        if uid is not None:
            argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)

    def monitor(self, *match: str) -> subprocess.Popen[str]:
        """dbus-monitor on this bus (stopped by the caller via stop_monitor)."""
        return subprocess.Popen(
            ["dbus-monitor", "--address", self.address, *match],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def stop_monitor(proc: subprocess.Popen[str]) -> str:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateBus:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
