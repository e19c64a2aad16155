"""Settings that leave a VIP unreachable on their own, found while the config is built."""

from __future__ import annotations

from collections.abc import Iterable

from hakeeper.config.model import VrrpInstance, Warning_


def unreachable_vips(instances: Iterable[VrrpInstance]) -> list[Warning_]:
    """One warning per setting that cuts a VIP off, at the line that holds it."""
    out: list[Warning_] = []
    for inst in instances:
        vips = inst.virtual_ipaddress + inst.virtual_ipaddress_excluded
        # strict mode turns accept off by itself, a surprise; a plain no_accept is a choice
        if inst.strict_mode and inst.accept is False and not inst.is_owner and vips:
            shown = ", ".join(str(v.address) for v in vips[:3]) + (", ..." if len(vips) > 3 else "")
            # keepalived's iptables/nftables support drops traffic to the VIPs of a non-owner
            # master that is not in accept mode; hakeeper does not filter them (yet)
            message = (
                f"{inst.name}: accept mode is off (vrrp_strict) and priority {inst.priority} "
                f"is not the address owner's 255: keepalived drops all traffic to {shown} "
                "while this router is master (hakeeper does not); add 'accept' to keep the "
                "VIPs reachable under both"
            )
            out.append(Warning_(inst.origin, message))
        for vip in vips:
            if vip.scope == "host":
                out.append(Warning_(vip.origin, (
                    f"{inst.name}: VIP {vip.address} has scope host: no other host can "
                    "reach it"
                )))  # fmt: skip
    return out
