"""Notify scripts: which ones a transition runs, their argv and environment, and running them.

keepalived's rules (vrrp_notify.c send_instance_notifies / send_group_notifies /
send_event_notify / notify_script_exec):

- the state's own script (`notify_master`, `notify_backup`, `notify_fault`, `notify_stop`)
  runs with its argv exactly as configured;
- then the generic `notify` script with `TYPE NAME STATE PRIORITY` appended:
  `INSTANCE VI_1 MASTER 100`, `GROUP VG_1 BACKUP 0` (a group's priority is always 0);
- `MASTER_RX_LOWER_PRI` runs only `notify_master_rx_lower_pri`, never the generic script.

hakeeper adds `HAKEEPER_NOTIFY_SEQ/TYPE/NAME/STATE/PRIORITY` to the environment, and runs the
two scripts of one transition one after the other (keepalived forks both at once), each under
a timeout. Every failure (missing, refused, non-zero exit, timeout) is one log line naming
the object, the keyword and the path; nothing is raised to the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hakeeper.config.model import GlobalDefs, Notify
from hakeeper.notify.events import Transition
from hakeeper.scripts import ScriptUserError, default_script_user, prepare_script, run_script

log = logging.getLogger("hakeeper.notify")

# the keyword of the script each state runs (keepalived get_iscript / get_gscript)
STATE_KEYWORDS = {
    "MASTER": "notify_master",
    "BACKUP": "notify_backup",
    "FAULT": "notify_fault",
    "STOP": "notify_stop",
    "MASTER_RX_LOWER_PRI": "notify_master_rx_lower_pri",
}


@dataclass(frozen=True)
class ScriptPolicy:
    """Who notify scripts run as, whether unsafe paths are refused, and for how long.

    `user_error` set means no script can run (the configured or required default user does
    not exist); it is logged with each refused script so the cause is never hidden."""

    uid: int
    gid: int
    enable_script_security: bool
    timeout: float
    user_error: str | None = None

    @classmethod
    def from_global_defs(cls, g: GlobalDefs, timeout: float) -> ScriptPolicy:
        try:
            uid, gid = default_script_user(
                g.script_user, enable_script_security=g.enable_script_security
            )
        except ScriptUserError as e:
            return cls(-1, -1, g.enable_script_security, timeout, user_error=str(e))
        return cls(uid, gid, g.enable_script_security, timeout)


def scripts_for(notify: Notify, event: Transition) -> list[tuple[str, tuple[str, ...]]]:
    """The (keyword, argv) pairs a transition runs, in the order they run."""
    out: list[tuple[str, tuple[str, ...]]] = []
    keyword = STATE_KEYWORDS[event.state]
    argv = getattr(notify, keyword)
    if argv:
        out.append((keyword, argv))
    if notify.notify and event.state != "MASTER_RX_LOWER_PRI":
        args = (event.kind, event.name, event.state, str(event.priority))
        out.append(("notify", (*notify.notify, *args)))
    return out


def notify_env(event: Transition) -> dict[str, str]:
    """Variables added to the script's environment (the daemon's own, minus IFS/LD_*)."""
    return {
        "HAKEEPER_NOTIFY_SEQ": str(event.seq),
        "HAKEEPER_NOTIFY_TYPE": event.kind,
        "HAKEEPER_NOTIFY_NAME": event.name,
        "HAKEEPER_NOTIFY_STATE": event.state,
        "HAKEEPER_NOTIFY_PRIORITY": str(event.priority),
    }


async def run_notify_script(
    keyword: str, argv: tuple[str, ...], event: Transition, policy: ScriptPolicy
) -> bool:
    """Run one notify script to its end or its timeout; True if it exited with status 0."""
    who = f"{event.label}: {keyword} script {argv[0]}"
    if policy.user_error is not None:
        log.error("%s not run: %s", who, policy.user_error)
        return False
    prepared = prepare_script(
        argv,
        enable_script_security=policy.enable_script_security,
        uid=policy.uid,
        gid=policy.gid,
    )
    if prepared.refused is not None:
        log.error("%s refused: %s", who, prepared.refused)
        return False
    if prepared.warning is not None:
        log.warning("%s has an unsafe path (enable_script_security would refuse it): %s",
                    who, prepared.warning)  # fmt: skip
    result = await run_script(
        prepared.argv,
        timeout=policy.timeout,
        uid=policy.uid,
        gid=policy.gid,
        env=notify_env(event),
    )
    what = f"({event.state}, seq {event.seq})"
    if result.error is not None:
        log.error("%s failed to start %s: %s", who, what, result.error)
    elif result.timed_out:
        log.error("%s timed out after %gs %s; killed", who, policy.timeout, what)
    elif result.signal is not None:
        log.error("%s killed by signal %d %s", who, result.signal, what)
    elif result.exit_code != 0:
        log.warning("%s exited with status %s %s", who, result.exit_code, what)
    else:
        log.debug("%s done in %.3fs %s", who, result.duration, what)
    return result.ok


async def deliver(event: Transition, notify: Notify, policy: ScriptPolicy) -> None:
    """Run every script of one transition, one after the other."""
    for keyword, argv in scripts_for(notify, event):
        await run_notify_script(keyword, argv, event, policy)


__all__ = [
    "STATE_KEYWORDS",
    "ScriptPolicy",
    "deliver",
    "notify_env",
    "run_notify_script",
    "scripts_for",
]
