"""hakeeperctl's output: tables and property lists for people, JSON for programs.

Pure functions of plain values (the rows and property dicts client.py returns) and `now`,
so every layout is testable without a bus.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hakeeper.dbus.names import unescape_label

# wall-clock properties (seconds since the epoch, 0 = never) and durations in seconds
TIME_PROPS = frozenset({"StartTime", "LastTransition", "LastChange"})
DURATION_PROPS = frozenset({"AdvertInterval", "MasterAdvertInterval", "PreemptDelay"})
# properties a person does not need in the detail view (the names are shown beside them)
HIDDEN_PROPS = frozenset({"MemberPaths", "VirtualServer"})
PATH_LIST_PROPS = frozenset({"RealServers"})


def to_json(value: Any, compact: bool = False) -> str:
    if compact:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False, indent=2)


def table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    all_rows = [list(header), *(list(r) for r in body)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows
    )


def changes(lines: Sequence[str]) -> str:
    """A reload's change lines (Reload, CheckReload), or that there are none."""
    return "\n".join(lines) if lines else "no changes"


def duration(seconds: float) -> str:
    """3d4h, 2h5m, 4m12s, 45s, 0.1s: the two largest units a person needs."""
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{round(seconds, 1):g}s"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{s}s"


def when(t: float, now: float) -> str:
    if not t:
        return "-"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    return f"{stamp} ({duration(max(0.0, now - t))} ago)"


def _dash(s: str) -> str:
    return s if s else "-"


# -- the List* tables -------------------------------------------------------------------


def instances_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return table(
        ("NAME", "STATE", "PRIO", "VRID", "INTERFACE", "VERSION", "MASTER", "VIPS"),
        (
            (
                r["Name"],
                r["State"],
                f"{r['EffectivePriority']}/{r['BasePriority']}",
                str(r["VRID"]),
                r["Interface"],
                f"v{r['Version']} {r['Family']}",
                _dash(r["MasterAddress"]),
                _dash(",".join(r["VirtualAddresses"])),
            )
            for r in rows
        ),
    )


def groups_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return table(
        ("NAME", "STATE", "MEMBERS", "LAST CHANGE"),
        (
            (r["Name"], r["State"], _dash(",".join(r["Members"])), _dash(r["LastReason"]))
            for r in rows
        ),
    )


def virtual_servers_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return table(
        ("NAME", "SCHED", "METHOD", "QUORUM", "ALIVE", "SORRY", "CONNS"),
        (
            (
                r["Name"],
                r["Scheduler"],
                r["Method"],
                "up" if r["QuorumUp"] else "DOWN",
                f"{r['RealServersAlive']}/{r['RealServersTotal']}",
                "active" if r["SorryServerActive"] else "-",
                str(r["Connections"]),
            )
            for r in rows
        ),
    )


def rs_state(alive: bool, enabled: bool) -> str:
    return ("UP" if alive else "DOWN") + ("" if enabled else " drained")


def real_servers_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return table(
        ("VIRTUAL SERVER", "REAL SERVER", "STATE", "WEIGHT", "IN POOL", "CONNS", "DETAIL"),
        (
            (
                r["VirtualServerName"],
                r["Name"],
                rs_state(r["Alive"], r["Enabled"]),
                str(r["Weight"]),
                "-" if r["PoolWeight"] < 0 else str(r["PoolWeight"]),
                str(r["Connections"]),
                _dash(r["LastDetail"]),
            )
            for r in rows
        ),
    )


# -- one object's properties ------------------------------------------------------------


def _value(key: str, value: Any, now: float) -> str:
    if key in TIME_PROPS:
        return when(value, now)
    if key in DURATION_PROPS:
        return f"{value:g}s"
    if key in PATH_LIST_PROPS:
        return _dash(", ".join(unescape_label(p.rsplit("/", 1)[-1]) for p in value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return _dash(", ".join(str(v) for v in value))
    if isinstance(value, str):
        return _dash(value)
    return str(value)


def _nested(value: Any) -> list[str]:
    """Indented lines for a dict (counters) or a list of objects (trackers, checkers)."""
    if isinstance(value, dict):
        if not value:
            return ["  -"]
        width = max(len(k) for k in value)
        return [f"  {k.ljust(width)}  {v}" for k, v in value.items()]
    if not value:
        return ["  -"]
    header = list(value[0])
    body = [[_value(k, item[k], 0.0) for k in header] for item in value]
    return ["  " + line for line in table(header, body).splitlines()]


def properties(props: Mapping[str, Any], now: float) -> str:
    """`Key: value` lines, in the daemon's order; counters and struct arrays indented below."""
    shown = [(k, v) for k, v in props.items() if k not in HIDDEN_PROPS]
    width = max((len(k) for k, v in shown if not _is_nested(v)), default=0) + 1
    lines: list[str] = []
    for key, value in shown:
        if _is_nested(value):
            lines.append(f"{key}:")
            lines.extend(_nested(value))
        else:
            lines.append(f"{(key + ':').ljust(width)} {_value(key, value, now)}")
    return "\n".join(lines)


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and isinstance(value[0], dict)
    )


# -- status -----------------------------------------------------------------------------


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def status_data(
    manager: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    groups: Sequence[Mapping[str, Any]],
    virtual_servers: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The manager's properties plus counts: what `status -o json` prints."""
    return {
        **manager,
        "Instances": _count(i["State"] for i in instances),
        "Groups": _count(g["State"] for g in groups),
        "VirtualServers": {
            "Total": len(virtual_servers),
            "QuorumUp": sum(1 for v in virtual_servers if v["QuorumUp"]),
        },
        "RealServers": {
            "Total": sum(v["RealServersTotal"] for v in virtual_servers),
            "Alive": sum(v["RealServersAlive"] for v in virtual_servers),
        },
    }


def _by_state(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"


def status_text(s: Mapping[str, Any], now: float) -> str:
    lines = [
        f"hakeeper {s['Version']}  router_id {_dash(s['RouterId'])}",
        f"config {s['ConfigFile']}  up {duration(max(0.0, now - s['StartTime']))}"
        f"  reloads {s['Reloads']}",
        f"instances: {_by_state(s['Instances'])}",
    ]
    if s["Groups"]:
        lines.append(f"sync groups: {_by_state(s['Groups'])}")
    vs, rs = s["VirtualServers"], s["RealServers"]
    if vs["Total"]:
        down = vs["Total"] - vs["QuorumUp"]
        lines.append(
            f"virtual servers: {vs['Total']} on {_dash(s['LvsBackend'])}"
            + (f" ({down} quorum down)" if down else "")
            + f", real servers {rs['Alive']}/{rs['Total']} up"
        )
    counters = {k: v for k, v in s.get("Counters", {}).items() if v}
    if counters:
        lines.append("counters: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())))
    return "\n".join(lines)


# -- watch ------------------------------------------------------------------------------


def event_line(e: Mapping[str, Any]) -> str:
    """`12:00:01.234 instance VI_1: BACKUP -> MASTER (master down timer expired)`."""
    t = time.strftime("%H:%M:%S", time.localtime(e["Time"])) + f".{int(e['Time'] % 1 * 1000):03d}"
    if e["Kind"] == "reload":
        return f"{t} reload: {e['Reason'] or 'no changes'}"
    name = e["Name"] if e["Kind"] != "real_server" else f"{e['VirtualServerName']} {e['Name']}"
    reason = f" ({e['Reason']})" if e["Reason"] else ""
    return f"{t} {e['Kind']} {name}: {e['Old'] or '?'} -> {e['New']}{reason}"
