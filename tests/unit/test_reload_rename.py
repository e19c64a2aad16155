"""A renamed vrrp_instance is the same instance (keepalived matches by interface, VRID and
family): the reload keeps its state, and the lines say so."""

from __future__ import annotations

from hakeeper.config.diff import config_changes, renamed
from tests.unit.test_config_diff import conf, instance


def test_a_rename_alone_keeps_the_instance() -> None:
    old, new = conf(instance("VI_1")), conf(instance("web"))
    assert list(renamed(old, new)) == ["VI_1"]
    assert renamed(old, new)["VI_1"].name == "web"
    assert config_changes(old, new) == ["vrrp_instance VI_1: renamed to web (keeps its state)"]


def test_a_rename_with_live_changes_shows_them_under_the_new_name() -> None:
    old = conf(instance("VI_1", body="    priority 100\n"))
    new = conf(instance("web", body="    priority 120\n"))
    assert config_changes(old, new) == [
        "vrrp_instance VI_1: renamed to web (keeps its state)",
        "vrrp_instance web: priority 100 -> 120 (live, no state change)",
    ]


def test_another_vrid_interface_or_a_restarting_change_is_not_a_rename() -> None:
    old = conf(instance("VI_1", vrid=51))
    for new in (
        conf(instance("web", vrid=52)),
        conf(instance("web", interface="eth1")),
        conf(instance("web", body="    use_vmac\n")),  # would restart: remove + add
    ):
        assert renamed(old, new) == {}
        assert config_changes(old, new)[:2] == [
            "vrrp_instance VI_1: removed",
            "vrrp_instance web: added",
        ]


def test_a_name_that_stays_is_never_taken_for_a_rename() -> None:
    old = conf(instance("VI_1", vrid=51))
    new = conf(instance("VI_1", vrid=51), instance("web", vrid=52))
    assert renamed(old, new) == {}
