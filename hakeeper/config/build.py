"""Turn a neutral keyword tree (from either reader) into the frozen model, and validate it.

Both readers (keepalived.conf and YAML) produce a list of `Node`s: a keyword, its words, an
optional child block and the place it was read. Everything keepalived-specific about meaning,
defaults and checks lives here, once, as one keyword table per block.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from hakeeper.config.errors import ConfigError, ConfigErrors
from hakeeper.config.model import (
    METRICS_PORT,
    Config,
    GlobalDefs,
    IPAddress,
    Metrics,
    Notify,
    Origin,
    SnmpAgent,
    SnmpCommunity,
    SnmpTrapTarget,
    SnmpUser,
    TrackFile,
    TrackInterface,
    TrackProcess,
    TrackScript,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
    VrrpTrackProcess,
    Warning_,
)
from hakeeper.config.reach import unreachable_vips


@dataclass
class Node:
    """One statement: `keyword args...` with an optional `{ children }` block.

    `argv` is set by the reader for script keywords (script, notify_*): the command split
    with keepalived's quoting and escapes, since only the reader still knows the raw text.
    `extra` holds the words after the quoted command (a notify script's user and group).
    """

    keyword: str
    args: list[str]
    origin: Origin
    children: list[Node] | None = None
    argv: tuple[str, ...] | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [self.keyword, *self.args]


# Keywords whose value is a command line, re-split with keepalived's quoting rules.
SCRIPT_KEYWORDS = frozenset(
    {
        "script",
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_master_rx_lower_pri",
        "notify_deleted",
        "notify_fifo_script",
        "vrrp_notify_fifo_script",
        "notify_up",
        "notify_down",
        "quorum_up",
        "quorum_down",
        "misc_path",
    }
)

# Top-level blocks keepalived knows that hakeeper does not model yet: skipped silently.
KNOWN_SKIPPED_ROOTS = frozenset(
    {
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "linkbeat_interfaces",
        "linkbeat_use_polling",
        "garp_group",
        "track_group",
        "interface_up_down_delays",
        "bfd_instance",
        "net_namespace",
        "net_namespace_ipvs",
        "namespace_with_ipsets",
        "use_pid_dir",
        "instance",
        "child_wait_time",
    }
)

_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})
_ROUTE_TABLES = {"default": 253, "main": 254, "local": 255}


class Invalid(Exception):
    """A bad value; the builder turns it into a ConfigError at the node's origin."""


Fields = dict[str, Any]
Handler = Callable[["Builder", Node, Fields], None]
Parser = Callable[["Builder", Node], Any]


# ---------------------------------------------------------------- value parsers


def _scalar(b: Builder, node: Node, *, max_args: int = 1) -> list[str]:
    if node.children is not None:
        raise Invalid(f"{node.keyword} does not take a {{ }} block")
    if len(node.args) > max_args:
        b.warn(
            node.origin, f"{node.keyword}: extra words ignored: {' '.join(node.args[max_args:])}"
        )
    return node.args[:max_args]


def _one(b: Builder, node: Node) -> str:
    args = _scalar(b, node)
    if not args:
        raise Invalid(f"{node.keyword} needs a value")
    return args[0]


def to_int(keyword: str, text: str, lo: int, hi: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise Invalid(f"{keyword} '{text}' is not an integer") from None
    if not lo <= value <= hi:
        raise Invalid(f"{keyword} {value} is out of range {lo}..{hi}")
    return value


def to_seconds(keyword: str, text: str, lo: float, hi: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{keyword} '{text}' is not a number of seconds") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid(f"{keyword} {text} is out of range {lo:g}..{hi:g}")
    return value


def to_ip(keyword: str, text: str, version: int | None = None) -> IPAddress:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{keyword} '{text}' is not an address") from None
    if version is not None and addr.version != version:
        raise Invalid(f"{keyword} '{text}' is not an IPv{version} address")
    return addr


def to_network(keyword: str, text: str) -> None:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise Invalid(f"{keyword} '{text}' is not a network") from None


def _int(lo: int, hi: int) -> Parser:
    return lambda b, node: to_int(node.keyword, _one(b, node), lo, hi)


def _seconds(lo: float, hi: float) -> Parser:
    return lambda b, node: to_seconds(node.keyword, _one(b, node), lo, hi)


def _word(b: Builder, node: Node) -> str:
    return _one(b, node)


def _flag(b: Builder, node: Node) -> bool:
    """A flag alone means on; keepalived also takes an optional true/false (on/off...)."""
    args = _scalar(b, node)
    if not args:
        return True
    word = args[0].lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise Invalid(f"{node.keyword} '{args[0]}' is not true or false")


def _ip(version: int | None = None) -> Parser:
    return lambda b, node: to_ip(node.keyword, _one(b, node), version)


def _argv(b: Builder, node: Node) -> tuple[str, ...]:
    if node.children is not None:
        raise Invalid(f"{node.keyword} does not take a {{ }} block")
    if not node.argv:
        raise Invalid(f"{node.keyword} needs a command")
    return node.argv


def _set(name: str, parse: Parser) -> Handler:
    def handle(b: Builder, node: Node, f: Fields) -> None:
        f[name] = parse(b, node)

    return handle


def _lines(node: Node) -> list[tuple[list[str], Origin]]:
    """The lines of a value block (`virtual_ipaddress { ... }`), each as its words."""
    if node.children is None:
        if node.args:  # keepalived allows nothing after the keyword but the block
            raise Invalid(f"{node.keyword} needs a {{ }} block, not '{' '.join(node.args)}'")
        raise Invalid(f"{node.keyword} needs a {{ }} block")
    out = []
    for child in node.children:
        if child.children is not None:
            raise Invalid(f"{node.keyword}: unexpected block after '{child.keyword}'")
        out.append((child.words, child.origin))
    return out


def _weight(keyword: str, words: list[str], i: int, lo: int, hi: int) -> tuple[int, bool]:
    """`weight N [reverse]` starting at words[i]."""
    if i + 1 >= len(words):
        raise Invalid(f"{keyword} {words[0]}: weight needs a value")
    value = to_int(f"{keyword} {words[0]} weight", words[i + 1], lo, hi)
    rest = words[i + 2 :]
    if rest and rest != ["reverse"]:
        raise Invalid(f"{keyword} {words[0]}: unexpected '{' '.join(rest)}'")
    return value, bool(rest)


def _tracks(kind: type, lo: int, hi: int) -> Parser:
    """track_script / track_interface / track_file: `NAME [weight N [reverse]]` per line."""

    def parse(b: Builder, node: Node) -> tuple[Any, ...]:
        out = []
        for words, origin in _lines(node):
            try:
                kw: dict[str, Any] = {}
                if len(words) > 1:
                    if words[1] != "weight":
                        raise Invalid(f"{node.keyword} {words[0]}: unexpected '{words[1]}'")
                    kw["weight"], kw["reverse"] = _weight(node.keyword, words, 1, lo, hi)
                out.append(kind(name=words[0], origin=origin, **kw))
            except Invalid as e:
                b.error(origin, str(e))
        return tuple(out)

    return parse


def _vips(b: Builder, node: Node) -> tuple[VirtualAddress, ...]:
    out = []
    for words, origin in _lines(node):
        try:
            out.append(parse_vip(b, node.keyword, words, origin))
        except Invalid as e:
            b.error(origin, str(e))
    return tuple(out)


_VIP_OPTS = {"dev": "dev", "label": "label", "scope": "scope", "brd": "broadcast"}
_VIP_OPTS["broadcast"] = "broadcast"
_VIP_IGNORED_FLAGS = frozenset({"home", "-nodad", "nodad", "noprefixroute", "autojoin"})
_VIP_IGNORED_OPTS = frozenset({"preferred_lft", "valid_lft", "track_group"})


def parse_vip(b: Builder, keyword: str, words: list[str], origin: Origin) -> VirtualAddress:
    """`ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] [no_track]`; no /LEN means a host."""
    text, _, plen = words[0].partition("/")
    addr = to_ip(keyword, text)
    full = 32 if addr.version == 4 else 128
    prefixlen = to_int(f"{keyword} {words[0]} prefix length", plen, 0, full) if plen else full
    kw: dict[str, Any] = {}
    i = 1
    while i < len(words):
        opt = words[i]
        if opt in _VIP_OPTS or opt in _VIP_IGNORED_OPTS:
            if i + 1 >= len(words):
                raise Invalid(f"{keyword} {words[0]}: {opt} needs a value")
            if opt in _VIP_OPTS:
                kw[_VIP_OPTS[opt]] = words[i + 1]
            else:
                b.warn(origin, f"{keyword} option '{opt}' is not supported; ignored")
            i += 2
            continue
        if opt == "no_track":
            kw["no_track"] = True
        elif opt in _VIP_IGNORED_FLAGS:
            b.warn(origin, f"{keyword} option '{opt}' is not supported; ignored")
        else:
            raise Invalid(f"{keyword} {words[0]}: unknown option '{opt}'")
        i += 1
    return VirtualAddress(address=addr, prefixlen=prefixlen, origin=origin, **kw)


def _table(keyword: str, text: str) -> int:
    if text in _ROUTE_TABLES:
        return _ROUTE_TABLES[text]
    return to_int(f"{keyword} table", text, 0, 2**32 - 1)


_ROUTE_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw"})
_ROUTE_OPTS: dict[str, str] = {
    "via": "via",
    "gw": "via",
    "dev": "dev",
    "oif": "dev",
    "src": "src",
    "table": "table",
    "metric": "metric",
    "priority": "metric",
    "preference": "metric",
    "scope": "scope",
}


def parse_route(keyword: str, words: list[str], origin: Origin) -> VirtualRoute:
    """`[TYPE] [to] DST [via GW] [dev IF] [src ADDR] [table N] [metric N] [scope S]`."""
    kw: dict[str, Any] = {}
    dst: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in _ROUTE_TYPES and dst is None:
            kw["type"] = word
            i += 1
        elif word in _ROUTE_OPTS or word == "to":
            if i + 1 >= len(words):
                raise Invalid(f"{keyword}: {word} needs a value")
            value = words[i + 1]
            name = "dst" if word == "to" else _ROUTE_OPTS[word]
            if name == "dst":
                dst = value
            elif name == "table":
                kw[name] = _table(keyword, value)
            elif name == "metric":
                kw[name] = to_int(f"{keyword} metric", value, 0, 2**32 - 1)
            else:
                kw[name] = value
            i += 2
        elif dst is None:
            dst = word
            i += 1
        else:
            raise Invalid(f"{keyword}: unknown option '{word}'")
    if dst is None:
        raise Invalid(f"{keyword}: no destination")
    if dst != "default":
        try:
            ipaddress.ip_network(dst, strict=False)
        except ValueError:
            raise Invalid(f"{keyword} '{dst}' is not a network") from None
    for name in ("via", "src"):
        if name in kw:
            to_ip(f"{keyword} {name}", kw[name])
    return VirtualRoute(dst=dst, origin=origin, **kw)


_RULE_OPTS: dict[str, str] = {
    "from": "src",
    "to": "dst",
    "table": "table",
    "lookup": "table",
    "priority": "priority",
    "preference": "priority",
    "pref": "priority",
    "prio": "priority",
    "iif": "iif",
    "oif": "oif",
    "fwmark": "fwmark",
}


def parse_rule(keyword: str, words: list[str], origin: Origin) -> VirtualRule:
    """`from ADDR to ADDR table N priority N iif IF oif IF fwmark N`."""
    kw: dict[str, Any] = {}
    for i in range(0, len(words), 2):
        word = words[i]
        if word not in _RULE_OPTS:
            raise Invalid(f"{keyword}: unknown option '{word}'")
        if i + 1 >= len(words):
            raise Invalid(f"{keyword}: {word} needs a value")
        name, value = _RULE_OPTS[word], words[i + 1]
        if name == "table":
            kw[name] = _table(keyword, value)
        elif name in ("priority", "fwmark"):
            kw[name] = to_int(f"{keyword} {word}", value.split("/")[0], 0, 2**32 - 1)
        else:
            if name in ("src", "dst") and value != "all":
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise Invalid(f"{keyword} {word} '{value}' is not a network") from None
            kw[name] = value
    return VirtualRule(origin=origin, **kw)


def _each_line(parse: Callable[[str, list[str], Origin], Any]) -> Parser:
    def run(b: Builder, node: Node) -> tuple[Any, ...]:
        out = []
        for words, origin in _lines(node):
            try:
                out.append(parse(node.keyword, words, origin))
            except Invalid as e:
                b.error(origin, str(e))
        return tuple(out)

    return run


def _peers(b: Builder, node: Node) -> tuple[IPAddress, ...]:
    out = []
    for words, origin in _lines(node):
        try:
            out.append(to_ip(node.keyword, words[0]))
            if len(words) > 1:  # min_ttl / max_ttl
                b.warn(origin, f"unicast_peer options '{' '.join(words[1:])}' not supported")
        except Invalid as e:
            b.error(origin, str(e))
    return tuple(out)


def _names(b: Builder, node: Node) -> tuple[str, ...]:
    """A block of names, several per line allowed (`group { VI_1 VI_2 }`)."""
    return tuple(w for words, _ in _lines(node) for w in words)


def _weight_handler(lo: int, hi: int) -> Handler:
    def handle(b: Builder, node: Node, f: Fields) -> None:
        args = _scalar(b, node, max_args=2)
        f["weight"], f["weight_reverse"] = _weight(node.keyword, ["", *args], 0, lo, hi)

    return handle


def _user_group(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node, max_args=2)
    if not args:
        raise Invalid(f"{node.keyword} needs a user name")
    f["user"] = args[0]
    if len(args) > 1:
        f["group"] = args[1]


def _notify(name: str) -> Handler:
    def handle(b: Builder, node: Node, f: Fields) -> None:
        if node.extra:  # keepalived: `notify_master SCRIPT [USER [GROUP]]`
            b.warn(node.origin, f"{node.keyword}: running as user '{node.extra[0]}' not supported")
        f.setdefault("notify", {})[name] = _argv(b, node)

    return handle


def _smtp_alert(b: Builder, node: Node, f: Fields) -> None:
    f.setdefault("notify", {})["smtp_alert"] = _flag(b, node)


def _unsupported(b: Builder, node: Node, f: Fields) -> None:
    b.warn(node.origin, f"'{node.keyword}' is not supported by hakeeper; ignored")


NOTIFY_TABLE: dict[str, Handler] = {
    name: _notify(name)
    for name in (
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_master_rx_lower_pri",
    )
} | {"smtp_alert": _smtp_alert}


def _ignored(*names: str) -> dict[str, Handler]:
    """keepalived keywords hakeeper reads past with a warning (names may be one spaced string)."""
    return dict.fromkeys((n for group in names for n in group.split()), _unsupported)


# ---------------------------------------------------------------- keyword tables


def _global_email(b: Builder, node: Node, f: Fields) -> None:
    f["notification_email"] = _names(b, node)


def _script_user(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node, max_args=2)  # `script_user USER [GROUP]`
    if not args:
        raise Invalid("script_user needs a user name")
    f["script_user"] = args[0]


def _snmp_rfc(b: Builder, node: Node, f: Fields) -> None:
    f["enable_snmp_rfcv2"] = f["enable_snmp_rfcv3"] = _flag(b, node)


def _smtp_server(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node, max_args=2)
    if not args:
        raise Invalid("smtp_server needs a value")
    # keepalived takes `smtp_server HOST [PORT]`; keep the port in the one string,
    # bracketing an IPv6 address so the port stays separable ([fd00::1]:2525)
    host = f"[{args[0]}]" if ":" in args[0] and len(args) > 1 else args[0]
    f["smtp_server"] = host if len(args) == 1 else f"{host}:{args[1]}"


def _fifo(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node, max_args=3)  # `notify_fifo PATH [USER [GROUP]]`
    if not args:
        raise Invalid(f"{node.keyword} needs a FIFO path")
    if len(args) > 1:
        b.warn(node.origin, f"{node.keyword}: owner '{' '.join(args[1:])}' not supported; "
                            "the FIFO is owned by hakeeper's user")  # fmt: skip
    f[node.keyword] = args[0]


def _fifo_script(b: Builder, node: Node, f: Fields) -> None:
    if node.extra:  # keepalived: `notify_fifo_script SCRIPT [USER [GROUP]]`
        b.warn(node.origin, f"{node.keyword}: running as user '{node.extra[0]}' not supported")
    f[node.keyword] = _argv(b, node)


SNMP_AUTH = ("SHA", "SHA-256", "SHA-512")
SNMP_KEY_MIN = 8  # RFC 3414: USM passwords of fewer than 8 octets are refused


def _snmp_agent(b: Builder, node: Node, f: Fields) -> None:
    """hakeeper's own block: the embedded SNMP agent (see SnmpAgent)."""
    listen: list[tuple[str, int]] = []
    communities: list[SnmpCommunity] = []
    users: list[SnmpUser] = []
    targets: list[SnmpTrapTarget] = []
    for words, origin in _lines(node):
        try:
            kind, args = words[0], words[1:]
            if kind == "listen" and len(args) == 1:
                listen.append(_host_port("snmp_agent listen", args[0], 161))
            elif kind == "community" and args:
                access = args[1] if len(args) > 1 else "ro"
                if access not in ("ro", "rw", "trap"):
                    raise Invalid(f"snmp_agent community: access '{access}' is not ro, rw or trap")
                for net in args[2:]:
                    to_network("snmp_agent community source", net)
                communities.append(SnmpCommunity(args[0], access, tuple(args[2:])))
            elif kind == "user" and len(args) in (5, 6):
                name, auth, auth_key, priv, priv_key = args[:5]
                access = args[5] if len(args) == 6 else "ro"
                if auth not in SNMP_AUTH or priv != "AES":
                    raise Invalid(f"snmp_agent user {name}: auth must be one of "
                                  f"{', '.join(SNMP_AUTH)} and priv AES")  # fmt: skip
                if min(len(auth_key), len(priv_key)) < SNMP_KEY_MIN:
                    raise Invalid(f"snmp_agent user {name}: keys need {SNMP_KEY_MIN}+ characters")
                if access not in ("ro", "rw", "none"):
                    raise Invalid(
                        f"snmp_agent user {name}: access '{access}' is not ro, rw or none"
                    )
                users.append(SnmpUser(name, auth, auth_key, priv, priv_key, access))
            elif kind == "trap_target" and len(args) == 3 and args[1] in ("community", "user"):
                host, port = _host_port("snmp_agent trap_target", args[0], 162)
                who = {args[1]: args[2]}
                targets.append(SnmpTrapTarget(host, port, **who))
            else:
                raise Invalid(
                    f"snmp_agent: '{' '.join(words)}' is not listen ADDR[:PORT], community NAME "
                    "[ro|rw|trap] [NET...], user NAME AUTH KEY AES KEY [ro|rw|none] or "
                    "trap_target HOST[:PORT] community|user NAME"
                )
        except Invalid as e:
            b.error(origin, str(e))
    known = {u.name for u in users}
    for t in targets:
        if t.user is not None and t.user not in known:
            b.error(node.origin, f"snmp_agent trap_target {t.host}: no user {t.user}")
    f["snmp_agent"] = SnmpAgent(
        listen=tuple(listen) or SnmpAgent().listen,
        communities=tuple(communities),
        users=tuple(users),
        trap_targets=tuple(targets),
        origin=node.origin,
    )


def _metrics(b: Builder, node: Node, f: Fields) -> None:
    """hakeeper's own block: the Prometheus endpoint (see Metrics); present means on."""
    listen: list[tuple[str, int]] = []
    for words, origin in _lines(node):
        try:
            if words[0] != "listen" or len(words) != 2:
                raise Invalid(f"metrics: '{' '.join(words)}' is not listen ADDR[:PORT]")
            where = _host_port("metrics listen", words[1], METRICS_PORT)
            if where in listen:
                raise Invalid(f"metrics: listen {words[1]} given twice")
            listen.append(where)
        except Invalid as e:
            b.error(origin, str(e))
    f["metrics"] = Metrics(listen=tuple(listen) or Metrics().listen, origin=node.origin)


def _host_port(what: str, text: str, default_port: int) -> tuple[str, int]:
    """`198.18.0.1`, `198.18.0.1:1161`, `[fd00:198:18::1]:1161`, `fd00:198:18::1`."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return str(to_ip(what, host)), to_int(f"{what} port", port, 1, 65535) if port else default_port


def _lvs_backend(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)  # hakeeper's own keyword: which kernel data plane serves LVS
    if value not in ("auto", "ipvs", "nftables"):
        raise Invalid(f"lvs_backend '{value}' is not auto, ipvs or nftables")
    f["lvs_backend"] = value


def _lvs_flush_on_stop(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)  # `lvs_flush_on_stop [VS]`: bare is a full flush
    if args and args[0] != "VS":
        raise Invalid(f"{node.keyword} '{args[0]}' is not VS (or nothing, for a full flush)")
    f["lvs_flush_on_stop"] = "VS" if args else "full"


GLOBAL_TABLE: dict[str, Handler] = {
    "router_id": _set("router_id", _word),
    "vrrp_version": _set("vrrp_version", _int(2, 3)),
    "vrrp_mcast_group4": _set("vrrp_mcast_group4", _ip(4)),
    "vrrp_mcast_group6": _set("vrrp_mcast_group6", _ip(6)),
    "vrrp_garp_master_delay": _set("vrrp_garp_master_delay", _seconds(0, 86400)),
    "vrrp_garp_master_repeat": _set("vrrp_garp_master_repeat", _int(0, 2**31 - 1)),
    "vrrp_garp_master_refresh": _set("vrrp_garp_master_refresh", _seconds(0, 86400)),
    "vrrp_garp_master_refresh_repeat": _set("vrrp_garp_master_refresh_repeat", _int(0, 2**31)),
    "vrrp_garp_interval": _set("vrrp_garp_interval", _seconds(0, 1)),
    "vrrp_gna_interval": _set("vrrp_gna_interval", _seconds(0, 1)),
    "vrrp_skip_check_adv_addr": _set("vrrp_skip_check_adv_addr", _flag),
    "vrrp_strict": _set("vrrp_strict", _flag),
    "vrrp_check_unicast_src": _set("vrrp_check_unicast_src", _flag),
    "vrrp_startup_delay": _set("vrrp_startup_delay", _seconds(0, 3600)),
    "enable_script_security": _set("enable_script_security", _flag),
    "script_user": _script_user,
    "notification_email": _global_email,
    "notification_email_from": _set("notification_email_from", _word),
    "smtp_server": _smtp_server,
    "smtp_connect_timeout": _set("smtp_connect_timeout", _seconds(0, 3600)),
    "smtp_helo_name": _set("smtp_helo_name", _word),
    "smtp_alert": _set("smtp_alert", _flag),
    "smtp_alert_vrrp": _set("smtp_alert_vrrp", _flag),
    "notify_fifo": _fifo,
    "notify_fifo_script": _fifo_script,
    "vrrp_notify_fifo": _fifo,
    "vrrp_notify_fifo_script": _fifo_script,
    "enable_dbus": _set("enable_dbus", _flag),
    "dbus_address": _set("dbus_address", _word),  # hakeeper's: system, session, none, ADDRESS
    "enable_snmp_vrrp": _set("enable_snmp_vrrp", _flag),
    "enable_snmp_keepalived": _set("enable_snmp_vrrp", _flag),  # keepalived's old name
    "enable_snmp_checker": _set("enable_snmp_checker", _flag),
    "enable_snmp_rfc": _snmp_rfc,
    "enable_snmp_rfcv2": _set("enable_snmp_rfcv2", _flag),
    "enable_snmp_rfcv3": _set("enable_snmp_rfcv3", _flag),
    "enable_traps": _set("enable_traps", _flag),
    "snmp_socket": _set("snmp_socket", _word),
    "snmp_agent": _snmp_agent,
    "metrics": _metrics,
    "smtp_alert_checker": _set("smtp_alert_checker", _flag),
    "lvs_backend": _lvs_backend,
    "vrrp_firewall": _set("vrrp_firewall", _flag),  # hakeeper's own (firewall/table.py)
    "vrrp_firewall_priority": _set("vrrp_firewall_priority", _int(-1000, 1000)),
    "lvs_counters_interval": _set("lvs_counters_interval", _seconds(1, 86400)),
    "lvs_flush": _set("lvs_flush", _flag),
    "lvs_flush_on_stop": _lvs_flush_on_stop,
    "lvs_flush_onstop": _lvs_flush_on_stop,  # keepalived's old name
} | _ignored(
    """
    linkbeat_use_polling process_names process_name vrrp_process_name
    checker_process_name lvs_process_name bfd_process_name use_symlink_paths
    set_supplementary_groups startup_script
    startup_script_timeout shutdown_script shutdown_script_timeout max_auto_priority
    min_auto_priority_delay checker_log_all_failures
    dynamic_interfaces no_email_faults default_interface disable_local_igmp
    v3_checksum_as_v2 lvs_timeouts
    lvs_sync_daemon vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat
    vrrp_down_timer_adverts vrrp_min_garp vrrp_garp_extra_if vrrp_vmac_garp_intvl
    vrrp_lower_prio_no_advert vrrp_higher_prio_send_advert vrrp_iptables vrrp_ipsets
    nftables nftables_priority nftables_ifindex vrrp_priority vrrp_no_swap
    vrrp_rt_priority vrrp_cpu_affinity vrrp_rlimit_rttime vrrp_rlimit_rtime
    nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_counters
    vrrp_notify_priority_changes fifo_write_vrrp_states_on_reload lvs_notify_fifo
    lvs_notify_fifo_script checker_priority checker_no_swap checker_rt_priority
    checker_cpu_affinity checker_rlimit_rttime checker_rlimit_rtime bfd_priority
    bfd_no_swap bfd_rt_priority bfd_cpu_affinity bfd_rlimit_rttime bfd_rlimit_rtime
    snmp_vs_stats_update_interval snmp_rs_stats_update_interval dbus_service_name
    dbus_no_interface_name vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force
    process_monitor_rcv_bufs process_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
    lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force rs_init_notifies no_checker_emails
    vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier vrrp_delay_after_boot log_unknown_vrids
    vrrp_owner_ignore_adverts vmac_prefix vmac_addr_prefix umask random_seed
    reload_check_config reload_time_file reload_repeat reload_file include_check
    config_save_dir tmp_config_directory data_use_instance json_version iproute_usr_dir
    iproute_etc_dir state_dump_file stats_dump_file json_dump_file
    """
)  # fmt: skip


def _script_cmd(b: Builder, node: Node, f: Fields) -> None:
    if node.extra:  # keepalived only runs the first word unless the command is quoted
        b.warn(node.origin, f"script: words after the command ignored (quote the whole command): "
                            f"{' '.join(node.extra)}")  # fmt: skip
    f["script"] = _argv(b, node)


SCRIPT_TABLE: dict[str, Handler] = {
    "script": _script_cmd,
    "interval": _set("interval", _seconds(0.001, 2**31)),
    "timeout": _set("timeout", _seconds(0.001, 2**31)),
    "weight": _weight_handler(-253, 253),
    "rise": _set("rise", _int(1, 2**31 - 1)),
    "fall": _set("fall", _int(1, 2**31 - 1)),
    "user": _user_group,
    "init_fail": _set("init_fail", _flag),
}


def _init_file(b: Builder, node: Node, f: Fields) -> None:
    """`init_file [VALUE] [overwrite]` (track_file.c track_file_init_handler): VALUE
    defaults to 0; keepalived warns outside -254..254 but keeps it."""
    value = 0
    for word in _scalar(b, node, max_args=2):
        if word == "overwrite":
            f["init_file_overwrite"] = True
        else:
            value = to_int("init_file", word, -(2**31), 2**31 - 1)
            if not -254 <= value <= 254:
                b.warn(node.origin, f"init_file {value} is outside the sensible range -254..254")
    f["init_file"] = value


TRACK_FILE_TABLE: dict[str, Handler] = {
    "file": _set("file", _word),
    "weight": _weight_handler(-254, 254),
    "init_file": _init_file,
}


def _process(b: Builder, node: Node, f: Fields) -> None:
    """`process NAME [ARGS...]`: arguments mean matching the command line, exactly unless
    param_match says otherwise (vrrp_parser.c vrrp_tprocess_process_handler)."""
    args = _scalar(b, node, max_args=1 << 16)
    if not args:
        raise Invalid("process needs a process name")
    f["process"] = args[0]
    f["params"] = tuple(args[1:])


def _param_match(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)
    value = args[0] if args else "exact"  # a bare `param_match` is exact
    if value not in ("exact", "initial", "partial"):
        raise Invalid(f"param_match '{value}' is not exact, initial or partial")
    f["param_match"] = value


def _process_delay(*names: str) -> Handler:
    # keepalived: `delay` sets both; 1us..3600s
    def handle(b: Builder, node: Node, f: Fields) -> None:
        value = to_seconds(node.keyword, _one(b, node), 0.000001, 3600)
        for name in names:
            f[name] = value

    return handle


TRACK_PROCESS_TABLE: dict[str, Handler] = {
    "process": _process,
    "param_match": _param_match,
    "weight": _weight_handler(-254, 254),
    "quorum": _set("quorum", _int(1, 65535)),
    "quorum_max": _set("quorum_max", _int(0, 65535)),
    "delay": _process_delay("fork_delay", "terminate_delay"),
    "terminate_delay": _process_delay("terminate_delay"),
    "fork_delay": _process_delay("fork_delay"),
    "full_command": _set("full_command", _flag),
}


def _state(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if value not in ("MASTER", "BACKUP"):
        raise Invalid(f"state '{value}' is not MASTER or BACKUP")
    f["state"] = value


def _preempt(b: Builder, node: Node, f: Fields) -> None:
    f["nopreempt"] = not _flag(b, node)


def _no_accept(b: Builder, node: Node, f: Fields) -> None:
    f["accept"] = not _flag(b, node)


def _native_ipv6(b: Builder, node: Node, f: Fields) -> None:
    if _flag(b, node):
        f["family"] = 6


def _use_vmac(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)
    if args and args[0].lower() in _FALSE:
        f.pop("use_vmac", None)
        return
    f["use_vmac"] = args[0] if args else ""


def _debug(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)
    f["debug"] = to_int("debug", args[0], 0, 4) if args else 1


def _auth_type(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if value not in ("PASS", "AH"):
        raise Invalid(f"auth_type '{value}' is not PASS or AH")
    f["auth_type"] = value


def _auth_pass(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if len(value.encode()) > 8:  # the v2 packet has 8 bytes for it
        b.warn(node.origin, "auth_pass truncated to 8 characters")
        value = value.encode()[:8].decode(errors="ignore")
    f["auth_pass"] = value


AUTH_TABLE: dict[str, Handler] = {"auth_type": _auth_type, "auth_pass": _auth_pass}


def _authentication(b: Builder, node: Node, f: Fields) -> None:
    if node.children is None:
        raise Invalid("authentication needs a { } block")
    b.walk(node.children, AUTH_TABLE, f)


INSTANCE_TABLE: dict[str, Handler] = {
    "state": _state,
    "interface": _set("interface", _word),
    "virtual_router_id": _set("virtual_router_id", _int(1, 255)),
    "priority": _set("priority", _int(1, 255)),
    "advert_int": _set("advert_int", _seconds(0.01, 255)),
    "version": _set("version", _int(2, 3)),
    "native_ipv6": _native_ipv6,
    "nopreempt": _set("nopreempt", _flag),
    "preempt": _preempt,
    "preempt_delay": _set("preempt_delay", _seconds(0, 1000)),
    "authentication": _authentication,
    "virtual_ipaddress": _set("virtual_ipaddress", _vips),
    "virtual_ipaddress_excluded": _set("virtual_ipaddress_excluded", _vips),
    "virtual_routes": _set("virtual_routes", _each_line(parse_route)),
    "virtual_rules": _set("virtual_rules", _each_line(parse_rule)),
    "mcast_src_ip": _set("mcast_src_ip", _ip()),
    "unicast_src_ip": _set("unicast_src_ip", _ip()),
    "unicast_peer": _set("unicast_peer", _peers),
    "unicast_ttl": _set("unicast_ttl", _int(1, 255)),
    "check_unicast_src": _set("check_unicast_src", _flag),
    "use_vmac": _use_vmac,
    "vmac_xmit_base": _set("vmac_xmit_base", _flag),
    "garp_master_delay": _set("garp_master_delay", _seconds(0, 86400)),
    "garp_master_repeat": _set("garp_master_repeat", _int(0, 2**31 - 1)),
    "garp_master_refresh": _set("garp_master_refresh", _seconds(0, 86400)),
    "garp_master_refresh_repeat": _set("garp_master_refresh_repeat", _int(0, 2**31 - 1)),
    "garp_lower_prio_delay": _set("garp_lower_prio_delay", _seconds(0, 86400)),
    "garp_lower_prio_repeat": _set("garp_lower_prio_repeat", _int(0, 2**31 - 1)),
    "lower_prio_no_advert": _set("lower_prio_no_advert", _flag),
    "higher_prio_send_advert": _set("higher_prio_send_advert", _flag),
    "dont_track_primary": _set("dont_track_primary", _flag),
    "accept": _set("accept", _flag),
    "no_accept": _no_accept,
    "strict_mode": _set("strict_mode", _flag),
    "track_script": _set("track_script", _tracks(TrackScript, -253, 253)),
    "track_interface": _set("track_interface", _tracks(TrackInterface, -254, 254)),
    "track_file": _set("track_file", _tracks(TrackFile, -254, 254)),
    "track_process": _set("track_process", _tracks(TrackProcess, -254, 254)),
    "debug": _debug,
} | NOTIFY_TABLE | _ignored(
    """
    use_vmac_addr use_ipvlan unicast_fault_no_peer old_unicast_checksum vrf
    track_bfd mcast_dst_ip track_src_ip no_virtual_ipaddress
    promote_secondaries linkbeat_use_polling v3_checksum_as_v2 skip_check_adv_addr
    notify_deleted notify_priority_changes lvs_sync_daemon_interface down_timer_adverts
    timer_expired_backup thread_timer_expired garp_extra_if vmac_garp_intvl
    owner_ignore_adverts kernel_rx_buf_size auth_hmac
    """
)  # fmt: skip

SYNC_GROUP_TABLE: dict[str, Handler] = (
    {
        "group": _set("group", _names),
        "track_script": _set("track_script", _tracks(TrackScript, -253, 253)),
        "track_interface": _set("track_interface", _tracks(TrackInterface, -254, 254)),
        "track_file": _set("track_file", _tracks(TrackFile, -254, 254)),
        "track_process": _set("track_process", _tracks(TrackProcess, -254, 254)),
        "global_tracking": _set("global_tracking", _flag),
        "sync_group_tracking_weight": _set("sync_group_tracking_weight", _flag),
    }
    | NOTIFY_TABLE
    | _ignored("track_bfd", "notify_priority_changes")
)


# ---------------------------------------------------------------- derived defaults


def instance_defaults(g: GlobalDefs, inst: VrrpInstance) -> dict[str, Any]:
    """The values an instance gets when the keyword is absent: keepalived derives these
    from global_defs and the instance's other settings. convert.py omits fields equal to
    these, the builder fills them in."""
    strict = True if g.vrrp_strict else None
    effective_strict = inst.strict_mode if inst.strict_mode is not None else strict
    return {
        "version": 3 if inst.family == 6 else g.vrrp_version,
        "garp_master_delay": g.vrrp_garp_master_delay,
        "garp_master_repeat": g.vrrp_garp_master_repeat,
        "garp_master_refresh": g.vrrp_garp_master_refresh,
        "garp_master_refresh_repeat": g.vrrp_garp_master_refresh_repeat,
        "check_unicast_src": g.vrrp_check_unicast_src,
        "strict_mode": strict,
        # keepalived: accept unless strict; the address owner always accepts
        "accept": (inst.priority == 255) if effective_strict else None,
    }


# ---------------------------------------------------------------- the builder


class Builder:
    """Collects errors and warnings while building one Config."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ConfigError] = []
        self.warnings: list[Warning_] = []
        self.failed: set[str] = set()
        self.track_files: dict[str, VrrpTrackFile] = {}  # for FILE_CHECK

    def error(self, origin: Origin, message: str) -> None:
        self.errors.append(ConfigError(origin, message))

    def warn(self, origin: Origin, message: str) -> None:
        self.warnings.append(Warning_(origin, message))

    def walk(self, nodes: Iterable[Node], table: dict[str, Handler], f: Fields) -> None:
        for node in nodes:
            handler = table.get(node.keyword)
            if handler is None:
                self.warn(node.origin, f"unknown keyword '{node.keyword}'")
                continue
            try:
                handler(self, node, f)
            except Invalid as e:
                self.error(node.origin, str(e))
                self.failed.add(node.keyword)

    def _block(self, node: Node, table: dict[str, Handler]) -> Fields:
        """Walk one block; `self.failed` then names the keywords that had a bad value."""
        f: Fields = {}
        self.failed = set()
        if node.children is None:
            self.error(node.origin, f"{node.keyword} needs a {{ }} block")
        else:
            self.walk(node.children, table, f)
        return f

    def _name(self, node: Node) -> str | None:
        if len(node.args) != 1:
            self.error(node.origin, f"{node.keyword} needs exactly one name")
            return None
        return node.args[0]

    # -- blocks

    def global_defs(self, nodes: list[Node]) -> GlobalDefs:
        f: Fields = {}
        for node in nodes:  # keepalived merges repeated global_defs blocks
            f |= self._block(node, GLOBAL_TABLE)
        origin = nodes[0].origin if nodes else Origin(self.source, 0)
        return GlobalDefs(origin=origin, **f)

    def vrrp_script(self, node: Node) -> VrrpScript | None:
        name = self._name(node)
        f = self._block(node, SCRIPT_TABLE)
        if name is None:
            return None
        if "script" not in f:
            self.error(node.origin, f"vrrp_script {name}: no script given")
            return None
        return VrrpScript(name=name, origin=node.origin, **f)

    def vrrp_track_file(self, node: Node) -> VrrpTrackFile | None:
        name = self._name(node)
        f = self._block(node, TRACK_FILE_TABLE)
        if name is None:
            return None
        if "file" not in f:
            self.error(node.origin, f"vrrp_track_file {name}: no file given")
            return None
        return VrrpTrackFile(name=name, origin=node.origin, **f)

    def vrrp_track_process(self, node: Node) -> VrrpTrackProcess | None:
        name = self._name(node)
        f = self._block(node, TRACK_PROCESS_TABLE)
        if name is None:
            return None
        if "process" not in f:
            if "process" not in self.failed:
                self.error(node.origin, f"vrrp_track_process {name}: no process given")
            return None
        # keepalived: quorum_max 0 (with no quorum) means "no process may run"
        qmax = f.get("quorum_max")
        if qmax == 0 and "quorum" not in f:
            f["quorum"] = 0
        if qmax is not None and f.get("quorum", 1) > qmax:
            self.error(
                node.origin,
                f"vrrp_track_process {name}: quorum {f.get('quorum', 1)} is greater than "
                f"quorum_max {qmax}",
            )
            return None
        return VrrpTrackProcess(name=name, origin=node.origin, **f)

    def vrrp_instance(self, node: Node, g: GlobalDefs) -> VrrpInstance | None:
        name = self._name(node)
        f = self._block(node, INSTANCE_TABLE)
        if name is None:
            return None
        missing = [k for k in ("interface", "virtual_router_id") if k not in f]
        for key in missing:
            if key not in self.failed:  # a bad value was already reported
                self.error(node.origin, f"vrrp_instance {name}: {key} is missing")
        if missing:
            return None
        if "notify" in f:
            f["notify"] = Notify(**f["notify"])
        family = self._family(name, node, f)
        if family is None:
            return None
        f["family"] = family
        inst = VrrpInstance(name=name, origin=node.origin, **f)
        return self._derive(inst, f, g)

    def _family(self, name: str, node: Node, f: Fields) -> int | None:
        """keepalived takes the family from the first VIP; native_ipv6 forces IPv6."""
        vips = f.get("virtual_ipaddress", ())
        families = {v.family for v in vips}
        if len(families) > 1:
            self.error(node.origin, f"vrrp_instance {name}: virtual_ipaddress mixes IPv4 and IPv6")
            return None
        family = f.get("family") or (families.pop() if families else 4)
        if f.get("family") == 6 and any(v.family == 4 for v in vips):
            self.error(node.origin, f"vrrp_instance {name}: native_ipv6 with IPv4 addresses")
            return None
        for key in ("mcast_src_ip", "unicast_src_ip"):
            addr = f.get(key)
            if addr is not None and addr.version != family:
                self.error(node.origin, f"vrrp_instance {name}: {key} {addr} is not IPv{family}")
        for peer in f.get("unicast_peer", ()):
            if peer.version != family:
                self.error(
                    node.origin, f"vrrp_instance {name}: unicast_peer {peer} is not IPv{family}"
                )
        return family

    def _derive(self, inst: VrrpInstance, f: Fields, g: GlobalDefs) -> VrrpInstance:
        """Fill keepalived's derived defaults and apply its corrections (with a warning)."""
        where = inst.origin
        defaults = instance_defaults(g, inst)
        changes: Fields = {k: v for k, v in defaults.items() if k not in f and k != "accept"}
        if inst.family == 6 and f.get("version") == 2:
            self.warn(where, f"{inst.name}: VRRP version 2 cannot carry IPv6; using version 3")
            changes["version"] = 3
        inst = replace(inst, **changes)
        if "accept" not in f:
            inst = replace(inst, accept=instance_defaults(g, inst)["accept"])
        elif inst.accept and inst.strict_mode and inst.version == 2 and not inst.is_owner:
            self.warn(where, f"{inst.name}: accept mode with VRRPv2 in strict mode breaks "
                             "RFC 3768; accept turned off")  # fmt: skip
            inst = replace(inst, accept=False)
        inst = replace(inst, advert_int=self._advert_int(inst))
        if inst.version == 3 and inst.auth_type is not None:
            self.warn(where, f"{inst.name}: VRRPv3 has no authentication; ignored")
            inst = replace(inst, auth_type=None, auth_pass=None)
        if inst.auth_type == "PASS" and not inst.auth_pass:
            self.error(where, f"vrrp_instance {inst.name}: auth_type PASS needs auth_pass")
        if "unicast_ttl" in f and not inst.unicast_peer:
            self.warn(where, f"{inst.name}: unicast_ttl without unicast_peer; ignored")
            inst = replace(inst, unicast_ttl=255)
        return inst

    def _advert_int(self, inst: VrrpInstance) -> float:
        """keepalived rounds: whole seconds for v2, centiseconds (max 40.95s) for v3."""
        value = inst.advert_int
        if inst.version == 2:
            rounded = max(1.0, float(math.floor(value + 0.5)))
            if rounded != value:
                self.warn(inst.origin, f"{inst.name}: VRRPv2 advert_int {value:g} must be "
                                       f"whole seconds; using {rounded:g}")  # fmt: skip
            return rounded
        if value > 40.95:
            self.warn(inst.origin, f"{inst.name}: VRRPv3 advert_int {value:g} is above 40.95s; "
                                   "using 40.95")  # fmt: skip
            return 40.95
        centis = max(1, math.floor(value * 100 + 0.5))
        if abs(centis - value * 100) > 1e-6:
            self.warn(inst.origin, f"{inst.name}: VRRPv3 advert_int {value:g} rounded to "
                                   f"{centis / 100:g} (10ms units)")  # fmt: skip
        return centis / 100

    def vrrp_sync_group(self, node: Node) -> VrrpSyncGroup | None:
        name = self._name(node)
        f = self._block(node, SYNC_GROUP_TABLE)
        if name is None:
            return None
        if not f.get("group"):
            self.error(node.origin, f"vrrp_sync_group {name}: group is empty")
            return None
        if "notify" in f:
            f["notify"] = Notify(**f["notify"])
        return VrrpSyncGroup(name=name, origin=node.origin, **f)

    # -- the whole file

    def build(self, nodes: list[Node]) -> Config:
        roots: dict[str, list[Node]] = {}
        for node in nodes:
            kw = "vrrp_track_file" if node.keyword == "track_file" else node.keyword
            if kw in ROOT_KINDS:
                roots.setdefault(kw, []).append(node)
            elif kw not in KNOWN_SKIPPED_ROOTS:
                self.warn(node.origin, f"unknown keyword '{node.keyword}'")
        g = self.global_defs(roots.get("global_defs", []))
        scripts = self._unique("vrrp_script", map(self.vrrp_script, roots.get("vrrp_script", [])))
        files = self._unique(
            "vrrp_track_file", map(self.vrrp_track_file, roots.get("vrrp_track_file", []))
        )
        processes = self._unique(
            "vrrp_track_process",
            map(self.vrrp_track_process, roots.get("vrrp_track_process", [])),
        )
        instances = self._unique(
            "vrrp_instance", (self.vrrp_instance(n, g) for n in roots.get("vrrp_instance", []))
        )
        groups = self._unique(
            "vrrp_sync_group", map(self.vrrp_sync_group, roots.get("vrrp_sync_group", []))
        )
        self.track_files = {f.name: f for f in files}
        # lvs.py builds on this module's tables and helpers, hence the late import
        from hakeeper.config import lvs

        vs_groups, servers = lvs.build_lvs(
            self, roots.get("virtual_server_group", []), roots.get("virtual_server", [])
        )
        ssl = lvs.ssl(self, roots.get("SSL", []))
        self._check_vrids(instances)
        self._check_refs(instances, groups, scripts, files, processes)
        self.warnings += unreachable_vips(instances)
        if self.errors:
            raise ConfigErrors(self.errors, self.warnings)
        return Config(
            global_defs=g,
            vrrp_scripts=tuple(scripts),
            vrrp_track_files=tuple(files),
            vrrp_track_processes=tuple(processes),
            vrrp_instances=tuple(instances),
            vrrp_sync_groups=tuple(groups),
            virtual_server_groups=tuple(vs_groups),
            virtual_servers=tuple(servers),
            ssl=ssl,
            warnings=tuple(self.warnings),
            source=self.source,
        )

    def _unique(self, kind: str, items: Iterable[Any]) -> list[Any]:
        seen: dict[str, Any] = {}
        for item in items:
            if item is None:
                continue
            if item.name in seen:
                first = seen[item.name].origin
                self.error(item.origin, f"{kind} {item.name} is already defined at {first}")
            else:
                seen[item.name] = item
        return list(seen.values())

    def _check_vrids(self, instances: list[VrrpInstance]) -> None:
        # keepalived: a VRID must be unique per interface and address family
        seen: dict[tuple[str, int, int], VrrpInstance] = {}
        for inst in instances:
            key = (inst.interface, inst.family, inst.virtual_router_id)
            if key in seen:
                other = seen[key]
                self.error(
                    inst.origin,
                    f"vrrp_instance {inst.name}: virtual_router_id {inst.virtual_router_id} "
                    f"is already used on {inst.interface} (IPv{inst.family}) by {other.name}",
                )
            else:
                seen[key] = inst

    def _check_refs(
        self,
        instances: list[VrrpInstance],
        groups: list[VrrpSyncGroup],
        scripts: list[VrrpScript],
        files: list[VrrpTrackFile],
        processes: list[VrrpTrackProcess],
    ) -> None:
        script_names = {s.name for s in scripts}
        file_names = {f.name for f in files}
        process_names = {p.name for p in processes}
        for owner in [*instances, *groups]:
            for ts in owner.track_script:
                if ts.name not in script_names:
                    self.error(ts.origin, f"track_script {ts.name}: no vrrp_script of that name")
            for tf in owner.track_file:
                if tf.name not in file_names:
                    self.error(tf.origin, f"track_file {tf.name}: no vrrp_track_file of that name")
            for tp in owner.track_process:
                if tp.name not in process_names:
                    self.error(
                        tp.origin, f"track_process {tp.name}: no vrrp_track_process of that name"
                    )
        names = {i.name for i in instances}
        member_of: dict[str, str] = {}
        for grp in groups:
            for member in grp.group:
                if member not in names:
                    self.error(grp.origin, f"vrrp_sync_group {grp.name}: unknown instance {member}")
                elif member in member_of:
                    self.error(
                        grp.origin,
                        f"vrrp_sync_group {grp.name}: {member} is already in {member_of[member]}",
                    )
                else:
                    member_of[member] = grp.name
            if len(grp.group) == 1:
                self.warn(grp.origin, f"vrrp_sync_group {grp.name} has only one instance")


ROOT_KINDS = frozenset(
    {
        "global_defs",
        "vrrp_script",
        "vrrp_track_file",
        "vrrp_track_process",
        "vrrp_instance",
        "vrrp_sync_group",
        "virtual_server_group",
        "virtual_server",
        "SSL",
    }
)


def build_config(
    nodes: list[Node],
    source: str,
    errors: Iterable[ConfigError] = (),
    warnings: Iterable[Warning_] = (),
) -> Config:
    """Build and validate; raises ConfigErrors listing every problem found, the reader's
    own (syntax) errors first."""
    builder = Builder(source)
    builder.errors.extend(errors)
    builder.warnings.extend(warnings)
    return builder.build(nodes)


__all__ = [
    "SCRIPT_KEYWORDS",
    "Builder",
    "Invalid",
    "Node",
    "build_config",
    "instance_defaults",
    "parse_route",
    "parse_rule",
    "parse_vip",
]
