"""The Prometheus endpoint as a monitoring system sees it: scraped over HTTP from another
namespace, parsed with prometheus-client's own parser, compared with the daemon's model."""

from __future__ import annotations

import json
import stat
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import VENV_BIN, Daemon, start_daemon, wait_for
from tests.lab.lab import Lab, Node
from tests.lab.lvsfarm import VIP, Farm, director_conf, real_server, vs_view, wait_alive

pytestmark = pytest.mark.lab

PORT = 9165
DOWN = 2.0  # v3 at 0.1 s adverts: a takeover well within this on a busy CI machine
STATES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "STOP": 98}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(client: Node, host: str, port: int = PORT, path: str = "/metrics") -> str:
    """GET over real TCP from the client's namespace (urllib, no proxy)."""
    url = f"http://{host}:{port}{path}"
    code = (
        "import sys, urllib.request as u\n"
        "o = u.build_opener(u.ProxyHandler({}))\n"
        f"sys.stdout.write(o.open({url!r}, timeout=5).read().decode())\n"
    )
    return client.python(code).stdout


def scrape(client: Node, host: str, port: int = PORT) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(fetch(client, host, port)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, frozenset(labels.items()))]


def refused(client: Node, host: str, port: int) -> bool:
    code = (
        "import socket\n"
        f"try: socket.create_connection(({host!r}, {port}), timeout=2)\n"
        "except ConnectionRefusedError: print('refused')\n"
    )
    return client.python(code).stdout.strip() == "refused"


def metrics_block(*listen: str) -> str:
    lines = "".join(f"        listen {where}\n" for where in listen)
    return f"    metrics {{\n{lines}    }}\n"


def tracked_conf(priority: int, d: Path, listen: str) -> str:
    flag = d / "healthy"
    flag.touch()
    check = d / "chk.sh"
    check.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    check.chmod(stat.S_IRWXU)
    return keepalived_conf(
        f"vrrp_script chk {{\n    script {check}\n    interval 0.2\n    weight -100\n}}\n",
        vrrp_instance(priority=priority, extra="    track_script {\n        chk\n    }\n"),
        router_id=f"r{priority}",
        global_extra="    enable_script_security\n    script_user root\n" + metrics_block(listen),
    )


def vrrp_labels(d: Daemon) -> dict[str, str]:
    inst = d.instance("VI_1")
    return {"iname": "VI_1", "intf": inst["interface"], "vrid": str(inst["virtual_router_id"])}


def assert_matches_model(samples: Samples, d: Daemon) -> None:
    inst = d.instance("VI_1")
    labels = vrrp_labels(d)
    assert value(samples, "keepalived_up") == 1
    state = value(samples, "keepalived_vrrp_state", **labels, ip_address=VIP)
    assert state == STATES[inst["state"]]
    one = {"iname": "VI_1"}
    assert value(samples, "hakeeper_vrrp_effective_priority", **one) == inst["effective_priority"]
    assert value(samples, "hakeeper_vrrp_base_priority", **one) == inst["base_priority"]
    when = value(samples, "hakeeper_vrrp_last_transition_timestamp_seconds", **one)
    assert when == inst["last_transition"]
    for counter in ("become_master", "release_master"):
        assert value(samples, f"keepalived_{counter}_total", **labels) == inst["stats"][counter]
    tracker = inst["trackers"][0]
    up = value(samples, "hakeeper_tracker_up", iname="VI_1", kind="script", name="chk")
    assert up == (tracker["state"] == "GOOD")
    delta = value(
        samples, "hakeeper_tracker_priority_delta", iname="VI_1", kind="script", name="chk"
    )
    assert delta == tracker["contribution"]


def test_vrrp_metrics_follow_the_model_through_a_failover_and_a_rebind(lab: Lab) -> None:
    r1, r2, mon = lab.add_node("r1"), lab.add_node("r2"), lab.add_node("mon")
    d1_dir, d2_dir = (
        Path(tempfile.mkdtemp(prefix="hk-m1-")),
        Path(tempfile.mkdtemp(prefix="hk-m2-")),
    )
    d1 = start_daemon(r1, "hakeeper", tracked_conf(150, d1_dir, r1.ipv4), suffix=".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    d2 = start_daemon(r2, "hakeeper", tracked_conf(100, d2_dir, f"{r2.ipv4}:{PORT}"), ".conf")
    assert wait_for(lambda: d2.instance("VI_1")["state"] == "BACKUP", within=DOWN * 2)
    assert wait_for(lambda: d1.instance("VI_1")["trackers"][0]["state"] == "GOOD", within=3)

    first = scrape(mon, r1.ipv4)
    assert_matches_model(first, d1)
    labels = vrrp_labels(d1)
    assert value(first, "keepalived_vrrp_state", **labels, ip_address=VIP) == 2  # MASTER
    assert value(first, "keepalived_script_status", name="chk") == 1  # GOOD
    assert value(first, "hakeeper_info", version=json.loads(
        d1.state_file.read_text())["version"], router_id="r150") == 1  # fmt: skip
    backup = scrape(mon, r2.ipv4)
    assert_matches_model(backup, d2)
    assert value(backup, "keepalived_vrrp_state", **labels, ip_address=VIP) == 1  # BACKUP
    assert value(backup, "keepalived_advertisements_received_total", **labels) > 0
    # one series per instance whatever its state: no state label
    series = [k for k in first if k[0] == "keepalived_advertisements_sent_total"]
    assert series == [("keepalived_advertisements_sent_total", frozenset(labels.items()))]

    # adverts keep going out: the counter grows between two scrapes, as the model's does
    sent = value(first, "keepalived_advertisements_sent_total", **labels)
    assert wait_for(lambda: d1.instance("VI_1")["stats"]["advert_sent"] > sent + 3, within=2)
    second = scrape(mon, r1.ipv4)
    assert value(second, "keepalived_advertisements_sent_total", **labels) > sent + 3

    # the script fails: r1 drops to 50, r2 takes over; the metrics say so on both nodes
    (d1_dir / "healthy").unlink()
    assert wait_for(lambda: d2.instance("VI_1")["state"] == "MASTER", within=DOWN * 2)
    assert wait_for(lambda: d1.instance("VI_1")["state"] == "BACKUP", within=DOWN)
    after1, after2 = scrape(mon, r1.ipv4), scrape(mon, r2.ipv4)
    assert_matches_model(after1, d1)
    assert_matches_model(after2, d2)
    assert value(after1, "keepalived_script_status", name="chk") == 0  # BAD
    assert value(after1, "hakeeper_vrrp_effective_priority", iname="VI_1") == 50
    assert value(after1, "keepalived_release_master_total", **labels) >= 1
    assert value(after2, "keepalived_become_master_total", **labels) >= 1
    assert value(after2, "keepalived_vrrp_state", **labels, ip_address=VIP) == 2

    # a reload that moves the endpoint rebinds it: the new port answers, the old one is shut
    d1.config.write_text(tracked_conf(150, d1_dir, f"{r1.ipv4}:{PORT + 1}"))
    d1.reload()
    assert wait_for(lambda: refused(mon, r1.ipv4, PORT), within=3), d1.log_text()
    assert value(scrape(mon, r1.ipv4, PORT + 1), "keepalived_up") == 1
    assert "metrics: serving" in d1.log_text()
    # what Prometheus asks for (gzip) is the same text; other paths are 404
    code = (
        "import gzip, urllib.error, urllib.request as u\n"
        "o = u.build_opener(u.ProxyHandler({}))\n"
        f"base = 'http://{r1.ipv4}:{PORT + 1}'\n"
        "r = o.open(u.Request(base + '/metrics', headers={'Accept-Encoding': 'gzip'}), timeout=5)\n"
        "print(r.headers['Content-Encoding'], r.headers['Content-Type'])\n"
        "print(gzip.decompress(r.read()).decode().count('keepalived_vrrp_state{'))\n"
        "try: o.open(base + '/nope', timeout=5)\n"
        "except urllib.error.HTTPError as e: print(e.code)\n"
    )
    encoding, count, missing = mon.python(code).stdout.splitlines()
    assert encoding.startswith("gzip text/plain; version=0.0.4")
    assert count == "1" and missing == "404"


def test_off_by_default_and_a_bad_listen_address_names_file_and_line(lab: Lab) -> None:
    r1, mon = lab.add_node("r1"), lab.add_node("mon")
    d1 = start_daemon(r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150)), ".conf")
    assert wait_for(lambda: VIP in r1.addresses(), within=DOWN * 2), d1.log_text()
    # no metrics block: nothing listens at all (D-Bus and SNMP are off here too)
    listening = r1.run(["ss", "-Htln"]).stdout.strip()
    assert listening == "", listening
    assert refused(mon, r1.ipv4, PORT)
    # a reload that adds the block starts the endpoint; one that drops it stops it
    d1.config.write_text(
        keepalived_conf(vrrp_instance(priority=150), global_extra=metrics_block(r1.ipv4))
    )
    d1.reload()
    assert wait_for(lambda: not refused(mon, r1.ipv4, PORT), within=3), d1.log_text()
    assert value(scrape(mon, r1.ipv4), "hakeeper_reloads_total") == 1
    d1.config.write_text(keepalived_conf(vrrp_instance(priority=150)))
    d1.reload()
    assert wait_for(lambda: refused(mon, r1.ipv4, PORT), within=3), d1.log_text()

    conf = Path(tempfile.mkdtemp(prefix="hk-mbad-")) / "bad.conf"
    conf.write_text(
        keepalived_conf(vrrp_instance(), global_extra=metrics_block("198.18.0.300:9165"))
    )
    result = subprocess.run(
        [str(VENV_BIN / "hakeeper"), "-t", "-f", str(conf)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"{conf}:5:" in result.stdout + result.stderr, result
    assert "198.18.0.300" in result.stdout + result.stderr


def test_lvs_metrics_match_the_model_and_the_checkers(lab: Lab) -> None:
    farm = Farm(lab)
    r1, r2, _r3 = farm.servers
    body = f"""
virtual_server {VIP} 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    {"".join(real_server(n, farm.tmp) for n in farm.servers)}
}}
"""
    conf = director_conf(body).replace(
        "    lvs_counters_interval 1\n",
        "    lvs_counters_interval 1\n" + metrics_block(f"{farm.director.ipv4}:{PORT}"),
    )
    hk = start_daemon(farm.director, "hakeeper", conf, suffix=".conf")
    svc = f"{VIP}:80/TCP"
    assert farm.director.wait_vip(VIP, within=5), hk.log_text()
    for node in farm.servers:
        wait_alive(hk, svc, f"{node.ipv4}:80", True, within=5)
    assert Counter(farm.requests(12)) == {"rs1": 4, "rs2": 4, "rs3": 4}
    assert wait_for(lambda: vs_view(hk, svc)["counters"].get("conns") == 12, within=4, step=0.3)

    before = vs_view(hk, svc)
    samples = scrape(farm.client, farm.director.ipv4)
    vs = vs_view(hk, svc)
    addr = {"addr": f"{VIP}:80", "proto": "6"}
    assert value(samples, "keepalived_lvs_vip_conn", **addr) == vs["counters"]["conns"] == 12
    for rs in vs["real_servers"]:
        labels = {"vip": f"{VIP}:80", "addr": rs["name"], "proto": "6"}
        assert value(samples, "keepalived_lvs_rs_conn", **labels) == rs["counters"]["conns"] == 4
        # nftables counts connections only (README): the packet counters are there, at 0
        assert value(samples, "keepalived_lvs_rs_in_packets", **labels) == 0
        who = {"virtual_server": svc, "real_server": rs["name"]}
        assert value(samples, "hakeeper_lvs_rs_alive", **who) == 1
        check = rs["checkers"][0]
        ck = {**who, "index": "0", "kind": check["kind"]}
        assert value(samples, "hakeeper_lvs_checker_up", **ck) == 1
        # checks run on: the scrape's count lies between the model's before and after it
        earlier = next(r for r in before["real_servers"] if r["name"] == rs["name"])
        runs = value(samples, "hakeeper_lvs_checker_checks_total", **ck)
        assert earlier["checkers"][0]["checks"] <= runs <= check["checks"]
    assert value(samples, "hakeeper_lvs_vs_quorum_up", virtual_server=svc) == 1

    # a real server dies: its checker and its alive flag go to 0, as in the model
    farm.stop(r2)
    wait_alive(hk, svc, f"{r2.ipv4}:80", False, within=5)
    samples = scrape(farm.client, farm.director.ipv4)
    who = {"virtual_server": svc, "real_server": f"{r2.ipv4}:80"}
    model = vs_view(hk, svc)
    down = next(r for r in model["real_servers"] if r["name"] == who["real_server"])
    assert value(samples, "hakeeper_lvs_rs_alive", **who) == down["alive"] == 0
    assert value(samples, "hakeeper_lvs_rs_in_pool", **who) == down["in_pool"] == 0
    ck = {**who, "index": "0", "kind": "HTTP_GET"}
    assert value(samples, "hakeeper_lvs_checker_up", **ck) == down["checkers"][0]["up"] == 0
    fails = value(samples, "hakeeper_lvs_checker_failures_total", **ck)
    assert 1 <= fails <= down["checkers"][0]["failures"]
    alive = {"virtual_server": svc, "real_server": f"{r1.ipv4}:80"}
    assert value(samples, "hakeeper_lvs_rs_alive", **alive) == 1
