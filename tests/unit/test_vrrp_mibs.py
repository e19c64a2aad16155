"""VRRPV3-MIB (RFC 6527) and VRRP-MIB (RFC 2787) over a hand-built runtime model: every column's
value and encoding, row order, rows that follow the model's events, the enumerations, the
notifications' varbinds; then the same view served to a real snmpd by the AgentX subagent and
walked numerically with snmpwalk."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.config.model import VirtualAddress, VrrpInstance
from hakeeper.snmp import vrrp_mibs as m
from hakeeper.snmp.agentx import pdu as p
from hakeeper.state import InstanceState, Runtime
from hakeeper.vrrp.stats import InstanceStats
from tests.unit.test_agentx_snmpd import Snmpd, serving

IFINDEX = {"eth0": 2, "eth1": 3}
T0 = 1_000_000.0  # the wall clock the model's timestamps use


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def vip(text: str) -> VirtualAddress:
    ip = ipaddress.ip_address(text)
    return VirtualAddress(ip, 24 if ip.version == 4 else 64)


def add_instance(
    rt: Runtime,
    name: str,
    interface: str = "eth0",
    vrid: int = 51,
    *,
    state: str = "BACKUP",
    version: int = 3,
    family: int = 4,
    vips: tuple[str, ...] = ("198.18.0.100",),
    master: str | None = None,
    **config: object,
) -> InstanceState:
    inst = VrrpInstance(
        name,
        interface,
        vrid,
        version=version,
        family=family,
        virtual_ipaddress=tuple(vip(v) for v in vips),
        **config,  # type: ignore[arg-type]
    )
    view = InstanceState(
        config=inst,
        stats=InstanceStats(),
        state=state,
        effective_priority=inst.priority,
        master_address=master,
        last_transition=T0 - 30,
        last_reason="master down timer expired" if state == "MASTER" else "",
    )
    rt.instances[name] = view
    return view


def model() -> Runtime:
    rt = Runtime(started=T0 - 100)
    add_instance(
        rt,
        "VI_1",
        "eth0",
        51,
        state="MASTER",
        master="198.18.0.1",
        priority=150,
        advert_int=0.5,
        unicast_src_ip=ipaddress.ip_address("198.18.0.1"),
    )
    add_instance(
        rt,
        "VI_2",
        "eth1",
        52,
        version=2,
        master="198.18.0.2",
        vips=("198.18.1.100", "198.18.1.20"),
        nopreempt=True,
        auth_type="PASS",
        advert_int=2.0,
    )
    add_instance(
        rt,
        "VI_6",
        "eth0",
        51,
        family=6,
        master="fe80::2",
        vips=("2001:db8::100", "2001:db8::20"),
        accept=False,
    )
    add_instance(rt, "VI_NOVIP", "eth0", 60, vips=())  # no VIP: in neither MIB
    add_instance(rt, "VI_GONE", "eth9", 61)  # no ifIndex: in neither MIB
    return rt


def oper3(col: int, ifindex: int, vrid: int, family: int) -> tuple[int, ...]:
    return (*m.V3_OPER_ENTRY, col, ifindex, vrid, family)


def stats3(col: int, ifindex: int, vrid: int, family: int) -> tuple[int, ...]:
    return (*m.V3_STATS_ENTRY, col, ifindex, vrid, family)


def oper2(col: int, ifindex: int, vrid: int) -> tuple[int, ...]:
    return (*m.V2_OPER_ENTRY, col, ifindex, vrid)


@pytest.fixture
def rt() -> Runtime:
    return model()


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def view(rt: Runtime, wall: Wall) -> m.VrrpMibs:
    return m.VrrpMibs(rt, IFINDEX.get, clock=wall)


def column(view: m.VrrpMibs, entry: tuple[int, ...], col: int) -> list[tuple[tuple, p.Value]]:
    """One column's (index, value) pairs, by walking it."""
    prefix = (*entry, col)
    return [(oid[len(prefix) :], v) for oid, v in view.walk(prefix) if oid[: len(prefix)] == prefix]


# --- VRRPV3-MIB --------------------------------------------------------------------------------


def test_v3_rows_every_instance_with_a_vip_and_an_interface(view: m.VrrpMibs) -> None:
    # ordered by ifIndex, VRID, InetAddressType; v2 instances included (keepalived's default)
    assert [i for i, _ in column(view, m.V3_OPER_ENTRY, m.V3_OPER_STATUS)] == [
        (2, 51, 1),
        (2, 51, 2),
        (3, 52, 1),
    ]


def test_v3_operations_values(view: m.VrrpMibs, wall: Wall) -> None:
    g = view.get
    # the master reads its own primary address; a backup the last advert's source
    assert g(oper3(3, 2, 51, 1)) == p.OctetString(bytes([198, 18, 0, 1]))
    assert g(oper3(3, 3, 52, 1)) == p.OctetString(bytes([198, 18, 0, 2]))
    assert g(oper3(3, 2, 51, 2)) == p.OctetString(ipaddress.ip_address("fe80::2").packed)
    assert g(oper3(4, 2, 51, 1)) == p.OctetString(bytes([198, 18, 0, 1]))
    assert g(oper3(4, 3, 52, 1)) == p.OctetString(bytes(4))  # unknown: zeros
    assert g(oper3(4, 2, 51, 2)) == p.OctetString(bytes(16))
    assert g(oper3(5, 2, 51, 1)) == p.OctetString(bytes.fromhex("00005e000133"))
    assert g(oper3(5, 2, 51, 2)) == p.OctetString(bytes.fromhex("00005e000233"))
    assert g(oper3(5, 3, 52, 1)) == p.OctetString(bytes.fromhex("00005e000134"))
    assert g(oper3(6, 2, 51, 1)) == p.Integer(3)  # master
    assert g(oper3(6, 3, 52, 1)) == p.Integer(2)  # backup
    assert g(oper3(7, 2, 51, 1)) == p.Gauge32(150)  # Unsigned32
    assert g(oper3(7, 3, 52, 1)) == p.Gauge32(100)
    assert g(oper3(8, 3, 52, 1)) == p.Integer(2)
    assert g(oper3(8, 2, 51, 2)) == p.Integer(2)
    assert g(oper3(9, 2, 51, 1)) == p.Integer(50)  # centiseconds
    assert g(oper3(9, 3, 52, 1)) == p.Integer(200)
    assert g(oper3(10, 2, 51, 1)) == p.Integer(1)  # preempt true
    assert g(oper3(10, 3, 52, 1)) == p.Integer(2)  # nopreempt
    assert g(oper3(11, 2, 51, 1)) == p.Integer(1)  # accept (keepalived's default)
    assert g(oper3(11, 2, 51, 2)) == p.Integer(2)  # accept=False (strict)
    # UpTime: TimeTicks since it left initialize (30 s ago in the model)
    assert g(oper3(12, 2, 51, 1)) == p.TimeTicks(3000)
    wall.now += 1.5
    assert g(oper3(12, 2, 51, 1)) == p.TimeTicks(3150)
    assert g(oper3(13, 2, 51, 1)) == p.Integer(1)  # RowStatus active
    assert g(oper3(1, 2, 51, 1)) == p.NO_SUCH_OBJECT  # the index is not-accessible
    assert g(oper3(3, 2, 60, 1)) == p.NO_SUCH_INSTANCE  # VI_NOVIP


def test_v3_status_enumeration(rt: Runtime, view: m.VrrpMibs) -> None:
    for state, number in [("INIT", 1), ("BACKUP", 2), ("MASTER", 3), ("FAULT", 1), ("STOP", 1)]:
        rt.instances["VI_2"].state = state
        assert view.get(oper3(6, 3, 52, 1)) == p.Integer(number), state


def test_v3_uptime_follows_state_events(rt: Runtime, view: m.VrrpMibs, wall: Wall) -> None:
    inst = rt.instances["VI_2"]
    inst.state = "FAULT"
    rt.emit("instance", "VI_2", "state")
    assert view.get(oper3(12, 3, 52, 1)) == p.TimeTicks(0)
    wall.now += 10
    inst.state, inst.last_transition = "BACKUP", wall.now
    rt.emit("instance", "VI_2", "state")
    wall.now += 2
    assert view.get(oper3(12, 3, 52, 1)) == p.TimeTicks(200)
    # BACKUP -> MASTER does not leave initialize again: the uptime keeps counting
    inst.state, inst.last_transition = "MASTER", wall.now
    inst.last_reason = "preempting lower priority (90) master 198.18.0.2"
    rt.emit("instance", "VI_2", "state")
    wall.now += 1
    assert view.get(oper3(12, 3, 52, 1)) == p.TimeTicks(300)
    # VRRP-MIB's TimeStamp: when it left initialize, counted from the daemon's start
    assert view.get(oper2(13, 3, 52)) == p.TimeTicks((T0 + 10 - rt.started) * 100)


def test_v3_associated_addresses_index_with_length(view: m.VrrpMibs) -> None:
    rows = column(view, m.V3_ASSOC_ENTRY, m.V3_ASSOC_ROW_STATUS)
    v6 = [ipaddress.ip_address(a).packed for a in ("2001:db8::20", "2001:db8::100")]
    assert [i for i, _ in rows] == [
        (2, 51, 1, 4, 198, 18, 0, 100),
        (2, 51, 2, 16, *v6[0]),
        (2, 51, 2, 16, *v6[1]),
        (3, 52, 1, 4, 198, 18, 1, 20),
        (3, 52, 1, 4, 198, 18, 1, 100),
    ]
    assert {v for _, v in rows} == {p.Integer(1)}


def test_v3_statistics(rt: Runtime, view: m.VrrpMibs) -> None:
    s = rt.instances["VI_1"].stats
    for n, name in enumerate(s.__slots__, 1):
        setattr(s, name, n * 10)
    g = view.get
    assert g(stats3(1, 2, 51, 1)) == p.Counter32(s.become_master)
    assert g(stats3(2, 2, 51, 1)) == p.Integer(3)  # masterNoResponse (down timer expired)
    assert g(stats3(2, 3, 52, 1)) == p.Integer(0)  # notMaster
    assert g(stats3(3, 2, 51, 1)) == p.Counter64(s.advert_rcvd)
    assert g(stats3(4, 2, 51, 1)) == p.Counter64(s.advert_interval_err)
    assert g(stats3(5, 2, 51, 1)) == p.Counter64(s.ip_ttl_err)
    assert g(stats3(6, 2, 51, 1)) == p.Integer(0)  # noError
    assert g(stats3(7, 2, 51, 1)) == p.Counter64(s.pri_zero_rcvd)
    assert g(stats3(8, 2, 51, 1)) == p.Counter64(s.pri_zero_sent)
    assert g(stats3(9, 2, 51, 1)) == p.Counter64(s.invalid_type_rcvd)
    assert g(stats3(10, 2, 51, 1)) == p.Counter64(s.addr_list_err)
    assert g(stats3(11, 2, 51, 1)) == p.Counter64(s.packet_len_err)
    assert g(stats3(12, 2, 51, 1)) == p.TimeTicks(0)
    assert g(stats3(13, 2, 51, 1)) == p.Gauge32(500)  # ms
    assert view.note_proto_error("VI_1", "checksum_err")
    assert g(stats3(6, 2, 51, 1)) == p.Integer(3)  # checksumError
    assert view.note_proto_error("VI_1", "ip_ttl_err")
    assert g(stats3(6, 2, 51, 1)) == p.Integer(1)
    assert not view.note_proto_error("VI_1", "addr_list_err")  # no protocol error
    # same rows as the operations table (AUGMENTS)
    assert [i for i, _ in column(view, m.V3_STATS_ENTRY, 1)] == [
        i for i, _ in column(view, m.V3_OPER_ENTRY, 3)
    ]


def test_new_master_reason_classification(rt: Runtime, view: m.VrrpMibs) -> None:
    inst = rt.instances["VI_2"]
    for reason, code in [
        ("priority 0 advert from 198.18.0.2", 1),
        ("preempting lower priority (50) master 198.18.0.2", 2),
        ("link up, address owner", 2),
        ("master down timer expired", 3),
        ("sync group VG_1 went MASTER", 3),
    ]:
        inst.state, inst.last_reason = "MASTER", reason
        rt.emit("instance", "VI_2", "state")
        inst.state, inst.last_reason = "BACKUP", "higher priority advert"
        rt.emit("instance", "VI_2", "state")
        # kept after leaving MASTER: the reason of the last time it became master
        assert view.get(stats3(2, 3, 52, 1)) == p.Integer(code), reason


def test_router_statistics_count_every_dropped_packet(rt: Runtime, view: m.VrrpMibs) -> None:
    rt.instances["VI_1"].stats.checksum_err = 3
    rt.instances["VI_2"].stats.checksum_err = 4
    rt.instances["VI_GONE"].stats.version_err = 5  # a packet the router got all the same
    rt.instances["VI_6"].stats.vrid_err = 1
    rt.count("vrid_err")  # no instance for that VRID on the interface
    rt.count("vrid_err")
    v3 = (*m.V3_STATISTICS,)
    assert view.get((*v3, 1, 0)) == p.Counter64(7)
    assert view.get((*v3, 2, 0)) == p.Counter64(5)
    assert view.get((*v3, 3, 0)) == p.Counter64(3)
    assert view.get((*v3, 4, 0)) == p.TimeTicks(0)
    assert view.get((*m.V2_STATISTICS, 1, 0)) == p.Counter32(7)
    assert view.get((*m.V2_STATISTICS, 3, 0)) == p.Counter32(3)
    rt.instances["VI_1"].stats.checksum_err = 2**32 + 1  # Counter32 wraps, Counter64 not
    assert view.get((*m.V2_STATISTICS, 1, 0)) == p.Counter32(5)
    assert view.get((*v3, 1, 0)) == p.Counter64(2**32 + 5)


def test_rows_appear_and_disappear_with_the_model(rt: Runtime, view: m.VrrpMibs) -> None:
    assert view.get(oper3(6, 3, 70, 1)) == p.NO_SUCH_INSTANCE
    add_instance(rt, "VI_NEW", "eth1", 70, state="INIT")
    rt.emit("instance", "VI_NEW", "added")
    assert view.get(oper3(6, 3, 70, 1)) == p.Integer(1)
    assert view.get(oper3(12, 3, 70, 1)) == p.TimeTicks(0)  # still initialize
    assert view.next(oper3(6, 3, 52, 1), False, ()) == (oper3(6, 3, 70, 1), p.Integer(1))
    del rt.instances["VI_2"]
    rt.emit("instance", "VI_2", "removed")
    assert view.get(oper3(6, 3, 52, 1)) == p.NO_SUCH_INSTANCE
    assert view.get(oper2(3, 3, 52)) == p.NO_SUCH_INSTANCE
    assert column(view, m.V2_OPER_ENTRY, m.V2_OPER_STATE) == []  # no VRRPv2 IPv4 left
    # a reload that changed the VIPs re-indexes the associated address table
    old = rt.instances["VI_1"]
    old.config = VrrpInstance("VI_1", "eth0", 51, version=3, virtual_ipaddress=(vip("198.18.0.7"),))
    rt.emit("instance", "VI_1", "config")
    assert next(i for i, _ in column(view, m.V3_ASSOC_ENTRY, 2)) == (2, 51, 1, 4, 198, 18, 0, 7)


# --- VRRP-MIB ----------------------------------------------------------------------------------


def test_v2_lists_only_vrrpv2_ipv4_instances(view: m.VrrpMibs) -> None:
    assert [i for i, _ in column(view, m.V2_OPER_ENTRY, m.V2_OPER_STATE)] == [(3, 52)]
    assert [i for i, _ in column(view, m.V2_ASSO_ENTRY, 2)] == [
        (3, 52, 198, 18, 1, 20),
        (3, 52, 198, 18, 1, 100),
    ]


def test_v2_values(rt: Runtime, view: m.VrrpMibs) -> None:
    g = view.get
    assert g((*m.V2_NODE_VERSION, 0)) == p.Integer(2)
    assert g((*m.V2_NOTIFICATION_CNTL, 0)) == p.Integer(1)
    assert g(oper2(2, 3, 52)) == p.OctetString(bytes.fromhex("00005e000134"))
    assert g(oper2(3, 3, 52)) == p.Integer(2)
    assert g(oper2(4, 3, 52)) == p.Integer(1)  # admin up
    assert g(oper2(5, 3, 52)) == p.Integer(100)  # Integer32 here
    assert g(oper2(6, 3, 52)) == p.Integer(2)
    assert g(oper2(7, 3, 52)) == p.IpAddress(bytes([198, 18, 0, 2]))
    assert g(oper2(8, 3, 52)) == p.IpAddress(bytes(4))
    assert g(oper2(9, 3, 52)) == p.Integer(2)  # simpleTextPassword
    assert g(oper2(10, 3, 52)) == p.OctetString(b"")  # the key never reads back
    assert g(oper2(11, 3, 52)) == p.Integer(2)  # seconds
    assert g(oper2(12, 3, 52)) == p.Integer(2)  # nopreempt
    assert g(oper2(14, 3, 52)) == p.Integer(1)  # ip
    assert g(oper2(15, 3, 52)) == p.Integer(1)
    s = rt.instances["VI_2"].stats
    for n, name in enumerate(s.__slots__, 1):
        setattr(s, name, n)
    for col, counter in m.V2_STATS_COUNTERS.items():
        value = g((*m.V2_STATS_ENTRY, col, 3, 52))
        assert value == p.Counter32(getattr(s, counter)), counter
    # accessible-for-notify objects are not readable
    assert g((*m.V2_TRAP_PACKET_SRC, 0)) == p.NO_SUCH_OBJECT


def test_whole_view_walk_is_ordered_and_ends(view: m.VrrpMibs) -> None:
    seen = list(view.walk())
    oids = [o for o, _ in seen]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)
    assert oids[0] == (*m.V2_NODE_VERSION, 0)
    assert oids[-1] == stats3(13, 3, 52, 1)
    assert view.next(oids[-1], False, ()) == p.END_OF_MIB_VIEW
    # a walk bounded to the VRRP-MIB stops before VRRPV3-MIB
    last_v2 = max(o for o in oids if o[:7] == m.VRRP_MIB)
    assert view.next(last_v2, False, (1, 3, 6, 1, 2, 1, 69)) == p.END_OF_MIB_VIEW
    assert [r.subtree for r in view.registrations()] == [m.VRRP_MIB, m.VRRPV3_MIB]


def test_only_one_mib(rt: Runtime) -> None:
    only3 = m.VrrpMibs(rt, IFINDEX.get, rfc2787=False)
    assert [r.subtree for r in only3.registrations()] == [m.VRRPV3_MIB]
    assert next(iter(only3.walk()))[0][:7] == m.VRRPV3_MIB
    assert only3.v2_new_master("VI_2") is None


def test_sets_are_not_writable(view: m.VrrpMibs) -> None:
    assert view.test_set(1, oper3(7, 2, 51, 1), p.Gauge32(120)) == p.Error.NOT_WRITABLE
    assert view.test_set(1, (*m.V2_NOTIFICATION_CNTL, 0), p.Integer(2)) == p.Error.NOT_WRITABLE


# --- notifications -----------------------------------------------------------------------------


def test_notifications(rt: Runtime, view: m.VrrpMibs) -> None:
    assert view.v3_new_master("VI_1") == (
        (1, 3, 6, 1, 2, 1, 207, 0, 1),
        [
            p.VarBind(oper3(3, 2, 51, 1), p.OctetString(bytes([198, 18, 0, 1]))),
            p.VarBind(stats3(2, 2, 51, 1), p.Integer(3)),
        ],
    )
    view.note_proto_error("VI_6", "version_err")
    assert view.v3_proto_error("VI_6") == (
        (1, 3, 6, 1, 2, 1, 207, 0, 2),
        [p.VarBind(stats3(6, 2, 51, 2), p.Integer(2))],
    )
    assert view.v2_new_master("VI_2") == (
        (1, 3, 6, 1, 2, 1, 68, 0, 1),
        [p.VarBind(oper2(7, 3, 52), p.IpAddress(bytes([198, 18, 0, 2])))],
    )
    assert view.v2_auth_failure("VI_2", "198.18.1.9", "authtype_mismatch") == (
        (1, 3, 6, 1, 2, 1, 68, 0, 2),
        [
            p.VarBind((1, 3, 6, 1, 2, 1, 68, 1, 5, 0), p.IpAddress(bytes([198, 18, 1, 9]))),
            p.VarBind((1, 3, 6, 1, 2, 1, 68, 1, 6, 0), p.Integer(2)),
        ],
    )
    assert view.v2_new_master("VI_1") is None  # a VRRPv3 instance: not in RFC 2787
    assert view.v3_new_master("VI_NOVIP") is None
    assert view.v2_auth_failure("VI_2", "198.18.1.9", "ip_ttl_err") is None
    quiet = m.VrrpMibs(rt, IFINDEX.get, notifications_enabled=lambda: False)
    assert quiet.v3_new_master("VI_1") is None
    assert quiet.get((*m.V2_NOTIFICATION_CNTL, 0)) == p.Integer(2)


# --- against a real snmpd ----------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, rt: Runtime) -> Iterator[tuple[Snmpd, m.VrrpMibs]]:
    view = m.VrrpMibs(rt, IFINDEX.get, clock=Wall())
    with serving(tmp_path, view, view.registrations(), description="hakeeper VRRP MIBs test") as (
        snmpd,
        _,
    ):
        yield snmpd, view


def test_snmpwalk_vrrpv3_operations_table(served: tuple[Snmpd, m.VrrpMibs]) -> None:
    snmpd, _ = served
    t = ".1.3.6.1.2.1.207.1.1.1.1"
    lines = snmpd.lines("snmpwalk", t)
    rows = {"a": "2.51.1", "b": "2.51.2", "c": "3.52.1"}
    got = {line.split(" = ")[0]: line.split(" = ", 1)[1] for line in lines}
    v6_master = " ".join(f"{b:02X}" for b in ipaddress.ip_address("fe80::2").packed)
    assert list(got) == [f"{t}.{c}.{rows[r]}" for c in range(3, 14) for r in "abc"]
    expected = {
        (3, "a"): "Hex-STRING: C6 12 00 01 ",
        (3, "b"): f"Hex-STRING: {v6_master} ",
        (3, "c"): "Hex-STRING: C6 12 00 02 ",
        (4, "c"): "Hex-STRING: 00 00 00 00 ",
        (5, "a"): "Hex-STRING: 00 00 5E 00 01 33 ",
        (5, "b"): "Hex-STRING: 00 00 5E 00 02 33 ",
        (5, "c"): "Hex-STRING: 00 00 5E 00 01 34 ",
        (6, "a"): "INTEGER: 3",
        (6, "b"): "INTEGER: 2",
        (6, "c"): "INTEGER: 2",
        (7, "a"): "Gauge32: 150",
        (7, "c"): "Gauge32: 100",
        (8, "b"): "INTEGER: 2",
        (9, "a"): "INTEGER: 50",
        (9, "c"): "INTEGER: 200",
        (10, "a"): "INTEGER: 1",
        (10, "c"): "INTEGER: 2",
        (11, "a"): "INTEGER: 1",
        (11, "b"): "INTEGER: 2",
        (13, "a"): "INTEGER: 1",
    }
    for (col, row), text in expected.items():
        assert got[f"{t}.{col}.{rows[row]}"] == text, (col, row)
    for r in "abc":  # the model says they left initialize 30 s ago
        assert got[f"{t}.12.{rows[r]}"] == "Timeticks: (3000) 0:00:30.00"


def test_snmpwalk_whole_view_and_bulk(served: tuple[Snmpd, m.VrrpMibs]) -> None:
    snmpd, view = served
    expected = len(list(view.walk()))
    v2 = snmpd.lines("snmpwalk", ".1.3.6.1.2.1.68")
    v3 = snmpd.lines("snmpbulkwalk", "-Cr7", ".1.3.6.1.2.1.207")
    assert len(v2) + len(v3) == expected
    assert v2[0] == ".1.3.6.1.2.1.68.1.1.0 = INTEGER: 2"
    assert ".1.3.6.1.2.1.68.1.3.1.7.3.52 = IpAddress: 198.18.0.2" in v2
    assert ".1.3.6.1.2.1.207.1.2.1.0 = Counter64: 0" in v3
    assert v3[-1] == ".1.3.6.1.2.1.207.1.2.5.1.13.3.52.1 = Gauge32: 2000"
    got = snmpd.lines(
        "snmpget", ".1.3.6.1.2.1.207.1.1.1.1.6.3.52.1", ".1.3.6.1.2.1.207.1.1.1.1.6.3.99.1"
    )
    assert got == [
        ".1.3.6.1.2.1.207.1.1.1.1.6.3.52.1 = INTEGER: 2",
        ".1.3.6.1.2.1.207.1.1.1.1.6.3.99.1 = No Such Instance currently exists at this OID",
    ]
