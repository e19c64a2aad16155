"""The core's sync group hooks: ask before MASTER, follow the group, sync faults."""

from __future__ import annotations

import ipaddress

from hakeeper.vrrp.core import (
    AddVips,
    CoreConfig,
    DelVips,
    SendAdvert,
    State,
    StateChange,
    VrrpCore,
    WantMaster,
)

ME = ipaddress.ip_address("198.18.0.5")
PEER = ipaddress.ip_address("198.18.0.9")
CFG = CoreConfig(name="VI_1", vrid=51, version=3, priority=100, advert_int_cs=10,
                 primary_address=ME)  # fmt: skip


def member() -> VrrpCore:
    core = VrrpCore(CFG)
    core.sync_group = "VG_1"
    core.start(0.0)
    core.drain()
    return core


def test_down_timer_asks_the_group_and_waits():
    core = member()
    due = core.next_deadline()
    assert due is not None
    core.on_timer(due)
    assert core.drain() == [WantMaster()]
    assert core.state is State.BACKUP and core.wants_master
    # another master down interval is armed meanwhile (keepalived does the same)
    assert core.next_deadline() == due + core.master_down_interval_cs / 100
    # a master speaking again clears the wish
    core.on_advert(200, 10, PEER, due + 0.05)
    assert not core.wants_master


def test_go_master_and_go_backup_on_the_group_s_order():
    core = member()
    core.go_master("sync group VG_1: all members ready", 1.0)
    actions = core.drain()
    assert core.state is State.MASTER
    assert SendAdvert(100) in actions and AddVips() in actions
    core.go_backup("sync group VG_1: VI_2 went BACKUP", 2.0)
    actions = core.drain()
    assert core.state is State.BACKUP
    assert DelVips() in actions
    assert SendAdvert(0) not in actions  # the peer group takes over on its own timers


def test_sync_fault_holds_until_cleared_and_own_faults_stay():
    core = member()
    core.sync_fault(True, 1.0)
    assert core.state is State.FAULT and not core.own_fault
    core.on_link(False, 1.5)
    core.sync_fault(False, 2.0)
    assert core.state is State.FAULT  # its own link is still down
    core.on_link(True, 3.0)
    assert core.state is State.BACKUP
    changes = [a for a in core.drain() if isinstance(a, StateChange)]
    assert [c.new for c in changes] == [State.FAULT, State.BACKUP]
