"""The frozen model of keepalived's LVS half: virtual servers, real servers and checkers.

Field names are keepalived's keywords (the current name where keepalived kept an old one as an
alias: `lvs_sched` for lb_algo, `lvs_method` for lb_kind, `retry` for nb_get_retry). A value
of None means "not set here": the effective value comes from the enclosing block (checker →
real server → virtual server → keepalived's default), resolved by the `effective_*` helpers
so every consumer resolves it the same way. Values keepalived itself fills in while reading
(a real server's port and weight from its virtual server, a FILE_CHECK's file and weight from
its track_file) are filled in by the builder, so they are never None here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hakeeper.config.model import NO_ORIGIN, GlobalDefs, IPAddress, Origin

# keepalived's defaults (check_data.c alloc_vs/alloc_rs, check_api.c queue_checker)
DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1  # keepalived: retry 1 unless set (HTTP_GET's old nb_get_retry too)
DEFAULT_DELAY_BEFORE_RETRY = 1.0
DEFAULT_PERSISTENCE_TIMEOUT = 360  # `persistence_timeout` with no value
DEFAULT_LVS_SCHED = "wlc"  # the kernel's default scheduler, as ipvsadm
# keepalived sets UDP when an address service has no `protocol` (check_data.c); hakeeper keeps
# TCP, the common case, and the builder warns where the two differ
DEFAULT_PROTOCOL = "TCP"
SMTP_DEFAULT_HELO = "smtpchecker.keepalived.org"  # check_smtp.h
# per kind, where keepalived's checker differs from the common default (check_dns.c, check_misc.c)
DEFAULT_RETRY_BY_KIND = {"DNS_CHECK": 3, "MISC_CHECK": 0}
# HTTP_GET/SSL_GET wait 3s before a retry (check_http.c); DNS_CHECK waits a delay_loop
DEFAULT_DELAY_BEFORE_RETRY_BY_KIND = {"HTTP_GET": 3.0, "SSL_GET": 3.0}
IPVS_WEIGHT_LIMIT = 2**31 - 1  # ip_vs.h IPVS_WEIGHT_MAX

LVS_SCHEDULERS = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)
LVS_METHODS = frozenset({"NAT", "DR", "TUN"})
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
# scheduler flags, canonical names: flag-1/flag-2 are named sh-*/mh-* for those schedulers
SCHED_FLAGS = frozenset(
    {"ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback"}
)
DNS_TYPES = frozenset({"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"})
HTTP_PROTOCOLS = frozenset({"1.0", "1.1", "1.0C"})
CHECKER_KINDS = frozenset(
    {
        "TCP_CHECK",
        "HTTP_GET",
        "SSL_GET",
        "SMTP_CHECK",
        "DNS_CHECK",
        "MISC_CHECK",
        "UDP_CHECK",
        "PING_CHECK",
        "FILE_CHECK",
    }
)


@dataclass(frozen=True, slots=True)
class CheckUrl:
    """One `url { path / digest / status_code }` of HTTP_GET or SSL_GET."""

    path: str
    digest: str | None = None  # lower-case hex MD5 of the body
    # inclusive ranges, sorted and merged; empty means keepalived's default: any 2xx
    status_code: tuple[tuple[int, int], ...] = ()
    virtualhost: str | None = None  # None: the checker's (then real, then virtual server's)
    tls_compliant: bool = False  # SSL_GET: send close_notify (either here or on the checker)
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    def status_ok(self, code: int) -> bool:
        ranges = self.status_code or ((200, 299),)
        return any(lo <= code <= hi for lo, hi in ranges)


@dataclass(frozen=True, slots=True)
class Checker:
    """One checker block inside a real_server (`TCP_CHECK { ... }`, `HTTP_GET { ... }`...).

    One class for every kind keeps config conversion and views uniform; fields that do not
    apply to a kind stay at their default and the builder refuses them in that kind's block.
    """

    kind: str  # one of CHECKER_KINDS
    # common to all kinds (keepalived's checker_common keywords; MISC_CHECK has no
    # connection ones, FILE_CHECK none at all)
    connect_ip: IPAddress | None = None  # default: the real server's address
    connect_port: int | None = None  # default: the real server's port
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    connect_timeout: float | None = None
    fwmark: int | None = None  # SO_MARK on the checker's packets
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    alpha: bool | None = None
    log_all_failures: bool | None = None
    # HTTP_GET / SSL_GET
    url: tuple[CheckUrl, ...] = ()
    virtualhost: str | None = None
    http_protocol: str | None = None  # "1.0" (default), "1.1", "1.0C" (1.0 + Connection: close)
    enable_sni: bool = False
    sni_name: str | None = None  # SNI sent instead of the virtualhost (implies enable_sni)
    fast_recovery: bool = False  # check every url at once after a failure
    tls_compliant: bool = False
    # SMTP_CHECK
    helo_name: str | None = None  # None: SMTP_DEFAULT_HELO
    # DNS_CHECK
    type: str = "SOA"
    name: str = "."
    # MISC_CHECK
    misc_path: tuple[str, ...] | None = None
    misc_timeout: float | None = None  # None (or 0): the virtual server's delay_loop
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None
    # UDP_CHECK
    payload: bytes | None = None  # None: a random payload
    require_reply: bytes | None = None  # a reply is required; non-empty: must start with it
    require_reply_mask: bytes | None = None  # bits set: ignored in the reply (`x` digits)
    min_reply_length: int = 0
    max_reply_length: int = 255
    # FILE_CHECK (`track_file NAME`, resolved: the file and, unless set here, its weight)
    track_file: str | None = None
    file: str | None = None
    weight: int = 0  # FILE_CHECK: the value read is multiplied by it
    weight_reverse: bool = False
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RealServer:
    """`real_server IP [PORT] { ... }` (and the sorry server)."""

    address: IPAddress
    port: int | None = None  # None: none given and none inherited (fwmark, group; 0 on the wire)
    weight: int = 1  # the virtual server's `weight` when not set here
    lvs_method: str | None = None  # None: the virtual server's
    inhibit_on_failure: bool | None = None  # None: the virtual server's
    notify_up: tuple[str, ...] | None = None
    notify_down: tuple[str, ...] | None = None
    uthreshold: int = 0
    lthreshold: int = 0
    alpha: bool | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    connect_timeout: float | None = None
    delay_loop: float | None = None
    virtualhost: str | None = None
    smtp_alert: bool | None = None  # None: see effective_rs_smtp_alert
    snmp_name: str | None = None
    checkers: tuple[Checker, ...] = ()
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.address.version

    @property
    def name(self) -> str:
        """`198.18.1.10:80`, `[fd00:198:18::10]:80`, or the bare address without a port."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class VsgEntry:
    """One line of a virtual_server_group: `IP[-LAST] [PORT]`, `NET/LEN [PORT]` or
    `fwmark N [inet|inet6]` (a /LEN is kept as its first and last address)."""

    address: IPAddress | None = None
    last: IPAddress | None = None  # range end (keepalived: `198.18.0.100-110`), inclusive
    port: int | None = None
    fwmark: int | None = None
    family: int | None = None  # a fwmark's `inet`/`inet6`; None: the virtual server's
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    def addresses(self) -> tuple[IPAddress, ...]:
        if self.address is None:
            return ()
        if self.last is None:
            return (self.address,)
        first = int(self.address)
        return tuple(ipaddress.ip_address(i) for i in range(first, int(self.last) + 1))


@dataclass(frozen=True, slots=True)
class VirtualServerGroup:
    """`virtual_server_group NAME { lines }`."""

    name: str
    entries: tuple[VsgEntry, ...] = ()
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VirtualServer:
    """`virtual_server IP PORT`, `virtual_server fwmark N` or `virtual_server group NAME`."""

    address: IPAddress | None = None
    port: int | None = None  # 0: `virtual_server IP` alone (persistent, any port)
    fwmark: int | None = None
    group: str | None = None
    family: int = 4  # ip_family, or from the address / the real servers
    protocol: str = DEFAULT_PROTOCOL  # fwmark services: unused
    lvs_sched: str = DEFAULT_LVS_SCHED
    lvs_method: str = "NAT"
    sched_flags: tuple[str, ...] = ()  # sorted: ops, sh-port, sh-fallback, mh-port, mh-fallback...
    persistence_timeout: int | None = None  # None: no persistence
    # a netmask; an IPv6 service's prefix length N is kept as the mask (ffff:...:0 with N ones)
    persistence_granularity: IPAddress | None = None
    persistence_engine: str | None = None
    sorry_server: RealServer | None = None
    sorry_server_inhibit: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: tuple[str, ...] | None = None
    quorum_down: tuple[str, ...] | None = None
    alpha: bool = False
    omega: bool = False
    inhibit_on_failure: bool = False
    ha_suspend: bool = False
    delay_loop: float = DEFAULT_DELAY_LOOP
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    virtualhost: str | None = None
    smtp_alert: bool | None = None  # None: see effective_vs_smtp_alert
    snmp_name: str | None = None
    weight: int = 1  # the default weight of its real servers (already applied to them)
    real_servers: tuple[RealServer, ...] = ()
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)

    @property
    def name(self) -> str:
        """A stable display name: `198.18.0.100:80/TCP`, `fwmark:1/TCP`, `group:web/TCP`."""
        if self.fwmark is not None:
            return f"fwmark:{self.fwmark}/{self.protocol}"
        if self.group is not None:
            return f"group:{self.group}/{self.protocol}"
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{host}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class SslConfig:
    """The top-level `SSL { password ca certificate key }` block SSL_GET checkers use;
    with none of them set keepalived makes its own context."""

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    origin: Origin = field(default=NO_ORIGIN, compare=False, repr=False)


def prefix_length(mask: IPAddress) -> int:
    """The number of leading one bits of a netmask (an IPv6 persistence_granularity)."""
    bits = mask.max_prefixlen
    value = int(mask)
    return bits - (((1 << bits) - 1) & ~value).bit_length()


# -- effective values: checker → real server → virtual server → keepalived's default


def effective_delay_loop(vs: VirtualServer, rs: RealServer, ck: Checker) -> float:
    return _first(ck.delay_loop, rs.delay_loop, vs.delay_loop, DEFAULT_DELAY_LOOP)


def effective_connect_timeout(vs: VirtualServer, rs: RealServer, ck: Checker) -> float:
    return _first(ck.connect_timeout, rs.connect_timeout, vs.connect_timeout,
                  DEFAULT_CONNECT_TIMEOUT)  # fmt: skip


def effective_retry(vs: VirtualServer, rs: RealServer, ck: Checker) -> int:
    """keepalived: 1, but 3 for DNS_CHECK and 0 for MISC_CHECK."""
    return _first(ck.retry, rs.retry, vs.retry, DEFAULT_RETRY_BY_KIND.get(ck.kind, DEFAULT_RETRY))


def effective_delay_before_retry(vs: VirtualServer, rs: RealServer, ck: Checker) -> float:
    """keepalived: 1s, but 3s for HTTP_GET/SSL_GET and the delay_loop for DNS_CHECK."""
    value = _first(ck.delay_before_retry, rs.delay_before_retry, vs.delay_before_retry, None)
    if value is not None:
        return value
    if ck.kind == "DNS_CHECK":
        return effective_delay_loop(vs, rs, ck)
    return DEFAULT_DELAY_BEFORE_RETRY_BY_KIND.get(ck.kind, DEFAULT_DELAY_BEFORE_RETRY)


def effective_warmup(vs: VirtualServer, rs: RealServer, ck: Checker) -> float:
    """keepalived: warmup defaults to the delay_loop (a random start in 0..warmup)."""
    return _first(ck.warmup, rs.warmup, vs.warmup, effective_delay_loop(vs, rs, ck))


def effective_alpha(vs: VirtualServer, rs: RealServer, ck: Checker | None = None) -> bool:
    """alpha: a real server starts down until its checkers first succeed. A FILE_CHECK knows
    its state at once, so it never starts down (check_file.c)."""
    if ck is not None and ck.kind == "FILE_CHECK":
        return False
    return _first(ck.alpha if ck else None, rs.alpha, vs.alpha)


def effective_virtualhost(
    vs: VirtualServer, rs: RealServer, ck: Checker, url: CheckUrl | None = None
) -> str | None:
    return (url.virtualhost if url else None) or ck.virtualhost or rs.virtualhost or vs.virtualhost


def effective_misc_timeout(vs: VirtualServer, rs: RealServer, ck: Checker) -> float:
    """keepalived runs a MISC_CHECK script for misc_timeout, else the virtual server's
    delay_loop (check_misc.c: not the checker's)."""
    return ck.misc_timeout or vs.delay_loop


def effective_inhibit(vs: VirtualServer, rs: RealServer) -> bool:
    return _first(rs.inhibit_on_failure, vs.inhibit_on_failure)


def effective_method(vs: VirtualServer, rs: RealServer) -> str:
    return rs.lvs_method or vs.lvs_method


def effective_vs_smtp_alert(g: GlobalDefs, vs: VirtualServer) -> bool:
    """Mail on quorum changes: the virtual server's, else smtp_alert_checker, else smtp_alert,
    else off."""
    return _first(vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, False)


def effective_rs_smtp_alert(g: GlobalDefs, rs: RealServer) -> bool:
    """Mail on real server changes: the real server's (not inherited from its virtual server),
    else smtp_alert_checker, else smtp_alert, else on (keepalived keeps its old default)."""
    return _first(rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, True)


def _first(*values):  # type: ignore[no-untyped-def]
    for v in values:
        if v is not None:
            return v
    return values[-1]
