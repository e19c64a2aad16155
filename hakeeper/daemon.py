"""The daemon: wires config, VRRP instances, sockets, link events and views; handles signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import warnings
from typing import TypeVar

from hakeeper.config import ConfigErrors, load_config
from hakeeper.config.diff import LIVE_FIELDS as LIVE_FIELDS
from hakeeper.config.diff import (
    config_changes,
    globals_restart,
    identity,
    renamed,
    snmp_changed,
)
from hakeeper.config.model import Config, IPAddress, Metrics, VrrpInstance
from hakeeper.control import Control, ControlError
from hakeeper.dbus.compat import KeepalivedObjects
from hakeeper.dbus.objects import HakeeperObjects
from hakeeper.dbus.service import DbusService, Provider
from hakeeper.dump import JsonDump
from hakeeper.firewall.service import Firewall
from hakeeper.lvs.backend import BackendError
from hakeeper.lvs.manager import LvsError, LvsManager
from hakeeper.metrics.collector import ModelCollector
from hakeeper.metrics.server import MetricsServer
from hakeeper.net.garp import GarpSender
from hakeeper.net.linkmon import LinkMonitor
from hakeeper.net.netlink import Netlink, NetlinkError
from hakeeper.net.vrrpsock import VrrpSocket
from hakeeper.notify.notifier import Notifier
from hakeeper.sdnotify import notify, watchdog_interval
from hakeeper.snmp.hakeeper_mib import HakeeperMib
from hakeeper.snmp.service import SnmpService, own_mib_wanted
from hakeeper.snmp.service import wanted as snmp_wanted
from hakeeper.state import Runtime
from hakeeper.track.tracking import Tracking
from hakeeper.vrrp.checks import vrid_of
from hakeeper.vrrp.instance import InstanceRunner
from hakeeper.vrrp.sync import SyncGroup

log = logging.getLogger("hakeeper")
V = TypeVar("V")

DBUS_START_TIMEOUT = 5.0  # a hung bus must not hold the VRRP side back


class Transport:
    """Raw VRRP sockets shared by every instance on one interface and family.

    As in keepalived, an instance sends and receives on one interface: its VMAC unless
    vmac_xmit_base (the kernel hands a multicast frame whose source is our own VMAC's MAC,
    which a peer's VMAC shares, to the macvlan only), else its interface. Dispatch is by VRID.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.receivers: dict[tuple[str, int, int], InstanceRunner] = {}
        self._users: dict[tuple[str, int], int] = {}  # instances on each socket

    @staticmethod
    def _key(runner: InstanceRunner) -> tuple[str, int, int]:
        inst = runner.inst
        return (runner.wire.send_ifname, inst.family, inst.virtual_router_id)

    def attach(self, runner: InstanceRunner, group: IPAddress) -> None:
        ifname, family, vrid = self._key(runner)
        if (ifname, family) not in self.sockets:
            self.sockets[(ifname, family)] = VrrpSocket(
                ifname,
                family,
                lambda payload, src, dst, ttl, _ifindex: self._on_packet(
                    ifname, family, payload, src, dst, ttl
                ),
                group=group,
            )
        self.receivers[(ifname, family, vrid)] = runner
        self._users[(ifname, family)] = self._users.get((ifname, family), 0) + 1

    def detach(self, runner: InstanceRunner) -> None:
        key = self._key(runner)
        if self.receivers.get(key) is not runner:
            return
        del self.receivers[key]
        sock_key = key[:2]
        self._users[sock_key] -= 1
        if self._users[sock_key] == 0:  # last user gone (or its VMAC)
            del self._users[sock_key]
            self.sockets.pop(sock_key).close()

    def drain(self, runner: InstanceRunner) -> None:
        """Handle what is queued on the runner's socket now (before its down timer fires)."""
        sock = self.sockets.get(self._key(runner)[:2])
        if sock is not None:
            sock.drain()

    def send(self, payload: bytes, src: IPAddress, dst: IPAddress, ifname: str) -> None:
        family = 4 if src.version == 4 else 6
        self.sockets[(ifname, family)].send(payload, dst, src)

    def _on_packet(
        self, ifname: str, family: int, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int
    ) -> None:
        vrid = vrid_of(payload)
        runner = self.receivers.get((ifname, family, vrid)) if vrid is not None else None
        if runner is None:
            # keepalived counts these globally (vrrpRouterVrIdErrors / vrrpv3 router stats)
            self.runtime.count("vrid_err" if vrid is not None else "packet_len_err")
            return
        runner.on_packet(payload, src, dst, ttl)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        self._users.clear()


def _use_pidfd_child_watcher(loop: asyncio.AbstractEventLoop) -> None:
    """Python 3.11 reaps each script child with a thread of its own; hundreds of scripts a
    second then fight the event loop for the GIL. A pidfd watcher reaps them in the loop
    (3.12 does this by itself)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)


def file_order(items: dict[str, V], names: list[str]) -> None:
    """Put `items` in the order of `names` (a config's), in place: views hold the dict itself.
    Keys not named keep their order, after the others."""
    named = set(names)
    if [k for k in items if k in named] == [n for n in names if n in items]:
        return
    ordered = {n: items[n] for n in names if n in items}
    ordered |= {k: v for k, v in items.items() if k not in ordered}
    items.clear()
    items.update(ordered)


def freeze_heap() -> None:
    """Put what exists now (config, engines, views) out of the cyclic GC's reach. A full
    collection over a thousand instances' objects holds the loop ~20 ms: long enough to send
    adverts late (bench/dbus.py saw it under a D-Bus client's allocations). Each reload
    collects once (what it dropped may hold cycles) and freezes again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Daemon:
    def __init__(
        self,
        config_file: str,
        config: Config,
        state_file: str,
        dbus_address: str | None = None,
    ) -> None:
        self.config_file = config_file
        # the command line wins over global_defs' dbus_address; "none" turns D-Bus off
        self.dbus_address = dbus_address or config.global_defs.dbus_address or "system"
        self.dbus: DbusService | None = None
        self.snmp: SnmpService | None = None  # enable_snmp_*, snmp_agent
        self._snmp_task: asyncio.Task[None] | None = None  # a restart asked by a reload
        self.metrics: MetricsServer | None = None  # global_defs metrics { } (rebound on reload)
        self._metrics_task: asyncio.Task[None] | None = None
        self.metrics_config: Metrics | None = None  # what the endpoint was last told
        self.control = Control(self)  # the one door for operator orders (D-Bus, SNMP Set)
        self.config = config
        self.runtime = Runtime(config_file=config_file)
        self.state_file = state_file
        self.runners: dict[str, InstanceRunner] = {}
        self.groups: dict[str, SyncGroup] = {}
        # kernel answers cached for the length of one _apply
        self._primaries: dict[tuple[str, int], IPAddress | None] = {}
        self._links_up: dict[str, bool] = {}
        self._all_vips: set[IPAddress] = set()
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lvs: LvsManager | None = None
        self.firewall = Firewall()  # vrrp_firewall's table and the ruleset check
        self._lvs_starting: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        _use_pidfd_child_watcher(loop)
        self._stopping = asyncio.Event()
        self.netlink = Netlink()
        self.garp = GarpSender()
        self.transport = Transport(self.runtime)
        self.dump = JsonDump(self.runtime, self.state_file)
        self.linkmon = LinkMonitor(self._on_link)
        self.tracking = Tracking(
            self.config,
            self._on_tracked_priority,
            base_of=self._priority_override,
            on_change=lambda name: self.runtime.emit("instance", name, "trackers"),
        )
        self.notifier = Notifier(self.config.global_defs, self._router_id(self.config))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        # keepalived dumps its data on USR1 and its stats on USR2; one JSON dump holds both
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            loop.add_signal_handler(sig, self.dump.write)
        try:
            self.linkmon.start()
            self._seed_tracked_links(self.config)
            self.notifier.start(loop)
            self.firewall.apply(self.config)  # before the first advert
            self._apply(self.config)
            self._check_firewall(self.config)
            self.tracking.start(loop)
            if self.config.virtual_servers:
                try:
                    await self._start_lvs(self.config)
                except (LvsError, BackendError) as e:
                    log.error("LVS cannot start: %s", e)
                    return 1
            self.dump.write()
            await self._start_dbus()
            await self._start_snmp()
            await self._apply_metrics(self.config)
            freeze_heap()
            notify("READY=1\nSTATUS=running")
            self._arm_watchdog()
            await self._stopping.wait()
        finally:
            notify("STOPPING=1")
            await self.shutdown()
        return 0

    async def _start_lvs(self, config: Config) -> None:
        lvs = LvsManager(self.runtime, self.notifier)
        self.lvs = lvs
        try:
            await lvs.start(config)
        except BaseException:
            self.lvs = None
            await lvs.stop(remove=False)
            raise
        log.info("LVS: %d virtual server(s) on the %s backend", len(config.virtual_servers),
                 self.runtime.lvs_backend)  # fmt: skip

    async def _start_dbus(self) -> None:
        if self.dbus_address == "none":
            log.info("D-Bus is off (--dbus-address none)")
            return
        control = self.control
        providers: list[Provider] = [HakeeperObjects(self.runtime, control)]
        if self.config.global_defs.enable_dbus:
            # keepalived writes /tmp/keepalived.stats; ours sits beside the state file
            stats = os.path.join(os.path.dirname(os.path.abspath(self.state_file)), "stats.txt")
            providers.append(KeepalivedObjects(self.runtime, control, self.dump.write, stats))
        service = DbusService(self.runtime, providers, self.dbus_address)
        try:
            started = await asyncio.wait_for(service.start(), DBUS_START_TIMEOUT)
        except TimeoutError:
            log.warning("D-Bus is off: the %s bus did not answer in time", self.dbus_address)
            await service.stop()
            return
        if started:
            self.dbus = service

    async def _start_snmp(self) -> None:
        gdefs = self.config.global_defs
        if not snmp_wanted(gdefs):
            return
        own = None
        if own_mib_wanted(gdefs):
            own = HakeeperMib(self.runtime, self.control)  # VRRP and LVS in one MIB
        try:
            snmp = SnmpService(self.runtime, gdefs, self.netlink.link_index, own_mib=own)
            await snmp.start()
        except (OSError, ValueError) as e:
            log.error("SNMP is off: %s", e)  # VRRP goes on without it
            return
        self.snmp = snmp

    def _restart_snmp(self) -> None:
        """A reload changed the SNMP settings: stop the service, start it from the new
        config (one restart at a time, in reload order)."""
        before = self._snmp_task

        async def restart() -> None:
            if before is not None:
                with contextlib.suppress(Exception):
                    await before
            old, self.snmp = self.snmp, None
            if old is not None:
                await old.stop()
            await self._start_snmp()

        assert self._loop is not None
        self._snmp_task = self._loop.create_task(restart())

    async def shutdown(self) -> None:
        if self._lvs_starting is not None:
            self._lvs_starting.cancel()
        if self.lvs is not None:
            await self.lvs.stop(remove=True)
        self.tracking.stop()
        for group in list(self.groups.values()):
            self.notifier.group_transition(group.cfg, "STOP")  # as keepalived does at exit
            self._drop_group(group)  # stopping is not a sync event: each member just stops
        for runner in list(self.runners.values()):
            self._stop_runner(runner)  # each sends notify_stop through on_transition
        if self.dbus is not None:
            await self.dbus.stop()  # after the instances: watchers see them go to STOP
        if self._snmp_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._snmp_task
        if self.snmp is not None:
            await self.snmp.stop()
        if self.metrics is not None:
            await self.metrics.close()
        await self.notifier.stop()
        self.firewall.close()  # after the instances' last adverts
        self.transport.close()
        self.linkmon.close()
        self.garp.close()
        self.netlink.close()
        self.dump.remove()
        log.info("stopped")

    async def _apply_metrics(self, config: Config) -> None:
        """The Prometheus endpoint: started by a `metrics` block, rebound when a reload
        changes its addresses, closed when a reload removes it."""
        wanted = config.global_defs.metrics
        self.metrics_config = wanted
        if self.metrics is None and wanted is not None:
            notifier = self.notifier
            collector = ModelCollector(self.runtime, notifier.queue_depth, lambda: notifier.dropped)
            self.metrics = MetricsServer(collector)
        if self.metrics is not None:
            await self.metrics.apply(wanted)

    def _arm_watchdog(self) -> None:
        interval = watchdog_interval()
        if interval is None or self._loop is None:
            return

        def ping() -> None:
            # pinged from the event loop itself, so a stuck loop misses it and is restarted
            notify("WATCHDOG=1")
            assert self._loop is not None
            self._loop.call_later(interval, ping)

        ping()

    # -- config ---------------------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: apply the config file again; a bad one is reported and the running one kept."""
        try:
            self.reload_config()
        except ControlError as e:
            for line in str(e).splitlines():
                log.error("reload refused: %s", line)
            return False
        return True

    def reload_config(self, dry_run: bool = False) -> list[str]:
        """Read the config file again and apply it (dry_run: only say what would change).
        Returns the change lines; a bad file raises ControlError("ConfigInvalid") naming every
        FILE:LINE problem, and nothing changes."""
        if not dry_run:
            notify("RELOADING=1")
        try:
            new = self._load_new()
        except ControlError:
            if not dry_run:
                self.runtime.count("reload_failed")
                notify("READY=1\nSTATUS=reload refused, running previous config")
            raise
        changes = config_changes(self.config, new)
        if dry_run:
            return changes
        snmp_again = snmp_changed(self.config.global_defs, new.global_defs)
        for w in new.warnings:
            log.warning("%s", w)
        self._seed_tracked_links(new)
        self.tracking.reconfigure(new)
        self.notifier.reconfigure(new.global_defs, self._router_id(new))
        self.firewall.apply(new)
        self._apply(new)
        self._check_firewall(new)
        self._reload_lvs(new)
        if snmp_again:
            self._restart_snmp()
        if new.global_defs.metrics != self.metrics_config:
            assert self._loop is not None
            self._metrics_task = self._loop.create_task(self._apply_metrics(new))
        self.runtime.reloads += 1
        self.runtime.last_reload = tuple(changes)
        self.runtime.emit("global", "reload", "reloads")
        for line in changes:
            log.info("reload: %s", line)
        log.info("reloaded %s (%d change(s))", self.config_file, len(changes))
        # after the adverts that came due while reloading (a timer of now runs after the
        # overdue ones): the full collection holds the loop 50-75 ms at 200 instances
        assert self._loop is not None
        self._loop.call_later(0, freeze_heap)
        notify("READY=1\nSTATUS=running")
        return changes

    def _load_new(self) -> Config:
        try:
            new = load_config(self.config_file)
        except ConfigErrors as e:
            raise ControlError("ConfigInvalid", "\n".join(str(err) for err in e.errors)) from None
        except OSError as e:
            raise ControlError("ConfigInvalid", f"{self.config_file}: {e.strerror}") from None
        if self.lvs is not None and self.lvs.backend is not None:
            try:
                LvsManager.check_supported(new, self.lvs.backend)
            except LvsError as e:
                raise ControlError("ConfigInvalid", "\n".join(e.problems)) from None
        return new

    def _reload_lvs(self, new: Config) -> None:
        if self.lvs is not None:
            self.lvs.configure(new)
        elif new.virtual_servers and self._lvs_starting is None:
            # the first virtual servers arrive by reload: start the LVS side now
            async def start() -> None:
                try:
                    await self._start_lvs(new)
                except (LvsError, BackendError) as e:
                    log.error("LVS cannot start: %s", e)
                finally:
                    self._lvs_starting = None

            assert self._loop is not None
            self._lvs_starting = self._loop.create_task(start())

    def _check_firewall(self, config: Config) -> None:
        """Log what in the live ruleset drops VRRP or a VIP's traffic, in a thread: listing
        a big ruleset (LVS's) holds a thread for a while."""
        local = {
            (i.interface, i.family): self._primary(i.interface, i.family)
            for i in config.vrrp_instances
        }
        assert self._loop is not None
        self._loop.run_in_executor(None, self.firewall.check, config, local)

    def _primary(self, ifname: str, family: int) -> IPAddress | None:
        """An interface's own address, asked of the kernel once per apply (not per instance:
        a thousand instances share a few interfaces), never one of any instance's VIPs."""
        key = (ifname, family)
        if key not in self._primaries:
            self._primaries[key] = self.netlink.primary_address(
                ifname, family, exclude=self._all_vips
            )
        return self._primaries[key]

    def _link_up(self, ifname: str) -> bool:
        if ifname not in self._links_up:
            self._links_up[ifname] = self.netlink.link_is_up(ifname)
        return self._links_up[ifname]

    @staticmethod
    def _router_id(config: Config) -> str:
        return config.global_defs.router_id or os.uname().nodename

    def _seed_tracked_links(self, config: Config) -> None:
        """track_interface judges links by LinkMonitor events; give it today's state first."""
        names = {
            t.name
            for holder in (*config.vrrp_instances, *config.vrrp_sync_groups)
            for t in holder.track_interface
        }
        for name in names:
            self.tracking.on_link(name, self.netlink.link_is_up(name))

    def _apply(self, new: Config) -> None:
        """Move the running set of instances to `new`, touching only what changed."""
        self._primaries.clear()
        self._links_up.clear()
        self._all_vips = {
            v.address
            for c in (self.config, new)
            for inst in c.vrrp_instances
            for v in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded
        }
        gdefs = new.global_defs
        restart_all = globals_restart(self.config.global_defs, gdefs)
        self.runtime.router_id = self._router_id(new)
        wanted = {inst.name: inst for inst in new.vrrp_instances}
        if not restart_all:
            for old_name, inst in renamed(self.config, new).items():
                self._rename(old_name, inst, new)
        # stop what is gone or changed beyond what a live reconfigure can do, first,
        # so a replacement can take the same VRID on the same interface
        for name, runner in list(self.runners.items()):
            inst = wanted.get(name)
            if inst is None or restart_all or identity(inst) != identity(runner.inst):
                if runner.group is not None:
                    self._drop_group(runner.group)
                self._stop_runner(runner)
        fresh: list[InstanceRunner] = []
        for inst in new.vrrp_instances:
            runner = self.runners.get(inst.name)
            if runner is None:
                runner = self._make_runner(inst, new)
                if runner is not None:
                    fresh.append(runner)
            elif runner.inst != inst or runner.gdefs != gdefs:
                runner.reconfigure(inst, gdefs)  # in place: no state change, no VIP flap
        self._apply_groups(new)
        started = set(fresh)
        for runner in self.runners.values():
            if runner not in started:  # a reload may have changed its trackers
                runner.on_priority(self.tracking.priority(runner.inst.name))
        # new instances start only now, so a sync group sees their first transitions
        for runner in fresh:
            runner.core.on_priority(self.tracking.priority(runner.inst.name), self._loop.time())
            runner.start(link_up=self._link_up(runner.inst.interface))
            self.runtime.emit("instance", runner.inst.name, "added")
        # an instance removed and added again goes back to its place: views list the file's order
        order = [inst.name for inst in new.vrrp_instances]
        file_order(self.runners, order)
        file_order(self.runtime.instances, order)
        self.config = new

    def _rename(self, old_name: str, inst: VrrpInstance, new: Config) -> None:
        """keepalived's match by (interface, VRID, family): the renamed instance keeps its
        engine, state and VIPs; views see the old name go and the new one come."""
        runner = self.runners.pop(old_name, None)
        if runner is None:
            return
        if runner.group is not None:
            self._drop_group(runner.group)  # rebuilt with its members' new names
        self.runtime.instances.pop(old_name, None)
        self.runtime.emit("instance", old_name, "removed")
        self.runners[inst.name] = runner
        self.runtime.instances[inst.name] = runner.view
        runner.view.trackers = lambda name=inst.name: self.tracking.trackers(name)
        runner.reconfigure(inst, new.global_defs)
        self.runtime.emit("instance", inst.name, "added")
        log.info("%s: renamed from %s, state kept", inst.name, old_name)

    def _apply_groups(self, new: Config) -> None:
        """Keep a sync group whose definition and member runners are unchanged (no state
        change, no notification on reload); rebuild the others."""
        wanted = {g.name: g for g in new.vrrp_sync_groups}
        for name, group in list(self.groups.items()):
            if name not in wanted:
                self._drop_group(group)
        for cfg in new.vrrp_sync_groups:
            members = [self.runners[n] for n in cfg.group if n in self.runners]
            group = self.groups.get(cfg.name)
            if group is not None and group.cfg == cfg and group.members == members:
                continue
            if group is not None:
                self._drop_group(group)
            self.groups[cfg.name] = SyncGroup(
                cfg, members, self.runtime, self.notifier.group_transition
            )
        order = [g.name for g in new.vrrp_sync_groups]
        file_order(self.groups, order)
        file_order(self.runtime.groups, order)

    def _drop_group(self, group: SyncGroup) -> None:
        group.detach()
        self.groups.pop(group.name, None)

    def _make_runner(self, inst: VrrpInstance, config: Config) -> InstanceRunner | None:
        assert self._loop is not None
        gdefs = config.global_defs
        try:
            runner = InstanceRunner(
                inst,
                gdefs,
                self.runtime,
                self.netlink,
                self.garp,
                self.transport.send,
                self._loop,
                self._primary,
            )
            group = gdefs.vrrp_mcast_group6 if inst.family == 6 else gdefs.vrrp_mcast_group4
            runner.prepare()
            self.transport.attach(runner, group)
        except (OSError, NetlinkError) as e:
            log.error("%s: cannot start: %s", inst.name, e)
            self.runtime.instances.pop(inst.name, None)
            return None
        runner.on_transition = self._on_transition
        runner.before_down = lambda: self.transport.drain(runner)
        runner.view.trackers = lambda name=inst.name: self.tracking.trackers(name)
        self.runners[inst.name] = runner
        return runner

    def _stop_runner(self, runner: InstanceRunner) -> None:
        try:
            runner.stop()
        except (OSError, NetlinkError) as e:
            log.error("%s: stop: %s", runner.inst.name, e)
        self.transport.detach(runner)
        self.runners.pop(runner.inst.name, None)
        self.runtime.emit("instance", runner.inst.name, "removed")

    # -- events ---------------------------------------------------------------------------

    def _priority_override(self, name: str) -> int | None:
        view = self.runtime.instances.get(name)
        return view.priority_override if view is not None else None

    def _on_tracked_priority(self, name: str, priority: int) -> None:
        runner = self.runners.get(name)
        if runner is not None:
            runner.on_priority(priority)

    def _on_transition(self, runner: InstanceRunner, state: str) -> None:
        """Notifications of one instance (keepalived's send_instance_notifies)."""
        group = runner.group
        if group is not None and runner.notified and group.view.state == state:
            return  # already told as part of its sync group
        runner.notified = True
        self.notifier.instance_transition(runner.inst, state, runner.core.effective_priority)
        if self.lvs is not None:
            self.lvs.refresh_suspend()  # a VIP came or went: ha_suspend follows it

    def _on_link(self, ifname: str, up: bool) -> None:
        log.info("%s: link %s", ifname, "up" if up else "down")
        self.tracking.on_link(ifname, up)
        for runner in list(self.runners.values()):
            if runner.inst.interface == ifname:
                runner.on_link(up)
