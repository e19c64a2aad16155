"""One interface to the LVS data plane, two implementations: kernel IPVS and nftables NAT.

`select_backend("auto")` takes IPVS when the kernel has it (the real thing, with every
scheduler and forwarding method), else nftables (NAT with the schedulers nftables can
express). A backend owns what it created and nothing else; `load()` reads back what a
previous run left, so a restarted daemon adopts it instead of rebuilding it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Protocol

from hakeeper.lvs.reconcile import Op
from hakeeper.lvs.table import Counters, Dest, DestKey, Service, ServiceKey, Table

BACKEND_MODES = ("auto", "ipvs", "nftables")
PROC_IP_VS = "/proc/net/ip_vs"


class BackendError(Exception):
    """The kernel refused a change or a read; the message says what and for which service."""


class Backend(Protocol):
    name: str

    def unsupported(self, service: Service, dests: Iterable[Dest]) -> str | None:
        """None if this backend can serve the service as given, else why not."""
        ...

    async def load(self) -> Table:
        """What the kernel holds that this backend owns (left by a previous run too)."""
        ...

    async def apply(self, ops: Sequence[Op]) -> None:
        """Apply operations made by `reconcile.diff` (raises BackendError)."""
        ...

    async def counters(self) -> dict[tuple[ServiceKey, DestKey | None], Counters]:
        """Per service (dest None: the service's own totals) and per destination."""
        ...

    async def close(self, remove: bool) -> None:
        """remove=True deletes everything this backend owns; False leaves it serving."""
        ...


def ipvs_available() -> bool:
    """Does this kernel have IPVS? (its generic netlink family, or /proc/net/ip_vs)"""
    if os.path.exists(PROC_IP_VS):
        return True
    from hakeeper.lvs.ipvs import genl_family_exists

    return genl_family_exists()


def select_backend(mode: str) -> Backend:
    if mode not in BACKEND_MODES:
        raise BackendError(f"unknown LVS backend {mode!r}: use one of {', '.join(BACKEND_MODES)}")
    if mode == "ipvs" or (mode == "auto" and ipvs_available()):
        if mode == "ipvs" and not ipvs_available():
            raise BackendError(
                "LVS backend 'ipvs' asked for, but this kernel has no IPVS (no 'IPVS' generic "
                "netlink family, no /proc/net/ip_vs): load the ip_vs module, or use "
                "lvs_backend auto/nftables"
            )
        from hakeeper.lvs.ipvs import IpvsBackend

        return IpvsBackend()
    from hakeeper.lvs.nft import NftBackend

    return NftBackend()
