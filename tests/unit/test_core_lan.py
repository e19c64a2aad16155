"""Many routers on a fake LAN: N VRRP cores over an in-memory link that drops, duplicates and
delays adverts (seeded), stepped by a simulated clock in event order. After convergence there
must be exactly one master per VRID, and with preemption it is the best router."""

from __future__ import annotations

import heapq
import ipaddress
import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.vrrp.core import (
    AddVips,
    CoreConfig,
    DelVips,
    SendAdvert,
    State,
    StateChange,
    VrrpCore,
)


@dataclass
class Router:
    core: VrrpCore
    group: int = 0  # routers hear each other only within the same group (partitions)
    has_vips: bool = False
    changes: list[StateChange] = field(default_factory=list)

    @property
    def address(self) -> ipaddress.IPv4Address:
        addr = self.core.cfg.primary_address
        assert isinstance(addr, ipaddress.IPv4Address)
        return addr


class Lan:
    def __init__(
        self,
        priorities: list[int],
        *,
        seed: int = 0,
        version: int = 3,
        advert_int_cs: int = 100,
        preempt: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.loss = 0.0
        self.dup = 0.0
        self.max_delay = 0.001
        self.routers = [
            Router(
                VrrpCore(
                    CoreConfig(
                        name=f"r{i + 1}",
                        vrid=51,
                        version=version,
                        priority=prio,
                        advert_int_cs=advert_int_cs,
                        preempt=preempt,
                        primary_address=ipaddress.IPv4Address(f"198.18.0.{i + 1}"),
                    )
                )
            )
            for i, prio in enumerate(priorities)
        ]
        # (deliver_at, seq, destination, priority, interval_cs, source)
        self._wire: list[tuple[float, int, int, int, int, ipaddress.IPv4Address]] = []
        self._seq = 0
        # two masters answering each other forever must fail the test, not hang it
        self._budget = 200_000

    # --- the link -----------------------------------------------------------------------------

    def chaos(self, loss: float, dup: float, max_delay: float) -> None:
        self.loss, self.dup, self.max_delay = loss, dup, max_delay

    def partition(self, *groups: list[int]) -> None:
        for g, members in enumerate(groups):
            for i in members:
                self.routers[i].group = g

    def heal(self) -> None:
        self.partition(list(range(len(self.routers))))

    def _flush(self, i: int) -> None:
        r = self.routers[i]
        for action in r.core.drain():
            if isinstance(action, SendAdvert):
                self._transmit(i, action.priority)
            elif isinstance(action, AddVips):
                assert not r.has_vips, f"{r.core.cfg.name} added VIPs twice"
                r.has_vips = True
            elif isinstance(action, DelVips):
                assert r.has_vips, f"{r.core.cfg.name} released VIPs it did not hold"
                r.has_vips = False
            elif isinstance(action, StateChange):
                r.changes.append(action)
        assert r.has_vips == (r.core.state is State.MASTER)

    def _transmit(self, i: int, priority: int) -> None:
        src = self.routers[i]
        for j, dst in enumerate(self.routers):
            if j == i or dst.group != src.group or self.rng.random() < self.loss:
                continue
            for _ in range(2 if self.rng.random() < self.dup else 1):
                # a small floor so that timers due at the same instant fire before delivery
                delay = 0.001 + self.rng.uniform(0, self.max_delay)
                self._seq += 1
                heapq.heappush(
                    self._wire,
                    (
                        self.now + delay,
                        self._seq,
                        j,
                        priority,
                        src.core.cfg.advert_int_cs,
                        src.address,
                    ),
                )

    # --- the clock ----------------------------------------------------------------------------

    def start(self, jitter: float = 0.0) -> None:
        order = sorted(range(len(self.routers)), key=lambda _: self.rng.random())
        starts = sorted((self.rng.uniform(0, jitter), i) for i in order)
        for t, i in starts:
            self.run_until(t)
            self.now = t
            self.routers[i].core.start(t)
            self._flush(i)

    def run_until(self, end: float) -> None:
        while True:
            timers = [
                (d, i)
                for i, r in enumerate(self.routers)
                if (d := r.core.next_deadline()) is not None
            ]
            t_timer, i_timer = min(timers) if timers else (float("inf"), -1)
            t_wire = self._wire[0][0] if self._wire else float("inf")
            t = min(t_timer, t_wire)
            if t > end:
                self.now = end
                return
            self.now = t
            self._budget -= 1
            assert self._budget > 0, "the LAN never went quiet (advert storm)"
            if t_timer <= t_wire:
                self.routers[i_timer].core.on_timer(t)
                self._flush(i_timer)
            else:
                _, _, j, prio, interval, src = heapq.heappop(self._wire)
                self.routers[j].core.on_advert(prio, interval, src, t)
                self._flush(j)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def masters(self, group: int | None = None) -> list[int]:
        return [
            i
            for i, r in enumerate(self.routers)
            if r.core.state is State.MASTER and (group is None or r.group == group)
        ]

    def best(self, members: list[int] | None = None) -> list[int]:
        """Routers that may legitimately end up master: the highest priority ones."""
        members = list(range(len(self.routers))) if members is None else members
        top = max(self.routers[i].core.effective_priority for i in members)
        return [i for i in members if self.routers[i].core.effective_priority == top]

    def transitions(self) -> int:
        return sum(len(r.changes) for r in self.routers)


priorities = st.lists(st.integers(1, 254), min_size=2, max_size=5)


@settings(max_examples=100, deadline=None)
@given(
    prios=priorities,
    seed=st.integers(0, 2**32 - 1),
    version=st.sampled_from([2, 3]),
    fast=st.booleans(),
)
def test_one_master_after_chaos(prios: list[int], seed: int, version: int, fast: bool) -> None:
    interval_cs = 10 if fast and version == 3 else 100
    adv = interval_cs / 100
    lan = Lan(prios, seed=seed, version=version, advert_int_cs=interval_cs)
    lan.chaos(loss=0.3, dup=0.1, max_delay=0.3 * adv)
    lan.start(jitter=2 * adv)
    lan.run_for(40 * adv)
    # the link settles (still duplicating and reordering a little)
    lan.chaos(loss=0.0, dup=0.1, max_delay=0.05 * adv)
    lan.run_for(20 * adv)
    masters = lan.masters()
    assert len(masters) == 1
    assert masters[0] in lan.best()
    # and it stays that way
    settled = lan.transitions()
    lan.run_for(20 * adv)
    assert lan.masters() == masters
    assert lan.transitions() == settled


@settings(max_examples=50, deadline=None)
@given(prios=priorities, seed=st.integers(0, 2**32 - 1))
def test_one_master_without_preemption(prios: list[int], seed: int) -> None:
    lan = Lan(prios, seed=seed, preempt=False)
    lan.chaos(loss=0.2, dup=0.1, max_delay=0.2)
    lan.start(jitter=5.0)
    lan.run_for(30.0)
    lan.chaos(loss=0.0, dup=0.0, max_delay=0.02)
    lan.run_for(20.0)
    assert len(lan.masters()) == 1


@settings(max_examples=50, deadline=None)
@given(
    prios=st.lists(st.integers(1, 254), min_size=3, max_size=5, unique=True),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_brain_then_heal(prios: list[int], seed: int) -> None:
    # DESIGN scenario 3: the nodes stop hearing each other, each side elects a master, and
    # when the link heals exactly one stays: the best one.
    lan = Lan(prios, seed=seed)
    lan.chaos(loss=0.05, dup=0.05, max_delay=0.05)
    lan.start(jitter=1.0)
    lan.run_for(15.0)
    assert lan.masters() == lan.best()
    cut = sorted(range(len(prios)), key=lambda _: lan.rng.random())
    side_a, side_b = cut[: len(cut) // 2], cut[len(cut) // 2 :]
    lan.partition(side_a, side_b)
    lan.run_for(15.0)
    assert lan.masters(0) == lan.best(side_a)
    assert lan.masters(1) == lan.best(side_b)
    lan.heal()
    lan.run_for(15.0)
    assert lan.masters() == lan.best()


def test_firewall_drops_everything_then_heals() -> None:
    lan = Lan([100, 100, 100, 100], seed=7)
    lan.start()
    lan.run_for(10.0)
    lan.partition([0], [1], [2], [3])  # each alone: everyone is master
    lan.run_for(10.0)
    assert lan.masters() == [0, 1, 2, 3]
    lan.heal()
    lan.run_for(10.0)
    # RFC 5798 §6.4.3: equal priority, the higher primary address stays master
    assert lan.masters() == [3]


def test_equal_priority_simultaneous_start_highest_address_wins() -> None:
    lan = Lan([100, 100, 100], seed=1)
    lan.start()  # all at t=0: their master down timers fire together
    lan.run_for(10.0)
    assert lan.masters() == [2]


def test_master_link_drops_and_comes_back_with_preempt() -> None:
    # DESIGN scenario 1: the backup takes the VIP, then gives it back (preempt)
    lan = Lan([150, 100], seed=3)
    lan.start()
    lan.run_for(5.0)
    assert lan.masters() == [0]
    r1 = lan.routers[0]
    r1.core.on_link(False, lan.now)
    lan._flush(0)
    lan.run_for(1.0)  # the priority 0 advert lets r2 take over after skew only (0.6s)
    assert lan.masters() == [1]
    r1.core.on_link(True, lan.now)
    lan._flush(0)
    lan.run_for(5.0)
    assert lan.masters() == [0]


def test_master_link_drops_and_comes_back_nopreempt() -> None:
    lan = Lan([150, 100], seed=3, preempt=False)
    lan.start()
    lan.run_for(5.0)
    lan.routers[0].core.on_link(False, lan.now)
    lan._flush(0)
    lan.run_for(1.0)
    lan.routers[0].core.on_link(True, lan.now)
    lan._flush(0)
    lan.run_for(10.0)
    assert lan.masters() == [1]


def test_two_vrids_dual_master() -> None:
    # DESIGN scenario 4: two instances, each node master of one (separate LANs per VRID)
    vi_1 = Lan([150, 100], seed=5)
    vi_2 = Lan([100, 150], seed=6)
    for lan in (vi_1, vi_2):
        lan.start(jitter=0.5)
        lan.run_for(10.0)
    assert (vi_1.masters(), vi_2.masters()) == ([0], [1])
