"""Native YAML reader: same model and checks as keepalived.conf, errors at YAML lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.config import ConfigErrors, load_config
from hakeeper.config.yaml_reader import load_yaml, parse_yaml_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL = """\
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress:
      - 198.18.0.100/24 dev eth0
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        parse_yaml_text(text, "hk.yaml")
    return [str(e) for e in exc.value.errors]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_example_equals_its_conf_twin(path: Path) -> None:
    twin = path.with_suffix(".conf")
    assert twin.exists(), f"{path.name} has no keepalived.conf twin"
    from_yaml = load_config(str(path))
    assert from_yaml == load_config(str(twin))
    assert from_yaml.vrrp_instances


def test_every_conf_example_has_a_yaml_twin() -> None:
    for conf in EXAMPLES.glob("*.conf"):
        assert conf.with_suffix(".yaml").exists(), conf.name


def test_defaults_and_values() -> None:
    inst = parse_yaml_text(MINIMAL, "hk.yaml").instance("VI_1")
    assert (inst.priority, inst.advert_int, inst.version, inst.state) == (100, 1.0, 2, "BACKUP")
    assert inst.virtual_ipaddress[0].dev == "eth0"
    assert inst.virtual_ipaddress[0].origin.line == 6
    assert inst.origin.line == 2


def test_track_script_forms_and_flags() -> None:
    text = """\
vrrp_scripts:
  chk: {script: "/bin/check 'a b'", weight: "-20 reverse"}
  chk2: {script: [/bin/check, a b]}
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    nopreempt:
    accept: false
    use_vmac: true
    auth_pass_is_not_here: 1
    track_script: [chk, {name: chk2, weight: -10, reverse: true}, "chk weight 5"]
    virtual_ipaddress: [{address: 198.18.0.100/24, dev: eth0, no_track: true}]
"""
    config = parse_yaml_text(text, "hk.yaml")
    chk, chk2 = config.vrrp_scripts
    assert chk.script == chk2.script == ("/bin/check", "a b")
    assert (chk.weight, chk.weight_reverse) == (-20, True)
    inst = config.instance("VI_1")
    assert (inst.nopreempt, inst.accept, inst.use_vmac) == (True, False, "")
    assert [(t.name, t.weight, t.reverse) for t in inst.track_script] == [
        ("chk", None, False),
        ("chk2", -10, True),
        ("chk", 5, False),
    ]
    assert inst.virtual_ipaddress[0].no_track is True
    assert [str(w) for w in config.warnings] == [
        "hk.yaml:11: unknown keyword 'auth_pass_is_not_here'"
    ]


def test_values_read_as_written() -> None:
    text = MINIMAL + "    authentication: {auth_type: PASS, auth_pass: 0123}\n"
    assert parse_yaml_text(text).instance("VI_1").auth_pass == "0123"


def test_errors_point_at_yaml_lines_and_are_all_collected() -> None:
    text = """\
global_defs:
  vrrp_version: 4
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: 300
    virtual_ipaddress: [198.18.0.999]
    track_script: [ghost]
  VI_2:
    interface: eth0
    virtual_router_id: 51
"""
    assert errors_of(text) == [
        "hk.yaml:2: vrrp_version 4 is out of range 2..3",
        "hk.yaml:7: priority 300 is out of range 1..255",
        "hk.yaml:8: virtual_ipaddress '198.18.0.999' is not an address",
        "hk.yaml:10: vrrp_instance VI_2: virtual_router_id 51 is already used on eth0 (IPv4) "
        "by VI_1",
        "hk.yaml:9: track_script ghost: no vrrp_script of that name",
    ]


def test_missing_fields_and_unknown_top_key() -> None:
    assert errors_of("vrrp_instances:\n  VI_1:\n    priority: 5\n") == [
        "hk.yaml:2: vrrp_instance VI_1: interface is missing",
        "hk.yaml:2: vrrp_instance VI_1: virtual_router_id is missing",
    ]
    config = parse_yaml_text(MINIMAL + "bogus: 1\n", "hk.yaml")
    assert [str(w) for w in config.warnings] == ["hk.yaml:7: unknown keyword 'bogus'"]


def test_sync_group_unknown_instance() -> None:
    text = MINIMAL + "vrrp_sync_groups:\n  G:\n    group: [VI_1, VI_9]\n"
    assert errors_of(text) == ["hk.yaml:8: vrrp_sync_group G: unknown instance VI_9"]


def test_yaml_syntax_error_has_line() -> None:
    errors = errors_of("vrrp_instances:\n  VI_1: [\n")
    assert len(errors) == 1 and errors[0].startswith("hk.yaml:3:")


def test_virtual_servers_keyed_by_header_words() -> None:
    text = MINIMAL + (
        "virtual_servers:\n"
        "  198.18.0.100 80:\n"
        "    lb_algo: rr\n"
        "    protocol: TCP\n"
        "    real_servers:\n"
        "      198.18.1.1 80:\n"
        "        weight: 2\n"
    )
    (vs,) = parse_yaml_text(text).virtual_servers
    assert (str(vs.address), vs.port, vs.lvs_sched) == ("198.18.0.100", 80, "rr")
    assert vs.real_servers[0].weight == 2
    assert vs.origin.line == 8


def test_empty_file_is_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty.yml"
    path.write_text("")
    assert load_yaml(str(path)).vrrp_instances == ()
