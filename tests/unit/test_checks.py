"""Instance-level receive checks: each one fires, each one stays quiet, and they run in
keepalived's order."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from hakeeper.vrrp.checks import NOT_COUNTED, ExpectParams, Verdict, check_advert, inspect_advert
from hakeeper.vrrp.checks import vrid_of as checks_vrid_of
from hakeeper.vrrp.packet import MCAST_V4, MCAST_V6, Advert, encode
from hakeeper.vrrp.stats import RECEIVE_ERRORS, InstanceStats

VIP1, VIP2, VIP3 = (IPv4Address(f"198.18.0.{n}") for n in (100, 101, 102))
PEER = IPv4Address("198.18.0.2")
OTHER = IPv4Address("198.18.0.9")

V2_EXPECT = ExpectParams(
    version=2,
    vrid=51,
    interval_cs=100,
    auth_type=1,
    auth_pass=b"secret1",
    addresses=(VIP1, VIP2),
    unicast=False,
    skip_check_adv_addr=False,
    unicast_peers=(),
    check_unicast_src=False,
)
V2_ADV = Advert(2, 51, 150, 100, (VIP1, VIP2), auth_type=1, auth_data=b"secret1")

V3_EXPECT = replace(V2_EXPECT, version=3, interval_cs=50, auth_type=0, auth_pass=b"")
V3_ADV = Advert(3, 51, 150, 50, (VIP1, VIP2))

UNICAST = replace(V3_EXPECT, unicast=True, unicast_peers=(PEER,), check_unicast_src=True)


def run(adv: Advert, expect: ExpectParams, **kw: Any) -> Verdict:
    args: dict[str, Any] = {"ttl": 255, "src": PEER, "dst": MCAST_V4, "expect": expect}
    args.update(kw)
    verdict = inspect_advert(adv, **args)
    assert check_advert(adv, **args) == verdict.drop
    return verdict


def test_valid_adverts_are_accepted_and_counted() -> None:
    assert run(V2_ADV, V2_EXPECT) == Verdict(None, ("advert_rcvd",))
    assert run(V3_ADV, V3_EXPECT) == Verdict(None, ("advert_rcvd",))
    assert run(V3_ADV, UNICAST, dst=IPv4Address("198.18.0.1")).drop is None


def test_ipv6_advert_is_accepted() -> None:
    vips = (IPv6Address("fe80::53"), IPv6Address("2001:db8::53"))
    expect = replace(V3_EXPECT, addresses=vips)
    adv = Advert(3, 51, 100, 50, tuple(reversed(vips)))  # order does not matter
    assert run(adv, expect, src=IPv6Address("fe80::2"), dst=MCAST_V6).drop is None


def test_vrid_err() -> None:
    assert run(replace(V3_ADV, vrid=52), V3_EXPECT).drop == "vrid_err"


def test_ttl_must_be_255_for_multicast() -> None:
    assert run(V3_ADV, V3_EXPECT, ttl=254) == Verdict("ip_ttl_err", ("ip_ttl_err",))
    assert run(V3_ADV, V3_EXPECT, ttl=None).drop is None  # unknown: not checked


def test_ttl_not_checked_for_unicast() -> None:
    assert run(V3_ADV, UNICAST, ttl=61, dst=IPv4Address("198.18.0.1")).drop is None


def test_version_err() -> None:
    assert run(V3_ADV, V2_EXPECT).drop == "version_err"
    assert run(V2_ADV, V3_EXPECT).drop == "version_err"


def test_invalid_authtype() -> None:
    assert run(replace(V2_ADV, auth_type=3), V2_EXPECT).drop == "invalid_authtype"


def test_authtype_mismatch() -> None:
    adv = replace(V2_ADV, auth_type=0, auth_data=b"")
    assert run(adv, V2_EXPECT).drop == "authtype_mismatch"
    assert run(adv, replace(V2_EXPECT, auth_type=0)).drop is None


def test_auth_failure_on_wrong_password() -> None:
    assert run(replace(V2_ADV, auth_data=b"secret2"), V2_EXPECT).drop == "auth_failure"
    # only 8 octets go on the wire, so only 8 are compared (keepalived truncates auth_pass)
    long_pass = replace(V2_EXPECT, auth_pass=b"secret1\0-ignored")
    assert run(V2_ADV, long_pass).drop is None


def test_ah_needs_the_shell_to_have_verified_it() -> None:
    adv = replace(V2_ADV, auth_type=2, auth_data=b"")
    expect = replace(V2_EXPECT, auth_type=2)
    assert run(adv, expect).drop == "auth_failure"
    assert run(adv, expect, ah_verified=True).drop is None


def test_v2_interval_mismatch_is_dropped() -> None:
    adv = replace(V2_ADV, interval_cs=200)
    assert run(adv, V2_EXPECT) == Verdict("advert_interval_err", ("advert_interval_err",))


def test_v3_interval_mismatch_is_accepted_and_reported() -> None:
    verdict = run(replace(V3_ADV, interval_cs=100), V3_EXPECT)
    assert verdict == Verdict(None, ("advert_rcvd",), interval_mismatch=True)
    assert not run(V3_ADV, V3_EXPECT).interval_mismatch


def test_multicast_advert_on_unicast_instance_is_dropped() -> None:
    assert run(V3_ADV, UNICAST, dst=MCAST_V4).drop == "addr_list_err"


def test_unicast_advert_on_multicast_instance_is_dropped() -> None:
    assert run(V3_ADV, V3_EXPECT, dst=IPv4Address("198.18.0.1")).drop == "addr_list_err"


def test_address_count_mismatch_is_counted_but_accepted() -> None:
    verdict = run(replace(V3_ADV, addresses=(VIP1,)), V3_EXPECT)
    assert verdict == Verdict(None, ("advert_rcvd", "addr_list_err"))


def test_address_set_mismatch_is_counted_but_accepted() -> None:
    verdict = run(replace(V3_ADV, addresses=(VIP1, VIP3)), V3_EXPECT)
    assert verdict == Verdict(None, ("advert_rcvd", "addr_list_err"))
    # a low priority does not change that (keepalived departs from RFC 5798 §7.1 here)
    assert run(replace(V3_ADV, priority=1, addresses=(VIP3,)), V3_EXPECT).drop is None


def test_skip_check_adv_addr_compares_only_when_the_master_changes() -> None:
    expect = replace(V3_EXPECT, skip_check_adv_addr=True)
    adv = replace(V3_ADV, addresses=(VIP1, VIP3))
    assert run(adv, expect, master_changed=False).counters == ("advert_rcvd",)
    assert run(adv, expect, master_changed=True).counters == ("advert_rcvd", "addr_list_err")
    # the count is always compared
    short = replace(V3_ADV, addresses=(VIP1,))
    assert "addr_list_err" in run(short, expect, master_changed=False).counters


def test_unknown_unicast_source_is_dropped_uncounted() -> None:
    uni = IPv4Address("198.18.0.1")
    verdict = run(V3_ADV, UNICAST, src=OTHER, dst=uni)
    assert verdict == Verdict("unknown_unicast_src", ("advert_rcvd",))
    assert "unknown_unicast_src" in NOT_COUNTED
    assert run(V3_ADV, UNICAST, src=PEER, dst=uni).drop is None
    no_check = replace(UNICAST, check_unicast_src=False)
    assert run(V3_ADV, no_check, src=OTHER, dst=uni).drop is None


def test_priority_zero_is_valid() -> None:
    # accepted and counted as an advert; pri_zero_rcvd is the core's to count
    verdict = run(replace(V3_ADV, priority=0), V3_EXPECT)
    assert verdict == Verdict(None, ("advert_rcvd",))


@pytest.mark.parametrize(
    ("adv", "kw", "first"),
    [
        # TTL is checked before the version
        (V2_ADV, {"ttl": 1, "expect": V3_EXPECT}, "ip_ttl_err"),
        # version before authentication
        (replace(V2_ADV, auth_type=7), {"expect": V3_EXPECT}, "version_err"),
        # auth type validity before the match with ours
        (replace(V2_ADV, auth_type=7), {"expect": V2_EXPECT}, "invalid_authtype"),
        # password before interval
        (replace(V2_ADV, auth_data=b"x", interval_cs=200), {"expect": V2_EXPECT}, "auth_failure"),
        # interval before unicast/multicast
        (
            replace(V2_ADV, interval_cs=200),
            {"dst": OTHER, "expect": V2_EXPECT},
            "advert_interval_err",
        ),
    ],
)
def test_checks_run_in_keepalived_order(adv: Advert, kw: dict[str, Any], first: str) -> None:
    assert run(adv, **kw).drop == first


def test_every_counter_is_an_instance_stat() -> None:
    stats = InstanceStats()
    cases = [
        run(V3_ADV, V3_EXPECT, ttl=1),
        run(replace(V3_ADV, addresses=(VIP1,), priority=0), V3_EXPECT),
        run(V3_ADV, UNICAST, src=OTHER, dst=IPv4Address("198.18.0.1")),
    ]
    for verdict in cases:
        for name in verdict.counters:
            stats.bump(name)
        assert verdict.drop is None or verdict.drop in RECEIVE_ERRORS or verdict.drop in NOT_COUNTED
    assert stats.ip_ttl_err == 1 and stats.addr_list_err == 1
    assert stats.advert_rcvd == 2


def test_vrid_of_peeks_without_decoding() -> None:
    wire = encode(V3_ADV, PEER, MCAST_V4)
    assert checks_vrid_of(wire) == 51
    assert checks_vrid_of(wire[:7]) is None
