"""`vrrp_script`: run one check script every `interval`, judge it with rise/fall.

One runner per vrrp_script, however many instances and sync groups track it (keepalived
keeps one `vrrp_script_t` with a list of tracking instances). The script runs in a child
process through `hakeeper.scripts.run_script`, so the event loop (and the adverts) never
wait for it; at `timeout` (default: the interval) its whole process group is killed and the
run counts as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum

from hakeeper.config.model import VrrpScript
from hakeeper.scripts import ScriptResult, kill_group, run_script
from hakeeper.track.phase import finish, phase

log = logging.getLogger(__name__)

# keepalived drops a script refused by the security check from every instance (vrrp.c
# check_vrrp_script_security), so it has no effect at all. hakeeper instead counts it as
# failed: a health check that cannot run must not leave the node looking healthy.
DISABLED_COUNTS_AS_FAILED = True


class ScriptState(StrEnum):
    INIT = "INIT"  # has not exited once yet (keepalived's SCRIPT_INIT_STATE_INIT)
    GOOD = "GOOD"
    BAD = "BAD"
    DISABLED = "DISABLED"  # refused (security, missing file, unknown user): never run


def rise_fall(result: int, success: bool, rise: int, fall: int, init: bool) -> tuple[int, bool]:
    """keepalived's counter (vrrp_scheduler.c vrrp_script_child_thread), one run at a time.

    `result` runs 0..rise+fall-1 and the script is good when result >= rise. A success
    below rise-1 climbs one step; reaching rise jumps to the top (so `fall` failures in a
    row are needed to go bad). A failure above rise steps down; at rise (or while still
    INIT) it turns bad and drops to 0 (so `rise` successes in a row are needed to go good).
    Returns (new result, whether the judgement changed)."""
    top = rise + fall - 1
    if success:
        if result < rise - 1:
            return result + 1, False
        if result != top:
            return top, result < rise
        return result, False
    if result > rise:
        return result - 1, False
    return 0, result == rise or init


class VrrpScriptRunner:
    """Runs one vrrp_script; `on_change(runner)` when its good/bad judgement changes."""

    def __init__(
        self,
        config: VrrpScript,
        *,
        argv: tuple[str, ...] | None = None,
        uid: int,
        gid: int,
        on_change: Callable[[VrrpScriptRunner], None] | None = None,
        disabled: str | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.argv = argv if argv is not None else config.script
        self.uid = uid
        self.gid = gid
        self.on_change = on_change
        self.disabled = disabled
        self.timeout = config.timeout if config.timeout is not None else config.interval
        # vrrp_scheduler.c vrrp_init_script: one success is enough to start good, unless
        # init_fail, which starts bad and needs `rise` successes
        self.init = not config.init_fail
        self.result = config.rise - 1 if self.init else 0
        self.last_exit: int | None = None
        self.last_result: ScriptResult | None = None
        self.runs = 0
        self._task: asyncio.Task[None] | None = None
        self._pgid: int | None = None
        if disabled is not None:
            log.error("VRRP_Script(%s) disabled: %s", self.name, disabled)

    # -- state

    @property
    def state(self) -> ScriptState:
        if self.disabled is not None:
            return ScriptState.DISABLED
        if self.init:
            return ScriptState.INIT
        return ScriptState.GOOD if self.result >= self.config.rise else ScriptState.BAD

    @property
    def good(self) -> bool | None:
        """True good, False bad, None not known yet (INIT): what the weights read."""
        state = self.state
        if state is ScriptState.DISABLED:
            return False if DISABLED_COUNTS_AS_FAILED else None
        if state is ScriptState.INIT:
            return None
        return state is ScriptState.GOOD

    # -- running

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._task is not None or self.disabled is not None:
            return
        loop = loop or asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name=f"vrrp_script {self.name}")

    def stop(self) -> None:
        """Stop at once: a running script's process group is killed now, not later."""
        if self._pgid is not None:
            kill_group(self._pgid)
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        self.stop()
        await finish(self._task)
        self._task = None

    async def _loop(self) -> None:
        # keepalived runs the script at once, then every `interval` on a fixed beat,
        # skipping a beat while the previous run is still going
        interval = self.config.interval
        # after the first run, each script keeps its own phase of the beat: hundreds of
        # scripts launched in the same instant would hold up the advert timers
        offset = phase(self.name, interval)
        while True:
            started = time.monotonic()
            await self.run_once()
            now = time.monotonic()
            beat = started + interval + offset
            offset = 0.0
            while beat <= now:
                beat += interval
            await asyncio.sleep(beat - now)

    def _spawned(self, pgid: int) -> None:
        self._pgid = pgid

    async def run_once(self) -> ScriptResult:
        """One run, judged; public so tests and `hakeeperctl` can trigger a check."""
        try:
            res = await run_script(
                self.argv, timeout=self.timeout, uid=self.uid, gid=self.gid, on_spawn=self._spawned
            )
        finally:
            self._pgid = None
        self.record(res)
        return res

    def record(self, res: ScriptResult) -> None:
        """Apply one run's outcome to the rise/fall counter."""
        self.runs += 1
        self.last_result = res
        success = res.exit_code == 0
        if res.exit_code is not None and res.exit_code != self.last_exit:
            log.info("Script `%s` now returning %d", self.name, res.exit_code)
        self.last_exit = res.exit_code
        if res.timed_out:
            log.warning("VRRP_Script(%s) timed out after %gs; process group killed",
                        self.name, self.timeout)  # fmt: skip
        elif res.error is not None:
            log.warning("VRRP_Script(%s) could not run: %s", self.name, res.error)
        before = self.good
        self.result, changed = rise_fall(
            self.result, success, self.config.rise, self.config.fall, self.init
        )
        self.init = False
        if changed:
            how = "succeeded" if success else "timed_out" if res.timed_out else "failed"
            log.info("VRRP_Script(%s) %s", self.name, how)
        if self.good != before and self.on_change is not None:
            self.on_change(self)


__all__ = ["DISABLED_COUNTS_AS_FAILED", "ScriptState", "VrrpScriptRunner", "rise_fall"]
