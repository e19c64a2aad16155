"""The LVS side of the daemon: checker results → server state → kernel table.

Checks run in a child process (`hakeeper.check.process.CheckProcess`), as keepalived runs its
checkers in a child, so a thousand checks never delay a VRRP advert. Their changes arrive
here, update the runtime model (the one every view reads), fire notify_up/down and
quorum_up/down, and mark the table dirty; one reconcile task diffs the desired table with
what the backend holds and applies only the difference.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from hakeeper.check.target import CheckKey, CheckTarget
from hakeeper.config.lvs_model import RealServer, VirtualServer, effective_alpha
from hakeeper.config.model import Config, IPAddress
from hakeeper.lvs import desired
from hakeeper.lvs.backend import Backend, BackendError, select_backend
from hakeeper.lvs.reconcile import diff
from hakeeper.lvs.table import Table
from hakeeper.notify.notifier import Notifier
from hakeeper.scripts import ScriptUserError, default_script_user, resolve_user
from hakeeper.state import RealServerState, Runtime, VirtualServerState

log = logging.getLogger("hakeeper.lvs")

POLL_INTERVAL = 2.0  # how often ha_suspend looks at the virtual servers' addresses
SNAPSHOT_INTERVAL = 5.0  # checker status counters for views (changes arrive at once)
COUNTER_NAMES = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")


class Checks(Protocol):
    """What the manager needs of the checker side (CheckProcess, or CheckRunner in tests)."""

    def update(self, targets: list[CheckTarget]) -> None: ...
    def status(self, key: CheckKey) -> Any: ...
    async def stop(self) -> None: ...


class LvsError(Exception):
    """Virtual servers the data plane cannot serve: `problems` names each (FILE:LINE)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class LvsManager:
    def __init__(
        self,
        runtime: Runtime,
        notifier: Notifier,
        *,
        backend_factory: Callable[[str], Backend] = select_backend,
        checks_factory: Callable[[Callable[[CheckKey, Any], None]], Checks] | None = None,
    ) -> None:
        self.runtime = runtime
        self.notifier = notifier
        self._backend_factory = backend_factory
        self._checks_factory = checks_factory
        self.backend: Backend | None = None
        self.checks: Checks | None = None
        self.config: Config | None = None
        self.current: Table = {}  # what the backend holds (after the last successful apply)
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._poll: asyncio.Task[None] | None = None
        self.applies = 0
        self.apply_errors = 0
        self._suspended: frozenset[str] = frozenset()  # ha_suspend: VS names not checked now

    # -- life cycle -----------------------------------------------------------------------

    async def start(self, config: Config) -> None:
        """Open the backend, adopt what a previous run left, start checks and the table."""
        self.backend = self._backend_factory(config.global_defs.lvs_backend)
        self.runtime.lvs_backend = self.backend.name
        self.check_supported(config, self.backend)
        self.current = await self.backend.load()
        if self.current:
            log.info("adopting %d service(s) left by a previous run", len(self.current))
        if self._checks_factory is None:
            from hakeeper.check.process import CheckProcess

            proc = CheckProcess(
                self._on_check,
                lvs_backend=self.backend.name,
                on_counters=self._on_counters,
                snapshot_interval=SNAPSHOT_INTERVAL,
                counters_interval=config.global_defs.lvs_counters_interval,
            )
            await proc.start()
            self.checks = proc
        else:
            self.checks = self._checks_factory(self._on_check)
        self.configure(config)
        self._task = asyncio.create_task(self._reconciler(), name="lvs-reconcile")
        self._poll = asyncio.create_task(self._poller(), name="lvs-poll")
        await self.settle()

    async def stop(self, remove: bool = True) -> None:
        """Stop checks; with `remove`, delete every service this daemon put in the kernel
        (keepalived removes its services at exit), running omega notifies."""
        for task in (self._task, self._poll):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, self._poll) if t), return_exceptions=True)
        if self.checks is not None:
            await self.checks.stop()
        if self.backend is not None:
            if remove:
                for vs in self.runtime.virtual_servers.values():
                    if vs.config.omega:
                        self._omega(vs)
            await self.backend.close(remove=remove)
        self.runtime.virtual_servers.clear()

    @staticmethod
    def check_supported(config: Config, backend: Backend) -> None:
        """Raise LvsError naming each virtual server the backend cannot serve."""
        problems = []
        groups = {g.name: g for g in config.virtual_server_groups}
        for vs in config.virtual_servers:
            state = VirtualServerState(vs, _servers(vs))
            if vs.sorry_server is not None:
                state.sorry_server = RealServerState(vs.sorry_server, sorry=True)
            # every real server in the pool, then the sorry server alone (quorum lost)
            tables = [desired.desired_table([state], groups)]
            state.quorum_up = False
            tables.append(desired.desired_table([state], groups))
            whys = [
                why
                for table in tables
                for entry in table.values()
                if (why := backend.unsupported(entry.service, entry.dests.values()))
            ]
            if whys:
                problems.append(f"{vs.origin}: virtual_server {vs.name}: {whys[0]}")
        if problems:
            raise LvsError(problems)

    # -- config ---------------------------------------------------------------------------

    def configure(self, config: Config) -> None:
        """Take a new config: unchanged servers keep their state and their checks."""
        old = self.runtime.virtual_servers
        new: dict[str, VirtualServerState] = {}
        groups = {g.name: g for g in config.virtual_server_groups}
        for vs in config.virtual_servers:
            prev = old.get(vs.name)
            state = VirtualServerState(vs)
            for rs in vs.real_servers:
                kept = prev.real_servers.get(rs.name) if prev is not None else None
                state.real_servers[rs.name] = self._rs_state(vs, rs, kept)
            if vs.sorry_server is not None:
                state.sorry_server = RealServerState(vs.sorry_server, sorry=True)
            if prev is not None:
                state.quorum_up = prev.quorum_up
                state.last_quorum_change = prev.last_quorum_change
                state.counters = prev.counters
            else:
                state.quorum_up = desired.initial_quorum(state)
                log.info("VS %s: starting with quorum %s", vs.name,
                         "up" if state.quorum_up else "down")  # fmt: skip
            state.services = tuple(str(k) for k in desired.service_keys(vs, groups))
            new[vs.name] = state
        self.runtime.virtual_servers = new
        for name in old.keys() - new.keys():
            self.runtime.emit("virtual_server", name, "removed")
        for name in new.keys() - old.keys():
            self.runtime.emit("virtual_server", name, "added")
        self.config = config
        self._suspended = _suspended(config)
        if self.checks is not None:
            self.checks.update(self._targets(config))
        self._dirty.set()

    def refresh_suspend(self) -> None:
        """ha_suspend: check only the virtual servers whose address is on this host (the
        daemon calls this on VRRP transitions; the poller catches any other change)."""
        if self.config is None:
            return
        now = _suspended(self.config)
        if now == self._suspended:
            return
        for name in now - self._suspended:
            log.info("VS %s: address not local, suspending its checkers (ha_suspend)", name)
        for name in self._suspended - now:
            log.info("VS %s: address local, resuming its checkers (ha_suspend)", name)
        self._suspended = now
        if self.checks is not None:
            self.checks.update(self._targets(self.config))

    def _rs_state(
        self, vs: VirtualServer, rs: RealServer, kept: RealServerState | None
    ) -> RealServerState:
        if kept is not None and kept.config.checkers == rs.checkers:
            state = RealServerState(rs, alive=kept.alive, failed_checkers=kept.failed_checkers,
                                    dynamic_weight=kept.dynamic_weight, enabled=kept.enabled,
                                    last_change=kept.last_change, last_detail=kept.last_detail,
                                    counters=kept.counters)  # fmt: skip
        else:
            # keepalived: a checker starts up, unless alpha (then down until it succeeds)
            failed = {i for i, ck in enumerate(rs.checkers) if effective_alpha(vs, rs, ck)}
            state = RealServerState(rs, alive=not failed, failed_checkers=failed)
        state.checks = lambda: self._check_views(vs, rs)
        return state

    def _targets(self, config: Config) -> list[CheckTarget]:
        g = config.global_defs
        try:
            default = default_script_user(
                g.script_user, enable_script_security=g.enable_script_security
            )
        except ScriptUserError as e:
            log.error("MISC_CHECK scripts without their own user will not run: %s", e)
            default = (-1, -1)
        out = []
        for vs in config.virtual_servers:
            if vs.name in self._suspended:
                continue
            for rs in vs.real_servers:
                for i, ck in enumerate(rs.checkers):
                    uid, gid = default
                    if ck.kind == "MISC_CHECK" and ck.user is not None:
                        # looked up here, once: a user lookup may block (NSS, LDAP)
                        try:
                            uid, gid = resolve_user(ck.user, ck.group)
                        except ScriptUserError as e:
                            log.error("VS %s, %s: MISC_CHECK will not run: %s",
                                      vs.name, rs.name, e)  # fmt: skip
                            uid = gid = -1
                    out.append(
                        CheckTarget.resolve(
                            vs, rs, i, script_security=g.enable_script_security,
                            script_uid=uid, script_gid=gid,
                        )
                    )  # fmt: skip
        return out

    def _check_views(self, vs: VirtualServer, rs: RealServer) -> list[dict[str, Any]]:
        """The live status of one real server's checkers (none while suspended)."""
        if self.checks is None:
            return []
        out = []
        for index in range(len(rs.checkers)):
            try:
                status = self.checks.status((vs.name, rs.name, index))
            except KeyError:
                continue
            out.append({"index": index, "kind": rs.checkers[index].kind, **_status_dict(status)})
        return out

    # -- checker results ------------------------------------------------------------------

    def _on_check(self, key: CheckKey, status: Any) -> None:
        vs_name, rs_name, index = key
        vs = self.runtime.virtual_servers.get(vs_name)
        rs = vs.real_servers.get(rs_name) if vs is not None else None
        if vs is None or rs is None or index >= len(rs.config.checkers):
            return  # a result racing a reload that removed it
        if status.up:
            rs.failed_checkers.discard(index)
        else:
            rs.failed_checkers.add(index)
        weight_changed = status.weight != rs.dynamic_weight
        rs.dynamic_weight = status.weight
        rs.last_detail = status.last_detail
        alive = not rs.failed_checkers
        if alive != rs.alive:
            rs.alive = alive
            rs.last_change = time.time()
            log.info("%s service %s %s VS %s (%s)", "Adding" if alive else "Removing",
                     rs_name, "to" if alive else "from", vs_name, status.last_detail)  # fmt: skip
            self.runtime.emit("real_server", f"{vs_name}/{rs_name}", "alive")
            state = "UP" if alive else "DOWN"
            argv = rs.config.notify_up if alive else rs.config.notify_down
            line = f"RS {rs_name} {vs_name} {state}\n"
            self.notifier.lvs_transition("RS", f"{vs_name}/{rs_name}", state, line, argv)
        elif weight_changed:
            log.info("VS %s: weight of %s now %d", vs_name, rs_name, rs.weight)
            self.runtime.emit("real_server", f"{vs_name}/{rs_name}", "weight")
        else:
            return
        self._quorum(vs)
        self._dirty.set()

    def _quorum(self, vs: VirtualServerState) -> None:
        change = desired.update_quorum(vs)
        if change is None:
            return
        vs.last_quorum_change = time.time()
        c = vs.config
        if change.up:
            log.info("Gained quorum %d+%d=%d <= %d for VS %s", c.quorum, c.hysteresis,
                     change.threshold, change.weight_sum, vs.name)  # fmt: skip
        else:
            log.info("Lost quorum %d-%d=%d > %d for VS %s", c.quorum, c.hysteresis,
                     change.threshold, change.weight_sum, vs.name)  # fmt: skip
        self.runtime.emit("virtual_server", vs.name, "quorum_up")
        state = "UP" if change.up else "DOWN"
        argv = c.quorum_up if change.up else c.quorum_down
        self.notifier.lvs_transition("VS", vs.name, state, f"VS {vs.name} {state}\n", argv)

    def _omega(self, vs: VirtualServerState) -> None:
        """omega: at shutdown, run the down notifiers of what was up (keepalived)."""
        for rs in vs.real_servers.values():
            if rs.alive and rs.config.notify_down:
                name = f"{vs.name}/{rs.config.name}"
                line = f"RS {rs.config.name} {vs.name} DOWN\n"
                self.notifier.lvs_transition("RS", name, "DOWN", line, rs.config.notify_down)
        if vs.quorum_up:
            line = f"VS {vs.name} DOWN\n"
            self.notifier.lvs_transition("VS", vs.name, "DOWN", line, vs.config.quorum_down)

    # -- operator control (D-Bus later) ---------------------------------------------------

    def set_enabled(self, vs_name: str, rs_name: str, enabled: bool) -> None:
        """Drain (weight 0, connections kept) or put back one real server."""
        rs = self._find(vs_name, rs_name)
        rs.enabled = enabled
        self.runtime.emit("real_server", f"{vs_name}/{rs_name}", "enabled")
        self._quorum(self.runtime.virtual_servers[vs_name])
        self._dirty.set()

    def set_weight(self, vs_name: str, rs_name: str, weight: int | None) -> None:
        rs = self._find(vs_name, rs_name)
        rs.weight_override = weight
        self.runtime.emit("real_server", f"{vs_name}/{rs_name}", "weight")
        self._quorum(self.runtime.virtual_servers[vs_name])
        self._dirty.set()

    def _find(self, vs_name: str, rs_name: str) -> RealServerState:
        vs = self.runtime.virtual_servers.get(vs_name)
        if vs is None:
            raise KeyError(f"no virtual server {vs_name}")
        rs = vs.real_servers.get(rs_name)
        if rs is None:
            raise KeyError(f"virtual server {vs_name} has no real server {rs_name}")
        return rs

    # -- the table ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Apply pending changes now (start, tests)."""
        await self._reconcile_once()

    async def _reconciler(self) -> None:
        while True:
            await self._dirty.wait()
            await self._reconcile_once()

    async def _reconcile_once(self) -> None:
        self._dirty.clear()
        if self.backend is None or self.config is None:
            return
        groups = {g.name: g for g in self.config.virtual_server_groups}
        want = desired.desired_table(self.runtime.virtual_servers.values(), groups)
        ops = diff(self.current, want)
        if not ops:
            return
        try:
            await self.backend.apply(ops)
        except BackendError as e:
            self.apply_errors += 1
            self.runtime.count("lvs_apply_errors")
            log.error("LVS table not updated: %s", e)
            # learn what the kernel really holds so the next attempt diffs from the truth
            try:
                self.current = await self.backend.load()
            except BackendError as e2:
                log.error("LVS table unreadable: %s", e2)
            return
        self.current = want
        self.applies += 1
        log.debug("LVS: applied %d change(s)", len(ops))

    async def _poller(self) -> None:
        """ha_suspend's address check (VRRP transitions trigger it too)."""
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            self.refresh_suspend()

    def _on_counters(self, rows: list[Any]) -> None:
        """The data plane's counters, read by the checker process (see CheckProcess)."""
        by_service: dict[str, VirtualServerState] = {}
        for vs in self.runtime.virtual_servers.values():
            for svc in vs.services:
                by_service[svc] = vs
        # a group's virtual server spans several services: its figures are their sums
        totals: dict[tuple[str, Any], dict[str, int]] = {}
        for row in rows:
            try:
                skey, address, port, *values = row
                vs = by_service.get(skey)
                dkey = None if address is None else (str(address), int(port))
                numbers = [int(v) for v in values]
            except (TypeError, ValueError):
                continue
            if vs is None or len(numbers) != len(COUNTER_NAMES):
                continue
            total = totals.setdefault((vs.name, dkey), dict.fromkeys(COUNTER_NAMES, 0))
            for name, value in zip(COUNTER_NAMES, numbers, strict=True):
                total[name] += value
        for (vs_name, dkey), total in totals.items():
            vs = self.runtime.virtual_servers[vs_name]
            if dkey is None:
                vs.counters = total
                continue
            for rs in (*vs.real_servers.values(), vs.sorry_server):
                if rs is not None and (str(rs.config.address), rs.config.port or 0) == dkey:
                    rs.counters = total


def is_local(address: IPAddress) -> bool:
    """Whether an address is on this host: binding to it succeeds only then (unless
    ip_nonlocal_bind is set). No netlink round trip, nothing that blocks."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((str(address), 0))
        except OSError:
            return False
    return True


def _suspended(config: Config) -> frozenset[str]:
    return frozenset(
        vs.name
        for vs in config.virtual_servers
        if vs.ha_suspend and vs.address is not None and not is_local(vs.address)
    )


def _servers(vs: VirtualServer) -> dict[str, RealServerState]:
    return {rs.name: RealServerState(rs) for rs in vs.real_servers}


def _status_dict(status: Any) -> dict[str, Any]:
    fields = ("up", "weight", "checks", "failures", "last_detail", "last_duration",
              "last_check", "restarts")  # fmt: skip
    return {f: getattr(status, f, None) for f in fields}
