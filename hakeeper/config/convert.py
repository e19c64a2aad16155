"""Write a Config as native YAML that reads back into an equal model (`hakeeper --convert`).

Fields at their default (keepalived's, or the one derived from global_defs) are left out so
the output stays as short as the config a person would write.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import yaml

from hakeeper.config import lvs
from hakeeper.config.build import instance_defaults
from hakeeper.config.lvs_model import (
    Checker,
    CheckUrl,
    RealServer,
    SslConfig,
    VirtualServer,
    VirtualServerGroup,
    prefix_length,
)
from hakeeper.config.model import (
    Config,
    GlobalDefs,
    Metrics,
    Notify,
    SnmpAgent,
    TrackInterface,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
    VrrpTrackProcess,
)

_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def quote_arg(arg: str) -> str:
    """One argv word in keepalived's script quoting (single quotes, backslash escapes)."""
    if _SAFE_WORD.fullmatch(arg):
        return arg
    return "'" + arg.replace("\\", "\\\\").replace("'", "\\'") + "'"


def command(argv: tuple[str, ...]) -> str:
    return " ".join(quote_arg(a) for a in argv)


def _word(word: str) -> str:
    """A word of a plain line: double-quoted when it holds blanks (keepalived's rule)."""
    return f'"{word}"' if not word or any(c.isspace() for c in word) else word


def _line(*words: Any) -> str:
    return " ".join(_word(str(w)) for w in words if w is not None)


def _num(value: float | int) -> float | int:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _weight(weight: int, reverse: bool) -> int | str:
    return f"{weight} reverse" if reverse else weight


def _track(item: Any) -> str:
    # a track_interface without weight faults the instance, as weight 0 does
    no_weight = item.weight == 0 and isinstance(item, TrackInterface) and not item.reverse
    if item.weight is None or no_weight:
        return item.name
    return _line(item.name, "weight", item.weight, "reverse" if item.reverse else None)


def _vip(v: VirtualAddress) -> str:
    return _line(
        str(v),
        *(("dev", v.dev) if v.dev else ()),
        *(("label", v.label) if v.label else ()),
        *(("scope", v.scope) if v.scope else ()),
        *(("brd", v.broadcast) if v.broadcast else ()),
        "no_track" if v.no_track else None,
    )


def _route(r: VirtualRoute) -> str:
    words: list[Any] = [r.type, "to" if r.type else None, r.dst]
    for key in ("via", "dev", "src", "table", "metric", "scope"):
        value = getattr(r, key)
        if value is not None:
            words += [key, value]
    return _line(*words)


def _rule(r: VirtualRule) -> str:
    names = {"src": "from", "dst": "to"}
    words: list[Any] = []
    for key in ("src", "dst", "table", "priority", "iif", "oif", "fwmark"):
        value = getattr(r, key)
        if value is not None:
            words += [names.get(key, key), value]
    return _line(*words)


def _notify(n: Notify, out: dict[str, Any]) -> None:
    for f in fields(Notify):
        value = getattr(n, f.name)
        if value is None:
            continue
        out[f.name] = value if f.name == "smtp_alert" else command(value)


def _global(g: GlobalDefs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(GlobalDefs):
        value = getattr(g, f.name)
        if f.name == "origin" or value == f.default:
            continue
        if f.name == "lvs_flush_on_stop":  # a bare keyword is the full flush
            out[f.name] = True if value == "full" else value
            continue
        if f.name == "snmp_agent":
            out[f.name] = _snmp_agent(value)
            continue
        if f.name == "metrics":
            out[f.name] = _metrics(value)
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else _scalar(value)
    return out


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _snmp_agent(a: SnmpAgent) -> list[str]:
    """The `snmp_agent { }` block, one line per item as the reader takes them."""
    lines = [_line("listen", _host_port(h, p)) for h, p in a.listen]
    lines += [_line("community", c.name, c.access, *c.sources) for c in a.communities]
    lines += [
        _line("user", u.name, u.auth, u.auth_key, u.priv, u.priv_key, u.access) for u in a.users
    ]
    for t in a.trap_targets:
        who = ("community", t.community) if t.community is not None else ("user", t.user)
        lines.append(_line("trap_target", _host_port(t.host, t.port), *who))
    return lines


def _metrics(m: Metrics) -> list[str]:
    """The `metrics { }` block: one `listen` line per address."""
    return [_line("listen", _host_port(h, p)) for h, p in m.listen]


def _script(s: VrrpScript) -> dict[str, Any]:
    out: dict[str, Any] = {"script": command(s.script)}
    for f in fields(VrrpScript):
        value = getattr(s, f.name)
        if f.name in ("interval", "timeout", "rise", "fall", "init_fail") and value != f.default:
            out[f.name] = _scalar(value)
    if s.weight or s.weight_reverse:
        out["weight"] = _weight(s.weight, s.weight_reverse)
    if s.user is not None:
        out["user"] = _line(s.user, s.group)
    return out


def _track_file(t: VrrpTrackFile) -> dict[str, Any]:
    out: dict[str, Any] = {"file": t.file}
    if t.weight != 1 or t.weight_reverse:
        out["weight"] = _weight(t.weight, t.weight_reverse)
    if t.init_file is not None:
        out["init_file"] = _line(t.init_file, "overwrite" if t.init_file_overwrite else None)
    return out


def _track_process(t: VrrpTrackProcess) -> dict[str, Any]:
    out: dict[str, Any] = {"process": _line(t.process, *t.params)}
    if t.param_match is not None:
        out["param_match"] = t.param_match
    if t.full_command:
        out["full_command"] = True
    if t.weight or t.weight_reverse:
        out["weight"] = _weight(t.weight, t.weight_reverse)
    if t.quorum_max == 0 and t.quorum == 0:
        out["quorum_max"] = 0  # keepalived: "no such process may run"
    else:
        if t.quorum != 1:
            out["quorum"] = t.quorum
        if t.quorum_max is not None:
            out["quorum_max"] = t.quorum_max
    if t.fork_delay == t.terminate_delay:
        if t.fork_delay:
            out["delay"] = _num(t.fork_delay)
    else:
        if t.terminate_delay:
            out["terminate_delay"] = _num(t.terminate_delay)
        if t.fork_delay:
            out["fork_delay"] = _num(t.fork_delay)
    return out


_INSTANCE_SPECIAL = frozenset(
    {"name", "origin", "family", "nopreempt", "auth_type", "auth_pass", "use_vmac", "notify"}
)
_INSTANCE_LISTS = {
    "virtual_ipaddress": _vip,
    "virtual_ipaddress_excluded": _vip,
    "virtual_routes": _route,
    "virtual_rules": _rule,
    "unicast_peer": str,
    "track_script": _track,
    "track_interface": _track,
    "track_file": _track,
    "track_process": _track,
}


def _instance(inst: VrrpInstance, g: GlobalDefs) -> dict[str, Any]:
    derived = instance_defaults(g, inst)
    out: dict[str, Any] = {}
    if inst.family == 6 and not any(v.family == 6 for v in inst.virtual_ipaddress):
        out["native_ipv6"] = True
    for f in fields(VrrpInstance):
        value = getattr(inst, f.name)
        if f.name == "nopreempt" and inst.nopreempt:
            out["nopreempt"] = True
        elif f.name == "auth_type" and (inst.auth_type or inst.auth_pass):
            auth = {"auth_type": inst.auth_type, "auth_pass": inst.auth_pass}
            out["authentication"] = {k: v for k, v in auth.items() if v is not None}
        elif f.name == "use_vmac" and inst.use_vmac is not None:
            out["use_vmac"] = inst.use_vmac or True
        elif f.name in _INSTANCE_SPECIAL or value == derived.get(f.name, f.default):
            continue
        elif f.name in _INSTANCE_LISTS:
            out[f.name] = [_INSTANCE_LISTS[f.name](v) for v in value]
        else:
            out[f.name] = _scalar(value)
    _notify(inst.notify, out)
    return out


def _sync_group(grp: VrrpSyncGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"group": list(grp.group)}
    for f in fields(VrrpSyncGroup):
        value = getattr(grp, f.name)
        if f.name in {"name", "origin", "group", "notify"} or value == f.default:
            continue
        out[f.name] = [_track(v) for v in value] if isinstance(value, tuple) else value
    _notify(grp.notify, out)
    return out


# -- LVS: header words as keys, blocks as mappings (yaml_reader.py's docstring)


def _url(u: CheckUrl) -> dict[str, Any]:
    out: dict[str, Any] = {"path": u.path}
    if u.digest is not None:
        out["digest"] = u.digest
    if u.status_code:
        ((lo, hi), *rest) = u.status_code
        out["status_code"] = lo if lo == hi and not rest else lvs.status_text(u.status_code)
    if u.virtualhost is not None:
        out["virtualhost"] = u.virtualhost
    if u.tls_compliant:
        out["tls_compliant"] = True
    return out


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CHECKER_SPECIAL = _names(
    """kind origin url enable_sni sni_name misc_path user group payload require_reply
    require_reply_mask track_file file weight weight_reverse"""
)


def _checker(ck: Checker, config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ck.url:
        out["url"] = [_url(u) for u in ck.url]
    for f in fields(Checker):
        value = getattr(ck, f.name)
        if f.name not in _CHECKER_SPECIAL and value != f.default:
            out[f.name] = _scalar(value)
    if ck.sni_name is not None:
        out["sni_name"] = ck.sni_name  # implies enable_sni
    elif ck.enable_sni:
        out["enable_sni"] = True
    if ck.misc_path is not None:
        out["misc_path"] = command(ck.misc_path)
    if ck.user is not None:
        out["user"] = _line(ck.user, ck.group)
    if ck.payload is not None:
        out["payload"] = lvs.hex_text(ck.payload)
    if ck.require_reply is not None:
        out["require_reply"] = lvs.hex_text(ck.require_reply, ck.require_reply_mask) or True
    if ck.track_file is not None:
        out["track_file"] = ck.track_file
        files = {t.name: (t.weight, t.weight_reverse) for t in config.vrrp_track_files}
        if (ck.weight, ck.weight_reverse) != files.get(ck.track_file):
            out["weight"] = _weight(ck.weight, ck.weight_reverse)
    return out


def _server_words(rs: RealServer) -> str:
    return _line(str(rs.address), rs.port)


_RS_SPECIAL = _names("address port weight notify_up notify_down checkers origin")


def _real_server(rs: RealServer, vs: VirtualServer, config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rs.weight != vs.weight:
        out["weight"] = rs.weight
    for f in fields(RealServer):
        value = getattr(rs, f.name)
        if f.name not in _RS_SPECIAL and value != f.default:
            out[f.name] = _scalar(value)
    for name in ("notify_up", "notify_down"):
        if (argv := getattr(rs, name)) is not None:
            out[name] = command(argv)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for ck in rs.checkers:  # the builder groups them by kind, so this keeps their order
        kinds.setdefault(ck.kind, []).append(_checker(ck, config))
    out.update((kind, items[0] if len(items) == 1 else items) for kind, items in kinds.items())
    return out


_VS_SPECIAL = _names(
    """address port fwmark group family protocol sched_flags persistence_granularity
    sorry_server sorry_server_inhibit quorum_up quorum_down real_servers origin"""
)


def _virtual_server(vs: VirtualServer, config: Config) -> dict[str, Any]:
    groups = {g.name: g for g in config.virtual_server_groups}
    out: dict[str, Any] = {}
    if vs.address is None and vs.family != lvs.derived_family(vs):
        out["ip_family"] = "inet6" if vs.family == 6 else "inet"
    if lvs.serves_addresses(vs, groups.get(vs.group or "")):
        out["protocol"] = vs.protocol  # always: keepalived's default is not hakeeper's
    for f in fields(VirtualServer):
        value = getattr(vs, f.name)
        if f.name not in _VS_SPECIAL and value != f.default:
            out[f.name] = _scalar(value)
    out.update(dict.fromkeys(vs.sched_flags, True))
    mask = vs.persistence_granularity
    if mask is not None:
        out["persistence_granularity"] = prefix_length(mask) if mask.version == 6 else str(mask)
    if vs.sorry_server is not None:
        out["sorry_server"] = _server_words(vs.sorry_server)
        if vs.sorry_server.lvs_method is not None:
            out["sorry_server_lvs_method"] = vs.sorry_server.lvs_method
        if vs.sorry_server_inhibit:
            out["sorry_server_inhibit"] = True
    for name in ("quorum_up", "quorum_down"):
        if (argv := getattr(vs, name)) is not None:
            out[name] = command(argv)
    out["real_servers"] = {
        _server_words(rs): _real_server(rs, vs, config) for rs in vs.real_servers
    }
    return out


def _virtual_servers(config: Config) -> dict[str, Any]:
    """Keyed by header words; several services with the same words (TCP and UDP on one
    port) become a list under that key (the builder keeps them together)."""
    out: dict[str, Any] = {}
    for vs in config.virtual_servers:
        body = _virtual_server(vs, config)
        key = lvs.header_words(vs)
        if key not in out:
            out[key] = body
        elif isinstance(out[key], list):
            out[key].append(body)
        else:
            out[key] = [out[key], body]
    return out


def _groups(groups: tuple[VirtualServerGroup, ...]) -> dict[str, Any]:
    return {g.name: [lvs.vsg_entry_text(e) for e in g.entries] for g in groups}


def _ssl(ssl: SslConfig) -> dict[str, Any]:
    values = ((f.name, getattr(ssl, f.name)) for f in fields(SslConfig) if f.name != "origin")
    return {name: value for name, value in values if value is not None}


def to_dict(config: Config) -> dict[str, Any]:
    """The YAML document as plain data, in keepalived's order of blocks."""
    g = config.global_defs
    doc: dict[str, Any] = {}
    if glob := _global(g):
        doc["global_defs"] = glob
    parts: list[tuple[str, Any]] = [
        ("vrrp_scripts", {s.name: _script(s) for s in config.vrrp_scripts}),
        ("vrrp_track_files", {t.name: _track_file(t) for t in config.vrrp_track_files}),
        ("vrrp_track_processes", {p.name: _track_process(p) for p in config.vrrp_track_processes}),
        ("vrrp_instances", {i.name: _instance(i, g) for i in config.vrrp_instances}),
        ("vrrp_sync_groups", {s.name: _sync_group(s) for s in config.vrrp_sync_groups}),
        ("virtual_server_groups", _groups(config.virtual_server_groups)),
        ("virtual_servers", _virtual_servers(config)),
    ]
    doc.update((key, value) for key, value in parts if value)
    if config.ssl is not None:
        doc["SSL"] = _ssl(config.ssl)
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, as people write YAML by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(config: Config) -> str:
    """Native YAML for `config`; parse_yaml_text() of it gives back an equal Config."""
    return yaml.dump(
        to_dict(config),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
