"""The D-Bus descriptions: path escaping, introspection XML, the shipped interface files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.dbus.introspect import interface_files
from hakeeper.dbus.names import escape_label, instance_path, real_server_path, unescape_label

REPO = Path(__file__).resolve().parents[2]
PATH_ELEMENT = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("VI_1", "VI_5f1"),
        ("198.18.0.100:80/TCP", "_3198_2e18_2e0_2e100_3a80_2fTCP"),
        ("", "_"),
        ("web", "web"),
    ],
)
def test_escaping_is_systemds(name: str, label: str) -> None:
    assert escape_label(name) == label
    assert unescape_label(label) == name


@given(st.text(min_size=0, max_size=40))
def test_escaping_round_trips_and_is_a_valid_path_element(name: str) -> None:
    label = escape_label(name)
    assert set(label) <= PATH_ELEMENT and label
    assert unescape_label(label) == name


def test_paths_nest_real_servers_under_their_virtual_server() -> None:
    assert instance_path("VI_1") == "/org/hakeeper/Hakeeper1/instance/VI_5f1"
    rs = real_server_path("fwmark:7/TCP", "198.18.1.10:80")
    assert rs.startswith("/org/hakeeper/Hakeeper1/virtual_server/fwmark_3a7_2fTCP/real_server/")


def test_shipped_interface_files_match_the_code() -> None:
    files = interface_files()
    assert set(files) >= {
        "org.hakeeper.Hakeeper1.Manager.xml",
        "org.hakeeper.Hakeeper1.Instance.xml",
        "org.keepalived.Vrrp1.Instance.xml",
    }
    for name, text in files.items():
        shipped = REPO / "dbus" / name
        assert shipped.read_text() == text, f"{name} is stale: python -m hakeeper.dbus.introspect"
        ET.fromstring(text.split("\n", 2)[2])  # well-formed after the DOCTYPE


def test_counters_are_marked_as_not_signalled() -> None:
    xml = interface_files()["org.hakeeper.Hakeeper1.Instance.xml"]
    root = ET.fromstring(xml.split("\n", 2)[2])
    counters = root.find(".//property[@name='Counters']")
    assert counters is not None
    note = counters.find("annotation")
    assert note is not None
    assert note.get("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal"
    assert note.get("value") == "false"
    state = root.find(".//property[@name='State']")
    assert state is not None and state.find("annotation") is None


def test_keepalived_interfaces_use_keepalived_types() -> None:
    root = ET.fromstring(interface_files()["org.keepalived.Vrrp1.Instance.xml"].split("\n", 2)[2])
    types = {p.get("name"): p.get("type") for p in root.iter("property")}
    assert types == {"Name": "(s)", "State": "(us)"}
    assert [s.get("name") for s in root.iter("signal")] == ["VrrpStatusChange"]


def _members(xml: str) -> dict[str, object]:
    """Methods (with argument types), signals and properties of the one interface in `xml`."""
    root = ET.fromstring(xml[xml.index("<node") :])
    iface = root.find("interface")
    assert iface is not None
    return {
        "methods": {
            m.get("name"): [a.get("type") for a in m.iter("arg")] for m in iface.iter("method")
        },
        "signals": {
            s.get("name"): [a.get("type") for a in s.iter("arg")] for s in iface.iter("signal")
        },
        "properties": {p.get("name"): p.get("type") for p in iface.iter("property")},
    }


@pytest.mark.parametrize("name", ["org.keepalived.Vrrp1.Instance", "org.keepalived.Vrrp1.Vrrp"])
def test_keepalived_interfaces_match_keepalived_s_own_files(name: str) -> None:
    """Debian's keepalived package ships its interface files: ours must say the same, except
    where keepalived fixed its file later: Name is `(s)`, what its code always returned
    (keepalived commit 367c6527, "dbus: fix type of Name property in Interface")."""
    theirs = _members(Path(f"/usr/share/dbus-1/interfaces/{name}.xml").read_text())
    ours = _members(interface_files()[f"{name}.xml"])
    if name.endswith("Instance") and theirs["properties"]["Name"] == "s":  # type: ignore[index]
        theirs["properties"]["Name"] = "(s)"  # type: ignore[index]
    assert ours == theirs


def test_the_bus_policy_opens_exactly_the_read_methods() -> None:
    """Anyone may call a read method; no control method is opened to everyone by the policy."""
    from hakeeper.dbus.introspect import CLASSES

    root = ET.parse(REPO / "dbus" / "org.hakeeper.Hakeeper1.conf").getroot()
    default = root.find("policy[@context='default']")
    assert default is not None
    opened = {
        (rule.get("send_interface"), rule.get("send_member"))
        for rule in default.findall("allow")
        if rule.get("send_destination") == "org.hakeeper.Hakeeper1"
    }
    for cls in CLASSES:
        for iface in cls.interfaces:
            if not iface.name.startswith("org.hakeeper."):
                continue
            for method in iface.methods:
                allowed = (iface.name, method.name) in opened or (iface.name, None) in opened
                assert allowed == (not method.control), (iface.name, method.name)
