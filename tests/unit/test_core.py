"""The VRRP state machine, driven with a fake clock: RFC 5798/3768 §6.4 plus keepalived."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from hakeeper.config.model import VrrpInstance
from hakeeper.vrrp.core import (
    TRANSITIONS,
    AddVips,
    CoreConfig,
    DelVips,
    MasterRxLowerPri,
    SendAdvert,
    SendGarp,
    State,
    StateChange,
    VrrpCore,
)

ME = ipaddress.ip_address("198.18.0.5")
LOWER = "198.18.0.2"  # a peer whose address loses the equal-priority tie-break
HIGHER = "198.18.0.9"  # a peer whose address wins it

BASE = CoreConfig(
    name="VI_1", vrid=51, version=3, priority=100, advert_int_cs=100, primary_address=ME
)


def core(**overrides: Any) -> VrrpCore:
    return VrrpCore(replace(BASE, **overrides))


def short(action: object) -> object:
    """Actions as compact tuples so a case reads like the RFC table."""
    match action:
        case SendAdvert(priority=p):
            return ("advert", p)
        case AddVips():
            return "add_vips"
        case DelVips():
            return "del_vips"
        case SendGarp(count=n):
            return ("garp", n)
        case StateChange(old=old, new=new):
            return (str(old), "->", str(new))
        case MasterRxLowerPri(priority=p):
            return ("rx_lower", p)
    raise AssertionError(action)


def feed(c: VrrpCore, step: tuple[Any, ...]) -> None:
    kind, *args = step
    match kind:
        case "start":
            c.start(*args)
        case "advert":
            prio, interval, src, now = args
            c.on_advert(prio, interval, ipaddress.ip_address(src), now)
        case "timer":
            c.on_timer(*args)
        case "prio":
            c.on_priority(*args)
        case "link":
            c.on_link(*args)
        case "resign":
            c.resign(*args)
        case "stop":
            c.stop(*args)
        case _:
            raise AssertionError(kind)


def run(c: VrrpCore, steps: list[tuple[Any, ...]]) -> list[object]:
    """Feed every step; return only what the last step produced."""
    for step in steps[:-1]:
        feed(c, step)
    c.drain()
    feed(c, steps[-1])
    return [short(a) for a in c.drain()]


START = ("start", 0.0)
BECOME_MASTER = ("timer", 3.6)  # v3, 100cs, prio 100: master down 360cs
MASTER_UP = [START, BECOME_MASTER]
TAKE_OVER = [("advert", 100), "add_vips", ("garp", 5)]

# (id, config overrides, steps, expected state, actions from the last step)
TABLE: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], State, list[object]]] = [
    # RFC 5798 §6.4.1 Initialize
    ("init-backup", {}, [START], State.BACKUP, [("INIT", "->", "BACKUP")]),
    (
        "init-owner-master-at-once",
        {"priority": 255},
        [START],
        State.MASTER,
        [("advert", 255), "add_vips", ("garp", 5), ("INIT", "->", "MASTER")],
    ),
    (
        "init-state-master-is-backup-like-keepalived",
        {"initial_state": "MASTER"},
        [START],
        State.BACKUP,
        [("INIT", "->", "BACKUP")],
    ),
    ("init-link-down-fault", {}, [("start", 0.0, False)], State.FAULT, [("INIT", "->", "FAULT")]),
    # RFC 5798 §6.4.2 Backup
    ("backup-timer-early", {}, [START, ("timer", 3.59)], State.BACKUP, []),
    (
        "backup-master-down",
        {},
        MASTER_UP,
        State.MASTER,
        [*TAKE_OVER, ("BACKUP", "->", "MASTER")],
    ),
    (
        "backup-late-timer-still-takes-over",
        {},
        [START, ("timer", 9.0)],
        State.MASTER,
        [*TAKE_OVER, ("BACKUP", "->", "MASTER")],
    ),
    (
        "backup-higher-resets-down-timer",
        {},
        [START, ("advert", 150, 100, LOWER, 1.0), BECOME_MASTER],
        State.BACKUP,
        [],
    ),
    (
        "backup-equal-resets-down-timer",
        {},
        [START, ("advert", 100, 100, LOWER, 1.0), BECOME_MASTER],
        State.BACKUP,
        [],
    ),
    (
        "backup-lower-discarded-preempt",
        {},
        [START, ("advert", 50, 100, LOWER, 1.0), ("advert", 50, 100, LOWER, 2.0), BECOME_MASTER],
        State.MASTER,
        [*TAKE_OVER, ("BACKUP", "->", "MASTER")],
    ),
    (
        "backup-lower-accepted-nopreempt",
        {"preempt": False},
        [START, ("advert", 50, 100, LOWER, 1.0), BECOME_MASTER],
        State.BACKUP,
        [],
    ),
    (
        "backup-prio0-skew-only",
        {},
        [START, ("advert", 150, 100, LOWER, 1.0), ("advert", 0, 100, LOWER, 2.0), ("timer", 2.6)],
        State.MASTER,
        [*TAKE_OVER, ("BACKUP", "->", "MASTER")],
    ),
    (
        "backup-prio0-not-before-skew",
        {},
        [START, ("advert", 0, 100, LOWER, 2.0), ("timer", 2.59)],
        State.BACKUP,
        [],
    ),
    # RFC 5798 §6.4.3 Master
    ("master-adver-timer", {}, [*MASTER_UP, ("timer", 4.6)], State.MASTER, [("advert", 100)]),
    ("master-adver-timer-early", {}, [*MASTER_UP, ("timer", 4.5)], State.MASTER, []),
    (
        "master-rx-prio0-answers",
        {},
        [*MASTER_UP, ("advert", 0, 100, LOWER, 4.0)],
        State.MASTER,
        [("advert", 100)],
    ),
    (
        "master-rx-higher",
        {},
        [*MASTER_UP, ("advert", 150, 100, LOWER, 4.0)],
        State.BACKUP,
        ["del_vips", ("MASTER", "->", "BACKUP")],
    ),
    (
        "master-rx-equal-higher-address",
        {},
        [*MASTER_UP, ("advert", 100, 100, HIGHER, 4.0)],
        State.BACKUP,
        ["del_vips", ("MASTER", "->", "BACKUP")],
    ),
    (
        "master-rx-equal-lower-address",
        {},
        [*MASTER_UP, ("advert", 100, 100, LOWER, 4.0)],
        State.MASTER,
        [("advert", 100), ("garp", 5), ("rx_lower", 100)],
    ),
    (
        "master-rx-equal-own-address-ignored",
        {},
        [*MASTER_UP, ("advert", 100, 100, str(ME), 4.0)],
        State.MASTER,
        [],
    ),
    (
        "master-rx-lower-forces-election",
        {},
        [*MASTER_UP, ("advert", 50, 100, HIGHER, 4.0)],
        State.MASTER,
        # keepalived also re-announces the VIPs (garp_lower_prio_repeat): a healed split brain
        [("advert", 100), ("garp", 5), ("rx_lower", 50)],
    ),
    (
        "master-rx-lower-no-advert",
        {"lower_prio_no_advert": True, "garp_lower_prio_repeat": 0},
        [*MASTER_UP, ("advert", 50, 100, HIGHER, 4.0)],
        State.MASTER,
        [("rx_lower", 50)],
    ),
    (
        "master-rx-higher-send-advert",
        {"higher_prio_send_advert": True},
        [*MASTER_UP, ("advert", 150, 100, LOWER, 4.0)],
        State.BACKUP,
        [("advert", 100), "del_vips", ("MASTER", "->", "BACKUP")],
    ),
    # faults, link, trackers
    (
        "master-link-down",
        {},
        [*MASTER_UP, ("link", False, 4.0)],
        State.FAULT,
        [("advert", 0), "del_vips", ("MASTER", "->", "FAULT")],
    ),
    (
        "master-tracker-fault",
        {},
        [*MASTER_UP, ("prio", 0, 4.0)],
        State.FAULT,
        [("advert", 0), "del_vips", ("MASTER", "->", "FAULT")],
    ),
    (
        "backup-link-down",
        {},
        [START, ("link", False, 1.0)],
        State.FAULT,
        [("BACKUP", "->", "FAULT")],
    ),
    (
        "fault-link-up",
        {},
        [START, ("link", False, 1.0), ("link", True, 2.0)],
        State.BACKUP,
        [("FAULT", "->", "BACKUP")],
    ),
    (
        "fault-sends-nothing",
        {},
        [START, ("link", False, 1.0), ("advert", 0, 100, LOWER, 2.0), ("timer", 60.0)],
        State.FAULT,
        [],
    ),
    (
        "fault-needs-every-cause-cleared",
        {},
        [START, ("link", False, 1.0), ("prio", 0, 1.5), ("link", True, 2.0)],
        State.FAULT,
        [],
    ),
    (
        "fault-both-cleared",
        {},
        [START, ("link", False, 1.0), ("prio", 0, 1.5), ("link", True, 2.0), ("prio", 90, 2.5)],
        State.BACKUP,
        [("FAULT", "->", "BACKUP")],
    ),
    (
        "owner-fault-recovers-to-master",
        {"priority": 255},
        [START, ("link", False, 1.0), ("link", True, 2.0)],
        State.MASTER,
        [("advert", 255), "add_vips", ("garp", 5), ("FAULT", "->", "MASTER")],
    ),
    # stop and resign
    (
        "master-stop",
        {},
        [*MASTER_UP, ("stop", 4.0)],
        State.STOP,
        [("advert", 0), "del_vips", ("MASTER", "->", "STOP")],
    ),
    ("backup-stop", {}, [START, ("stop", 1.0)], State.STOP, [("BACKUP", "->", "STOP")]),
    ("stop-is-final", {}, [START, ("stop", 1.0), ("timer", 60.0)], State.STOP, []),
    (
        "master-resign",
        {},
        [*MASTER_UP, ("resign", 4.0)],
        State.BACKUP,
        [("advert", 0), "del_vips", ("MASTER", "->", "BACKUP")],
    ),
    ("backup-resign-noop", {}, [START, ("resign", 1.0)], State.BACKUP, []),
]


@pytest.mark.parametrize(
    ("overrides", "steps", "state", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in TABLE],
)
def test_rfc_state_table(
    overrides: dict[str, Any], steps: list[tuple[Any, ...]], state: State, expected: list[object]
) -> None:
    c = core(**overrides)
    assert run(c, steps) == expected
    assert c.state is state


@pytest.mark.parametrize(
    ("version", "priority", "interval_cs", "skew_cs", "down_cs"),
    [
        (3, 100, 100, 60, 360),  # 156*100/256 = 60.94: integer cs as FRR (keepalived: 60.94)
        (3, 100, 10, 6, 36),  # advert_int 0.1
        (3, 1, 100, 99, 399),
        (3, 254, 100, 0, 300),
        (3, 200, 300, 65, 965),
        (2, 100, 100, 60, 360),  # (256-100)/256 s
        (2, 200, 100, 21, 321),
        (2, 100, 300, 60, 960),  # v2 skew does not scale with the interval
        (2, 254, 100, 0, 300),
    ],
)
def test_skew_and_master_down_interval(
    version: int, priority: int, interval_cs: int, skew_cs: int, down_cs: int
) -> None:
    c = core(version=version, priority=priority, advert_int_cs=interval_cs)
    assert (c.skew_time_cs, c.master_down_interval_cs) == (skew_cs, down_cs)
    c.start(10.0)
    assert c.next_deadline() == pytest.approx(10.0 + down_cs / 100)


def test_v3_backup_adopts_master_interval() -> None:
    # RFC 5798 §6.4.2: Master_Adver_Interval := the advert's interval, skew follows it
    c = core()
    c.start(0.0)
    c.on_advert(150, 50, ipaddress.ip_address(LOWER), 1.0)
    assert c.master_adver_interval_cs == 50
    assert c.master_down_interval_cs == 3 * 50 + (156 * 50) // 256 == 180
    assert c.next_deadline() == pytest.approx(2.8)
    # a prio 0 advert then uses the adopted interval's skew
    c.on_advert(0, 50, ipaddress.ip_address(LOWER), 2.0)
    assert c.next_deadline() == pytest.approx(2.3)


def test_v2_backup_keeps_its_own_interval() -> None:
    c = core(version=2)
    c.start(0.0)
    c.on_advert(150, 300, ipaddress.ip_address(LOWER), 1.0)
    assert c.master_adver_interval_cs == 100
    assert c.next_deadline() == pytest.approx(4.6)


def test_master_uses_its_own_interval_again() -> None:
    c = core()
    c.start(0.0)
    c.on_advert(150, 50, ipaddress.ip_address(LOWER), 1.0)
    c.on_timer(2.8)
    assert c.state is State.MASTER
    assert c.master_adver_interval_cs == 100
    assert c.next_deadline() == pytest.approx(3.8)


def test_master_address_and_priority_follow_the_master() -> None:
    c = core()
    c.start(0.0)
    assert c.master_address is None
    c.on_advert(150, 100, ipaddress.ip_address(LOWER), 1.0)
    assert (c.master_address, c.master_priority) == (ipaddress.ip_address(LOWER), 150)
    c.on_timer(4.6)
    assert c.master_address == ME


def test_preempt_delay_keepalived_semantics() -> None:
    # keepalived vrrp_state_backup: the first lower advert starts the delay; adverts are
    # accepted until it ends, then ignored, so the take-over comes one master down interval
    # after the last accepted advert.
    c = core(preempt_delay_cs=500)
    c.start(0.0)
    lower = ipaddress.ip_address(LOWER)
    for t in range(1, 9):
        c.on_advert(50, 100, lower, float(t))
        c.on_timer(float(t))
        assert c.state is State.BACKUP, t
    assert c.next_deadline() == pytest.approx(5.0 + 3.6)  # the advert at t=5 was the last taken
    c.on_timer(8.59)
    assert c.state is State.BACKUP
    c.on_timer(8.6)
    assert c.state is State.MASTER
    reasons = [a.reason for a in c.drain() if isinstance(a, StateChange)]
    assert reasons[-1] == f"preempting lower priority (50) master {LOWER}"


def test_preempt_delay_restarts_after_a_better_master() -> None:
    c = core(preempt_delay_cs=500)
    c.start(0.0)
    lower, higher = ipaddress.ip_address(LOWER), ipaddress.ip_address(HIGHER)
    c.on_advert(50, 100, lower, 1.0)  # delay runs to 6.0
    c.on_advert(150, 100, higher, 2.0)  # cancelled
    c.on_advert(50, 100, lower, 3.0)  # runs to 8.0
    for t in (4.0, 5.0, 6.0, 7.0):
        c.on_advert(50, 100, lower, t)
    assert c.next_deadline() == pytest.approx(7.0 + 3.6)


def test_nopreempt_higher_backup_never_takes_over() -> None:
    c = core(preempt=False, priority=200)
    c.start(0.0)
    for t in range(1, 50):
        c.on_advert(50, 100, ipaddress.ip_address(LOWER), float(t))
        c.on_timer(float(t))
    assert c.state is State.BACKUP


def test_owner_priority_never_adjusted_but_can_fault() -> None:
    c = core(priority=255)
    c.start(0.0)
    c.on_priority(50, 1.0)
    assert c.effective_priority == 255
    c.on_priority(0, 2.0)
    assert c.state is State.FAULT
    c.on_priority(200, 3.0)
    assert c.state is State.MASTER
    assert c.effective_priority == 255


def test_priority_clamped_like_keepalived() -> None:
    c = core()
    c.on_priority(400, 0.0)
    assert c.effective_priority == 254
    c.on_priority(1, 0.0)
    assert c.effective_priority == 1
    assert c.state is State.INIT  # only 0 (a weight-0 tracker failing) means fault


def test_priority_change_in_backup_shifts_down_timer() -> None:
    c = core()
    c.start(0.0)
    assert c.next_deadline() == pytest.approx(3.6)
    c.on_priority(200, 1.0)  # skew 60cs -> 21cs
    assert c.next_deadline() == pytest.approx(3.21)


def test_master_adverts_carry_new_priority() -> None:
    c = core()
    c.start(0.0)
    c.on_timer(3.6)
    c.drain()
    c.on_priority(90, 4.0)
    c.on_timer(4.6)
    assert c.drain() == [SendAdvert(90)]


def test_late_timer_sends_one_advert_and_restarts_from_now() -> None:
    c = core(priority=255, garp_master_delay_cs=0)
    c.start(0.0)
    c.drain()
    c.on_timer(1.7)
    assert c.drain() == [SendAdvert(255)]
    assert c.next_deadline() == pytest.approx(2.7)


def test_garp_schedule() -> None:
    c = core(
        priority=255,
        garp_master_delay_cs=500,
        garp_master_repeat=3,
        garp_master_refresh_cs=1000,
        garp_master_refresh_repeat=2,
    )
    c.start(0.0)
    garps: list[tuple[float, int]] = []
    now = 0.0
    while now <= 36.0:
        garps += [(round(now, 6), a.count) for a in c.drain() if isinstance(a, SendGarp)]
        deadline = c.next_deadline()
        assert deadline is not None
        now = deadline
        c.on_timer(now)
    # at once, after garp_master_delay, then every refresh counted from the end of the delay
    assert garps == [(0.0, 3), (5.0, 3), (15.0, 2), (25.0, 2), (35.0, 2)]


def test_garp_timers_stop_when_master_leaves() -> None:
    c = core(priority=255, garp_master_refresh_cs=1000)
    c.start(0.0)
    c.stop(1.0)
    assert c.next_deadline() is None


def test_stats_are_counted() -> None:
    c = core()
    c.start(0.0)
    c.on_advert(0, 100, ipaddress.ip_address(LOWER), 1.0)
    c.on_timer(1.6)  # master: 1 advert
    c.on_timer(2.6)  # 2 adverts
    c.on_advert(0, 100, ipaddress.ip_address(LOWER), 3.0)  # answered: 3
    c.on_advert(150, 100, ipaddress.ip_address(LOWER), 3.5)  # -> backup
    c.on_timer(7.1)  # master again: 4
    c.stop(8.0)  # prio 0: 5
    s = c.stats
    assert (s.become_master, s.release_master) == (2, 2)
    assert (s.pri_zero_rcvd, s.pri_zero_sent, s.advert_sent) == (2, 1, 5)
    assert c.last_transition == 8.0


def test_state_change_reasons_are_readable() -> None:
    c = core()
    c.start(0.0)
    c.on_timer(3.6)
    c.on_advert(150, 100, ipaddress.ip_address("198.18.0.2"), 4.0)
    c.on_advert(0, 100, ipaddress.ip_address("198.18.0.2"), 5.0)
    c.on_timer(5.6)
    c.on_link(False, 6.0)
    reasons = [(str(a.old), str(a.new), a.reason) for a in c.drain() if isinstance(a, StateChange)]
    assert reasons == [
        ("INIT", "BACKUP", "startup"),
        ("BACKUP", "MASTER", "master down timer expired"),
        ("MASTER", "BACKUP", "higher priority (150) advert from 198.18.0.2"),
        ("BACKUP", "MASTER", "priority 0 advert from 198.18.0.2"),
        ("MASTER", "FAULT", "interface down"),
    ]


def test_reconfigure_keeps_master_without_flap() -> None:
    c = core()
    c.start(0.0)
    c.on_timer(3.6)
    c.drain()
    c.reconfigure(replace(c.cfg, priority=150, advert_int_cs=50), 4.0)
    assert c.state is State.MASTER
    assert c.drain() == []
    assert c.effective_priority == 150
    assert c.next_deadline() == pytest.approx(4.5)
    c.on_timer(4.5)
    assert c.drain() == [SendAdvert(150)]
    assert c.next_deadline() == pytest.approx(5.0)


def test_reconfigure_keeps_tracker_offset_and_backup_timer() -> None:
    c = core()
    c.start(0.0)
    c.on_priority(90, 0.5)  # a tracker took 10 off
    c.reconfigure(replace(c.cfg, priority=210), 1.0)
    assert c.state is State.BACKUP
    assert c.effective_priority == 200
    # down timer shifted by the new skew: 3*100 + 56*100//256 = 321
    assert c.next_deadline() == pytest.approx(3.21)


def test_reconfigure_refuses_another_vrid() -> None:
    c = core()
    with pytest.raises(ValueError, match="virtual_router_id"):
        c.reconfigure(replace(c.cfg, vrid=52), 0.0)


def test_transition_table_is_enforced() -> None:
    assert State.STOP not in TRANSITIONS[State.STOP]
    for state, targets in TRANSITIONS.items():
        assert state not in targets
    c = core()
    c.start(0.0)
    with pytest.raises(RuntimeError):
        c.start(1.0)
    c.stop(1.0)
    with pytest.raises(RuntimeError, match="STOP -> MASTER"):
        c._change_state(State.MASTER, "test", 2.0)


def test_config_from_instance() -> None:
    inst = VrrpInstance(
        name="VI_1",
        interface="eth0",
        virtual_router_id=51,
        state="MASTER",
        priority=150,
        advert_int=0.1,
        version=3,
        nopreempt=True,
        preempt_delay=2.5,
        garp_master_refresh=60.0,
    )
    cfg = CoreConfig.from_instance(inst, ME)
    assert (cfg.advert_int_cs, cfg.preempt, cfg.preempt_delay_cs) == (10, False, 250)
    assert (cfg.initial_state, cfg.garp_master_delay_cs, cfg.garp_master_refresh_cs) == (
        "MASTER",
        500,
        6000,
    )
    assert cfg.primary_address == ME


@pytest.mark.parametrize(
    "bad",
    [{"priority": 0}, {"priority": 256}, {"vrid": 0}, {"version": 4}, {"advert_int_cs": 0}],
)
def test_config_rejects_misuse(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(BASE, **bad)


def test_lower_priority_master_triggers_garp_bursts_now_and_after_the_delay():
    c = core(garp_lower_prio_repeat=3, garp_lower_prio_delay_cs=200, garp_master_delay_cs=0)
    c.start(0.0)
    c.on_timer(c.next_deadline())
    c.drain()
    c.on_advert(50, 100, HIGHER, 5.0)
    assert [short(a) for a in c.drain()] == [("advert", 100), ("garp", 3), ("rx_lower", 50)]
    c.on_timer(6.99)
    assert ("garp", 3) not in [short(a) for a in c.drain()]
    c.on_timer(7.0)
    assert ("garp", 3) in [short(a) for a in c.drain()]
