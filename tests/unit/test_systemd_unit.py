"""systemd/hakeeper.service.in: systemd itself accepts it, and its sandbox leaves open what
the code needs (derived from the code, so a new socket family or sysctl write shows up here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT_IN = REPO / "systemd" / "hakeeper.service.in"
HAKEEPER = REPO / "hakeeper"
# systemd-analyze security's 0..10 score: fail if a change loosens the sandbox unnoticed
EXPOSURE_MAX = 6.5


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit as meson installs it, pointing at a hakeeper that exists on this machine."""
    bindir = shutil.which("hakeeper", path=str(REPO / ".venv" / "bin"))
    assert bindir, "the venv has no hakeeper command (scripts/setup.sh installs it)"
    path = tmp_path / "hakeeper.service"
    path.write_text(UNIT_IN.read_text().replace("@BINDIR@", str(Path(bindir).parent)))
    return path


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT_IN.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def source() -> str:
    return "\n".join(p.read_text() for p in HAKEEPER.rglob("*.py"))


def test_systemd_analyze_verify_is_silent(unit: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # unknown keys and bad values are only warnings to systemd: any output is a defect
    assert (r.returncode, r.stderr, r.stdout) == (0, "", "")


def test_sandbox_exposure_stays_low(unit: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--threshold={EXPOSURE_MAX * 10:.0f}",
         "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert score, r.stdout + r.stderr
    assert float(score[1]) <= EXPOSURE_MAX and r.returncode == 0, r.stdout


def test_notify_watchdog_and_reload() -> None:
    s = settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] and s["Restart"] == ["on-failure"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # systemctl reload sends HUP, which the daemon turns into a reload (not the default death)
    assert "add_signal_handler(signal.SIGHUP, self.reload)" in (HAKEEPER / "daemon.py").read_text()


def test_every_socket_family_the_code_opens_is_allowed() -> None:
    used = set(re.findall(r"socket\.(AF_[A-Z0-9]+)", source())) - {"AF_UNSPEC"}  # not a socket
    assert {"AF_PACKET", "AF_NETLINK", "AF_UNIX"} <= used  # the scan still finds them
    allowed = set(" ".join(settings()["RestrictAddressFamilies"]).split())
    assert used <= allowed, used - allowed


def test_capabilities_cover_raw_sockets_netlink_and_scripts() -> None:
    caps = set(" ".join(settings()["CapabilityBoundingSet"]).split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"} <= caps
    assert not caps & {"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"}


def test_sandbox_leaves_open_what_the_code_writes_and_reads() -> None:
    s = settings()
    code = source()
    if "/proc/sys" in code:  # vmac sysctls: a read-only /proc/sys would break use_vmac
        assert s.get("ProtectKernelTunables", ["no"]) == ["no"]
    if "/proc" in code:  # vrrp_track_process scans every process
        assert "ProtectProc" not in s and "ProcSubset" not in s
    assert s["ProtectSystem"] == ["full"]  # /etc, /usr read-only; /run and /var writable
    assert s["RuntimeDirectory"] == ["hakeeper"]  # /run/hakeeper/state.json
