"""Effective priority from tracker states: a table checked against keepalived's arithmetic.

Sources (keepalived, acassen/keepalived master):
- vrrp/vrrp_track.c initialise_track_script_state, process_script_update_priority:
  weight > 0 adds weight*multiplier while the script is OK, weight < 0 adds it while failed;
  `reverse` sets multiplier -1; weight 0: `script_ok != (multiplier == 1)` -> down_instance.
- vrrp/vrrp_track.c initialise_interface_tracking_priorities (same rule, IF_FLAGS_UP).
- vrrp/vrrp_track.c initialise_process_tracking_priorities / process_update_track_process_status
  (same rule, have_quorum).
- trackers/track_file.c update_track_file_status, process_update_vrrp_track_file_status:
  weight 0 -> `!value != (multiplier == 1)` faults; else value*weight*multiplier kept in
  -254..253, -254 = FAULT.
- vrrp/vrrp_track.c vrrp_set_effective_priority: owner (255) untouched, else 1..254.
- vrrp/vrrp.c vrrp_complete_instance, sync_group_tracking_init: which trackers bind.
"""

from __future__ import annotations

import pytest

from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.track.weights import (
    Binding,
    Contribution,
    Kind,
    bindings,
    contribution,
    effective_priority,
)

S, I, F, P = Kind.SCRIPT, Kind.INTERFACE, Kind.FILE, Kind.PROCESS  # noqa: E741


def c(kind: Kind, weight: int, up: bool | None = None, value: int = 0, rev: bool = False):
    return Contribution(kind, weight, rev, up=up, value=value)


# (base, trackers, expected effective priority; 0 = FAULT)
TABLE = [
    # scripts: positive weight counts while OK, negative while failed
    (100, [c(S, 20, True)], 120),
    (100, [c(S, 20, False)], 100),
    (100, [c(S, -20, True)], 100),
    (100, [c(S, -20, False)], 80),
    # reverse flips the sign, not the state it applies in
    (100, [c(S, 20, True, rev=True)], 80),
    (100, [c(S, 20, False, rev=True)], 100),
    (100, [c(S, -20, False, rev=True)], 120),
    (100, [c(S, -20, True, rev=True)], 100),
    # weight 0: failure faults; reversed, success faults
    (100, [c(S, 0, False)], 0),
    (100, [c(S, 0, True)], 100),
    (100, [c(S, 0, True, rev=True)], 0),
    (100, [c(S, 0, False, rev=True)], 100),
    # a script that has not exited yet adds nothing and faults nothing
    (100, [c(S, 0, None)], 100),
    (100, [c(S, -50, None)], 100),
    # several trackers add up, then clamp to 1..254
    (100, [c(S, -30, False), c(I, -30, False), c(P, -30, False)], 10),
    (100, [c(S, -60, False), c(I, -60, False)], 1),
    (200, [c(S, 60, True), c(I, 60, True)], 254),
    (250, [c(S, 4, True)], 254),
    (5, [c(S, -253, False)], 1),
    # interface and process: the same rule on up / quorum
    (100, [c(I, 0, False)], 0),
    (100, [c(I, -10, False)], 90),
    (100, [c(I, 10, True)], 110),
    (100, [c(I, 0, None)], 100),
    (100, [c(P, 0, False)], 0),
    (100, [c(P, 15, True)], 115),
    (100, [c(P, -15, False, rev=True)], 115),
    # track_file: value x weight (x -1 reversed)
    (100, [c(F, 1, value=0)], 100),
    (100, [c(F, 1, value=-30)], 70),
    (100, [c(F, -10, value=3)], 70),
    (100, [c(F, -10, value=3, rev=True)], 130),
    (100, [c(F, 5, value=100)], 254),  # 500 capped at 253 first, then the clamp
    (100, [c(F, 1, value=-253)], 1),  # -253 is a priority change ...
    (100, [c(F, 1, value=-254)], 0),  # ... -254 is FAULT
    (100, [c(F, -2, value=200)], 0),
    # track_file weight 0: any non-zero value faults; reversed, zero faults
    (100, [c(F, 0, value=0)], 100),
    (100, [c(F, 0, value=7)], 0),
    (100, [c(F, 0, value=-1)], 0),
    (100, [c(F, 0, value=0, rev=True)], 0),
    (100, [c(F, 0, value=3, rev=True)], 100),
    # the owner is never adjusted, but a fault still faults it
    (255, [c(S, -50, False)], 255),
    (255, [c(F, 1, value=-10)], 255),
    (255, [c(S, 0, False)], 0),
    (255, [c(I, 0, False)], 0),
    # a fault wins over any weight
    (100, [c(S, 100, True), c(F, 0, value=1)], 0),
]


@pytest.mark.parametrize(("base", "trackers", "expected"), TABLE)
def test_effective_priority_table(base, trackers, expected):
    assert effective_priority(base, trackers) == expected


def test_file_contribution_is_capped_at_253():
    assert contribution(c(F, 10, value=100)) == 253


CONF = """
vrrp_script chk { script /bin/true
  weight -20 }
vrrp_script chk0 { script /bin/true }
vrrp_script chkrev { script /bin/true
  weight 10 reverse }
vrrp_track_file tf { file /tmp/x }
vrrp_track_file tf5 { file /tmp/y
  weight 5 }
vrrp_track_process tp { process sleep
  weight -7 }
vrrp_instance SOLO { interface eth0
  virtual_router_id 1
  track_script { chk
    chk0
    chkrev weight -5 }
  track_interface { eth1 weight -10 }
  track_file { tf }
  track_process { tp } }
vrrp_instance OWNER { interface eth0
  virtual_router_id 2
  priority 255
  track_script { chk
    chk0 }
  track_interface { eth1 weight -10
    eth2 }
  track_file { tf
    tf5 } }
vrrp_instance M1 { interface eth0
  virtual_router_id 3
  track_script { chk
    chk0 }
  track_interface { eth1 weight -10 }
  track_file { tf
    tf5 } }
vrrp_instance M2 { interface eth0
  virtual_router_id 4 }
vrrp_instance W1 { interface eth0
  virtual_router_id 5
  track_script { chk } }
vrrp_instance W2 { interface eth0
  virtual_router_id 6 }
vrrp_sync_group G { group { M1
  M2 }
  track_script { chkrev }
  track_interface { eth3 weight -30 } }
vrrp_sync_group GW { group { W1
  W2 }
  sync_group_tracking_weight
  track_file { tf5 } }
"""


def _binds(name: str) -> set[Binding]:
    config = parse_keepalived_text(CONF, "t.conf")
    return set(bindings(config, config.instance(name)))


def test_bindings_plain_instance_with_overrides():
    # vrrp_track.c alloc_track_script: the track_script line's weight overrides, and the
    # script's own `reverse` stays unless the line says otherwise
    assert _binds("SOLO") == {
        Binding(S, "chk", -20),
        Binding(S, "chk0", 0),
        Binding(S, "chkrev", -5, True),
        Binding(I, "eth1", -10),
        Binding(F, "tf", 1),
        Binding(P, "tp", -7),
    }


def test_bindings_owner_drops_weights():
    # vrrp.c vrrp_complete_instance: weighted scripts and interfaces are removed from an
    # owner, a track_file at the default weight 1 becomes 0, other weights are removed
    assert _binds("OWNER") == {
        Binding(S, "chk0", 0),
        Binding(I, "eth2", 0),
        Binding(F, "tf", 0),
    }


def test_bindings_sync_group_without_tracking_weight():
    # the member's own weighted interface becomes weight 0, weighted scripts go;
    # the group's trackers act on every member with the group's weights
    assert _binds("M1") == {
        Binding(S, "chk0", 0),
        Binding(I, "eth1", 0),
        Binding(F, "tf", 0),
        Binding(S, "chkrev", 10, True, "G"),
        Binding(I, "eth3", -30, False, "G"),
    }
    assert _binds("M2") == {
        Binding(S, "chkrev", 10, True, "G"),
        Binding(I, "eth3", -30, False, "G"),
    }


def test_bindings_sync_group_tracking_weight_keeps_weights():
    assert _binds("W1") == {Binding(S, "chk", -20), Binding(F, "tf5", 5, False, "GW")}
    assert _binds("W2") == {Binding(F, "tf5", 5, False, "GW")}
