"""Operator orders on the VRRP core (failover, maintenance), with a fake clock."""

from __future__ import annotations

import ipaddress

from hakeeper.vrrp.core import SendAdvert, State, StateChange
from tests.unit.test_core import BECOME_MASTER, START, core, feed, short

PEER = "198.18.0.2"  # lower address, so ties are not what decides these cases


def master(**overrides: object):  # type: ignore[no-untyped-def]
    c = core(**overrides)
    feed(c, START)
    feed(c, BECOME_MASTER)
    c.drain()
    assert c.state is State.MASTER
    return c


def test_failover_sends_priority_zero_and_goes_backup() -> None:
    c = master()
    assert c.failover(10.0) is True
    actions = [short(a) for a in c.drain()]
    assert actions == [("advert", 0), "del_vips", ("MASTER", "->", "BACKUP")]
    assert c.yielding


def test_after_failover_a_lower_master_is_accepted_not_preempted() -> None:
    c = master()
    c.failover(10.0)
    c.drain()
    # the peer (priority 50 < our 100) took over; with preempt we would take it back
    for i in range(20):
        c.on_advert(50, 100, ipaddress.ip_address(PEER), 10.5 + i)
        c.on_timer(10.5 + i + 0.9)
    assert c.state is State.BACKUP
    assert str(c.master_address) == PEER
    assert not [a for a in c.drain() if isinstance(a, StateChange)]


def test_after_failover_we_take_over_when_the_new_master_fails() -> None:
    c = master()
    c.failover(10.0)
    c.on_advert(50, 100, ipaddress.ip_address(PEER), 10.5)
    c.drain()
    c.on_timer(10.5 + c.master_down_interval_cs / 100)
    assert c.state is State.MASTER
    assert not c.yielding  # the hand-over is over once we are master again


def test_ending_the_yield_lets_preemption_happen_again() -> None:
    c = master()
    c.failover(10.0)
    c.on_advert(50, 100, ipaddress.ip_address(PEER), 10.5)
    c.set_yielding(False)
    c.on_advert(50, 100, ipaddress.ip_address(PEER), 11.5)  # a lower master: discarded
    c.on_timer(10.5 + c.master_down_interval_cs / 100)
    assert c.state is State.MASTER


def test_failover_of_a_backup_is_refused() -> None:
    c = core()
    feed(c, START)
    c.drain()
    assert c.failover(1.0) is False
    assert c.state is State.BACKUP and not c.yielding
    assert c.drain() == []


def test_maintenance_releases_and_stays_out_of_elections() -> None:
    c = master()
    c.set_maintenance(True, 10.0)
    actions = [short(a) for a in c.drain()]
    assert actions == [("advert", 0), "del_vips", ("MASTER", "->", "FAULT")]
    # no timer runs, adverts are ignored, a recovered tracker does not bring it back
    assert c.next_deadline() is None
    c.on_advert(50, 100, ipaddress.ip_address(PEER), 11.0)
    c.on_priority(100, 12.0)
    c.on_link(True, 12.0)
    assert c.state is State.FAULT
    assert not [a for a in c.drain() if isinstance(a, SendAdvert)]


def test_maintenance_off_rejoins_as_backup_and_elections_decide() -> None:
    c = master()
    c.set_maintenance(True, 10.0)
    c.set_maintenance(False, 20.0)
    assert c.state is State.BACKUP
    c.on_timer(20.0 + c.master_down_interval_cs / 100)
    assert c.state is State.MASTER


def test_maintenance_off_keeps_other_faults() -> None:
    c = master()
    c.set_maintenance(True, 10.0)
    c.on_link(False, 11.0)
    c.set_maintenance(False, 12.0)
    assert c.state is State.FAULT  # the link is still down
    c.on_link(True, 13.0)
    assert c.state is State.BACKUP


def test_maintenance_before_start_starts_in_fault() -> None:
    c = core()
    c.set_maintenance(True, 0.0)
    feed(c, START)
    assert c.state is State.FAULT
