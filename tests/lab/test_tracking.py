"""The seeds' nginx scenario for real: a service, a check script, notify scripts."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
DOWN = 2.0
PORT = 8080


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(stat.S_IRWXU)
    return path


def scripts_dir() -> Path:
    # root-owned and private: passes keepalived's script security rules
    return Path(tempfile.mkdtemp(prefix="hk-scripts-"))


PROBE = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{PORT}/', timeout=0.5)"


def check_body() -> str:
    return f'exec {sys.executable} -c "{PROBE}"\n'


def service_ok(node) -> bool:
    return node.run([sys.executable, "-c", PROBE], check=False).returncode == 0


def start_service(node):
    argv = [sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1"]
    proc = node.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: service_ok(node), within=5)
    return proc


def nginx_conf(priority: int, d: Path, check: Path, weight: int = -60) -> str:
    notify = script(d, "notify.sh", f'echo "$HAKEEPER_NOTIFY_SEQ $*" >> {d}/notify.log\n')
    master = script(d, "master.sh", f"echo master >> {d}/master.log\n")
    extra = (
        "    track_script {\n        chk_nginx\n    }\n"
        f"    notify {notify}\n"
        f"    notify_master {master}\n"
    )
    return keepalived_conf(
        f"vrrp_script chk_nginx {{\n    script {check}\n    interval 0.3\n    timeout 1\n"
        f"    fall 1\n    rise 1\n    weight {weight}\n}}\n",
        vrrp_instance(priority=priority, extra=extra),
        global_extra="    enable_script_security\n    script_user root\n",
    )


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def last_state(path: Path) -> str | None:
    """The STATE argument of the last generic notify call logged in `path`."""
    logged = lines(path)
    return logged[-1].split()[3] if logged else None


def test_service_dies_vip_moves_service_returns_vip_returns(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1_dir, d2_dir = scripts_dir(), scripts_dir()
    service = start_service(r1)
    c1 = nginx_conf(150, d1_dir, script(d1_dir, "chk_nginx.sh", check_body()))
    # r2 runs no service: its script fails, so its priority is 100 - 60 = 40... give it
    # a check that always passes so it stays at 100, as a healthy peer would
    c2 = nginx_conf(100, d2_dir, script(d2_dir, "chk_nginx.sh", "exit 0\n"))
    d1 = start_daemon(r1, "hakeeper", c1, suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", c2, suffix=".conf")
    time.sleep(1.0)
    assert VIP not in r2.addresses()
    inst = d1.instance("VI_1")
    assert inst["effective_priority"] == 150
    assert [(t["name"], t["state"]) for t in inst["trackers"]] == [("chk_nginx", "GOOD")]

    os.kill(service.pid, signal.SIGKILL)  # nginx dies, the daemon lives
    service.wait()
    assert wait_for(lambda: VIP in r2.addresses(), within=DOWN * 2), d2.log_text()
    assert wait_for(lambda: VIP not in r1.addresses(), within=DOWN)
    inst = d1.instance("VI_1")
    assert inst["effective_priority"] == 90 and inst["state"] == "BACKUP"
    assert inst["trackers"][0]["state"] == "BAD"

    start_service(r1)  # back: priority 150 again, and r1 preempts
    assert wait_for(lambda: VIP in r1.addresses() and VIP not in r2.addresses(), within=DOWN * 2)
    assert d1.instance("VI_1")["effective_priority"] == 150

    # notifications arrived in order, numbered, with keepalived's arguments
    assert wait_for(lambda: len(lines(d1_dir / "notify.log")) >= 3, within=DOWN)
    log1 = lines(d1_dir / "notify.log")
    seqs = [int(line.split()[0]) for line in log1]
    assert seqs == list(range(1, len(seqs) + 1)), log1
    states = [line.split()[1:4] for line in log1]
    assert states[0] == ["INSTANCE", "VI_1", "BACKUP"]
    assert [s[2] for s in states[1:]] == ["MASTER", "BACKUP", "MASTER"], log1
    assert lines(d1_dir / "master.log") == ["master", "master"]
    log2 = lines(d2_dir / "notify.log")
    assert [line.split()[3] for line in log2] == ["BACKUP", "MASTER", "BACKUP"], log2


def test_check_script_restarts_the_service_and_the_vip_stays(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1_dir, d2_dir = scripts_dir(), scripts_dir()
    service = start_service(r1)
    check = check_body().replace("exec ", "", 1)
    restart = (
        f"{check}"
        "[ $? -eq 0 ] && exit 0\n"
        f"{sys.executable} -m http.server {PORT} --bind 127.0.0.1 >/dev/null 2>&1 &\n"
        "sleep 0.3\n"
        f"{check}"
    )
    c1 = nginx_conf(150, d1_dir, script(d1_dir, "chk_nginx.sh", restart))
    c2 = nginx_conf(100, d2_dir, script(d2_dir, "chk_nginx.sh", "exit 0\n"))
    d1 = start_daemon(r1, "hakeeper", c1, suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", c2, suffix=".conf")
    time.sleep(1.0)
    os.kill(service.pid, signal.SIGKILL)
    service.wait()
    # the script brought the service back, and the VIP never left r1
    assert wait_for(lambda: service_ok(r1), within=DOWN * 2)
    time.sleep(1.0)
    assert VIP in r1.addresses() and VIP not in r2.addresses()
    assert "-> MASTER" not in d2.log_text()
    assert d1.instance("VI_1")["effective_priority"] == 150


def test_split_brain_notifies_both_masters_then_one(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1_dir, d2_dir = scripts_dir(), scripts_dir()
    c1 = nginx_conf(150, d1_dir, script(d1_dir, "chk.sh", "exit 0\n"))
    c2 = nginx_conf(100, d2_dir, script(d2_dir, "chk.sh", "exit 0\n"))
    d1 = start_daemon(r1, "hakeeper", c1, suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    start_daemon(r2, "hakeeper", c2, suffix=".conf")
    time.sleep(1.0)
    lab.block_vrrp(r2)
    assert wait_for(lambda: VIP in r2.addresses(), within=DOWN)
    # both are master, and r2's notify script says so
    assert wait_for(lambda: last_state(d2_dir / "notify.log") == "MASTER", within=DOWN)
    assert VIP in r1.addresses()
    lab.unblock_vrrp(r2)
    assert wait_for(lambda: VIP not in r2.addresses(), within=DOWN)
    assert wait_for(lambda: last_state(d2_dir / "notify.log") == "BACKUP", within=DOWN)
    assert [line.split()[3] for line in lines(d1_dir / "notify.log")] == ["BACKUP", "MASTER"]


def weighted_conf(priority: int, d: Path, weight: int) -> str:
    """A script whose verdict the test flips with a flag file; keepalived reads it too."""
    flag = d / "healthy"
    flag.touch()
    check = script(d, "chk.sh", f"test -e {flag}\n")
    return keepalived_conf(
        f"vrrp_script chk {{\n    script {check}\n    interval 0.2\n    weight {weight}\n}}\n",
        vrrp_instance(priority=priority, extra="    track_script {\n        chk\n    }\n"),
        global_extra="    enable_script_security\n    script_user root\n",
    )


@pytest.mark.parametrize("hakeeper_is", ["r1", "r2"])
def test_weights_elect_the_same_master_with_keepalived_as_peer(lab, hakeeper_is):
    """r1: 100 + 60 while healthy (160 beats r2's 150); unhealthy: 100, r2 wins. The same
    with either daemon on either side: both compute keepalived's effective priority."""
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1_dir, d2_dir = scripts_dir(), scripts_dir()
    kinds = ("hakeeper", "keepalived") if hakeeper_is == "r1" else ("keepalived", "hakeeper")
    d1 = start_daemon(r1, kinds[0], weighted_conf(100, d1_dir, 60), suffix=".conf")
    d2 = start_daemon(r2, kinds[1], weighted_conf(150, d2_dir, -10), suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses() and VIP not in r2.addresses(), within=DOWN * 3), (
        d1.log_text() + d2.log_text()
    )
    (d1_dir / "healthy").unlink()  # r1's service fails: 100 < 150
    assert wait_for(lambda: VIP in r2.addresses() and VIP not in r1.addresses(), within=DOWN * 2)
    (d2_dir / "healthy").unlink()  # r2's fails too: 140 > 100, r2 keeps it
    time.sleep(1.0)
    assert VIP in r2.addresses() and VIP not in r1.addresses()
    (d1_dir / "healthy").touch()  # r1 healthy again: 160 > 140, r1 preempts
    assert wait_for(lambda: VIP in r1.addresses() and VIP not in r2.addresses(), within=DOWN * 2)
    hk = d1 if kinds[0] == "hakeeper" else d2
    expected = 160 if hk is d1 else 140
    assert hk.instance("VI_1")["effective_priority"] == expected


def test_bad_scripts_are_logged_and_never_delay_adverts(lab):
    """A hung check (killed at its timeout), a missing one, an unsafe one and a failing
    notify script: each is logged clearly, and r1's adverts keep r2 a backup throughout."""
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d = scripts_dir()
    unsafe_dir = Path(tempfile.mkdtemp(prefix="hk-unsafe-"))
    unsafe_dir.chmod(0o777)  # anyone may replace what is in here: refused
    unsafe = script(unsafe_dir, "chk.sh", "exit 0\n")
    hung = script(d, "hung.sh", "sleep 30\n")
    failing_notify = script(d, "notify.sh", "exit 3\n")
    blocks = [
        f"vrrp_script hung {{\n    script {hung}\n    interval 0.5\n    timeout 0.3\n"
        "    weight -10\n}\n",
        f"vrrp_script missing {{\n    script {d}/nope.sh\n    interval 0.5\n    weight -10\n}}\n",
        f"vrrp_script unsafe {{\n    script {unsafe}\n    interval 0.5\n    weight -10\n}}\n",
    ]
    extra = (
        "    track_script {\n        hung\n        missing\n        unsafe\n    }\n"
        f"    notify {failing_notify}\n"
    )
    conf1 = keepalived_conf(
        *blocks,
        vrrp_instance(priority=200, extra=extra),
        global_extra="    enable_script_security\n    script_user root\n",
    )
    d1 = start_daemon(r1, "hakeeper", conf1, suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", keepalived_conf(vrrp_instance(priority=100)), ".conf")
    time.sleep(3.0)  # six runs of the hung script, each killed at 0.3 s
    log = d1.log_text()
    assert "VRRP_Script(hung) timed out after 0.3s; process group killed" in log
    assert "VRRP_Script(missing)" in log
    assert f"{unsafe_dir}" in log and "unsafe" in log
    assert "exited with status 3" in log
    # 200 - 3 x 10 = 170 still beats 100: r1 stays master, its adverts never late enough
    # for r2's master down timer (0.36 s) to fire
    assert d1.instance("VI_1")["effective_priority"] == 170
    assert VIP in r1.addresses() and VIP not in r2.addresses()
    assert "-> MASTER" not in d2.log_text()
    # a stop kills the script still running, with its children: nothing is left behind
    assert d1.stop() == 0
    assert "sleep 30" not in r1.run(["ps", "-eo", "args"]).stdout
