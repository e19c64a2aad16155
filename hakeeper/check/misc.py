"""MISC_CHECK: run `misc_path`; its exit status says up or down (check_misc.c).

- exit 0: up; with `misc_dynamic` the weight goes back to the real server's own;
- with `misc_dynamic`, exit 2..255: up with weight exit-2 (so 2 means weight 0);
- any other exit (1 always): down; so is a timeout (misc_timeout, else delay_loop), a death
  by signal, or a script that cannot run;
- the script runs as the checker's `user [group]`, else the default script user, and is
  refused under enable_script_security when its path is unsafe (hakeeper.scripts).
"""

from __future__ import annotations

from hakeeper.check.base import Outcome, clamp_weight, seconds
from hakeeper.check.target import CheckTarget
from hakeeper.scripts import ScriptResult, prepare_script, run_script


def misc_outcome(
    result: ScriptResult, *, dynamic: bool, weight: int, timeout: float | None = None
) -> Outcome:
    """keepalived's reading of one run; `weight` is the real server's configured weight
    (misc_dynamic's exit 0 returns to it)."""
    if result.timed_out:
        after = f" after {seconds(timeout)}" if timeout is not None else ""
        return Outcome(False, f"script timed out{after}")
    if result.error is not None:
        return Outcome(False, f"script could not run: {result.error}")
    if result.exit_code is None:
        return Outcome(False, f"script killed by signal {result.signal}")
    code = result.exit_code
    if code == 0:
        return Outcome(True, "exit 0", weight if dynamic else None)
    if dynamic and 2 <= code <= 255:
        return Outcome(True, f"exit {code}: weight {code - 2}", code - 2)
    return Outcome(False, f"exit {code}")


async def check(target: CheckTarget) -> Outcome:
    ck = target.checker
    if not ck.misc_path:
        return Outcome(False, "MISC_CHECK has no misc_path")
    uid, gid = target.script_uid, target.script_gid  # resolved by the daemon, not here
    if uid < 0 or gid < 0:
        return Outcome(False, "script refused: no script user (see script_user)")
    prepared = prepare_script(
        ck.misc_path, enable_script_security=target.script_security, uid=uid, gid=gid
    )
    if prepared.refused is not None:
        return Outcome(False, f"script refused: {prepared.refused}")
    timeout = target.misc_timeout or target.delay_loop
    result = await run_script(prepared.argv, timeout=timeout, uid=uid, gid=gid)
    return misc_outcome(
        result, dynamic=ck.misc_dynamic, weight=clamp_weight(target.rs_weight), timeout=timeout
    )
