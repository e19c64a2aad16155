"""`hakeeperctl`: look at and control a running hakeeper over D-Bus (dbus/README.md).

This module is the command line: argparse, then one connection and one command
(hakeeper.ctl.commands); errors become `hakeeperctl: <message>` and an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from hakeeper.ctl.client import (
    DEFAULT_TIMEOUT,
    EXIT_FAILED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    Client,
    CtlError,
)
from hakeeper.ctl.commands import COMMANDS
from hakeeper.ctl.completion import bash_script

EPILOG = """\
exit status:
  0  success
  1  hakeeper refused or failed (NotMaster, ConfigInvalid, Failed, no reply...)
  2  usage error, or a value hakeeper refuses (InvalidArgs)
  3  hakeeper is not running (no bus, or nobody owns org.hakeeper.Hakeeper1)
  4  permission denied (AccessDenied)
  5  no such instance, sync group, virtual server or real server

The bus is --bus, else $HAKEEPER_BUS, else the system bus.
"""

SHOW_WHAT = ("instances", "groups", "virtual-servers", "real-servers")


def _common(p: argparse.ArgumentParser, top: bool) -> None:
    """--bus, -o and --timeout, accepted before and after the command; after it they are
    SUPPRESSed when absent so they never undo what was given before it."""
    default = argparse.SUPPRESS
    p.add_argument(
        "--bus",
        metavar="BUS",
        default=(os.environ.get("HAKEEPER_BUS") or "system") if top else default,
        help="system (default), session, or a D-Bus address (unix:path=...)",
    )
    p.add_argument(
        "-o", "--output", choices=("table", "json"), default="table" if top else default,
        help="table for people (default), json for programs",
    )  # fmt: skip
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        default=DEFAULT_TIMEOUT if top else default,
        help=f"how long to wait for an answer (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hakeeperctl",
        description="Look at and control a running hakeeper over D-Bus.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _common(common, top=False)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, help: str, **kw: object) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **kw)  # type: ignore[arg-type]

    show = add("show", "a table of objects, or every property of one")
    show.add_argument("what", choices=SHOW_WHAT)
    show.add_argument("name", nargs="?", help="one object (real-servers: a virtual server's)")
    show.add_argument("real_server", nargs="?", metavar="REAL_SERVER",
                      help="with real-servers VS: that one real server")  # fmt: skip
    add("status", "version, config, uptime, reloads, objects by state")
    watch = add("watch", "print state changes as they happen, until interrupted")
    watch.add_argument("--count", type=int, metavar="N", help="stop after N events")
    prio = add("set-priority", "set an instance's base priority (1..254)")
    prio.add_argument("name", metavar="INSTANCE")
    prio.add_argument("priority", type=int, metavar="PRIO")
    add("reset-priority", "back to the configured priority").add_argument(
        "name", metavar="INSTANCE"
    )
    fo = add("failover", "hand mastership over to the best backup now")
    fo.add_argument("--group", action="store_true", help="NAME is a sync group")
    fo.add_argument("name", metavar="NAME")
    maint = add("maintenance", "take an instance out of elections (on) or back (off)")
    maint.add_argument("state", choices=("on", "off"))
    maint.add_argument("name", metavar="INSTANCE")
    add("garp", "send gratuitous ARP / unsolicited NA for a master's VIPs").add_argument(
        "name", metavar="INSTANCE"
    )
    for name, help in (
        ("drain", "weight 0 in the pool, existing connections kept"),
        ("enable", "undo drain"),
        ("weight", "set a real server's weight (0..65535), or --reset it"),
    ):
        rs = add(name, help)
        rs.add_argument("virtual_server", metavar="VS")
        rs.add_argument("real_server", metavar="RS")
        if name == "weight":
            rs.add_argument("weight", type=int, nargs="?", metavar="N")
            rs.add_argument("--reset", action="store_true", help="back to the configured weight")
    reload = add("reload", "read the config file again and apply it; print what changed")
    reload.add_argument("--check", action="store_true",
                        help="only say what a reload would change (CheckReload)")  # fmt: skip
    add("dump", "the whole state as JSON")
    add("completion", "print a shell completion script").add_argument("shell", choices=("bash",))
    sub.add_parser("genhash", add_help=False,
                   help="digest of a URL for HTTP_GET/SSL_GET (genhash's flags)")  # fmt: skip
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    """argparse plus the checks it cannot express; SystemExit(2) on a usage error."""
    p = build_parser()
    args = p.parse_args(argv)
    sub = _subparsers(p)
    if args.cmd == "show" and args.real_server is not None and args.what != "real-servers":
        sub["show"].error("a second name is only for `show real-servers VS RS`")
    if args.cmd == "weight" and (args.weight is None) == (not args.reset):
        sub["weight"].error("give either N or --reset")
    if args.timeout <= 0:
        p.error("--timeout must be above 0")
    return args


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


async def run(args: argparse.Namespace) -> int:
    client = await Client.connect(args.bus, args.timeout)
    try:
        return await COMMANDS[args.cmd](client, args)
    finally:
        client.close()


def error(message: str) -> None:
    for line in message.splitlines() or [""]:
        print(f"hakeeperctl: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["genhash"]:
        from hakeeper.check.genhash import main as genhash

        return genhash(argv[1:], prog="hakeeperctl genhash")
    try:
        args = parse(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.cmd == "completion":
        sys.stdout.write(bash_script())
        return EXIT_OK
    try:
        return asyncio.run(run(args))
    except CtlError as e:
        error(str(e))
        return e.code
    except KeyboardInterrupt:  # the way to end `watch`
        return EXIT_OK
    except BrokenPipeError:  # `hakeeperctl watch | head`
        _quiet_stdout()
        return EXIT_OK
    except (ConnectionError, EOFError) as e:
        error(f"lost the connection to the bus ({e})")
        return EXIT_NOT_RUNNING
    except Exception as e:  # a bug or an answer that breaks the contract: say so, don't trace
        error(f"unexpected {type(e).__name__}: {e}")
        return EXIT_FAILED


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
