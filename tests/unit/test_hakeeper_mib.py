"""HAKEEPER-MIB over a hand-built runtime model: every table's values and row order, checked
against the model and against the D-Bus view of the same objects; walks that end; Sets through
a fake control layer (errors, commit failures, undo); the notifications and their varbinds;
then the view served to a real snmpd by the AgentX subagent, walked and set with the net-snmp
tools (numeric OIDs: net-snmp cannot load the MIB without the IETF base modules)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakeeper import __version__
from hakeeper.config.lvs_model import RealServer, VirtualServer
from hakeeper.config.model import VirtualAddress, VrrpInstance, VrrpSyncGroup
from hakeeper.control import ControlError
from hakeeper.dbus.objects import (
    GroupObject,
    InstanceObject,
    ManagerObject,
    RealServerObject,
    VirtualServerObject,
)
from hakeeper.snmp import mib
from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.pdu import Error
from hakeeper.snmp.hakeeper_mib import HakeeperMib, date_and_time
from hakeeper.state import (
    Event,
    GroupState,
    InstanceState,
    RealServerState,
    Runtime,
    VirtualServerState,
)
from hakeeper.track.tracking import TrackerView
from hakeeper.vrrp.stats import InstanceStats
from tests.unit.test_agentx_snmpd import Snmpd, serving

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
R = mib.ROOT
LONG = "VI_" + "x" * 62  # 65 octets: too long for the instance index (1..64)


def utc(*fields: int) -> bytes:
    """DateAndTime of a UTC time given as year, month, day, hour, minute, second."""
    return struct.pack(">HBBBBBBcBB", *fields, 0, b"+", 0, 0)


def vip(text: str, prefix: int, **kw: Any) -> VirtualAddress:
    return VirtualAddress(ipaddress.ip_address(text), prefix, **kw)


class FakeControl:
    """The control layer's three Set methods: records each call and applies it to the model,
    or refuses with ControlError when told to (to drive commitFailed and undo)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.calls: list[tuple[Any, ...]] = []
        self.refuse: set[str] = set()

    def set_priority(self, name: str, priority: int | None) -> None:
        self.calls.append(("set_priority", name, priority))
        if "set_priority" in self.refuse:
            raise ControlError("Failed", "refused for the test")
        self.rt.instances[name].priority_override = priority

    def rs_enable(self, vs: str, rs: str, enabled: bool) -> None:
        self.calls.append(("rs_enable", vs, rs, enabled))
        if "rs_enable" in self.refuse:
            raise ControlError("NotFound", "refused for the test")
        self.rt.virtual_servers[vs].real_servers[rs].enabled = enabled

    def rs_weight(self, vs: str, rs: str, weight: int | None) -> None:
        self.calls.append(("rs_weight", vs, rs, weight))
        if "rs_weight" in self.refuse:
            raise ControlError("InvalidArgs", "refused for the test")
        self.rt.virtual_servers[vs].real_servers[rs].weight_override = weight


TRACKERS = [
    TrackerView("script", "chk_http", "BAD", -10, False, 1, -10),
    TrackerView("interface", "eth1", "UP", 0, False, None, 0),
    TrackerView("file", "prio", "OK", 5, True, 2, -10, via_group="G1"),
    TrackerView("process", "nginx", "DOWN", 0, False, 0, None),
]


def model() -> Runtime:
    rt = Runtime(
        config_file="/etc/hakeeper/hakeeper.yaml",
        router_id="lab-1",
        started=T0 - 100,
        reloads=3,
        lvs_backend="ipvs",
        global_counters={"vrid_err": 4, "dbus_denied": 2, "reload_failed": 1},
    )
    stats = InstanceStats(advert_rcvd=2**32 + 5, advert_sent=7, become_master=1, checksum_err=2)
    rt.instances["VI_10"] = InstanceState(
        VrrpInstance("VI_10", "eth2", 60, priority=90), InstanceStats(), state="FAULT"
    )
    rt.instances["VI_1"] = InstanceState(
        VrrpInstance(
            "VI_1",
            "eth0",
            51,
            priority=150,
            advert_int=0.5,
            preempt_delay=2.5,
            use_vmac="vrrp.51",
            virtual_ipaddress=(
                vip("198.18.0.100", 24),
                vip("198.18.0.101", 32, dev="eth1", label="eth1:1"),
            ),
            virtual_ipaddress_excluded=(vip("198.18.9.9", 24),),
        ),
        stats,
        state="MASTER",
        effective_priority=140,
        master_address="198.18.0.1",
        master_adver_interval=0.5,
        last_transition=T0 - 30,
        last_reason="master down timer expired",
        vips_present=True,
        sync_group="G1",
        trackers=lambda: TRACKERS,
    )
    rt.instances["VI_2"] = InstanceState(
        VrrpInstance(
            "VI_2",
            "eth1",
            52,
            version=3,
            family=6,
            nopreempt=True,
            virtual_ipaddress=(vip("2001:db8::100", 64),),
        ),
        InstanceStats(),
        state="BACKUP",
        effective_priority=100,
        master_address="fe80::2",
        master_adver_interval=1.0,
        priority_override=120,
        maintenance=True,
        yielding=True,
        sync_group="G1",
        trackers=lambda: [],
    )
    rt.instances[LONG] = InstanceState(VrrpInstance(LONG, "eth0", 70), InstanceStats())
    rt.instances["OWNER"] = InstanceState(
        VrrpInstance("OWNER", "eth0", 80, priority=255), InstanceStats(), state="MASTER"
    )
    rt.groups["G1"] = GroupState(
        VrrpSyncGroup("G1", ("VI_1", "VI_2", "VI_GONE")), state="MASTER", last_reason="VI_1 up"
    )

    ip = ipaddress.ip_address
    a = RealServer(ip("198.18.1.10"), 80, weight=3)
    b = RealServer(ip("198.18.1.9"), 80, weight=2)
    sorry = RealServer(ip("198.18.1.99"), 80)
    web = VirtualServer(
        ip("198.18.0.100"),
        80,
        lvs_sched="wrr",
        lvs_method="DR",
        persistence_timeout=300,
        quorum=3,
        hysteresis=1,
        sorry_server=sorry,
        real_servers=(a, b),
    )
    vs = VirtualServerState(web, quorum_up=True, last_quorum_change=T0 - 60)
    vs.counters = {"conns": 2**40, "inpkts": 10, "outbytes": 99}
    vs.real_servers[a.name] = RealServerState(
        a,
        alive=True,
        in_pool=True,
        pool_weight=3,
        last_change=T0 - 60,
        last_detail="HTTP status 200",
        counters={"conns": 12},
    )
    vs.real_servers[b.name] = RealServerState(
        b, alive=False, failed_checkers={0, 1}, enabled=False, weight_override=7,
        last_detail="connection refused",
    )  # fmt: skip
    vs.sorry_server = RealServerState(sorry, sorry=True)
    rt.virtual_servers[web.name] = vs
    fw = VirtualServer(fwmark=7, protocol="UDP", family=6)
    rt.virtual_servers[fw.name] = VirtualServerState(fw, quorum_up=False, sorry_active=True)
    return rt


@pytest.fixture
def rt() -> Runtime:
    return model()


@pytest.fixture
def control(rt: Runtime) -> FakeControl:
    return FakeControl(rt)


@pytest.fixture
def view(rt: Runtime, control: FakeControl) -> HakeeperMib:
    return HakeeperMib(rt, control, clock=lambda: T0)


def name(text: str) -> tuple[int, ...]:
    return (len(text.encode()), *text.encode())


I1, I2, I10, IOWN = name("VI_1"), name("VI_2"), name("VI_10"), name("OWNER")
WEB, FW = name("198.18.0.100:80/TCP"), name("fwmark:7/UDP")
RS_A, RS_B, RS_SORRY = name("198.18.1.10:80"), name("198.18.1.9:80"), name("198.18.1.99:80")


def col(table: mib.Table, column: str, *index: int) -> tuple[int, ...]:
    return (*table.column_oid(column), *index)


def cells(view: HakeeperMib, table: mib.Table) -> dict[str, dict[tuple[int, ...], p.Value]]:
    """A table as column name -> index -> value, by walking it (so in OID order)."""
    by_subid = {c.subid: c.name for c in table.columns}
    out: dict[str, dict[tuple[int, ...], p.Value]] = {}
    for oid, value in view.walk(table.entry):
        if oid[: len(table.entry)] != table.entry:
            break
        column = by_subid[oid[len(table.entry)]]
        out.setdefault(column, {})[oid[len(table.entry) + 1 :]] = value
    return out


def s(text: str) -> p.OctetString:
    return p.OctetString(text.encode())


def props(obj: Any) -> dict[str, Any]:
    """A D-Bus object's properties, read as the D-Bus service reads them."""
    return {prop.name: prop.get(obj) for prop in obj.interfaces[0].props}


# --- reads -------------------------------------------------------------------------------------


def test_global_scalars(rt: Runtime, view: HakeeperMib) -> None:
    got = {sc.name: view.get((*sc.oid, 0)) for sc in mib.GLOBAL_SCALARS}
    assert got == {
        "hakeeperVersion": s(__version__),
        "hakeeperRouterId": s("lab-1"),
        "hakeeperConfigFile": s("/etc/hakeeper/hakeeper.yaml"),
        "hakeeperStartTime": p.OctetString(utc(2023, 11, 14, 22, 11, 40)),
        "hakeeperUptime": p.TimeTicks(10000),
        "hakeeperReloads": p.Counter32(3),
        "hakeeperReloadFailures": p.Counter32(1),
        "hakeeperLvsBackend": p.Integer(2),
        "hakeeperInstanceCount": p.Gauge32(5),
        "hakeeperSyncGroupCount": p.Gauge32(1),
        "hakeeperVirtualServerCount": p.Gauge32(2),
        "hakeeperVridErrors": p.Counter32(4),
        "hakeeperShortPackets": p.Counter32(0),  # absent from the model's counters: 0
        "hakeeperLvsApplyErrors": p.Counter32(0),
        "hakeeperDbusReconnects": p.Counter32(0),
        "hakeeperDbusDenied": p.Counter32(2),
        "hakeeperDbusBadCalls": p.Counter32(0),
        "hakeeperDbusRefused": p.Counter32(0),
        "hakeeperSnmpSets": p.Counter32(0),
        "hakeeperSnmpSetsRefused": p.Counter32(0),
        "hakeeperAgentxSessions": p.Counter32(0),
        "hakeeperAgentxErrors": p.Counter32(0),
        "hakeeperNotificationsSent": p.Counter32(0),
    }
    rt.lvs_backend = ""
    rt.global_counters["agentx_sessions"] = 2
    assert view.get((*mib.scalar("hakeeperLvsBackend").oid, 0)) == p.Integer(1)
    assert view.get((*mib.scalar("hakeeperAgentxSessions").oid, 0)) == p.Counter32(2)
    # the same facts as D-Bus's Manager
    manager = props(ManagerObject(rt, None))  # type: ignore[arg-type]
    assert got["hakeeperVersion"] == s(manager["Version"])
    assert got["hakeeperRouterId"] == s(manager["RouterId"])
    assert got["hakeeperReloads"] == p.Counter32(manager["Reloads"])
    assert got["hakeeperStartTime"] == p.OctetString(date_and_time(manager["StartTime"]))


def test_instance_table_rows_in_index_order_and_long_names_left_out(view: HakeeperMib) -> None:
    t = cells(view, mib.INSTANCE_TABLE)
    # shorter names first, then octet by octet; LONG does not fit the index
    assert list(t["hakeeperInstanceState"]) == [I1, I2, IOWN, I10]
    assert list(t) == [c.name for c in mib.INSTANCE_TABLE.readable()]
    assert "hakeeperInstancePreviousState" not in t  # accessible-for-notify: only in traps
    assert all(list(rows) == [I1, I2, IOWN, I10] for rows in t.values())


def test_instance_values(view: HakeeperMib) -> None:
    t = cells(view, mib.INSTANCE_TABLE)
    one = {c: rows[I1] for c, rows in t.items()}
    assert one == {
        "hakeeperInstanceState": p.Integer(2),
        "hakeeperInstanceVrid": p.Gauge32(51),
        "hakeeperInstanceInterface": s("eth0"),
        "hakeeperInstanceVmacInterface": s("vrrp.51"),
        "hakeeperInstanceFamily": p.Integer(1),
        "hakeeperInstanceVersion": p.Integer(2),
        "hakeeperInstanceBasePriority": p.Gauge32(150),
        "hakeeperInstanceConfigPriority": p.Gauge32(150),
        "hakeeperInstancePriority": p.Gauge32(140),
        "hakeeperInstancePriorityOverride": p.Gauge32(0),
        "hakeeperInstanceAdvertInt": p.Gauge32(50),
        "hakeeperInstanceMasterAdvertInt": p.Gauge32(50),
        "hakeeperInstancePreempt": p.Integer(1),
        "hakeeperInstancePreemptDelay": p.Gauge32(250),
        "hakeeperInstanceMasterAddress": s("198.18.0.1"),
        "hakeeperInstanceSyncGroup": s("G1"),
        "hakeeperInstanceMaintenance": p.Integer(2),
        "hakeeperInstanceYielding": p.Integer(2),
        "hakeeperInstanceVipsPresent": p.Integer(1),
        "hakeeperInstanceLastTransition": p.OctetString(utc(2023, 11, 14, 22, 12, 50)),
        "hakeeperInstanceLastReason": s("master down timer expired"),
        "hakeeperInstanceAdvertRcvd": p.Counter32(5),  # 2**32 + 5 wrapped
        "hakeeperInstanceAdvertSent": p.Counter32(7),
        "hakeeperInstanceBecomeMaster": p.Counter32(1),
        "hakeeperInstanceReleaseMaster": p.Counter32(0),
        "hakeeperInstancePriZeroRcvd": p.Counter32(0),
        "hakeeperInstancePriZeroSent": p.Counter32(0),
        "hakeeperInstanceAuthFailures": p.Counter32(0),
        "hakeeperInstanceInvalidAuthType": p.Counter32(0),
        "hakeeperInstanceAuthTypeMismatch": p.Counter32(0),
        "hakeeperInstanceInvalidTypeRcvd": p.Counter32(0),
        "hakeeperInstanceIpTtlErrors": p.Counter32(0),
        "hakeeperInstanceAddrListErrors": p.Counter32(0),
        "hakeeperInstancePacketLenErrors": p.Counter32(0),
        "hakeeperInstanceAdvertIntErrors": p.Counter32(0),
        "hakeeperInstanceVersionErrors": p.Counter32(0),
        "hakeeperInstanceChecksumErrors": p.Counter32(2),
        "hakeeperInstanceVridErrors": p.Counter32(0),
    }
    two = {c: rows[I2] for c, rows in t.items()}
    assert two["hakeeperInstanceState"] == p.Integer(1)
    assert two["hakeeperInstanceFamily"] == p.Integer(2)
    assert two["hakeeperInstanceVersion"] == p.Integer(3)
    assert two["hakeeperInstanceBasePriority"] == p.Gauge32(120)
    assert two["hakeeperInstancePriorityOverride"] == p.Gauge32(120)
    assert two["hakeeperInstanceVmacInterface"] == s("")
    assert two["hakeeperInstancePreempt"] == p.Integer(2)
    assert two["hakeeperInstanceMaintenance"] == two["hakeeperInstanceYielding"] == p.Integer(1)
    assert two["hakeeperInstanceLastTransition"] == p.OctetString(mib.DATE_NONE)
    assert t["hakeeperInstanceState"][I10] == p.Integer(3)  # FAULT
    assert t["hakeeperInstanceMasterAddress"][I10] == s("")


def test_instance_values_equal_the_dbus_properties(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    t = cells(view, mib.INSTANCE_TABLE)
    states = dict(mib.VRRP_STATE)
    for name_, index in (("VI_1", I1), ("VI_2", I2), ("VI_10", I10), ("OWNER", IOWN)):
        d = props(InstanceObject(rt, control, name_))  # type: ignore[arg-type]
        row = {c: rows[index] for c, rows in t.items()}
        assert row["hakeeperInstanceState"] == p.Integer(states[d["State"].lower()])
        assert row["hakeeperInstanceBasePriority"] == p.Gauge32(d["BasePriority"])
        assert row["hakeeperInstanceConfigPriority"] == p.Gauge32(d["ConfigPriority"])
        assert row["hakeeperInstancePriority"] == p.Gauge32(d["EffectivePriority"])
        assert (row["hakeeperInstancePriorityOverride"] != p.Gauge32(0)) == d["PriorityOverridden"]
        assert row["hakeeperInstanceVrid"] == p.Gauge32(d["VRID"])
        assert row["hakeeperInstanceInterface"] == s(d["Interface"])
        assert row["hakeeperInstanceVmacInterface"] == s(d["VmacInterface"])
        assert row["hakeeperInstanceFamily"] == p.Integer(dict(mib.FAMILY)[d["Family"].lower()])
        assert row["hakeeperInstanceVersion"] == p.Integer(d["Version"])
        assert row["hakeeperInstanceAdvertInt"] == p.Gauge32(round(d["AdvertInterval"] * 100))
        assert row["hakeeperInstanceMasterAdvertInt"] == p.Gauge32(
            round(d["MasterAdvertInterval"] * 100)
        )
        assert row["hakeeperInstancePreemptDelay"] == p.Gauge32(round(d["PreemptDelay"] * 100))
        assert row["hakeeperInstanceMasterAddress"] == s(d["MasterAddress"])
        assert row["hakeeperInstanceSyncGroup"] == s(d["SyncGroup"])
        assert row["hakeeperInstanceLastReason"] == s(d["LastReason"])
        assert row["hakeeperInstanceLastTransition"] == p.OctetString(
            date_and_time(d["LastTransition"])
        )
        truth = {True: p.Integer(1), False: p.Integer(2)}
        assert row["hakeeperInstancePreempt"] == truth[d["Preempt"]]
        assert row["hakeeperInstanceMaintenance"] == truth[d["Maintenance"]]
        assert row["hakeeperInstanceYielding"] == truth[d["Yielding"]]
        counters = d["Counters"]
        for c in mib.INSTANCE_TABLE.columns:
            if c.source is not None:
                assert row[c.name] == p.Counter32(counters[c.source] % 2**32), c.name


def test_vip_table(view: HakeeperMib) -> None:
    t = cells(view, mib.VIP_TABLE)
    rows = [(*I1, 1), (*I1, 2), (*I1, 3), (*I2, 1)]
    assert list(t["hakeeperVipAddress"]) == rows
    assert [t["hakeeperVipAddress"][r] for r in rows] == [
        s("198.18.0.100"), s("198.18.0.101"), s("198.18.9.9"), s("2001:db8::100"),
    ]  # fmt: skip
    assert [t["hakeeperVipFamily"][r] for r in rows] == [p.Integer(i) for i in (1, 1, 1, 2)]
    assert [t["hakeeperVipPrefixLength"][r] for r in rows] == [
        p.Gauge32(i) for i in (24, 32, 24, 64)
    ]
    assert [t["hakeeperVipInterface"][r] for r in rows] == [
        s("eth0"), s("eth1"), s("eth0"), s("eth1"),
    ]  # fmt: skip
    assert [t["hakeeperVipLabel"][r] for r in rows] == [s(""), s("eth1:1"), s(""), s("")]
    assert [t["hakeeperVipExcluded"][r] for r in rows] == [p.Integer(i) for i in (2, 2, 1, 2)]
    assert [t["hakeeperVipPresent"][r] for r in rows] == [p.Integer(i) for i in (1, 1, 1, 2)]


def test_tracker_table_equals_the_dbus_trackers(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    t = cells(view, mib.TRACKER_TABLE)
    rows = [(*I1, i) for i in (1, 2, 3, 4)]
    assert list(t["hakeeperTrackerKind"]) == rows  # VI_2 has none, VI_10 no tracker view
    got = [tuple(t[c.name][r] for c in mib.TRACKER_TABLE.readable()) for r in rows]
    assert got == [
        (p.Integer(1), s("chk_http"), p.Integer(3), p.Integer(-10), p.Integer(2), p.Integer(1),
         p.Integer(1), p.Integer(-10), p.Integer(2), s("")),
        (p.Integer(2), s("eth1"), p.Integer(5), p.Integer(0), p.Integer(2), p.Integer(2),
         p.Integer(0), p.Integer(0), p.Integer(2), s("")),
        (p.Integer(3), s("prio"), p.Integer(8), p.Integer(5), p.Integer(1), p.Integer(1),
         p.Integer(2), p.Integer(-10), p.Integer(2), s("G1")),
        (p.Integer(4), s("nginx"), p.Integer(6), p.Integer(0), p.Integer(2), p.Integer(1),
         p.Integer(0), p.Integer(0), p.Integer(1), s("")),
    ]  # fmt: skip
    # D-Bus Instance.Trackers: (kind, name, state, weight, reverse, has value, value,
    # contribution, via group), the same facts
    dbus = props(InstanceObject(rt, control, "VI_1"))["Trackers"]  # type: ignore[arg-type]
    kinds = dict(mib.TRACKER_TABLE.column("hakeeperTrackerKind").enum or ())
    for (kind, nm, state, weight, reverse, has, value, contrib, via), r in zip(
        dbus, rows, strict=True
    ):
        assert t["hakeeperTrackerKind"][r] == p.Integer(kinds[kind])
        assert t["hakeeperTrackerName"][r] == s(nm)
        assert t["hakeeperTrackerState"][r] == p.Integer(mib.TRACKER_STATE[state.lower()])
        assert t["hakeeperTrackerWeight"][r] == p.Integer(weight)
        assert t["hakeeperTrackerReverse"][r] == p.Integer(1 if reverse else 2)
        assert t["hakeeperTrackerHasValue"][r] == p.Integer(1 if has else 2)
        assert t["hakeeperTrackerValue"][r] == p.Integer(value)
        assert t["hakeeperTrackerContribution"][r] == p.Integer(contrib)
        assert t["hakeeperTrackerViaGroup"][r] == s(via)


def test_sync_group_and_member_tables(rt: Runtime, view: HakeeperMib, control: Any) -> None:
    g = cells(view, mib.SYNC_GROUP_TABLE)
    G1 = name("G1")
    assert g == {
        "hakeeperSyncGroupState": {G1: p.Integer(2)},
        "hakeeperSyncGroupMemberCount": {G1: p.Gauge32(3)},
        "hakeeperSyncGroupLastReason": {G1: s("VI_1 up")},
    }
    d = props(GroupObject(rt, control, "G1"))
    assert g["hakeeperSyncGroupState"][G1] == p.Integer(mib.VRRP_STATE[d["State"].lower()])
    m = cells(view, mib.SYNC_GROUP_MEMBER_TABLE)
    assert m["hakeeperSyncGroupMemberInstance"] == {
        (*G1, i + 1): s(n) for i, n in enumerate(d["Members"])
    }
    # a member that runs no instance has no state to show
    assert m["hakeeperSyncGroupMemberState"] == {(*G1, 1): p.Integer(2), (*G1, 2): p.Integer(1)}


def test_virtual_server_table_equals_the_dbus_properties(rt: Runtime, view: HakeeperMib) -> None:
    t = cells(view, mib.VIRTUAL_SERVER_TABLE)
    assert list(t["hakeeperVirtualServerFamily"]) == [FW, WEB]  # 12 octets before 19
    web = {c: rows[WEB] for c, rows in t.items()}
    assert web == {
        "hakeeperVirtualServerFamily": p.Integer(1),
        "hakeeperVirtualServerAddress": s("198.18.0.100"),
        "hakeeperVirtualServerPort": p.Gauge32(80),
        "hakeeperVirtualServerFwmark": p.Gauge32(0),
        "hakeeperVirtualServerGroup": s(""),
        "hakeeperVirtualServerProtocol": p.Integer(6),
        "hakeeperVirtualServerScheduler": s("wrr"),
        "hakeeperVirtualServerMethod": p.Integer(2),
        "hakeeperVirtualServerPersistence": p.Gauge32(300),
        "hakeeperVirtualServerQuorum": p.Gauge32(3),
        "hakeeperVirtualServerHysteresis": p.Gauge32(1),
        "hakeeperVirtualServerQuorumState": p.Integer(1),
        "hakeeperVirtualServerSorryServer": s("198.18.1.99:80"),
        "hakeeperVirtualServerSorryActive": p.Integer(2),
        "hakeeperVirtualServerAliveWeight": p.Gauge32(3),
        "hakeeperVirtualServerRsTotal": p.Gauge32(2),
        "hakeeperVirtualServerRsAlive": p.Gauge32(1),
        "hakeeperVirtualServerQuorumTime": p.OctetString(utc(2023, 11, 14, 22, 12, 20)),
        "hakeeperVirtualServerConns": p.Counter64(2**40),
        "hakeeperVirtualServerInPkts": p.Counter64(10),
        "hakeeperVirtualServerOutPkts": p.Counter64(0),
        "hakeeperVirtualServerInBytes": p.Counter64(0),
        "hakeeperVirtualServerOutBytes": p.Counter64(99),
    }
    fw = {c: rows[FW] for c, rows in t.items()}
    assert fw["hakeeperVirtualServerFamily"] == p.Integer(2)
    assert fw["hakeeperVirtualServerAddress"] == s("")
    assert fw["hakeeperVirtualServerFwmark"] == p.Gauge32(7)
    assert fw["hakeeperVirtualServerProtocol"] == p.Integer(17)
    assert fw["hakeeperVirtualServerQuorumState"] == p.Integer(2)
    assert fw["hakeeperVirtualServerSorryActive"] == p.Integer(1)
    assert fw["hakeeperVirtualServerQuorumTime"] == p.OctetString(mib.DATE_NONE)
    for vs_name, index in (("198.18.0.100:80/TCP", WEB), ("fwmark:7/UDP", FW)):
        d = props(VirtualServerObject(rt, vs_name))
        row = {c: rows[index] for c, rows in t.items()}
        assert row["hakeeperVirtualServerAddress"] == s(d["Address"])
        assert row["hakeeperVirtualServerPort"] == p.Gauge32(d["Port"])
        assert row["hakeeperVirtualServerFwmark"] == p.Gauge32(d["Fwmark"])
        assert row["hakeeperVirtualServerGroup"] == s(d["Group"])
        assert row["hakeeperVirtualServerScheduler"] == s(d["Scheduler"])
        assert row["hakeeperVirtualServerQuorum"] == p.Gauge32(d["Quorum"])
        assert row["hakeeperVirtualServerHysteresis"] == p.Gauge32(d["Hysteresis"])
        assert row["hakeeperVirtualServerQuorumState"] == p.Integer(1 if d["QuorumUp"] else 2)
        assert row["hakeeperVirtualServerSorryServer"] == s(d["SorryServer"])
        assert row["hakeeperVirtualServerAliveWeight"] == p.Gauge32(d["AliveWeight"])
        assert row["hakeeperVirtualServerPersistence"] == p.Gauge32(d["PersistenceTimeout"])
        assert row["hakeeperVirtualServerConns"] == p.Counter64(d["Counters"].get("conns", 0))


def test_real_server_table_equals_the_dbus_properties(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    t = cells(view, mib.REAL_SERVER_TABLE)
    # "198.18.1.9:80" (13 octets) before "198.18.1.10:80" (14): length first
    assert list(t["hakeeperRealServerState"]) == [(*WEB, *RS_B), (*WEB, *RS_A), (*WEB, *RS_SORRY)]
    a = {c: rows[(*WEB, *RS_A)] for c, rows in t.items()}
    assert a == {
        "hakeeperRealServerFamily": p.Integer(1),
        "hakeeperRealServerAddress": s("198.18.1.10"),
        "hakeeperRealServerPort": p.Gauge32(80),
        "hakeeperRealServerState": p.Integer(1),
        "hakeeperRealServerEnabled": p.Integer(1),
        "hakeeperRealServerWeight": p.Integer(3),
        "hakeeperRealServerConfigWeight": p.Integer(3),
        "hakeeperRealServerWeightSet": p.Integer(2),
        "hakeeperRealServerInPool": p.Integer(1),
        "hakeeperRealServerPoolWeight": p.Integer(3),
        "hakeeperRealServerSorryServer": p.Integer(2),
        "hakeeperRealServerLastChange": p.OctetString(utc(2023, 11, 14, 22, 12, 20)),
        "hakeeperRealServerLastDetail": s("HTTP status 200"),
        "hakeeperRealServerFailedCheckers": p.Gauge32(0),
        "hakeeperRealServerConns": p.Counter64(12),
        "hakeeperRealServerInPkts": p.Counter64(0),
        "hakeeperRealServerOutPkts": p.Counter64(0),
        "hakeeperRealServerInBytes": p.Counter64(0),
        "hakeeperRealServerOutBytes": p.Counter64(0),
    }
    b = {c: rows[(*WEB, *RS_B)] for c, rows in t.items()}
    assert b["hakeeperRealServerState"] == p.Integer(2)
    assert b["hakeeperRealServerEnabled"] == p.Integer(2)
    assert b["hakeeperRealServerWeight"] == p.Integer(7)
    assert b["hakeeperRealServerConfigWeight"] == p.Integer(2)
    assert b["hakeeperRealServerWeightSet"] == p.Integer(1)
    assert b["hakeeperRealServerPoolWeight"] == p.Integer(-1)
    assert b["hakeeperRealServerFailedCheckers"] == p.Gauge32(2)
    assert t["hakeeperRealServerSorryServer"][(*WEB, *RS_SORRY)] == p.Integer(1)
    vs = "198.18.0.100:80/TCP"
    for rs_name, index in (("198.18.1.10:80", RS_A), ("198.18.1.9:80", RS_B)):
        d = props(RealServerObject(rt, control, vs, rs_name))  # type: ignore[arg-type]
        row = {c: rows[(*WEB, *index)] for c, rows in t.items()}
        assert row["hakeeperRealServerAddress"] == s(d["Address"])
        assert row["hakeeperRealServerPort"] == p.Gauge32(d["Port"])
        assert row["hakeeperRealServerState"] == p.Integer(1 if d["Alive"] else 2)
        assert row["hakeeperRealServerEnabled"] == p.Integer(1 if d["Enabled"] else 2)
        assert row["hakeeperRealServerWeight"] == p.Integer(d["Weight"])
        assert row["hakeeperRealServerConfigWeight"] == p.Integer(d["ConfigWeight"])
        assert row["hakeeperRealServerWeightSet"] == p.Integer(1 if d["WeightOverridden"] else 2)
        assert row["hakeeperRealServerInPool"] == p.Integer(1 if d["InPool"] else 2)
        assert row["hakeeperRealServerPoolWeight"] == p.Integer(d["PoolWeight"])
        assert row["hakeeperRealServerLastDetail"] == s(d["LastDetail"])
        assert row["hakeeperRealServerLastChange"] == p.OctetString(date_and_time(d["LastChange"]))
        assert row["hakeeperRealServerConns"] == p.Counter64(d["Counters"].get("conns", 0))


def test_values_are_read_live_and_rows_follow_the_events(rt: Runtime, view: HakeeperMib) -> None:
    state = col(mib.INSTANCE_TABLE, "hakeeperInstanceState", *I1)
    assert view.get(state) == p.Integer(2)
    rt.instances["VI_1"].state = "BACKUP"  # no event: a value is never cached
    assert view.get(state) == p.Integer(1)
    vs = rt.virtual_servers["198.18.0.100:80/TCP"]
    vs.counters["conns"] += 1
    assert view.get(col(mib.VIRTUAL_SERVER_TABLE, "hakeeperVirtualServerConns", *WEB)) == (
        p.Counter64(2**40 + 1)
    )
    # a reload replaces the model's objects: rows are names, so they read the new ones
    rt.virtual_servers["198.18.0.100:80/TCP"] = VirtualServerState(vs.config, quorum_up=False)
    assert view.get(col(mib.VIRTUAL_SERVER_TABLE, "hakeeperVirtualServerQuorumState", *WEB)) == (
        p.Integer(2)
    )
    # a new instance shows once its event says so
    rt.instances["VI_3"] = InstanceState(VrrpInstance("VI_3", "eth0", 53), InstanceStats())
    vi3 = col(mib.INSTANCE_TABLE, "hakeeperInstanceState", *name("VI_3"))
    assert view.get(vi3) == p.NO_SUCH_INSTANCE
    rt.emit("instance", "VI_3", "added")
    assert view.get(vi3) == p.Integer(0)
    del rt.instances["VI_3"]
    assert view.get(vi3) == p.NO_SUCH_INSTANCE  # gone before its event: the cell is left out
    rt.emit("instance", "VI_3", "removed")
    assert list(cells(view, mib.INSTANCE_TABLE)["hakeeperInstanceState"]) == [I1, I2, IOWN, I10]


def test_gets_of_what_is_not_there(view: HakeeperMib) -> None:
    e = mib.INSTANCE_TABLE.entry
    assert view.get((*e, 2, *name("NOPE"))) == p.NO_SUCH_INSTANCE
    assert view.get((*e, 23, *I1)) == p.NO_SUCH_OBJECT  # PreviousState: notifications only
    assert view.get((*e, 1, *I1)) == p.NO_SUCH_OBJECT  # the index is not-accessible
    assert view.get((*mib.scalar("hakeeperVersion").oid, 1)) == p.NO_SUCH_INSTANCE
    assert view.get((*mib.NOTIFICATIONS, 1)) == p.NO_SUCH_OBJECT


def test_walk_is_ordered_covers_the_mib_and_ends(view: HakeeperMib) -> None:
    walked = list(view.walk())
    oids = [oid for oid, _ in walked]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)
    assert oids[0] == (*mib.scalar("hakeeperVersion").oid, 0)
    assert oids[-1] == col(mib.REAL_SERVER_TABLE, "hakeeperRealServerOutBytes", *WEB, *RS_SORRY)
    assert all(oid[: len(R)] == R for oid in oids)
    # every readable object has an instance in the walk
    served = {oid[: len(mib.GLOBAL) + 1] for oid in oids if oid[: len(mib.GLOBAL)] == mib.GLOBAL}
    assert served == {sc.oid for sc in mib.GLOBAL_SCALARS}
    for table in mib.TABLES:
        have = {oid[len(table.entry)] for oid in oids if oid[: len(table.entry)] == table.entry}
        assert have == {c.subid for c in table.readable()}, table.name
    assert view.next(oids[-1], False, ()) == p.END_OF_MIB_VIEW
    assert view.next(oids[-1], True, ()) == walked[-1]
    # a bounded search stops at its end
    vip_entry = mib.VIP_TABLE.entry
    assert view.next(col(mib.INSTANCE_TABLE, "hakeeperInstanceVridErrors", *I10), False,
                     vip_entry) == p.END_OF_MIB_VIEW  # fmt: skip
    assert view.next((*mib.CONFORMANCE,), True, ()) == p.END_OF_MIB_VIEW


# --- Sets ------------------------------------------------------------------------------------


def set_request(view: HakeeperMib, tx: int, *varbinds: tuple[tuple[int, ...], p.Value]) -> int:
    """An SNMP Set as the master agent runs it: TestSet each varbind, then CommitSet each,
    UndoSet the committed ones when a commit fails, then CleanupSet. The first error."""
    for oid, value in varbinds:
        error = view.test_set(tx, oid, value)
        if error:
            view.cleanup_set(tx)
            return error
    done = []
    for oid, value in varbinds:
        error = view.commit_set(tx, oid, value)
        if error:
            for u_oid, u_value in reversed(done):
                assert view.undo_set(tx, u_oid, u_value) == Error.NO_ERROR
            view.cleanup_set(tx)
            return error
        done.append((oid, value))
    view.cleanup_set(tx)
    return Error.NO_ERROR


OVERRIDE_1 = col(mib.INSTANCE_TABLE, "hakeeperInstancePriorityOverride", *I1)
OVERRIDE_2 = col(mib.INSTANCE_TABLE, "hakeeperInstancePriorityOverride", *I2)
VS = "198.18.0.100:80/TCP"


def rs_col(column: str, rs: tuple[int, ...]) -> tuple[int, ...]:
    return col(mib.REAL_SERVER_TABLE, column, *WEB, *rs)


def test_priority_override_set_and_reset(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    assert set_request(view, 1, (OVERRIDE_1, p.Gauge32(200))) == Error.NO_ERROR
    assert control.calls == [("set_priority", "VI_1", 200)]
    assert view.get(OVERRIDE_1) == p.Gauge32(200)
    assert view.get(col(mib.INSTANCE_TABLE, "hakeeperInstanceBasePriority", *I1)) == p.Gauge32(200)
    assert props(InstanceObject(rt, control, "VI_1"))["BasePriority"] == 200  # type: ignore[arg-type]
    assert set_request(view, 2, (OVERRIDE_1, p.Gauge32(0))) == Error.NO_ERROR
    assert control.calls[-1] == ("set_priority", "VI_1", None)
    assert rt.instances["VI_1"].priority_override is None
    assert rt.global_counters["snmp_set"] == 2


@pytest.mark.parametrize(
    ("oid", "value", "error"),
    [
        (OVERRIDE_1, p.Integer(100), Error.WRONG_TYPE),  # Unsigned32 travels as Gauge32
        (OVERRIDE_1, p.OctetString(b"100"), Error.WRONG_TYPE),
        (OVERRIDE_1, p.Gauge32(255), Error.WRONG_VALUE),
        (col(mib.INSTANCE_TABLE, "hakeeperInstancePriorityOverride", *IOWN), p.Gauge32(100),
         Error.INCONSISTENT_VALUE),  # the address owner stays 255
        (col(mib.INSTANCE_TABLE, "hakeeperInstancePriorityOverride", *name("NOPE")),
         p.Gauge32(100), Error.NO_CREATION),
        (col(mib.INSTANCE_TABLE, "hakeeperInstanceBasePriority", *I1), p.Gauge32(100),
         Error.NOT_WRITABLE),
        ((*mib.scalar("hakeeperRouterId").oid, 0), s("x"), Error.NOT_WRITABLE),
        (rs_col("hakeeperRealServerEnabled", RS_A), p.Integer(3), Error.WRONG_VALUE),
        (rs_col("hakeeperRealServerEnabled", RS_A), p.Gauge32(1), Error.WRONG_TYPE),
        (rs_col("hakeeperRealServerWeight", RS_A), p.Integer(65536), Error.WRONG_VALUE),
        (rs_col("hakeeperRealServerWeight", RS_A), p.Integer(-1), Error.WRONG_VALUE),
        (rs_col("hakeeperRealServerWeight", RS_A), p.Gauge32(5), Error.WRONG_TYPE),
        (rs_col("hakeeperRealServerWeightSet", RS_A), p.Integer(1), Error.WRONG_VALUE),
        (rs_col("hakeeperRealServerWeight", RS_SORRY), p.Integer(5), Error.NOT_WRITABLE),
        (rs_col("hakeeperRealServerWeight", name("198.18.1.1:80")), p.Integer(5),
         Error.NO_CREATION),
        (rs_col("hakeeperRealServerInPool", RS_A), p.Integer(1), Error.NOT_WRITABLE),
    ],
)  # fmt: skip
def test_set_refusals_change_nothing(
    rt: Runtime,
    view: HakeeperMib,
    control: FakeControl,
    oid: tuple[int, ...],
    value: p.Value,
    error: int,
) -> None:
    before = list(view.walk())
    assert set_request(view, 7, (oid, value)) == error
    assert control.calls == []
    after = dict(view.walk())  # nothing moved but the refusal counter
    for o, v in before:
        if o != (*mib.scalar("hakeeperSnmpSetsRefused").oid, 0):
            assert after[o] == v, o
    assert rt.global_counters == {"vrid_err": 4, "dbus_denied": 2, "reload_failed": 1,
                                  "snmp_set_refused": 1}  # fmt: skip


def test_real_server_sets(rt: Runtime, view: HakeeperMib, control: FakeControl) -> None:
    b = rt.virtual_servers[VS].real_servers["198.18.1.9:80"]
    assert set_request(view, 1, (rs_col("hakeeperRealServerEnabled", RS_B), p.Integer(1))) == 0
    assert set_request(view, 2, (rs_col("hakeeperRealServerWeight", RS_A), p.Integer(65535))) == 0
    assert set_request(view, 3, (rs_col("hakeeperRealServerWeightSet", RS_B), p.Integer(2))) == 0
    assert control.calls == [
        ("rs_enable", VS, "198.18.1.9:80", True),
        ("rs_weight", VS, "198.18.1.10:80", 65535),
        ("rs_weight", VS, "198.18.1.9:80", None),
    ]
    assert b.enabled and b.weight_override is None
    assert view.get(rs_col("hakeeperRealServerWeight", RS_A)) == p.Integer(65535)
    assert view.get(rs_col("hakeeperRealServerWeightSet", RS_A)) == p.Integer(1)
    assert view.get(rs_col("hakeeperRealServerWeight", RS_B)) == p.Integer(2)  # the config's
    d = props(RealServerObject(rt, control, VS, "198.18.1.10:80"))  # type: ignore[arg-type]
    assert (d["Weight"], d["WeightOverridden"]) == (65535, True)


def test_a_failed_commit_undoes_the_earlier_varbinds(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    control.refuse.add("set_priority")
    error = set_request(
        view,
        9,
        (rs_col("hakeeperRealServerWeight", RS_B), p.Integer(40)),
        (rs_col("hakeeperRealServerEnabled", RS_A), p.Integer(2)),
        (OVERRIDE_2, p.Gauge32(30)),  # the control layer refuses this one at commit
    )
    assert error == Error.COMMIT_FAILED
    assert control.calls == [
        ("rs_weight", VS, "198.18.1.9:80", 40),
        ("rs_enable", VS, "198.18.1.10:80", False),
        ("set_priority", "VI_2", 30),
        ("rs_enable", VS, "198.18.1.10:80", True),  # undone, last first
        ("rs_weight", VS, "198.18.1.9:80", 7),  # back to the operator's earlier weight
    ]
    web = rt.virtual_servers[VS]
    assert web.real_servers["198.18.1.9:80"].weight_override == 7
    assert web.real_servers["198.18.1.10:80"].enabled
    assert rt.instances["VI_2"].priority_override == 120
    assert rt.global_counters.get("snmp_set_refused") == 1
    assert "snmp_set" not in rt.global_counters


def test_undo_of_a_priority_override_restores_the_earlier_one(
    rt: Runtime, view: HakeeperMib, control: FakeControl
) -> None:
    control.refuse.add("rs_weight")
    error = set_request(
        view,
        4,
        (OVERRIDE_2, p.Gauge32(0)),
        (rs_col("hakeeperRealServerWeight", RS_A), p.Integer(1)),
    )
    assert error == Error.COMMIT_FAILED
    assert control.calls[-1] == ("set_priority", "VI_2", 120)
    assert rt.instances["VI_2"].priority_override == 120


# --- notifications ---------------------------------------------------------------------------


def router_id() -> p.VarBind:
    return p.VarBind((*mib.scalar("hakeeperRouterId").oid, 0), s("lab-1"))


def test_instance_state_change(rt: Runtime, view: HakeeperMib) -> None:
    inst = rt.instances["VI_1"]
    inst.state, inst.last_reason, inst.effective_priority = "BACKUP", "higher priority advert", 0
    inst.master_address = "198.18.0.2"
    assert len(view.notifications_for(Event("instance", "VI_1", ("state",)))) == 1
    i = mib.INSTANCE_TABLE
    inst.state = "FAULT"
    ev = Event("instance", "VI_1", ("state",))
    assert view.notifications_for(ev) == [
        (
            (*R, 0, 1),
            [
                p.VarBind(col(i, "hakeeperInstanceState", *I1), p.Integer(3)),
                p.VarBind(col(i, "hakeeperInstancePreviousState", *I1), p.Integer(1)),
                p.VarBind(col(i, "hakeeperInstanceLastReason", *I1), s("higher priority advert")),
                p.VarBind(col(i, "hakeeperInstancePriority", *I1), p.Gauge32(0)),
                p.VarBind(col(i, "hakeeperInstanceMasterAddress", *I1), s("198.18.0.2")),
                p.VarBind(col(i, "hakeeperInstanceVrid", *I1), p.Gauge32(51)),
                p.VarBind(col(i, "hakeeperInstanceInterface", *I1), s("eth0")),
                router_id(),
            ],
        )
    ]
    # asked again for the same event, the same answer (an embedded agent and AgentX may ask)
    assert view.notifications_for(ev) == view.notifications_for(ev) != []
    rt.emit("instance", "VI_1", "state")  # no change since: nothing
    assert view.notifications_for(Event("instance", "VI_1", ("state",))) == []


@pytest.mark.parametrize("daemon_first", [False, True])
def test_notifications_for_emitted_events_in_either_listener_order(
    rt: Runtime, control: FakeControl, daemon_first: bool
) -> None:
    """The daemon's listener may run before or after this view's own: the old state is not
    lost either way."""
    got: list[Any] = []
    views: list[HakeeperMib] = []
    if daemon_first:
        rt.subscribe(lambda ev: got.extend(views[0].notifications_for(ev)))
    view = HakeeperMib(rt, control, clock=lambda: T0)
    views.append(view)
    if not daemon_first:
        rt.subscribe(lambda ev: got.extend(view.notifications_for(ev)))
    rt.instances["VI_2"].state = "MASTER"
    rt.emit("instance", "VI_2", "state")
    rt.groups["G1"].state, rt.groups["G1"].last_reason = "BACKUP", "VI_2 down"
    rt.emit("group", "G1", "state")
    rt.emit("instance", "VI_2", "trackers")  # not a state event: nothing
    g = mib.SYNC_GROUP_TABLE
    G1 = name("G1")
    assert [trap for trap, _ in got] == [(*R, 0, 1), (*R, 0, 2)]
    assert got[0][1][:2] == [
        p.VarBind(col(mib.INSTANCE_TABLE, "hakeeperInstanceState", *I2), p.Integer(2)),
        p.VarBind(col(mib.INSTANCE_TABLE, "hakeeperInstancePreviousState", *I2), p.Integer(1)),
    ]
    assert got[1][1] == [
        p.VarBind(col(g, "hakeeperSyncGroupState", *G1), p.Integer(1)),
        p.VarBind(col(g, "hakeeperSyncGroupPreviousState", *G1), p.Integer(2)),
        p.VarBind(col(g, "hakeeperSyncGroupLastReason", *G1), s("VI_2 down")),
        router_id(),
    ]


def test_an_added_instance_starts_from_init(rt: Runtime, view: HakeeperMib) -> None:
    rt.instances["VI_3"] = InstanceState(VrrpInstance("VI_3", "eth0", 53), InstanceStats())
    rt.emit("instance", "VI_3", "added")
    assert view.notifications_for(Event("instance", "VI_3", ("added",))) == []
    rt.instances["VI_3"].state = "BACKUP"
    [(_, varbinds)] = view.notifications_for(Event("instance", "VI_3", ("state",)))
    assert varbinds[1] == p.VarBind(
        col(mib.INSTANCE_TABLE, "hakeeperInstancePreviousState", *name("VI_3")), p.Integer(0)
    )
    # an instance whose name does not fit the index has no varbinds to carry
    rt.instances[LONG].state = "BACKUP"
    assert view.notifications_for(Event("instance", LONG, ("state",))) == []


def test_real_server_up_and_down(rt: Runtime, view: HakeeperMib) -> None:
    web = rt.virtual_servers[VS]
    b = web.real_servers["198.18.1.9:80"]
    b.alive, b.last_detail = True, "HTTP status 200"
    got = view.notifications_for(Event("real_server", f"{VS}/198.18.1.9:80", ("alive",)))
    rs, v = mib.REAL_SERVER_TABLE, mib.VIRTUAL_SERVER_TABLE
    assert got == [
        (
            (*R, 0, 3),
            [
                p.VarBind(rs_col("hakeeperRealServerState", RS_B), p.Integer(1)),
                p.VarBind(rs_col("hakeeperRealServerWeight", RS_B), p.Integer(7)),
                p.VarBind(rs_col("hakeeperRealServerLastDetail", RS_B), s("HTTP status 200")),
                p.VarBind(col(v, "hakeeperVirtualServerRsAlive", *WEB), p.Gauge32(2)),
                p.VarBind(col(v, "hakeeperVirtualServerRsTotal", *WEB), p.Gauge32(2)),
                p.VarBind(col(v, "hakeeperVirtualServerQuorumState", *WEB), p.Integer(1)),
                router_id(),
            ],
        )
    ]
    assert rs.column("hakeeperRealServerState").number("up") == 1
    a = web.real_servers["198.18.1.10:80"]
    a.alive = False
    ev = Event("real_server", f"{VS}/198.18.1.10:80", ("alive",))
    [(trap, varbinds)] = view.notifications_for(ev)
    assert trap == (*R, 0, 4) and varbinds[0].value == p.Integer(2)
    assert view.notifications_for(Event("real_server", ev.name, ("alive",))) == []  # no change
    # a weight change is no up/down
    assert view.notifications_for(Event("real_server", f"{VS}/198.18.1.10:80", ("weight",))) == []


def test_quorum_up_and_down(rt: Runtime, view: HakeeperMib) -> None:
    web = rt.virtual_servers[VS]
    web.quorum_up, web.sorry_active = False, True
    [(trap, _)] = view.notifications_for(Event("virtual_server", VS, ("quorum_up",)))
    assert trap == (*R, 0, 6)
    web.quorum_up, web.sorry_active = True, False
    got = view.notifications_for(Event("virtual_server", VS, ("quorum_up",)))
    v = mib.VIRTUAL_SERVER_TABLE
    assert got == [
        (
            (*R, 0, 5),
            [
                p.VarBind(col(v, "hakeeperVirtualServerQuorumState", *WEB), p.Integer(1)),
                p.VarBind(col(v, "hakeeperVirtualServerQuorum", *WEB), p.Gauge32(3)),
                p.VarBind(col(v, "hakeeperVirtualServerAliveWeight", *WEB), p.Gauge32(3)),
                p.VarBind(col(v, "hakeeperVirtualServerRsAlive", *WEB), p.Gauge32(1)),
                p.VarBind(col(v, "hakeeperVirtualServerRsTotal", *WEB), p.Gauge32(2)),
                p.VarBind(col(v, "hakeeperVirtualServerSorryActive", *WEB), p.Integer(2)),
                router_id(),
            ],
        )
    ]
    fw = rt.virtual_servers["fwmark:7/UDP"]
    fw.quorum_up = True
    assert view.quorum_change("fwmark:7/UDP") is not None
    [(trap, _)] = view.notifications_for(Event("virtual_server", "fwmark:7/UDP", ("quorum_up",)))
    assert trap == (*R, 0, 5)
    fw.quorum_up = False
    [(trap, _)] = view.notifications_for(Event("virtual_server", "fwmark:7/UDP", ("quorum_up",)))
    assert trap == (*R, 0, 6)


def test_every_notification_type_has_a_maker(rt: Runtime, view: HakeeperMib) -> None:
    made = [
        view.instance_state_change("VI_1", "BACKUP"),
        view.sync_group_state_change("G1", "BACKUP"),
        view.real_server_change(VS, "198.18.1.10:80"),
        view.real_server_change(VS, "198.18.1.9:80"),
        view.quorum_change(VS),
        view.quorum_change("fwmark:7/UDP"),
    ]
    assert [m[0] for m in made if m is not None] == [n.oid for n in mib.NOTIFICATION_TYPES]
    for (_, varbinds), kind in zip(made, mib.NOTIFICATION_TYPES, strict=True):  # type: ignore[misc]
        nodes = mib.all_nodes()
        assert [vb.name[: len(nodes[o])] for vb, o in zip(varbinds, kind.objects, strict=True)] == [
            nodes[o] for o in kind.objects
        ]
    assert view.instance_state_change("NOPE", "INIT") is None
    assert view.real_server_change(VS, "198.18.1.1:80") is None


# --- served to a real snmpd --------------------------------------------------------------------


@pytest.fixture
def served(
    tmp_path: Path, rt: Runtime, control: FakeControl
) -> Iterator[tuple[Snmpd, HakeeperMib]]:
    view = HakeeperMib(rt, control, clock=lambda: T0)
    with serving(
        tmp_path, view, view.registrations(), description="hakeeper HAKEEPER-MIB test"
    ) as (snmpd, _):
        yield snmpd, view


TI = ".1.3.6.1.3.5798.1.2.1"  # hakeeperInstanceEntry
VI_1 = "4.86.73.95.49"
VI_2 = "4.86.73.95.50"
OWNER = "5.79.87.78.69.82"
VI_10 = "5.86.73.95.49.48"


def test_snmpwalk_instance_table(served: tuple[Snmpd, HakeeperMib]) -> None:
    snmpd, view = served
    lines = snmpd.lines("snmpwalk", ".1.3.6.1.3.5798.1.2")
    got = {line.split(" = ")[0]: line.split(" = ", 1)[1] for line in lines}
    readable = [c.subid for c in mib.INSTANCE_TABLE.readable()]
    rows = [VI_1, VI_2, OWNER, VI_10]
    assert list(got) == [f"{TI}.{c}.{r}" for c in readable for r in rows]
    t = mib.INSTANCE_TABLE.oid
    assert len(lines) == sum(1 for o, _ in view.walk(t) if o[: len(t)] == t)
    expected = {
        f"2.{VI_1}": "INTEGER: 2",
        f"2.{VI_2}": "INTEGER: 1",
        f"2.{VI_10}": "INTEGER: 3",
        f"3.{VI_1}": "Gauge32: 51",
        f"4.{VI_1}": 'STRING: "eth0"',
        f"5.{VI_1}": 'STRING: "vrrp.51"',
        f"6.{VI_2}": "INTEGER: 2",
        f"8.{VI_2}": "Gauge32: 120",
        f"10.{VI_1}": "Gauge32: 140",
        f"11.{VI_1}": "Gauge32: 0",
        f"11.{VI_2}": "Gauge32: 120",
        f"12.{VI_1}": "Gauge32: 50",
        f"16.{VI_1}": 'STRING: "198.18.0.1"',
        f"16.{VI_2}": 'STRING: "fe80::2"',
        f"21.{VI_1}": "Hex-STRING: 07 E7 0B 0E 16 0C 32 00 2B 00 00 ",
        f"21.{VI_10}": "Hex-STRING: 00 00 01 01 00 00 00 00 ",
        f"22.{VI_1}": 'STRING: "master down timer expired"',
        f"24.{VI_1}": "Counter32: 5",
        f"39.{VI_1}": "Counter32: 2",
    }
    for suffix, text in expected.items():
        assert got[f"{TI}.{suffix}"] == text, suffix
    # the whole MIB in one bulk walk ends at our last object
    bulk = snmpd.lines("snmpbulkwalk", "-Cr10", ".1.3.6.1.3.5798")
    assert len(bulk) == len(list(view.walk()))
    assert bulk[-1].startswith(".1.3.6.1.3.5798.1.8.1.20.")


def test_snmpset_priority_override_reaches_the_control_layer(
    served: tuple[Snmpd, HakeeperMib], control: FakeControl, rt: Runtime
) -> None:
    snmpd, _ = served
    oid = f"{TI}.11.{VI_1}"
    assert snmpd.lines("snmpset", oid, "u", "200", community="private") == [f"{oid} = Gauge32: 200"]
    assert control.calls == [("set_priority", "VI_1", 200)]
    assert snmpd.lines("snmpget", oid, f"{TI}.8.{VI_1}") == [
        f"{oid} = Gauge32: 200",
        f"{TI}.8.{VI_1} = Gauge32: 200",
    ]
    for args, reason in (
        (("u", "255"), "wrongValue"),
        (("i", "100"), "wrongType"),
    ):
        out = snmpd.cli("snmpset", oid, *args, community="private")
        assert out.returncode != 0 and f"Reason: {reason}" in out.stderr, out.stderr
    out = snmpd.cli("snmpset", f"{TI}.11.{OWNER}", "u", "100", community="private")
    assert "Reason: inconsistentValue" in out.stderr, out.stderr
    assert snmpd.lines("snmpset", oid, "u", "0", community="private") == [f"{oid} = Gauge32: 0"]
    assert control.calls == [("set_priority", "VI_1", 200), ("set_priority", "VI_1", None)]
    assert rt.instances["VI_1"].priority_override is None
    assert (rt.global_counters["snmp_set"], rt.global_counters["snmp_set_refused"]) == (2, 3)


def test_long_text_is_cut_to_the_display_string_size(rt: Runtime, view: HakeeperMib) -> None:
    rt.instances["VI_1"].last_reason = "é" * 200  # 400 octets
    value = view.get(col(mib.INSTANCE_TABLE, "hakeeperInstanceLastReason", *I1))
    assert value == s("é" * 127)  # 254 octets: the 255th would split a character
