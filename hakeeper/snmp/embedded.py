"""Embedded SNMP agent: serves any `MibView` over UDP for hosts without snmpd.

The same view the AgentX subagent serves answers here, so one view serves both doors.
pysnmp does the message layer (BER, SNMPv2c communities, SNMPv3 USM with its reports),
except for the commonest datagram, a plain v2c Get/GetNext/GetBulk with a known community:
ber.py parses and answers those (pysnmp's codec was most of a walk's time); this module
owns what a request means: who may ask (community + source networks, v3 users
at authPriv), Get / GetNext / GetBulk / Set against the view, and the notifications.

- SNMPv1 is not served: its message model is removed, so v1 packets count as bad versions.
- v2c requests from a source outside the community's networks get no answer (like a wrong
  community) and count as `source_denied`.
- v3 requests must be authPriv; a known user below that, or a user without access, gets
  authorizationError.
- Writes are off unless a community or user has access "rw".
- GetBulk answers at most `EmbeddedConfig.bulk_max_varbinds` varbinds (and no more than fit
  the manager's message size), so a huge max-repetitions costs a bounded, small amount of
  work on the event loop; the manager simply asks again from where the answer stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config as pconfig
from pysnmp.entity.engine import SnmpEngine
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.secmod.rfc3826.priv import aes

from hakeeper.snmp import ber
from hakeeper.snmp.agentx.pdu import (
    END_OF_MIB_VIEW,
    NO_SUCH_OBJECT,
    NULL,
    Counter32,
    Counter64,
    EndOfMibView,
    Error,
    Gauge32,
    Integer,
    IpAddress,
    NoSuchInstance,
    NoSuchObject,
    Null,
    ObjectIdentifier,
    OctetString,
    Oid,
    Opaque,
    TimeTicks,
    Value,
    VarBind,
)
from hakeeper.snmp.agentx.session import SNMP_TRAP_OID_0, SYS_UPTIME_0, MibView

log = logging.getLogger(__name__)

Access = Literal["ro", "rw"]
AuthProtocol = Literal["SHA", "SHA-256", "SHA-512"]
PrivProtocol = Literal["AES"]

_AUTH = {
    "SHA": pconfig.USM_AUTH_HMAC96_SHA,
    "SHA-256": pconfig.USM_AUTH_HMAC192_SHA256,
    "SHA-512": pconfig.USM_AUTH_HMAC384_SHA512,
}
_PRIV = {"AES": pconfig.USM_PRIV_CFB128_AES}
# No Private Enterprise Number yet (as mib.ROOT sits under experimental): IANA reserves 0,
# so the engine ID names no real vendor. Change it together with mib.ROOT.
ENGINE_ID_ENTERPRISE = 0
_MAX_MESSAGE = 65507  # largest UDP payload over IPv4
_GET, _NEXT, _BULK = 0, 1, 2  # what a read asks
_FAST_KINDS = {ber.GET: _GET, ber.GET_NEXT: _NEXT, ber.GET_BULK: _BULK}
# Room for the scoped PDU's own header (contextEngineID, contextName, request-id, error
# fields, SEQUENCE headers) on top of the varbinds, when checking a response fits.
_PDU_OVERHEAD = 96
_NOTIFY_COMMUNITY_PREFIX = "notify:"


# --- configuration ---------------------------------------------------------------------------


def _networks(sources: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in sources)


@dataclass(frozen=True, slots=True)
class Community:
    """An SNMPv2c community. `sources` are the networks it is accepted from; empty means
    `EmbeddedConfig.allowed_sources`."""

    name: str = field(repr=False)
    access: Access = "ro"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("community: the name is empty")
        if self.access not in ("ro", "rw"):
            raise ValueError(f"community: access {self.access!r} is not ro or rw")
        _networks(self.sources)


@dataclass(frozen=True, slots=True)
class V3User:
    """An SNMPv3 USM user, always authPriv. access "none" suits a user only notifications
    are sent as. Keys are passphrases (net-snmp's -A / -X), at least 8 characters."""

    name: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)
    auth: AuthProtocol = "SHA"
    priv: PrivProtocol = "AES"
    access: Access | Literal["none"] = "ro"

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 32:
            raise ValueError(f"v3 user {self.name!r}: the name needs 1..32 characters")
        if self.auth not in _AUTH:
            raise ValueError(f"v3 user {self.name}: auth {self.auth!r} is not one of {list(_AUTH)}")
        if self.priv not in _PRIV:
            raise ValueError(f"v3 user {self.name}: priv {self.priv!r} is not one of {list(_PRIV)}")
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise ValueError(f"v3 user {self.name}: keys need at least 8 characters")
        if self.access not in ("ro", "rw", "none"):
            raise ValueError(f"v3 user {self.name}: access {self.access!r} is not ro, rw or none")


@dataclass(frozen=True, slots=True)
class TrapTarget:
    """Where notifications go: SNMPv2c trap with `community`, or SNMPv3 trap as `user`
    (the name of one of `EmbeddedConfig.users`). `host` is an address or a name."""

    host: str
    port: int = 162
    community: str | None = field(default=None, repr=False)
    user: str | None = None

    def __post_init__(self) -> None:
        if (self.community is None) == (self.user is None):
            raise ValueError(f"trap target {self.host}: give exactly one of community, user")
        if not 0 < self.port < 65536:
            raise ValueError(f"trap target {self.host}: port {self.port} is out of range")


@dataclass(frozen=True, slots=True)
class EmbeddedConfig:
    """Everything the embedded agent needs; no config-file parsing here.

    `listen` holds (address, port) pairs, IPv4 or IPv6 (port 0 picks a free one).
    `allowed_sources` (networks) applies to every community without its own `sources`;
    SNMPv3 is authenticated and not source-filtered. `engine_id` None derives a stable one
    from the host (see `derive_engine_id`).
    """

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 161),)
    communities: tuple[Community, ...] = ()
    users: tuple[V3User, ...] = ()
    allowed_sources: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    trap_targets: tuple[TrapTarget, ...] = ()
    engine_id: bytes | None = None
    bulk_max_varbinds: int = 256

    def __post_init__(self) -> None:
        if not self.listen:
            raise ValueError("snmp: nothing to listen on")
        for host, port in self.listen:
            ipaddress.ip_address(host)  # a literal address: the bind must not depend on DNS
            if not 0 <= port < 65536:
                raise ValueError(f"snmp: listen port {port} is out of range")
        _networks(self.allowed_sources)
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            raise ValueError("snmp: a v3 user is defined twice")
        for t in self.trap_targets:
            if t.user is not None and t.user not in names:
                raise ValueError(f"trap target {t.host}: unknown v3 user {t.user!r}")
        if self.engine_id is not None and not 5 <= len(self.engine_id) <= 32:
            raise ValueError("snmp: engine_id needs 5..32 octets")
        if self.bulk_max_varbinds < 1:
            raise ValueError("snmp: bulk_max_varbinds must be at least 1")


def derive_engine_id(seed: str | None = None) -> bytes:
    """A stable RFC 3411 engine ID (format 5, octets): the same host gets the same ID across
    restarts, so v3 managers and trap receivers keep their localized keys. The seed defaults
    to /etc/machine-id, else the host name."""
    if seed is None:
        try:
            seed = Path("/etc/machine-id").read_text().strip()
        except OSError:
            seed = ""
        seed = seed or socket.gethostname()
    digest = hashlib.sha256(b"hakeeper snmp engine\0" + seed.encode()).digest()
    return (0x80000000 | ENGINE_ID_ENTERPRISE).to_bytes(4, "big") + b"\x05" + digest[:12]


# --- values: agentx classes <-> pysnmp types ---------------------------------------------------

_FROM_PYSNMP: dict[Any, Callable[[Any], Value]] = {
    rfc1902.Integer32.tagSet: lambda v: Integer(int(v)),
    rfc1902.OctetString.tagSet: lambda v: OctetString(v.asOctets()),
    rfc1902.Null.tagSet: lambda v: Null(),
    rfc1902.ObjectIdentifier.tagSet: lambda v: ObjectIdentifier(tuple(v)),
    rfc1902.IpAddress.tagSet: lambda v: IpAddress(v.asOctets()),
    rfc1902.Counter32.tagSet: lambda v: Counter32(int(v)),
    rfc1902.Gauge32.tagSet: lambda v: Gauge32(int(v)),
    rfc1902.TimeTicks.tagSet: lambda v: TimeTicks(int(v)),
    rfc1902.Opaque.tagSet: lambda v: Opaque(v.asOctets()),
    rfc1902.Counter64.tagSet: lambda v: Counter64(int(v)),
    rfc1905.NoSuchObject.tagSet: lambda v: NoSuchObject(),
    rfc1905.NoSuchInstance.tagSet: lambda v: NoSuchInstance(),
    rfc1905.EndOfMibView.tagSet: lambda v: EndOfMibView(),
}


def from_pysnmp(value: Any) -> Value:
    """A pysnmp value (as decoded from a Set) as an agentx value class.
    Raises ValueError for a type SNMPv2 does not carry or a value out of its range."""
    convert = _FROM_PYSNMP.get(value.tagSet)
    if convert is None:
        raise ValueError(f"unsupported SNMP type {value.__class__.__name__}")
    return convert(value)


def to_pysnmp(value: Value) -> Any:
    """An agentx value class as the pysnmp type that encodes the same way."""
    match value:
        case Integer():
            return rfc1902.Integer32(value.value)
        case OctetString():
            return rfc1902.OctetString(value.value)
        case Null():
            return rfc1902.Null("")
        case ObjectIdentifier():
            return rfc1902.ObjectIdentifier(value.value)
        case IpAddress():
            return rfc1902.IpAddress(value.value)
        case Counter32():
            return rfc1902.Counter32(value.value)
        case Gauge32():
            return rfc1902.Gauge32(value.value)
        case TimeTicks():
            return rfc1902.TimeTicks(value.value)
        case Opaque():
            return rfc1902.Opaque(value.value)
        case Counter64():
            return rfc1902.Counter64(value.value)
        case NoSuchObject():
            return rfc1905.noSuchObject
        case NoSuchInstance():
            return rfc1905.noSuchInstance
        case EndOfMibView():
            return rfc1905.endOfMibView
    raise TypeError(f"not an SNMP value: {value!r}")


_SNMP_VALUES = (
    Integer, OctetString, Null, ObjectIdentifier, IpAddress, Counter32, Gauge32, TimeTicks,
    Opaque, Counter64, NoSuchObject, NoSuchInstance, EndOfMibView,
)  # fmt: skip


def _check_value(value: object) -> None:
    """A view answered something that is no SNMP value: the caller answers genErr."""
    if not isinstance(value, _SNMP_VALUES):
        raise TypeError(f"not an SNMP value: {value!r}")


def _tlv(content: int) -> int:
    """Octets of a BER TLV with `content` octets (one-octet tag)."""
    return 1 + (1 if content < 0x80 else 1 + (content.bit_length() + 7) // 8) + content


def _varbind_size(oid: Oid, value: Value) -> int:
    """The encoded size of one varbind, computed rather than encoded: cheap enough to
    check every answer against the manager's message size."""
    subids = [40 * oid[0] + oid[1], *oid[2:]] if len(oid) >= 2 else list(oid)
    # one octet an arc, and one more for each further 7 bits of the (few) big arcs
    name = len(subids) + sum((s.bit_length() - 1) // 7 for s in subids if s > 0x7F)
    match value:
        case Integer():
            body = (
                (value.value.bit_length() + 8) // 8
                if value.value >= 0
                else ((~value.value).bit_length() + 8) // 8
            )
        case Counter32() | Gauge32() | TimeTicks() | Counter64():
            body = value.value.bit_length() // 8 + 1
        case OctetString() | Opaque() | IpAddress():
            body = len(value.value)
        case ObjectIdentifier():
            body = _varbind_size(value.value, NO_SUCH_OBJECT) if value.value else 2
        case _:
            body = 0
    return _tlv(_tlv(name) + _tlv(body))


# --- transports --------------------------------------------------------------------------------


class _Guarded:
    """Hands datagrams to pysnmp inside a guard: nothing a peer sends may escape as an
    exception into the event loop. A notify-only socket takes nothing in at all."""

    loop: asyncio.AbstractEventLoop
    _callback_function: Callable[..., Any] | None
    serve: bool = True
    on_error: Callable[[BaseException], None] = staticmethod(lambda e: None)
    # the plain v2c reads, answered without pysnmp's codec; False hands a datagram on
    fast: Callable[[Any, Any, bytes], bool] = staticmethod(lambda t, a, d: False)

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        if self.serve and self._callback_function is not None:
            self.loop.call_soon(self._deliver, address, datagram)

    def _deliver(self, address: Any, datagram: bytes) -> None:
        if self._callback_function is None:  # closed meanwhile
            return
        try:
            if not self.fast(self, address, datagram):
                self._callback_function(self, address, datagram)
        except Exception as e:
            self.on_error(e)


class _Udp4(_Guarded, udp.UdpAsyncioTransport):
    pass


class _Udp6(_Guarded, udp6.Udp6AsyncioTransport):
    pass


def _source_ip(address: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except (ValueError, IndexError, TypeError):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _SetError(Exception):
    def __init__(self, status: int, index: int) -> None:
        self.status = status
        self.index = index


def _status(error: int) -> int:
    """A view's Error as an SNMP error-status; AgentX's own codes (>= 256) are genErr."""
    return int(error) if 0 < error <= Error.INCONSISTENT_NAME else Error.GEN_ERR


# --- the agent ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Principal:
    write: bool


class EmbeddedAgent:
    """Serves `view` as configured by `config`. `start()` binds, `stop()` closes; `notify()`
    sends a notification to every trap target; `counters` says what was refused and why."""

    def __init__(
        self,
        view: MibView,
        config: EmbeddedConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.view = view
        self.config = config
        self.engine_id = config.engine_id or derive_engine_id()
        self._clock = clock
        self._started = clock()
        self._counts: Counter[str] = Counter()
        self._tx = itertools.count(1)
        self._engine: SnmpEngine | None = None
        self._addresses: list[tuple[str, int]] = []
        self._notify_domains: dict[int, tuple[int, ...]] = {}  # address family -> domain
        # securityName -> who it is; v2c names are "c<index>", v3 names the user name
        self._v2c: dict[str, tuple[_Principal, tuple[Any, ...]]] = {}
        self._v3: dict[str, _Principal | None] = {}
        self._notify_names: dict[str, str] = {}  # notification community -> securityName
        self._communities: dict[bytes, str] = {}  # request community -> securityName

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (address, port) pairs actually bound, in `listen` order."""
        return list(self._addresses)

    async def start(self) -> None:
        """Bind every listen address (raises OSError naming it) and start answering."""
        if self.config.users and aes.PysnmpCryptoError:
            # without it pysnmp would answer every authPriv request with decryptionError
            raise RuntimeError("snmp: SNMPv3 privacy (AES) needs the 'cryptography' package")
        loop = asyncio.get_running_loop()
        engine = SnmpEngine(snmpEngineID=rfc1902.OctetString(self.engine_id))
        del engine.message_processing_subsystems[0]  # SNMPv1 is not served
        engine.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        self._engine = engine
        try:
            self._configure_security(engine)
            for i, (host, port) in enumerate(self.config.listen):
                t, bound = await self._open(loop, host, port, serve=True)
                pconfig.add_transport(engine, self._domain(t, i), t)
                self._addresses.append(bound)
            if self.config.trap_targets:
                await self._open_notify_sockets(loop, engine)
            engine.message_dispatcher.register_context_engine_id(
                engine.snmpEngineID,
                (
                    rfc1905.GetRequestPDU.tagSet,
                    rfc1905.GetNextRequestPDU.tagSet,
                    rfc1905.GetBulkRequestPDU.tagSet,
                    rfc1905.SetRequestPDU.tagSet,
                ),
                self._process_pdu,
            )
        except BaseException:
            await self.stop()
            raise
        self._started = self._clock()

    async def stop(self) -> None:
        engine, self._engine = self._engine, None
        self._addresses.clear()
        self._notify_domains.clear()
        if engine is not None and engine.transport_dispatcher is not None:
            engine.close_dispatcher()

    async def __aenter__(self) -> EmbeddedAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _domain(self, transport: Any, index: int) -> tuple[int, ...]:
        base = udp6.DOMAIN_NAME if isinstance(transport, _Udp6) else udp.DOMAIN_NAME
        return (*base, index)

    async def _open(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, *, serve: bool
    ) -> tuple[Any, tuple[str, int]]:
        """Bind the socket ourselves: errors surface here, and port 0 reports its port."""
        v6 = ipaddress.ip_address(host).version == 6
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if v6:  # one family per socket: a v4 listener is configured as such
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise OSError(e.errno, f"snmp: cannot listen on [{host}]:{port}: {e.strerror}") from e
        t = (_Udp6 if v6 else _Udp4)(loop=loop)
        t.serve = serve
        t.on_error = self._undecodable
        t.fast = self._fast
        await loop.create_datagram_endpoint(lambda: t, sock=sock)
        return t, sock.getsockname()[:2]

    async def _open_notify_sockets(self, loop: asyncio.AbstractEventLoop, engine: Any) -> None:
        """Notifications leave from their own ephemeral sockets (as snmpd's do): a listener
        bound to one address could not reach every target, and these take nothing in."""
        index = len(self.config.listen)
        for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                t, _ = await self._open(loop, host, 0, serve=False)
            except OSError as e:  # no IPv6 on this host: v6 targets then count as errors
                log.info("snmp: no notification socket for %s: %s", host, e)
                continue
            domain = self._domain(t, index)
            index += 1
            pconfig.add_transport(engine, domain, t)
            self._notify_domains[family] = domain

    def _configure_security(self, engine: Any) -> None:
        default_nets = _networks(self.config.allowed_sources)
        for i, c in enumerate(self.config.communities):
            name = f"c{i}"
            pconfig.add_v1_system(engine, name, c.name, securityName=name)
            nets = _networks(c.sources) if c.sources else default_nets
            self._v2c[name] = (_Principal(write=c.access == "rw"), nets)
            self._communities.setdefault(c.name.encode(), name)
        known = {c.name: f"c{i}" for i, c in enumerate(self.config.communities)}
        for t in self.config.trap_targets:
            if t.community is None or t.community in self._notify_names:
                continue
            # pysnmp sends v2c by securityName, so a notification community needs an
            # entry too; when it is not also a request community, requests using it are
            # refused in _process_pdu like any unknown community.
            name = known.get(t.community) or f"{_NOTIFY_COMMUNITY_PREFIX}{len(self._notify_names)}"
            if name not in self._v2c:
                pconfig.add_v1_system(engine, name, t.community, securityName=name)
            self._notify_names[t.community] = name
        for u in self.config.users:
            pconfig.add_v3_user(
                engine,
                u.name,
                _AUTH[u.auth],
                u.auth_key,
                _PRIV[u.priv],
                u.priv_key,
            )
            self._v3[u.name] = None if u.access == "none" else _Principal(u.access == "rw")

    # --- counters ------------------------------------------------------------------------

    _PYSNMP_COUNTERS = (
        ("bad_community", "__SNMPv2-MIB", "snmpInBadCommunityNames"),
        ("parse_errors", "__SNMPv2-MIB", "snmpInASNParseErrs"),
        ("bad_version", "__SNMPv2-MIB", "snmpInBadVersions"),
        ("silent_drops", "__SNMPv2-MIB", "snmpSilentDrops"),
        ("packets_in", "__SNMPv2-MIB", "snmpInPkts"),
        ("invalid_msgs", "__SNMP-MPD-MIB", "snmpInvalidMsgs"),
        ("unknown_pdu_handlers", "__SNMP-MPD-MIB", "snmpUnknownPDUHandlers"),
        ("unknown_security_models", "__SNMP-MPD-MIB", "snmpUnknownSecurityModels"),
        ("unknown_user", "__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
        ("wrong_digest", "__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
        ("decryption_errors", "__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
        ("not_in_time_window", "__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),
        ("unsupported_sec_level", "__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
        # also counts every manager's ordinary engine ID discovery
        ("unknown_engine_id", "__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),
    )
    _OWN_COUNTERS = (
        "requests",  # PDUs answered or refused by us (after pysnmp accepted the message)
        "source_denied",  # v2c from outside the community's networks: dropped
        "auth_denied",  # v3 below authPriv, a user without access, or a foreign context
        "write_denied",  # Set from a read-only community or user
        "too_big",  # a Get/GetNext/Set answer that did not fit: tooBig
        "bulk_truncated",  # a GetBulk answer cut at bulk_max_varbinds or the message size
        "view_errors",  # the view raised or broke its contract
        "undecodable",  # datagrams pysnmp's decoder failed on beyond its own checks
        "internal_errors",  # a request that failed in our own code: answered with genErr
        "response_errors",  # pysnmp could not build or send an answer
        "notifications_sent",
        "notification_errors",
    )

    @property
    def counters(self) -> dict[str, int]:
        """Refusals and errors by reason; pysnmp's SNMP-MIB / USM counters under short names
        (bad_community, unknown_user, wrong_digest, parse_errors, ...) next to ours."""
        out = {name: self._counts[name] for name in self._OWN_COUNTERS}
        if self._engine is not None:
            builder = self._engine.get_mib_builder()
            for name, module, symbol in self._PYSNMP_COUNTERS:
                (node,) = builder.import_symbols(module, symbol)
                out[name] = int(node.syntax)
        out["packets_in"] = out.get("packets_in", 0) + self._counts["fast_packets_in"]
        # unknown communities that exist only for notifications land in our count
        out["bad_community"] = out.get("bad_community", 0) + self._counts["bad_community"]
        return out

    def _undecodable(self, e: BaseException) -> None:
        # pysnmp raises the odd TypeError on garbage it does not check for: a malformed
        # datagram like the ones it counts itself, so it is counted next to those
        self._counts["undecodable"] += 1
        log.debug("snmp: undecodable datagram: %r", e)

    def _internal_error(self, e: BaseException) -> None:
        self._counts["internal_errors"] += 1
        log.warning("snmp: error handling a request: %r", e)

    # --- requests ------------------------------------------------------------------------

    def _process_pdu(
        self,
        engine: Any,
        mp_model: int,
        sec_model: int,
        sec_name: Any,
        sec_level: int,
        context_engine_id: Any,
        context_name: Any,
        pdu_version: int,
        pdu: Any,
        max_size: int,
        state_ref: Any,
    ) -> None:
        """pysnmp's callback for an authenticated request PDU."""
        try:
            answer = self._answer(
                engine, sec_model, str(sec_name), sec_level, context_name, pdu, max_size
            )
        except Exception as e:
            self._internal_error(e)
            answer = (Error.GEN_ERR, 0, v2c.apiPDU.get_varbinds(pdu))
        if answer is None:
            return  # dropped on purpose; counted already
        status, index, varbinds = answer
        rsp = v2c.apiPDU.get_response(pdu)
        v2c.apiPDU.set_error_status(rsp, status)
        v2c.apiPDU.set_error_index(rsp, index)
        v2c.apiPDU.set_varbinds(rsp, varbinds)
        try:
            engine.message_dispatcher.return_response_pdu(
                engine,
                mp_model,
                sec_model,
                sec_name,
                sec_level,
                context_engine_id,
                context_name,
                pdu_version,
                rsp,
                max_size,
                state_ref,
                {},
            )
        except Exception as e:  # pysnmp's StatusInformation mostly: say tooBig
            self._counts["response_errors"] += 1
            log.debug("snmp: response not sent: %r", e)

    def _answer(
        self,
        engine: Any,
        sec_model: int,
        sec_name: str,
        sec_level: int,
        context_name: Any,
        pdu: Any,
        max_size: int,
    ) -> tuple[int, int, list[Any]] | None:
        """(error-status, error-index, varbinds) to answer, or None to stay silent."""
        request = v2c.apiPDU.get_varbinds(pdu)
        if sec_model == 2:  # SNMPv2c
            entry = self._v2c.get(sec_name)
            if entry is None:
                self._counts["bad_community"] += 1
                return None
            principal, nets = entry
            ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            if not self._source_allowed(ctx.get("transportAddress") or (), nets):
                return None
        elif sec_model == 3:  # SNMPv3 USM
            user = self._v3.get(sec_name)
            if user is None or sec_level < 3 or bytes(context_name):
                self._counts["auth_denied"] += 1
                return Error.AUTHORIZATION_ERROR, 0, request
            principal = user
        else:  # v1's message model is removed: nothing else gets here
            return None
        self._counts["requests"] += 1
        tag = pdu.tagSet
        if tag == rfc1905.SetRequestPDU.tagSet:
            if not principal.write:
                self._counts["write_denied"] += 1
                return Error.NO_ACCESS, 1, request
            try:
                self._set(request)
            except _SetError as e:
                return e.status, e.index, request
            return 0, 0, request
        names = [tuple(name) for name, _ in request]
        limit = min(int(max_size), _MAX_MESSAGE) - _PDU_OVERHEAD
        if tag == rfc1905.GetBulkRequestPDU.tagSet:
            nr = int(v2c.apiBulkPDU.get_non_repeaters(pdu))
            mr = int(v2c.apiBulkPDU.get_max_repetitions(pdu))
            status, index, found = self._read(_BULK, names, nr, mr, limit)
        else:
            kind = _GET if tag == rfc1905.GetRequestPDU.tagSet else _NEXT
            status, index, found = self._read(kind, names, 0, 0, limit)
        if found is None:
            return status, index, request
        return status, index, [(o, to_pysnmp(v)) for o, v in found]

    def _source_allowed(self, address: Any, nets: tuple[Any, ...]) -> bool:
        ip = _source_ip(address)
        if ip is None or not any(ip in n for n in nets if n.version == ip.version):
            self._counts["source_denied"] += 1
            return False
        return True

    def _read(
        self, kind: int, names: Sequence[Oid], non_repeaters: int, max_repetitions: int, limit: int
    ) -> tuple[int, int, list[tuple[Oid, Value]] | None]:
        """(error-status, error-index, varbinds) of a Get, GetNext or GetBulk; varbinds None
        means "the request's own" (an error answer)."""
        if kind == _BULK:
            try:
                found = self._bulk(names, non_repeaters, max_repetitions, limit)
                for _, v in found:
                    _check_value(v)
            except Exception as e:
                self._view_error(f"getbulk: {e!r}")
                return Error.GEN_ERR, 1, None
            return 0, 0, found
        read = self._get if kind == _GET else self._next
        out = []
        size = 0
        for i, name in enumerate(names, 1):
            try:
                oid, value = read(name)
                _check_value(value)  # a view value of no SNMP type fails here
                out.append((oid, value))
                size += _varbind_size(oid, value)
            except Exception as e:
                self._view_error(f"{read.__name__}({name}): {e!r}")
                return Error.GEN_ERR, i, None
        if size > limit:
            self._counts["too_big"] += 1
            return Error.TOO_BIG, 0, []
        return 0, 0, out

    def _fast(self, transport: Any, address: Any, datagram: bytes) -> bool:
        """Answer a plain v2c Get/GetNext/GetBulk with a known community here (ber.py: a
        few µs a varbind instead of pysnmp's 60-80); False hands the datagram to pysnmp,
        which decodes, answers or counts everything else as before."""
        req = ber.parse_v2c_request(datagram)
        if req is None:
            return False
        name = self._communities.get(req.community)
        if name is None:
            return False  # pysnmp counts the unknown community
        self._counts["fast_packets_in"] += 1
        _, nets = self._v2c[name]  # reads only: any community may read
        if not self._source_allowed(address, nets):
            return True
        self._counts["requests"] += 1
        limit = _MAX_MESSAGE - _PDU_OVERHEAD
        try:
            status, index, found = self._read(
                _FAST_KINDS[req.tag], req.names, req.non_repeaters, req.max_repetitions, limit
            )
        except Exception as e:
            self._internal_error(e)
            status, index, found = Error.GEN_ERR, 0, None
        if found is None:
            found = [(n, NULL) for n in req.names]
        try:
            data = ber.encode_v2c_response(req.community, req.request_id, status, index, found)
            transport.transport.sendto(data, address)
        except Exception as e:
            self._counts["response_errors"] += 1
            log.debug("snmp: response not sent: %r", e)
        return True

    def _view_error(self, detail: str) -> None:
        self._counts["view_errors"] += 1
        log.warning("snmp: view: %s", detail)

    def _get(self, oid: Oid) -> tuple[Oid, Value]:
        value = self.view.get(oid)
        if isinstance(value, EndOfMibView):  # not an answer to Get
            return oid, NO_SUCH_OBJECT
        return oid, value

    def _next(self, oid: Oid) -> tuple[Oid, Value]:
        """The view's next OID after `oid`, or endOfMibView named by `oid` (RFC 3416 4.2.2)."""
        found = self.view.next(oid, False, ())
        if isinstance(found, EndOfMibView):
            return oid, END_OF_MIB_VIEW
        name, value = found
        # An answer not after the asked OID would walk a manager in circles: end it here.
        if tuple(name) <= oid or isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
            self._view_error(f"next({oid}) gave {name} = {value!r}")
            return oid, END_OF_MIB_VIEW
        return tuple(name), value

    def _bulk(
        self, names: Sequence[Oid], non_repeaters: int, max_repetitions: int, limit: int
    ) -> list[tuple[Oid, Value]]:
        """RFC 3416 4.2.3, bounded: at most bulk_max_varbinds varbinds and `limit` octets;
        the repetitions stop early once every repeater has reached the end of the view."""
        cap = self.config.bulk_max_varbinds
        n = min(max(non_repeaters, 0), len(names))
        found: list[tuple[Oid, Value]] = []
        size = 0

        def add(vb: tuple[Oid, Value]) -> bool:
            nonlocal size
            size += _varbind_size(*vb)
            if len(found) >= cap or size > limit:
                return False
            found.append(vb)
            return True

        for name in names[:n]:
            if not add(self._next(name)):
                self._counts["bulk_truncated"] += 1
                return found
        cursors = list(names[n:])
        for _ in range(max(max_repetitions, 0) if cursors else 0):
            row = [self._next(c) for c in cursors]
            for vb in row:
                if not add(vb):
                    self._counts["bulk_truncated"] += 1
                    return found
            if all(isinstance(v, EndOfMibView) for _, v in row):
                break
            cursors = [o for o, _ in row]  # an ended repeater asks again and ends again
        return found

    def _set(self, request: Sequence[tuple[Any, Any]]) -> None:
        """RFC 3416 4.2.5 over the view's phases: test all, commit all, undo what was
        committed (newest first) if a commit fails; cleanup always."""
        tx = next(self._tx) & 0xFFFFFFFF
        changes: list[tuple[Oid, Value]] = []
        for i, (name, value) in enumerate(request, 1):
            try:
                changes.append((tuple(name), from_pysnmp(value)))
            except (ValueError, TypeError):
                raise _SetError(Error.WRONG_TYPE, i) from None
        try:
            for i, (oid, value) in enumerate(changes, 1):
                error = self._phase("test_set", tx, oid, value, Error.GEN_ERR)
                if error:
                    raise _SetError(_status(error), i)
            for i, (oid, value) in enumerate(changes, 1):
                if self._phase("commit_set", tx, oid, value, Error.COMMIT_FAILED):
                    for undo_oid, undo_value in reversed(changes[: i - 1]):
                        if self._phase("undo_set", tx, undo_oid, undo_value, Error.UNDO_FAILED):
                            raise _SetError(Error.UNDO_FAILED, i)
                    raise _SetError(Error.COMMIT_FAILED, i)
        finally:
            try:
                self.view.cleanup_set(tx)
            except Exception as e:
                self._view_error(f"cleanup_set({tx}): {e!r}")

    def _phase(self, phase: str, tx: int, oid: Oid, value: Value, on_raise: int) -> int:
        try:
            return int(getattr(self.view, phase)(tx, oid, value))
        except Exception as e:
            self._view_error(f"{phase}({oid}): {e!r}")
            return on_raise

    # --- notifications -------------------------------------------------------------------

    def uptime(self) -> int:
        """Centiseconds since start, for sysUpTime.0 (TimeTicks wrap at 2**32)."""
        return int((self._clock() - self._started) * 100) & 0xFFFFFFFF

    async def notify(
        self, trap_oid: Oid, varbinds: Iterable[VarBind] = (), uptime: int | None = None
    ) -> int:
        """Send an SNMPv2-Trap (v2c or v3 per target) to every trap target: sysUpTime.0,
        snmpTrapOID.0, then `varbinds`. Returns how many were sent; failures are counted."""
        engine = self._engine
        if engine is None:
            self._counts["notification_errors"] += len(self.config.trap_targets)
            return 0
        vbs = [
            (SYS_UPTIME_0, to_pysnmp(TimeTicks(self.uptime() if uptime is None else uptime))),
            (SNMP_TRAP_OID_0, to_pysnmp(ObjectIdentifier(trap_oid))),
            *((vb.name, to_pysnmp(vb.value)) for vb in varbinds),
        ]
        loop = asyncio.get_running_loop()
        sent = 0
        for target in self.config.trap_targets:
            try:
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
                family, *_, address = infos[0]
                domain = self._notify_domains[family]
                pdu = v2c.SNMPv2TrapPDU()
                v2c.apiTrapPDU.set_defaults(pdu)
                v2c.apiPDU.set_varbinds(pdu, vbs)
                if target.user is not None:
                    sec = (3, 3, target.user, 3)  # mp v3, USM, user, authPriv
                else:
                    sec = (1, 2, self._notify_names[target.community or ""], 1)  # v2c
                mp_model, sec_model, sec_name, sec_level = sec
                # pysnmp looks principals up by its own string type: a str never matches
                engine.message_dispatcher.send_pdu(
                    engine,
                    domain,
                    address[:2] if family == socket.AF_INET else address,
                    mp_model,
                    sec_model,
                    rfc1902.OctetString(sec_name),
                    sec_level,
                    engine.snmpEngineID,
                    rfc1902.OctetString(b""),
                    1,
                    pdu,
                    False,
                )
            except Exception as e:
                self._counts["notification_errors"] += 1
                log.warning("snmp: notification to %s:%d failed: %r", target.host, target.port, e)
                continue
            sent += 1
            self._counts["notifications_sent"] += 1
        return sent
