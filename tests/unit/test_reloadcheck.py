"""`hakeeper -t` with no hakeeper to compare with: the file is checked, and it says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hakeeper.ctl import render

HAKEEPER = [sys.executable, "-m", "hakeeper.cli"]
CONF = (
    "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
    " virtual_ipaddress {\n  198.18.0.100/24\n }\n}\n"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HAKEEPER, *args], capture_output=True, text=True, timeout=30)


def test_no_bus_means_nothing_to_compare_with(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    nowhere = tmp_path / "no-bus-here"
    r = run("-t", "-f", str(conf), "--dbus-address", f"unix:path={nowhere}")
    assert r.returncode == 0, r.stderr
    ok, why = r.stdout.splitlines()
    assert ok.startswith(f"{conf}: OK (1 vrrp_instance(s)")
    assert why.startswith("nothing to compare with: hakeeper is not running"), why
    assert str(nowhere) in why


def test_dbus_off_in_the_file_is_said_plainly(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text("global_defs {\n dbus_address none\n}\n" + CONF)
    r = run("-t", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "nothing to compare with: D-Bus is off (dbus address none)"


def test_a_bad_file_is_not_compared(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.replace("51", "300"))
    r = run("-t", "-f", str(conf), "--dbus-address", "none")
    assert r.returncode == 1
    assert r.stdout == "" and f"{conf}:3:" in r.stderr


def test_change_lines_print_as_hakeeperctl_prints_them() -> None:
    assert render.changes([]) == "no changes"
    assert render.changes(["a", "b"]) == "a\nb"
