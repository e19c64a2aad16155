"""`hakeeperctl`: look at a running hakeeper (instances, status) and ask it to reload.

Until the D-Bus API lands, it reads the daemon's JSON dump, asking for a fresh one first
with SIGUSR1 (keepalived's data-dump signal), and reloads with SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from hakeeper.cli import DEFAULT_PID_FILE
from hakeeper.dump import DEFAULT_STATE_FILE


class CtlError(Exception):
    pass


def _daemon_pid(pid_file: str) -> int:
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError) as e:
        raise CtlError(f"hakeeper is not running (pid file {pid_file}: {e})") from e
    return pid


def read_state(state_file: str, pid_file: str, fresh: bool = True) -> dict[str, Any]:
    if fresh:
        pid = _daemon_pid(pid_file)
        before = _mtime(state_file)
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 2.0
        while _mtime(state_file) == before and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        with open(state_file) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise CtlError(f"cannot read {state_file}: {e}") from e


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def show_instances(state: dict[str, Any], name: str | None) -> str:
    instances = state["instances"]
    if name is not None:
        found = [i for i in instances if i["name"] == name]
        if not found:
            raise CtlError(f"no instance named {name!r}")
        return json.dumps(found[0], indent=2)
    rows = [["NAME", "STATE", "PRIO", "VRID", "INTERFACE", "VERSION", "MASTER", "VIPS"]]
    for i in instances:
        prio = f"{i['effective_priority']}/{i['base_priority']}"
        rows.append(
            [
                i["name"],
                i["state"],
                prio,
                str(i["virtual_router_id"]),
                i["interface"],
                f"v{i['version']} {i['family']}",
                i["master_address"] or "-",
                ",".join(i["virtual_ipaddress"]) or "-",
            ]
        )
    return _table(rows)


def show_groups(state: dict[str, Any], name: str | None) -> str:
    groups = state.get("groups", [])
    if name is not None:
        found = [g for g in groups if g["name"] == name]
        if not found:
            raise CtlError(f"no sync group named {name!r}")
        return json.dumps(found[0], indent=2)
    rows = [["NAME", "STATE", "MEMBERS", "LAST CHANGE"]]
    for g in groups:
        rows.append([g["name"], g["state"], ",".join(g["members"]), g["last_reason"] or "-"])
    return _table(rows)


def show_virtual_servers(state: dict[str, Any], name: str | None) -> str:
    servers = state.get("virtual_servers", [])
    if name is not None:
        found = [v for v in servers if v["name"] == name]
        if not found:
            raise CtlError(f"no virtual server named {name!r}")
        return json.dumps(found[0], indent=2)
    rows = [["NAME", "SCHED", "METHOD", "QUORUM", "ALIVE", "IN POOL", "SORRY", "CONNS"]]
    for v in servers:
        real = v["real_servers"]
        alive = sum(1 for r in real if r["alive"])
        pool = sum(1 for r in real if r["in_pool"])
        rows.append([
            v["name"], v["lvs_sched"], v["lvs_method"],
            f"{'up' if v['quorum_up'] else 'DOWN'} ({v['alive_weight']}/{v['quorum']})",
            f"{alive}/{len(real)}", str(pool),
            "active" if v["sorry_server_active"] else ("-" if not v["sorry_server"] else "idle"),
            str(v["counters"].get("conns", 0)),
        ])  # fmt: skip
    return _table(rows)


def show_real_servers(state: dict[str, Any], name: str | None) -> str:
    """Every real server; NAME filters by virtual server name or real server name."""
    rows = [["VIRTUAL SERVER", "REAL SERVER", "STATE", "WEIGHT", "IN POOL", "CONNS", "DETAIL"]]
    for v in state.get("virtual_servers", []):
        for r in v["real_servers"]:
            if name is not None and name not in (v["name"], r["name"]):
                continue
            st = ("UP" if r["alive"] else "DOWN") + ("" if r["enabled"] else " drained")
            pool = "-" if r["pool_weight"] is None else str(r["pool_weight"])
            rows.append([v["name"], r["name"], st, str(r["weight"]), pool,
                         str(r["counters"].get("conns", 0)), r["last_detail"] or "-"])  # fmt: skip
    if name is not None and len(rows) == 1:
        raise CtlError(f"no virtual or real server named {name!r}")
    return _table(rows)


def status(state: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for i in state["instances"]:
        counts[i["state"]] = counts.get(i["state"], 0) + 1
    servers = state.get("virtual_servers", [])
    lvs = ""
    if servers:
        alive = sum(r["alive"] for v in servers for r in v["real_servers"])
        total = sum(len(v["real_servers"]) for v in servers)
        lvs = (f"\nvirtual servers: {len(servers)} on {state.get('lvs_backend') or '?'}, "
               f"real servers {alive}/{total} up")  # fmt: skip
    up = time.time() - state["started"]
    by_state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    return (
        f"hakeeper {state['version']}  router_id {state['router_id']}\n"
        f"config {state['config_file']}  up {up:.0f}s  reloads {state['reloads']}\n"
        f"instances: {by_state}{lvs}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hakeeperctl", description="look at and control hakeeper")
    p.add_argument("--state-file", default=DEFAULT_STATE_FILE)
    p.add_argument("--pid-file", default=DEFAULT_PID_FILE)
    sub = p.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="show objects")
    show.add_argument("what", choices=["instances", "groups", "virtual-servers", "real-servers"])
    show.add_argument("name", nargs="?")
    sub.add_parser("status", help="daemon summary")
    sub.add_parser("dump", help="the whole state as JSON")
    sub.add_parser("reload", help="reload the config (SIGHUP); a bad file is refused")
    sub.add_parser("genhash", help="digest of a URL for HTTP_GET/SSL_GET (genhash's flags)",
                   add_help=False)  # fmt: skip
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["genhash"]:
        from hakeeper.check.genhash import main as genhash

        return genhash(argv[1:], prog="hakeeperctl genhash")
    args = p.parse_args(argv)
    try:
        if args.cmd == "reload":
            os.kill(_daemon_pid(args.pid_file), signal.SIGHUP)
            print("reload requested")
            return 0
        state = read_state(args.state_file, args.pid_file)
        if args.cmd == "show" and args.what == "groups":
            print(show_groups(state, args.name))
        elif args.cmd == "show" and args.what == "virtual-servers":
            print(show_virtual_servers(state, args.name))
        elif args.cmd == "show" and args.what == "real-servers":
            print(show_real_servers(state, args.name))
        elif args.cmd == "show":
            print(show_instances(state, args.name))
        elif args.cmd == "status":
            print(status(state))
        else:
            print(json.dumps(state, indent=2))
    except CtlError as e:
        print(f"hakeeperctl: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
