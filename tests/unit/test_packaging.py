"""The distro install path: `meson setup && meson install --destdir D` gives working commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hakeeper import __version__

REPO = Path(__file__).resolve().parents[2]


def test_meson_install_lays_out_package_unit_policy_and_manuals(tmp_path):
    build, dest = tmp_path / "build", tmp_path / "dest"
    subprocess.run(
        ["meson", "setup", str(build), str(REPO), "--prefix=/usr"],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    subprocess.run(
        ["meson", "install", "-C", str(build), "--destdir", str(dest)],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    for expected in (
        "usr/bin/hakeeper",
        "usr/bin/hakeeperctl",
        "usr/lib/systemd/system/hakeeper.service",
        "usr/share/dbus-1/system.d/org.hakeeper.Hakeeper1.conf",
        "usr/share/dbus-1/interfaces/org.hakeeper.Hakeeper1.Instance.xml",
        "usr/share/dbus-1/interfaces/org.hakeeper.Hakeeper1.RealServer.xml",
        "usr/share/bash-completion/completions/hakeeperctl",
        "usr/share/doc/hakeeper/dbus/README.md",
        "usr/share/man/man8/hakeeper.8",
        "usr/share/man/man5/hakeeper.conf.5",
        "usr/share/man/man1/hakeeperctl.1",
        "usr/share/doc/hakeeper/examples/README.md",
        "usr/share/doc/hakeeper/examples/lvs-dr.conf",
        "usr/share/doc/hakeeper/examples/conf.d/scripts.conf",
    ):
        assert expected in files, expected
    unit = (dest / "usr/lib/systemd/system/hakeeper.service").read_text()
    assert "ExecStart=/usr/bin/hakeeper " in unit and "Type=notify" in unit
    # the installed command runs from the installed package
    core = [f for f in files if f.endswith("hakeeper/vrrp/core.py")]
    assert len(core) == 1
    site = dest / Path(core[0]).parents[2]
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [sys.executable, str(dest / "usr/bin/hakeeper"), "--version"],
        capture_output=True, text=True, env=env, timeout=30, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"hakeeper {__version__}"
