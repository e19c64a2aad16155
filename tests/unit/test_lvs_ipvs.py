"""The IPVS backend at the netlink-message level (this kernel has no IPVS to drive).

Every request goes through pyroute2's encoder to bytes and is decoded back from them, as the
kernel would read it; replies are built byte by byte the way the kernel's
ip_vs_genl_fill_service/fill_dest lay them out (16-byte addresses, the HASHED flag, stats and
stats64 nests), then decoded by pyroute2 and read by the backend. Attribute numbers below are
written from include/uapi/linux/ip_vs.h, not taken from pyroute2 or from the code under test.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.ipvs import ipvsmsg

from hakeeper.lvs.backend import BackendError, ipvs_available, select_backend
from hakeeper.lvs.ipvs import IpvsBackend, OwnedRecord, op_message
from hakeeper.lvs.reconcile import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    diff,
)
from hakeeper.lvs.table import Counters, Dest, DestKey, Entry, Service, ServiceKey, Table

# include/uapi/linux/ip_vs.h
CMD = {
    "NEW_SERVICE": 1,
    "SET_SERVICE": 2,
    "DEL_SERVICE": 3,
    "GET_SERVICE": 4,
    "NEW_DEST": 5,
    "SET_DEST": 6,
    "DEL_DEST": 7,
    "GET_DEST": 8,
}
CMD_ATTR_SERVICE, CMD_ATTR_DEST = 1, 2
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_STATS, SVC_STATS64 = 6, 7, 8, 9, 10, 12
DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_U, DEST_L = 1, 2, 3, 4, 5, 6
DEST_ACTIVE, DEST_INACT, DEST_PERSIST, DEST_STATS, DEST_AF, DEST_STATS64 = 7, 8, 9, 10, 11, 12
STATS_CONNS, STATS_INPKTS, STATS_OUTPKTS, STATS_INBYTES, STATS_OUTBYTES = 1, 2, 3, 4, 5
F_PERSISTENT, F_HASHED, F_ONEPACKET, F_SCHED1, F_SCHED2 = 0x1, 0x2, 0x4, 0x8, 0x10
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
FAMILY_ID = 0x23  # what the kernel would assign the "IPVS" genl family
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132}


# -- hand-built netlink -------------------------------------------------------------------


def nla(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nest(kind: int, *children: bytes) -> bytes:
    return nla(kind, b"".join(children))


def u16(kind: int, v: int) -> bytes:
    return nla(kind, struct.pack("=H", v))


def u32(kind: int, v: int) -> bytes:
    return nla(kind, struct.pack("=I", v))


def u64(kind: int, v: int) -> bytes:
    return nla(kind, struct.pack("=Q", v))


def be16(kind: int, v: int) -> bytes:
    return nla(kind, struct.pack(">H", v))


def genl(cmd: int, *attrs: bytes, flags: int = 0, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), FAMILY_ID, flags, seq, 0) + body


def addr16(address: str) -> bytes:
    """union nf_inet_addr: the kernel always sends 16 bytes, IPv4 in the first four."""
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(fam, address).ljust(16, b"\0")


def stats(c: Counters) -> tuple[bytes, bytes]:
    small = [
        u32(STATS_CONNS, c.conns),
        u32(STATS_INPKTS, c.inpkts),
        u32(STATS_OUTPKTS, c.outpkts),
        u64(STATS_INBYTES, c.inbytes),
        u64(STATS_OUTBYTES, c.outbytes),
    ]
    big = [
        u64(STATS_CONNS, c.conns),
        u64(STATS_INPKTS, c.inpkts),
        u64(STATS_OUTPKTS, c.outpkts),
        u64(STATS_INBYTES, c.inbytes),
        u64(STATS_OUTBYTES, c.outbytes),
    ]
    return b"".join(small), b"".join(big)


def decode(data: bytes) -> ipvsmsg:
    msg = ipvsmsg(data)
    msg.decode()
    return msg


# -- a fake IPVS: the kernel's side of the seam, answering in its own byte layout ------------


class FakeIpvs:
    """Keeps services and destinations as the kernel would, from decoded requests."""

    SCHEDULERS = {"rr", "wrr", "lc", "wlc", "sh", "mh"}

    def __init__(self) -> None:
        self.services: dict[Any, dict[str, Any]] = {}
        self.sent: list[tuple[int, int, dict[str, Any], dict[str, Any] | None, bytes]] = []
        self.seq = 0
        self.closed = False

    # the Transport interface
    def request(self, msg: ipvsmsg, flags: int) -> list[ipvsmsg]:
        self.seq += 1
        msg["header"]["type"] = FAMILY_ID
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        wire = bytes(msg.data)
        got = decode(wire)  # what the kernel reads
        svc_nla = got.get_attr("IPVS_CMD_ATTR_SERVICE")
        dest_nla = got.get_attr("IPVS_CMD_ATTR_DEST")
        svc = dict(svc_nla["attrs"]) if svc_nla is not None else {}
        dest = dict(dest_nla["attrs"]) if dest_nla is not None else None
        self.sent.append((got["cmd"], flags, svc, dest, wire))
        return self.handle(got["cmd"], svc, dest)

    def close(self) -> None:
        self.closed = True

    # the kernel's behaviour
    def key(self, svc: dict[str, Any]) -> Any:
        af = svc["IPVS_SVC_ATTR_AF"]
        if svc.get("IPVS_SVC_ATTR_FWMARK"):
            return (af, svc["IPVS_SVC_ATTR_FWMARK"])
        return (
            af,
            svc["IPVS_SVC_ATTR_PROTOCOL"],
            svc["IPVS_SVC_ATTR_ADDR"],
            svc["IPVS_SVC_ATTR_PORT"],
        )

    def handle(self, cmd: int, svc: dict[str, Any], dest: dict[str, Any] | None) -> list[ipvsmsg]:
        if cmd == CMD["GET_SERVICE"]:
            return [decode(self.service_record(k, s)) for k, s in self.services.items()]
        key = self.key(svc)
        s = self.services.get(key)
        if cmd == CMD["NEW_SERVICE"]:
            if s is not None:
                raise NetlinkError(errno.EEXIST)
            if svc["IPVS_SVC_ATTR_SCHED_NAME"] not in self.SCHEDULERS:
                raise NetlinkError(errno.ENOENT)
            self.services[key] = {"svc": svc, "dests": {}, "stats": Counters()}
            return []
        if s is None:
            raise NetlinkError(errno.ESRCH)
        if cmd == CMD["SET_SERVICE"]:
            s["svc"] = svc
        elif cmd == CMD["DEL_SERVICE"]:
            del self.services[key]
        elif cmd == CMD["GET_DEST"]:
            return [decode(self.dest_record(d, c)) for d, c in s["dests"].values()]
        else:
            assert dest is not None
            dkey = (dest["IPVS_DEST_ATTR_ADDR"], dest["IPVS_DEST_ATTR_PORT"])
            if cmd == CMD["NEW_DEST"]:
                if dkey in s["dests"]:
                    raise NetlinkError(errno.EEXIST)
                s["dests"][dkey] = (dest, Counters())
            elif dkey not in s["dests"]:
                raise NetlinkError(errno.ENOENT)
            elif cmd == CMD["SET_DEST"]:
                s["dests"][dkey] = (dest, s["dests"][dkey][1])
            elif cmd == CMD["DEL_DEST"]:
                del s["dests"][dkey]
        return []

    def service_record(self, key: Any, s: dict[str, Any]) -> bytes:
        """ip_vs_genl_fill_service's layout."""
        svc = s["svc"]
        attrs = [u16(SVC_AF, key[0])]
        if len(key) == 2:
            attrs.append(u32(SVC_FWMARK, key[1]))
        else:
            attrs += [
                u16(SVC_PROTOCOL, key[1]),
                nla(SVC_ADDR, addr16(key[2])),
                be16(SVC_PORT, key[3]),
            ]
        flags = svc["IPVS_SVC_ATTR_FLAGS"]["flags"] | F_HASHED  # the kernel adds HASHED
        netmask = socket.inet_pton(socket.AF_INET, svc["IPVS_SVC_ATTR_NETMASK"])
        small, big = stats(s["stats"])
        attrs += [
            nla(SVC_SCHED_NAME, svc["IPVS_SVC_ATTR_SCHED_NAME"].encode() + b"\0"),
            nla(SVC_FLAGS, struct.pack("=II", flags, 0xFFFFFFFF)),
            u32(SVC_TIMEOUT, svc["IPVS_SVC_ATTR_TIMEOUT"]),
            nla(SVC_NETMASK, netmask),
            nla(SVC_STATS, small),
            nla(SVC_STATS64, big),
        ]
        return genl(CMD["NEW_SERVICE"], nla(CMD_ATTR_SERVICE, b"".join(attrs)), flags=2)

    def dest_record(self, dest: dict[str, Any], c: Counters) -> bytes:
        """ip_vs_genl_fill_dest's layout: the family comes late, after the address."""
        small, big = stats(c)
        addr = dest["IPVS_DEST_ATTR_ADDR"]
        attrs = [
            nla(DEST_ADDR, addr16(addr)),
            be16(DEST_PORT, dest["IPVS_DEST_ATTR_PORT"]),
            u32(DEST_FWD, dest["IPVS_DEST_ATTR_FWD_METHOD"]),
            u32(DEST_WEIGHT, dest["IPVS_DEST_ATTR_WEIGHT"]),
            u32(DEST_U, dest["IPVS_DEST_ATTR_U_THRESH"]),
            u32(DEST_L, dest["IPVS_DEST_ATTR_L_THRESH"]),
            u32(DEST_ACTIVE, 1),
            u32(DEST_INACT, 2),
            u32(DEST_PERSIST, 0),
            u16(DEST_AF, socket.AF_INET6 if ":" in addr else socket.AF_INET),
            nla(DEST_STATS, small),
            nla(DEST_STATS64, big),
        ]
        return genl(CMD["NEW_DEST"], nla(CMD_ATTR_DEST, b"".join(attrs)), flags=2)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def recorded(state: Path) -> set[ServiceKey]:
    record = OwnedRecord(state)
    record.read()
    return record.keys


@pytest.fixture
def kernel() -> FakeIpvs:
    return FakeIpvs()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "ipvs-owned.json"


WEB = ServiceKey(4, "TCP", "198.18.0.100", 80)
FW6 = ServiceKey(6, "UDP", fwmark=7)
V6 = ServiceKey(6, "SCTP", "fd00:198:18::100", 3868)
D1, D2 = DestKey("198.18.1.1", 80), DestKey("198.18.1.2", 8080)


def sample() -> Table:
    return {
        WEB: Entry(
            Service(WEB, "wrr", persistence_timeout=300, netmask="255.255.255.0"),
            {D1: Dest(D1, "NAT", 3, 100, 10), D2: Dest(D2, "DR", 0)},
        ),
        FW6: Entry(
            Service(FW6, "sh", ("sh-fallback", "sh-port")),
            {DestKey("fd00:198:18:1::1", 0): Dest(DestKey("fd00:198:18:1::1", 0), "TUN")},
        ),
        V6: Entry(Service(V6, "mh", ("mh-port",), 60, "64"), {}),
    }


# -- exact bytes ----------------------------------------------------------------------------


def test_add_service_is_byte_for_byte_the_uapi_layout() -> None:
    svc = Service(WEB, "wrr", ("ops",), persistence_timeout=300, netmask="255.255.255.0")
    msg, flags = op_message(AddService(svc))
    assert flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    msg["header"]["type"] = FAMILY_ID
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = 7
    msg.encode()
    want = genl(
        CMD["NEW_SERVICE"],
        nest(
            CMD_ATTR_SERVICE,
            u16(SVC_AF, socket.AF_INET),
            u16(SVC_PROTOCOL, 6),
            nla(SVC_ADDR, socket.inet_aton("198.18.0.100")),
            be16(SVC_PORT, 80),
            nla(SVC_SCHED_NAME, b"wrr\0"),
            nla(SVC_FLAGS, struct.pack("=II", F_PERSISTENT | F_ONEPACKET, 0xFFFFFFFF)),
            u32(SVC_TIMEOUT, 300),
            nla(SVC_NETMASK, socket.inet_aton("255.255.255.0")),
        ),
        flags=flags,
        seq=7,
    )
    assert bytes(msg.data) == want


def test_edit_dest_is_byte_for_byte_the_uapi_layout() -> None:
    fw = ServiceKey(4, "TCP", fwmark=9)
    msg, flags = op_message(EditDest(fw, Dest(D2, "DR", 5, 7, 2)))
    assert flags == NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["type"] = FAMILY_ID
    msg["header"]["flags"] = flags
    msg.encode()
    want = genl(
        CMD["SET_DEST"],
        nla(CMD_ATTR_SERVICE, u16(SVC_AF, socket.AF_INET) + u32(SVC_FWMARK, 9)),
        nest(
            CMD_ATTR_DEST,
            u16(DEST_AF, socket.AF_INET),
            nla(DEST_ADDR, socket.inet_aton("198.18.1.2")),
            be16(DEST_PORT, 8080),
            u32(DEST_FWD, 3),  # IP_VS_CONN_F_DROUTE
            u32(DEST_WEIGHT, 5),
            u32(DEST_U, 7),
            u32(DEST_L, 2),
        ),
        flags=flags,
    )
    assert bytes(msg.data) == want


def test_ipv6_persistence_netmask_is_a_host_order_prefix_length() -> None:
    msg, _ = op_message(AddService(Service(V6, "rr", persistence_timeout=60, netmask="64")))
    msg["header"]["type"] = FAMILY_ID
    msg.encode()
    assert nla(SVC_NETMASK, struct.pack("=I", 64)) in bytes(msg.data)
    assert nla(SVC_ADDR, socket.inet_pton(socket.AF_INET6, "fd00:198:18::100")) in bytes(msg.data)


# -- one command per operation ---------------------------------------------------------------


def test_each_operation_sends_its_command(kernel: FakeIpvs, state: Path) -> None:
    b = IpvsBackend(kernel, state)
    svc = Service(WEB, "rr")
    run(b.apply([AddService(svc), AddDest(WEB, Dest(D1, "NAT", 2)), AddDest(WEB, Dest(D2, "TUN"))]))
    run(
        b.apply(
            [
                EditService(Service(WEB, "wlc")),
                EditDest(WEB, Dest(D1, "NAT", 0)),
                DelDest(WEB, D2),
                DelService(WEB),
            ]
        )
    )
    cmds = [(c, f) for c, f, *_ in kernel.sent]
    create, req = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, NLM_F_REQUEST | NLM_F_ACK
    assert cmds == [
        (CMD["NEW_SERVICE"], create),
        (CMD["NEW_DEST"], create),
        (CMD["NEW_DEST"], create),
        (CMD["SET_SERVICE"], req),  # never pyroute2's "update", which is DEL_SERVICE
        (CMD["SET_DEST"], req),
        (CMD["DEL_DEST"], req),
        (CMD["DEL_SERVICE"], req),
    ]
    _, _, svc_attrs, _, _ = kernel.sent[0]
    assert svc_attrs == {
        "IPVS_SVC_ATTR_AF": socket.AF_INET,
        "IPVS_SVC_ATTR_PROTOCOL": 6,
        "IPVS_SVC_ATTR_ADDR": "198.18.0.100",
        "IPVS_SVC_ATTR_PORT": 80,
        "IPVS_SVC_ATTR_SCHED_NAME": "rr",
        "IPVS_SVC_ATTR_FLAGS": {"flags": 0, "mask": 0xFFFFFFFF},
        "IPVS_SVC_ATTR_TIMEOUT": 0,
        "IPVS_SVC_ATTR_NETMASK": "255.255.255.255",
    }
    _, _, svc_key, dest, _ = kernel.sent[2]  # a dest command names its service by key only
    assert svc_key == {
        "IPVS_SVC_ATTR_AF": socket.AF_INET,
        "IPVS_SVC_ATTR_PROTOCOL": 6,
        "IPVS_SVC_ATTR_ADDR": "198.18.0.100",
        "IPVS_SVC_ATTR_PORT": 80,
    }
    assert dest == {
        "IPVS_DEST_ATTR_ADDR_FAMILY": socket.AF_INET,
        "IPVS_DEST_ATTR_ADDR": "198.18.1.2",
        "IPVS_DEST_ATTR_PORT": 8080,
        "IPVS_DEST_ATTR_FWD_METHOD": 2,
        "IPVS_DEST_ATTR_WEIGHT": 1,
        "IPVS_DEST_ATTR_U_THRESH": 0,
        "IPVS_DEST_ATTR_L_THRESH": 0,
    }
    assert kernel.sent[5][3] == {
        "IPVS_DEST_ATTR_ADDR_FAMILY": socket.AF_INET,
        "IPVS_DEST_ATTR_ADDR": "198.18.1.2",
        "IPVS_DEST_ATTR_PORT": 8080,
    }
    assert kernel.services == {}


def test_scheduler_flags_and_persistence_bits(kernel: FakeIpvs, state: Path) -> None:
    run(IpvsBackend(kernel, state).apply(diff({}, sample())))
    by_cmd = [s for c, _, s, _, _ in kernel.sent if c == CMD["NEW_SERVICE"]]
    flags = {
        (s["IPVS_SVC_ATTR_AF"], s.get("IPVS_SVC_ATTR_FWMARK")): s["IPVS_SVC_ATTR_FLAGS"]["flags"]
        for s in by_cmd
    }
    assert flags == {
        (socket.AF_INET, None): F_PERSISTENT,
        (socket.AF_INET6, 7): F_SCHED1 | F_SCHED2,  # sh-fallback, sh-port
        (socket.AF_INET6, None): F_PERSISTENT | F_SCHED2,  # mh-port
    }


# -- dumps back to a table -------------------------------------------------------------------


def test_load_reads_back_what_was_applied(kernel: FakeIpvs, state: Path) -> None:
    want = sample()
    run(IpvsBackend(kernel, state).apply(diff({}, want)))
    again = IpvsBackend(kernel, state)  # a restarted daemon
    assert run(again.load()) == want
    assert diff(run(again.load()), want) == []


def test_counters_from_stats64(kernel: FakeIpvs, state: Path) -> None:
    run(IpvsBackend(kernel, state).apply(diff({}, sample())))
    big = 2**40 + 5  # beyond 32 bits: only stats64 carries it
    kernel.services[(socket.AF_INET, 6, "198.18.0.100", 80)]["stats"] = Counters(9, 8, 7, big, 5)
    d = kernel.services[(socket.AF_INET, 6, "198.18.0.100", 80)]["dests"]
    d[("198.18.1.1", 80)] = (d[("198.18.1.1", 80)][0], Counters(4, 3, 2, 1, big))
    got = run(IpvsBackend(kernel, state).counters())
    assert got[(WEB, None)] == Counters(9, 8, 7, big, 5)
    assert got[(WEB, D1)] == Counters(4, 3, 2, 1, big)
    assert got[(WEB, D2)] == Counters()
    assert got[(FW6, None)] == Counters()
    assert len(got) == 3 + 3  # three services, three destinations


def test_a_fwmark_service_keeps_its_recorded_protocol(kernel: FakeIpvs, state: Path) -> None:
    """The kernel forgets a fwmark service's protocol; the owned record keeps the key."""
    run(IpvsBackend(kernel, state).apply([AddService(Service(FW6, "rr"))]))
    record = kernel.service_record((socket.AF_INET6, 7), kernel.services[(socket.AF_INET6, 7)])
    assert u16(SVC_PROTOCOL, 17) not in record
    assert list(run(IpvsBackend(kernel, state).load())) == [FW6]


# -- ownership ------------------------------------------------------------------------------


def foreign(kernel: FakeIpvs) -> None:
    """A service someone else made with ipvsadm."""
    svc = {
        "IPVS_SVC_ATTR_AF": socket.AF_INET,
        "IPVS_SVC_ATTR_PROTOCOL": 6,
        "IPVS_SVC_ATTR_ADDR": "198.18.0.200",
        "IPVS_SVC_ATTR_PORT": 25,
        "IPVS_SVC_ATTR_SCHED_NAME": "wlc",
        "IPVS_SVC_ATTR_FLAGS": {"flags": 0},
        "IPVS_SVC_ATTR_TIMEOUT": 0,
        "IPVS_SVC_ATTR_NETMASK": "255.255.255.255",
    }
    kernel.handle(CMD["NEW_SERVICE"], svc, None)


def test_services_hakeeper_did_not_create_are_never_touched(kernel: FakeIpvs, state: Path) -> None:
    foreign(kernel)
    b = IpvsBackend(kernel, state)
    assert run(b.load()) == {}
    run(b.apply(diff({}, sample())))
    web = {"family": 4, "protocol": "TCP", "address": "198.18.0.100", "port": 80, "fwmark": None}
    assert json.loads(state.read_text())["services"][0] == web
    assert set(run(b.load())) == set(sample())
    assert all(k[0] == WEB for k in run(b.counters()) if k[0].port == 80)
    other = ServiceKey(4, "TCP", "198.18.0.200", 25)
    with pytest.raises(BackendError, match="did not create"):
        run(b.apply([AddDest(other, Dest(D1))]))
    with pytest.raises(BackendError, match="did not create"):
        run(b.apply([DelService(other)]))
    # adding over it: refused by the kernel, and not claimed
    with pytest.raises(BackendError, match=r"add service 198\.18\.0\.200:25/TCP.*File exists"):
        run(b.apply([AddService(Service(other, "rr"))]))
    assert other not in recorded(state) | set(run(b.load()))
    run(b.close(remove=True))
    assert list(kernel.services) == [(socket.AF_INET, 6, "198.18.0.200", 25)]
    assert not state.exists()


def test_close_without_remove_leaves_the_kernel_serving(kernel: FakeIpvs, state: Path) -> None:
    b = IpvsBackend(kernel, state)
    run(b.apply(diff({}, sample())))
    sent = len(kernel.sent)
    run(b.close(remove=False))
    assert len(kernel.sent) == sent and kernel.closed
    assert run(IpvsBackend(kernel, state).load()) == sample()


def test_the_record_forgets_services_gone_from_the_kernel(kernel: FakeIpvs, state: Path) -> None:
    run(IpvsBackend(kernel, state).apply(diff({}, sample())))
    kernel.services.clear()  # a reboot, or an operator's ipvsadm -C
    b = IpvsBackend(kernel, state)
    assert run(b.load()) == {}
    assert json.loads(state.read_text())["services"] == []


def test_refusals_name_the_service_and_the_reason(kernel: FakeIpvs, state: Path) -> None:
    b = IpvsBackend(kernel, state)
    with pytest.raises(BackendError) as e:
        run(b.apply([AddService(Service(WEB, "nosuch"))]))
    assert "add service 198.18.0.100:80/TCP (scheduler nosuch)" in str(e.value)
    assert "ip_vs_nosuch" in str(e.value)
    assert recorded(state) == set()
    run(b.apply([AddService(Service(WEB, "rr"))]))
    with pytest.raises(BackendError, match=r"edit destination 198\.18\.1\.1:80 .* of service"):
        run(b.apply([EditDest(WEB, Dest(D1))]))


def test_a_damaged_record_is_an_error_not_a_crash(kernel: FakeIpvs, state: Path) -> None:
    state.write_text("{not json")
    with pytest.raises(BackendError, match="unreadable"):
        run(IpvsBackend(kernel, state).load())


# -- choosing a backend ----------------------------------------------------------------------


def kernel_genl_families() -> set[str]:
    """The kernel's generic netlink families, asked directly (CTRL_CMD_GETFAMILY dump)."""
    from pyroute2.netlink import CTRL_CMD_GETFAMILY, GENL_ID_CTRL, NLM_F_DUMP, NLM_F_REQUEST
    from pyroute2.netlink import ctrlmsg as ctrl
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        sock.bind("nlctrl", ctrl)
        msg = ctrl()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        replies = sock.nlm_request(msg, msg_type=GENL_ID_CTRL, msg_flags=NLM_F_REQUEST | NLM_F_DUMP)
        return {r.get_attr("CTRL_ATTR_FAMILY_NAME") for r in replies}
    finally:
        sock.close()


def test_select_backend_follows_the_kernel(tmp_path: Path) -> None:
    has_ipvs = "IPVS" in kernel_genl_families() or Path("/proc/net/ip_vs").exists()
    assert ipvs_available() == has_ipvs
    if has_ipvs:
        assert select_backend("auto").name == "ipvs"
        assert select_backend("ipvs").name == "ipvs"
    else:  # this lab's kernel
        with pytest.raises(BackendError, match="this kernel has no IPVS"):
            select_backend("ipvs")
        assert select_backend("auto").name == "nftables"
        real = IpvsBackend(state_path=tmp_path / "owned.json")  # the real netlink transport
        with pytest.raises(BackendError, match="IPVS unavailable: the kernel has no IPVS"):
            run(real.load())
        run(real.close(remove=False))
    assert select_backend("nftables").name == "nftables"
    with pytest.raises(BackendError, match="unknown LVS backend"):
        select_backend("lvs")


def test_select_backend_inside_a_running_loop() -> None:
    """The probe must work from the daemon's event loop (pyroute2 nests no loops)."""

    async def main() -> str:
        return select_backend("auto").name

    assert asyncio.run(main()) in ("ipvs", "nftables")


def test_unsupported_is_only_what_ipvs_cannot_do() -> None:
    b = IpvsBackend(FakeIpvs())
    assert b.unsupported(Service(WEB, "lblcr"), [Dest(D1, "DR"), Dest(D2, "TUN")]) is None
    why = b.unsupported(Service(WEB, "rr"), [Dest(DestKey("fd00::1", 80), "NAT")])
    assert why is not None and "TUN" in why
