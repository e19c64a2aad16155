"""The daemon's SNMP door: the MIB views it serves, the AgentX subagent that serves them to
snmpd, and the notifications that follow the model's events.

keepalived's switches decide what is served: `enable_snmp_vrrp` / `enable_snmp_checker`
(hakeeper's own MIB, which holds both the VRRP and the LVS side), `enable_snmp_rfcv2` (VRRP-MIB,
RFC 2787), `enable_snmp_rfcv3` (VRRPV3-MIB, RFC 6527), `enable_traps`, `snmp_socket` (default
`unix:/var/agentx/master`). Views read the runtime model; nothing here keeps its state.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hakeeper.config.model import GlobalDefs, SnmpAgent
from hakeeper.snmp.agentx import Registration, Subagent
from hakeeper.snmp.agentx.pdu import END_OF_MIB_VIEW, NO_SUCH_OBJECT, EndOfMibView, Error, Value
from hakeeper.snmp.agentx.session import MibView
from hakeeper.snmp.embedded import Community, EmbeddedAgent, EmbeddedConfig, TrapTarget, V3User
from hakeeper.snmp.vrrp_mibs import VrrpMibs
from hakeeper.state import Event, Runtime

log = logging.getLogger("hakeeper.snmp")

Oid = tuple[int, ...]
COUNTERS_INTERVAL = 5.0  # seconds between copies of the subagent's counters into the model
IFINDEX_MAX_AGE = 5.0  # seconds an interface's ifIndex is trusted (a link may be re-created)
EMBEDDED_BULK_MAX = 20
# a flood of bad packets must not become a flood of notifications: at most one protocol-error
# or auth-failure notification per instance and kind in this many seconds (counters still count
# every packet)
DROP_NOTIFY_INTERVAL = 1.0


class Notifying(Protocol):
    def notifications_for(self, event: Event) -> list[tuple[Oid, list[Any]]]: ...


def wanted(gdefs: GlobalDefs) -> bool:
    """Does this config ask for SNMP at all (AgentX, or the embedded agent)?"""
    return agentx_wanted(gdefs) or gdefs.snmp_agent is not None


def own_mib_wanted(gdefs: GlobalDefs) -> bool:
    """HAKEEPER-MIB: with enable_snmp_vrrp/checker, or always for the embedded agent alone."""
    return gdefs.enable_snmp_vrrp or gdefs.enable_snmp_checker or not agentx_wanted(gdefs)


def embedded_config(agent: SnmpAgent) -> EmbeddedConfig:
    """The config file's snmp_agent block as the embedded agent's config (ValueError if the
    agent refuses a value the reader let through)."""
    return EmbeddedConfig(
        listen=agent.listen,
        # one GetBulk is answered in one go in the event loop: ~0.1 ms a varbind through
        # pysnmp's codec (SNMPv3), ~0.03 ms on the v2c path (ber.py), so a cap of 20 keeps
        # it under 2 ms and the adverts on time (bench/snmp.py); managers ask again
        bulk_max_varbinds=EMBEDDED_BULK_MAX,
        # a `trap` community only names where notifications go: it answers no requests
        communities=tuple(
            Community(c.name, c.access, c.sources)  # type: ignore[arg-type]
            for c in agent.communities
            if c.access != "trap"
        ),
        users=tuple(
            V3User(u.name, u.auth_key, u.priv_key, u.auth, u.priv, u.access)  # type: ignore[arg-type]
            for u in agent.users
        ),
        trap_targets=tuple(
            TrapTarget(t.host, t.port, community=t.community, user=t.user)
            for t in agent.trap_targets
        ),
    )


def agentx_wanted(gdefs: GlobalDefs) -> bool:
    """keepalived's switches: serve these MIBs to snmpd over AgentX."""
    return any(
        (
            gdefs.enable_snmp_vrrp,
            gdefs.enable_snmp_checker,
            gdefs.enable_snmp_rfcv2,
            gdefs.enable_snmp_rfcv3,
        )
    )


class Views:
    """Several MIB views, each under its own registered subtrees, as one MibView."""

    def __init__(self, parts: Sequence[tuple[MibView, Sequence[Registration]]]) -> None:
        owned = sorted((reg.subtree, view) for view, regs in parts for reg in regs)
        self._roots = [root for root, _ in owned]
        self._views = [view for _, view in owned]
        self.registrations = [Registration(root) for root in self._roots]

    def _owner(self, oid: Oid) -> MibView | None:
        i = bisect.bisect_right(self._roots, oid) - 1
        if i >= 0 and oid[: len(self._roots[i])] == self._roots[i]:
            return self._views[i]
        return None

    def get(self, oid: Oid) -> Value:
        view = self._owner(oid)
        return view.get(oid) if view is not None else NO_SUCH_OBJECT

    def next(self, oid: Oid, include: bool, end: Oid) -> tuple[Oid, Value] | EndOfMibView:
        for root, view in zip(self._roots, self._views, strict=True):
            if end and root >= end:
                break
            if oid[: len(root)] != root and oid > root:
                continue  # this subtree lies wholly before the start
            start, inc = (oid, include) if oid >= root else (root, True)
            found = view.next(start, inc, end)
            if not isinstance(found, EndOfMibView):
                return found
        return END_OF_MIB_VIEW

    def test_set(self, tx: int, oid: Oid, value: Value) -> int:
        view = self._owner(oid)
        return view.test_set(tx, oid, value) if view is not None else Error.NOT_WRITABLE

    def commit_set(self, tx: int, oid: Oid, value: Value) -> int:
        view = self._owner(oid)
        return view.commit_set(tx, oid, value) if view is not None else Error.COMMIT_FAILED

    def undo_set(self, tx: int, oid: Oid, value: Value) -> int:
        view = self._owner(oid)
        return view.undo_set(tx, oid, value) if view is not None else Error.UNDO_FAILED

    def cleanup_set(self, tx: int) -> None:
        for view in dict.fromkeys(self._views):
            view.cleanup_set(tx)


class IfIndexCache:
    """Interface name -> ifIndex, asked of the kernel at most every few seconds per name
    (a walk of a thousand rows must not cost a thousand netlink round trips)."""

    def __init__(self, lookup: Callable[[str], int], clock: Callable[[], float] = time.monotonic):
        self.lookup, self.clock = lookup, clock
        self._known: dict[str, tuple[float, int | None]] = {}

    def __call__(self, name: str) -> int | None:
        now = self.clock()
        hit = self._known.get(name)
        if hit is not None and now - hit[0] < IFINDEX_MAX_AGE:
            return hit[1]
        try:
            index: int | None = self.lookup(name)
        except Exception:  # gone, or not there yet: no row for it now
            index = None
        self._known[name] = (now, index)
        return index


class SnmpService:
    def __init__(
        self,
        runtime: Runtime,
        gdefs: GlobalDefs,
        ifindex: Callable[[str], int],
        own_mib: Any | None = None,
    ) -> None:
        """`own_mib`: HAKEEPER-MIB (see own_mib_wanted), served beside the VRRP MIBs."""
        self.runtime = runtime
        self.traps = gdefs.enable_traps
        parts: list[tuple[MibView, Sequence[Registration]]] = []
        self.notifiers: list[Notifying] = []
        self.own_mib = own_mib
        if own_mib is not None:
            parts.append((own_mib, own_mib.registrations()))
            self.notifiers.append(own_mib)
        self.vrrp: VrrpMibs | None = None
        # the embedded agent alone serves every MIB; with snmpd, keepalived's switches decide
        alone = not agentx_wanted(gdefs)
        rfcv2, rfcv3 = gdefs.enable_snmp_rfcv2 or alone, gdefs.enable_snmp_rfcv3 or alone
        if rfcv2 or rfcv3:
            self.vrrp = VrrpMibs(
                runtime,
                IfIndexCache(ifindex),
                notifications_enabled=lambda: self.traps,
                rfc6527=rfcv3,
                rfc2787=rfcv2,
            )
            parts.append((self.vrrp, self.vrrp.registrations()))
        self.views = Views(parts)
        self.subagent: Subagent | None = None
        if agentx_wanted(gdefs):
            self.subagent = Subagent(
                self.views,
                self.views.registrations,
                address=gdefs.snmp_socket or "unix:/var/agentx/master",
                description="hakeeper",
            )
        self.embedded: EmbeddedAgent | None = None
        if gdefs.snmp_agent is not None:
            self.embedded = EmbeddedAgent(self.views, embedded_config(gdefs.snmp_agent))
        self._sending: set[asyncio.Task[int]] = set()
        self._task: asyncio.Task[None] | None = None
        self._counting: asyncio.Task[None] | None = None
        self._drop_notified: dict[tuple[str, Oid], float] = {}
        runtime.subscribe(self._on_event)
        runtime.subscribe_drops(self._on_drop)

    async def start(self) -> None:
        """Start the AgentX subagent (it connects and reconnects by itself) and bind the
        embedded agent (OSError naming the address if it cannot)."""
        loop = asyncio.get_running_loop()
        if self.subagent is not None:
            self._task = loop.create_task(self.subagent.run(), name="agentx")
            self._counting = loop.create_task(self._count(), name="agentx-counters")
            log.info("SNMP: AgentX subagent for %s", self.subagent.address)
        if self.embedded is not None:
            try:
                await self.embedded.start()
            except BaseException:
                await self.stop()
                raise
            where = ", ".join(f"{a}:{p}" for a, p in self.embedded.addresses)
            log.info("SNMP: embedded agent on %s", where)

    async def _count(self) -> None:
        """The subagent's own counters into the model, where the MIB and D-Bus read them."""
        counters = self.runtime.global_counters
        while self.subagent is not None:
            st = self.subagent.stats
            counters["agentx_sessions"] = st.connects
            counters["agentx_parse_errors"] = st.parse_errors
            await asyncio.sleep(COUNTERS_INTERVAL)

    async def stop(self) -> None:
        # a reload may replace this service: its views stop following the model now
        self.runtime.unsubscribe(self._on_event)
        self.runtime.unsubscribe_drops(self._on_drop)
        for view in (self.vrrp, self.own_mib):
            if view is not None:
                view.detach()
        if self.subagent is not None:
            self.subagent.close()
        if self.embedded is not None:
            await self.embedded.stop()
        if self._counting is not None:
            self._counting.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 2.0)

    def _on_event(self, event: Event) -> None:
        if not self.traps:
            return
        out: list[tuple[Oid, list[Any]]] = []
        for notifier in self.notifiers:
            out += notifier.notifications_for(event)
        if self.vrrp is not None and event.kind == "instance" and "state" in event.changed:
            view = self.runtime.instances.get(event.name)
            if view is not None and view.state == "MASTER":
                for made in (self.vrrp.v3_new_master(event.name),
                             self.vrrp.v2_new_master(event.name)):  # fmt: skip
                    if made is not None:
                        out.append(made)
        self._send(out)

    def _on_drop(self, name: str, reason: str, source: str) -> None:
        """An instance dropped an advert: VRRPV3-MIB's ProtoErrReason follows it, and with
        traps on, vrrpv3ProtoError / vrrpTrapAuthFailure go out (rate-limited)."""
        if self.vrrp is None:
            return
        made = []
        if self.vrrp.note_proto_error(name, reason):
            made.append(self.vrrp.v3_proto_error(name))
        made.append(self.vrrp.v2_auth_failure(name, source, reason))
        if not self.traps:
            return
        now = time.monotonic()
        out = []
        for notification in made:
            if notification is None:
                continue
            last = self._drop_notified.get((name, notification[0]))
            if last is not None and now - last < DROP_NOTIFY_INTERVAL:
                self.runtime.count("snmp_notifications_suppressed")
                continue
            self._drop_notified[(name, notification[0])] = now
            out.append(notification)
        self._send(out)

    def _send(self, out: Sequence[tuple[Oid, list[Any]]]) -> None:
        for trap_oid, varbinds in out:
            if self.subagent is not None and self.subagent.notify(trap_oid, varbinds):
                self.runtime.count("snmp_notifications")
            if self.embedded is not None:
                task = asyncio.get_running_loop().create_task(
                    self.embedded.notify(trap_oid, varbinds)
                )
                self._sending.add(task)
                task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[int]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is None and task.result():
            self.runtime.count("snmp_notifications")
