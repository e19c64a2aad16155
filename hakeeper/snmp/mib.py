"""HAKEEPER-MIB (mibs/HAKEEPER-MIB.txt) as data: the one place code takes its OIDs from.

Everything is relative to ROOT, which mirrors the MIB's MODULE-IDENTITY value; moving to a
Private Enterprise Number changes that line here and its line in the MIB. tests/unit/test_mib.py
checks every OID, syntax, access, range, enumeration, index and notification varbind list here
against what net-snmp's snmptranslate computes from the MIB text, and that nothing under ROOT
is missing here, so the map and the MIB cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Oid = tuple[int, ...]
# the SMI base type of a value, which fixes its wire type (Unsigned32 is sent as Gauge32)
Syntax = Literal[
    "Integer32", "Unsigned32", "Gauge32", "Counter32", "Counter64", "TimeTicks", "OCTET STRING"
]
Access = Literal["not-accessible", "accessible-for-notify", "read-only", "read-write"]

ROOT: Oid = (1, 3, 6, 1, 3, 5798)  # experimental.5798: hakeeperMIB's MODULE-IDENTITY
MODULE = "HAKEEPER-MIB"

NOTIFICATIONS: Oid = (*ROOT, 0)
OBJECTS: Oid = (*ROOT, 1)
CONFORMANCE: Oid = (*ROOT, 2)
GLOBAL: Oid = (*OBJECTS, 1)
COMPLIANCES: Oid = (*CONFORMANCE, 1)
GROUPS: Oid = (*CONFORMANCE, 2)

# TruthValue (SNMPv2-TC)
TRUE, FALSE = 1, 2
# DateAndTime for "never": January 1, year 0, 00:00:00.0 (as HOST-RESOURCES-MIB uses it)
DATE_NONE = bytes.fromhex("0000010100000000")

TRUTH = {"true": TRUE, "false": FALSE}
FAMILY = {"ipv4": 1, "ipv6": 2}
# keepalived's MIB numbers for init..fault; stop takes the number of its shutdown state
VRRP_STATE = {"init": 0, "backup": 1, "master": 2, "fault": 3, "stop": 5}
TRACKER_STATE = {
    "init": 1,
    "good": 2,
    "bad": 3,
    "disabled": 4,
    "up": 5,
    "down": 6,
    "unknown": 7,
    "ok": 8,
    "fault": 9,
}
UP_DOWN = {"up": 1, "down": 2}


@dataclass(frozen=True, slots=True)
class Column:
    """A scalar or a table column: its descriptor, sub-identifier and what a value may be.

    `enum` holds the MIB's labels (the model's strings lower-cased: "MASTER" -> "master");
    `range` is a value range for integers or a size range for strings; `source` names the
    model value a counter reads (an InstanceStats field, a Runtime.global_counters key, an
    LVS counters key)."""

    name: str
    subid: int
    syntax: Syntax
    access: Access = "read-only"
    enum: tuple[tuple[str, int], ...] | None = None  # (label, number), hashable
    range: tuple[int, int] | None = None
    source: str | None = None

    def number(self, label: str) -> int:
        """The enumeration's number for a model string (`"MASTER"` -> 2)."""
        assert self.enum is not None, self.name
        return dict(self.enum)[label.lower()]


@dataclass(frozen=True, slots=True)
class Scalar:
    column: Column

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def oid(self) -> Oid:
        """The object's OID; its one instance is `oid + (0,)`."""
        return (*GLOBAL, self.column.subid)


@dataclass(frozen=True, slots=True)
class Table:
    """A conceptual table. `index` names its INDEX objects in order; every one of them is
    either a name (a length-prefixed octet string, not IMPLIED) or an Unsigned32 position."""

    name: str
    oid: Oid
    entry_name: str
    index: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def entry(self) -> Oid:
        return (*self.oid, 1)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def column_oid(self, name: str) -> Oid:
        return (*self.entry, self.column(name).subid)

    def readable(self) -> tuple[Column, ...]:
        """The columns a Get/GetNext may return, in OID order."""
        return tuple(c for c in self.columns if c.access in ("read-only", "read-write"))


@dataclass(frozen=True, slots=True)
class Notification:
    name: str
    oid: Oid
    objects: tuple[str, ...]  # varbind objects after sysUpTime.0 and snmpTrapOID.0, in order


# -- helpers that keep the tables below one line per column


def _range(lo: int | None, hi: int | None) -> tuple[int, int] | None:
    return (lo, hi) if lo is not None and hi is not None else None


def _int(
    name: str,
    subid: int,
    lo: int | None = None,
    hi: int | None = None,
    access: Access = "read-only",
) -> Column:
    return Column(name, subid, "Integer32", access, range=_range(lo, hi))


def _u32(
    name: str,
    subid: int,
    lo: int | None = None,
    hi: int | None = None,
    access: Access = "read-only",
) -> Column:
    return Column(name, subid, "Unsigned32", access, range=_range(lo, hi))


def _enum(name: str, subid: int, values: dict[str, int], access: Access = "read-only") -> Column:
    return Column(name, subid, "Integer32", access, enum=tuple(values.items()))


def _str(name: str, subid: int, lo: int = 0, hi: int = 255, access: Access = "read-only") -> Column:
    return Column(name, subid, "OCTET STRING", access, range=(lo, hi))


def _c32(name: str, subid: int, source: str) -> Column:
    return Column(name, subid, "Counter32", source=source)


def _c64(name: str, subid: int, source: str) -> Column:
    return Column(name, subid, "Counter64", source=source)


def _gauge(name: str, subid: int) -> Column:
    return Column(name, subid, "Gauge32")


def _truth(name: str, subid: int, access: Access = "read-only") -> Column:
    return _enum(name, subid, TRUTH, access)


def _date(name: str, subid: int) -> Column:
    return Column(name, subid, "OCTET STRING", range=(8, 11))


def _key(name: str, subid: int, lo: int, hi: int) -> Column:
    """A name index object (not-accessible)."""
    return _str(name, subid, lo, hi, "not-accessible")


def _pos(name: str, subid: int) -> Column:
    """A position index object (not-accessible)."""
    return _u32(name, subid, 1, 65535, "not-accessible")


# SIZE limits of the name indexes: a real server row's OID (ROOT + 4 + two names with their
# lengths) stays within the 128 sub-identifiers an OID may have
NAME_MAX = 64
VS_NAME_MAX = 60
RS_NAME_MAX = 52
ADDRESS_MAX = 46


def _addr(name: str, subid: int) -> Column:
    return _str(name, subid, 0, ADDRESS_MAX)


# -- the daemon (hakeeperGlobal)

GLOBAL_SCALARS: tuple[Scalar, ...] = tuple(
    Scalar(c)
    for c in (
        _str("hakeeperVersion", 1),
        _str("hakeeperRouterId", 2),
        _str("hakeeperConfigFile", 3),
        _date("hakeeperStartTime", 4),
        Column("hakeeperUptime", 5, "TimeTicks"),
        _c32("hakeeperReloads", 6, "reloads"),  # Runtime.reloads, not a global counter
        _c32("hakeeperReloadFailures", 7, "reload_failed"),
        _enum("hakeeperLvsBackend", 8, {"none": 1, "ipvs": 2, "nftables": 3}),
        _gauge("hakeeperInstanceCount", 9),
        _gauge("hakeeperSyncGroupCount", 10),
        _gauge("hakeeperVirtualServerCount", 11),
        _c32("hakeeperVridErrors", 12, "vrid_err"),
        _c32("hakeeperShortPackets", 13, "packet_len_err"),
        _c32("hakeeperLvsApplyErrors", 14, "lvs_apply_errors"),
        _c32("hakeeperDbusReconnects", 15, "dbus_reconnects"),
        _c32("hakeeperDbusDenied", 16, "dbus_denied"),
        _c32("hakeeperDbusBadCalls", 17, "dbus_bad_call"),
        _c32("hakeeperDbusRefused", 18, "dbus_refused"),
        _c32("hakeeperSnmpSets", 19, "snmp_set"),
        _c32("hakeeperSnmpSetsRefused", 20, "snmp_set_refused"),
        _c32("hakeeperAgentxSessions", 21, "agentx_sessions"),
        _c32("hakeeperAgentxErrors", 22, "agentx_parse_errors"),
        _c32("hakeeperNotificationsSent", 23, "snmp_notifications"),
    )
)


def scalar(name: str) -> Scalar:
    for s in GLOBAL_SCALARS:
        if s.name == name:
            return s
    raise KeyError(name)


# -- VRRP instances

INSTANCE_TABLE = Table(
    "hakeeperInstanceTable",
    (*OBJECTS, 2),
    "hakeeperInstanceEntry",
    ("hakeeperInstanceName",),
    (
        _key("hakeeperInstanceName", 1, 1, NAME_MAX),
        _enum("hakeeperInstanceState", 2, VRRP_STATE),
        _u32("hakeeperInstanceVrid", 3, 1, 255),
        _str("hakeeperInstanceInterface", 4),
        _str("hakeeperInstanceVmacInterface", 5),
        _enum("hakeeperInstanceFamily", 6, FAMILY),
        _enum("hakeeperInstanceVersion", 7, {"vrrpv2": 2, "vrrpv3": 3}),
        _u32("hakeeperInstanceBasePriority", 8, 1, 255),
        _u32("hakeeperInstanceConfigPriority", 9, 1, 255),
        _u32("hakeeperInstancePriority", 10, 0, 255),
        _u32("hakeeperInstancePriorityOverride", 11, 0, 254, access="read-write"),
        _u32("hakeeperInstanceAdvertInt", 12),  # centiseconds
        _u32("hakeeperInstanceMasterAdvertInt", 13),  # centiseconds
        _truth("hakeeperInstancePreempt", 14),
        _u32("hakeeperInstancePreemptDelay", 15),  # centiseconds
        _addr("hakeeperInstanceMasterAddress", 16),
        _str("hakeeperInstanceSyncGroup", 17),
        _truth("hakeeperInstanceMaintenance", 18),
        _truth("hakeeperInstanceYielding", 19),
        _truth("hakeeperInstanceVipsPresent", 20),
        _date("hakeeperInstanceLastTransition", 21),
        _str("hakeeperInstanceLastReason", 22),
        _enum("hakeeperInstancePreviousState", 23, VRRP_STATE, access="accessible-for-notify"),
        _c32("hakeeperInstanceAdvertRcvd", 24, "advert_rcvd"),
        _c32("hakeeperInstanceAdvertSent", 25, "advert_sent"),
        _c32("hakeeperInstanceBecomeMaster", 26, "become_master"),
        _c32("hakeeperInstanceReleaseMaster", 27, "release_master"),
        _c32("hakeeperInstancePriZeroRcvd", 28, "pri_zero_rcvd"),
        _c32("hakeeperInstancePriZeroSent", 29, "pri_zero_sent"),
        _c32("hakeeperInstanceAuthFailures", 30, "auth_failure"),
        _c32("hakeeperInstanceInvalidAuthType", 31, "invalid_authtype"),
        _c32("hakeeperInstanceAuthTypeMismatch", 32, "authtype_mismatch"),
        _c32("hakeeperInstanceInvalidTypeRcvd", 33, "invalid_type_rcvd"),
        _c32("hakeeperInstanceIpTtlErrors", 34, "ip_ttl_err"),
        _c32("hakeeperInstanceAddrListErrors", 35, "addr_list_err"),
        _c32("hakeeperInstancePacketLenErrors", 36, "packet_len_err"),
        _c32("hakeeperInstanceAdvertIntErrors", 37, "advert_interval_err"),
        _c32("hakeeperInstanceVersionErrors", 38, "version_err"),
        _c32("hakeeperInstanceChecksumErrors", 39, "checksum_err"),
        _c32("hakeeperInstanceVridErrors", 40, "vrid_err"),
    ),
)

VIP_TABLE = Table(
    "hakeeperVipTable",
    (*OBJECTS, 3),
    "hakeeperVipEntry",
    ("hakeeperInstanceName", "hakeeperVipIndex"),
    (
        _pos("hakeeperVipIndex", 1),
        _enum("hakeeperVipFamily", 2, FAMILY),
        _addr("hakeeperVipAddress", 3),
        _u32("hakeeperVipPrefixLength", 4, 0, 128),
        _str("hakeeperVipInterface", 5),
        _str("hakeeperVipLabel", 6),
        _truth("hakeeperVipExcluded", 7),
        _truth("hakeeperVipPresent", 8),
    ),
)

TRACKER_TABLE = Table(
    "hakeeperTrackerTable",
    (*OBJECTS, 4),
    "hakeeperTrackerEntry",
    ("hakeeperInstanceName", "hakeeperTrackerIndex"),
    (
        _pos("hakeeperTrackerIndex", 1),
        _enum("hakeeperTrackerKind", 2, {"script": 1, "interface": 2, "file": 3, "process": 4}),
        _str("hakeeperTrackerName", 3),
        _enum("hakeeperTrackerState", 4, TRACKER_STATE),
        _int("hakeeperTrackerWeight", 5, -254, 254),
        _truth("hakeeperTrackerReverse", 6),
        _truth("hakeeperTrackerHasValue", 7),
        _int("hakeeperTrackerValue", 8),
        _int("hakeeperTrackerContribution", 9, -254, 254),
        _truth("hakeeperTrackerFaults", 10),
        _str("hakeeperTrackerViaGroup", 11),
    ),
)

# -- sync groups

SYNC_GROUP_TABLE = Table(
    "hakeeperSyncGroupTable",
    (*OBJECTS, 5),
    "hakeeperSyncGroupEntry",
    ("hakeeperSyncGroupName",),
    (
        _key("hakeeperSyncGroupName", 1, 1, NAME_MAX),
        _enum("hakeeperSyncGroupState", 2, VRRP_STATE),
        _gauge("hakeeperSyncGroupMemberCount", 3),
        _str("hakeeperSyncGroupLastReason", 4),
        _enum("hakeeperSyncGroupPreviousState", 5, VRRP_STATE, access="accessible-for-notify"),
    ),
)

SYNC_GROUP_MEMBER_TABLE = Table(
    "hakeeperSyncGroupMemberTable",
    (*OBJECTS, 6),
    "hakeeperSyncGroupMemberEntry",
    ("hakeeperSyncGroupName", "hakeeperSyncGroupMemberIndex"),
    (
        _pos("hakeeperSyncGroupMemberIndex", 1),
        _str("hakeeperSyncGroupMemberInstance", 2, 1, NAME_MAX),
        _enum("hakeeperSyncGroupMemberState", 3, VRRP_STATE),
    ),
)

# -- virtual and real servers

VIRTUAL_SERVER_TABLE = Table(
    "hakeeperVirtualServerTable",
    (*OBJECTS, 7),
    "hakeeperVirtualServerEntry",
    ("hakeeperVirtualServerName",),
    (
        _key("hakeeperVirtualServerName", 1, 1, VS_NAME_MAX),
        _enum("hakeeperVirtualServerFamily", 2, FAMILY),
        _addr("hakeeperVirtualServerAddress", 3),
        _u32("hakeeperVirtualServerPort", 4, 0, 65535),
        _u32("hakeeperVirtualServerFwmark", 5),
        _str("hakeeperVirtualServerGroup", 6),
        _enum("hakeeperVirtualServerProtocol", 7, {"tcp": 6, "udp": 17, "sctp": 132}),
        _str("hakeeperVirtualServerScheduler", 8),
        _enum("hakeeperVirtualServerMethod", 9, {"nat": 1, "dr": 2, "tun": 3}),
        _u32("hakeeperVirtualServerPersistence", 10),
        _u32("hakeeperVirtualServerQuorum", 11),
        _u32("hakeeperVirtualServerHysteresis", 12),
        _enum("hakeeperVirtualServerQuorumState", 13, UP_DOWN),
        _str("hakeeperVirtualServerSorryServer", 14),
        _truth("hakeeperVirtualServerSorryActive", 15),
        _gauge("hakeeperVirtualServerAliveWeight", 16),
        _gauge("hakeeperVirtualServerRsTotal", 17),
        _gauge("hakeeperVirtualServerRsAlive", 18),
        _date("hakeeperVirtualServerQuorumTime", 19),
        _c64("hakeeperVirtualServerConns", 20, "conns"),
        _c64("hakeeperVirtualServerInPkts", 21, "inpkts"),
        _c64("hakeeperVirtualServerOutPkts", 22, "outpkts"),
        _c64("hakeeperVirtualServerInBytes", 23, "inbytes"),
        _c64("hakeeperVirtualServerOutBytes", 24, "outbytes"),
    ),
)

# what a Set of hakeeperRealServerWeight accepts (D-Bus SetWeight's range); reads go higher
WEIGHT_SET_MAX = 65535

REAL_SERVER_TABLE = Table(
    "hakeeperRealServerTable",
    (*OBJECTS, 8),
    "hakeeperRealServerEntry",
    ("hakeeperVirtualServerName", "hakeeperRealServerName"),
    (
        _key("hakeeperRealServerName", 1, 1, RS_NAME_MAX),
        _enum("hakeeperRealServerFamily", 2, FAMILY),
        _addr("hakeeperRealServerAddress", 3),
        _u32("hakeeperRealServerPort", 4, 0, 65535),
        _enum("hakeeperRealServerState", 5, UP_DOWN),
        _truth("hakeeperRealServerEnabled", 6, access="read-write"),
        _int("hakeeperRealServerWeight", 7, 0, 2**31 - 1, access="read-write"),
        _int("hakeeperRealServerConfigWeight", 8, 0, 2**31 - 1),
        _truth("hakeeperRealServerWeightSet", 9, access="read-write"),
        _truth("hakeeperRealServerInPool", 10),
        _int("hakeeperRealServerPoolWeight", 11, -1, 2**31 - 1),
        _truth("hakeeperRealServerSorryServer", 12),
        _date("hakeeperRealServerLastChange", 13),
        _str("hakeeperRealServerLastDetail", 14),
        _gauge("hakeeperRealServerFailedCheckers", 15),
        _c64("hakeeperRealServerConns", 16, "conns"),
        _c64("hakeeperRealServerInPkts", 17, "inpkts"),
        _c64("hakeeperRealServerOutPkts", 18, "outpkts"),
        _c64("hakeeperRealServerInBytes", 19, "inbytes"),
        _c64("hakeeperRealServerOutBytes", 20, "outbytes"),
    ),
)

TABLES: tuple[Table, ...] = (
    INSTANCE_TABLE,
    VIP_TABLE,
    TRACKER_TABLE,
    SYNC_GROUP_TABLE,
    SYNC_GROUP_MEMBER_TABLE,
    VIRTUAL_SERVER_TABLE,
    REAL_SERVER_TABLE,
)


def table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


# -- notifications (under ROOT.0, so an SNMPv1 trap maps back to them)

_RS_VARBINDS = (
    "hakeeperRealServerState",
    "hakeeperRealServerWeight",
    "hakeeperRealServerLastDetail",
    "hakeeperVirtualServerRsAlive",
    "hakeeperVirtualServerRsTotal",
    "hakeeperVirtualServerQuorumState",
    "hakeeperRouterId",
)
_QUORUM_VARBINDS = (
    "hakeeperVirtualServerQuorumState",
    "hakeeperVirtualServerQuorum",
    "hakeeperVirtualServerAliveWeight",
    "hakeeperVirtualServerRsAlive",
    "hakeeperVirtualServerRsTotal",
    "hakeeperVirtualServerSorryActive",
    "hakeeperRouterId",
)

INSTANCE_STATE_CHANGE = Notification(
    "hakeeperInstanceStateChange",
    (*NOTIFICATIONS, 1),
    (
        "hakeeperInstanceState",
        "hakeeperInstancePreviousState",
        "hakeeperInstanceLastReason",
        "hakeeperInstancePriority",
        "hakeeperInstanceMasterAddress",
        "hakeeperInstanceVrid",
        "hakeeperInstanceInterface",
        "hakeeperRouterId",
    ),
)
SYNC_GROUP_STATE_CHANGE = Notification(
    "hakeeperSyncGroupStateChange",
    (*NOTIFICATIONS, 2),
    (
        "hakeeperSyncGroupState",
        "hakeeperSyncGroupPreviousState",
        "hakeeperSyncGroupLastReason",
        "hakeeperRouterId",
    ),
)
REAL_SERVER_UP = Notification("hakeeperRealServerUp", (*NOTIFICATIONS, 3), _RS_VARBINDS)
REAL_SERVER_DOWN = Notification("hakeeperRealServerDown", (*NOTIFICATIONS, 4), _RS_VARBINDS)
QUORUM_UP = Notification("hakeeperVirtualServerQuorumUp", (*NOTIFICATIONS, 5), _QUORUM_VARBINDS)
QUORUM_DOWN = Notification("hakeeperVirtualServerQuorumDown", (*NOTIFICATIONS, 6), _QUORUM_VARBINDS)

NOTIFICATION_TYPES: tuple[Notification, ...] = (
    INSTANCE_STATE_CHANGE,
    SYNC_GROUP_STATE_CHANGE,
    REAL_SERVER_UP,
    REAL_SERVER_DOWN,
    QUORUM_UP,
    QUORUM_DOWN,
)

# -- conformance (named so the completeness check knows every node under ROOT)

CONFORMANCE_NODES: dict[str, Oid] = {
    "hakeeperCompliance": (*COMPLIANCES, 1),
    "hakeeperGlobalGroup": (*GROUPS, 1),
    "hakeeperInstanceGroup": (*GROUPS, 2),
    "hakeeperVipGroup": (*GROUPS, 3),
    "hakeeperTrackerGroup": (*GROUPS, 4),
    "hakeeperSyncGroupGroup": (*GROUPS, 5),
    "hakeeperLvsGroup": (*GROUPS, 6),
    "hakeeperNotifyObjectsGroup": (*GROUPS, 7),
    "hakeeperVrrpNotificationsGroup": (*GROUPS, 8),
    "hakeeperLvsNotificationsGroup": (*GROUPS, 9),
}


def name_index(name: str, max_len: int = NAME_MAX) -> Oid:
    """A name as an index (length, then its UTF-8 octets: not IMPLIED). ValueError when it
    does not fit the index's SIZE, so the view leaves that row out rather than break OIDs."""
    octets = name.encode()
    if not 1 <= len(octets) <= max_len:
        raise ValueError(f"name {name!r} is {len(octets)} octets; the index takes 1..{max_len}")
    return (len(octets), *octets)


def all_nodes() -> dict[str, Oid]:
    """Every named node of the MIB under ROOT, descriptor -> OID (for the drift test and for
    a view that resolves names)."""
    nodes: dict[str, Oid] = {
        "hakeeperMIB": ROOT,
        "hakeeperNotifications": NOTIFICATIONS,
        "hakeeperObjects": OBJECTS,
        "hakeeperConformance": CONFORMANCE,
        "hakeeperGlobal": GLOBAL,
        "hakeeperCompliances": COMPLIANCES,
        "hakeeperGroups": GROUPS,
    }
    nodes.update({s.name: s.oid for s in GLOBAL_SCALARS})
    for t in TABLES:
        nodes[t.name] = t.oid
        nodes[t.entry_name] = t.entry
        nodes.update({c.name: (*t.entry, c.subid) for c in t.columns})
    nodes.update({n.name: n.oid for n in NOTIFICATION_TYPES})
    nodes.update(CONFORMANCE_NODES)
    return nodes
