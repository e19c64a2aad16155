"""Write a Config as native YAML that reads back into an equal model (`hakeeper --convert`).

Fields at their default (keepalived's, or the one derived from global_defs) are left out so
the output stays as short as the config a person would write.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import yaml

from hakeeper.config.build import instance_defaults
from hakeeper.config.model import (
    Config,
    GlobalDefs,
    Notify,
    RawBlock,
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
        out[f.name] = list(value) if isinstance(value, tuple) else _scalar(value)
    return out


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


def _raw(block: RawBlock) -> Any:
    line = _line(block.keyword, *block.args)
    if not block.children:
        return line
    return {line: [_raw(c) for c in block.children]}


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
        ("virtual_servers", [_raw(b) for b in config.virtual_servers]),
    ]
    doc.update((key, value) for key, value in parts if value)
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
