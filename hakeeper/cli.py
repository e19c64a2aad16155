"""`hakeeper`: run the daemon, check a config (-t), or convert keepalived.conf to YAML."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from hakeeper import __version__
from hakeeper.config import ConfigErrors, load_config
from hakeeper.config.convert import to_yaml
from hakeeper.config.model import Config
from hakeeper.dump import DEFAULT_STATE_FILE
from hakeeper.logfmt import setup_logging

DEFAULT_CONFIGS = ("/etc/hakeeper/hakeeper.yaml", "/etc/keepalived/keepalived.conf")
DEFAULT_PID_FILE = "/run/hakeeper.pid"

# Exit codes (documented in hakeeper(8)); 2 is argparse's usage error.
EXIT_OK, EXIT_CONFIG, EXIT_RUNTIME = 0, 1, 3


def default_config() -> str:
    for path in DEFAULT_CONFIGS:
        if os.path.exists(path):
            return path
    return DEFAULT_CONFIGS[0]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hakeeper",
        description="VRRP failover and LVS load balancing (keepalived-compatible).",
        epilog="hakeeper convert FILE prints FILE (keepalived.conf) as hakeeper YAML.",
    )
    p.add_argument("--version", "-v", action="version", version=f"hakeeper {__version__}")
    p.add_argument("-f", "--use-file", dest="config", help="config file (YAML or keepalived.conf)")
    p.add_argument(
        "-t",
        "--config-test",
        action="store_true",
        help="check the config and exit; print what a reload would change in the hakeeper "
        "running with it (asked over --dbus-address)",
    )
    p.add_argument("-p", "--pid-file", "--pid", dest="pid_file", default=DEFAULT_PID_FILE)
    p.add_argument("--state-file", default=DEFAULT_STATE_FILE, help="JSON dump of the live state")
    p.add_argument(
        "--dbus-address",
        help="bus for the D-Bus API: system (default), session, none, or a D-Bus address",
    )
    p.add_argument("-D", "--log-detail", action="store_true", help="debug logging")
    p.add_argument(
        "-n", "--dont-fork", action="store_true", help="accepted for keepalived compatibility"
    )
    p.add_argument("-l", "--log-console", action="store_true", help="accepted (logs go to stderr)")
    return p


def check(path: str, dbus_address: str | None = None) -> int:
    """`-t`: every error as FILE:LINE: message; warnings too; 0 only when loadable. A good
    file is then compared with the hakeeper running it: the lines a reload would apply."""
    try:
        config = load_config(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        for w in e.warnings:
            print(f"{w} (warning)", file=sys.stderr)
        print(f"{path}: {len(e.errors)} error(s)", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as e:
        print(f"{path}: {e.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    for w in config.warnings:
        print(f"{w} (warning)", file=sys.stderr)
    if config.virtual_servers:
        problem = _lvs_problem(config)
        if problem is not None:
            print(problem, file=sys.stderr)
            return EXIT_CONFIG
    n, v = len(config.vrrp_instances), len(config.virtual_servers)
    print(f"{path}: OK ({n} vrrp_instance(s), {v} virtual_server(s), "
          f"{len(config.warnings)} warning(s))")  # fmt: skip
    from hakeeper.ctl.reloadcheck import report

    # the bus the daemon would use for this file: the command line, then global_defs
    bus = dbus_address or config.global_defs.dbus_address or "system"
    return EXIT_OK if report(path, bus) else EXIT_CONFIG


def _lvs_problem(config: Config) -> str | None:
    """What the LVS backend this host would use cannot serve (nftables without IPVS)."""
    from hakeeper.lvs.backend import BackendError, select_backend
    from hakeeper.lvs.manager import LvsError, LvsManager

    try:
        backend = select_backend(config.global_defs.lvs_backend)
        LvsManager.check_supported(config, backend)
    except LvsError as e:
        return "\n".join(e.problems)
    except BackendError as e:
        return f"LVS: {e}"
    return None


def convert(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="hakeeper convert", description="keepalived.conf to YAML")
    p.add_argument("file")
    args = p.parse_args(argv)
    try:
        config = load_config(args.file)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return EXIT_CONFIG
    for w in config.warnings:
        print(f"{w} (warning)", file=sys.stderr)
    sys.stdout.write(to_yaml(config))
    return EXIT_OK


def _setup_logging(debug: bool) -> None:
    # under systemd the journal stamps each line and reads <N> as its level (logfmt.py);
    # a terminal or a file gets our own timestamps
    setup_logging(debug, sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["convert"]:
        return convert(argv[1:])
    args = _parser().parse_args(argv)
    path = args.config or default_config()
    if args.config_test:
        return check(path, args.dbus_address)
    # until the event loop takes them over, a reload or dump request must not kill us
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    _setup_logging(args.log_detail)
    log = logging.getLogger("hakeeper")
    try:
        config = load_config(path)
    except ConfigErrors as e:
        for err in e.errors:
            log.error("%s", err)
        return EXIT_CONFIG
    except OSError as e:
        log.error("%s: %s", path, e.strerror)
        return EXIT_CONFIG
    for w in config.warnings:
        log.warning("%s", w)

    from hakeeper.daemon import Daemon  # imported late: -t and convert need no net stack

    _write_pid(args.pid_file)
    log.info("hakeeper %s starting with %s", __version__, path)
    try:
        daemon = Daemon(path, config, args.state_file, dbus_address=args.dbus_address)
        return asyncio.run(daemon.run())
    except OSError as e:
        log.error("fatal: %s", e)
        return EXIT_RUNTIME
    finally:
        _remove_pid(args.pid_file)


def _write_pid(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


def _remove_pid(path: str) -> None:
    """Remove the pid file only while it is ours: a new daemon may have written its own."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        with open(path) as f:
            if int(f.read().strip()) != os.getpid():
                return
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
