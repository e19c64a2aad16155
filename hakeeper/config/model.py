"""The frozen configuration model both readers (YAML, keepalived.conf) produce.

Field names are keepalived's keywords. Defaults are keepalived's defaults. Every object
carries an `origin` (file, line) that is excluded from equality, so the same config read
from keepalived.conf and from its YAML conversion compares equal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lvs_model imports this module; annotations only
    from hakeeper.config.lvs_model import SslConfig, VirtualServer, VirtualServerGroup

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was read: shown in every error and warning."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NO_ORIGIN = Origin("<none>", 0)
VRRP_MCAST_GROUP4 = ipaddress.IPv4Address("224.0.0.18")  # RFC 5798 section 5.1.1.2
VRRP_MCAST_GROUP6 = ipaddress.IPv6Address("ff02::12")  # RFC 5798 section 5.1.2.2


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """One `virtual_ipaddress` line: `198.18.0.100/24 dev eth0 label eth0:1 scope global`."""

    address: IPAddress
    prefixlen: int
    dev: str | None = None
    label: str | None = None
    scope: str | None = None
    broadcast: str | None = None
    no_track: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.address.version

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class VirtualRoute:
    """One `virtual_routes` line. `dst` may be 'default'; unknown options are kept verbatim."""

    dst: str
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    table: int | None = None
    metric: int | None = None
    scope: str | None = None
    type: str | None = None  # blackhole, unreachable, prohibit
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VirtualRule:
    """One `virtual_rules` line: `from 198.18.0.100 table 100 priority 100`."""

    src: str | None = None  # 'from'
    dst: str | None = None  # 'to'
    table: int | None = None
    priority: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TrackScript:
    """A `track_script` reference; `weight` overrides the script's own when set."""

    name: str
    weight: int | None = None
    reverse: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TrackInterface:
    name: str
    weight: int = 0
    reverse: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TrackFile:
    name: str
    weight: int | None = None
    reverse: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TrackProcess:
    """A `track_process` reference; `weight` (and `reverse`) override the process's own."""

    name: str
    weight: int | None = None
    reverse: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VrrpScript:
    """`vrrp_script NAME { script ...; interval 1; weight 0; rise 1; fall 1 }`."""

    name: str
    script: tuple[str, ...]  # argv after keepalived's quoting rules
    interval: float = 1.0
    timeout: float | None = None  # keepalived: defaults to interval when unset
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VrrpTrackFile:
    """`vrrp_track_file NAME { file PATH; weight 1; init_file [VALUE] [overwrite] }`."""

    name: str
    file: str
    weight: int = 1
    weight_reverse: bool = False
    init_file: int | None = None  # write this value at startup if the file is missing
    init_file_overwrite: bool = False  # ... or even if it exists
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VrrpTrackProcess:
    """`vrrp_track_process NAME { process NAME [ARGS...]; param_match; weight; quorum... }`.

    keepalived matches `process` against /proc/PID/stat's comm (at most 15 characters) unless
    arguments, `param_match` or `full_command` ask for the command line (argv[0] and then
    the arguments: `exact` all of them, `partial` the first ones, `initial` the first ones
    with the last given one a prefix). Quorum is held while quorum <= count <= quorum_max.
    `fork_delay`/`terminate_delay` (both set by `delay`) postpone gaining/losing quorum.
    """

    name: str
    process: str
    params: tuple[str, ...] = ()
    param_match: str | None = None  # None, "exact", "partial" or "initial"
    full_command: bool = False
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None  # None: no upper bound (keepalived's UINT_MAX)
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def uses_cmdline(self) -> bool:
        """Match the command line rather than comm (keepalived's full_command)."""
        return self.full_command or bool(self.params) or self.param_match is not None


@dataclass(frozen=True, slots=True)
class Notify:
    """Notify scripts shared by instances and sync groups (argv, already split)."""

    notify: tuple[str, ...] | None = None
    notify_master: tuple[str, ...] | None = None
    notify_backup: tuple[str, ...] | None = None
    notify_fault: tuple[str, ...] | None = None
    notify_stop: tuple[str, ...] | None = None
    notify_master_rx_lower_pri: tuple[str, ...] | None = None
    smtp_alert: bool | None = None


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    """`vrrp_instance NAME { ... }` with keepalived's defaults."""

    name: str
    interface: str
    virtual_router_id: int
    state: str = "BACKUP"  # the initial state asked for: MASTER or BACKUP
    priority: int = 100
    advert_int: float = 1.0  # seconds; v3 allows centiseconds
    version: int = 2  # global vrrp_version, forced to 3 for IPv6
    family: int = 4  # 4 or 6, from the virtual addresses (native_ipv6 forces 6)
    nopreempt: bool = False
    preempt_delay: float = 0.0
    auth_type: str | None = None  # PASS or AH (v2 only)
    auth_pass: str | None = None
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()
    mcast_src_ip: IPAddress | None = None
    unicast_src_ip: IPAddress | None = None
    unicast_peer: tuple[IPAddress, ...] = ()
    unicast_ttl: int = 255
    check_unicast_src: bool = False
    use_vmac: str | None = None  # interface name; "" -> keepalived's vrrp.<VRID>
    vmac_xmit_base: bool = False
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0  # 0 = off
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay: float | None = None
    garp_lower_prio_repeat: int | None = None
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    dont_track_primary: bool = False
    accept: bool | None = None  # None: keepalived's default (accept unless vrrp_strict)
    strict_mode: bool | None = None
    track_script: tuple[TrackScript, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    track_file: tuple[TrackFile, ...] = ()
    track_process: tuple[TrackProcess, ...] = ()
    notify: Notify = Notify()
    debug: int = 0
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def is_owner(self) -> bool:
        return self.priority == 255

    @property
    def vmac_interface(self) -> str | None:
        if self.use_vmac is None:
            return None
        return self.use_vmac or f"vrrp.{self.virtual_router_id}"


@dataclass(frozen=True, slots=True)
class VrrpSyncGroup:
    name: str
    group: tuple[str, ...]
    track_script: tuple[TrackScript, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    track_file: tuple[TrackFile, ...] = ()
    track_process: tuple[TrackProcess, ...] = ()
    global_tracking: bool = False
    sync_group_tracking_weight: bool = False
    notify: Notify = Notify()
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SnmpCommunity:
    name: str = field(repr=False)
    access: str = "ro"  # ro | rw | trap (only sends notifications)
    sources: tuple[str, ...] = ()  # networks it may come from (none: 127.0.0.0/8, ::1)


@dataclass(frozen=True, slots=True)
class SnmpUser:
    """An SNMPv3 USM user, always authPriv."""

    name: str
    auth: str  # SHA | SHA-256 | SHA-512
    auth_key: str = field(repr=False)
    priv: str = "AES"
    priv_key: str = field(default="", repr=False)
    access: str = "ro"  # ro | rw | none (only sends notifications)


@dataclass(frozen=True, slots=True)
class SnmpTrapTarget:
    host: str
    port: int = 162
    community: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class SnmpAgent:
    """`snmp_agent { listen ...; community ...; user ...; trap_target ... }`: hakeeper's
    embedded SNMP agent for hosts without snmpd."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 161),)
    communities: tuple[SnmpCommunity, ...] = ()
    users: tuple[SnmpUser, ...] = ()
    trap_targets: tuple[SnmpTrapTarget, ...] = ()
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


METRICS_PORT = 9165  # the keepalived exporters' port: existing scrape configs keep working


@dataclass(frozen=True, slots=True)
class Metrics:
    """`metrics { listen ADDR[:PORT] ... }`: hakeeper's Prometheus endpoint (hakeeper's own
    block; keepalived has none). Off unless the block is present."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", METRICS_PORT),)
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    vrrp_version: int = 2
    vrrp_mcast_group4: ipaddress.IPv4Address = VRRP_MCAST_GROUP4
    vrrp_mcast_group6: ipaddress.IPv6Address = VRRP_MCAST_GROUP6
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_skip_check_adv_addr: bool = False
    vrrp_strict: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_startup_delay: float = 0.0
    enable_script_security: bool = False
    script_user: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_connect_timeout: float = 30.0
    smtp_helo_name: str | None = None  # keepalived: the local host name when unset
    # None = unset: an instance/group without its own smtp_alert takes smtp_alert_vrrp,
    # else smtp_alert, else off (keepalived vrrp.c)
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    notify_fifo: str | None = None  # FIFO path; lines `INSTANCE "VI_1" MASTER 100 SEQ`
    notify_fifo_script: tuple[str, ...] | None = None  # started with the FIFO path appended
    vrrp_notify_fifo: str | None = None
    vrrp_notify_fifo_script: tuple[str, ...] | None = None
    enable_dbus: bool = False  # also serve keepalived's org.keepalived.Vrrp1
    dbus_address: str | None = None  # None: --dbus-address, else the system bus
    enable_snmp_vrrp: bool = False
    enable_snmp_checker: bool = False
    enable_snmp_rfcv2: bool = False
    enable_snmp_rfcv3: bool = False
    enable_traps: bool = False
    snmp_socket: str | None = None
    snmp_agent: SnmpAgent | None = None  # hakeeper's own: the embedded agent (no snmpd)
    metrics: Metrics | None = None  # hakeeper's own: the Prometheus endpoint (None: off)
    smtp_alert_checker: bool | None = None  # LVS mails: see lvs_model.effective_*_smtp_alert
    lvs_backend: str = "auto"  # hakeeper's own: auto (IPVS if the kernel has it), ipvs, nftables
    # hakeeper's own: accept (and count) VRRP in an nftables table of ours, `inet hakeeper`;
    # its chains' priority (before the usual filter 0 and keepalived's filter - 1)
    vrrp_firewall: bool = False
    vrrp_firewall_priority: int = -10
    # hakeeper's own: how often the data plane's counters are read for the views. Listing a
    # big nftables table delays other work on the host (bench/lvs.py: ~0.2 s advert stalls
    # with 1000 destinations), so not often by default.
    lvs_counters_interval: float = 30.0
    lvs_flush: bool = False  # empty the kernel's LVS table at startup
    # on stop (`lvs_flush_on_stop [VS]`): None removes each configured service's real
    # servers then the service, "VS" removes the configured services whole, "full" empties
    # the kernel's whole LVS table
    lvs_flush_on_stop: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def lvs_flush_onstop(self) -> bool:
        """keepalived's deprecated spelling, as a yes/no: anything flushed on stop."""
        return self.lvs_flush_on_stop is not None


@dataclass(frozen=True, slots=True)
class Warning_:
    """A non-fatal finding (unknown keyword...), printed as `FILE:LINE: message`."""

    origin: Origin
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class Config:
    global_defs: GlobalDefs = GlobalDefs()
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    vrrp_track_files: tuple[VrrpTrackFile, ...] = ()
    vrrp_track_processes: tuple[VrrpTrackProcess, ...] = ()
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroup, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: SslConfig | None = None  # the `SSL { }` block for SSL_GET
    warnings: tuple[Warning_, ...] = field(default=(), compare=False)
    source: str = field(default="", compare=False)

    def instance(self, name: str) -> VrrpInstance:
        for inst in self.vrrp_instances:
            if inst.name == name:
                return inst
        raise KeyError(name)
