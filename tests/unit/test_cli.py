"""The `hakeeper` command as a user runs it: --version, -t, convert."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper import __version__

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HAKEEPER = [sys.executable, "-m", "hakeeper.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HAKEEPER, *args], capture_output=True, text=True, timeout=30)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"hakeeper {__version__}"


def test_check_good_file(tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
        " virtual_ipaddress {\n  198.18.0.100/24\n }\n}\n"
    )
    r = run("-t", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "OK (1 vrrp_instance(s)" in r.stdout


def test_check_lists_every_error_with_file_and_line(tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n"  # 1
        "    interface eth0\n"  # 2
        "    virtual_router_id 51\n"  # 3
        "    priority 300\n"  # 4
        "    bogus_keyword 1\n"  # 5
        "}\n"  # 6
        "vrrp_instance VI_2 {\n"  # 7
        "    interface eth0\n"  # 8
        "    virtual_router_id 256\n"  # 9
        "}\n"
    )
    r = run("-t", "-f", str(conf))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert any(line.startswith(f"{conf}:4:") and "priority" in line for line in lines), lines
    assert any(line.startswith(f"{conf}:9:") and "virtual_router_id" in line for line in lines)
    assert any(line.startswith(f"{conf}:5:") and "bogus_keyword" in line for line in lines)


def test_check_missing_file(tmp_path):
    r = run("-t", "-f", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert "nope.conf" in r.stderr


@pytest.mark.parametrize("conf", sorted(EXAMPLES.glob("*.conf")), ids=lambda p: p.name)
def test_convert_output_reads_back_as_the_same_model(conf, tmp_path):
    from hakeeper.config import load_config

    r = run("convert", str(conf))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "converted.yaml"
    out.write_text(r.stdout)
    assert load_config(str(out)) == load_config(str(conf))


def test_config_test_reports_what_the_lvs_backend_cannot_do(tmp_path: Path) -> None:
    conf = tmp_path / "lb.conf"
    conf.write_text(
        "global_defs {\n    lvs_backend nftables\n}\n"
        "virtual_server 198.18.0.100 80 {\n    protocol TCP\n    lvs_sched wlc\n"
        "    real_server 198.18.1.10 80 {\n        weight 1\n    }\n}\n"
    )
    r = run("-t", "-f", str(conf))
    assert r.returncode == 1
    assert f"{conf}:4: virtual_server 198.18.0.100:80/TCP: nftables backend cannot do " \
           "scheduler 'wlc'" in r.stderr  # fmt: skip
    conf.write_text(conf.read_text().replace("wlc", "wrr"))
    r = run("-t", "-f", str(conf))
    assert r.returncode == 0 and "1 virtual_server(s)" in r.stdout
