"""The sans-IO VRRP state machine of one instance (RFC 5798 §6.4, RFC 3768 §6.4, keepalived).

No sockets, no sleeps, no clock: every input carries `now` (monotonic seconds) and every
decision comes back as an action from `drain()`. The asyncio shell sleeps until
`next_deadline()`, calls `on_timer(now)`, feeds validated adverts to `on_advert()` and executes
the actions in order.

Intervals are integer centiseconds under their RFC names (`master_adver_interval`,
`skew_time`, `master_down_interval`); they become seconds only where a deadline is computed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from hakeeper.config.model import IPAddress, VrrpInstance
from hakeeper.vrrp.stats import InstanceStats

log = logging.getLogger(__name__)

PRIO_OWNER = 255  # RFC 5798 §5.2.4: the router that owns the addresses
PRIO_STOP = 0  # RFC 5798 §5.2.4: "the current Master has stopped participating"
DOWN_TIMER_ADVERTS = 3  # RFC 5798 §6.1: Master_Down_Interval = 3 * Master_Adver_Interval + skew


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """What the state machine needs from a `vrrp_instance`; times in centiseconds."""

    name: str
    vrid: int
    version: int  # 2 | 3
    priority: int  # base priority 1..255 (255 = address owner)
    advert_int_cs: int
    preempt: bool = True
    preempt_delay_cs: int = 0
    initial_state: str = "BACKUP"  # config `state MASTER|BACKUP`
    primary_address: IPAddress | None = None  # our source address, for the tie-break
    garp_master_delay_cs: int = 500
    garp_master_repeat: int = 5
    garp_master_refresh_cs: int = 0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay_cs: int = 500
    garp_lower_prio_repeat: int = 5
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False

    def __post_init__(self) -> None:
        # Caller misuse, not a config error: the config layer has already reported bad values
        # with their file and line.
        if self.version not in (2, 3):
            raise ValueError(f"{self.name}: VRRP version {self.version} is not 2 or 3")
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"{self.name}: virtual_router_id {self.vrid} is out of range 1..255")
        if not 1 <= self.priority <= PRIO_OWNER:
            raise ValueError(f"{self.name}: priority {self.priority} is out of range 1..255")
        if self.advert_int_cs < 1:
            raise ValueError(f"{self.name}: advert_int {self.advert_int_cs}cs must be positive")
        if self.initial_state not in ("MASTER", "BACKUP"):
            raise ValueError(f"{self.name}: state {self.initial_state!r} is not MASTER or BACKUP")

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @classmethod
    def from_instance(cls, inst: VrrpInstance, primary_address: IPAddress | None) -> CoreConfig:
        return cls(
            name=inst.name,
            vrid=inst.virtual_router_id,
            version=inst.version,
            priority=inst.priority,
            advert_int_cs=_cs(inst.advert_int),
            preempt=not inst.nopreempt,
            preempt_delay_cs=_cs(inst.preempt_delay),
            initial_state=inst.state.upper(),
            primary_address=primary_address,
            garp_master_delay_cs=_cs(inst.garp_master_delay),
            garp_master_repeat=inst.garp_master_repeat,
            garp_master_refresh_cs=_cs(inst.garp_master_refresh),
            garp_master_refresh_repeat=inst.garp_master_refresh_repeat,
            # keepalived: unset -> the master GARP values, but none at all in strict mode
            garp_lower_prio_delay_cs=_cs(
                inst.garp_master_delay
                if inst.garp_lower_prio_delay is None
                else inst.garp_lower_prio_delay
            ),
            garp_lower_prio_repeat=(
                (0 if inst.strict_mode else inst.garp_master_repeat)
                if inst.garp_lower_prio_repeat is None
                else inst.garp_lower_prio_repeat
            ),
            lower_prio_no_advert=inst.lower_prio_no_advert,
            higher_prio_send_advert=inst.higher_prio_send_advert,
        )


def _cs(seconds: float) -> int:
    return round(seconds * 100)


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"

    def __str__(self) -> str:
        return self.value


# --- actions returned by drain(), executed in order by the shell -----------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one advertisement with this priority (0 = we are leaving, RFC 5798 §6.4.3)."""

    priority: int


@dataclass(frozen=True, slots=True)
class AddVips:
    """Take the virtual addresses (and virtual_routes / virtual_rules)."""


@dataclass(frozen=True, slots=True)
class DelVips:
    """Release the virtual addresses (and virtual_routes / virtual_rules)."""


@dataclass(frozen=True, slots=True)
class SendGarp:
    """Gratuitous ARP / unsolicited NA for every VIP, `count` times."""

    count: int


@dataclass(frozen=True, slots=True)
class StateChange:
    old: State
    new: State
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class MasterRxLowerPri:
    """As master we heard a lower priority advert: keepalived's notify_master_rx_lower_pri."""

    priority: int
    source: IPAddress


@dataclass(frozen=True, slots=True)
class WantMaster:
    """Sync group member: our master down timer fired; the group decides (go_master)."""


Action = SendAdvert | AddVips | DelVips | SendGarp | StateChange | MasterRxLowerPri | WantMaster


# h11-style: every allowed transition in one table; _change_state refuses anything else.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT, State.STOP}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.STOP}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.STOP}),
    State.FAULT: frozenset({State.BACKUP, State.MASTER, State.STOP}),
    State.STOP: frozenset(),
}


class VrrpCore:
    """One VRRP instance: inputs with an explicit `now`, actions out through `drain()`."""

    def __init__(self, cfg: CoreConfig, stats: InstanceStats | None = None) -> None:
        self.cfg = cfg
        self.stats = stats if stats is not None else InstanceStats()
        self.state = State.INIT
        self.effective_priority = cfg.priority
        self.master_address: IPAddress | None = None
        self.master_priority: int | None = None  # priority in the last accepted advert
        # RFC 5798 §6.4.1: Master_Adver_Interval starts as our own Advertisement_Interval.
        self.master_adver_interval_cs = cfg.advert_int_cs
        self.last_transition: float | None = None
        self._actions: list[Action] = []
        self._link_up = True
        self._prio_fault = False
        self._sync_fault = False  # another member of our sync group is in FAULT
        self.maintenance = False  # an operator took us out of elections (FAULT, no VIPs)
        # an operator handed mastership away (failover): accept any master, do not preempt,
        # until we become master again because the new one failed (or are told otherwise)
        self.yielding = False
        # set while we are a member of a vrrp_sync_group: MASTER only all together
        self.sync_group: str | None = None
        # sync group member: our down timer fired and no better master spoke since
        # (keepalived's wantstate MASTER, read by vrrp_sync_can_goto_master)
        self.wants_master = False
        # deadlines (monotonic seconds); None = timer not running
        self._down_at: float | None = None  # BACKUP: Master_Down_Timer
        self._advert_at: float | None = None  # MASTER: Adver_Timer
        self._garp_at: float | None = None  # MASTER: the garp_master_delay repeat
        self._refresh_at: float | None = None  # MASTER: garp_master_refresh
        self._lower_garp_at: float | None = None  # MASTER: garp_lower_prio_delay repeat
        self._preempt_at: float | None = None  # BACKUP: keepalived's preempt_time
        self._down_reason = "master down timer expired"

    # --- RFC timers ---------------------------------------------------------------------------

    @property
    def skew_time_cs(self) -> int:
        """RFC 5798 §6.1 (v3): ((256 - Priority) * Master_Adver_Interval) / 256 centiseconds;
        RFC 3768 §6.1 (v2): (256 - Priority) / 256 seconds. Integer division, as FRR does
        (keepalived keeps microseconds: 60.94cs where we say 60cs for v3 100cs prio 100)."""
        prio = self.effective_priority
        if self.cfg.version == 3:
            return ((256 - prio) * self.master_adver_interval_cs) // 256
        return ((256 - prio) * 100) // 256

    @property
    def master_down_interval_cs(self) -> int:
        """RFC 5798 §6.1 / RFC 3768 §6.1: 3 * Master_Adver_Interval + Skew_Time."""
        return DOWN_TIMER_ADVERTS * self.master_adver_interval_cs + self.skew_time_cs

    @property
    def is_owner(self) -> bool:
        return self.cfg.is_owner

    @property
    def own_fault(self) -> bool:
        """In FAULT for a reason of our own (link, tracker), not because of a sync group."""
        return self._prio_fault or not self._link_up or self.maintenance

    # --- inputs -------------------------------------------------------------------------------

    def start(self, now: float, link_up: bool = True) -> None:
        """RFC 5798 §6.4.1 Initialize, the way keepalived's vrrp_init_state does it."""
        if self.state is not State.INIT:
            raise RuntimeError(f"{self.cfg.name}: start() in state {self.state}")
        self._link_up = link_up
        if not link_up:
            self._change_state(State.FAULT, "interface down at startup", now)
        elif self._prio_fault:
            self._change_state(State.FAULT, "tracker fault at startup", now)
        elif self.maintenance:
            self._change_state(State.FAULT, "maintenance", now)
        elif self._sync_fault:
            self._change_state(State.FAULT, "sync group member in fault at startup", now)
        elif self.is_owner:
            # RFC 5798 §6.4.1: the address owner goes straight to Master. (keepalived gets the
            # same result with a 1us master down timer.)
            self._change_state(State.MASTER, "address owner (priority 255)", now)
        else:
            # keepalived vrrp_init_state: `state MASTER` without priority 255 starts in BACKUP
            # with a full master down timer, exactly like `state BACKUP`; it only lets the
            # router win the election that follows.
            self._change_state(State.BACKUP, "startup", now)

    def on_advert(self, priority: int, interval_cs: int, source: IPAddress, now: float) -> None:
        """A decoded advertisement that passed every receive check (RFC 5798 §7.1)."""
        if self.state is State.BACKUP:
            if priority == PRIO_STOP:
                self.stats.pri_zero_rcvd += 1
            self._backup_rx(priority, interval_cs, source, now)
        elif self.state is State.MASTER:
            if priority == PRIO_STOP:
                self.stats.pri_zero_rcvd += 1
            self._master_rx(priority, interval_cs, source, now)
        # INIT / FAULT / STOP: not participating (keepalived drops them in the dispatcher)

    def on_timer(self, now: float) -> None:
        """Fire every deadline that is due; an early call does nothing, a late one catches up."""
        if self.state is State.BACKUP:
            if self._down_at is not None and now >= self._down_at:
                if self.sync_group is not None:
                    # keepalived vrrp_sync_can_goto_master: a member only goes MASTER with
                    # the whole group; ask, and wait another down interval meanwhile.
                    self.wants_master = True
                    self._down_at = now + self.master_down_interval_cs / 100
                    self._actions.append(WantMaster())
                else:
                    # RFC 5798 §6.4.2: Master_Down_Timer fires -> advert, GARP, Master.
                    self._change_state(State.MASTER, self._down_reason, now)
        elif self.state is State.MASTER:
            if self._advert_at is not None and now >= self._advert_at:
                # RFC 5798 §6.4.3: Adver_Timer fires -> send an advert, restart the timer.
                # keepalived restarts from the time it actually ran, not the missed deadline.
                self._send_advert(self.effective_priority, now)
            if self._garp_at is not None and now >= self._garp_at:
                self._garp_at = None
                self._send_garp(self.cfg.garp_master_repeat)
            if self._refresh_at is not None and now >= self._refresh_at:
                self._refresh_at = now + self.cfg.garp_master_refresh_cs / 100
                self._send_garp(self.cfg.garp_master_refresh_repeat)
            if self._lower_garp_at is not None and now >= self._lower_garp_at:
                self._lower_garp_at = None
                self._send_garp(self.cfg.garp_lower_prio_repeat)

    def on_priority(self, effective_priority: int, now: float) -> None:
        """Trackers changed the priority; 0 means a weight-0 tracker failed (-> FAULT)."""
        if effective_priority <= 0:
            self._prio_fault = True
            if self.state in (State.BACKUP, State.MASTER):
                self._change_state(State.FAULT, "tracker fault (priority 0)", now)
            return
        was_fault = self._prio_fault
        self._prio_fault = False
        # keepalived vrrp_set_effective_priority: an owner's priority never moves, and everyone
        # else stays within 1..254 so they can neither vanish nor pose as the owner.
        if not self.is_owner:
            self._set_priority(max(1, min(PRIO_OWNER - 1, effective_priority)), now)
        if was_fault and self.state is State.FAULT:
            self._leave_fault("tracker recovered", now)

    def go_master(self, reason: str, now: float) -> None:
        """Sync group: every member is ready, so this one becomes MASTER with the rest."""
        if self.state is State.BACKUP:
            self._change_state(State.MASTER, reason, now)

    def go_backup(self, reason: str, now: float) -> None:
        """Sync group: a member went BACKUP, so a MASTER member follows (no priority 0:
        the peer group's members take over when their own down timers fire)."""
        if self.state is State.MASTER:
            self._change_state(State.BACKUP, reason, now)

    def sync_fault(self, fault: bool, now: float) -> None:
        """Sync group: another member is in FAULT (True) or has left it (False)."""
        self._sync_fault = fault
        if fault and self.state in (State.BACKUP, State.MASTER):
            self._change_state(State.FAULT, "sync group member in fault", now)
        elif not fault and self.state is State.FAULT:
            self._leave_fault("sync group member recovered", now)

    def on_link(self, up: bool, now: float) -> None:
        """The interface (or VMAC / its base) went down or came up."""
        was_up = self._link_up
        self._link_up = up
        if not up and self.state in (State.BACKUP, State.MASTER):
            self._change_state(State.FAULT, "interface down", now)
        elif up and not was_up and self.state is State.FAULT:
            self._leave_fault("interface up", now)

    def resign(self, now: float) -> None:
        """Graceful hand-over: as master, advertise priority 0 and go BACKUP (RFC §6.4.3)."""
        if self.state is State.MASTER:
            self.master_address = self.master_priority = None
            self._change_state(State.BACKUP, "resigned mastership", now, priority_zero=True)

    def failover(self, now: float) -> bool:
        """An operator's hand-over: resign (the best backup takes over after its skew time)
        and stay BACKUP, without preempting, until the new master fails or set_yielding(False).
        False when not MASTER (nothing to hand over)."""
        if self.state is not State.MASTER:
            return False
        self.yielding = True
        self.master_address = self.master_priority = None
        self._change_state(State.BACKUP, "failover requested", now, priority_zero=True)
        return True

    def set_yielding(self, yielding: bool) -> None:
        """End (or start) a hand-over's no-preempt period; the next lower advert decides."""
        self.yielding = yielding

    def set_maintenance(self, on: bool, now: float) -> None:
        """An operator's order: on = release the VIPs (priority 0 if master) and stay out of
        elections in FAULT; off = rejoin as BACKUP once no other fault holds us."""
        if on == self.maintenance:
            return
        self.maintenance = on
        if on and self.state in (State.BACKUP, State.MASTER):
            self._change_state(State.FAULT, "maintenance", now)
        elif not on and self.state is State.FAULT:
            self._leave_fault("maintenance ended", now)

    def stop(self, now: float) -> None:
        """Shutdown (RFC 5798 §6.4.2/§6.4.3): a master advertises priority 0 and releases."""
        if self.state is not State.STOP:
            self._change_state(State.STOP, "stopped", now, priority_zero=True)

    def reconfigure(self, cfg: CoreConfig, now: float) -> None:
        """Reload: new timers and priority apply in place; the state does not change (no flap)."""
        old = self.cfg
        if (cfg.vrid, cfg.version) != (old.vrid, old.version):
            raise ValueError(
                f"{old.name}: reload cannot change virtual_router_id or version in place; "
                "build a new instance"
            )
        old_down = self.master_down_interval_cs
        self.cfg = cfg
        if cfg.is_owner:
            self.effective_priority = PRIO_OWNER
        elif old.is_owner:
            self.effective_priority = cfg.priority
        else:
            # keep whatever the trackers added on top of the configured priority
            offset = self.effective_priority - old.priority
            self.effective_priority = max(1, min(PRIO_OWNER - 1, cfg.priority + offset))
        if self.state is not State.MASTER and (cfg.version == 2 or self.master_address is None):
            # v2 always uses its own interval; v3 until a master has told us its own.
            self.master_adver_interval_cs = cfg.advert_int_cs
        if not cfg.preempt_delay_cs:
            self._preempt_at = None
        if self.state is State.BACKUP and self._down_at is not None:
            self._down_at += (self.master_down_interval_cs - old_down) / 100
        elif self.state is State.MASTER:
            self.master_adver_interval_cs = cfg.advert_int_cs
            if cfg.advert_int_cs != old.advert_int_cs and self._advert_at is not None:
                self._advert_at = min(self._advert_at, now + cfg.advert_int_cs / 100)
            if cfg.garp_master_refresh_cs != old.garp_master_refresh_cs:
                self._refresh_at = (
                    now + cfg.garp_master_refresh_cs / 100 if cfg.garp_master_refresh_cs else None
                )

    # --- outputs ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        due = [
            t
            for t in (
                self._down_at,
                self._advert_at,
                self._garp_at,
                self._refresh_at,
                self._lower_garp_at,
            )
            if t is not None
        ]
        return min(due) if due else None

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # --- receive paths ------------------------------------------------------------------------

    def _backup_rx(self, priority: int, interval_cs: int, source: IPAddress, now: float) -> None:
        cfg = self.cfg
        if priority == PRIO_STOP:
            # RFC 5798 §6.4.2: the master is leaving; take over after Skew_Time only, so the
            # highest priority backup (smallest skew) wins the race.
            self._down_at = now + self.skew_time_cs / 100
            self._down_reason = f"priority 0 advert from {source}"
            return
        in_preempt_delay = bool(cfg.preempt_delay_cs) and (
            self._preempt_at is None or self._preempt_at > now
        )
        if (
            not cfg.preempt
            or self.yielding
            or priority >= self.effective_priority
            or in_preempt_delay
        ):
            # RFC 5798 §6.4.2: accept the master and reset the Master_Down_Timer.
            if cfg.version == 3:
                # RFC 5798 §6.4.2: v3 adopts the master's interval. v2 (RFC 3768) has one
                # interval for all and the receive checks drop mismatches.
                self.master_adver_interval_cs = interval_cs
            self.master_address = source
            self.master_priority = priority
            self._arm_down_timer(now)
            if cfg.preempt_delay_cs:
                # keepalived vrrp_state_backup: the delay starts at the first lower priority
                # advert heard and is cancelled by a master at least as good as us.
                if priority >= self.effective_priority:
                    self._preempt_at = None
                elif self._preempt_at is None:
                    self._preempt_at = now + cfg.preempt_delay_cs / 100
        else:
            # RFC 5798 §6.4.2 "discard": the Master_Down_Timer keeps running, and when it
            # fires we take over (that is how preemption happens). keepalived still records
            # the sender as the master for SNMP.
            self.master_address = source
            self.master_priority = priority
            self._down_reason = f"preempting lower priority ({priority}) master {source}"

    def _master_rx(self, priority: int, interval_cs: int, source: IPAddress, now: float) -> None:
        cfg = self.cfg
        ours = self.effective_priority
        if priority == PRIO_STOP:
            # RFC 5798 §6.4.3: someone resigned; assert ourselves at once.
            self._send_advert(ours, now)
            return
        if priority == ours and source == cfg.primary_address:
            log.warning("%s: equal priority advert from our own address %s", cfg.name, source)
            return
        # RFC 5798 §6.4.3: on equal priority the higher primary address wins. If we do not
        # know our own address we step back: two masters is the worse outcome.
        ours_addr = int(cfg.primary_address) if cfg.primary_address is not None else -1
        higher = priority > ours or (priority == ours and int(source) > ours_addr)
        if not higher:
            # RFC says discard; keepalived answers with an advert of its own so a lower
            # priority router that thinks it is master steps down now ("forcing new
            # election") unless lower_prio_no_advert, and raises notify_master_rx_lower_pri.
            if not cfg.lower_prio_no_advert:
                self._send_advert(ours, now)
            # keepalived: a lower master means a split brain just healed and the LAN's ARP
            # caches may point at it: re-announce now and once more after the delay.
            if cfg.garp_lower_prio_repeat:
                self._send_garp(cfg.garp_lower_prio_repeat)
                if cfg.garp_lower_prio_delay_cs:
                    self._lower_garp_at = now + cfg.garp_lower_prio_delay_cs / 100
            self._actions.append(MasterRxLowerPri(priority, source))
            return
        if cfg.higher_prio_send_advert:
            # keepalived: tell the better router we exist before stepping back (useful when
            # the two only just started hearing each other, e.g. after a split brain).
            self._send_advert(ours, now)
        if cfg.version == 3:
            self.master_adver_interval_cs = interval_cs
        self.master_address = source
        self.master_priority = priority
        if priority > ours:
            reason = f"higher priority ({priority}) advert from {source}"
        else:
            reason = f"equal priority advert from higher address {source}"
        self._change_state(State.BACKUP, reason, now)

    # --- transitions --------------------------------------------------------------------------

    def _change_state(
        self, new: State, reason: str, now: float, *, priority_zero: bool = False
    ) -> None:
        """The only place the state changes: check the table, exit, enter, count, emit."""
        old = self.state
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"{self.cfg.name}: transition {old} -> {new} is not allowed")
        if old is State.MASTER:
            # keepalived vrrp_state_leave_master / vrrp_restore_interface: leaving for FAULT
            # or STOP (and a resign) tells the backups with priority 0 so they take over
            # after Skew_Time instead of Master_Down_Interval.
            if priority_zero or new is State.FAULT:
                self._send_advert(PRIO_STOP, now)
            self._actions.append(DelVips())
            self.stats.release_master += 1
            self._advert_at = self._garp_at = self._refresh_at = self._lower_garp_at = None
        self._down_at = None
        self.wants_master = False
        self.state = new
        if new is State.BACKUP:
            if old is not State.MASTER:
                # RFC 5798 §6.4.1, keepalived vrrp_state_leave_fault: start from our own
                # interval; a master coming back as backup keeps the one it just adopted.
                self.master_adver_interval_cs = self.cfg.advert_int_cs
                self.master_address = None
                self.master_priority = None
            self._preempt_at = None
            self._arm_down_timer(now)
        elif new is State.MASTER:
            self._enter_master(now)
        else:  # FAULT, STOP
            self.master_address = None
            self.master_priority = None
            self._preempt_at = None
        self.last_transition = now
        log.info("%s: %s -> %s (%s)", self.cfg.name, old, new, reason)
        self._actions.append(StateChange(old, new, reason, now))

    def _enter_master(self, now: float) -> None:
        cfg = self.cfg
        self.stats.become_master += 1
        self.yielding = False  # the master we yielded to is gone: the hand-over is over
        self.master_adver_interval_cs = cfg.advert_int_cs
        self.master_address = cfg.primary_address
        self.master_priority = self.effective_priority
        # keepalived vrrp_state_master_tx: advertise first so the old master drops the VIPs
        # before our GARPs move the traffic (RFC 5798 §6.4.2: send advert, then GARP).
        self._send_advert(self.effective_priority, now)
        self._actions.append(AddVips())
        self._send_garp(cfg.garp_master_repeat)
        # keepalived vrrp_state_become_master: a second burst after garp_master_delay, then
        # garp_master_refresh bursts counted from the end of that delay.
        self._garp_at = now + cfg.garp_master_delay_cs / 100 if cfg.garp_master_delay_cs else None
        self._refresh_at = (
            now + (cfg.garp_master_delay_cs + cfg.garp_master_refresh_cs) / 100
            if cfg.garp_master_refresh_cs
            else None
        )

    def _leave_fault(self, reason: str, now: float) -> None:
        """keepalived try_up_instance: back up only when every fault has cleared."""
        if self._prio_fault or self._sync_fault or not self._link_up or self.maintenance:
            return
        if self.is_owner:
            self._change_state(State.MASTER, f"{reason}, address owner", now)
        else:
            self._change_state(State.BACKUP, reason, now)

    # --- helpers ------------------------------------------------------------------------------

    def _set_priority(self, prio: int, now: float) -> None:
        if prio == self.effective_priority:
            return
        old_down = self.master_down_interval_cs
        self.effective_priority = prio
        if self.state is State.BACKUP and self._down_at is not None:
            # keepalived vrrp_set_effective_priority: shift the running timer by the change in
            # skew, so a new priority takes effect without waiting for the next advert.
            self._down_at += (self.master_down_interval_cs - old_down) / 100

    def _arm_down_timer(self, now: float) -> None:
        self._down_at = now + self.master_down_interval_cs / 100
        self._down_reason = "master down timer expired"
        self.wants_master = False

    def _send_advert(self, priority: int, now: float) -> None:
        self._actions.append(SendAdvert(priority))
        self.stats.advert_sent += 1
        if priority == PRIO_STOP:
            self.stats.pri_zero_sent += 1
        elif self.state is State.MASTER:
            # RFC 5798 §6.4.3: every advert we send as master restarts the Adver_Timer.
            self._advert_at = now + self.cfg.advert_int_cs / 100

    def _send_garp(self, count: int) -> None:
        if count > 0:
            self._actions.append(SendGarp(count))


__all__ = [
    "TRANSITIONS",
    "Action",
    "AddVips",
    "CoreConfig",
    "DelVips",
    "MasterRxLowerPri",
    "SendAdvert",
    "SendGarp",
    "State",
    "StateChange",
    "VrrpCore",
    "WantMaster",
]
