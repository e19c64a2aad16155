"""Every tracker of a config, and the effective priority each VRRP instance gets from them.

The daemon builds one `Tracking` from the Config, calls `start(loop)`, forwards link events
to `on_link()`, and receives `on_priority(instance, effective_priority)` whenever an
instance's effective priority changes (0 = FAULT); it passes that on to
`VrrpCore.on_priority`. A reload calls `reconfigure()`, which keeps every runner whose
config did not change, so script results and file values survive it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hakeeper.config.model import Config, VrrpScript
from hakeeper.scripts import ScriptUserError, default_script_user, prepare_script, resolve_user
from hakeeper.track.files import TrackFileWatcher
from hakeeper.track.interfaces import InterfaceStates
from hakeeper.track.process import ProcessMonitor, ProcessTracker
from hakeeper.track.script import ScriptState, VrrpScriptRunner
from hakeeper.track.weights import Binding, Contribution, Kind, bindings, contribution
from hakeeper.track.weights import effective_priority as compute_priority

log = logging.getLogger(__name__)

OnPriority = Callable[[str, int], None]


@dataclass(frozen=True)
class TrackerView:
    """One tracker as an instance sees it, for D-Bus, SNMP, the JSON dump and the CLI.

    state: script INIT/GOOD/BAD/DISABLED; interface UP/DOWN/UNKNOWN; file OK/FAULT;
    process UP/DOWN/INIT (quorum held or not). value: a script's last exit code, a file's
    number, a process count."""

    kind: str
    name: str
    state: str
    weight: int
    reverse: bool
    value: int | None
    contribution: int | None  # the priority delta now; None = it faults the instance
    via_group: str | None = None


@dataclass(frozen=True)
class _Prepared:
    """How a vrrp_script will run: compared on reload to decide whether to keep a runner."""

    argv: tuple[str, ...]
    uid: int
    gid: int
    disabled: str | None


class Tracking:
    def __init__(
        self,
        config: Config,
        on_priority: OnPriority | None = None,
        *,
        poll_interval: float = 1.0,
        base_of: Callable[[str], int | None] | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_priority = on_priority
        # an operator's base priority for an instance (SetPriority), read from the model
        self.base_of = base_of
        # a tracker of this instance changed state (views show the trackers)
        self.on_change = on_change
        self.poll_interval = poll_interval
        self.scripts: dict[str, VrrpScriptRunner] = {}
        self.files: dict[str, TrackFileWatcher] = {}
        self.processes = ProcessMonitor(poll_interval)
        self.interfaces = InterfaceStates()
        self._bindings: dict[str, list[Binding]] = {}
        self._users: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> instances
        self._priority: dict[str, int] = {}
        self._prepared: dict[str, _Prepared] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._apply(config, reload=False)

    # ------------------------------------------------------------ lifecycle

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        for runner in self.scripts.values():
            runner.start(self._loop)
        for watcher in self.files.values():
            watcher.start(self._loop)
        if self.processes.trackers:
            self.processes.start(self._loop)

    def stop(self) -> None:
        """Stop everything now; running scripts' process groups are killed at once."""
        for runner in self.scripts.values():
            runner.stop()
        for watcher in self.files.values():
            watcher.stop()
        self.processes.stop()

    async def aclose(self) -> None:
        """stop(), then wait until every task has ended."""
        for runner in self.scripts.values():
            await runner.aclose()
        for watcher in self.files.values():
            await watcher.aclose()
        await self.processes.aclose()

    def reconfigure(self, config: Config) -> None:
        """A reload: keep unchanged runners (and their state), replace the rest, and report
        the instances whose effective priority changed."""
        self.config = config
        self._apply(config, reload=True)

    # ------------------------------------------------------------ inputs

    def on_link(self, ifname: str, up: bool) -> None:
        if self.interfaces.on_link(ifname, up):
            self._changed(Kind.INTERFACE, ifname)

    # ------------------------------------------------------------ views

    def priority(self, instance: str) -> int:
        """The effective priority now: 0 = FAULT, else 1..254 (255 for the owner)."""
        base = self.base_of(instance) if self.base_of is not None else None
        if base is None:
            base = self.config.instance(instance).priority
        return compute_priority(base, self._contributions(instance))

    def refresh(self, instance: str) -> None:
        """The base priority changed (SetPriority): recompute and report."""
        self._refresh(instance)

    def ready(self, instance: str) -> bool:
        """False while a weight-0 script has not reported yet: keepalived keeps such an
        instance in INIT (num_script_init) rather than guess it is healthy."""
        for b in self._bindings.get(instance, ()):
            if b.kind is Kind.SCRIPT and b.weight == 0:
                runner = self.scripts.get(b.name)
                if runner is not None and runner.state is ScriptState.INIT:
                    return False
        return True

    def trackers(self, instance: str) -> list[TrackerView]:
        views = []
        for b in self._bindings.get(instance, ()):
            c = self._contribution(b)
            state, value = self._state(b)
            views.append(
                TrackerView(
                    kind=b.kind.value,
                    name=b.name,
                    state=state,
                    weight=b.weight,
                    reverse=b.reverse,
                    value=value,
                    contribution=contribution(c),
                    via_group=b.via_group,
                )
            )
        return views

    # ------------------------------------------------------------ internals

    def _state(self, b: Binding) -> tuple[str, int | None]:
        if b.kind is Kind.SCRIPT:
            runner = self.scripts[b.name]
            return runner.state.value, runner.last_exit
        if b.kind is Kind.INTERFACE:
            up = self.interfaces.is_up(b.name)
            return ("UNKNOWN" if up is None else "UP" if up else "DOWN"), None
        if b.kind is Kind.FILE:
            watcher = self.files[b.name]
            c = contribution(self._contribution(b))
            return ("FAULT" if c is None else "OK"), watcher.value
        tracker = self.processes.trackers[b.name]
        quorum = tracker.have_quorum
        return ("INIT" if quorum is None else "UP" if quorum else "DOWN"), tracker.count

    def _contribution(self, b: Binding) -> Contribution:
        if b.kind is Kind.SCRIPT:
            up = self.scripts[b.name].good
            return Contribution(b.kind, b.weight, b.reverse, up=up, name=b.name)
        if b.kind is Kind.INTERFACE:
            up = self.interfaces.is_up(b.name)
            return Contribution(b.kind, b.weight, b.reverse, up=up, name=b.name)
        if b.kind is Kind.FILE:
            value = self.files[b.name].value
            return Contribution(b.kind, b.weight, b.reverse, value=value, name=b.name)
        quorum = self.processes.trackers[b.name].have_quorum
        return Contribution(b.kind, b.weight, b.reverse, up=quorum, name=b.name)

    def _contributions(self, instance: str) -> list[Contribution]:
        return [self._contribution(b) for b in self._bindings.get(instance, ())]

    def _changed(self, kind: Kind, name: str) -> None:
        for instance in self._users.get((kind.value, name), ()):
            self._refresh(instance)
            if self.on_change is not None:
                self.on_change(instance)

    def _refresh(self, instance: str, *, report: bool = True) -> None:
        new = self.priority(instance)
        old = self._priority.get(instance)
        self._priority[instance] = new
        if old is not None and new != old:
            log.info("(%s) Changing effective priority from %d to %d", instance, old, new)
            if report and self.on_priority is not None:
                self.on_priority(instance, new)

    def _prepare(self, s: VrrpScript) -> _Prepared:
        g = self.config.global_defs
        try:
            if s.user is not None:
                uid, gid = resolve_user(s.user, s.group)
            else:
                uid, gid = default_script_user(
                    g.script_user, enable_script_security=g.enable_script_security
                )
        except ScriptUserError as e:
            return _Prepared(s.script, 0, 0, str(e))
        p = prepare_script(
            s.script, enable_script_security=g.enable_script_security, uid=uid, gid=gid
        )
        if p.warning is not None:
            log.warning("VRRP_Script(%s): unsafe permissions: %s (enable_script_security "
                        "would refuse it)", s.name, p.warning)  # fmt: skip
        return _Prepared(p.argv, uid, gid, p.refused)

    def _apply(self, config: Config, *, reload: bool) -> None:
        self._bindings = {i.name: bindings(config, i) for i in config.vrrp_instances}
        used: dict[tuple[str, str], list[str]] = {}
        for inst, binds in self._bindings.items():
            for b in binds:
                used.setdefault((b.kind.value, b.name), []).append(inst)
        self._users = used

        # scripts: only those some instance tracks run (a disabled one still has a runner)
        wanted = {s.name: s for s in config.vrrp_scripts if (Kind.SCRIPT.value, s.name) in used}
        for name in list(self.scripts):
            runner = self.scripts[name]
            s = wanted.get(name)
            prepared = self._prepare(s) if s is not None else None
            if s is None or runner.config != s or prepared != self._prepared.get(name):
                runner.stop()
                del self.scripts[name]
                self._prepared.pop(name, None)
        for name, s in wanted.items():
            if name in self.scripts:
                continue
            prepared = self._prepare(s)
            self._prepared[name] = prepared
            runner = VrrpScriptRunner(
                s,
                argv=prepared.argv,
                uid=prepared.uid,
                gid=prepared.gid,
                disabled=prepared.disabled,
                on_change=lambda r: self._changed(Kind.SCRIPT, r.name),
            )
            self.scripts[name] = runner
            if self._loop is not None:
                runner.start(self._loop)

        # files
        wanted_files = {
            f.name: f for f in config.vrrp_track_files if (Kind.FILE.value, f.name) in used
        }
        for name in list(self.files):
            if self.files[name].config != wanted_files.get(name):
                self.files.pop(name).stop()
        for name, f in wanted_files.items():
            if name in self.files:
                continue
            watcher = TrackFileWatcher(
                f,
                on_change=lambda w: self._changed(Kind.FILE, w.name),
                poll_interval=self.poll_interval,
            )
            watcher.initialise(reload=reload)
            self.files[name] = watcher
            if self._loop is not None:
                watcher.start(self._loop)

        # processes: one /proc scan serves them all
        wanted_procs = {
            p.name: p for p in config.vrrp_track_processes if (Kind.PROCESS.value, p.name) in used
        }
        trackers = self.processes.trackers
        for name in list(trackers):
            if trackers[name].config != wanted_procs.get(name):
                trackers.pop(name).stop()
        fresh = [n for n in wanted_procs if n not in trackers]
        for name in fresh:
            trackers[name] = ProcessTracker(
                wanted_procs[name], on_change=lambda t: self._changed(Kind.PROCESS, t.name)
            )
        if fresh:
            self.processes.poll()  # the first reading sets the quorum without a delay
            if self._loop is not None:
                self.processes.start(self._loop)

        # priorities: report those that moved (a new instance's first value is not a change)
        for name in list(self._priority):
            if name not in self._bindings:
                del self._priority[name]
        for name in self._bindings:
            self._refresh(name, report=reload)


__all__ = ["TrackerView", "Tracking"]
