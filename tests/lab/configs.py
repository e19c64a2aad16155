"""keepalived.conf text for lab nodes: the same file runs under hakeeper and keepalived."""

from __future__ import annotations

from collections.abc import Iterable


def vrrp_instance(
    name: str = "VI_1",
    *,
    interface: str = "eth0",
    vrid: int = 51,
    priority: int = 100,
    vips: Iterable[str] = ("198.18.0.100/24",),
    advert_int: float = 0.1,
    version: int = 3,
    state: str = "BACKUP",
    nopreempt: bool = False,
    preempt_delay: float | None = None,
    unicast_src_ip: str | None = None,
    unicast_peers: Iterable[str] = (),
    use_vmac: bool = False,
    auth_pass: str | None = None,
    extra: str = "",
) -> str:
    lines = [
        f"vrrp_instance {name} {{",
        f"    state {state}",
        f"    interface {interface}",
        f"    virtual_router_id {vrid}",
        f"    priority {priority}",
        f"    advert_int {advert_int:g}",
        f"    version {version}",
    ]
    if nopreempt:
        lines.append("    nopreempt")
    if preempt_delay is not None:
        lines.append(f"    preempt_delay {preempt_delay:g}")
    if use_vmac:
        lines.append("    use_vmac")
    if auth_pass is not None:
        auth = ["auth_type PASS", f"auth_pass {auth_pass}"]
        lines += ["    authentication {", *(f"        {a}" for a in auth), "    }"]
    if unicast_src_ip is not None:
        lines.append(f"    unicast_src_ip {unicast_src_ip}")
    peers = list(unicast_peers)
    if peers:
        lines += ["    unicast_peer {", *(f"        {p}" for p in peers), "    }"]
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in vips), "    }"]
    if extra:
        lines.append(extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


def keepalived_conf(*instances: str, router_id: str = "lab", global_extra: str = "") -> str:
    return (
        "global_defs {\n"
        f"    router_id {router_id}\n"
        "    vrrp_garp_master_delay 1\n"
        f"{global_extra}"
        "}\n" + "".join(instances)
    )
