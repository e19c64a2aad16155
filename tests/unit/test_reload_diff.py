"""Which instances a reload may reconfigure live, and which it must restart."""

from __future__ import annotations

import dataclasses
import ipaddress

from hakeeper.config.model import VirtualAddress, VrrpInstance
from hakeeper.daemon import identity

BASE = VrrpInstance(
    "VI_1",
    "eth0",
    51,
    virtual_ipaddress=(VirtualAddress(ipaddress.ip_address("198.18.0.100"), 24),),
)


def test_priority_and_timers_are_live_changes():
    changed = dataclasses.replace(BASE, priority=150, advert_int=0.5, nopreempt=True)
    assert changed != BASE
    assert identity(changed) == identity(BASE)


def test_address_interface_and_vrid_changes_need_a_restart():
    vip = (VirtualAddress(ipaddress.ip_address("198.18.0.101"), 24),)
    for change in ({"virtual_ipaddress": vip}, {"interface": "eth1"}, {"virtual_router_id": 52}):
        assert identity(dataclasses.replace(BASE, **change)) != identity(BASE), change
