"""Kernel state through rtnetlink: links, virtual addresses, routes, rules and VMAC macvlans.

Every call is idempotent and named after what it does to the kernel, so the VRRP shell can
repeat it after a restart or a reload without bookkeeping: adding an address that is there or
deleting one that is gone succeeds.

pyroute2 0.9's synchronous `IPRoute` drives a private asyncio loop with `run_until_complete`,
which raises "This event loop is already running" when called from inside the daemon's own
loop. So one worker thread owns the `IPRoute` (and its loop) and every call is handed to it and
waited for; netlink requests take well under a millisecond, so the caller blocking is fine.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteError

from hakeeper.config.model import IPAddress, VirtualAddress, VirtualRoute, VirtualRule

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_NODAD = 0x02
IFA_F_SECONDARY = 0x01
RT_SCOPE_LINK = 253
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
# RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6
VMAC_PREFIX = {4: "00:00:5e:00:01", 6: "00:00:5e:00:02"}
CALL_TIMEOUT = 5.0

P = ParamSpec("P")
R = TypeVar("R")


class NetlinkError(Exception):
    """A netlink request the kernel refused: which operation, the errno, and why."""

    def __init__(self, op: str, errno: int, message: str) -> None:
        super().__init__(f"{op}: {message} (errno {errno})")
        self.op = op
        self.errno = errno
        self.message = message


def vmac_address(vrid: int, family: int) -> str:
    """The RFC 5798 virtual router MAC for `vrid`."""
    return f"{VMAC_PREFIX[family]}:{vrid:02x}"


def _on_worker(op: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the method on the netlink thread; turn pyroute2's errors into NetlinkError."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            self = args[0]
            assert isinstance(self, Netlink)

            def call() -> R:
                try:
                    return fn(*args, **kwargs)
                except _PyrouteError as e:
                    raise NetlinkError(op, e.code, str(e.args[-1] if e.args else e)) from None

            if threading.current_thread() is self._thread:
                return call()
            future = self._pool.submit(call)
            try:
                return future.result(CALL_TIMEOUT)
            except FutureTimeout:
                raise NetlinkError(op, errno.ETIMEDOUT, "no answer from netlink") from None

        return wrapper

    return deco


class Netlink:
    """rtnetlink for the network namespace the daemon runs in."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hakeeper-netlink")
        self._thread: threading.Thread | None = None
        # base interface -> (original arp_ignore, original arp_filter, VMACs relying on them)
        self._arp_saved: dict[str, tuple[str, str, int]] = {}
        self._ipr: IPRoute = self._pool.submit(self._open).result(CALL_TIMEOUT)

    def _open(self) -> IPRoute:
        self._thread = threading.current_thread()
        return IPRoute()

    def close(self) -> None:
        if self._pool is None:
            return
        try:
            self._pool.submit(self._ipr.close).result(CALL_TIMEOUT)
        finally:
            self._pool.shutdown(wait=False)
            self._pool = None  # type: ignore[assignment]

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- links ----------------------------------------------------------------------------

    def _index(self, name: str) -> int | None:
        found = self._ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def _link(self, name: str, op: str) -> Any:
        idx = self._index(name)
        if idx is None:
            raise NetlinkError(op, errno.ENODEV, f"no interface {name}")
        return self._ipr.get_links(idx)[0]

    @_on_worker("link_index")
    def link_index(self, name: str) -> int:
        return int(self._link(name, "link_index")["index"])

    @_on_worker("link_exists")
    def link_exists(self, name: str) -> bool:
        return self._index(name) is not None

    @_on_worker("link_is_up")
    def link_is_up(self, name: str) -> bool:
        """Up as keepalived judges it: IFF_UP and IFF_RUNNING (carrier, oper state up)."""
        idx = self._index(name)
        if idx is None:
            return False
        flags = self._ipr.get_links(idx)[0]["flags"]
        return flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING

    @_on_worker("link_mac")
    def link_mac(self, name: str) -> str:
        return str(self._link(name, "link_mac").get("address"))

    # -- addresses ------------------------------------------------------------------------

    def _addresses(self, idx: int, family: int) -> list[Any]:
        fam = 2 if family == 4 else 10
        return [m for m in self._ipr.addr("dump", index=idx) if m["family"] == fam]

    @_on_worker("primary_address")
    def primary_address(
        self, name: str, family: int, exclude: Iterable[IPAddress] = ()
    ) -> IPAddress | None:
        """The address adverts go out from: IPv4, the interface's first address that is not
        a VIP (primaries come before secondaries in a dump); IPv6, its link-local."""
        idx = self._index(name)
        if idx is None:
            return None
        skip = {ipaddress.ip_address(a) for a in exclude}
        msgs = self._addresses(idx, family)
        if family == 4:
            msgs.sort(key=lambda m: bool(m["flags"] & IFA_F_SECONDARY))
        for m in msgs:
            addr = ipaddress.ip_address(m.get("address"))
            if addr in skip:
                continue
            if family == 6 and not addr.is_link_local:
                continue
            return addr
        return None

    @_on_worker("addresses")
    def addresses(self, name: str) -> set[IPAddress]:
        idx = self._index(name)
        if idx is None:
            return set()
        return {ipaddress.ip_address(m.get("address")) for m in self._ipr.addr("dump", index=idx)}

    @_on_worker("add_vip")
    def add_vip(self, ifname: str, vaddr: VirtualAddress) -> None:
        dev = vaddr.dev or ifname
        idx = self._index(dev)
        if idx is None:
            raise NetlinkError("add_vip", errno.ENODEV, f"no interface {dev} for {vaddr}")
        spec: dict[str, Any] = {
            "index": idx,
            "address": str(vaddr.address),
            "prefixlen": vaddr.prefixlen,
        }
        if vaddr.family == 6:
            # usable at once, as keepalived does: the VIP must answer before DAD would end
            spec["flags"] = IFA_F_NODAD
        if vaddr.label:
            spec["label"] = vaddr.label
        if vaddr.scope is not None:
            spec["scope"] = _scope(vaddr.scope)
        brd = _broadcast(vaddr)
        if brd is not None:
            spec["broadcast"] = brd
        try:
            self._ipr.addr("add", **spec)
        except _PyrouteError as e:
            if e.code != errno.EEXIST:
                raise

    @_on_worker("del_vip")
    def del_vip(self, ifname: str, vaddr: VirtualAddress) -> None:
        idx = self._index(vaddr.dev or ifname)
        if idx is None:
            return  # the interface went away, and its addresses with it
        try:
            self._ipr.addr("del", index=idx, address=str(vaddr.address), prefixlen=vaddr.prefixlen)
        except _PyrouteError as e:
            if e.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                raise

    @_on_worker("has_vip")
    def has_vip(self, ifname: str, vaddr: VirtualAddress) -> bool:
        idx = self._index(vaddr.dev or ifname)
        if idx is None:
            return False
        return any(
            ipaddress.ip_address(m.get("address")) == vaddr.address
            for m in self._addresses(idx, vaddr.family)
        )

    # -- routes and rules -----------------------------------------------------------------

    def _route_spec(self, route: VirtualRoute, default_dev: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if route.dst == "default":
            family = 6 if route.via and ":" in route.via else 4
            spec["dst"] = "default"
        else:
            net = ipaddress.ip_network(route.dst, strict=False)
            family = net.version
            spec["dst"] = str(net.network_address)
            spec["dst_len"] = net.prefixlen
        spec["family"] = 2 if family == 4 else 10
        if route.type:
            spec["type"] = route.type
        if route.via:
            spec["gateway"] = route.via
        # a route with neither a gateway nor a special type is on-link: it needs a device,
        # and keepalived uses the instance's interface for it
        dev = route.dev or (default_dev if not route.via and not route.type else None)
        if dev:
            idx = self._index(dev)
            if idx is None:
                raise NetlinkError("route", errno.ENODEV, f"no interface {dev} for {route.dst}")
            spec["oif"] = idx
        if route.src:
            spec["prefsrc"] = route.src
        if route.table is not None:
            spec["table"] = route.table
        if route.metric is not None:
            spec["priority"] = route.metric
        if route.scope is not None:
            spec["scope"] = _scope(route.scope)
        return spec

    @_on_worker("add_route")
    def add_route(self, route: VirtualRoute, default_dev: str | None = None) -> None:
        try:
            self._ipr.route("add", **self._route_spec(route, default_dev))
        except _PyrouteError as e:
            if e.code != errno.EEXIST:
                raise

    @_on_worker("del_route")
    def del_route(self, route: VirtualRoute, default_dev: str | None = None) -> None:
        try:
            spec = self._route_spec(route, default_dev)
        except NetlinkError:
            return  # its device is gone, so is the route
        try:
            self._ipr.route("del", **spec)
        except _PyrouteError as e:
            if e.code not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
                raise

    @staticmethod
    def _rule_spec(rule: VirtualRule) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        family = 4
        for key, value in (("src", rule.src), ("dst", rule.dst)):
            if value and value not in ("all", "default"):
                net = ipaddress.ip_network(value, strict=False)
                family = net.version
                spec[key] = str(net.network_address)
                spec[f"{key}_len"] = net.prefixlen
        spec["family"] = 2 if family == 4 else 10
        if rule.table is not None:
            spec["table"] = rule.table
        if rule.priority is not None:
            spec["priority"] = rule.priority
        if rule.iif:
            spec["iifname"] = rule.iif
        if rule.oif:
            spec["oifname"] = rule.oif
        if rule.fwmark is not None:
            spec["fwmark"] = rule.fwmark
        return spec

    @_on_worker("add_rule")
    def add_rule(self, rule: VirtualRule) -> None:
        # pyroute2 adds with NLM_F_EXCL, so a duplicate is EEXIST rather than a second copy
        try:
            self._ipr.rule("add", **self._rule_spec(rule))
        except _PyrouteError as e:
            if e.code != errno.EEXIST:
                raise

    @_on_worker("del_rule")
    def del_rule(self, rule: VirtualRule) -> None:
        try:
            self._ipr.rule("del", **self._rule_spec(rule))
        except _PyrouteError as e:
            if e.code not in (errno.ENOENT, errno.ESRCH):
                raise

    # -- VMAC -----------------------------------------------------------------------------

    @_on_worker("ensure_vmac")
    def ensure_vmac(self, base_ifname: str, name: str, vrid: int, family: int) -> int:
        """A macvlan `name` on `base_ifname` with the VRRP virtual MAC, mode private, up.

        Set up like keepalived's (vrrp_vmac.c, vrrp_if_config.c): the VMAC must not answer
        ARP for the base's addresses (arp_ignore=1), must hear the other routers though it
        has no address of theirs (accept_local=1, rp_filter=0), and the base must stop
        answering ARP for the VIPs (arp_ignore=1, arp_filter=1, restored on removal).
        Returns the VMAC's ifindex.
        """
        base = self._index(base_ifname)
        if base is None:
            raise NetlinkError("ensure_vmac", errno.ENODEV, f"no interface {base_ifname}")
        mac = vmac_address(vrid, family)
        idx = self._index(name)
        if idx is not None:
            link = self._ipr.get_links(idx)[0]
            info = link.get("IFLA_LINKINFO")
            data = info.get("data") if info else None
            ok = (
                info is not None
                and info.get("kind") == "macvlan"
                and data is not None
                and data.get("IFLA_MACVLAN_MODE") == "private"
                and link.get("link") == base
                and str(link.get("address")).lower() == mac
            )
            if not ok:
                self._ipr.link("del", index=idx)
                idx = None
        created = idx is None
        if idx is None:
            self._ipr.link(
                "add",
                ifname=name,
                kind="macvlan",
                link=base,
                macvlan_mode="private",
                address=mac,
            )
            idx = self._index(name)
            assert idx is not None
        if created:
            self._configure_vmac(base_ifname, name, family)
        self._ipr.link("set", index=idx, state="up")
        if family == 6:
            # adverts leave the VMAC from a link-local, as keepalived gives it the base's own
            lladdr = next(
                (
                    m.get("address")
                    for m in self._addresses(base, 6)
                    if ipaddress.ip_address(m.get("address")).is_link_local
                ),
                None,
            )
            if lladdr is not None:
                try:
                    self._ipr.addr(
                        "add", index=idx, address=lladdr, prefixlen=64, flags=IFA_F_NODAD
                    )
                except _PyrouteError as e:
                    if e.code != errno.EEXIST:
                        raise
        return idx

    def _configure_vmac(self, base_ifname: str, name: str, family: int) -> None:
        if family == 6:
            # no EUI-64 link-local from the virtual MAC (RFC 5798 §7.4); set before up
            _sysctl(f"ipv6/conf/{name}/addr_gen_mode", "1")
        else:
            # no IPv6 on an IPv4 VMAC, so it sends nothing of its own (RS, MLD)
            _sysctl(f"ipv6/conf/{name}/disable_ipv6", "1")
        _sysctl(f"ipv4/conf/{name}/arp_ignore", "1")
        if family == 6:
            return
        _sysctl(f"ipv4/conf/{name}/accept_local", "1")
        _sysctl(f"ipv4/conf/{name}/rp_filter", "0")
        _sysctl(f"ipv4/conf/{name}/promote_secondaries", "1")
        saved = self._arp_saved.get(base_ifname)
        if saved is None:
            ignore = _sysctl_read(f"ipv4/conf/{base_ifname}/arp_ignore")
            filt = _sysctl_read(f"ipv4/conf/{base_ifname}/arp_filter")
            _sysctl(f"ipv4/conf/{base_ifname}/arp_ignore", "1")
            _sysctl(f"ipv4/conf/{base_ifname}/arp_filter", "1")
            self._arp_saved[base_ifname] = (ignore, filt, 1)
        else:
            self._arp_saved[base_ifname] = (saved[0], saved[1], saved[2] + 1)

    @_on_worker("remove_vmac")
    def remove_vmac(self, name: str) -> None:
        idx = self._index(name)
        if idx is None:
            return
        link = self._ipr.get_links(idx)[0]
        base_idx = link.get("link")
        try:
            self._ipr.link("del", index=idx)
        except _PyrouteError as e:
            if e.code != errno.ENODEV:
                raise
        base_name = None
        if base_idx:
            # the base may have gone too: then there is nothing left to restore
            with contextlib.suppress(_PyrouteError, IndexError):
                base_name = self._ipr.get_links(base_idx)[0].get("ifname")
        saved = self._arp_saved.get(base_name) if base_name else None
        if saved is None or base_name is None:
            return
        if saved[2] > 1:
            self._arp_saved[base_name] = (saved[0], saved[1], saved[2] - 1)
            return
        del self._arp_saved[base_name]
        _sysctl(f"ipv4/conf/{base_name}/arp_ignore", saved[0])
        _sysctl(f"ipv4/conf/{base_name}/arp_filter", saved[1])


def _scope(scope: str | int) -> int:
    if isinstance(scope, int) or str(scope).isdigit():
        return int(scope)
    try:
        return SCOPES[str(scope)]
    except KeyError:
        raise NetlinkError("scope", errno.EINVAL, f"unknown scope {scope!r}") from None


def _broadcast(vaddr: VirtualAddress) -> str | None:
    """keepalived's `broadcast`/`brd`: an address, '+' (the prefix's own), or '-' (none)."""
    brd = vaddr.broadcast
    if brd is None or brd == "-" or vaddr.family != 4:
        return None
    if brd == "+":
        net = ipaddress.ip_network(f"{vaddr.address}/{vaddr.prefixlen}", strict=False)
        return str(net.broadcast_address)
    return brd


def _sysctl(key: str, value: str) -> None:
    # /proc/sys/net is per network namespace, read as the namespace of this process
    try:
        Path("/proc/sys/net", key).write_text(value)
    except OSError as e:
        raise NetlinkError("sysctl", e.errno or 0, f"net/{key}={value}: {e.strerror}") from None


def _sysctl_read(key: str) -> str:
    try:
        return Path("/proc/sys/net", key).read_text().strip()
    except OSError as e:
        raise NetlinkError("sysctl", e.errno or 0, f"net/{key}: {e.strerror}") from None
