"""The lines a reload prints: what changes, named as in keepalived.conf, live or restart as the
daemon really applies it. Configs come through the real readers (keepalived.conf and YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.config import load_config
from hakeeper.config.diff import config_changes
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.model import Config
from hakeeper.config.yaml_reader import parse_yaml_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def instance(name: str = "VI_1", vrid: int = 51, body: str = "", interface: str = "eth0") -> str:
    return (
        f"vrrp_instance {name} {{\n    interface {interface}\n    virtual_router_id {vrid}\n"
        f"    virtual_ipaddress {{\n        198.18.0.{vrid}/24\n    }}\n{body}}}\n"
    )


def server(rs: str = "", vs: str = "", *, header: str = "198.18.0.100 80") -> str:
    return f"virtual_server {header} {{\n    protocol TCP\n{vs}{rs}}}\n"


def real(address: str = "198.18.1.10 80", body: str = "") -> str:
    return f"    real_server {address} {{\n{body}    }}\n"


def script(name: str, command: str = "/bin/true", body: str = "") -> str:
    return f"vrrp_script {name} {{\n    script {command}\n{body}}}\n"


def conf(*blocks: str, global_defs: str = "    router_id lb1\n") -> Config:
    return parse_keepalived_text(f"global_defs {{\n{global_defs}}}\n" + "".join(blocks), "k.conf")


def changes(old: str | tuple[str, ...], new: str | tuple[str, ...]) -> list[str]:
    def read(blocks: str | tuple[str, ...]) -> Config:
        return conf(*((blocks,) if isinstance(blocks, str) else blocks))

    return config_changes(read(old), read(new))


# ---------------------------------------------------------------- nothing changes


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.conf")), ids=lambda p: p.name)
def test_the_same_file_read_twice_changes_nothing(path: Path) -> None:
    assert config_changes(load_config(str(path)), load_config(str(path))) == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_twin_of_the_running_conf_changes_nothing(path: Path) -> None:
    """Only where a value was read (file, line) differs: no line."""
    assert config_changes(load_config(str(path.with_suffix(".conf"))), load_config(str(path))) == []


def test_moved_lines_and_comments_change_nothing() -> None:
    old = conf(instance(body="    priority 150\n"))
    new = conf("! a comment\n\n", instance(body="\n\n    priority 150\n"))
    assert config_changes(old, new) == []


# ---------------------------------------------------------------- vrrp_instance


def test_priority_change_is_live_and_keeps_the_state() -> None:
    old = instance(body="    version 3\n    priority 100\n    advert_int 1\n")
    new = instance(body="    version 3\n    priority 150\n    advert_int 0.5\n")
    assert changes(old, new) == [
        "vrrp_instance VI_1: priority 100 -> 150 (live, no state change)",
        "vrrp_instance VI_1: advert_int 1 -> 0.5 (live)",
    ]


def test_interface_change_restarts_the_instance() -> None:
    assert changes(instance(), instance(interface="eth1")) == [
        "vrrp_instance VI_1: interface eth0 -> eth1 (restart: the instance leaves and rejoins)"
    ]


def test_a_live_change_beside_a_restart_is_a_restart_too() -> None:
    old = instance(body="    priority 100\n")
    new = instance(body="    priority 90\n", interface="eth1")
    assert changes(old, new) == [
        "vrrp_instance VI_1: interface eth0 -> eth1 (restart: the instance leaves and rejoins)",
        "vrrp_instance VI_1: priority 100 -> 90 (restart: the instance leaves and rejoins)",
    ]


def test_virtual_address_and_vrid_changes_restart() -> None:
    old = instance(vrid=51)
    new = instance(vrid=52)
    assert changes(old, new) == [
        "vrrp_instance VI_1: virtual_router_id 51 -> 52 (restart: the instance leaves and rejoins)",
        "vrrp_instance VI_1: virtual_ipaddress 198.18.0.51/24 -> 198.18.0.52/24"
        " (restart: the instance leaves and rejoins)",
    ]


def test_a_long_address_list_shows_what_went_and_what_came() -> None:
    vips = "    virtual_ipaddress {{\n{}    }}\n"
    many = "".join(f"        198.18.0.{i}/24\n" for i in range(100, 104))
    old = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n" + vips.format(many)
    new = old.replace("198.18.0.101/24", "198.18.0.104/24")
    assert changes(old + "}\n", new + "}\n") == [
        "vrrp_instance VI_1: virtual_ipaddress -198.18.0.101/24 +198.18.0.104/24"
        " (restart: the instance leaves and rejoins)"
    ]


def test_an_address_option_change_is_just_changed() -> None:
    old = instance(body="    virtual_ipaddress {\n        198.18.0.60/24 dev eth0\n    }\n")
    new = instance(body="    virtual_ipaddress {\n        198.18.0.60/24 dev eth1\n    }\n")
    assert changes(old, new) == [
        "vrrp_instance VI_1: virtual_ipaddress changed (restart: the instance leaves and rejoins)"
    ]


def test_instance_added_and_removed() -> None:
    old = (instance("VI_1", 51), instance("VI_3", 53))
    new = (instance("VI_1", 51), instance("VI_2", 52))
    assert changes(old, new) == ["vrrp_instance VI_3: removed", "vrrp_instance VI_2: added"]


def test_notify_scripts_are_shown_by_their_keyword() -> None:
    old = instance(body='    notify_master "/bin/up.sh VI_1"\n')
    new = instance(body='    notify_master "/bin/up.sh VI_1 master"\n    notify_stop /bin/stop\n')
    assert changes(old, new) == [
        "vrrp_instance VI_1: notify_master /bin/up.sh VI_1 -> /bin/up.sh VI_1 master (live)",
        "vrrp_instance VI_1: notify_stop unset -> /bin/stop (live)",
    ]


def test_a_password_is_never_printed() -> None:
    auth = "    authentication {{\n        auth_type PASS\n        auth_pass {}\n    }}\n"
    (line,) = changes(instance(body=auth.format("secret1")), instance(body=auth.format("secret2")))
    assert (
        line == "vrrp_instance VI_1: auth_pass changed (restart: the instance leaves and rejoins)"
    )
    assert "secret" not in line


def test_track_script_reference_is_live() -> None:
    scripts = script("chk_a") + script("chk_b")
    old = (scripts, instance(body="    track_script {\n        chk_a\n    }\n"))
    new = (scripts, instance(body="    track_script {\n        chk_a\n        chk_b\n    }\n"))
    assert changes(old, new) == ["vrrp_instance VI_1: track_script chk_a -> chk_a,chk_b (live)"]


# ---------------------------------------------------------------- vrrp_sync_group


def group(members: str, extra: str = "") -> str:
    return f"vrrp_sync_group G1 {{\n    group {{\n        {members}\n    }}\n{extra}}}\n"


PAIR = (instance("VI_1", 51), instance("VI_2", 52), instance("VI_3", 53))


def test_sync_group_membership_change_rebuilds_the_group() -> None:
    old = (*PAIR, group("VI_1 VI_2"))
    new = (*PAIR, group("VI_1 VI_2 VI_3"))
    assert changes(old, new) == [
        "vrrp_sync_group G1: group VI_1,VI_2 -> VI_1,VI_2,VI_3 (the group is rebuilt)"
    ]


def test_sync_group_added_and_removed() -> None:
    assert changes(PAIR, (*PAIR, group("VI_1 VI_2"))) == ["vrrp_sync_group G1: added"]
    assert changes((*PAIR, group("VI_1 VI_2")), PAIR) == ["vrrp_sync_group G1: removed"]


def test_a_member_restart_rebuilds_an_unchanged_group() -> None:
    old = (instance("VI_1", 51), instance("VI_2", 52), group("VI_1 VI_2"))
    new = (instance("VI_1", 51), instance("VI_2", 52, interface="eth1"), group("VI_1 VI_2"))
    assert changes(old, new) == [
        "vrrp_instance VI_2: interface eth0 -> eth1 (restart: the instance leaves and rejoins)",
        "vrrp_sync_group G1: rebuilt (member VI_2 restarts)",
    ]


def test_a_live_member_change_keeps_the_group() -> None:
    old = (instance("VI_1", 51), instance("VI_2", 52), group("VI_1 VI_2"))
    new = (instance("VI_1", 51, "    priority 120\n"), instance("VI_2", 52), group("VI_1 VI_2"))
    assert changes(old, new) == ["vrrp_instance VI_1: priority 100 -> 120 (live, no state change)"]


# ---------------------------------------------------------------- global_defs and trackers


def test_global_defs_change_restarts_instances_only_for_the_multicast_groups() -> None:
    """Most global_defs keys are folded into the instances or taken live; only a new
    multicast group makes every instance leave and rejoin (its sockets join at start)."""
    old = conf(instance(), global_defs="    router_id a\n")
    new = conf(instance(), global_defs="    router_id b\n    vrrp_garp_interval 0.01\n")
    assert config_changes(old, new) == [
        "global_defs: router_id a -> b",
        "global_defs: vrrp_garp_interval 0 -> 0.01",
    ]
    moved = conf(instance(), global_defs="    router_id a\n    vrrp_mcast_group4 224.0.0.19\n")
    assert config_changes(old, moved) == [
        "global_defs: vrrp_mcast_group4 224.0.0.18 -> 224.0.0.19 (restart of every instance)",
    ]


def test_snmp_settings_say_snmp_restarts_and_move_no_instance() -> None:
    old = conf(instance(), global_defs="    router_id a\n    enable_snmp_rfcv3\n")
    new = conf(instance(), global_defs="    router_id a\n    enable_snmp_vrrp\n    enable_traps\n")
    assert config_changes(old, new) == [
        "global_defs: enable_snmp_vrrp off -> on (SNMP restarts, VRRP untouched)",
        "global_defs: enable_snmp_rfcv3 on -> off (SNMP restarts, VRRP untouched)",
        "global_defs: enable_traps off -> on (SNMP restarts, VRRP untouched)",
    ]


def test_a_multicast_group_change_makes_a_live_instance_change_a_restart() -> None:
    old = conf(instance(), global_defs="    router_id a\n")
    new = conf(
        instance(body="    priority 120\n"),
        global_defs="    router_id a\n    vrrp_mcast_group4 224.0.0.19\n",
    )
    assert config_changes(old, new) == [
        "global_defs: vrrp_mcast_group4 224.0.0.18 -> 224.0.0.19 (restart of every instance)",
        "vrrp_instance VI_1: priority 100 -> 120 (restart: global_defs changed)",
    ]


def test_a_global_key_folded_into_instances_shows_on_the_instance() -> None:
    """vrrp_garp_master_delay is every instance's default: the instance line says what a
    running instance does with it (live)."""
    old = conf(instance(), global_defs="    router_id a\n")
    new = conf(instance(), global_defs="    router_id a\n    vrrp_garp_master_delay 2\n")
    lines = config_changes(old, new)
    assert lines[0] == "global_defs: vrrp_garp_master_delay 5 -> 2"
    assert lines[1:] == ["vrrp_instance VI_1: garp_master_delay 5 -> 2 (live)"]


def test_global_defs_change_without_running_instances_restarts_nothing() -> None:
    old = conf(instance("VI_1"), global_defs="    router_id a\n")
    new = conf(instance("VI_2", 52), global_defs="    router_id b\n")
    assert config_changes(old, new) == [
        "global_defs: router_id a -> b",
        "vrrp_instance VI_1: removed",
        "vrrp_instance VI_2: added",
    ]


def test_vrrp_script_added_removed_and_changed() -> None:
    old = script("chk", "/bin/true", "    interval 1\n") + script("old")
    new = script("chk", '"/bin/check web"', "    interval 2\n") + script("new")
    assert changes(old, new) == [
        "vrrp_script old: removed",
        "vrrp_script chk: script /bin/true -> /bin/check web",
        "vrrp_script chk: interval 1 -> 2",
        "vrrp_script new: added",
    ]


# ---------------------------------------------------------------- virtual_server


def test_virtual_server_added_removed_and_scheduler_change() -> None:
    web = server(real(), "    lvs_sched rr\n")
    assert changes(web, (web, server(real(), header="198.18.0.101 80"))) == [
        "virtual_server 198.18.0.101:80/TCP: added"
    ]
    assert changes(web, ()) == ["virtual_server 198.18.0.100:80/TCP: removed"]
    assert changes(web, server(real(), "    lvs_sched wrr\n")) == [
        "virtual_server 198.18.0.100:80/TCP: lvs_sched rr -> wrr"
    ]


def test_real_server_added_removed_and_weight_change() -> None:
    old = server(real("198.18.1.10 80") + real("198.18.1.11 80"))
    new = server(real("198.18.1.10 80", "        weight 3\n") + real("198.18.1.12 80"))
    assert changes(old, new) == [
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.11:80 removed",
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.10:80 weight 1 -> 3",
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.12:80 added",
    ]


def test_checker_changes_are_summarised_by_kind() -> None:
    http = (
        "        HTTP_GET {{\n            url {{ path /health }}\n"
        "            connect_timeout {}\n        }}\n"
    )
    old = server(real(body=http.format(3)))
    new = server(real(body=http.format(5) + "        TCP_CHECK {\n        }\n"))
    assert changes(old, new) == [
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.10:80:"
        " HTTP_GET changed (connect_timeout) (checks restart)",
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.10:80:"
        " TCP_CHECK added (checks restart)",
    ]
    assert changes(new, old)[-1] == (
        "virtual_server 198.18.0.100:80/TCP: real_server 198.18.1.10:80:"
        " TCP_CHECK removed (checks restart)"
    )


def test_sorry_server_change() -> None:
    old = server(real(), "    sorry_server 198.18.2.1 8080\n")
    new = server(real(), "    sorry_server 198.18.2.2 8080\n")
    assert changes(old, new) == [
        "virtual_server 198.18.0.100:80/TCP: sorry_server 198.18.2.1:8080 removed",
        "virtual_server 198.18.0.100:80/TCP: sorry_server 198.18.2.2:8080 added",
    ]


def test_virtual_server_group_change() -> None:
    def vsg(addresses: str) -> str:
        return f"virtual_server_group WEB {{\n    {addresses}\n}}\n"

    web = server(real(), header="group WEB")
    old = (vsg("198.18.0.100 80"), web)
    assert changes(old, (vsg("198.18.0.100 80\n    198.18.0.101 80"), web)) == [
        "virtual_server_group WEB: changed"
    ]


def test_protocol_change_is_another_virtual_server() -> None:
    udp = server(real()).replace("protocol TCP", "protocol UDP")
    assert changes(server(real()), udp) == [
        "virtual_server 198.18.0.100:80/TCP: removed",
        "virtual_server 198.18.0.100:80/UDP: added",
    ]


# ---------------------------------------------------------------- YAML and order


YAML = """\
global_defs:
  router_id: lb1
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: {prio}
    virtual_ipaddress: [198.18.0.51/24]
"""


def test_yaml_reload_of_a_keepalived_conf() -> None:
    """Switching the file format is no change; only the edited value shows."""
    running = conf(instance())
    assert config_changes(running, parse_yaml_text(YAML.format(prio=100), "hk.yaml")) == []
    assert config_changes(running, parse_yaml_text(YAML.format(prio=200), "hk.yaml")) == [
        "vrrp_instance VI_1: priority 100 -> 200 (live, no state change)"
    ]


def test_order_is_global_trackers_instances_groups_then_lvs() -> None:
    old = conf(instance("VI_1", 51), instance("VI_2", 52), server(real()),
               global_defs="    router_id a\n")  # fmt: skip
    new = conf(
        "vrrp_script chk {\n    script /bin/true\n}\n",
        instance("VI_1", 51),
        instance("VI_2", 52),
        group("VI_1 VI_2"),
        server(real(), "    lvs_sched rr\n"),
        global_defs="    router_id b\n",
    )
    kinds = [line.split(" ", 1)[0] for line in config_changes(old, new)]
    assert kinds == ["global_defs:", "vrrp_script", "vrrp_sync_group", "virtual_server"]
    assert config_changes(old, new) == config_changes(old, new)
