"""hakeeper.scripts: keepalived's script security rules, users, and running with a timeout."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from pathlib import Path

import pytest

from hakeeper.scripts import (
    ScriptUserError,
    check_script_security,
    default_script_user,
    find_executable,
    prepare_script,
    resolve_user,
    run_script,
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setuid)")
NOBODY = pwd.getpwnam("nobody").pw_uid


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie nobody reaped (container PID 1)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return data[data.rfind(")") + 2] == "Z"


# ---------------------------------------------------------------- security


@root_only
def test_safe_script_passes(tmp_path):
    s = _script(tmp_path / "ok.sh", "exit 0")
    assert check_script_security(str(s), enable_script_security=True, run_as_uid=0) is None


@root_only
def test_world_writable_directory_is_named(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    d.chmod(0o777)
    s = _script(d / "check.sh", "exit 0")
    msg = check_script_security(str(s), enable_script_security=True, run_as_uid=0)
    assert msg == f"{s}: {d} is writable by others"


@root_only
def test_group_writable_file_and_foreign_owner(tmp_path):
    s = _script(tmp_path / "g.sh", "exit 0", 0o775)
    os.chown(s, 0, 100)
    msg = check_script_security(str(s), enable_script_security=True, run_as_uid=0)
    assert msg == f"{s}: {s} is writable by group 100"
    os.chown(s, 0, 0)  # group root may write: keepalived allows it
    assert check_script_security(str(s), enable_script_security=True, run_as_uid=0) is None
    os.chown(s, NOBODY, 0)
    msg = check_script_security(str(s), enable_script_security=True, run_as_uid=0)
    assert msg == f"{s}: {s} is owned by uid {NOBODY}, not root"


@root_only
def test_sticky_directory_is_safe(tmp_path):
    d = tmp_path / "sticky"
    d.mkdir()
    d.chmod(0o1777)
    s = _script(d / "c.sh", "exit 0")
    assert check_script_security(str(s), enable_script_security=True, run_as_uid=0) is None


@root_only
def test_unsafe_is_only_a_warning_without_script_security(tmp_path):
    d = tmp_path / "w"
    d.mkdir()
    d.chmod(0o777)
    s = _script(d / "c.sh", "exit 0")
    assert check_script_security(str(s), enable_script_security=False, run_as_uid=0) is None
    p = prepare_script([str(s)], enable_script_security=False, uid=0, gid=0)
    assert p.refused is None and p.warning == f"{s}: {d} is writable by others"


@root_only
def test_script_run_by_ordinary_user_is_not_path_checked(tmp_path):
    # keepalived's need_script_protection: only a script with root's powers is checked
    d = tmp_path / "w"
    d.mkdir()
    d.chmod(0o777)
    s = _script(d / "c.sh", "exit 0")
    msg = check_script_security(
        str(s), enable_script_security=True, run_as_uid=NOBODY, run_as_gid=NOBODY
    )
    assert msg is None


def test_path_search_missing_and_not_executable(tmp_path):
    p = prepare_script(["true", "x"], enable_script_security=False, uid=0, gid=0)
    assert p.refused is None
    assert os.path.isabs(p.argv[0]) and p.argv[0].endswith("/true") and p.argv[1:] == ("x",)
    assert find_executable("no-such-command-here", 0, 0) is None
    miss = prepare_script(["no-such-command-here"], enable_script_security=False, uid=0, gid=0)
    assert miss.refused == "no-such-command-here: not found in PATH"
    s = _script(tmp_path / "noexec.sh", "exit 0", 0o644)
    p = prepare_script([str(s)], enable_script_security=False, uid=0, gid=0)
    assert p.refused is not None and "not executable" in p.refused
    gone = prepare_script([str(tmp_path / "nope")], enable_script_security=False, uid=0, gid=0)
    assert gone.refused is not None and "No such file" in gone.refused


def test_file_test_script_goes_through_the_shell():
    p = prepare_script(["</dev/null"], enable_script_security=True, uid=0, gid=0)
    assert p.argv == ("/bin/sh", "-c", "</dev/null") and p.refused is None


# ---------------------------------------------------------------- users


def test_resolve_user():
    assert resolve_user("nobody") == (NOBODY, pwd.getpwnam("nobody").pw_gid)
    assert resolve_user("nobody", "root")[1] == 0
    assert resolve_user(None) == (os.geteuid(), os.getegid())
    with pytest.raises(ScriptUserError, match="no-such-user"):
        resolve_user("no-such-user")
    with pytest.raises(ScriptUserError, match="no-such-group"):
        resolve_user("nobody", "no-such-group")


def test_default_script_user():
    try:
        pw = pwd.getpwnam("keepalived_script")
    except KeyError:
        pw = None
    if pw is not None:
        assert default_script_user() == (pw.pw_uid, pw.pw_gid)
        return
    assert default_script_user() == (os.geteuid(), os.getegid())
    with pytest.raises(ScriptUserError, match="script_user"):
        default_script_user(enable_script_security=True)
    assert default_script_user("nobody") == resolve_user("nobody")


# ---------------------------------------------------------------- running


def test_exit_codes_and_missing():
    async def main():
        ok = await run_script(["/bin/true"], timeout=5, uid=os.geteuid(), gid=os.getegid())
        bad = await run_script(["/bin/sh", "-c", "exit 3"], timeout=5, uid=0, gid=0)
        miss = await run_script(["/no/such/script"], timeout=5, uid=0, gid=0)
        return ok, bad, miss

    ok, bad, miss = asyncio.run(main())
    assert ok.exit_code == 0 and ok.ok and not ok.timed_out and ok.error is None
    assert bad.exit_code == 3 and not bad.ok
    assert miss.exit_code is None and miss.error is not None and "/no/such/script" in miss.error


def test_hung_script_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    s = _script(tmp_path / "hang.sh", f"sleep 60 &\necho $! > {pidfile}\nwait")

    async def main():
        return await run_script([str(s)], timeout=0.5, uid=os.geteuid(), gid=os.getegid())

    start = time.monotonic()
    res = asyncio.run(main())
    assert time.monotonic() - start < 3
    assert res.timed_out and res.exit_code is None and res.signal == 9
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child)


@root_only
def test_runs_as_the_given_user_without_unsafe_env(monkeypatch):
    monkeypatch.setenv("LD_LIBRARY_PATH", "/nonexistent")
    cmd = (
        'test "$(id -u)" = {} && test "$(id -G)" = {} && test -z "$LD_LIBRARY_PATH" '
        '&& test "$X" = y'
    )
    gid = pwd.getpwnam("nobody").pw_gid

    async def main():
        return await run_script(
            ["/bin/sh", "-c", cmd.format(NOBODY, gid)],
            timeout=5,
            uid=NOBODY,
            gid=gid,
            env={"X": "y"},
        )

    assert asyncio.run(main()).exit_code == 0


STDIO_CHECK = " && ".join(f'test "$(readlink /proc/$$/fd/{fd})" = /dev/null' for fd in (0, 1, 2))


def test_stdio_is_devnull():
    async def main():
        return await run_script(
            ["/bin/sh", "-c", STDIO_CHECK],
            timeout=5,
            uid=os.geteuid(),
            gid=os.getegid(),
        )

    assert asyncio.run(main()).exit_code == 0
