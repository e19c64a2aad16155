"""Instance-level receive checks for a decoded advertisement, in keepalived's order.

`decode()` has already checked what needs no configuration (length, version 2|3, type,
checksum). What is left depends on the instance: TTL, our version, authentication, the
advert interval, unicast vs multicast, the VIP list and the unicast peer list.

Order and semantics follow keepalived's `vrrp_check_packet` (vrrp.c), including where it
departs from the RFC:

- a VIP list that differs from ours is counted (`addr_list_err`) but the advert is still
  accepted, whatever its priority (RFC 5798 §7.1 says drop unless priority is 255; keepalived
  does not, and a drop-in replacement must elect the same master as its neighbours);
- a v2 interval mismatch drops the advert (RFC 3768 §7.1 MUST); keepalived bumps no counter,
  we bump `advert_interval_err` so the drop is visible;
- a v3 interval mismatch is only reported (`interval_mismatch`): the backup adopts the
  master's interval (RFC 5798 §6.4.2);
- a unicast advert from an address not in `unicast_peer` is dropped without a counter
  (reason `unknown_unicast_src`, which is in NOT_COUNTED).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from hakeeper.vrrp.packet import (
    AUTH_AH,
    AUTH_LEN,
    AUTH_NONE,
    AUTH_PASS,
    Advert,
    IPAddress,
    vrid_of,
)

__all__ = ["ExpectParams", "Verdict", "check_advert", "inspect_advert", "vrid_of"]

VRRP_TTL = 255  # RFC 5798 §5.1.1.3 / §5.1.2.3: sent with TTL / hop limit 255
OWNER_PRIORITY = 255

# Drop reasons that are not InstanceStats counters (keepalived counts nothing for them).
NOT_COUNTED = frozenset({"unknown_unicast_src"})


@dataclass(frozen=True)
class ExpectParams:
    """What this instance expects of adverts for its VRID (built once from the config)."""

    version: int
    vrid: int
    interval_cs: int  # our advert_int, centiseconds
    auth_type: int  # v2: 0 none, 1 PASS, 2 AH
    auth_pass: bytes  # v2 PASS; only the first 8 octets count, as on the wire
    addresses: tuple[IPAddress, ...]  # our VIPs (virtual_ipaddress, not the excluded ones)
    unicast: bool  # unicast_peer configured
    skip_check_adv_addr: bool
    unicast_peers: tuple[IPAddress, ...]
    check_unicast_src: bool  # instance or global vrrp_check_unicast_src


@dataclass(frozen=True)
class Verdict:
    """The outcome of the checks.

    `drop` is None when the advert goes to the state machine, else why it was dropped.
    `counters` are the InstanceStats counters to bump, in order, whether or not it is
    dropped (an accepted advert may still count `addr_list_err`).
    `interval_mismatch` is set for a v3 advert whose interval differs from ours: log it.
    """

    drop: str | None
    counters: tuple[str, ...] = ()
    interval_mismatch: bool = False


def _drop(reason: str) -> Verdict:
    return Verdict(reason, () if reason in NOT_COUNTED else (reason,))


def inspect_advert(
    adv: Advert,
    *,
    ttl: int | None,
    src: IPAddress,
    dst: IPAddress,
    expect: ExpectParams,
    master_changed: bool = True,
    ah_verified: bool = False,
) -> Verdict:
    """Run every check on `adv` received from `src` to `dst` with IP TTL / hop limit `ttl`.

    `ttl` None means unknown (no ancillary data): not checked, as keepalived does.
    `master_changed`: `src` is not the master we heard last (always True in MASTER state);
    with `skip_check_adv_addr` the VIP list is only compared when this is True.
    `ah_verified`: the receive shell has verified the IPsec AH ICV (v2 auth_type 2); it needs
    the IP header, so it cannot be done here, and without it an AH advert is refused.
    """
    # Dispatch by VRID happens before (vrid_of); a stray one is the interface's vrid_err.
    if adv.vrid != expect.vrid:
        return _drop("vrid_err")

    # RFC 5798 §7.1: MUST verify that the TTL / hop limit is 255. keepalived skips it for
    # unicast, where routers in between may legitimately decrement it.
    if not expect.unicast and ttl is not None and ttl != VRRP_TTL:
        return _drop("ip_ttl_err")

    # RFC 5798 §7.1: MUST verify the version field (v2 and v3 do not interoperate here).
    if adv.version != expect.version:
        return _drop("version_err")

    interval_mismatch = False
    if adv.version == 2:
        # RFC 2338 §7.1 / RFC 3768 §7.1: MUST perform the authentication of Auth Type.
        if adv.auth_type not in (AUTH_NONE, AUTH_PASS, AUTH_AH):
            return _drop("invalid_authtype")
        if adv.auth_type != expect.auth_type:
            return _drop("authtype_mismatch")
        if adv.auth_type == AUTH_PASS:
            ours = expect.auth_pass[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
            if not hmac.compare_digest(adv.auth_data[:AUTH_LEN], ours):
                return _drop("auth_failure")
        elif adv.auth_type == AUTH_AH and not ah_verified:
            return _drop("auth_failure")
        # RFC 3768 §7.1: MUST verify the Adver Interval matches ours, else drop: a
        # mismatch means two routers configured differently for one VRID.
        if adv.interval_cs != expect.interval_cs:
            return _drop("advert_interval_err")
    elif adv.interval_cs != expect.interval_cs:
        # RFC 5798 §7.1 SHOULD-level check only; the backup adopts the master's interval.
        interval_mismatch = True

    # A multicast advert on a unicast instance, or the reverse, is a misconfiguration
    # (keepalived counts it as addr_list_err and drops it).
    if dst.is_multicast == expect.unicast:
        return _drop("addr_list_err")

    # From here on keepalived counts the packet as a received advertisement.
    counters = ["advert_rcvd"]

    # RFC 5798 §7.1: MAY verify the addresses. keepalived compares count, then (the VIPs
    # being distinct) membership; it counts a mismatch but still accepts the advert.
    count_differs = len(adv.addresses) != len(expect.addresses)
    compare = master_changed or not expect.skip_check_adv_addr
    if count_differs or (compare and set(adv.addresses) != set(expect.addresses)):
        counters.append("addr_list_err")

    # vrrp_check_unicast_src: only listen to configured peers.
    if expect.unicast and expect.check_unicast_src and src not in expect.unicast_peers:
        return Verdict("unknown_unicast_src", tuple(counters), interval_mismatch)

    # Priority 0 (the master is leaving, RFC 5798 §6.4.2/§6.4.3) is valid; the core counts
    # pri_zero_rcvd, since it is the one that acts on it.
    return Verdict(None, tuple(counters), interval_mismatch)


def check_advert(
    adv: Advert,
    *,
    ttl: int | None,
    src: IPAddress,
    dst: IPAddress,
    expect: ExpectParams,
    master_changed: bool = True,
    ah_verified: bool = False,
) -> str | None:
    """None if the advert is accepted, else the drop reason (see `inspect_advert`)."""
    return inspect_advert(
        adv,
        ttl=ttl,
        src=src,
        dst=dst,
        expect=expect,
        master_changed=master_changed,
        ah_verified=ah_verified,
    ).drop
