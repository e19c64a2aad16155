"""Trackers for real: scripts in temporary directories, files, and a real `sleep` process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.model import VrrpScript, VrrpTrackFile
from hakeeper.track import Tracking
from hakeeper.track.files import TrackFileWatcher, parse_value
from hakeeper.track.script import ScriptState, VrrpScriptRunner, rise_fall

UID, GID = os.geteuid(), os.getegid()


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _gone(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return data[data.rfind(")") + 2] == "Z"


def _flag_script(tmp_path: Path) -> tuple[Path, Path]:
    """A check that succeeds while FLAG exists."""
    flag = tmp_path / "flag"
    return _script(tmp_path / "chk.sh", f"test -e {flag}"), flag


def _runner(script: Path, **kw) -> VrrpScriptRunner:
    changes: list[bool | None] = []
    cfg = VrrpScript(name="chk", script=(str(script),), **kw)
    r = VrrpScriptRunner(cfg, uid=UID, gid=GID, on_change=lambda r: changes.append(r.good))
    r.changes = changes  # type: ignore[attr-defined]
    return r


def _run(r: VrrpScriptRunner, n: int = 1) -> None:
    async def main():
        for _ in range(n):
            await r.run_once()

    asyncio.run(main())


# ---------------------------------------------------------------- vrrp_script


def test_rise_fall_counter_as_keepalived():
    # rise 2, fall 3: top is 4; good from 2 up
    assert rise_fall(1, True, 2, 3, init=True) == (4, True)  # INIT: one success is enough
    assert rise_fall(1, False, 2, 3, init=True) == (0, True)  # INIT: one failure is enough
    assert rise_fall(0, True, 2, 3, init=False) == (1, False)
    assert rise_fall(1, True, 2, 3, init=False) == (4, True)
    assert rise_fall(4, False, 2, 3, init=False) == (3, False)
    assert rise_fall(3, True, 2, 3, init=False) == (4, False)  # a success resets the fall
    assert rise_fall(2, False, 2, 3, init=False) == (0, True)
    assert rise_fall(1, False, 2, 3, init=False) == (0, False)  # a failure resets the rise


def test_good_bad_rise_fall(tmp_path):
    script, flag = _flag_script(tmp_path)
    r = _runner(script, rise=2, fall=2)
    assert r.state is ScriptState.INIT and r.good is None
    flag.touch()
    _run(r)
    assert r.state is ScriptState.GOOD and r.last_exit == 0 and r.changes == [True]
    flag.unlink()
    _run(r)
    assert r.state is ScriptState.GOOD and r.last_exit == 1  # fall 2: one failure is not enough
    _run(r)
    assert r.state is ScriptState.BAD and r.changes == [True, False]
    flag.touch()
    _run(r)
    assert r.state is ScriptState.BAD  # rise 2
    _run(r)
    assert r.state is ScriptState.GOOD and r.changes == [True, False, True]
    assert r.runs == 5


def test_init_fail_starts_bad(tmp_path):
    script, flag = _flag_script(tmp_path)
    flag.touch()
    r = _runner(script, rise=2, init_fail=True)
    assert r.state is ScriptState.BAD and r.good is False
    _run(r)
    assert r.state is ScriptState.BAD and r.changes == []
    _run(r)
    assert r.state is ScriptState.GOOD and r.changes == [True]


def test_hung_script_is_killed_with_its_children_and_fails(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = _script(tmp_path / "hang.sh", f"sleep 60 &\necho $! > {pidfile}\nwait")
    r = _runner(script, interval=5, timeout=0.3)
    start = time.monotonic()
    _run(r)
    assert time.monotonic() - start < 2
    assert r.state is ScriptState.BAD and r.last_result is not None and r.last_result.timed_out
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child)


def test_runner_does_not_block_the_loop(tmp_path):
    script = _script(tmp_path / "slow.sh", "sleep 0.5")
    r = _runner(script, interval=5, timeout=2)

    async def main():
        r.start()
        ticks = 0
        start = time.monotonic()
        while time.monotonic() - start < 0.3:
            await asyncio.sleep(0.01)
            ticks += 1
        await r.aclose()
        return ticks

    assert asyncio.run(main()) > 15


# ---------------------------------------------------------------- Tracking

CONF = """
global_defs {{
    {security}
    script_user root
}}
vrrp_script chk {{
    script "{script}"
    interval {interval}
    weight {weight}
    {extra}
}}
vrrp_track_file tf {{
    file {file}
    weight -10
}}
vrrp_track_process tp {{
    process sleep {arg}
    weight {pweight}
    {pextra}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 1
    priority 100
    track_script {{
        chk
    }}
    track_file {{
        tf
    }}
    track_process {{
        tp
    }}
    track_interface {{
        eth9 weight -5
    }}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 2
    priority 150
    track_script {{
        chk weight -40
    }}
}}
vrrp_instance VI_3 {{
    interface eth0
    virtual_router_id 3
    priority 200
    track_script {{
        chk weight 0
    }}
}}
"""


def _config(tmp_path: Path, script: Path | str, **kw):
    params = {
        "security": "",
        "script": script,
        "interval": 1,
        "weight": -20,
        "extra": "",
        "file": tmp_path / "tf.value",
        "arg": "1000.25",
        "pweight": -30,
        "pextra": "",
    } | kw
    return parse_keepalived_text(CONF.format(**params), "t.conf")


def test_missing_script_is_disabled_and_counts_as_failed(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    t = Tracking(_config(tmp_path, tmp_path / "missing.sh"))
    assert t.scripts["chk"].state is ScriptState.DISABLED
    assert "missing.sh" in caplog.text
    assert t.priority("VI_2") == 110
    assert t.priority("VI_3") == 0  # weight 0: FAULT
    view = next(v for v in t.trackers("VI_3") if v.kind == "script")
    assert view.state == "DISABLED" and view.contribution is None


def test_unsafe_script_path_refused_naming_the_component(tmp_path, caplog):
    if os.geteuid() != 0:
        pytest.skip("the check applies to scripts run as root")
    caplog.set_level(logging.ERROR)
    unsafe = tmp_path / "open"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    script = _script(unsafe / "chk.sh", "exit 0")
    t = Tracking(_config(tmp_path, script, security="enable_script_security"))
    r = t.scripts["chk"]
    assert r.state is ScriptState.DISABLED
    assert r.disabled == f"{script}: {unsafe} is writable by others"
    assert f"{unsafe} is writable by others" in caplog.text
    # without enable_script_security keepalived runs it (with a warning)
    t2 = Tracking(_config(tmp_path, script))
    assert t2.scripts["chk"].state is ScriptState.INIT


def test_shared_script_runs_once_for_every_instance(tmp_path):
    log_file = tmp_path / "runs"
    script = _script(tmp_path / "count.sh", f"echo run >> {log_file}")
    changes: list[tuple[str, int]] = []
    config = _config(tmp_path, script, interval=0.1)

    async def main():
        t = Tracking(config, lambda name, prio: changes.append((name, prio)))
        assert not t.ready("VI_3")  # its weight-0 script has not reported yet
        t.start()
        await asyncio.sleep(0.45)
        await t.aclose()
        return t

    t = asyncio.run(main())
    assert list(t.scripts) == ["chk"]
    runs = len(log_file.read_text().splitlines())
    assert runs == t.scripts["chk"].runs
    assert 3 <= runs <= 6  # every 0.1s for 0.45s, once for all three instances
    assert t.ready("VI_3")


def test_priority_follows_the_script_and_reload_keeps_state(tmp_path):
    script, flag = _flag_script(tmp_path)
    flag.touch()
    changes: list[tuple[str, int]] = []
    config = _config(tmp_path, script, interval=0.1)

    async def wait_for(pred, within=2.0):
        deadline = time.monotonic() + within
        while not pred():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)

    async def main():
        t = Tracking(config, lambda name, prio: changes.append((name, prio)))
        t.start()
        await wait_for(lambda: t.scripts["chk"].state is ScriptState.GOOD)
        assert t.priority("VI_2") == 150 and t.priority("VI_3") == 200
        flag.unlink()
        await wait_for(lambda: ("VI_3", 0) in changes)
        assert ("VI_2", 110) in changes and t.priority("VI_2") == 110
        runner = t.scripts["chk"]
        # a reload that changes an instance but not the script keeps the runner and its state
        t.reconfigure(_config(tmp_path, script, interval=0.1, pweight=-31))
        assert t.scripts["chk"] is runner and runner.state is ScriptState.BAD
        # a changed script is a new runner
        t.reconfigure(_config(tmp_path, script, interval=0.2))
        assert t.scripts["chk"] is not runner
        await t.aclose()

    asyncio.run(main())


def test_interface_events(tmp_path):
    script, _ = _flag_script(tmp_path)
    changes: list[tuple[str, int]] = []
    t = Tracking(_config(tmp_path, script), lambda n, p: changes.append((n, p)))
    base = t.priority("VI_1")
    t.on_link("eth9", True)
    assert changes == [] and t.priority("VI_1") == base
    t.on_link("eth9", False)
    assert changes == [("VI_1", base - 5)]
    t.on_link("eth9", False)
    assert len(changes) == 1
    view = next(v for v in t.trackers("VI_1") if v.kind == "interface")
    assert view.state == "DOWN" and view.weight == -5


# ---------------------------------------------------------------- track_file


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"", 0),
        (b"42\n", 42),
        (b"  -7 trailing words", -7),
        (b"0x10", 16),
        (b"010", 8),
        (b"08", 0),
        (b"+3", 3),
        (b"garbage", 0),
        (b"2147483648", 2**31),
    ],
)
def test_parse_value_like_strtol(text, value):
    assert parse_value(text) == value


def test_track_file_values(tmp_path):
    path = tmp_path / "v"
    changes: list[int] = []
    w = TrackFileWatcher(
        VrrpTrackFile(name="tf", file=str(path), weight=-10),
        on_change=lambda w: changes.append(w.value),
    )
    w.initialise()
    assert w.value == 0  # missing file
    path.write_text("3\n")
    assert w.poll() and w.value == 3
    assert not w.poll()
    path.write_text("99999999999")  # out of range: ignored, value kept
    assert not w.poll() and w.value == 3
    path.write_text("nonsense")
    assert w.poll() and w.value == 0
    path.write_text("5")
    w.poll()
    path.unlink()
    assert w.poll() and w.value == 0
    assert changes == [3, 0, 5, 0]


def test_track_file_init_file(tmp_path):
    path = tmp_path / "init"
    cfg = VrrpTrackFile(name="tf", file=str(path), init_file=7)
    TrackFileWatcher(cfg).initialise()
    assert path.read_text() == "7\n"
    path.write_text("9\n")
    w = TrackFileWatcher(cfg)
    w.initialise()
    assert w.value == 9  # exists: not overwritten
    cfg2 = VrrpTrackFile(name="tf", file=str(path), init_file=1, init_file_overwrite=True)
    TrackFileWatcher(cfg2).initialise(reload=True)
    assert path.read_text() == "9\n"  # never on reload
    TrackFileWatcher(cfg2).initialise()
    assert path.read_text() == "1\n"


def test_track_file_in_tracking(tmp_path):
    script, _ = _flag_script(tmp_path)
    value = tmp_path / "tf.value"
    changes: list[tuple[str, int]] = []
    t = Tracking(_config(tmp_path, script), lambda n, p: changes.append((n, p)))
    base = t.priority("VI_1")
    value.write_text("2")
    t.files["tf"].poll()
    assert changes == [("VI_1", base - 20)]
    value.write_text("30")  # 30 * -10 = -300: FAULT
    t.files["tf"].poll()
    assert changes[-1] == ("VI_1", 0)
    view = next(v for v in t.trackers("VI_1") if v.kind == "file")
    assert view.state == "FAULT" and view.value == 30


# ---------------------------------------------------------------- track_process


def _sleeper(arg: str) -> subprocess.Popen:
    """A `sleep ARG` process, returned once it has exec'ed (so /proc shows its argv)."""
    proc = subprocess.Popen(["sleep", arg])
    cmdline = f"/proc/{proc.pid}/cmdline"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(cmdline, "rb") as f:
            if f.read().split(b"\0")[:2] == [b"sleep", arg.encode()]:
                return proc
        time.sleep(0.001)
    proc.kill()
    raise AssertionError(f"sleep {arg} did not start")


def test_track_process_quorum_with_real_processes(tmp_path):
    script, _ = _flag_script(tmp_path)
    arg = f"{1000 + os.getpid() % 1000}.25"  # an argv nobody else runs
    changes: list[tuple[str, int]] = []
    procs: list[subprocess.Popen] = []
    try:
        config = _config(tmp_path, script, arg=arg, pextra="quorum 2")
        t = Tracking(config, lambda n, p: changes.append((n, p)))
        base = t.priority("VI_1")
        tracker = t.processes.trackers["tp"]
        assert tracker.have_quorum is False and tracker.count == 0
        procs.append(_sleeper(arg))
        t.processes.poll()
        assert tracker.count == 1 and tracker.have_quorum is False
        procs.append(_sleeper(arg))
        procs.append(_sleeper(arg + "1"))  # other arguments: not matched (exact)
        t.processes.poll()
        assert tracker.pids == {procs[0].pid, procs[1].pid}
        assert tracker.have_quorum is True and changes == [("VI_1", base + 30)]
        procs[0].kill()
        procs[0].wait()
        t.processes.poll()
        assert tracker.have_quorum is False and changes[-1] == ("VI_1", base)
        view = next(v for v in t.trackers("VI_1") if v.kind == "process")
        assert view.state == "DOWN" and view.value == 1
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_track_process_terminate_delay(tmp_path):
    script, _ = _flag_script(tmp_path)
    arg = f"{2000 + os.getpid() % 1000}.5"
    proc = _sleeper(arg)
    try:
        config = _config(tmp_path, script, arg=arg, pextra="terminate_delay 0.2")

        async def main():
            t = Tracking(config)
            tracker = t.processes.trackers["tp"]
            t.start()
            assert tracker.have_quorum is True
            proc.kill()
            proc.wait()
            t.processes.poll()
            assert tracker.have_quorum is True  # still within terminate_delay
            await asyncio.sleep(0.3)
            assert tracker.have_quorum is False
            await t.aclose()

        asyncio.run(main())
    finally:
        proc.kill()
        proc.wait()


def test_track_process_comm_and_param_match(tmp_path):
    from hakeeper.track.process import matches

    cfg = _config(tmp_path, "/bin/true").vrrp_track_processes[0]
    assert cfg.uses_cmdline and cfg.param_match is None
    assert matches(cfg, None, ["sleep", "1000.25"])
    assert not matches(cfg, None, ["sleep", "1000.25", "x"])
    partial = _config(tmp_path, "/bin/true", pextra="param_match partial")
    p = partial.vrrp_track_processes[0]
    assert matches(p, None, ["sleep", "1000.25", "x"]) and not matches(p, None, ["sleep", "1"])
    initial = _config(tmp_path, "/bin/true", arg="1000", pextra="param_match initial")
    i = initial.vrrp_track_processes[0]
    assert matches(i, None, ["sleep", "1000.25"]) and not matches(i, None, ["sleep", "999"])
    comm = _config(tmp_path, "/bin/true", arg="").vrrp_track_processes[0]
    assert not comm.uses_cmdline
    assert matches(comm, "sleep", None) and not matches(comm, "sleepy", None)
