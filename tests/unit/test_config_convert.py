"""to_yaml: every example keepalived.conf converts to YAML that reads back equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.config import load_config
from hakeeper.config.convert import command, to_yaml
from hakeeper.config.keepalived import parse_keepalived_text, split_quoted
from hakeeper.config.yaml_reader import parse_yaml_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL = sorted(EXAMPLES.glob("*.conf")) + sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_round_trip_every_example(path: Path) -> None:
    original = load_config(str(path))
    text = to_yaml(original)
    again = parse_yaml_text(text, "converted.yaml")
    assert again == original
    assert to_yaml(again) == text


def test_defaults_are_omitted() -> None:
    text = (
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n"
        " virtual_ipaddress {\n 198.18.0.1/24\n }\n}\n"
    )
    assert to_yaml(parse_keepalived_text(text)) == (
        "vrrp_instances:\n"
        "  VI_1:\n"
        "    interface: eth0\n"
        "    virtual_router_id: 51\n"
        "    virtual_ipaddress:\n"
        "      - 198.18.0.1/24\n"
    )


def test_derived_values_survive() -> None:
    text = (
        "global_defs {\n vrrp_strict\n vrrp_garp_master_delay 2\n}\n"
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n version 3\n"
        " accept\n garp_master_delay 5\n native_ipv6\n}\n"
    )
    original = parse_keepalived_text(text)
    inst = original.instance("VI_1")
    assert (inst.accept, inst.strict_mode, inst.garp_master_delay, inst.family) == (
        True,
        True,
        5.0,
        6,
    )
    assert parse_yaml_text(to_yaml(original)) == original


@pytest.mark.parametrize(
    "argv",
    [("/bin/x",), ("/bin/x", "a b", "it's", "back\\slash", '"q"', "tab\there", "", "#!")],
)
def test_command_quoting_round_trips(argv: tuple[str, ...]) -> None:
    assert tuple(split_quoted(command(argv), True)) == argv
