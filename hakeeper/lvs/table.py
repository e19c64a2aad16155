"""The kernel-neutral LVS table: services and their destinations, as a backend sees them.

The desired table is computed from config and checker state (`desired.py`); a backend can dump
what the kernel holds into the same shape; the reconciler diffs the two (`reconcile.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """What identifies a service in IPVS: (family, protocol, address, port) or fwmark."""

    family: int  # 4 or 6
    protocol: str  # TCP, UDP, SCTP (a fwmark service keeps it for display only)
    address: str | None = None  # text form, so keys sort and hash without ipaddress quirks
    port: int = 0
    fwmark: int | None = None

    def __str__(self) -> str:
        if self.fwmark is not None:
            return f"fwmark:{self.fwmark}/{self.protocol}/v{self.family}"
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{host}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True, order=True)
class DestKey:
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Service:
    key: ServiceKey
    sched: str = "wlc"
    flags: tuple[str, ...] = ()  # sorted scheduler flags: ops, sh-port, sh-fallback...
    persistence_timeout: int | None = None  # seconds; None = not persistent
    netmask: str | None = None  # persistence granularity


@dataclass(frozen=True, slots=True)
class Dest:
    key: DestKey
    method: str = "NAT"  # NAT, DR, TUN
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One service with its destinations, keyed by DestKey."""

    service: Service
    dests: dict[DestKey, Dest] = field(default_factory=dict)


Table = dict[ServiceKey, Entry]


@dataclass(frozen=True, slots=True)
class Counters:
    """Per service or destination, as IPVS reports them (nftables: what it can count)."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
