"""keepalived's LVS blocks into the frozen model of lvs_model.py, one keyword table per block.

virtual_server_group, virtual_server (with its real_server, sorry_server and checker blocks)
and SSL, with keepalived's keywords, aliases and defaults (check_parser.c, check_api.c,
check_*.c). Where keepalived corrects a config while reading it (check_data.c
validate_check_config: a real server's port, an impossible quorum...) the same correction is
made here, with a warning; a value keepalived refuses is an error.

Two orders are made canonical so that the YAML form (one mapping key per header, one per
checker kind) reads back equal: virtual servers with the same header words are kept
together, and a real server's checkers are grouped by kind, each kind where it first appears.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from hakeeper.config.build import (
    Builder,
    Fields,
    Handler,
    Invalid,
    Node,
    _argv,
    _flag,
    _ignored,
    _int,
    _ip,
    _one,
    _scalar,
    _seconds,
    _set,
    _unsupported,
    _word,
    to_int,
    to_ip,
)
from hakeeper.config.lvs_model import (
    CHECKER_KINDS,
    DEFAULT_PERSISTENCE_TIMEOUT,
    DEFAULT_PROTOCOL,
    DNS_TYPES,
    HTTP_PROTOCOLS,
    IPVS_WEIGHT_LIMIT,
    LVS_METHODS,
    LVS_SCHEDULERS,
    PROTOCOLS,
    SCHED_FLAGS,
    Checker,
    CheckUrl,
    RealServer,
    SslConfig,
    VirtualServer,
    VirtualServerGroup,
    VsgEntry,
    effective_method,
)
from hakeeper.config.model import IPAddress, Origin

_U32 = 2**32 - 1
_TIMER_MAX = 2.0**31  # seconds; keepalived's timers go further, no check needs more
_CO_MAX = _U32 / 1e6  # connect_timeout: at most UINT_MAX microseconds
_LVS_MAX_TIMEOUT = 86400 * 31  # global_data.h
_PE_NAME_MAX = 16  # IP_VS_PENAME_MAXLEN
_IFNAMSIZ = 16
_MAX_RANGE = 65536  # addresses one virtual_server_group line may stand for
_NO_CONN_KINDS = frozenset({"MISC_CHECK", "FILE_CHECK"})  # no connect_ip/port...
_PORTLESS_KINDS = _NO_CONN_KINDS | {"PING_CHECK"}


# ---------------------------------------------------------------- values


def _port(keyword: str, text: str) -> int | None:
    """A port; keepalived reads all zeros as "no port" (legacy `virtual_server IP 0`)."""
    if text.strip("0") == "" and text:
        return None
    return to_int(f"{keyword} port", text, 1, 65535)


def _address_port(
    b: Builder, node: Node, keyword: str, words: list[str]
) -> tuple[IPAddress, int | None]:
    """`IP [PORT]` (a real_server, sorry_server or virtual_server line); keepalived reads
    no further, so more words only earn a warning."""
    if not words:
        raise Invalid(f"{keyword} needs an address")
    if len(words) > 2:
        b.warn(node.origin, f"{keyword}: extra words ignored: {' '.join(words[2:])}")
    address = to_ip(keyword, words[0])
    return address, (_port(keyword, words[1]) if len(words) > 1 else None)


def parse_hex(keyword: str, text: str, wildcards: bool = False) -> tuple[bytes, bytes | None]:
    """keepalived's read_hex_str: blank-separated groups of hex digits, two digits a byte
    (`Ab12f 3` is AB 12 0F 03). With `wildcards`, an x digit matches anything: its bits are
    set in the returned mask (None when there is no x)."""
    data = bytearray()
    mask = bytearray()
    for group in text.split():
        for i in range(0, len(group), 2):
            byte = m = 0
            for digit in group[i : i + 2]:
                byte, m = byte << 4, m << 4
                if wildcards and digit in "xX":
                    m |= 0x0F
                elif digit in "0123456789abcdefABCDEF":
                    byte |= int(digit, 16)
                else:
                    raise Invalid(f"{keyword}: '{digit}' is not a hex digit")
            data.append(byte)
            mask.append(m)
    if not data:
        raise Invalid(f"{keyword} needs a hex string")
    return bytes(data), (bytes(mask) if any(mask) else None)


def hex_text(data: bytes, mask: bytes | None = None) -> str:
    """The hex string parse_hex reads back, `x` for masked digits."""
    out = []
    for i, byte in enumerate(data):
        m = mask[i] if mask else 0
        hi = "x" if m & 0xF0 else f"{byte >> 4:x}"
        lo = "x" if m & 0x0F else f"{byte & 0x0F:x}"
        out.append(hi + lo)
    return "".join(out)


def parse_status_codes(words: list[str]) -> tuple[tuple[int, int], ...]:
    """`200 302 400-499`: sorted, merged inclusive ranges of 100..599 (keepalived keeps a
    bitmap, so `200 201` and `200-201` are the same)."""
    codes: set[int] = set()
    for word in words:
        lo_text, dash, hi_text = word.partition("-")
        try:
            lo = int(lo_text, 10)
            hi = int(hi_text, 10) if dash else lo
        except ValueError:
            raise Invalid(f"status_code '{word}' is not a code or a range") from None
        if not (100 <= lo <= hi <= 599):
            raise Invalid(f"status_code '{word}' is not within 100..599")
        codes.update(range(lo, hi + 1))
    if not codes:
        raise Invalid("status_code needs at least one code")
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return tuple((lo, hi) for lo, hi in ranges)


def status_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return " ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def parse_vsg_entry(words: list[str], origin: Origin) -> VsgEntry:
    """`fwmark N [inet|inet6]`, or `ADDR [PORT]` where ADDR may be a range: `A-LAST`
    (the last IPv4 byte in decimal, the last IPv6 16 bits in hex), `A-B`, or `NET/LEN`."""
    if words[0] == "fwmark":
        if len(words) < 2:
            raise Invalid("fwmark needs a number")
        mark = to_int("virtual_server_group fwmark", words[1], 1, _U32)
        families = {"inet": 4, "inet6": 6}
        family = None
        if len(words) > 2:
            if words[2] not in families or len(words) > 3:
                raise Invalid(f"fwmark {mark}: unexpected '{' '.join(words[2:])}'")
            family = families[words[2]]
        return VsgEntry(fwmark=mark, family=family, origin=origin)
    if len(words) > 2:
        raise Invalid(f"virtual_server_group: unexpected '{' '.join(words[2:])}'")
    port = _port("virtual_server_group", words[1]) if len(words) > 1 else None
    first, last = _range(words[0])
    if last is not None and int(last) - int(first) >= _MAX_RANGE:
        raise Invalid(f"virtual_server_group range {words[0]} is larger than {_MAX_RANGE}")
    return VsgEntry(address=first, last=last, port=port, origin=origin)


def _range(text: str) -> tuple[IPAddress, IPAddress | None]:
    keyword = "virtual_server_group"
    if "/" in text:
        try:
            net = ipaddress.ip_network(text)
        except ValueError as e:
            raise Invalid(f"{keyword} '{text}' is not a network: {e}") from None
        if net.prefixlen == 0:
            raise Invalid(f"{keyword} '{text}': a prefix length of 0 is not allowed")
        last = net.broadcast_address
        return net.network_address, (last if last != net.network_address else None)
    head, dash, tail = text.partition("-")
    first = to_ip(keyword, head)
    if not dash:
        return first, None
    if (first.version == 4 and "." in tail) or (first.version == 6 and ":" in tail):
        last = to_ip(keyword, tail, first.version)
        if last < first:
            raise Invalid(f"{keyword} range {text} ends before it starts")
    else:
        bits, base = (8, 10) if first.version == 4 else (16, 16)
        try:
            end = int(tail, base)
        except ValueError:
            raise Invalid(f"{keyword} range '{text}' has a bad end '{tail}'") from None
        start = int(first) & ((1 << bits) - 1)
        if not start < end < (1 << bits):
            raise Invalid(f"{keyword} range {text}: the end must be above the start")
        last = ipaddress.ip_address(int(first) - start + end)
    return first, (last if last != first else None)


def vsg_entry_text(e: VsgEntry) -> str:
    """The line parse_vsg_entry reads back."""
    if e.fwmark is not None:
        fam = {4: " inet", 6: " inet6"}.get(e.family or 0, "")
        return f"fwmark {e.fwmark}{fam}"
    text = str(e.address) if e.last is None else f"{e.address}-{e.last}"
    return text if e.port is None else f"{text} {e.port}"


# ---------------------------------------------------------------- handlers


def _walk(b: Builder, node: Node, table: dict[str, Handler]) -> tuple[Fields, set[str]]:
    """Walk a nested block (absent braces read as empty); returns its fields and the
    keywords that had a bad value."""
    saved, b.failed = b.failed, set()
    f: Fields = {}
    if node.children is not None:
        b.walk(node.children, table, f)
    failed, b.failed = b.failed, saved
    return f, failed


def _method(b: Builder, node: Node) -> str:
    """`NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`."""
    args = _scalar(b, node, max_args=1 << 8)
    if not args:
        raise Invalid(f"{node.keyword} needs NAT, DR or TUN")
    if args[0] not in LVS_METHODS:
        raise Invalid(f"{node.keyword} '{args[0]}' is not NAT, DR or TUN")
    if len(args) > 1:
        b.warn(node.origin, f"{node.keyword}: tunnel options '{' '.join(args[1:])}' are not "
                            "supported; ignored")  # fmt: skip
    return args[0]


def _sched(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if value not in LVS_SCHEDULERS:
        raise Invalid(f"{node.keyword} '{value}' is not one of {' '.join(sorted(LVS_SCHEDULERS))}")
    f["lvs_sched"] = value


def _sched_flag(b: Builder, node: Node, f: Fields) -> None:
    flags = f.setdefault("sched_flags", {})
    flags[node.keyword] = node.origin
    if not _flag(b, node):
        del flags[node.keyword]


def _hashed(b: Builder, node: Node, f: Fields) -> None:
    b.warn(node.origin, "'hashed' has no effect (the kernel sets it); ignored")


def _protocol(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node).upper()  # keepalived compares case-insensitively
    if value not in PROTOCOLS:
        raise Invalid(f"protocol '{value}' is not TCP, UDP or SCTP")
    f["protocol"] = value


def _ip_family(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if value not in ("inet", "inet6"):
        raise Invalid(f"ip_family '{value}' is not inet or inet6")
    f["_ip_family"] = (4 if value == "inet" else 6, node.origin)


def _persistence_timeout(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)
    value = DEFAULT_PERSISTENCE_TIMEOUT
    if args:
        value = to_int("persistence_timeout", args[0], 1, _LVS_MAX_TIMEOUT)
    f["persistence_timeout"] = value


def _granularity(b: Builder, node: Node, f: Fields) -> None:
    f["_granularity"] = (_one(b, node), node.origin)  # read once the family is known


def _persistence_engine(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if len(value) > _PE_NAME_MAX:
        b.warn(node.origin, f"persistence_engine '{value}' is longer than {_PE_NAME_MAX} "
                            "characters; truncated")  # fmt: skip
        value = value[:_PE_NAME_MAX]
    f["persistence_engine"] = value


def _script(name: str) -> Handler:
    """notify_up/notify_down/quorum_up/quorum_down/misc_path: a command, split by the reader."""

    def handle(b: Builder, node: Node, f: Fields) -> None:
        if node.extra:  # keepalived: `notify_up SCRIPT [USER [GROUP]]`
            what = "words after the command" if name == "misc_path" else "running as user"
            b.warn(node.origin, f"{node.keyword}: {what} '{' '.join(node.extra)}' not "
                                "supported; ignored")  # fmt: skip
        f[name] = _argv(b, node)

    return handle


def _ifname(b: Builder, node: Node) -> str:
    value = _one(b, node)
    if len(value) >= _IFNAMSIZ:
        raise Invalid(f"{node.keyword} '{value}' is longer than {_IFNAMSIZ - 1} characters")
    return value


def _sorry_server(b: Builder, node: Node, f: Fields) -> None:
    if node.children is not None:
        raise Invalid("sorry_server does not take a { } block")
    address, port = _address_port(b, node, "sorry_server", node.args)
    f["_sorry"] = RealServer(address=address, port=port, origin=node.origin)


def _real_server(b: Builder, node: Node, f: Fields) -> None:
    address, port = _address_port(b, node, "real_server", node.args)
    rf, failed = _walk(b, node, RS_TABLE)
    checkers = rf.pop("checkers", [])
    kinds = list(dict.fromkeys(c.kind for c in checkers))  # group by kind: see the docstring
    rf["checkers"] = tuple(sorted(checkers, key=lambda c: kinds.index(c.kind)))
    rs = RealServer(address=address, port=port, origin=node.origin, **rf)
    for ck in rs.checkers:
        if ck.kind in _NO_CONN_KINDS:
            continue
        dst = ck.connect_ip or rs.address
        if dst.version == 6 and dst.is_link_local and not ck.bind_if:
            b.error(ck.origin, f"{ck.kind}: link-local address {dst} needs bind_if")
    f.setdefault("_real_servers", []).append((rs, "weight" in rf or "weight" in failed))


# -- checkers


def _checker(kind: str) -> Handler:
    def handle(b: Builder, node: Node, f: Fields) -> None:
        if node.args:
            b.warn(node.origin, f"{kind}: extra words ignored: {' '.join(node.args)}")
        cf, failed = _walk(b, node, CHECKER_TABLES[kind])
        ck = _finish_checker(b, kind, node, cf, failed)
        if ck is not None:
            f.setdefault("checkers", []).append(ck)

    return handle


def _finish_checker(
    b: Builder, kind: str, node: Node, cf: Fields, failed: set[str]
) -> Checker | None:
    where = node.origin
    if kind in ("HTTP_GET", "SSL_GET"):
        if "url" not in cf:
            b.error(where, f"{kind} has no url block")
            return None
        cf["url"] = tuple(cf["url"])
    if kind == "MISC_CHECK" and "misc_path" not in cf:
        if "misc_path" not in failed:
            b.error(where, "MISC_CHECK has no misc_path")
        return None
    if kind == "FILE_CHECK" and not _resolve_track_file(b, node, cf, failed):
        return None
    ip, bindto = cf.get("connect_ip"), cf.get("bindto")
    if ip is not None and bindto is not None and ip.version != bindto.version:
        b.error(where, f"{kind}: connect_ip {ip} and bindto {bindto} are not the same family")
        return None
    if cf.get("min_reply_length", 0) > cf.get("max_reply_length", 255):
        b.warn(where, "UDP_CHECK: min_reply_length is above max_reply_length; the check "
                      "will always fail")  # fmt: skip
    return Checker(kind=kind, origin=where, **cf)


def _resolve_track_file(b: Builder, node: Node, cf: Fields, failed: set[str]) -> bool:
    """FILE_CHECK names a track_file block: take its file, and its weight unless set here."""
    name = cf.get("track_file")
    if name is None:
        if "track_file" not in failed:
            b.error(node.origin, "FILE_CHECK has no track_file")
        return False
    tf = b.track_files.get(name)
    if tf is None:
        b.error(node.origin, f"FILE_CHECK: track_file {name}: no track_file of that name")
        return False
    cf["file"] = tf.file
    if "weight" not in cf:
        cf["weight"], cf["weight_reverse"] = tf.weight, tf.weight_reverse
    return True


def _file_weight(b: Builder, node: Node, f: Fields) -> None:
    """`weight N [reverse|noreverse]` (check_file.c)."""
    args = _scalar(b, node, max_args=2)
    if not args:
        raise Invalid("weight needs a value")
    f["weight"] = to_int("weight", args[0], -IPVS_WEIGHT_LIMIT, IPVS_WEIGHT_LIMIT)
    if len(args) > 1 and args[1] not in ("reverse", "noreverse"):
        raise Invalid(f"weight: unexpected '{args[1]}'")
    f["weight_reverse"] = args[1:] == ["reverse"]


def _nb_get_retry(b: Builder, node: Node, f: Fields) -> None:
    b.warn(node.origin, "nb_get_retry is deprecated; use retry")
    f["retry"] = to_int("nb_get_retry", _one(b, node), 0, _U32)


def _http_protocol(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if value == "1.0c":
        value = "1.0C"
    if value not in HTTP_PROTOCOLS:
        raise Invalid(f"http_protocol '{value}' is not 1.0, 1.1 or 1.0C")
    f["http_protocol"] = value


def _sni_name(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node)
    if args:
        f["sni_name"] = args[0]
    f["enable_sni"] = True


def _url(tls: bool) -> Handler:
    def handle(b: Builder, node: Node, f: Fields) -> None:
        urls = f.setdefault("url", [])
        uf, failed = _walk(b, node, URL_TABLE_SSL if tls else URL_TABLE)
        if "path" not in uf:
            if "path" not in failed:
                b.error(node.origin, "url has no path")
            return
        urls.append(CheckUrl(origin=node.origin, **uf))

    return handle


def _digest(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if len(value) != 32 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise Invalid(f"digest '{value}' is not 32 hex digits (an MD5 sum, see genhash)")
    f["digest"] = value.lower()


def _status_code(b: Builder, node: Node, f: Fields) -> None:
    f["status_code"] = parse_status_codes(_scalar(b, node, max_args=1 << 10))


def _dns_type(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node).upper()
    if value not in DNS_TYPES:
        raise Invalid(f"type '{value}' is not one of {' '.join(sorted(DNS_TYPES))}")
    f["type"] = value


def _dns_name(b: Builder, node: Node, f: Fields) -> None:
    value = _one(b, node)
    if (value.startswith(".") and value != ".") or ".." in value:
        raise Invalid(f"name '{value}' has an empty label")
    f["name"] = value


def _misc_timeout(b: Builder, node: Node, f: Fields) -> None:
    value = to_int("misc_timeout", _one(b, node), 0, _U32 // 1_000_000)
    f["misc_timeout"] = float(value) if value else None  # 0: keepalived's default


def _misc_user(b: Builder, node: Node, f: Fields) -> None:
    """`user NAME [[:]GROUP]` or `user NAME:GROUP`."""
    args = _scalar(b, node, max_args=2)
    if not args:
        raise Invalid("user needs a user name")
    user, _, group = args[0].partition(":")
    if len(args) > 1:
        group = args[1].removeprefix(":")
    f["user"] = user
    if group:
        f["group"] = group


def _payload(b: Builder, node: Node, f: Fields) -> None:
    f["payload"], _ = parse_hex("payload", " ".join(_scalar(b, node, max_args=1 << 16)))


def _require_reply(b: Builder, node: Node, f: Fields) -> None:
    args = _scalar(b, node, max_args=1 << 16)
    if not args:
        f["require_reply"], f["require_reply_mask"] = b"", None
        return
    f["require_reply"], f["require_reply_mask"] = parse_hex("require_reply", " ".join(args), True)


def _smtp_host(b: Builder, node: Node, f: Fields) -> None:
    b.warn(node.origin, "SMTP_CHECK host blocks (deprecated by keepalived) are not supported; "
                        "ignored: use one SMTP_CHECK per host")  # fmt: skip


# ---------------------------------------------------------------- keyword tables

_CONNECTION: dict[str, Handler] = {
    "connect_ip": _set("connect_ip", _ip()),
    "connect_port": _set("connect_port", _int(1, 65535)),
    "bindto": _set("bindto", _ip()),
    "bind_port": _set("bind_port", _int(1, 65535)),
    "bind_if": _set("bind_if", _ifname),
    "connect_timeout": _set("connect_timeout", _seconds(0.000001, _CO_MAX)),
    "fwmark": _set("fwmark", _int(0, _U32)),
}
_TIMING: dict[str, Handler] = {
    "retry": _set("retry", _int(0, _U32)),
    "delay_before_retry": _set("delay_before_retry", _seconds(0, _TIMER_MAX)),
    "warmup": _set("warmup", _seconds(0, _TIMER_MAX)),
    "delay_loop": _set("delay_loop", _seconds(0.000001, _TIMER_MAX)),
    "alpha": _set("alpha", _flag),
    "log_all_failures": _set("log_all_failures", _flag),
}
_COMMON = _CONNECTION | _TIMING

URL_TABLE: dict[str, Handler] = {
    "path": _set("path", _word),
    "digest": _digest,
    "status_code": _status_code,
    "virtualhost": _set("virtualhost", _word),
} | _ignored("regex regex_no_match regex_options regex_min_offset regex_max_offset regex_stack")
URL_TABLE_SSL = URL_TABLE | {"tls_compliant": _set("tls_compliant", _flag)}

_HTTP: dict[str, Handler] = _COMMON | {
    "nb_get_retry": _nb_get_retry,
    "virtualhost": _set("virtualhost", _word),
    "http_protocol": _http_protocol,
    "enable_sni": _set("enable_sni", _flag),
    "sni_name": _sni_name,
    "fast_recovery": _set("fast_recovery", _flag),
}

CHECKER_TABLES: dict[str, dict[str, Handler]] = {
    "TCP_CHECK": _COMMON,
    "PING_CHECK": _COMMON,
    "HTTP_GET": _HTTP | {"url": _url(False)},
    "SSL_GET": _HTTP | {"url": _url(True), "tls_compliant": _set("tls_compliant", _flag)},
    "SMTP_CHECK": _COMMON | {"helo_name": _set("helo_name", _word), "host": _smtp_host},
    "DNS_CHECK": _COMMON | {"type": _dns_type, "name": _dns_name},
    "MISC_CHECK": _TIMING
    | {
        "misc_path": _script("misc_path"),
        "misc_timeout": _misc_timeout,
        "misc_dynamic": _set("misc_dynamic", _flag),
        "user": _misc_user,
    },
    "UDP_CHECK": _COMMON
    | {
        "payload": _payload,
        "require_reply": _require_reply,
        "min_reply_length": _set("min_reply_length", _int(0, 65535)),
        "max_reply_length": _set("max_reply_length", _int(0, 65535)),
    },
    "FILE_CHECK": {"track_file": _set("track_file", _word), "weight": _file_weight},
}
assert set(CHECKER_TABLES) == CHECKER_KINDS

_SERVER_TIMING: dict[str, Handler] = {  # real and virtual server: retry is at least 1
    "retry": _set("retry", _int(1, _U32)),
    "delay_before_retry": _set("delay_before_retry", _seconds(0, _TIMER_MAX)),
    "warmup": _set("warmup", _seconds(0, _TIMER_MAX)),
    "connect_timeout": _set("connect_timeout", _seconds(0.000001, _CO_MAX)),
    "delay_loop": _set("delay_loop", _seconds(0.000001, _TIMER_MAX)),
    "inhibit_on_failure": _set("inhibit_on_failure", _flag),
    "alpha": _set("alpha", _flag),
    "smtp_alert": _set("smtp_alert", _flag),
    "virtualhost": _set("virtualhost", _word),
    "snmp_name": _set("snmp_name", _word),
}

RS_TABLE: dict[str, Handler] = (
    _SERVER_TIMING
    | {
        "weight": _set("weight", _int(0, IPVS_WEIGHT_LIMIT)),
        "lvs_method": _set("lvs_method", _method),
        "uthreshold": _set("uthreshold", _int(0, _U32)),
        "lthreshold": _set("lthreshold", _int(0, _U32)),
        "notify_up": _script("notify_up"),
        "notify_down": _script("notify_down"),
        "BFD_CHECK": _unsupported,
    }
    | {kind: _checker(kind) for kind in CHECKER_KINDS}
)

VS_TABLE: dict[str, Handler] = (
    _SERVER_TIMING
    | {
        "ip_family": _ip_family,
        "lb_algo": _sched,
        "lvs_sched": _sched,
        "hashed": _hashed,
        "lb_kind": _set("lvs_method", _method),
        "lvs_method": _set("lvs_method", _method),
        "persistence_engine": _persistence_engine,
        "persistence_timeout": _persistence_timeout,
        "persistence_granularity": _granularity,
        "protocol": _protocol,
        "ha_suspend": _set("ha_suspend", _flag),
        "omega": _set("omega", _flag),
        "quorum_up": _script("quorum_up"),
        "quorum_down": _script("quorum_down"),
        "quorum": _set("quorum", _int(1, _U32)),
        "hysteresis": _set("hysteresis", _int(0, _U32)),
        "weight": _set("weight", _int(1, IPVS_WEIGHT_LIMIT)),
        "sorry_server": _sorry_server,
        "sorry_server_inhibit": _set("sorry_server_inhibit", _flag),
        "sorry_server_lvs_method": _set("_sorry_method", _method),
        "real_server": _real_server,
    }
    | dict.fromkeys(SCHED_FLAGS, _sched_flag)
)

SSL_TABLE: dict[str, Handler] = {
    "password": _set("password", _word),
    "ca": _set("ca", _word),
    "certificate": _set("certificate", _word),
    "key": _set("key", _word),
}


# ---------------------------------------------------------------- blocks


def virtual_server_group(b: Builder, node: Node) -> VirtualServerGroup | None:
    if len(node.args) != 1:
        b.error(node.origin, "virtual_server_group needs exactly one name")
        return None
    name = node.args[0]
    if node.children is None:
        b.error(node.origin, f"virtual_server_group {name} needs a {{ }} block")
        return None
    entries = []
    bad = False
    for child in node.children:
        try:
            if child.children is not None:
                raise Invalid(f"virtual_server_group: unexpected block after '{child.keyword}'")
            entries.append(parse_vsg_entry(child.words, child.origin))
        except Invalid as e:
            b.error(child.origin, str(e))
            bad = True
    if not entries:
        if not bad:
            b.error(node.origin, f"virtual_server_group {name} has no entries")
        return None
    families = {e.address.version for e in entries if e.address is not None}
    if len(families) > 1 and any(e.fwmark is not None and e.family is None for e in entries):
        b.error(node.origin, f"virtual_server_group {name} has IPv4 and IPv6 addresses, so its "
                             "fwmarks need a family (inet or inet6)")  # fmt: skip
        return None
    return VirtualServerGroup(name=name, entries=tuple(entries), origin=node.origin)


def _vs_header(b: Builder, node: Node) -> Fields:
    usage = "virtual_server needs `IP [PORT]`, `fwmark N` or `group NAME`"
    words = node.args
    if not words:
        raise Invalid(usage)
    if words[0] in ("fwmark", "group"):
        if len(words) != 2:
            raise Invalid(usage)
        if words[0] == "group":
            return {"group": words[1]}
        return {"fwmark": to_int("virtual_server fwmark", words[1], 1, _U32)}
    address, port = _address_port(b, node, "virtual_server", words)
    return {"address": address, "port": port or 0}


def derived_family(vs: VirtualServer) -> int:
    """The family keepalived gives a virtual server without `ip_family`: its address's, else
    its persistence_granularity's, else that of its real and sorry servers not tunnelled,
    else theirs if all tunnelled ones agree, else IPv4."""
    if vs.address is not None:
        return vs.address.version
    if vs.persistence_granularity is not None:
        return vs.persistence_granularity.version
    servers = [*vs.real_servers, *([vs.sorry_server] if vs.sorry_server else [])]
    plain = [s.family for s in servers if effective_method(vs, s) != "TUN"]
    if plain:
        return plain[0]
    families = {s.family for s in servers}
    return families.pop() if len(families) == 1 else 4


def _granularity_value(text: str, family: int) -> IPAddress:
    """IPv4: a netmask; IPv6: a prefix length 1..128, kept as the matching mask."""
    if family == 6:
        bits = to_int("persistence_granularity (an IPv6 prefix length)", text, 1, 128)
        return ipaddress.IPv6Network(f"::/{bits}").netmask
    return to_ip("persistence_granularity", text, 4)


def virtual_server(
    b: Builder, node: Node, groups: dict[str, VirtualServerGroup]
) -> VirtualServer | None:
    try:
        header = _vs_header(b, node)
    except Invalid as e:
        b.error(node.origin, str(e))
        return None
    title = f"virtual_server {' '.join(node.args)}"
    if node.children is None:
        b.error(node.origin, f"{title} needs a {{ }} block")
        return None
    f, failed = _walk(b, node, VS_TABLE)
    if failed:
        return None  # each bad value is reported; a half-read service would mislead
    group = groups.get(header["group"]) if "group" in header else None
    if "group" in header and group is None:
        b.error(node.origin, f"{title}: no virtual_server_group {header['group']}")
        return None
    servers: list[tuple[RealServer, bool]] = f.pop("_real_servers", [])
    sorry: RealServer | None = f.pop("_sorry", None)
    sorry_method = f.pop("_sorry_method", None)
    granularity = f.pop("_granularity", None)
    family_given = f.pop("_ip_family", None)
    flags: dict[str, Origin] = f.pop("sched_flags", {})
    protocol_given = "protocol" in f
    if not servers:
        b.warn(node.origin, f"{title} has no real servers; ignored (as keepalived does)")
        return None
    if sorry is not None and sorry_method is not None:
        sorry = replace(sorry, lvs_method=sorry_method)
    elif sorry is None and (sorry_method or f.get("sorry_server_inhibit")):
        b.warn(node.origin, f"{title}: sorry_server_lvs_method/sorry_server_inhibit without "
                            "sorry_server; ignored")  # fmt: skip
        f.pop("sorry_server_inhibit", None)
    vs = VirtualServer(
        origin=node.origin,
        real_servers=tuple(rs for rs, _ in servers),
        sorry_server=sorry,
        **header,
        **f,
    )

    # the family: the address's, else ip_family, else persistence_granularity's, else the
    # real servers' (keepalived check_parser.c)
    if family_given is not None:
        family, where = family_given
        if vs.address is not None and vs.address.version != family:
            b.error(where, f"{title}: ip_family inet{'6' if family == 6 else ''} conflicts "
                           "with its address")  # fmt: skip
            return None
    elif granularity is not None and vs.address is None:
        family = 4 if "." in granularity[0] else 6
    else:
        family = derived_family(vs)
    vs = replace(vs, family=family)
    if granularity is not None:
        try:
            mask = _granularity_value(granularity[0], family)
        except Invalid as e:
            b.error(granularity[1], str(e))
            return None
        vs = replace(vs, persistence_granularity=mask)
        if vs.persistence_timeout is None:  # a granularity makes the service persistent
            vs = replace(vs, persistence_timeout=DEFAULT_PERSISTENCE_TIMEOUT)

    real_servers = _check_servers(b, vs, title, servers, group)
    if real_servers is None:
        return None
    vs = replace(vs, real_servers=real_servers, sorry_server=_check_sorry(b, vs, title, group))
    if vs.sorry_server is None and sorry is not None:
        return None
    vs = _check_service(b, vs, title, group, protocol_given, flags)
    return _check_quorum(b, vs, title)


def _check_servers(
    b: Builder,
    vs: VirtualServer,
    title: str,
    servers: list[tuple[RealServer, bool]],
    group: VirtualServerGroup | None,
) -> tuple[RealServer, ...] | None:
    """Family, port and weight of each real server, as keepalived settles them."""
    out: list[RealServer] = []
    seen: dict[tuple[IPAddress, int | None], RealServer] = {}
    ok = True
    for rs, weight_set in servers:
        fixed = _check_server(b, vs, title, rs, group, "real_server")
        if fixed is None:
            ok = False
            continue
        if not weight_set:
            fixed = replace(fixed, weight=vs.weight)
        for ck in fixed.checkers:
            if ck.kind not in _PORTLESS_KINDS and ck.connect_port is None and not fixed.port:
                b.warn(ck.origin, f"{ck.kind} of real_server {fixed.name}: no port to check "
                                  "(set connect_port); it will always fail")  # fmt: skip
        key = (fixed.address, fixed.port)
        if key in seen:
            b.error(rs.origin, f"{title}: real_server {fixed.name} is already defined at "
                               f"{seen[key].origin}")  # fmt: skip
            ok = False
            continue
        seen[key] = fixed
        out.append(fixed)
    return tuple(out) if ok else None


def _check_sorry(
    b: Builder, vs: VirtualServer, title: str, group: VirtualServerGroup | None
) -> RealServer | None:
    if vs.sorry_server is None:
        return None
    return _check_server(b, vs, title, vs.sorry_server, group, "sorry_server")


def _check_server(
    b: Builder,
    vs: VirtualServer,
    title: str,
    rs: RealServer,
    group: VirtualServerGroup | None,
    what: str,
) -> RealServer | None:
    method = effective_method(vs, rs)
    if rs.family != vs.family and method != "TUN":  # only a tunnel can cross families
        b.error(rs.origin, f"{title}: {what} {rs.address} is not IPv{vs.family} "
                           "(only TUN servers may differ)")  # fmt: skip
        return None
    port = rs.port
    if vs.fwmark is not None:
        if port is not None and method != "NAT":
            b.warn(rs.origin, f"{title}: {what} {rs.name}: a port on a {method} fwmark "
                              "service is ignored")  # fmt: skip
            port = None
    elif group is not None:
        if port is not None and method != "NAT":
            ports = {e.port for e in group.entries if e.address is not None and e.port}
            if ports - {port}:
                b.warn(rs.origin, f"{title}: {what} {rs.name}: port {port} is not the group's "
                                  f"{min(ports - {port})} ({method} keeps the port)")  # fmt: skip
    else:
        vport = vs.port or None
        if port is None:
            port = vport  # keepalived: the virtual server's port
        elif port != vport and method != "NAT":
            b.warn(rs.origin, f"{title}: {what} {rs.name}: {method} keeps the port, using "
                              f"{vport or 'none'}")  # fmt: skip
            port = vport
    return replace(rs, port=port)


def serves_addresses(vs: VirtualServer, group: VirtualServerGroup | None) -> bool:
    """An address (not fwmark) service, where the protocol matters."""
    if vs.fwmark is not None:
        return False
    return group is None or any(e.address is not None for e in group.entries)


def _check_service(
    b: Builder,
    vs: VirtualServer,
    title: str,
    group: VirtualServerGroup | None,
    protocol_given: bool,
    flags: dict[str, Origin],
) -> VirtualServer:
    """keepalived's corrections of a service (check_data.c validate_check_config)."""
    where = vs.origin
    entries = group.entries if group else ()
    has_addresses = serves_addresses(vs, group)
    has_fwmarks = vs.fwmark is not None or any(e.fwmark is not None for e in entries)
    changes: Fields = {}
    if has_addresses and not protocol_given:
        b.warn(where, f"{title}: no protocol; keepalived would use UDP, hakeeper uses "
                      f"{DEFAULT_PROTOCOL} (set protocol to be sure)")  # fmt: skip
    if not has_addresses and protocol_given:
        b.warn(where, f"{title}: protocol is ignored for a fwmark service")
        changes["protocol"] = DEFAULT_PROTOCOL
    if vs.ha_suspend and has_fwmarks:
        b.warn(where, f"{title}: ha_suspend cannot work with fwmarks; ignored")
        changes["ha_suspend"] = False
    if vs.persistence_timeout is None and (
        (group is None and vs.port == 0)
        or any(e.address is not None and e.port is None for e in entries)
    ):
        b.warn(where, f"{title}: a service without a port must be persistent; "
                      f"persistence_timeout {DEFAULT_PERSISTENCE_TIMEOUT}")  # fmt: skip
        changes["persistence_timeout"] = DEFAULT_PERSISTENCE_TIMEOUT
    names = {"sh": {"flag-1": "sh-fallback", "flag-2": "sh-port"},
             "mh": {"flag-1": "mh-fallback", "flag-2": "mh-port"}}  # fmt: skip
    canonical = names.get(vs.lvs_sched, {})
    out = set()
    for flag, origin in flags.items():
        name = canonical.get(flag, flag)
        prefix = name[:3]
        if prefix in ("sh-", "mh-") and prefix[:2] != vs.lvs_sched:
            b.warn(origin, f"{title}: {flag} only applies to the {prefix[:2]} scheduler; ignored")
        elif name == "ops" and has_addresses and vs.protocol != "UDP":
            b.warn(origin, f"{title}: ops (one-packet scheduling) needs UDP; ignored")
        else:
            out.add(name)
    changes["sched_flags"] = tuple(sorted(out))
    for e in entries:  # addresses a non-tunnelled server cannot be reached from
        fam = e.address.version if e.address is not None else e.family
        servers = [*vs.real_servers, *([vs.sorry_server] if vs.sorry_server else [])]
        if fam not in (None, vs.family) and any(effective_method(vs, s) != "TUN" for s in servers):
            b.warn(e.origin, f"{title}: {vsg_entry_text(e)} is not IPv{vs.family}; only TUN "
                             "real servers can serve it, so it is skipped")  # fmt: skip
    vs = replace(vs, **changes)
    sorry = vs.sorry_server
    for rs in vs.real_servers:
        if sorry is not None and (rs.address, rs.port) == (sorry.address, sorry.port):
            inhibit = rs.inhibit_on_failure
            if inhibit is None:
                inhibit = vs.inhibit_on_failure
            if inhibit != vs.sorry_server_inhibit:
                b.warn(sorry.origin, f"{title}: the sorry server is real server {rs.name}; "
                                     "using its inhibit_on_failure")  # fmt: skip
                vs = replace(vs, sorry_server_inhibit=inhibit)
    return vs


def _check_quorum(b: Builder, vs: VirtualServer, title: str) -> VirtualServer:
    total = sum(rs.weight for rs in vs.real_servers)
    if vs.quorum > total:
        b.warn(vs.origin, f"{title}: quorum {vs.quorum} is above the real servers' total "
                          f"weight {total}; using {total}")  # fmt: skip
        vs = replace(vs, quorum=total)
    if vs.hysteresis and vs.hysteresis >= vs.quorum:
        value = max(0, vs.quorum - 1)
        b.warn(vs.origin, f"{title}: hysteresis {vs.hysteresis} must be below quorum "
                          f"{vs.quorum}; using {value}")  # fmt: skip
        vs = replace(vs, hysteresis=value)
    return vs


def header_words(vs: VirtualServer) -> str:
    """The words after `virtual_server`: `IP PORT`, `IP` (no port), `fwmark N`, `group G`."""
    if vs.fwmark is not None:
        return f"fwmark {vs.fwmark}"
    if vs.group is not None:
        return f"group {vs.group}"
    return str(vs.address) if not vs.port else f"{vs.address} {vs.port}"


def ssl(b: Builder, nodes: list[Node]) -> SslConfig | None:
    """The SSL block; keepalived replaces an earlier one with a later one."""
    for node in nodes[1:]:
        b.warn(node.origin, f"SSL is already defined at {nodes[0].origin}; replaced")
    if not nodes:
        return None
    blocks = [_walk(b, node, SSL_TABLE)[0] for node in nodes]  # all checked, the last kept
    return SslConfig(origin=nodes[-1].origin, **blocks[-1])


def build_lvs(
    b: Builder, group_nodes: Iterable[Node], server_nodes: Iterable[Node]
) -> tuple[list[VirtualServerGroup], list[VirtualServer]]:
    """The groups, then the virtual servers (those of one header kept together)."""
    groups: list[Any] = b._unique(
        "virtual_server_group", (virtual_server_group(b, n) for n in group_nodes)
    )
    by_name = {g.name: g for g in groups}
    servers: list[Any] = b._unique(
        "virtual_server", (virtual_server(b, n, by_name) for n in server_nodes)
    )
    first: dict[str, int] = {}
    for i, vs in enumerate(servers):
        first.setdefault(header_words(vs), i)
    servers.sort(key=lambda vs: first[header_words(vs)])  # stable
    return groups, servers
