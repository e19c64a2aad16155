"""MISC_CHECK and FILE_CHECK: exit codes and file values to up/down and weight, with real
scripts and files."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hakeeper.check import file as file_check
from hakeeper.check import misc
from hakeeper.check.base import Outcome
from hakeeper.check.kinds import attempt_limit, run_check
from hakeeper.check.target import CheckTarget
from hakeeper.config.lvs_model import Checker
from hakeeper.scripts import ScriptResult


def target(checker: Checker, delay_loop: float = 5.0) -> CheckTarget:
    return CheckTarget(
        key=("vs", "rs", 0),
        checker=checker,
        address=ipaddress.ip_address("127.0.0.1"),
        port=None,
        delay_loop=delay_loop,
        connect_timeout=1.0,
        retry=0,
        delay_before_retry=1.0,
        warmup=0.0,
        alpha=False,
        misc_timeout=checker.misc_timeout,
        script_uid=os.geteuid(),
        script_gid=os.getegid(),
    )


def script(tmp_path: Path, body: str, name: str = "check.sh") -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def exited(code: int) -> ScriptResult:
    return ScriptResult(code, False, None, 0.01)


# -- exit status -> outcome -------------------------------------------------------------


@pytest.mark.parametrize(("code", "dynamic", "expected"), [
    (0, False, Outcome(True, "exit 0")),
    (1, False, Outcome(False, "exit 1")),
    (2, False, Outcome(False, "exit 2")),
    (0, True, Outcome(True, "exit 0", 7)),  # back to the real server's own weight
    (1, True, Outcome(False, "exit 1")),
    (2, True, Outcome(True, "exit 2: weight 0", 0)),
    (12, True, Outcome(True, "exit 12: weight 10", 10)),
    (255, True, Outcome(True, "exit 255: weight 253", 253)),
])  # fmt: skip
def test_exit_codes_as_keepalived(code: int, dynamic: bool, expected: Outcome) -> None:
    assert misc.misc_outcome(exited(code), dynamic=dynamic, weight=7) == expected


def test_timeout_signal_and_errors_are_down() -> None:
    timed_out = ScriptResult(None, True, None, 1.0, signal=9)
    assert misc.misc_outcome(timed_out, dynamic=True, weight=1, timeout=1) == Outcome(
        False, "script timed out after 1s"
    )
    killed = ScriptResult(None, False, None, 0.1, signal=15)
    assert misc.misc_outcome(killed, dynamic=False, weight=1) == Outcome(
        False, "script killed by signal 15"
    )
    failed = ScriptResult(None, False, "/x: No such file", 0.0)
    assert not misc.misc_outcome(failed, dynamic=False, weight=1).ok


# -- real scripts ------------------------------------------------------------------------


def run(t: CheckTarget) -> Outcome:
    return asyncio.run(run_check(t))


def test_real_scripts_up_down_and_dynamic(tmp_path: Path) -> None:
    ok = script(tmp_path, "exit 0", "ok.sh")
    bad = script(tmp_path, "exit 1", "bad.sh")
    heavy = script(tmp_path, 'exit "$1"', "weight.sh")
    assert run(target(Checker("MISC_CHECK", misc_path=(ok,)))) == Outcome(True, "exit 0")
    assert run(target(Checker("MISC_CHECK", misc_path=(bad,)))) == Outcome(False, "exit 1")
    dyn = Checker("MISC_CHECK", misc_path=(heavy, "9"), misc_dynamic=True)
    assert run(target(dyn)) == Outcome(True, "exit 9: weight 7", 7)
    # without misc_dynamic the same exit is a failure
    assert not run(target(replace(dyn, misc_dynamic=False))).ok


def test_script_timeout_is_down_and_bounded(tmp_path: Path) -> None:
    slow = script(tmp_path, "sleep 10", "slow.sh")
    t = target(Checker("MISC_CHECK", misc_path=(slow,), misc_timeout=0.3))
    start = time.monotonic()
    assert run(t) == Outcome(False, "script timed out after 0.3s")
    assert time.monotonic() - start < 2.0
    assert attempt_limit(t) > 0.3
    # no misc_timeout: the delay_loop bounds it
    t2 = target(Checker("MISC_CHECK", misc_path=(slow,)), delay_loop=0.3)
    assert run(t2) == Outcome(False, "script timed out after 0.3s")


def test_unrunnable_scripts_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    outcome = run(target(Checker("MISC_CHECK", misc_path=(str(plain),))))
    assert not outcome.ok and outcome.detail.startswith("script refused:")
    assert "not executable" in outcome.detail
    missing = run(target(Checker("MISC_CHECK", misc_path=("no-such-command-hk",))))
    assert missing == Outcome(False, "script refused: no-such-command-hk: not found in PATH")
    assert run(target(Checker("MISC_CHECK"))) == Outcome(False, "MISC_CHECK has no misc_path")


def test_no_script_user_is_refused(tmp_path: Path) -> None:
    # the daemon resolves `user`/script_user when it builds targets; -1 means none was found
    ok = script(tmp_path, "exit 0")
    nobody = replace(target(Checker("MISC_CHECK", misc_path=(ok,))), script_uid=-1, script_gid=-1)
    assert run(nobody) == Outcome(False, "script refused: no script user (see script_user)")


# -- FILE_CHECK --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "weight", "reverse", "ok", "new"), [
    (0, 0, False, True, None),   # weight 0: zero is up...
    (3, 0, False, False, None),  # ...anything else down
    (0, 0, True, False, None),   # reversed: zero is down
    (3, 0, True, True, None),
    (0, 5, False, True, 10),     # the share is value * weight, added to the own weight
    (2, 5, False, True, 20),
    (2, 5, True, True, 0),       # 10 - 10, never below 0
    (-3, 2, False, True, 4),
    (2**31, -1, False, False, None),  # exactly keepalived's fault weight: down
    (2**31, 1, True, False, None),
    (2**31, 2, False, True, 2**31 - 1),  # clamped, far from the fault
])  # fmt: skip
def test_file_value_to_weight(
    value: int, weight: int, reverse: bool, ok: bool, new: int | None
) -> None:
    outcome = file_check.file_outcome(value, weight=weight, reverse=reverse, base=10)
    assert (outcome.ok, outcome.weight) == (ok, new)


def test_file_check_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    t = target(Checker("FILE_CHECK", file=str(path)))
    assert run(t) == Outcome(True, "file holds 0")  # missing: 0, as keepalived
    path.write_text("1\n")
    assert run(t) == Outcome(False, "file holds 1")
    path.write_text("0x10 trailing junk")
    assert run(replace(t, checker=replace(t.checker, weight=1))).detail == (
        "file holds 16: weight +16"
    )
    path.write_text("99999999999")  # out of range: ignored, the last value stays
    assert run(replace(t, checker=replace(t.checker, weight=1))).detail == (
        "file holds 16: weight +16"
    )
    assert run(target(Checker("FILE_CHECK"))) == Outcome(False, "FILE_CHECK has no file")
