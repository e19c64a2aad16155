"""The manuals cannot rot: every keyword the config readers accept is in hakeeper.conf(5),
every command-line option is in hakeeper(8) / hakeeperctl(1), and `man` renders each page
without a warning. The lists come from the parsers' own tables, not from a copy."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import pytest

from hakeeper import cli
from hakeeper.check import genhash
from hakeeper.config import build, lvs, yaml_reader
from hakeeper.ctl import main as ctl

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = sorted(MAN.glob("*.[0-9]"))


def words(page: str) -> set[str]:
    """The words of a roff source as a reader sees them (`\\-` is a hyphen, fonts dropped)."""
    text = (MAN / page).read_text()
    text = re.sub(r"\\f(\[[^]]*\]|.)", "", text).replace("\\-", "-").replace("\\&", "")
    found = set(re.findall(r"-{0,2}[A-Za-z_][\w\-]*", text))
    return found | {w.lstrip("-") for w in found}


def keyword_tables() -> dict[str, dict[str, build.Handler]]:
    tables = {
        "global_defs": build.GLOBAL_TABLE,
        "vrrp_script": build.SCRIPT_TABLE,
        "vrrp_track_file": build.TRACK_FILE_TABLE,
        "vrrp_track_process": build.TRACK_PROCESS_TABLE,
        "vrrp_instance": build.INSTANCE_TABLE,
        "authentication": build.AUTH_TABLE,
        "vrrp_sync_group": build.SYNC_GROUP_TABLE,
        "virtual_server": lvs.VS_TABLE,
        "real_server": lvs.RS_TABLE,
        "url": lvs.URL_TABLE_SSL,
        "SSL": lvs.SSL_TABLE,
    }
    return tables | {kind: t for kind, t in lvs.CHECKER_TABLES.items()}


def test_every_config_keyword_is_in_hakeeper_conf_5() -> None:
    doc = words("hakeeper.conf.5")
    missing = {}
    for block, table in keyword_tables().items():
        # keywords read past with a warning are listed too, so a user finds why
        lost = sorted(k for k in table if k not in doc)
        if lost:
            missing[block] = lost
    assert missing == {}


def test_every_block_and_yaml_key_is_in_hakeeper_conf_5() -> None:
    doc = words("hakeeper.conf.5")
    keys = (
        set(build.ROOT_KINDS)
        | set(build.KNOWN_SKIPPED_ROOTS)
        | set(yaml_reader.NAMED_BLOCKS)
        | set(yaml_reader.KEYED_BLOCKS)
        | {"virtual_server_groups", "include"}
    )
    assert sorted(keys - doc) == []


def options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found |= {o for o in action.option_strings if o not in ("-h", "--help")}
        if isinstance(action, argparse._SubParsersAction):
            found |= set(action.choices)  # the command names
            for sub in action.choices.values():
                found |= options(sub)
    return found


@pytest.mark.parametrize(
    ("page", "parser"),
    [
        ("hakeeper.8", cli._parser()),
        ("hakeeperctl.1", ctl.build_parser()),
        ("hakeeperctl.1", genhash.build_parser("hakeeperctl genhash")),
    ],
    ids=["hakeeper", "hakeeperctl", "genhash"],
)
def test_every_option_is_in_its_manual(page: str, parser: argparse.ArgumentParser) -> None:
    assert sorted(options(parser) - words(page)) == []


def test_signals_the_daemon_handles_are_in_hakeeper_8() -> None:
    source = (Path(cli.__file__).parent / "daemon.py").read_text()
    handled = set(re.findall(r"signal\.(SIG[A-Z0-9]+)", source))
    assert handled, "daemon.py no longer names its signals this way: update this test"
    assert sorted(handled - words("hakeeper.8")) == []


def test_exit_codes_are_in_hakeeper_8() -> None:
    text = (MAN / "hakeeper.8").read_text()
    section = text.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    for code in (cli.EXIT_OK, cli.EXIT_CONFIG, 2, cli.EXIT_RUNTIME):
        assert re.search(rf"\b{code}\b", section), code


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_renders_without_warnings(page: Path) -> None:
    r = subprocess.run(
        ["man", "--warnings", "-l", str(page)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0", "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert len(r.stdout.splitlines()) > 20
