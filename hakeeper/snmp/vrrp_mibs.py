"""The standard VRRP MIBs over the runtime model: VRRPV3-MIB (RFC 6527) and VRRP-MIB (RFC 2787).

Which instances each lists follows keepalived built as distributions ship it (--enable-snmp-rfc,
RFC 6527 answers for VRRPv2 left on):

- VRRPV3-MIB: every instance, VRRPv2 and v3, IPv4 and IPv6, with at least one virtual address;
- VRRP-MIB: the VRRPv2 IPv4 instances with at least one virtual address.

An instance whose interface has no ifIndex (gone, not yet up) is left out of both: ifIndex is
its first index and 0 is no interface's (keepalived answers 0 there).

Where the RFC text and keepalived differ, the RFC wins (each is noted where it is done): the
VRRPv3 associated address index carries its length (an InetAddress index is not IMPLIED), the
virtual MAC is RFC 5798's 00-00-5E-00-01/02-{VRID} (keepalived returns the interface's own),
vrrpOperAuthKey reads as the empty string, the router-wide error counters count every packet
the router dropped (keepalived sums only the instances the MIB lists), and the VRRP-MIB
notification objects vrrpTrapPacketSrc/vrrpTrapAuthErrorType are scalars (instance .0).

The model lacks three facts the MIBs want; the view derives them from the model's events:
when an instance left initialize (UpTime), why it last became master (NewMasterReason,
classified from the core's transition reason as keepalived classifies it) and the last
protocol error (ProtoErrReason, told by `note_proto_error` from the receive path).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from hakeeper.snmp.agentx.pdu import (
    Counter32,
    Counter64,
    Gauge32,
    Integer,
    IpAddress,
    OctetString,
    Oid,
    TimeTicks,
    Value,
    VarBind,
)
from hakeeper.snmp.agentx.session import Registration
from hakeeper.snmp.tree import MibTree

if TYPE_CHECKING:
    from hakeeper.state import Event, InstanceState, Runtime

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# --- VRRPV3-MIB (RFC 6527) -------------------------------------------------------------------
VRRPV3_MIB: Oid = (1, 3, 6, 1, 2, 1, 207)  # mib-2 207
V3_NEW_MASTER: Oid = (*VRRPV3_MIB, 0, 1)  # vrrpv3NewMaster
V3_PROTO_ERROR: Oid = (*VRRPV3_MIB, 0, 2)  # vrrpv3ProtoError
V3_OPER_ENTRY: Oid = (*VRRPV3_MIB, 1, 1, 1, 1)  # vrrpv3OperationsEntry
V3_ASSOC_ENTRY: Oid = (*VRRPV3_MIB, 1, 1, 2, 1)  # vrrpv3AssociatedIpAddrEntry
V3_STATISTICS: Oid = (*VRRPV3_MIB, 1, 2)  # vrrpv3Statistics
V3_STATS_ENTRY: Oid = (*V3_STATISTICS, 5, 1)  # vrrpv3StatisticsEntry
# vrrpv3OperationsEntry columns (1 VrId and 2 InetAddrType are the not-accessible index)
V3_OPER_MASTER_IP = 3
V3_OPER_PRIMARY_IP = 4
V3_OPER_VMAC = 5
V3_OPER_STATUS = 6
V3_OPER_PRIORITY = 7
V3_OPER_ADDR_COUNT = 8
V3_OPER_ADV_INTERVAL = 9
V3_OPER_PREEMPT = 10
V3_OPER_ACCEPT = 11
V3_OPER_UPTIME = 12
V3_OPER_ROW_STATUS = 13
V3_ASSOC_ROW_STATUS = 2  # 1 is the address, the not-accessible index
# vrrpv3Statistics scalars
V3_ROUTER_CHECKSUM_ERRORS = 1
V3_ROUTER_VERSION_ERRORS = 2
V3_ROUTER_VRID_ERRORS = 3
V3_GLOBAL_DISCONTINUITY = 4
# vrrpv3StatisticsEntry columns
V3_STATS_MASTER_TRANSITIONS = 1
V3_STATS_NEW_MASTER_REASON = 2
V3_STATS_RCVD_ADVERTS = 3
V3_STATS_ADV_INTERVAL_ERRORS = 4
V3_STATS_IP_TTL_ERRORS = 5
V3_STATS_PROTO_ERR_REASON = 6
V3_STATS_RCVD_PRI_ZERO = 7
V3_STATS_SENT_PRI_ZERO = 8
V3_STATS_RCVD_INVALID_TYPE = 9
V3_STATS_ADDRESS_LIST_ERRORS = 10
V3_STATS_PACKET_LENGTH_ERRORS = 11
V3_STATS_ROW_DISCONTINUITY = 12
V3_STATS_REFRESH_RATE = 13

# --- VRRP-MIB (RFC 2787) ---------------------------------------------------------------------
VRRP_MIB: Oid = (1, 3, 6, 1, 2, 1, 68)  # mib-2 68
V2_TRAP_NEW_MASTER: Oid = (*VRRP_MIB, 0, 1)  # vrrpTrapNewMaster
V2_TRAP_AUTH_FAILURE: Oid = (*VRRP_MIB, 0, 2)  # vrrpTrapAuthFailure
V2_OPERATIONS: Oid = (*VRRP_MIB, 1)
V2_NODE_VERSION: Oid = (*V2_OPERATIONS, 1)  # vrrpNodeVersion
V2_NOTIFICATION_CNTL: Oid = (*V2_OPERATIONS, 2)  # vrrpNotificationCntl
V2_OPER_ENTRY: Oid = (*V2_OPERATIONS, 3, 1)  # vrrpOperEntry
V2_ASSO_ENTRY: Oid = (*V2_OPERATIONS, 4, 1)  # vrrpAssoIpAddrEntry
V2_TRAP_PACKET_SRC: Oid = (*V2_OPERATIONS, 5)  # accessible-for-notify
V2_TRAP_AUTH_ERROR_TYPE: Oid = (*V2_OPERATIONS, 6)  # accessible-for-notify
V2_STATISTICS: Oid = (*VRRP_MIB, 2)
V2_STATS_ENTRY: Oid = (*V2_STATISTICS, 4, 1)  # vrrpRouterStatsEntry
# vrrpOperEntry columns (1 is vrrpOperVrId, the not-accessible index)
V2_OPER_VMAC = 2
V2_OPER_STATE = 3
V2_OPER_ADMIN_STATE = 4
V2_OPER_PRIORITY = 5
V2_OPER_ADDR_COUNT = 6
V2_OPER_MASTER_IP = 7
V2_OPER_PRIMARY_IP = 8
V2_OPER_AUTH_TYPE = 9
V2_OPER_AUTH_KEY = 10
V2_OPER_ADV_INTERVAL = 11
V2_OPER_PREEMPT = 12
V2_OPER_UPTIME = 13
V2_OPER_PROTOCOL = 14
V2_OPER_ROW_STATUS = 15
V2_ASSO_ROW_STATUS = 2
# vrrpStatistics scalars
V2_ROUTER_CHECKSUM_ERRORS = 1
V2_ROUTER_VERSION_ERRORS = 2
V2_ROUTER_VRID_ERRORS = 3
# vrrpRouterStatsEntry columns -> the InstanceStats counter each reads
V2_STATS_COUNTERS: dict[int, str] = {
    1: "become_master",  # vrrpStatsBecomeMaster
    2: "advert_rcvd",  # vrrpStatsAdvertiseRcvd
    3: "advert_interval_err",  # vrrpStatsAdvertiseIntervalErrors
    4: "auth_failure",  # vrrpStatsAuthFailures
    5: "ip_ttl_err",  # vrrpStatsIpTtlErrors
    6: "pri_zero_rcvd",  # vrrpStatsPriorityZeroPktsRcvd
    7: "pri_zero_sent",  # vrrpStatsPriorityZeroPktsSent
    8: "invalid_type_rcvd",  # vrrpStatsInvalidTypePktsRcvd
    9: "addr_list_err",  # vrrpStatsAddressListErrors
    10: "invalid_authtype",  # vrrpStatsInvalidAuthType
    11: "authtype_mismatch",  # vrrpStatsAuthTypeMismatch
    12: "packet_len_err",  # vrrpStatsPacketLengthErrors
}
# vrrpv3StatisticsEntry Counter64 columns -> InstanceStats counter
V3_STATS_COUNTERS: dict[int, str] = {
    V3_STATS_RCVD_ADVERTS: "advert_rcvd",
    V3_STATS_ADV_INTERVAL_ERRORS: "advert_interval_err",
    V3_STATS_IP_TTL_ERRORS: "ip_ttl_err",
    V3_STATS_RCVD_PRI_ZERO: "pri_zero_rcvd",
    V3_STATS_SENT_PRI_ZERO: "pri_zero_sent",
    V3_STATS_RCVD_INVALID_TYPE: "invalid_type_rcvd",
    V3_STATS_ADDRESS_LIST_ERRORS: "addr_list_err",
    V3_STATS_PACKET_LENGTH_ERRORS: "packet_len_err",
}

# --- enumerations ----------------------------------------------------------------------------
# vrrpv3OperationsStatus / vrrpOperState: initialize(1) backup(2) master(3); FAULT and STOP are
# initialize (keepalived: any state past MASTER reads initialize)
STATUS = {"INIT": 1, "BACKUP": 2, "MASTER": 3, "FAULT": 1, "STOP": 1}
INITIALIZE = 1
_UP_STATES = frozenset(("BACKUP", "MASTER"))
TRUE, FALSE = 1, 2  # TruthValue (SNMPv2-TC)
ROW_ACTIVE = 1  # RowStatus active(1): rows exist only while configured
INET_IPV4, INET_IPV6 = 1, 2  # InetAddressType (RFC 4001)
ADMIN_UP = 1  # vrrpOperAdminState up(1)
PROTOCOL_IP = 1  # vrrpOperProtocol ip(1)
CNTL_ENABLED, CNTL_DISABLED = 1, 2  # vrrpNotificationCntl
# vrrpOperAuthType
AUTH_TYPE = {None: 1, "PASS": 2, "AH": 3}
# vrrpv3StatisticsNewMasterReason
NOT_MASTER, REASON_PRIORITY, REASON_PREEMPTED, REASON_MASTER_NO_RESPONSE = 0, 1, 2, 3
# vrrpv3StatisticsProtoErrReason, from the receive check's reason (the InstanceStats counter)
PROTO_ERR_REASON = {"ip_ttl_err": 1, "version_err": 2, "checksum_err": 3, "vrid_err": 4}
# vrrpTrapAuthErrorType, from the receive check's reason
AUTH_ERROR_TYPE = {"invalid_authtype": 1, "authtype_mismatch": 2, "auth_failure": 3}

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


def virtual_mac(vrid: int, family: int) -> bytes:
    """RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6."""
    return bytes((0x00, 0x00, 0x5E, 0x00, 0x01 if family == 4 else 0x02, vrid))


def master_reason(reason: str) -> int:
    """vrrpv3StatisticsNewMasterReason for the core's reason of a transition to MASTER, as
    keepalived sets it: a priority 0 advert -> priority, taking over from a lower priority
    master or as the address owner -> preempted, anything else (the master down timer, a
    sync group) -> masterNoResponse."""
    if "priority 0 advert" in reason:
        return REASON_PRIORITY
    if "preempting" in reason or "address owner" in reason:
        return REASON_PREEMPTED
    return REASON_MASTER_NO_RESPONSE


def _packed(address: object, family: int) -> bytes:
    """An address as network-order octets; all zeros when unknown (keepalived's answer)."""
    if address is not None:
        try:
            ip = ipaddress.ip_address(address)  # type: ignore[arg-type]
        except ValueError:
            ip = None
        if ip is not None and ip.version == family:
            return ip.packed
    return bytes(4 if family == 4 else 16)


def _vips(inst: InstanceState) -> list[bytes]:
    """The associated addresses: the virtual addresses of the instance's own family (those
    its adverts carry)."""
    family = inst.config.family
    return [v.address.packed for v in inst.config.virtual_ipaddress if v.family == family]


def _ticks(seconds: float) -> int:
    return min(max(int(seconds * 100), 0), _U32)


class VrrpMibs(MibTree):
    """Both MIBs as one `MibView`; give `registrations()` to the AgentX Subagent.

    `ifindex(name)` maps an interface name to its ifIndex (the daemon passes netlink's);
    `primary_address(inst)` is the address the instance sends from (default: the configured
    unicast/mcast source, or the master address while MASTER, which the core sets to it);
    `notifications_enabled()` is vrrpNotificationCntl (keepalived's enable_traps); `clock` is
    the wall clock the model's timestamps use."""

    def __init__(
        self,
        runtime: Runtime,
        ifindex: Callable[[str], int | None],
        *,
        primary_address: Callable[[InstanceState], object] | None = None,
        notifications_enabled: Callable[[], bool] = lambda: True,
        rfc6527: bool = True,
        rfc2787: bool = True,
        clock: Callable[[], float] = time.time,
        max_age: float | None = 5.0,
    ) -> None:
        super().__init__(max_age=max_age, clock=time.monotonic)
        self.runtime = runtime
        self.ifindex = ifindex
        self.primary_address = primary_address or _default_primary
        self.notifications_enabled = notifications_enabled
        self.rfc6527 = rfc6527
        self.rfc2787 = rfc2787
        self.wall = clock
        self._up_since: dict[str, float] = {}
        self._master_reason: dict[str, int] = {}
        self._proto_err: dict[str, int] = {}
        for name in runtime.instances:
            self._track(name, state_changed=True)
        runtime.subscribe(self._on_event)
        if rfc2787:
            self._build_v2()
        if rfc6527:
            self._build_v3()

    def detach(self) -> None:
        """Stop following the model (the view is being replaced)."""
        self.runtime.unsubscribe(self._on_event)

    def registrations(self) -> list[Registration]:
        subtrees = [VRRP_MIB] if self.rfc2787 else []
        return [Registration(s) for s in subtrees + ([VRRPV3_MIB] if self.rfc6527 else [])]

    # --- following the model -------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind != "instance":
            return
        changed = set(ev.changed)
        if changed & {"added", "removed", "config"}:
            self.invalidate()  # rows, or their VIPs, may have changed
        if changed & {"added", "removed", "state"}:
            self._track(ev.name, state_changed="state" in changed)

    def _track(self, name: str, state_changed: bool) -> None:
        inst = self.runtime.instances.get(name)
        if inst is None:
            for d in (self._up_since, self._master_reason, self._proto_err):
                d.pop(name, None)
            return
        if inst.state in _UP_STATES:
            # last_transition is when it got here: exact when it came from INIT/FAULT
            self._up_since.setdefault(name, inst.last_transition or self.wall())
        else:
            self._up_since.pop(name, None)
        if inst.state == "MASTER" and (state_changed or name not in self._master_reason):
            self._master_reason[name] = master_reason(inst.last_reason)

    def note_proto_error(self, name: str, reason: str) -> bool:
        """The receive path dropped a packet of `name` for `reason` (an InstanceStats counter
        name). True when that is a vrrpv3 protocol error, whose notification is then due."""
        code = PROTO_ERR_REASON.get(reason)
        if code is None or name not in self.runtime.instances:
            return False
        self._proto_err[name] = code
        return True

    # --- shared values --------------------------------------------------------------------

    def _instances(self) -> Iterable[InstanceState]:
        return self.runtime.instances.values()

    def _status(self, inst: InstanceState) -> int:
        return STATUS.get(inst.state, INITIALIZE)

    def _master_ip(self, inst: InstanceState) -> bytes:
        family = inst.config.family
        if inst.state == "MASTER":  # RFC 6527: the master reads its own primary address
            return _packed(self.primary_address(inst), family)
        return _packed(inst.master_address, family)

    def _up_for(self, inst: InstanceState) -> float | None:
        if inst.state not in _UP_STATES:
            return None
        return self._up_since.get(inst.config.name)

    def _router_errors(self, counter: str) -> int:
        return sum(getattr(i.stats, counter) for i in self._instances()) + (
            self.runtime.global_counters.get(counter, 0)
        )

    # --- VRRPV3-MIB -----------------------------------------------------------------------

    def v3_index(self, inst: InstanceState) -> Oid | None:
        c = inst.config
        if not _vips(inst):
            return None
        ifindex = self.ifindex(c.interface)
        if not ifindex:
            return None
        return (ifindex, c.virtual_router_id, INET_IPV4 if c.family == 4 else INET_IPV6)

    def _v3_assoc_rows(self) -> list[tuple[InstanceState, bytes]]:
        return [(inst, a) for inst in self._instances() for a in _vips(inst)]

    def _v3_assoc_index(self, row: tuple[InstanceState, bytes]) -> Oid | None:
        inst, address = row
        base = self.v3_index(inst)
        # InetAddress index, not IMPLIED: its length first (RFC 2578 §7.7)
        return None if base is None else (*base, len(address), *address)

    def _build_v3(self) -> None:
        oper = self.table(V3_OPER_ENTRY, self._instances, self.v3_index)
        oper.column(V3_OPER_MASTER_IP, lambda i: OctetString(self._master_ip(i)))
        oper.column(
            V3_OPER_PRIMARY_IP,
            lambda i: OctetString(_packed(self.primary_address(i), i.config.family)),
        )
        oper.column(
            V3_OPER_VMAC,
            lambda i: OctetString(virtual_mac(i.config.virtual_router_id, i.config.family)),
        )
        oper.column(V3_OPER_STATUS, lambda i: Integer(self._status(i)))
        oper.column(V3_OPER_PRIORITY, lambda i: Gauge32(i.base_priority))
        oper.column(V3_OPER_ADDR_COUNT, lambda i: Integer(min(len(_vips(i)), 255)))
        # TimeInterval (1..4095) centiseconds
        oper.column(
            V3_OPER_ADV_INTERVAL,
            lambda i: Integer(min(max(round(i.config.advert_int * 100), 1), 4095)),
        )
        oper.column(V3_OPER_PREEMPT, lambda i: Integer(FALSE if i.config.nopreempt else TRUE))
        # the config builder resolves strict mode into `accept`; None is keepalived's accept
        oper.column(V3_OPER_ACCEPT, lambda i: Integer(FALSE if i.config.accept is False else TRUE))
        oper.column(V3_OPER_UPTIME, self._v3_uptime)
        oper.column(V3_OPER_ROW_STATUS, lambda i: Integer(ROW_ACTIVE))

        assoc = self.table(V3_ASSOC_ENTRY, self._v3_assoc_rows, self._v3_assoc_index)
        assoc.column(V3_ASSOC_ROW_STATUS, lambda r: Integer(ROW_ACTIVE))

        def router(counter: str) -> Callable[[], Value]:
            return lambda: Counter64(self._router_errors(counter) & _U64)

        self.scalar((*V3_STATISTICS, V3_ROUTER_CHECKSUM_ERRORS), router("checksum_err"))
        self.scalar((*V3_STATISTICS, V3_ROUTER_VERSION_ERRORS), router("version_err"))
        self.scalar((*V3_STATISTICS, V3_ROUTER_VRID_ERRORS), router("vrid_err"))
        # TimeStamp: no discontinuity since the agent started (keepalived answers 0 too)
        self.scalar((*V3_STATISTICS, V3_GLOBAL_DISCONTINUITY), lambda: TimeTicks(0))

        stats = self.table(V3_STATS_ENTRY, self._instances, self.v3_index)  # AUGMENTS oper
        stats.column(V3_STATS_MASTER_TRANSITIONS, lambda i: Counter32(i.stats.become_master & _U32))
        stats.column(V3_STATS_NEW_MASTER_REASON, lambda i: Integer(self.new_master_reason(i)))
        for subid, counter in V3_STATS_COUNTERS.items():
            stats.column(subid, _counter64(counter))
        stats.column(
            V3_STATS_PROTO_ERR_REASON, lambda i: Integer(self._proto_err.get(i.config.name, 0))
        )
        stats.column(V3_STATS_ROW_DISCONTINUITY, lambda i: TimeTicks(0))
        # the counters change at most once an advert interval: poll no faster (milliseconds)
        stats.column(
            V3_STATS_REFRESH_RATE, lambda i: Gauge32(max(round(i.config.advert_int * 1000), 1))
        )

    def _v3_uptime(self, inst: InstanceState) -> Value:
        since = self._up_for(inst)
        return TimeTicks(0 if since is None else _ticks(self.wall() - since))

    def new_master_reason(self, inst: InstanceState) -> int:
        return self._master_reason.get(inst.config.name, NOT_MASTER)

    # --- VRRP-MIB -------------------------------------------------------------------------

    def v2_index(self, inst: InstanceState) -> Oid | None:
        c = inst.config
        if c.version != 2 or c.family != 4 or not _vips(inst):
            return None
        ifindex = self.ifindex(c.interface)
        return (ifindex, c.virtual_router_id) if ifindex else None

    def _v2_asso_rows(self) -> list[tuple[InstanceState, bytes]]:
        return [(inst, a) for inst in self._instances() for a in _vips(inst)]

    def _v2_asso_index(self, row: tuple[InstanceState, bytes]) -> Oid | None:
        inst, address = row
        base = self.v2_index(inst)
        return None if base is None else (*base, *address)  # IpAddress: 4 sub-ids, no length

    def _build_v2(self) -> None:
        self.scalar(V2_NODE_VERSION, lambda: Integer(2))
        self.scalar(
            V2_NOTIFICATION_CNTL,
            lambda: Integer(CNTL_ENABLED if self.notifications_enabled() else CNTL_DISABLED),
        )
        oper = self.table(V2_OPER_ENTRY, self._instances, self.v2_index)
        oper.column(V2_OPER_VMAC, lambda i: OctetString(virtual_mac(i.config.virtual_router_id, 4)))
        oper.column(V2_OPER_STATE, lambda i: Integer(self._status(i)))
        oper.column(V2_OPER_ADMIN_STATE, lambda i: Integer(ADMIN_UP))
        oper.column(V2_OPER_PRIORITY, lambda i: Integer(i.base_priority))
        oper.column(V2_OPER_ADDR_COUNT, lambda i: Integer(min(len(_vips(i)), 255)))
        oper.column(V2_OPER_MASTER_IP, lambda i: IpAddress(self._master_ip(i)))
        oper.column(V2_OPER_PRIMARY_IP, lambda i: IpAddress(_packed(self.primary_address(i), 4)))
        oper.column(V2_OPER_AUTH_TYPE, lambda i: Integer(AUTH_TYPE.get(i.config.auth_type, 1)))
        oper.column(V2_OPER_AUTH_KEY, lambda i: OctetString(b""))  # RFC 2787: reads as empty
        oper.column(
            V2_OPER_ADV_INTERVAL,
            lambda i: Integer(min(max(round(i.config.advert_int), 1), 255)),  # seconds
        )
        oper.column(V2_OPER_PREEMPT, lambda i: Integer(FALSE if i.config.nopreempt else TRUE))
        oper.column(V2_OPER_UPTIME, self._v2_uptime)
        oper.column(V2_OPER_PROTOCOL, lambda i: Integer(PROTOCOL_IP))
        oper.column(V2_OPER_ROW_STATUS, lambda i: Integer(ROW_ACTIVE))

        asso = self.table(V2_ASSO_ENTRY, self._v2_asso_rows, self._v2_asso_index)
        asso.column(V2_ASSO_ROW_STATUS, lambda r: Integer(ROW_ACTIVE))

        def router(counter: str) -> Callable[[], Value]:
            return lambda: Counter32(self._router_errors(counter) & _U32)

        self.scalar((*V2_STATISTICS, V2_ROUTER_CHECKSUM_ERRORS), router("checksum_err"))
        self.scalar((*V2_STATISTICS, V2_ROUTER_VERSION_ERRORS), router("version_err"))
        self.scalar((*V2_STATISTICS, V2_ROUTER_VRID_ERRORS), router("vrid_err"))

        stats = self.table(V2_STATS_ENTRY, self._instances, self.v2_index)  # AUGMENTS oper
        for subid, counter in V2_STATS_COUNTERS.items():
            stats.column(subid, _counter32(counter))

    def _v2_uptime(self, inst: InstanceState) -> Value:
        """TimeStamp: when it left initialize, counted from the daemon's start (keepalived
        counts from its VRRP process start; the agent's own sysUpTime is snmpd's)."""
        since = self._up_for(inst)
        return TimeTicks(0 if since is None else _ticks(since - self.runtime.started))

    # --- notifications: (snmpTrapOID, varbinds) for Subagent.notify, None = do not send ----

    def v3_new_master(self, name: str) -> tuple[Oid, list[VarBind]] | None:
        inst = self.runtime.instances.get(name)
        index = self.v3_index(inst) if inst is not None else None
        if inst is None or index is None or not self.rfc6527 or not self.notifications_enabled():
            return None
        return V3_NEW_MASTER, [
            VarBind(
                (*V3_OPER_ENTRY, V3_OPER_MASTER_IP, *index), OctetString(self._master_ip(inst))
            ),
            VarBind(
                (*V3_STATS_ENTRY, V3_STATS_NEW_MASTER_REASON, *index),
                Integer(self.new_master_reason(inst)),
            ),
        ]

    def v3_proto_error(self, name: str) -> tuple[Oid, list[VarBind]] | None:
        inst = self.runtime.instances.get(name)
        index = self.v3_index(inst) if inst is not None else None
        if inst is None or index is None or not self.rfc6527 or not self.notifications_enabled():
            return None
        return V3_PROTO_ERROR, [
            VarBind(
                (*V3_STATS_ENTRY, V3_STATS_PROTO_ERR_REASON, *index),
                Integer(self._proto_err.get(name, 0)),
            )
        ]

    def v2_new_master(self, name: str) -> tuple[Oid, list[VarBind]] | None:
        inst = self.runtime.instances.get(name)
        index = self.v2_index(inst) if inst is not None else None
        if inst is None or index is None or not self.rfc2787 or not self.notifications_enabled():
            return None
        return V2_TRAP_NEW_MASTER, [
            VarBind((*V2_OPER_ENTRY, V2_OPER_MASTER_IP, *index), IpAddress(self._master_ip(inst)))
        ]

    def v2_auth_failure(
        self, name: str, source: object, reason: str
    ) -> tuple[Oid, list[VarBind]] | None:
        """`reason` is the receive check's (invalid_authtype, authtype_mismatch,
        auth_failure); anything else is no authentication failure."""
        inst = self.runtime.instances.get(name)
        error = AUTH_ERROR_TYPE.get(reason)
        if inst is None or error is None or self.v2_index(inst) is None:
            return None
        if not self.rfc2787 or not self.notifications_enabled():
            return None
        return V2_TRAP_AUTH_FAILURE, [
            VarBind((*V2_TRAP_PACKET_SRC, 0), IpAddress(_packed(source, 4))),
            VarBind((*V2_TRAP_AUTH_ERROR_TYPE, 0), Integer(error)),
        ]


def _default_primary(inst: InstanceState) -> object:
    c = inst.config
    if inst.state == "MASTER" and inst.master_address is not None:
        return inst.master_address  # the core sets it to its own primary address
    return c.unicast_src_ip or c.mcast_src_ip


def _counter64(counter: str) -> Callable[[InstanceState], Value]:
    return lambda i: Counter64(getattr(i.stats, counter) & _U64)


def _counter32(counter: str) -> Callable[[InstanceState], Value]:
    return lambda i: Counter32(getattr(i.stats, counter) & _U32)
