"""What each hakeeperctl command asks of hakeeper and prints: one connection, the fewest calls
(pipelined when there are several), output by hakeeper.ctl.render."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hakeeper.ctl import render
from hakeeper.ctl.client import EXIT_OK, EXIT_USAGE, Client, CtlError
from hakeeper.ctl.watch import watch
from hakeeper.dbus.names import (
    GROUP_IFACE,
    INSTANCE_IFACE,
    MANAGER_IFACE,
    ROOT_PATH,
    RS_IFACE,
    VS_IFACE,
    group_path,
    instance_path,
    real_server_path,
    virtual_server_path,
)

Command = Callable[[Client, argparse.Namespace], Awaitable[int]]


def out(text: str) -> None:
    print(text, flush=True)


def _json(args: argparse.Namespace) -> bool:
    return args.output == "json"


@dataclass(frozen=True)
class Kind:
    """One kind of object `show` knows: its label, List* call, interface, path and table."""

    label: str
    list_rows: Callable[[Client], Awaitable[list[dict[str, Any]]]]
    interface: str
    path: Callable[[str], str] | None  # None: a real server's path needs its virtual server
    table: Callable[[list[dict[str, Any]]], str]


KINDS = {
    "instances": Kind(
        "instance", Client.list_instances, INSTANCE_IFACE, instance_path, render.instances_table
    ),
    "groups": Kind("sync group", Client.list_groups, GROUP_IFACE, group_path, render.groups_table),
    "virtual-servers": Kind(
        "virtual server",
        Client.list_virtual_servers,
        VS_IFACE,
        virtual_server_path,
        render.virtual_servers_table,
    ),
    "real-servers": Kind(
        "real server",
        Client.list_real_servers,
        RS_IFACE,
        None,
        render.real_servers_table,
    ),
}


def _not_found(label: str, name: str) -> str:
    return f"no {label} named {name!r}"


def _print_rows(args: argparse.Namespace, kind: Kind, rows: list[dict[str, Any]]) -> None:
    out(render.to_json(rows) if _json(args) else kind.table(rows))


def _print_props(args: argparse.Namespace, props: dict[str, Any]) -> None:
    out(render.to_json(props) if _json(args) else render.properties(props, time.time()))


async def show(c: Client, args: argparse.Namespace) -> int:
    kind = KINDS[args.what]
    if kind.path is None:
        return await _show_real_servers(c, args, kind)
    if args.name is None:
        _print_rows(args, kind, await kind.list_rows(c))
    else:
        path = kind.path(args.name)
        props = await c.get_all(path, kind.interface, _not_found(kind.label, args.name))
        _print_props(args, props)
    return EXIT_OK


async def _show_real_servers(c: Client, args: argparse.Namespace, kind: Kind) -> int:
    vs, rs = args.name, args.real_server
    if rs is not None:
        why = f"no real server {rs!r} in virtual server {vs!r}"
        _print_props(args, await c.get_all(real_server_path(vs, rs), RS_IFACE, why))
        return EXIT_OK
    rows = await c.list_real_servers()
    if vs is not None:
        # one name: a virtual server's real servers, or a real server wherever it serves
        rows = [r for r in rows if vs in (r["VirtualServerName"], r["Name"])]
        if not rows:  # a virtual server without real servers is still one
            why = f"no virtual server or real server named {vs!r}"
            await c.get_all(virtual_server_path(vs), VS_IFACE, why)
    _print_rows(args, kind, rows)
    return EXIT_OK


async def status(c: Client, args: argparse.Namespace) -> int:
    manager, instances, groups, servers = await asyncio.gather(
        c.get_all(ROOT_PATH, MANAGER_IFACE, "hakeeper has no manager object"),
        c.list_instances(),
        c.list_groups(),
        c.list_virtual_servers(),
    )
    data = render.status_data(manager, instances, groups, servers)
    out(render.to_json(data) if _json(args) else render.status_text(data, time.time()))
    return EXIT_OK


async def watch_cmd(c: Client, args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CtlError(f"--count {args.count} must be 1 or more", EXIT_USAGE)
    as_json = _json(args)

    def emit(event: dict[str, Any]) -> None:
        out(render.to_json(event, compact=True) if as_json else render.event_line(event))

    await watch(c, emit, args.count, time.time)
    return EXIT_OK


def _check_range(what: str, value: int, low: int, high: int, wire_low: int, wire_high: int) -> None:
    """Only what the wire type cannot carry is refused here; hakeeper judges the rest."""
    if not wire_low <= value <= wire_high:
        raise CtlError(f"{what} {value} is out of range {low}..{high}", EXIT_USAGE)


async def _instance(c: Client, name: str, member: str, sig: str = "", body: Any = ()) -> int:
    await c.call(
        instance_path(name), INSTANCE_IFACE, member, sig, body,
        not_found=_not_found("instance", name),
    )  # fmt: skip
    return EXIT_OK


async def set_priority(c: Client, args: argparse.Namespace) -> int:
    _check_range("priority", args.priority, 1, 254, 0, 255)
    return await _instance(c, args.name, "SetPriority", "y", [args.priority])


async def reset_priority(c: Client, args: argparse.Namespace) -> int:
    return await _instance(c, args.name, "ResetPriority")


async def failover(c: Client, args: argparse.Namespace) -> int:
    if args.group:
        why = _not_found("sync group", args.name)
        await c.call(group_path(args.name), GROUP_IFACE, "Failover", not_found=why)
        return EXIT_OK
    return await _instance(c, args.name, "Failover")


async def maintenance(c: Client, args: argparse.Namespace) -> int:
    return await _instance(c, args.name, "Maintenance", "b", [args.state == "on"])


async def garp(c: Client, args: argparse.Namespace) -> int:
    return await _instance(c, args.name, "SendGarp")


async def _real_server(
    c: Client, args: argparse.Namespace, member: str, sig: str = "", body: Any = ()
) -> int:
    vs, rs = args.virtual_server, args.real_server
    why = f"no real server {rs!r} in virtual server {vs!r}"
    await c.call(real_server_path(vs, rs), RS_IFACE, member, sig, body, not_found=why)
    return EXIT_OK


async def drain(c: Client, args: argparse.Namespace) -> int:
    return await _real_server(c, args, "Disable")


async def enable(c: Client, args: argparse.Namespace) -> int:
    return await _real_server(c, args, "Enable")


async def weight(c: Client, args: argparse.Namespace) -> int:
    if args.reset:
        return await _real_server(c, args, "ResetWeight")
    _check_range("weight", args.weight, 0, 65535, -(2**31), 2**31 - 1)
    return await _real_server(c, args, "SetWeight", "i", [args.weight])


async def reload(c: Client, args: argparse.Namespace) -> int:
    (changes,) = await c.manager("CheckReload" if args.check else "Reload")
    if _json(args):
        out(render.to_json(list(changes)))
    else:
        out(render.changes(changes))
    return EXIT_OK


async def dump(c: Client, args: argparse.Namespace) -> int:
    (text,) = await c.manager("Dump")
    # programs get the daemon's compact document as it is; people get it indented
    out(text if _json(args) else json.dumps(json.loads(text), indent=2, ensure_ascii=False))
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "show": show,
    "status": status,
    "watch": watch_cmd,
    "set-priority": set_priority,
    "reset-priority": reset_priority,
    "failover": failover,
    "maintenance": maintenance,
    "garp": garp,
    "drain": drain,
    "enable": enable,
    "weight": weight,
    "reload": reload,
    "dump": dump,
}
