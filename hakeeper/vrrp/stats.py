"""Per-instance VRRP counters: the ones keepalived keeps, named as keepalived names them.

Each receive-side check's reason is the name of the counter it bumps, so a dropped packet
is always visible (D-Bus, SNMP and metrics read these).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InstanceStats:
    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0
    # receive errors: each is a reason a packet was dropped
    auth_failure: int = 0  # PASS mismatch
    invalid_authtype: int = 0  # auth type we do not know
    authtype_mismatch: int = 0  # auth type differs from ours
    invalid_type_rcvd: int = 0  # VRRP type != 1 (advertisement)
    ip_ttl_err: int = 0  # TTL / hop limit != 255 (multicast)
    addr_list_err: int = 0  # address list differs from our VIPs
    packet_len_err: int = 0  # too short, or length disagrees with the address count
    advert_interval_err: int = 0  # v2: interval differs from ours
    version_err: int = 0  # version differs from ours
    checksum_err: int = 0
    vrid_err: int = 0  # not our VRID (counted on the interface-level socket too)

    def bump(self, reason: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)

    def as_dict(self) -> dict[str, int]:
        # not dataclasses.asdict: its deep copies cost a D-Bus read of 1000 instances ~30 ms
        return {name: getattr(self, name) for name in self.__slots__}

    def clear(self) -> None:
        """keepalived's PrintStatsClear: every counter back to zero."""
        for name in self.__slots__:
            setattr(self, name, 0)


RECEIVE_ERRORS = (
    "auth_failure",
    "invalid_authtype",
    "authtype_mismatch",
    "invalid_type_rcvd",
    "ip_ttl_err",
    "addr_list_err",
    "packet_len_err",
    "advert_interval_err",
    "version_err",
    "checksum_err",
    "vrid_err",
)
