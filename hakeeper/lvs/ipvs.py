"""The IPVS backend: kernel IP Virtual Server over generic netlink (family "IPVS").

Messages are built and read here as pyroute2 `ipvsmsg` objects; the socket is a seam
(`Transport`) so the exact commands and attributes are tested without an IPVS kernel. We do
not use pyroute2's `IPVS.service("update")`: it maps to IPVS_CMD_DEL_SERVICE.

IPVS has no owner tag, so the services hakeeper created are kept in a small JSON file
(`/run/hakeeper/ipvs-owned.json` unless told otherwise): `load()` returns only those still in
the kernel, and a service hakeeper did not create is never changed or deleted.

The pyroute2 socket drives a private event loop; it lives on one worker thread and every
request is handed to that thread, so the daemon's loop never blocks and never nests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.ipvs import ipvsmsg

from hakeeper.lvs.backend import BackendError
from hakeeper.lvs.reconcile import (
    AddDest,
    AddService,
    DelService,
    EditDest,
    EditService,
    Op,
    op_service,
    service_order,
)
from hakeeper.lvs.table import Counters, Dest, DestKey, Entry, Service, ServiceKey, Table

DEFAULT_STATE_PATH = "/run/hakeeper/ipvs-owned.json"
GENL_NAME = "IPVS"
GENL_VERSION = 1

# include/uapi/linux/ip_vs.h: enum of IPVS_CMD_*
IPVS_CMD_NEW_SERVICE = 1
IPVS_CMD_SET_SERVICE = 2
IPVS_CMD_DEL_SERVICE = 3
IPVS_CMD_GET_SERVICE = 4
IPVS_CMD_NEW_DEST = 5
IPVS_CMD_SET_DEST = 6
IPVS_CMD_DEL_DEST = 7
IPVS_CMD_GET_DEST = 8

# include/uapi/linux/ip_vs.h: virtual service flags
IP_VS_SVC_F_PERSISTENT = 0x0001
IP_VS_SVC_F_HASHED = 0x0002  # kernel-internal, reported in dumps, never sent
IP_VS_SVC_F_ONEPACKET = 0x0004
IP_VS_SVC_F_SCHED1 = 0x0008  # = IP_VS_SVC_F_SCHED_SH_FALLBACK (and ip_vs_mh.c's MH_FALLBACK)
IP_VS_SVC_F_SCHED2 = 0x0010  # = IP_VS_SVC_F_SCHED_SH_PORT (and ip_vs_mh.c's MH_PORT)
IP_VS_SVC_F_SCHED3 = 0x0020
FLAGS_MASK = 0xFFFFFFFF  # struct ip_vs_flags.mask: we set every bit we manage

# include/uapi/linux/ip_vs.h: IP_VS_CONN_F_* forwarding methods
IP_VS_CONN_F_FWD_MASK = 0x0007
IP_VS_CONN_F_MASQ = 0x0000
IP_VS_CONN_F_TUNNEL = 0x0002
IP_VS_CONN_F_DROUTE = 0x0003
FWD_METHODS = {"NAT": IP_VS_CONN_F_MASQ, "TUN": IP_VS_CONN_F_TUNNEL, "DR": IP_VS_CONN_F_DROUTE}
FWD_NAMES = {v: k for k, v in FWD_METHODS.items()}

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY = {v: k for k, v in AF.items()}
PROTO = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTO_NAMES = {v: k for k, v in PROTO.items()}

SCHED_FLAG_BITS = {
    "ops": IP_VS_SVC_F_ONEPACKET,
    "flag-1": IP_VS_SVC_F_SCHED1,
    "sh-fallback": IP_VS_SVC_F_SCHED1,
    "mh-fallback": IP_VS_SVC_F_SCHED1,
    "flag-2": IP_VS_SVC_F_SCHED2,
    "sh-port": IP_VS_SVC_F_SCHED2,
    "mh-port": IP_VS_SVC_F_SCHED2,
    "flag-3": IP_VS_SVC_F_SCHED3,
}

REQUEST = NLM_F_REQUEST | NLM_F_ACK
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
DUMP = NLM_F_REQUEST | NLM_F_DUMP
STATS_FIELDS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")

T = TypeVar("T")
# a service as dumped: the service, its counters, its destinations with theirs
Dumped = tuple[Service, Counters, dict[DestKey, tuple[Dest, Counters]]]


class Transport(Protocol):
    """Sends one IPVS generic netlink message; returns the replies (a dump's records)."""

    def request(self, msg: ipvsmsg, flags: int) -> list[ipvsmsg]: ...
    def close(self) -> None: ...


class NetlinkTransport:
    """The real transport: pyroute2's generic netlink socket bound to the IPVS family."""

    def __init__(self) -> None:
        from pyroute2.netlink.generic import GenericNetlinkSocket

        self.sock = GenericNetlinkSocket()
        try:
            self.sock.bind(GENL_NAME, ipvsmsg)
        except BaseException:
            self.sock.close()
            raise

    def request(self, msg: ipvsmsg, flags: int) -> list[ipvsmsg]:
        return list(self.sock.nlm_request(msg, msg_type=self.sock.prid, msg_flags=flags))

    def close(self) -> None:
        self.sock.close()


def genl_family_exists() -> bool:
    """Can the generic netlink family "IPVS" be resolved? (asks on a short-lived thread:
    pyroute2's synchronous socket cannot run inside a running event loop)."""

    def probe() -> bool:
        try:
            NetlinkTransport().close()
        except (NetlinkError, OSError):
            return False
        return True

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hakeeper-ipvs-probe") as ex:
        try:
            return ex.submit(probe).result(timeout=5)
        except Exception:
            return False


# -- messages ------------------------------------------------------------------------------


def family_of(address: str) -> int:
    return 6 if ":" in address else 4


def _netmask_attr(family: int, netmask: str | None) -> str:
    """IPVS_SVC_ATTR_NETMASK is a raw 32-bit word: an IPv4 netmask in network order, or
    (IPv6) a prefix length in host order; pyroute2 types it as an IPv4 address either way."""
    if family == 4:
        return netmask or "255.255.255.255"
    plen = int(netmask) if netmask else 128
    return socket.inet_ntop(socket.AF_INET, struct.pack("=I", plen))


def _netmask_value(family: int, attr: str) -> str:
    if family == 4:
        return attr
    return str(struct.unpack("=I", socket.inet_pton(socket.AF_INET, attr))[0])


def service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", AF[key.family])]
    if key.fwmark is not None:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        assert key.address is not None
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", PROTO[key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", key.address),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    return attrs


def service_flags(service: Service) -> int:
    flags = 0
    for name in service.flags:
        flags |= SCHED_FLAG_BITS[name]
    if service.persistence_timeout is not None:
        flags |= IP_VS_SVC_F_PERSISTENT
    return flags


def service_attrs(service: Service) -> list[tuple[str, Any]]:
    """The key and every settable attribute (what NEW_SERVICE and SET_SERVICE require)."""
    family = service.key.family
    return [
        *service_key_attrs(service.key),
        ("IPVS_SVC_ATTR_SCHED_NAME", service.sched),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": service_flags(service), "mask": FLAGS_MASK}),
        ("IPVS_SVC_ATTR_TIMEOUT", service.persistence_timeout or 0),
        ("IPVS_SVC_ATTR_NETMASK", _netmask_attr(family, service.netmask)),
    ]


def dest_key_attrs(key: DestKey) -> list[tuple[str, Any]]:
    return [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", AF[family_of(key.address)]),
        ("IPVS_DEST_ATTR_ADDR", key.address),
        ("IPVS_DEST_ATTR_PORT", key.port),
    ]


def dest_attrs(dest: Dest) -> list[tuple[str, Any]]:
    return [
        *dest_key_attrs(dest.key),
        ("IPVS_DEST_ATTR_FWD_METHOD", FWD_METHODS[dest.method]),
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.u_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", dest.l_threshold),
    ]


def message(
    cmd: int,
    service: list[tuple[str, Any]] | None = None,
    dest: list[tuple[str, Any]] | None = None,
) -> ipvsmsg:
    msg = ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = GENL_VERSION
    attrs: list[tuple[str, Any]] = []
    if service is not None:
        attrs.append(("IPVS_CMD_ATTR_SERVICE", {"attrs": service}))
    if dest is not None:
        attrs.append(("IPVS_CMD_ATTR_DEST", {"attrs": dest}))
    msg["attrs"] = attrs
    return msg


def op_message(op: Op) -> tuple[ipvsmsg, int]:
    """The one request that carries out `op`, with its netlink flags."""
    if isinstance(op, AddService):
        return message(IPVS_CMD_NEW_SERVICE, service_attrs(op.service)), CREATE
    if isinstance(op, EditService):
        return message(IPVS_CMD_SET_SERVICE, service_attrs(op.service)), REQUEST
    if isinstance(op, DelService):
        return message(IPVS_CMD_DEL_SERVICE, service_key_attrs(op.key)), REQUEST
    svc = service_key_attrs(op.service)
    if isinstance(op, AddDest):
        return message(IPVS_CMD_NEW_DEST, svc, dest_attrs(op.dest)), CREATE
    if isinstance(op, EditDest):
        return message(IPVS_CMD_SET_DEST, svc, dest_attrs(op.dest)), REQUEST
    return message(IPVS_CMD_DEL_DEST, svc, dest_key_attrs(op.dest)), REQUEST


def op_text(op: Op) -> str:
    if isinstance(op, AddService | EditService):
        verb = "add" if isinstance(op, AddService) else "edit"
        return f"{verb} service {op.service.key} (scheduler {op.service.sched})"
    if isinstance(op, DelService):
        return f"delete service {op.key}"
    if isinstance(op, AddDest | EditDest):
        verb = "add" if isinstance(op, AddDest) else "edit"
        return (
            f"{verb} destination {op.dest.key} ({op.dest.method}, weight {op.dest.weight}) "
            f"of service {op.service}"
        )
    return f"delete destination {op.dest} of service {op.service}"


def _hint(op: Op, code: int) -> str:
    if code == errno.ENOENT and isinstance(op, AddService | EditService):
        return f" (is scheduler '{op.service.sched}' available? module ip_vs_{op.service.sched})"
    if code == errno.EEXIST and isinstance(op, AddService):
        return " (a service hakeeper did not create holds this key; it is left alone)"
    return ""


# -- replies -------------------------------------------------------------------------------


def _counters(nla: Any, prefix: str) -> Counters:
    stats = nla.get_attr(f"{prefix}_STATS64") or nla.get_attr(f"{prefix}_STATS")
    if stats is None:
        return Counters()
    values = [stats.get_attr(f"IPVS_STATS_ATTR_{f.upper()}") or 0 for f in STATS_FIELDS]
    return Counters(*values)


def parse_service(msg: ipvsmsg) -> tuple[tuple[int, Any], Service, Counters] | None:
    """A service record of a dump → (match key, Service, counters); None if unreadable.

    The match key is (family, fwmark) for fwmark services, whose protocol the kernel does
    not keep (it is display-only for us): the owned record supplies it.
    """
    nla = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    if nla is None:
        return None
    family = FAMILY.get(nla.get_attr("IPVS_SVC_ATTR_AF"))
    if family is None:
        return None
    fwmark = nla.get_attr("IPVS_SVC_ATTR_FWMARK")
    if fwmark:
        key = ServiceKey(family, "TCP", fwmark=fwmark)
        match: tuple[int, Any] = (family, ("fwmark", fwmark))
    else:
        proto = PROTO_NAMES.get(nla.get_attr("IPVS_SVC_ATTR_PROTOCOL"))
        addr = nla.get_attr("IPVS_SVC_ATTR_ADDR")
        if proto is None or addr is None:
            return None
        key = ServiceKey(family, proto, addr, nla.get_attr("IPVS_SVC_ATTR_PORT") or 0)
        match = (family, (proto, addr, key.port))
    flags_attr = nla.get_attr("IPVS_SVC_ATTR_FLAGS") or {}
    bits = int(flags_attr.get("flags", 0)) & ~IP_VS_SVC_F_HASHED
    sched = nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or ""
    persistent = bool(bits & IP_VS_SVC_F_PERSISTENT)
    netmask = nla.get_attr("IPVS_SVC_ATTR_NETMASK")
    service = Service(
        key=key,
        sched=sched,
        flags=flag_names(bits, sched),
        persistence_timeout=(nla.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0) if persistent else None,
        netmask=_netmask_value(family, netmask) if persistent and netmask else None,
    )
    return match, service, _counters(nla, "IPVS_SVC_ATTR")


def flag_names(bits: int, sched: str) -> tuple[str, ...]:
    """Scheduler flag bits → keepalived's names (flag-1/flag-2 are sh-*/mh-* for sh/mh)."""
    names = []
    if bits & IP_VS_SVC_F_ONEPACKET:
        names.append("ops")
    prefix = sched if sched in ("sh", "mh") else None
    if bits & IP_VS_SVC_F_SCHED1:
        names.append(f"{prefix}-fallback" if prefix else "flag-1")
    if bits & IP_VS_SVC_F_SCHED2:
        names.append(f"{prefix}-port" if prefix else "flag-2")
    if bits & IP_VS_SVC_F_SCHED3:
        names.append("flag-3")
    return tuple(sorted(names))


def parse_dest(msg: ipvsmsg) -> tuple[Dest, Counters] | None:
    nla = msg.get_attr("IPVS_CMD_ATTR_DEST")
    if nla is None:
        return None
    addr = nla.get_attr("IPVS_DEST_ATTR_ADDR")
    if addr is None:
        return None
    fwd = (nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0) & IP_VS_CONN_F_FWD_MASK
    dest = Dest(
        key=DestKey(addr, nla.get_attr("IPVS_DEST_ATTR_PORT") or 0),
        method=FWD_NAMES.get(fwd, f"fwd-{fwd}"),
        weight=nla.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
        u_threshold=nla.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        l_threshold=nla.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
    )
    return dest, _counters(nla, "IPVS_DEST_ATTR")


def match_key(key: ServiceKey) -> tuple[int, Any]:
    if key.fwmark is not None:
        return (key.family, ("fwmark", key.fwmark))
    return (key.family, (key.protocol, key.address, key.port))


# -- the owned record -----------------------------------------------------------------------


class OwnedRecord:
    """The services hakeeper created in IPVS, kept in a JSON file across restarts."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.keys: set[ServiceKey] = set()

    def read(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.keys = set()
            return
        except (OSError, ValueError) as e:
            raise BackendError(f"IPVS owned-services record {self.path} unreadable: {e}") from e
        keys = set()
        for item in data.get("services", []) if isinstance(data, dict) else []:
            try:
                keys.add(
                    ServiceKey(
                        int(item["family"]),
                        str(item["protocol"]),
                        item.get("address"),
                        int(item.get("port", 0)),
                        item.get("fwmark"),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue  # a damaged entry: that service is simply not ours any more
        self.keys = keys

    def write(self) -> None:
        items = [
            {
                "family": k.family,
                "protocol": k.protocol,
                "address": k.address,
                "port": k.port,
                "fwmark": k.fwmark,
            }
            for k in sorted(self.keys, key=service_order)
        ]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ipvs-owned-")
            with os.fdopen(fd, "w") as f:
                json.dump({"version": 1, "services": items}, f, indent=1)
            os.replace(tmp, self.path)
        except OSError as e:
            raise BackendError(f"IPVS owned-services record {self.path} not written: {e}") from e

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# -- the backend ---------------------------------------------------------------------------


class IpvsBackend:
    name = "ipvs"

    def __init__(
        self,
        transport: Transport | None = None,
        state_path: str | os.PathLike[str] = DEFAULT_STATE_PATH,
    ) -> None:
        """`transport`: the netlink seam (tests); by default pyroute2's socket, opened on
        first use in the worker thread that will use it."""
        self._transport: Transport | None = transport
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hakeeper-ipvs")
        self.owned = OwnedRecord(state_path)
        self._owned_read = False

    def unsupported(self, service: Service, dests: Iterable[Dest]) -> str | None:
        if service.key.protocol not in PROTO:
            return f"IPVS has no protocol {service.key.protocol}"
        unknown = [f for f in service.flags if f not in SCHED_FLAG_BITS]
        if unknown:
            return f"unknown scheduler flag(s) {', '.join(unknown)}"
        for d in dests:
            if d.method not in FWD_METHODS:
                return f"real server {d.key}: unknown forwarding method {d.method}"
            if family_of(d.key.address) != service.key.family and d.method != "TUN":
                return (
                    f"real server {d.key}: another address family than the service "
                    "needs lvs_method TUN"
                )
        return None

    # -- thread plumbing --------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _t(self) -> Transport:
        if self._transport is None:
            try:
                self._transport = NetlinkTransport()
            except NetlinkError as e:
                if e.code == errno.ENOENT:
                    raise BackendError("IPVS unavailable: the kernel has no IPVS") from e
                raise BackendError(f"IPVS unavailable: {os.strerror(e.code)}") from e
            except OSError as e:
                raise BackendError(f"IPVS unavailable: {e}") from e
        return self._transport

    def _request(self, msg: ipvsmsg, flags: int, what: str, op: Op | None = None) -> list[Any]:
        try:
            return self._t().request(msg, flags)
        except NetlinkError as e:
            hint = _hint(op, e.code) if op is not None else ""
            raise BackendError(f"IPVS refused to {what}: {os.strerror(e.code)}{hint}") from e
        except OSError as e:
            raise BackendError(f"IPVS: cannot {what}: {e}") from e

    def _owned_keys(self) -> set[ServiceKey]:
        if not self._owned_read:
            self.owned.read()
            self._owned_read = True
        return self.owned.keys

    # -- reading ----------------------------------------------------------------------------

    def _dump(self) -> dict[ServiceKey, Dumped]:
        """Every owned service in the kernel with its destinations and counters."""
        owned = {match_key(k): k for k in self._owned_keys()}
        out = {}
        for msg in self._request(message(IPVS_CMD_GET_SERVICE), DUMP, "list services"):
            parsed = parse_service(msg)
            if parsed is None:
                continue
            match, service, counters = parsed
            key = owned.get(match)
            if key is None:
                continue  # not ours: never touched
            service = Service(
                key, service.sched, service.flags, service.persistence_timeout, service.netmask
            )
            dests = {}
            req = message(IPVS_CMD_GET_DEST, service_key_attrs(key))
            for dmsg in self._request(req, DUMP, f"list destinations of {key}"):
                d = parse_dest(dmsg)
                if d is not None:
                    dests[d[0].key] = d
            out[key] = (service, counters, dests)
        return out

    def _load(self) -> Table:
        found = self._dump()
        if found.keys() != self.owned.keys:
            self.owned.keys = set(found)  # gone from the kernel (reboot, operator): forget
            self.owned.write()
        return {
            k: Entry(svc, {dk: d for dk, (d, _) in dests.items()})
            for k, (svc, _, dests) in found.items()
        }

    async def load(self) -> Table:
        return await self._run(self._load)

    def _counters(self) -> dict[tuple[ServiceKey, DestKey | None], Counters]:
        out: dict[tuple[ServiceKey, DestKey | None], Counters] = {}
        for key, (_, counters, dests) in self._dump().items():
            out[(key, None)] = counters
            for dk, (_, dc) in dests.items():
                out[(key, dk)] = dc
        return out

    async def counters(self) -> dict[tuple[ServiceKey, DestKey | None], Counters]:
        return await self._run(self._counters)

    # -- writing ----------------------------------------------------------------------------

    def _apply(self, ops: Sequence[Op]) -> None:
        owned = self._owned_keys()
        before = set(owned)
        added = {op.service.key for op in ops if isinstance(op, AddService)}
        if added - owned:
            # recorded before the kernel has them: a crash in between leaves a record of a
            # service that is absent (forgotten at the next load), never an unrecorded one
            owned |= added
            self.owned.write()
        on_disk = set(owned)
        try:
            for op in ops:
                key = op_service(op)
                if not isinstance(op, AddService) and key not in owned:
                    raise BackendError(f"IPVS: will not {op_text(op)}: hakeeper did not create it")
                msg, flags = op_message(op)
                try:
                    self._request(msg, flags, op_text(op), op)
                except BackendError:
                    if isinstance(op, AddService) and key not in before:
                        owned.discard(key)  # not created by us (or not at all)
                    raise
                if isinstance(op, DelService):
                    owned.discard(key)
        finally:
            # services not reached after a failure stay recorded until load() sees them absent
            if owned != on_disk:
                self.owned.write()

    async def apply(self, ops: Sequence[Op]) -> None:
        if ops:
            await self._run(lambda: self._apply(ops))

    def _close(self, remove: bool) -> None:
        try:
            if remove:
                owned = self._owned_keys()
                errors, kept = [], set()
                for key in sorted(owned, key=service_order):
                    msg = message(IPVS_CMD_DEL_SERVICE, service_key_attrs(key))
                    try:
                        self._request(msg, REQUEST, f"delete service {key}")
                    except BackendError as e:
                        cause = e.__cause__
                        if not (isinstance(cause, NetlinkError) and cause.code == errno.ESRCH):
                            errors.append(str(e))  # still there: still ours
                            kept.add(key)
                self.owned.keys = kept
                if kept:
                    self.owned.write()
                else:
                    self.owned.remove()
                if errors:
                    raise BackendError("; ".join(errors))
        finally:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    async def close(self, remove: bool) -> None:
        try:
            await self._run(lambda: self._close(remove))
        finally:
            self._pool.shutdown(wait=False)
