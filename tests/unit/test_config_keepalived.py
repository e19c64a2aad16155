"""keepalived.conf reader: lexing, keepalived's defaults and semantics, errors with lines."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hakeeper.config import ConfigErrors, load_config
from hakeeper.config.keepalived import (
    load_keepalived,
    parse_keepalived_text,
    split_quoted,
    split_words,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL = """\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
}
"""


def errors_of(text: str, name: str = "keepalived.conf") -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        parse_keepalived_text(text, name)
    return [str(e) for e in exc.value.errors]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.conf")), ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    config = load_config(str(path))
    assert config.vrrp_instances
    assert not [w for w in config.warnings if "unknown keyword" in w.message]


def test_defaults_are_keepalived_defaults() -> None:
    inst = parse_keepalived_text(MINIMAL, "k.conf").instance("VI_1")
    assert inst.state == "BACKUP"
    assert inst.priority == 100
    assert inst.advert_int == 1.0
    assert inst.version == 2
    assert inst.family == 4
    assert inst.nopreempt is False
    assert inst.accept is None
    assert inst.strict_mode is None
    assert inst.garp_master_delay == 5.0
    assert inst.garp_master_repeat == 5
    assert inst.virtual_ipaddress[0].prefixlen == 24
    assert inst.origin.line == 1 and inst.origin.file == "k.conf"


def test_basic_example_values() -> None:
    config = load_keepalived(str(EXAMPLES / "keepalived-basic.conf"))
    inst = config.instance("VI_1")
    assert config.global_defs.router_id == "lb1"
    assert (inst.state, inst.interface, inst.virtual_router_id, inst.priority) == (
        "MASTER",
        "eth0",
        51,
        150,
    )
    assert (inst.auth_type, inst.auth_pass) == ("PASS", "s3cret")
    vip = inst.virtual_ipaddress[0]
    assert (vip.address, vip.prefixlen, vip.dev) == (
        ipaddress.ip_address("198.18.0.100"),
        24,
        "eth0",
    )
    assert vip.origin.line == 18


def test_state_master_without_priority_keeps_100() -> None:
    inst = parse_keepalived_text(MINIMAL.replace("eth0\n", "eth0\n state MASTER\n")).instance(
        "VI_1"
    )
    assert (inst.state, inst.priority, inst.is_owner) == ("MASTER", 100, False)


def test_priority_255_is_owner() -> None:
    text = MINIMAL.replace("eth0\n", "eth0\n priority 255\n")
    assert parse_keepalived_text(text).instance("VI_1").is_owner


def test_comments_and_braces() -> None:
    text = (
        "global_defs { router_id lb1 }  # trailing comment\n"
        "! a bang comment\n"
        "vrrp_instance VI_1\n"
        "{\n"
        "  interface eth0 ! trailing bang\n"
        "  virtual_router_id   51   \n"
        "\n"
        "  virtual_ipaddress { 198.18.0.100/24 dev eth0\n"
        "    198.18.0.101 }\n"
        "  track_interface { eth0 weight -10 reverse }}\n"
    )
    config = parse_keepalived_text(text)
    inst = config.instance("VI_1")
    assert config.global_defs.router_id == "lb1"
    assert inst.virtual_router_id == 51
    assert [str(v) for v in inst.virtual_ipaddress] == ["198.18.0.100/24", "198.18.0.101/32"]
    assert inst.virtual_ipaddress[1].origin.line == 9
    track = inst.track_interface[0]
    assert (track.name, track.weight, track.reverse) == ("eth0", -10, True)


def test_escaped_hash_is_literal() -> None:
    text = MINIMAL.replace("eth0\n", "eth0\n notify_master /bin/echo\\#1\n")
    assert parse_keepalived_text(text).instance("VI_1").notify.notify_master == ("/bin/echo#1",)


def test_split_words_like_keepalived() -> None:
    assert split_words('script "/usr/bin/killall -0 nginx"') == [
        "script",
        "/usr/bin/killall -0 nginx",
    ]
    assert split_words('a"b c" d') == ["a", "b c", "d"]


def test_split_quoted_escapes() -> None:
    assert split_quoted(r"""/bin/x 'a b' "c d"e \x41 \101 \t\n \' \\""", True) == [
        "/bin/x",
        "a b",
        "c de",
        "A",
        "A",
        "\t\n",
        "'",
        "\\",
    ]
    assert split_quoted(r'notify "/bin/x \"y z\""', False) == ["notify", r"/bin/x \"y z\""]


def test_script_quoting() -> None:
    text = (
        "vrrp_script chk {\n"
        "  script \"/usr/bin/check --name 'two words' --hash '#x'\"\n"
        "}\n" + MINIMAL.replace("eth0\n", "eth0\n track_script {\n chk\n }\n")
    )
    config = parse_keepalived_text(text)
    assert config.vrrp_scripts[0].script == (
        "/usr/bin/check",
        "--name",
        "two words",
        "--hash",
        "#x",
    )


def test_unquoted_script_runs_first_word_only_with_warning() -> None:
    # keepalived only takes the first word of an unquoted command
    text = "vrrp_script chk {\n  script /bin/check arg\n}\n"
    config = parse_keepalived_text(text + MINIMAL)
    assert config.vrrp_scripts[0].script == ("/bin/check",)
    assert any(w.origin.line == 2 and "ignored" in w.message for w in config.warnings)


def test_unknown_keyword_warns_with_line() -> None:
    text = MINIMAL.replace("eth0\n", "eth0\n    foo bar\n")
    config = parse_keepalived_text(text, "k.conf")
    assert [str(w) for w in config.warnings] == ["k.conf:3: unknown keyword 'foo'"]


def test_known_blocks_skipped_and_virtual_server_read() -> None:
    text = (
        MINIMAL + "static_ipaddress {\n 198.18.9.1/24 dev lo\n}\n"
        "virtual_server 198.18.0.100 80 {\n lb_algo rr\n protocol TCP\n"
        " real_server 198.18.1.1 80 {\n  TCP_CHECK { connect_timeout 3 }\n }\n}\n"
    )
    config = parse_keepalived_text(text)
    assert config.warnings == ()
    (vs,) = config.virtual_servers
    assert (str(vs.address), vs.port, vs.lvs_sched) == ("198.18.0.100", 80, "rr")
    (check,) = vs.real_servers[0].checkers
    assert (check.kind, check.connect_timeout) == ("TCP_CHECK", 3.0)
    assert vs.origin.line == 11


def test_ipv6_forces_v3_and_family_6() -> None:
    config = load_keepalived(str(EXAMPLES / "keepalived-ipv6.conf"))
    inst = config.instance("VI_6")
    assert (inst.family, inst.version, inst.advert_int) == (6, 3, 0.5)
    assert inst.virtual_ipaddress[0].address == ipaddress.ip_address("fd00:198:18::100")


def test_vip_without_prefix_is_host() -> None:
    text = MINIMAL.replace("198.18.0.100/24", "fd00:198:18::1")
    inst = parse_keepalived_text(text).instance("VI_1")
    assert inst.virtual_ipaddress[0].prefixlen == 128
    assert inst.family == 6


def test_native_ipv6() -> None:
    text = MINIMAL.replace("eth0\n", "eth0\n native_ipv6\n").replace(
        "    virtual_ipaddress {\n        198.18.0.100/24\n    }\n", ""
    )
    inst = parse_keepalived_text(text).instance("VI_1")
    assert (inst.family, inst.version) == (6, 3)


def test_global_vrrp_version_is_default() -> None:
    text = "global_defs {\n vrrp_version 3\n}\n" + MINIMAL
    assert parse_keepalived_text(text).instance("VI_1").version == 3


def test_vrrp_strict_forces_strict_and_no_accept() -> None:
    text = "global_defs {\n vrrp_strict\n}\n" + MINIMAL
    inst = parse_keepalived_text(text).instance("VI_1")
    assert (inst.strict_mode, inst.accept) == (True, False)
    owner = parse_keepalived_text(text.replace("eth0\n", "eth0\n priority 255\n"))
    assert owner.instance("VI_1").accept is True


def test_accept_no_accept_preempt() -> None:
    text = MINIMAL.replace("eth0\n", "eth0\n no_accept\n nopreempt\n")
    inst = parse_keepalived_text(text).instance("VI_1")
    assert (inst.accept, inst.nopreempt) == (False, True)
    text = MINIMAL.replace("eth0\n", "eth0\n nopreempt\n preempt\n accept\n")
    inst = parse_keepalived_text(text).instance("VI_1")
    assert (inst.accept, inst.nopreempt) == (True, False)


def test_auth_pass_truncated_to_8_with_warning() -> None:
    text = MINIMAL.replace(
        "eth0\n", "eth0\n authentication {\n auth_type PASS\n auth_pass 0123456789\n }\n"
    )
    config = parse_keepalived_text(text)
    assert config.instance("VI_1").auth_pass == "01234567"
    assert [w.origin.line for w in config.warnings] == [5]


def test_advert_int_v2_rounded_with_warning_v3_fractional() -> None:
    config = parse_keepalived_text(MINIMAL.replace("eth0\n", "eth0\n advert_int 1.6\n"))
    assert config.instance("VI_1").advert_int == 2.0
    assert "whole seconds" in config.warnings[0].message
    config = parse_keepalived_text(
        MINIMAL.replace("eth0\n", "eth0\n version 3\n advert_int 0.25\n")
    )
    assert config.instance("VI_1").advert_int == 0.25
    assert config.warnings == ()


def test_garp_defaults_from_global() -> None:
    text = "global_defs {\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 7\n}\n" + MINIMAL
    inst = parse_keepalived_text(text).instance("VI_1")
    assert (inst.garp_master_delay, inst.garp_master_repeat) == (2.0, 7)
    text2 = text.replace("eth0\n", "eth0\n garp_master_delay 1\n")
    assert parse_keepalived_text(text2).instance("VI_1").garp_master_delay == 1.0


def test_use_vmac() -> None:
    inst = parse_keepalived_text(MINIMAL.replace("eth0\n", "eth0\n use_vmac\n")).instance("VI_1")
    assert (inst.use_vmac, inst.vmac_interface) == ("", "vrrp.51")
    inst = parse_keepalived_text(MINIMAL.replace("eth0\n", "eth0\n use_vmac vm1\n")).instance(
        "VI_1"
    )
    assert inst.vmac_interface == "vm1"


def test_full_example_values() -> None:
    config = load_keepalived(str(EXAMPLES / "keepalived-full.conf"))
    assert [s.name for s in config.vrrp_scripts] == ["chk_nginx", "chk_api"]
    nginx = config.vrrp_scripts[0]
    assert (nginx.interval, nginx.weight, nginx.weight_reverse, nginx.user, nginx.group) == (
        1.5,
        -30,
        True,
        "nobody",
        "nogroup",
    )
    assert nginx.origin.file.endswith("conf.d/scripts.conf")
    assert config.vrrp_scripts[1].script[2] == "http://198.18.0.100/health"
    assert config.vrrp_track_files[0].weight == -50
    vi1 = config.instance("VI_1")
    assert vi1.origin.line == 37  # the name line, the brace is on the next line
    assert vi1.notify.notify_master == ("/etc/keepalived/notify.sh", "master", "VI 1")
    assert vi1.virtual_routes[2].type == "blackhole"
    assert vi1.virtual_routes[0].table == 100 and vi1.virtual_routes[0].via == "198.18.0.254"
    assert vi1.virtual_rules[0].src == "198.18.0.100" and vi1.virtual_rules[0].priority == 100
    assert [(t.name, t.weight) for t in vi1.track_script] == [("chk_nginx", None), ("chk_api", -40)]
    assert vi1.check_unicast_src is True  # from vrrp_check_unicast_src
    assert config.vrrp_sync_groups[0].group == ("VI_1", "VI_2")
    assert config.vrrp_sync_groups[0].notify.smtp_alert is True
    vi3 = config.instance("VI_3")
    # strict mode turns accept off unless asked for: the example asks, to keep its VIP reachable
    assert (vi3.version, vi3.advert_int, vi3.strict_mode, vi3.accept) == (3, 0.25, True, True)
    assert [g.name for g in config.virtual_server_groups] == ["VSG_1"]
    assert [vs.name for vs in config.virtual_servers] == ["198.18.0.100:80/TCP"]
    assert config.global_defs.notification_email == ("ops@example.com", "noc@example.com")


def test_include_glob_relative_to_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.conf").write_text(MINIMAL.replace("VI_1", "VI_B").replace("51", "52"))
    (tmp_path / "sub" / "a.conf").write_text("include ../more/*.conf\n")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "c.conf").write_text(MINIMAL.replace("VI_1", "VI_C").replace("51", "53"))
    (tmp_path / "main.conf").write_text("include sub/*.conf\ninclude none/*.conf\n")
    config = load_keepalived(str(tmp_path / "main.conf"))
    assert [i.name for i in config.vrrp_instances] == ["VI_C", "VI_B"]
    assert config.instance("VI_B").origin == config.instance("VI_B").origin
    assert config.instance("VI_B").origin.file == str(tmp_path / "sub" / "b.conf")
    assert [w.origin.line for w in config.warnings] == [2]  # glob without match: warning


def test_include_missing_file_is_error(tmp_path: Path) -> None:
    (tmp_path / "main.conf").write_text(MINIMAL + "include nothere.conf\n")
    with pytest.raises(ConfigErrors) as exc:
        load_keepalived(str(tmp_path / "main.conf"))
    assert [e.origin.line for e in exc.value.errors] == [8]


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        ("priority 300", 3, "priority 300 is out of range 1..255"),
        ("priority 0", 3, "priority 0 is out of range 1..255"),
        ("priority high", 3, "priority 'high' is not an integer"),
        ("virtual_router_id 256", 3, "virtual_router_id 256 is out of range 1..255"),
        ("advert_int x", 3, "advert_int 'x' is not a number of seconds"),
        ("state LEADER", 3, "state 'LEADER' is not MASTER or BACKUP"),
        ("unicast_src_ip 198.18.0.300", 3, "unicast_src_ip '198.18.0.300' is not an address"),
        ("track_script {\n nope\n }", 4, "track_script nope: no vrrp_script of that name"),
        ("authentication {\n auth_type MD5\n }", 4, "auth_type 'MD5' is not PASS or AH"),
    ],
)
def test_value_errors_point_at_the_line(change: str, line: int, message: str) -> None:
    text = MINIMAL.replace("eth0\n", f"eth0\n    {change}\n")
    assert errors_of(text) == [f"keepalived.conf:{line}: {message}"]


def test_bad_vip_line() -> None:
    text = MINIMAL.replace("198.18.0.100/24", "198.18.0.100/24\n        not-an-ip dev eth0")
    assert errors_of(text) == ["keepalived.conf:6: virtual_ipaddress 'not-an-ip' is not an address"]


def test_missing_interface_and_vrid() -> None:
    text = "vrrp_instance VI_1 {\n  priority 10\n}\n"
    assert errors_of(text) == [
        "keepalived.conf:1: vrrp_instance VI_1: interface is missing",
        "keepalived.conf:1: vrrp_instance VI_1: virtual_router_id is missing",
    ]


def test_duplicates() -> None:
    text = MINIMAL + MINIMAL
    assert errors_of(text) == [
        "keepalived.conf:8: vrrp_instance VI_1 is already defined at keepalived.conf:1"
    ]
    text = MINIMAL + MINIMAL.replace("VI_1", "VI_2")
    assert errors_of(text) == [
        "keepalived.conf:8: vrrp_instance VI_2: virtual_router_id 51 is already used on eth0 "
        "(IPv4) by VI_1"
    ]


def test_same_vrid_other_interface_or_family_is_fine() -> None:
    other_if = MINIMAL.replace("VI_1", "VI_2").replace("eth0", "eth1")
    other_family = MINIMAL.replace("VI_1", "VI_3").replace("198.18.0.100/24", "fd00:198:18::1")
    config = parse_keepalived_text(MINIMAL + other_if + other_family)
    assert len(config.vrrp_instances) == 3


def test_sync_group_unknown_instance() -> None:
    text = MINIMAL + "vrrp_sync_group G {\n  group {\n    VI_1 VI_9\n  }\n}\n"
    assert errors_of(text) == ["keepalived.conf:8: vrrp_sync_group G: unknown instance VI_9"]


def test_unbalanced_braces() -> None:
    assert errors_of(MINIMAL + "}\n") == ["keepalived.conf:8: extra '}'"]
    assert errors_of(MINIMAL[:-2]) == [
        "keepalived.conf:1: missing '}' for the block of 'vrrp_instance'"
    ]


def test_all_errors_collected() -> None:
    text = (
        "vrrp_instance VI_1 {\n"
        "  interface eth0\n"
        "  virtual_router_id 0\n"
        "  priority 300\n"
        "  virtual_ipaddress {\n"
        "    198.18.0.999/24\n"
        "  }\n"
        "}\n"
        "vrrp_instance VI_2 {\n"
        "  interface eth0\n"
        "  virtual_router_id 9\n"
        "  track_script {\n"
        "    ghost\n"
        "  }\n"
        "}\n"
    )
    assert [e.split(":")[1] for e in errors_of(text)] == ["3", "4", "6", "13"]


def test_unreadable_file() -> None:
    with pytest.raises(ConfigErrors) as exc:
        load_keepalived("/nonexistent/keepalived.conf")
    assert exc.value.errors[0].origin.file == "/nonexistent/keepalived.conf"
