"""Running external scripts safely: track scripts, notify scripts and check scripts share this.

keepalived's rules (keepalived/core/notify.c), kept so an existing setup behaves the same:

- A bare command name is searched for in PATH (`find_path`), executable for the user that
  will run it (`is_executable`), and the rest of the argv is kept.
- A script run as root (uid or gid 0, or a set-uid/set-gid root file) must not be modifiable
  by anyone but root: every component of its path, and of the path it resolves to, is owned by
  root and not writable by a non-root group or by others (`check_security`); a directory with
  the sticky bit (/tmp) may be world-writable. An unsafe script is refused when
  `enable_script_security` is set, otherwise it runs with a warning, as keepalived does.
- The default user is `keepalived_script` when that user exists, else the daemon's own user;
  with `enable_script_security` and no such user, scripts without their own user are refused
  (`get_default_script_user`). `script_user` in global_defs replaces the default.
- The script runs in its own process group, with IFS/LD_PRELOAD/LD_LIBRARY_PATH removed from
  its environment (`system_call_script`); at its timeout the whole group is SIGKILLed
  (`child_killed_thread`: `kill(-pgid, SIGKILL)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_SCRIPT_USER = "keepalived_script"
# keepalived removes these before exec: a script must not inherit a loader or IFS override.
UNSAFE_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
# POSIX `getconf PATH`, used by keepalived (confstr(_CS_PATH)) when PATH is unset.
CS_PATH = "/bin:/usr/bin"


class ScriptUserError(LookupError):
    """A script user or group that does not exist (or no default user under script security)."""


@dataclass(frozen=True)
class ScriptResult:
    """How one run ended. `exit_code` is None when the script did not exit by itself
    (timed out, killed by a signal, or could not be started: then `error` says why)."""

    exit_code: int | None
    timed_out: bool
    error: str | None
    duration: float
    signal: int | None = None  # the signal that ended it, when it did not exit

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class PreparedScript:
    """A script argv ready to run: argv[0] resolved through PATH, and the verdict of the
    security check. `refused` set means do not run it (the message says why); `warning` is
    an unsafe path that keepalived still runs because script security is off."""

    argv: tuple[str, ...]
    uid: int
    gid: int
    refused: str | None = None
    warning: str | None = None


# ---------------------------------------------------------------- users


def resolve_user(user: str | None, group: str | None = None) -> tuple[int, int]:
    """(uid, gid) for `user [group]` as keepalived's set_uid_gid: the user's primary group
    unless a group is named. A leading ':' on the group (keepalived's "also set the
    supplementary groups") is accepted; hakeeper always clears supplementary groups.
    `user` None means the daemon's own ids."""
    if user is None:
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise ScriptUserError(f"script user '{user}' does not exist") from None
    gid = pw.pw_gid
    if group is not None:
        group = group.removeprefix(":")
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        except KeyError:
            raise ScriptUserError(f"script group '{group}' does not exist") from None
    return pw.pw_uid, gid


def default_script_user(
    script_user: str | None = None,
    script_group: str | None = None,
    *,
    enable_script_security: bool = False,
) -> tuple[int, int]:
    """The user scripts run as when they name none.

    `script_user` (global_defs) when given; else `keepalived_script` if it exists; else the
    daemon's own uid/gid. keepalived (notify.c get_default_script_user) refuses to fall back
    to root when script security is on: that raises ScriptUserError, and the scripts that
    depend on the default are not run."""
    if script_user is not None:
        return resolve_user(script_user, script_group)
    try:
        return resolve_user(DEFAULT_SCRIPT_USER)
    except ScriptUserError:
        if enable_script_security:
            raise ScriptUserError(
                f"enable_script_security is set but user '{DEFAULT_SCRIPT_USER}' does not "
                "exist: set script_user in global_defs (for example `script_user root`)"
            ) from None
        return os.geteuid(), os.getegid()


# ---------------------------------------------------------------- finding and checking


def _is_executable(st: os.stat_result, uid: int, gid: int) -> bool:
    """keepalived's is_executable(): root needs any x bit; else owner/group/other bits."""
    mode = st.st_mode
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def find_executable(name: str, uid: int, gid: int, path: str | None = None) -> str | None:
    """Search PATH for `name` as keepalived's find_path (glibc execvpe's search): the first
    regular file executable by uid/gid. A name containing '/' is returned as it is."""
    if "/" in name:
        return name
    if not name:
        return None
    search = path if path is not None else os.environ.get("PATH") or CS_PATH
    for entry in search.split(":"):
        candidate = os.path.join(entry, name) if entry else name
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _is_executable(st, uid, gid):
            return candidate
    return None


def _components(path: str) -> list[str]:
    """'/a/b/c' -> ['/', '/a', '/a/b', '/a/b/c'], each checked in turn as keepalived does."""
    parts = [p for p in path.split("/") if p]
    out = ["/"]
    for i in range(len(parts)):
        out.append("/" + "/".join(parts[: i + 1]))
    return out


def _unsafe_component(path: str) -> str | None:
    """keepalived's check_security(): the first component of `path` a non-root user could
    change, described; None when every component is safe."""
    comps = _components(path)
    for i, comp in enumerate(comps):
        last = i == len(comps) - 1
        try:
            st = os.lstat(comp)  # AT_SYMLINK_NOFOLLOW: a symlink is judged itself
        except OSError as e:
            return f"{comp} cannot be examined ({e.strerror})"
        mode = st.st_mode
        if not last and not stat.S_ISDIR(mode):
            # keepalived: "Wrong file type found in script path" - a symlinked directory
            # could be repointed, so it is refused like any other wrong type
            return f"{comp} is not a directory"
        if last and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            return f"{comp} is not a regular file"
        if st.st_uid != 0:
            return f"{comp} is owned by uid {st.st_uid}, not root"
        # the sticky bit stops others replacing entries they do not own (/tmp)
        checked = stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and not mode & stat.S_ISVTX)
        if checked and st.st_gid != 0 and mode & stat.S_IWGRP:
            return f"{comp} is writable by group {st.st_gid}"
        if checked and mode & stat.S_IWOTH:
            return f"{comp} is writable by others"
    return None


def check_script_security(
    path: str,
    *,
    enable_script_security: bool,
    run_as_uid: int,
    run_as_gid: int | None = None,
) -> str | None:
    """Why the script at `path` must not run as `run_as_uid`, or None if it may.

    Refused: a file that cannot be found in PATH or accessed, that is not executable by that
    user, or (with `enable_script_security`) whose path a non-root user could modify while it
    runs as root. Without script security an unsafe path is logged and allowed, as
    keepalived does; `prepare_script` returns that warning to the caller instead."""
    return prepare_script(
        (path,),
        enable_script_security=enable_script_security,
        uid=run_as_uid,
        gid=run_as_gid if run_as_gid is not None else run_as_uid,
        log_warning=True,
    ).refused


def prepare_script(
    argv: Sequence[str],
    *,
    enable_script_security: bool,
    uid: int,
    gid: int,
    log_warning: bool = False,
) -> PreparedScript:
    """Resolve argv[0] and judge it as keepalived's check_script_secure() does."""
    argv = tuple(argv)
    if not argv or not argv[0]:
        return PreparedScript(argv, uid, gid, refused="empty command")
    name = argv[0]
    if name.lstrip().startswith("<"):
        # keepalived (SC_SYSTEM): `</dev/tcp/host/port` only tests that a file opens; it is
        # run through the shell and has no file of its own to check
        return PreparedScript(("/bin/sh", "-c", " ".join(argv)), uid, gid)
    found = find_executable(name, uid, gid)
    if found is None:
        return PreparedScript(argv, uid, gid, refused=f"{name}: not found in PATH")
    if found != name:
        log.info("script '%s' resolved by PATH search to '%s'; please give the full path",
                 name, found)  # fmt: skip
    resolved = os.path.abspath(found)
    argv = (resolved, *argv[1:])
    try:
        real = os.path.realpath(resolved, strict=True)
        st = os.stat(real)
    except OSError as e:
        return PreparedScript(argv, uid, gid, refused=f"{resolved}: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return PreparedScript(argv, uid, gid, refused=f"{resolved}: not a regular file")
    if not _is_executable(st, uid, gid):
        return PreparedScript(
            argv, uid, gid, refused=f"{resolved}: not executable by uid:gid {uid}:{gid}"
        )
    # Only a script that runs with root's powers needs its path protected: a script run as
    # an ordinary user could be edited by that user anyway.
    setuid_root = st.st_uid == 0 and st.st_mode & stat.S_IXUSR and st.st_mode & stat.S_ISUID
    setgid_root = st.st_gid == 0 and st.st_mode & stat.S_IXGRP and st.st_mode & stat.S_ISGID
    if not (uid == 0 or gid == 0 or setuid_root or setgid_root):
        return PreparedScript(argv, uid, gid)
    problem = _unsafe_component(resolved)
    if problem is None and real != resolved:
        problem = _unsafe_component(real)  # what really runs is the symlink's target
    if problem is None:
        return PreparedScript(argv, uid, gid)
    message = f"{resolved}: {problem}"
    if enable_script_security:
        return PreparedScript(argv, uid, gid, refused=message)
    if log_warning:
        log.warning("unsafe permissions for script %s (enable_script_security would refuse it)",
                    message)  # fmt: skip
    return PreparedScript(argv, uid, gid, warning=message)


# ---------------------------------------------------------------- running


def script_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment minus keepalived's unsafe variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in UNSAFE_ENV}
    if extra:
        env.update(extra)
    return env


def _credentials(uid: int, gid: int) -> dict[str, object]:
    """Popen keywords to become uid/gid; none when we already are them (root to root)."""
    if uid == os.geteuid() and gid == os.getegid():
        return {}
    kw: dict[str, object] = {"user": uid, "group": gid}
    if os.geteuid() == 0:
        kw["extra_groups"] = []  # keepalived clears the supplementary groups (setgroups)
    return kw


def kill_group(pgid: int) -> None:
    """SIGKILL a script's whole process group; gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_script(
    argv: Sequence[str],
    *,
    timeout: float | None,
    uid: int,
    gid: int,
    env: Mapping[str, str] | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> ScriptResult:
    """Run one command to completion without blocking the loop; never raises for the
    script's sake (a missing or unexecutable file gives `error`).

    The script gets its own session, so its process group id is its pid: at the timeout
    the whole group (the script and whatever it started) is SIGKILLed and the script
    reaped. `env` adds variables to the daemon's environment (minus IFS/LD_*).
    `on_spawn(pid)` is told the process group id, so an owner can kill it synchronously
    (on stop) without waiting for the task to be cancelled."""
    start = time.monotonic()
    if not argv:
        return ScriptResult(None, False, "empty command", 0.0)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=script_env(env),
            close_fds=True,
            **_credentials(uid, gid),  # type: ignore[arg-type]
        )
    except (OSError, subprocess.SubprocessError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return ScriptResult(None, False, f"{argv[0]}: {reason}", time.monotonic() - start)
    if on_spawn is not None:
        on_spawn(proc.pid)
    timed_out = False
    try:
        try:
            if timeout is None:
                await proc.wait()
            else:
                await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            # the script is not reaped yet, so its pid (= pgid) cannot have been reused
            kill_group(proc.pid)
            await proc.wait()
    except asyncio.CancelledError:
        # the caller gave up (stop/reload): leave nothing running behind us
        if proc.returncode is None:
            kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
        raise
    duration = time.monotonic() - start
    code = proc.returncode
    if timed_out:
        return ScriptResult(None, True, None, duration, signal=int(signal.SIGKILL))
    if code is not None and code < 0:
        return ScriptResult(None, False, None, duration, signal=-code)
    return ScriptResult(code, False, None, duration)


__all__ = [
    "DEFAULT_SCRIPT_USER",
    "PreparedScript",
    "ScriptResult",
    "ScriptUserError",
    "check_script_security",
    "default_script_user",
    "find_executable",
    "kill_group",
    "prepare_script",
    "resolve_user",
    "run_script",
    "script_env",
]
