"""Reload safety (issue 7): a hundred reloads in a row on the master, under client traffic.

Two directors (r1 master, r2 backup) hold a VIP by VRRPv3 at 0.1 s with an nftables
virtual server on it; three real HTTP servers route back through a second VIP on their own
segment; a client requests the VIP over and over during the whole test. r1 is then reloaded
100 times, by SIGHUP and by D-Bus Reload in turn, and every reload changes something beside
the main instance and service (a second instance comes and goes, another service's weights
and real servers change, the main instance's notify script moves). A user must see none of
it: the VIP never leaves r1 (netlink events), VI_1 makes no transition (D-Bus StateChanged,
its notify script, r2 never MASTER), every request is answered, the unchanged objects stay
(no InterfacesRemoved for them, the same nft rule handles, one SNMP row per instance).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hakeeper.dbus.names import instance_path, real_server_path, virtual_server_path
from hakeeper.snmp.mib import INSTANCE_TABLE, NAME_MAX, name_index
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import VENV_BIN, start_daemon, wait_for
from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import PYTHON, Lab, Node
from tests.lab.lvsfarm import real_server
from tests.lab.test_dbus import BUS, MANAGER, OM, ROOT, Router, start
from tests.lab.test_lvs import chains

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
VIP2 = "198.18.0.101"  # the second instance's, which reloads add and remove
GATEWAY = "198.18.1.254"  # the real servers' way back, on the directors' second segment
RELOADS = 100
SNMP_PORT = 1161
SVC80 = f"{VIP}:80/TCP"
SVC81 = f"{VIP}:81/TCP"


@dataclass(frozen=True)
class Variant:
    """What the reloads vary: nothing of VI_1's identity nor of the port-80 service."""

    vi2: bool = False
    weight: int = 1  # the second real server's weight on port 81
    rs3_on_81: bool = True
    notify: str = "a"  # which of two notify scripts VI_1 runs

    def next(self, i: int) -> Variant:
        step = i % 4
        if step == 0:
            return replace(self, vi2=not self.vi2)
        if step == 1:
            return replace(self, weight=self.weight % 5 + 1)
        if step == 2:
            return replace(self, notify="b" if self.notify == "a" else "a")
        return replace(self, rs3_on_81=not self.rs3_on_81)


def director_conf(name: str, priority: int, servers: list[Node], d: Path, v: Variant) -> str:
    notify = str(d / f"notify-{v.notify}.sh")
    vi1 = vrrp_instance(
        priority=priority,
        vips=(f"{VIP}/24", f"{GATEWAY}/24 dev eth1"),
        extra=f"    notify {notify}",
    )
    vi2 = vrrp_instance("VI_2", vrid=52, priority=priority, vips=(f"{VIP2}/24",)) if v.vi2 else ""
    r1, r2, r3 = servers
    port81 = [real_server(r1, d, port=81), real_server(r2, d, weight=v.weight, port=81)]
    if v.rs3_on_81:
        port81.append(real_server(r3, d, port=81))
    return f"""
global_defs {{
    router_id {name}
    enable_script_security
    script_user root
    snmp_agent {{
        listen 127.0.0.1:{SNMP_PORT}
        community public ro
    }}
}}
{vi2}{vi1}
virtual_server {VIP} 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    {"".join(real_server(n, d) for n in servers)}
}}
virtual_server {VIP} 81 {{
    delay_loop 1
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    {"".join(port81)}
}}
"""


# -- the lab ---------------------------------------------------------------------------------


def http_servers(lab: Lab, n: int) -> list[Node]:
    """Real servers on the `rs` segment answering on ports 80 and 81, routing via GATEWAY."""
    servers = [lab.add_node(f"rs{i}", segments=("rs",)) for i in range(1, n + 1)]
    for node in servers:
        node.run(["ip", "route", "add", "default", "via", GATEWAY])
        for port in (80, 81):
            proc = node.popen(
                [PYTHON, "-m", "tests.lab.servers", "http", node.ipv4, str(port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return servers


CLIENT = """
import http.client, json, os, sys, time
stop, limit, until = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
ok, errors, first, last = 0, [], None, None
while not os.path.exists(stop) and ok + len(errors) < limit and time.monotonic() < until:
    now = time.time()
    conn = http.client.HTTPConnection(sys.argv[4], 80, timeout=2)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise OSError(f"status {resp.status}")
        ok += 1
        first, last = first or now, now
    except Exception as e:
        errors.append(f"{now:.3f} {e!r}")
    finally:
        conn.close()
    time.sleep(0.01)
print(json.dumps({"ok": ok, "errors": errors, "first": first, "last": last}))
"""


def address_monitor(node: Node, path: Path) -> subprocess.Popen[Any]:
    """`ip monitor address` in `node`: every address the kernel adds or deletes, as it happens."""
    out = open(path, "w")  # noqa: SIM115 - the child owns it
    try:
        proc = node.popen(["ip", "-o", "monitor", "address"], stdout=out)
    finally:
        out.close()
    time.sleep(0.2)  # listening before anything is asked of the daemons
    return proc


def deleted(path: Path, addr: str) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if "Deleted" in ln and f" {addr}/" in ln]


def added(path: Path, addr: str) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if "Deleted" not in ln and f" {addr}/" in ln]


@dataclass(frozen=True)
class Sig:
    member: str
    path: str  # the signal's path, or for InterfacesAdded/Removed the object's
    strings: tuple[str, ...]


def bus_monitor(lab: Lab, bus: PrivateBus, path: Path, *match: str) -> subprocess.Popen[bytes]:
    """dbus-monitor writing to a file (a pipe nobody reads during the test would fill up and
    the bus would drop what it could not deliver); returned once it listens, and on the
    lab's list, so a failed test ends it too."""
    out = open(path, "w")  # noqa: SIM115 - the child owns it
    try:
        argv = ["dbus-monitor", "--address", bus.address, *match]
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()
    lab.processes.append(proc)
    assert wait_for(lambda: "member=NameLost" in path.read_text(), within=5), path.read_text()
    return proc


def bus_signals(proc: subprocess.Popen[bytes], path: Path) -> list[Sig]:
    """Stop dbus-monitor (by PID) and parse what it printed."""
    proc.terminate()
    proc.wait(5)
    text = path.read_text()
    out: list[Sig] = []
    head: re.Match[str] | None = None
    body: list[str] = []
    for line in [*text.splitlines(), "end"]:
        if line[:1].strip():
            if head is not None:
                paths = [b[1:] for b in body if b[0] == "o"]
                path = paths[0] if head[2] in ("InterfacesAdded", "InterfacesRemoved") else head[1]
                out.append(Sig(head[2], path, tuple(b[1:] for b in body if b[0] == "s")))
            head = re.match(r"signal .* path=(\S+); interface=\S+; member=(\S+)", line)
            body = []
        elif (s := re.search(r'^\s*string "(.*)"$', line)) is not None:
            body.append("s" + s[1])
        elif (o := re.search(r'^\s*object path "(.*)"$', line)) is not None:
            body.append("o" + o[1])
    return out


def snmp_instances(node: Node) -> list[tuple[int, ...]]:
    """The row indexes of hakeeperInstanceTable, as the embedded agent walks them."""
    col = INSTANCE_TABLE.column_oid("hakeeperInstanceState")
    prefix = "." + ".".join(map(str, col)) + "."
    r = node.run(
        ["snmpwalk", "-v2c", "-c", "public", "-On", "-t", "2", "-r", "1",
         f"127.0.0.1:{SNMP_PORT}", ".".join(map(str, col))],
        env={**os.environ, "MIBS": ""},
    )  # fmt: skip
    rows = [ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith(prefix)]
    return [tuple(int(x) for x in oid[len(prefix) :].split(".")) for oid in rows]


def names_index(*names: str) -> list[tuple[int, ...]]:
    return sorted(tuple(name_index(n, NAME_MAX)) for n in names)


# -- the story -------------------------------------------------------------------------------


def test_hundred_reloads_under_traffic_move_nothing_a_user_sees(
    lab: Lab, bus: PrivateBus, tmp_path: Path
) -> None:
    lab.add_segment("rs")
    client = lab.add_node("client")
    n1, n2 = (lab.add_node(n, segments=("lan", "rs")) for n in ("r1", "r2"))
    for n in (n1, n2):
        n.sysctl("net.ipv4.ip_forward", 1)
    servers = http_servers(lab, 3)
    d = tmp_path
    d.chmod(0o755)
    notify_log = d / "notify.log"
    for which in ("a", "b"):
        path = d / f"notify-{which}.sh"
        path.write_text(f'#!/bin/sh\necho "{which} $*" >> {notify_log}\n')
        path.chmod(0o755)
    watch_r1, watch_r2 = d / "r1-addr.log", d / "r2-addr.log"
    address_monitor(n1, watch_r1)
    address_monitor(n2, watch_r2)

    variant = Variant()
    r1 = start(n1, bus, director_conf("r1", 150, servers, d, variant))
    assert n1.wait_vip(VIP, within=5) and n1.wait_vip(GATEWAY, "eth1"), r1.daemon.log_text()
    with PrivateBus() as bus2:
        r2 = start(n2, bus2, director_conf("r2", 100, servers, d, variant))
        assert wait_for(lambda: r2.prop("MasterAddress") == n1.ipv4, within=5)
        assert wait_for(lambda: len(r1.call(ROOT, MANAGER, "ListRealServers")) == 6, within=8)
        assert wait_for(
            lambda: all(row[2] for row in r1.call(ROOT, MANAGER, "ListRealServers")), within=8
        ), r1.daemon.log_text()
        story(lab, client, r1, r2, servers, d, variant, (watch_r1, watch_r2), notify_log)


def story(
    lab: Lab,
    client: Node,
    r1: Router,
    r2: Router,
    servers: list[Node],
    d: Path,
    variant: Variant,
    addr_logs: tuple[Path, Path],
    notify_log: Path,
) -> None:
    watch_r1, watch_r2 = addr_logs
    stop = d / "stop-client"
    loop = client.popen(
        [PYTHON, "-c", CLIENT, str(stop), "20000", "90", VIP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # the loop is answered before the first reload
    notified = notify_log.read_text()
    assert "a INSTANCE VI_1 MASTER 150" in notified.splitlines(), notified
    kept_paths = {
        instance_path("VI_1"),
        virtual_server_path(SVC80),
        *(real_server_path(SVC80, f"{n.ipv4}:80") for n in servers),
    }
    objects_before = set(managed_paths(r1))
    assert kept_paths <= objects_before, objects_before
    nft_before = {k: v for k, v in chains(r1.node).items() if "/81" not in k}
    assert any(f"/{VIP}/80" in k for k in nft_before), nft_before
    mon_log = d / "dbus-monitor.log"
    mon = bus_monitor(
        lab,
        r1.bus,
        mon_log,
        f"type='signal',interface='{OM}'",
        "type='signal',member='StateChanged'",
        "type='signal',member='Reloaded'",
    )
    t0 = time.time()
    planned: list[list[str]] = []
    snmp_seen: list[list[tuple[int, ...]]] = []
    for i in range(RELOADS):
        variant = variant.next(i)
        r1.daemon.config.write_text(director_conf("r1", 150, servers, d, variant))
        if i % 2 == 0:
            r1.daemon.reload()  # SIGHUP
            assert wait_for(
                lambda i=i: r1.prop("Reloads", ROOT, MANAGER) == i + 1, within=5, step=0.005
            ), r1.daemon.log_text()[-2000:]
        else:
            planned.append(r1.call(ROOT, MANAGER, "Reload"))
        if i % 25 == 24:  # now and then: one row per instance, whatever came and went
            want = names_index("VI_1", *(("VI_2",) if variant.vi2 else ()))
            snmp_seen.append(snmp_instances(r1.node))
            assert snmp_seen[-1] == want, (i, snmp_seen[-1], want)
    t1 = time.time()
    time.sleep(0.5)  # the last reload's effects and a few more requests
    stop.touch()
    out, _ = loop.communicate(timeout=10)
    traffic = json.loads(out)
    sigs = [s for s in bus_signals(mon, mon_log) if s.path.startswith(ROOT)]

    # every reload had something to do, and none of it touched VI_1 or the port-80 service
    reloaded = [s.strings for s in sigs if s.member == "Reloaded"]
    assert len(reloaded) == RELOADS, len(reloaded)
    assert [list(r) for r in reloaded[1::2]] == planned
    for changes in reloaded:
        assert changes, "a reload with an empty diff"
        bad = [c for c in changes if "restart" in c or SVC80 in c or c.startswith("global")]
        assert not bad, changes
    assert r1.prop("Reloads", ROOT, MANAGER) == RELOADS

    # no lost request: the loop ran through every reload and each request was answered
    assert traffic["errors"] == [], traffic["errors"][:10]
    assert traffic["first"] < t0 and traffic["last"] > t1, (traffic, t0, t1)
    assert traffic["ok"] > 50 * (t1 - t0), traffic  # ~10 ms apart, minus the request itself

    # no VIP flap: never deleted on r1, never added on r2, VI_1 never moved
    for vip in (VIP, GATEWAY):
        assert deleted(watch_r1, vip) == [], deleted(watch_r1, vip)
        assert added(watch_r2, vip) == [], added(watch_r2, vip)
    assert [s for s in sigs if s.member == "StateChanged" and "VI_1" in s.path] == []
    assert notify_log.read_text() == notified  # VI_1's notify script ran for nothing new
    assert r1.prop("State", instance_path("VI_1"), "org.hakeeper.Hakeeper1.Instance") == "MASTER"
    assert r2.prop("State") == "BACKUP"
    assert "-> MASTER" not in r2.daemon.log_text()
    assert len(re.findall(r"VI_1: \S+ -> ", r1.daemon.log_text())) == 2  # INIT->BACKUP->MASTER

    # no duplicate object: only what the reloads add and remove comes and goes, in turn
    moving = {instance_path("VI_2"), real_server_path(SVC81, f"{servers[2].ipv4}:81")}
    came_went = [s for s in sigs if s.member in ("InterfacesAdded", "InterfacesRemoved")]
    assert {s.path for s in came_went} == moving, {s.path for s in came_went}
    for path in moving:
        seq = [s.member for s in came_went if s.path == path]
        alternating = ["InterfacesAdded", "InterfacesRemoved"] * (len(seq) // 2 + 1)
        first = 0 if path == instance_path("VI_2") else 1  # rs3 is there at the start
        assert seq == alternating[first : first + len(seq)], (path, seq)
        assert len(seq) == RELOADS // 4
    rows = r1.call(ROOT, MANAGER, "ListInstances")
    assert [row[0] for row in rows] == ["VI_2", "VI_1"], rows  # each once, in the file's order
    assert set(managed_paths(r1)) == objects_before ^ (
        {instance_path("VI_2")} if variant.vi2 else set()
    ) ^ (set() if variant.rs3_on_81 else {real_server_path(SVC81, f"{servers[2].ipv4}:81")})
    assert len(snmp_seen) == RELOADS // 25

    # the unchanged service's nftables objects are the very same (same handles)
    nft_after = {k: v for k, v in chains(r1.node).items() if "/81" not in k}
    assert nft_after == nft_before
    assert r1.daemon.alive() and r2.daemon.alive()


def managed_paths(r: Router) -> list[str]:
    r_ = r.bus.busctl("--json=short", "call", BUS, ROOT, OM, "GetManagedObjects")
    return list(json.loads(r_.stdout)["data"][0])


def test_config_test_prints_the_reload_diff_of_the_running_daemon(
    lab: Lab, bus: PrivateBus, tmp_path: Path
) -> None:
    """`hakeeper -t` on the file a hakeeper runs prints what `hakeeperctl reload --check`
    prints, applies nothing; on another file, or with no daemon, it says so."""
    node = lab.add_node("r1")
    one = vrrp_instance(priority=150)
    r1 = start(node, bus, f"global_defs {{\n router_id r1\n}}\n{one}")
    assert node.wait_vip(VIP, within=5), r1.daemon.log_text()
    conf = r1.daemon.config
    conf.write_text(f"global_defs {{\n router_id r1\n}}\n{one.replace('150', '120')}" +
                    vrrp_instance("VI_2", vrid=52, vips=(f"{VIP2}/24",)))  # fmt: skip

    def config_test(path: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(VENV_BIN / "hakeeper"), "-t", "-f", str(path), "--dbus-address", bus.address]
        return node.run(argv, check=False)

    r = config_test(conf)
    assert r.returncode == 0, r.stderr
    ok, header, *lines = r.stdout.splitlines()
    assert ok.startswith(f"{conf}: OK (2 vrrp_instance(s)"), ok
    assert header == f"running hakeeper (the bus at {bus.address}): a reload of {conf} would apply:"
    assert lines == [
        "vrrp_instance VI_1: priority 150 -> 120 (live, no state change)",
        "vrrp_instance VI_2: added",
    ]
    ctl = node.run([str(VENV_BIN / "hakeeperctl"), "--bus", bus.address, "reload", "--check"])
    assert ctl.stdout.splitlines() == lines
    time.sleep(0.3)  # nothing was applied
    assert r1.prop("Reloads", ROOT, MANAGER) == 0 and VIP2 not in node.addresses()
    assert r1.prop("ConfigPriority") == 150

    # once reloaded there is nothing left to apply
    r1.call(ROOT, MANAGER, "Reload")
    assert config_test(conf).stdout.splitlines()[2:] == ["no changes"]

    # another file than the daemon's: checked, not compared
    other = tmp_path / "other.conf"
    other.write_text(conf.read_text())
    r = config_test(other)
    assert r.returncode == 0
    assert r.stdout.splitlines()[1:] == [
        f"the running hakeeper reads {conf}, not {other}: nothing to compare with"
    ]

    # no daemon: the file is still checked
    assert r1.daemon.stop() == 0
    r = config_test(conf)
    assert r.returncode == 0
    assert r.stdout.splitlines()[1] == (
        f"nothing to compare with: hakeeper is not running "
        f"(nobody owns {BUS} on the bus at {bus.address})"
    )


def test_a_backup_held_busy_reads_the_queued_adverts_before_judging_its_master_down(
    lab: Lab, tmp_path: Path
) -> None:
    """A backup whose loop is held (a reload of a big config, a slow host: here SIGSTOP for
    0.8 s, over twice the master down interval) finds hundreds of adverts queued when it runs
    again, and every down timer already due. It must read them first: no instance may go
    MASTER while the master is alive. (Reading only one burst before the timers flapped
    every instance whose advert was further back in the queue.)"""
    n = 100
    r1, r2 = lab.add_nodes("r1", "r2")

    def conf(priority: int) -> str:
        insts = [
            vrrp_instance(f"VI_{i}", vrid=i, priority=priority, vips=(f"198.19.0.{i}/32",))
            for i in range(1, n + 1)
        ]
        return keepalived_conf(*insts)

    d1 = start_daemon(r1, "hakeeper", conf(150), ".conf")
    assert wait_for(lambda: len(vips_19(r1)) == n, within=10), d1.log_text()[-2000:]
    d2 = start_daemon(r2, "hakeeper", conf(100), ".conf")
    assert wait_for(lambda: d2.log_text().count("INIT -> BACKUP") == n, within=10)
    time.sleep(1.0)  # settled: r2 has heard every instance's master
    assert vips_19(r2) == set()
    watch = tmp_path / "r2-addr.log"
    address_monitor(r2, watch)
    before = d2.log_text().count("-> MASTER")
    for _ in range(3):
        d2.signal(signal.SIGSTOP)
        time.sleep(0.8)
        d2.signal(signal.SIGCONT)
        time.sleep(1.0)
    assert d2.log_text().count("-> MASTER") == before, d2.log_text()[-3000:]
    assert [ln for ln in watch.read_text().splitlines() if "198.19." in ln] == []
    assert len(vips_19(r1)) == n and d1.alive() and d2.alive()


def vips_19(node: Node) -> set[str]:
    return {a for a in node.addresses() if a.startswith("198.19.")}


def test_a_renamed_instance_keeps_its_state_and_vip(
    lab: Lab, bus: PrivateBus, tmp_path: Path
) -> None:
    """keepalived matches an instance across reloads by interface, VRID and family: renaming
    VI_1 to web on the master keeps the VIP where it is and the state it has; only the
    name (and so the D-Bus object) changes."""
    n1, n2 = lab.add_nodes("r1", "r2")
    watch = tmp_path / "r1-addr.log"
    address_monitor(n1, watch)
    r1 = start(n1, bus, keepalived_conf(vrrp_instance(priority=150)))
    assert n1.wait_vip(VIP, within=5), r1.daemon.log_text()
    d2 = start_daemon(n2, "hakeeper", keepalived_conf(vrrp_instance(priority=100)), ".conf")
    assert wait_for(lambda: d2.instance("VI_1")["state"] == "BACKUP", within=5)
    time.sleep(0.5)
    renamed_conf = vrrp_instance("web", priority=120)  # and a live change with it
    r1.daemon.config.write_text(keepalived_conf(renamed_conf))
    assert r1.call(ROOT, MANAGER, "Reload") == [
        "vrrp_instance VI_1: renamed to web (keeps its state)",
        "vrrp_instance web: priority 150 -> 120 (live, no state change)",
    ]
    time.sleep(1.0)
    assert deleted(watch, VIP) == []
    assert [row[0] for row in r1.call(ROOT, MANAGER, "ListInstances")] == ["web"]
    web = instance_path("web")
    assert r1.prop("State", web, "org.hakeeper.Hakeeper1.Instance") == "MASTER"
    assert r1.prop("ConfigPriority", web, "org.hakeeper.Hakeeper1.Instance") == 120
    assert instance_path("VI_1") not in managed_paths(r1)
    assert not re.search(r"web: \S+ -> ", r1.daemon.log_text()), r1.daemon.log_text()
    assert "-> MASTER" not in d2.log_text()
