"""The metrics view without a daemon: the `metrics` block in both formats, and the collector's
mapping of a small runtime model onto exporter-compatible series."""

from __future__ import annotations

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hakeeper.config import ConfigErrors
from hakeeper.config.convert import to_yaml
from hakeeper.config.diff import config_changes
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.lvs_model import RealServer, VirtualServer
from hakeeper.config.model import VirtualAddress, VrrpInstance, VrrpSyncGroup
from hakeeper.config.yaml_reader import parse_yaml_text
from hakeeper.metrics.collector import ModelCollector, Snapshot
from hakeeper.metrics.render import decode, encode, render
from hakeeper.state import (
    GroupState,
    InstanceState,
    RealServerState,
    Runtime,
    VirtualServerState,
)
from hakeeper.track.tracking import TrackerView
from hakeeper.vrrp.stats import InstanceStats

INSTANCE = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
}
"""


def conf(metrics_body: str | None) -> str:
    if metrics_body is None:
        return INSTANCE
    return f"global_defs {{\n    metrics {{\n{metrics_body}    }}\n}}\n{INSTANCE}"


def test_off_by_default_and_the_block_turns_it_on_at_port_9165() -> None:
    assert parse_keepalived_text(conf(None), "k.conf").global_defs.metrics is None
    m = parse_keepalived_text(conf(""), "k.conf").global_defs.metrics
    assert m is not None and m.listen == (("127.0.0.1", 9165),)
    body = "        listen 198.18.0.1\n        listen [fd00:198:18::1]:9100\n"
    m = parse_keepalived_text(conf(body), "k.conf").global_defs.metrics
    assert m is not None and m.listen == (("198.18.0.1", 9165), ("fd00:198:18::1", 9100))


def test_yaml_reads_the_same_block_and_convert_round_trips() -> None:
    body = "        listen 198.18.0.1:9200\n        listen fd00:198:18::1\n"
    original = parse_keepalived_text(conf(body), "k.conf")
    text = to_yaml(original)
    assert "metrics:\n    - listen 198.18.0.1:9200\n    - listen [fd00:198:18::1]:9165\n" in text
    assert parse_yaml_text(text, "h.yaml") == original
    rest = to_yaml(parse_keepalived_text(INSTANCE, "k"))
    yaml = f"global_defs:\n  metrics: [listen 198.18.0.7]\n{rest}"
    m = parse_yaml_text(yaml, "h.yaml").global_defs.metrics
    assert m is not None and m.listen == (("198.18.0.7", 9165),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("listen 198.18.0.300", "'198.18.0.300'"),
        ("listen 198.18.0.1:70000", "port"),
        ("listen", "is not listen ADDR[:PORT]"),
        ("port 9100", "is not listen ADDR[:PORT]"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as e:
        parse_keepalived_text(conf(f"        {line}\n"), "k.conf")
    errors = [str(err) for err in e.value.errors]
    assert any(err.startswith("k.conf:3:") and message in err for err in errors), errors
    with pytest.raises(ConfigErrors) as e:
        parse_yaml_text(f"global_defs:\n  metrics:\n    - {line}\n", "h.yaml")
    errors = [str(err) for err in e.value.errors]
    assert any(err.startswith("h.yaml:3:") and message in err for err in errors), errors


def test_a_reload_that_moves_the_endpoint_is_a_change() -> None:
    old = parse_keepalived_text(conf("        listen 198.18.0.1\n"), "k.conf")
    new = parse_keepalived_text(conf("        listen 198.18.0.1:9166\n"), "k.conf")
    assert config_changes(old, new) == ["global_defs: metrics listen changed"]
    assert config_changes(old, parse_keepalived_text(conf(None), "k")) == [
        "global_defs: metrics changed"
    ]


# -- the collector ----------------------------------------------------------------------


def model() -> Runtime:
    rt = Runtime(router_id="lb1")
    cfg = VrrpInstance(
        "VI_1",
        "eth0",
        51,
        priority=150,
        virtual_ipaddress=(
            VirtualAddress(ipaddress.ip_address("198.18.0.100"), 24),
            VirtualAddress(ipaddress.ip_address("198.18.0.101"), 24, dev="eth1"),
        ),
    )
    stats = InstanceStats(advert_sent=40, advert_rcvd=3, become_master=2, checksum_err=1)
    view = InstanceState(cfg, stats, state="MASTER", effective_priority=130, last_transition=5.5)
    view.trackers = lambda: [
        TrackerView("script", "chk", "GOOD", -20, False, 0, 0),
        TrackerView("interface", "eth1", "DOWN", 0, False, None, None),
    ]
    rt.instances["VI_1"] = view
    bare = VrrpInstance("VI_2", "eth0", 52)
    rt.instances["VI_2"] = InstanceState(bare, InstanceStats(), state="FAULT")
    rt.groups["G"] = GroupState(VrrpSyncGroup("G", ("VI_1",)), state="MASTER")
    vs_cfg = VirtualServer(address=ipaddress.ip_address("198.18.0.100"), port=80)
    vs = VirtualServerState(vs_cfg, counters={"conns": 12, "inbytes": 900})
    rs_cfg = RealServer(ipaddress.ip_address("198.18.1.10"), 8080, weight=3)
    rs = RealServerState(rs_cfg, alive=False, in_pool=False, counters={"conns": 5})
    rs.checks = lambda: [{"index": 0, "kind": "TCP_CHECK", "up": False, "checks": 7,
                          "failures": 2, "last_duration": 0.25}]  # fmt: skip
    vs.real_servers[rs_cfg.name] = rs
    rt.virtual_servers[vs.name] = vs
    rt.count("vrid_err")
    return rt


def samples(rt: Runtime, **kw: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    snap = Snapshot()
    for _ in ModelCollector(rt, **kw).read_parts(snap):  # type: ignore[arg-type]
        pass
    # through the renderer's wire format, as the daemon sends it
    again = decode(encode(snap, gzipped=False)[5:])
    text = render(again, gzipped=False).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def key(metric: str, /, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (metric, frozenset(labels.items()))


def test_vrrp_series_carry_the_exporter_names_labels_and_state_numbers() -> None:
    got = samples(model(), queue_depth=lambda: 4, notify_dropped=lambda: 1)
    vi1 = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    assert got[key("keepalived_up")] == 1
    assert got[key("keepalived_vrrp_state", **vi1, ip_address="198.18.0.100")] == 2
    # a VIP on another device is labelled with that device, as the exporter reads keepalived
    eth1 = {**vi1, "intf": "eth1"}
    assert got[key("keepalived_vrrp_state", **eth1, ip_address="198.18.0.101")] == 2
    # no VIP: one series with an empty address; FAULT is keepalived's 3
    vi2 = {"iname": "VI_2", "intf": "eth0", "vrid": "52", "ip_address": ""}
    assert got[key("keepalived_vrrp_state", **vi2)] == 3
    assert got[key("keepalived_advertisements_sent_total", **vi1)] == 40
    assert got[key("keepalived_advertisements_received_total", **vi1)] == 3
    assert got[key("keepalived_become_master_total", **vi1)] == 2
    assert got[key("hakeeper_vrrp_checksum_errors_total", **vi1)] == 1
    assert got[key("keepalived_gratuitous_arp_delay_total", **vi1)] == 5
    assert got[key("hakeeper_vrrp_effective_priority", iname="VI_1")] == 130
    assert got[key("hakeeper_vrrp_base_priority", iname="VI_1")] == 150
    assert got[key("hakeeper_vrrp_last_transition_timestamp_seconds", iname="VI_1")] == 5.5
    assert key("hakeeper_vrrp_last_transition_timestamp_seconds", iname="VI_2") not in got
    assert got[key("keepalived_script_status", name="chk")] == 1
    tracker = {"iname": "VI_1", "kind": "interface", "name": "eth1"}
    assert got[key("hakeeper_tracker_up", **tracker)] == 0
    assert got[key("hakeeper_tracker_faulting", **tracker)] == 1
    assert got[key("hakeeper_vrrp_sync_group_state", group="G")] == 2
    assert got[key("hakeeper_notify_queue_depth")] == 4
    assert got[key("hakeeper_notify_dropped_total")] == 1
    assert got[key("hakeeper_global_events_total", event="vrid_err")] == 1
    assert got[key("hakeeper_info", version=__import__("hakeeper").__version__,
                   router_id="lb1")] == 1  # fmt: skip
    # no series carries a state label
    assert not any("state" in dict(labels) for _, labels in got)


def test_lvs_series_use_the_lvs_exporter_names_and_the_checker_results() -> None:
    got = samples(model())
    assert got[key("keepalived_lvs_vip_conn", addr="198.18.0.100:80", proto="6")] == 12
    assert got[key("keepalived_lvs_vip_in_bytes", addr="198.18.0.100:80", proto="6")] == 900
    rs = {"vip": "198.18.0.100:80", "addr": "198.18.1.10:8080", "proto": "6"}
    assert got[key("keepalived_lvs_rs_conn", **rs)] == 5
    assert got[key("keepalived_lvs_rs_out_packets", **rs)] == 0
    who = {"virtual_server": "198.18.0.100:80/TCP", "real_server": "198.18.1.10:8080"}
    assert got[key("hakeeper_lvs_rs_alive", **who)] == 0
    assert got[key("hakeeper_lvs_rs_weight", **who)] == 3
    ck = {**who, "index": "0", "kind": "TCP_CHECK"}
    assert got[key("hakeeper_lvs_checker_up", **ck)] == 0
    assert got[key("hakeeper_lvs_checker_checks_total", **ck)] == 7
    assert got[key("hakeeper_lvs_checker_failures_total", **ck)] == 2
    assert got[key("hakeeper_lvs_checker_last_duration_seconds", **ck)] == 0.25


def test_the_model_is_read_in_parts_and_collect_gives_the_same_families() -> None:
    rt = model()
    for i in range(250):
        cfg = VrrpInstance(f"VI_x{i}", "eth0", 1 + i % 255)
        rt.instances[cfg.name] = InstanceState(cfg, InstanceStats())
    snap = Snapshot()
    parts = sum(1 for _ in ModelCollector(rt).read_parts(snap, chunk=100))
    assert parts == 2  # a pause after each 100 of the 252 instances
    assert len(snap.instances) == 252 and len(snap.virtual_servers) == 1
    names = {f.name for f in ModelCollector(rt).collect()}
    assert {"keepalived_vrrp_state", "keepalived_lvs_rs_conn", "hakeeper_tracker_up"} <= names
