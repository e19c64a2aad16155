"""The asyncio shell around one VRRP core: moves bytes, sleeps, and carries out actions.

Everything protocol-shaped is decided by `VrrpCore`; this module only feeds it (packets,
timer expiries, link changes) and executes what it returns (adverts, VIPs, GARPs), then
publishes the result to the runtime model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hakeeper.config.model import GlobalDefs, IPAddress, VirtualAddress, VrrpInstance
from hakeeper.net.garp import GarpSender
from hakeeper.net.netlink import Netlink, NetlinkError
from hakeeper.state import InstanceState, Runtime
from hakeeper.vrrp import core as vc
from hakeeper.vrrp.checks import NOT_COUNTED, ExpectParams, Verdict, inspect_advert
from hakeeper.vrrp.packet import Advert, PacketError, decode, encode
from hakeeper.vrrp.stats import InstanceStats

if TYPE_CHECKING:
    from hakeeper.vrrp.sync import SyncGroup

log = logging.getLogger("hakeeper.vrrp")

AUTH_TYPES = {None: 0, "PASS": 1, "AH": 2}

# Sends one VRRP payload: (payload, src, dst, send_ifname).
SendFn = Callable[[bytes, IPAddress, IPAddress, str], None]


@dataclass(frozen=True)
class Wire:
    """What this instance puts on the wire, derived once from config and interface."""

    src: IPAddress
    dsts: tuple[IPAddress, ...]
    send_ifname: str
    unicast: bool


class InstanceRunner:
    """Runs one `vrrp_instance`: one core, one timer, the instance's VIPs."""

    def __init__(
        self,
        inst: VrrpInstance,
        gdefs: GlobalDefs,
        runtime: Runtime,
        netlink: Netlink,
        garp: GarpSender,
        send: SendFn,
        loop: asyncio.AbstractEventLoop,
        primary: Callable[[str, int], IPAddress | None],
    ) -> None:
        self.inst = inst
        self.gdefs = gdefs
        self.runtime = runtime
        self.netlink = netlink
        self.garp = garp
        self._send = send
        self.loop = loop
        self.primary = primary  # the interface's own address (never a VIP) for a family
        self.stats = InstanceStats()
        self.view = InstanceState(config=inst, stats=self.stats)
        self.wire = self._wire()
        self.core = vc.VrrpCore(vc.CoreConfig.from_instance(inst, self.wire.src), self.stats)
        self.expect = self._expect()
        self._timer: asyncio.TimerHandle | None = None
        self._adverts: dict[int, list[tuple[bytes, IPAddress]]] = {}
        self._last_key: tuple[object, ...] | None = None  # receive cache (see on_packet)
        self._last_result: tuple[Advert, Verdict] | None = None
        self.group: SyncGroup | None = None  # set by the sync group that owns us
        # notifications: called with the new state, or MASTER_RX_LOWER_PRI
        self.on_transition: Callable[[InstanceRunner, str], None] | None = None
        # reads the adverts already queued on our socket (set by the daemon's transport)
        self.before_down: Callable[[], None] | None = None
        self.notified = False  # a first notification went out (keepalived's notifies_sent)
        runtime.instances[inst.name] = self.view

    # -- derived once ---------------------------------------------------------------------

    @property
    def vip_ifname(self) -> str:
        return self.inst.vmac_interface or self.inst.interface

    def _wire(self) -> Wire:
        inst = self.inst
        src = inst.unicast_src_ip or inst.mcast_src_ip
        if src is None:
            src = self.primary(inst.interface, inst.family)
        if src is None:
            raise NetlinkError(
                "primary_address", 0, f"{inst.interface} has no IPv{inst.family} address"
            )
        if inst.unicast_peer:
            dsts: tuple[IPAddress, ...] = tuple(inst.unicast_peer)
        elif inst.family == 6:
            dsts = (self.gdefs.vrrp_mcast_group6,)
        else:
            dsts = (self.gdefs.vrrp_mcast_group4,)
        # keepalived sends from the VMAC interface unless vmac_xmit_base is set
        send_if = inst.interface if inst.vmac_xmit_base else self.vip_ifname
        return Wire(src=src, dsts=dsts, send_ifname=send_if, unicast=bool(inst.unicast_peer))

    def _expect(self) -> ExpectParams:
        inst = self.inst
        return ExpectParams(
            version=inst.version,
            vrid=inst.virtual_router_id,
            interval_cs=round(inst.advert_int * 100),
            auth_type=AUTH_TYPES.get(inst.auth_type, 0),
            auth_pass=(inst.auth_pass or "").encode(),
            addresses=tuple(v.address for v in inst.virtual_ipaddress),
            unicast=self.wire.unicast,
            skip_check_adv_addr=self.gdefs.vrrp_skip_check_adv_addr,
            unicast_peers=tuple(inst.unicast_peer),
            check_unicast_src=inst.check_unicast_src or self.gdefs.vrrp_check_unicast_src,
        )

    # -- inputs ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create what the instance sends from (its VMAC) before sockets are opened on it."""
        if self.inst.vmac_interface:
            self.netlink.ensure_vmac(
                self.inst.interface,
                self.inst.vmac_interface,
                self.inst.virtual_router_id,
                self.inst.family,
            )

    def start(self, link_up: bool) -> None:
        self.core.start(self.loop.time(), link_up=link_up)
        self._pump()

    def on_packet(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int) -> None:
        core = self.core
        # keepalived re-checks the VIP list only when the sender is a new master
        master_changed = core.state is vc.State.MASTER or src != core.master_address
        # a master repeats the same bytes every advert_int: the same input gets the same
        # decode and verdict, so a backup skips both (the hot path at a thousand instances)
        key = (payload, src, dst, ttl, master_changed)
        if key == self._last_key:
            adv, verdict = self._last_result
        else:
            try:
                adv = decode(payload, src, dst)
            except PacketError as e:
                self._drop(e.reason, src)
                return
            verdict = inspect_advert(
                adv, ttl=ttl, src=src, dst=dst, expect=self.expect, master_changed=master_changed
            )
            self._last_key, self._last_result = key, (adv, verdict)
        for counter in verdict.counters:
            self.stats.bump(counter)
        if verdict.drop is not None:
            self._log_drop(verdict.drop, src)  # already counted with the verdict's counters
            if verdict.drop not in NOT_COUNTED:
                self.runtime.dropped(self.inst.name, verdict.drop, str(src))
            return
        core.on_advert(adv.priority, adv.interval_cs, src, self.loop.time())
        self._pump()

    def on_link(self, up: bool) -> None:
        self.core.on_link(up, self.loop.time())
        self._pump()

    def on_priority(self, priority: int) -> None:
        self.core.on_priority(priority, self.loop.time())
        self._pump()

    # sync group orders (the group calls these; each runs the core and carries out its actions)

    def sync_go_master(self, reason: str) -> None:
        self.core.go_master(reason, self.loop.time())
        self._pump()

    def sync_go_backup(self, reason: str) -> None:
        self.core.go_backup(reason, self.loop.time())
        self._pump()

    def sync_fault(self, fault: bool) -> None:
        self.core.sync_fault(fault, self.loop.time())
        self._pump()

    # operator orders (hakeeper.control calls these)

    def failover(self) -> bool:
        """Hand mastership over; False when not MASTER."""
        done = self.core.failover(self.loop.time())
        self._pump()
        return done

    def set_maintenance(self, on: bool) -> None:
        self.core.set_maintenance(on, self.loop.time())
        self._pump()

    def end_yield(self) -> None:
        if self.core.yielding:
            self.core.set_yielding(False)
            self._sync_view()

    def send_garp_now(self) -> bool:
        """One gratuitous ARP / unsolicited NA per VIP now; False when not MASTER."""
        if self.core.state is not vc.State.MASTER:
            return False
        self._send_garps(1)
        return True

    def stop(self) -> None:
        """Graceful stop: priority-0 advert if master, VIPs removed, timer cancelled."""
        self.core.stop(self.loop.time())
        self._pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.inst.vmac_interface:
            self.netlink.remove_vmac(self.inst.vmac_interface)
        self.runtime.instances.pop(self.inst.name, None)

    def reconfigure(self, inst: VrrpInstance, gdefs: GlobalDefs) -> None:
        """A reload changed timers/priority only: keep state, no flap."""
        self.inst, self.gdefs = inst, gdefs
        self.view.config = inst
        self.wire = self._wire()
        self.expect = self._expect()
        self._adverts.clear()
        self._last_key = None
        self.core.reconfigure(vc.CoreConfig.from_instance(inst, self.wire.src), self.loop.time())
        self._pump()
        self.runtime.emit("instance", inst.name, "config")

    def _drop(self, reason: str, src: IPAddress) -> None:
        self.stats.bump(reason)
        self._log_drop(reason, src)
        if reason not in NOT_COUNTED:
            self.runtime.dropped(self.inst.name, reason, str(src))

    def _log_drop(self, reason: str, src: IPAddress) -> None:
        if reason in NOT_COUNTED:
            log.debug("%s: dropped advert from %s: %s", self.inst.name, src, reason)
            return
        # rate-limit: log the first drop of each reason, then every 100th
        n = getattr(self.stats, reason)
        if n == 1 or n % 100 == 0:
            name = self.inst.name
            log.warning("%s: dropped advert from %s: %s (%d so far)", name, src, reason, n)

    # -- outputs --------------------------------------------------------------------------

    def run_actions(self) -> None:
        """Carry out what the core decided (a sync group drives its members' cores directly)."""
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        if self.before_down is not None and self.core.state is vc.State.BACKUP:
            deadline = self.core.next_deadline()
            if deadline is not None and deadline <= now:
                # after the loop was held (a reload, a burst) the master's adverts may wait
                # in the socket while the timers fire first: read them before judging it down
                self.before_down()
                now = self.loop.time()
        self.core.on_timer(now)
        self._pump()

    def _pump(self) -> None:
        for action in self.core.drain():
            try:
                self._execute(action)
            except (OSError, NetlinkError) as e:
                # a failed action must not stop the engine: log, go on, retry next time
                log.error("%s: %s failed: %s", self.inst.name, type(action).__name__, e)
        self._sync_view()
        self._reschedule()

    def _reschedule(self) -> None:
        deadline = self.core.next_deadline()
        if self._timer is not None:
            # a backup pushes its down timer later with every advert: keep the armed timer
            # (the core ignores an early call, and we re-arm then) rather than churn handles
            if deadline is not None and self._timer.when() <= deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _execute(self, action: object) -> None:
        match action:
            case vc.SendAdvert(priority=priority):
                self._send_advert(priority)
            case vc.AddVips():
                self._add_vips()
            case vc.DelVips():
                self._del_vips()
            case vc.SendGarp(count=count):
                self._send_garps(count)
            case vc.StateChange(old=old, new=new, reason=reason):
                # the core has logged `old -> new (reason)` already
                self.view.state = new.value
                self.view.last_transition = time.time()
                self.view.last_reason = reason
                self._sync_view()
                self.runtime.emit("instance", self.inst.name, "state")
                if self.on_transition is not None:
                    self.on_transition(self, new.value)
                if self.group is not None:
                    self.group.member_changed(self, old, new)
            case vc.WantMaster():
                if self.group is not None:
                    self.group.want_master(self)
            case vc.MasterRxLowerPri(priority=priority, source=source):
                log.info(
                    "%s: master received lower priority %d advert from %s",
                    self.inst.name,
                    priority,
                    source,
                )
                if self.on_transition is not None:
                    self.on_transition(self, "MASTER_RX_LOWER_PRI")

    def _send_advert(self, priority: int) -> None:
        # an advert only changes with the priority: encode each once (the hot path)
        packets = self._adverts.get(priority)
        if packets is None:
            packets = self._adverts[priority] = self._encode_adverts(priority)
        for payload, dst in packets:
            self._send(payload, self.wire.src, dst, self.wire.send_ifname)

    def _encode_adverts(self, priority: int) -> list[tuple[bytes, IPAddress]]:
        inst = self.inst
        interval_cs = round(inst.advert_int * 100)
        auth_type = AUTH_TYPES.get(inst.auth_type, 0) if inst.version == 2 else 0
        auth_data = (inst.auth_pass or "").encode()[:8] if auth_type == 1 else b""
        adv = Advert(
            version=inst.version,
            vrid=inst.virtual_router_id,
            priority=priority,
            interval_cs=interval_cs,
            addresses=tuple(v.address for v in inst.virtual_ipaddress),
            auth_type=auth_type,
            auth_data=auth_data,
        )
        return [(encode(adv, self.wire.src, dst), dst) for dst in self.wire.dsts]

    def _vip_dev(self, vaddr: VirtualAddress) -> str:
        return vaddr.dev or self.vip_ifname

    def _all_vips(self) -> tuple[VirtualAddress, ...]:
        return self.inst.virtual_ipaddress + self.inst.virtual_ipaddress_excluded

    def _add_vips(self) -> None:
        for v in self._all_vips():
            self.netlink.add_vip(self._vip_dev(v), v)
        for route in self.inst.virtual_routes:
            self.netlink.add_route(route, self.vip_ifname)
        for rule in self.inst.virtual_rules:
            self.netlink.add_rule(rule)
        self.view.vips_present = True

    def _del_vips(self) -> None:
        for rule in self.inst.virtual_rules:
            self.netlink.del_rule(rule)
        for route in self.inst.virtual_routes:
            self.netlink.del_route(route, self.vip_ifname)
        for v in self._all_vips():
            self.netlink.del_vip(self._vip_dev(v), v)
        self.view.vips_present = False

    def _send_garps(self, count: int) -> None:
        for _ in range(count):
            for v in self._all_vips():
                if isinstance(v.address, ipaddress.IPv4Address):
                    self.garp.send_garp(self._vip_dev(v), v.address)
                else:
                    self.garp.send_unsolicited_na(self._vip_dev(v), v.address)

    def _sync_view(self) -> None:
        view, core = self.view, self.core
        changed = []
        if view.state != core.state.value:
            view.state = core.state.value
            changed.append("state")
        if view.effective_priority != core.effective_priority:
            view.effective_priority = core.effective_priority
            changed.append("effective_priority")
        master = str(core.master_address) if core.master_address is not None else None
        if view.master_address != master:
            view.master_address = master
            changed.append("master_address")
        view.master_adver_interval = core.master_adver_interval_cs / 100
        if view.maintenance != core.maintenance:
            view.maintenance = core.maintenance
            changed.append("maintenance")
        if view.yielding != core.yielding:
            view.yielding = core.yielding
            changed.append("yielding")
        if changed:
            self.runtime.emit("instance", self.inst.name, *changed)
