"""hakeeper's own D-Bus API (org.hakeeper.Hakeeper1) as an operator drives it.

Real clients (busctl, dbus-send, dbus-monitor, setpriv for a non-root caller) talk to real
daemons in namespaces, each router on its own private bus with the project's policy, as each
machine has its own system bus. What the tests check is what the operator would see: the
VIPs in the kernel, the nftables table for real servers, and the answers on the bus.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.dbusbus import NOBODY, PrivateBus
from tests.lab.lab import Lab, Node
from tests.lab.lvsfarm import VIP, Farm, director_conf, kernel_table, real_server

pytestmark = pytest.mark.lab

DOWN = 2.0  # v3 at 0.1 s: master down is 0.36 s; room for a busy CI
VIP2 = "198.18.0.101"
VIP3 = "198.18.0.102"

BUS = "org.hakeeper.Hakeeper1"
ROOT = "/org/hakeeper/Hakeeper1"
MANAGER = "org.hakeeper.Hakeeper1.Manager"
INSTANCE = "org.hakeeper.Hakeeper1.Instance"
GROUP = "org.hakeeper.Hakeeper1.SyncGroup"
RS = "org.hakeeper.Hakeeper1.RealServer"
OM = "org.freedesktop.DBus.ObjectManager"
PROPS = "org.freedesktop.DBus.Properties"
ERR = "org.hakeeper.Hakeeper1.Error."
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
VI_1 = f"{ROOT}/instance/VI_5f1"  # the contract's escaping: `_` is not kept as is

# a bus that lets anyone call anything on hakeeper: only the daemon's own uid check is left
LOOSE_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.hakeeper.Hakeeper1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.hakeeper.Hakeeper1"/>
  </policy>
</busconfig>
"""


# -- the operator's tools ------------------------------------------------------------------


@dataclass
class Router:
    """A lab node running hakeeper, and the bus its operator talks to it on."""

    node: Node
    daemon: Daemon
    bus: PrivateBus

    def prop(
        self, name: str, path: str = VI_1, iface: str = INSTANCE, uid: int | None = None
    ) -> Any:
        r = self.bus.busctl("--json=short", "get-property", BUS, path, iface, name, uid=uid)
        return json.loads(r.stdout)["data"]

    def call(self, path: str, iface: str, member: str, *args: str, uid: int | None = None) -> Any:
        """busctl call; the reply's values (None when the method returns nothing)."""
        r = self.bus.busctl("--json=short", "call", BUS, path, iface, member, *args, uid=uid)
        if not r.stdout.strip():
            return None
        data = json.loads(r.stdout)["data"]
        return data[0] if len(data) == 1 else data

    def busctl_fails(self, path: str, iface: str, member: str, *args: str) -> str:
        """What busctl shows for a refused call: it exits non-zero, the message on stderr."""
        r = self.bus.busctl("call", BUS, path, iface, member, *args, check=False)
        assert r.returncode != 0, r.stdout
        return r.stderr.strip()

    def refusal(
        self, path: str, method: str, *args: str, uid: int | None = None
    ) -> tuple[str, str]:
        """(error name, message) of a refused call, as dbus-send prints them (busctl shows only
        the message). `method` is interface.Member, args in dbus-send's `byte:7` notation."""
        argv = ["dbus-send", f"--bus={self.bus.address}", "--print-reply", f"--dest={BUS}"]
        argv += [path, method, *args]
        if uid is not None:
            argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert r.returncode != 0, f"{method} was accepted: {r.stdout}"
        m = re.match(r"Error (\S+): (.*)", r.stderr.strip(), re.S)
        assert m is not None, r.stderr
        return m.group(1), m.group(2)

    def managed_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """GetManagedObjects, each property reduced to its value."""
        r = self.bus.busctl("--json=short", "call", BUS, ROOT, OM, "GetManagedObjects")
        objects = json.loads(r.stdout)["data"][0]
        return {
            path: {i: {p: v["data"] for p, v in props.items()} for i, props in ifaces.items()}
            for path, ifaces in objects.items()
        }

    def counters(self) -> dict[str, int]:
        return dict(self.prop("Counters", ROOT, MANAGER))

    def on_bus(self) -> bool:
        """The daemon owns its name (it connects once its config is applied)."""
        r = self.bus.busctl(
            "--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus", "NameHasOwner", "s", BUS,
        )  # fmt: skip
        return json.loads(r.stdout)["data"] == [True]

    def holds(self, vip: str = VIP) -> bool:
        return vip in self.node.addresses("eth0")


def start(node: Node, bus: PrivateBus, conf: str) -> Router:
    """hakeeper on `node`, serving its API on `bus`; returns once it is on the bus."""
    daemon = start_daemon(node, "hakeeper", conf, suffix=".conf", bus=bus.address)
    router = Router(node, daemon, bus)
    assert wait_for(router.on_bus, within=10, step=0.05), daemon.log_text()
    return router


def two_routers(lab: Lab, bus1: PrivateBus, bus2: PrivateBus, *confs: str) -> list[Router]:
    """r1 and r2, each on its own bus; waits until r2 has heard r1 (master of VI_1)."""
    n1, n2 = lab.add_nodes("r1", "r2")
    r1, r2 = start(n1, bus1, confs[0]), start(n2, bus2, confs[1])
    assert r1.node.wait_vip(VIP, within=DOWN * 2), r1.daemon.log_text()
    assert wait_for(lambda: r2.prop("MasterAddress") == r1.node.ipv4, within=DOWN)
    return [r1, r2]


def pair_conf(priority: int, *more: str) -> str:
    return keepalived_conf(vrrp_instance(priority=priority), *more)


@dataclass(frozen=True)
class BusSignal:
    path: str
    interface: str
    member: str
    strings: tuple[str, ...]  # every string in the body, in order


def watch(bus: PrivateBus, *match: str) -> subprocess.Popen[str]:
    """dbus-monitor, returned once it listens (its own NameLost: it became a monitor)."""
    proc = bus.monitor(*match)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "member=NameLost" in line:
            return proc
    raise AssertionError(f"dbus-monitor did not start: exit {proc.wait(5)}")


def signals(proc: subprocess.Popen[str]) -> list[BusSignal]:
    """Stop the monitor (by PID) and parse the signals it printed."""
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.stdout is not None
    text = proc.stdout.read()  # through the same buffer watch() read from
    proc.wait(5)
    out: list[BusSignal] = []
    head: re.Match[str] | None = None
    strings: list[str] = []
    for line in [*text.splitlines(), "end"]:
        if line[:1].strip():  # a new message starts
            if head is not None:
                out.append(BusSignal(head[1], head[2], head[3], tuple(strings)))
            head = re.match(r"signal .* path=(\S+); interface=(\S+); member=(\S+)", line)
            strings = []
        elif (s := re.search(r'string "(.*)"$', line)) is not None:
            strings.append(s[1])
    return out


def state_changes(sigs: list[BusSignal], path: str) -> list[tuple[str, ...]]:
    return [s.strings for s in sigs if s.path == path and s.member == "StateChanged"]


@pytest.fixture
def bus2() -> Iterator[PrivateBus]:
    """A second router's own bus."""
    with PrivateBus() as the_bus:
        yield the_bus


# -- the stories ---------------------------------------------------------------------------


def test_busctl_shows_each_router_what_its_kernel_holds(bus, bus2, lab):
    # two instances, one mastered by each router; the second's name needs escaping
    edge = "2nd.edge"

    def conf(p1: int, p2: int) -> str:
        return pair_conf(p1, vrrp_instance(edge, vrid=52, priority=p2, vips=[f"{VIP2}/24"]))

    r1, r2 = two_routers(lab, bus, bus2, conf(150, 100), conf(100, 150))
    assert r2.node.wait_vip(VIP2, within=DOWN * 2)
    edge_path = f"{ROOT}/instance/_32nd_2eedge"  # a leading digit and `.` escaped
    assert wait_for(lambda: r1.prop("MasterAddress", edge_path) == r2.node.ipv4, within=DOWN)

    tree = r1.bus.busctl("tree", "--list", BUS).stdout.split()
    assert {ROOT, f"{ROOT}/instance", VI_1, edge_path} <= set(tree), tree

    rows = {}
    for line in r1.bus.busctl("introspect", BUS, VI_1).stdout.splitlines()[1:]:
        name, kind, sig, *value, flags = line.split()
        rows[name] = (kind, sig, " ".join(value), flags)
    assert rows[INSTANCE][0] == "interface"
    assert rows[".State"] == ("property", "s", '"MASTER"', "emits-change")
    assert rows[".VirtualAddresses"] == ("property", "as", f'1 "{VIP}/24"', "emits-change")
    assert rows[".Counters"][0:2] == ("property", "a{st}")
    assert rows[".Counters"][3] != "emits-change"  # changes with every advert: no signal
    assert rows[".SetPriority"][:2] == ("method", "y")
    assert rows[".Failover"][0] == "method"
    assert rows[".StateChanged"][:2] == ("signal", "sss")

    # get-property: the model, several at once
    r = r2.bus.busctl(
        "--json=short", "get-property", BUS, VI_1, INSTANCE,
        "State", "EffectivePriority", "VirtualAddresses", "MasterAddress",
    )  # fmt: skip
    values = [json.loads(line)["data"] for line in r.stdout.splitlines()]
    assert values == ["BACKUP", 100, [f"{VIP}/24"], r1.node.ipv4]

    # one GetManagedObjects per router: every instance's state is what its kernel shows
    for router in (r1, r2):
        objects = router.managed_objects()
        assert ROOT not in objects  # the ObjectManager lists the objects below it
        for path, vip, master in ((VI_1, VIP, r1), (edge_path, VIP2, r2)):
            inst = objects[path][INSTANCE]
            assert inst["State"] == ("MASTER" if router.holds(vip) else "BACKUP"), (path, inst)
            assert (router is master) == router.holds(vip)
            assert inst["MasterAddress"] == master.node.ipv4
            assert inst["VirtualAddresses"] == [f"{vip}/24"]
            assert inst["EffectivePriority"] == (150 if router is master else 100)
        assert objects[edge_path][INSTANCE]["Name"] == edge

    # what is not there, and what is not writable
    name, _ = r1.refusal(
        f"{ROOT}/instance/VI_5f9", f"{PROPS}.Get", f"string:{INSTANCE}", "string:State"
    )
    assert name == "org.freedesktop.DBus.Error.UnknownObject"
    r = r1.bus.busctl("set-property", BUS, VI_1, INSTANCE, "State", "s", "BACKUP", check=False)
    assert r.returncode != 0 and "read-only" in r.stderr, r
    assert r1.holds() and r1.prop("State") == "MASTER"


def test_failover_hands_over_at_once_and_reset_priority_takes_back(bus, bus2, lab):
    r1, r2 = two_routers(lab, bus, bus2, pair_conf(150), pair_conf(100))
    mon = watch(r1.bus, f"type='signal',path='{VI_1}'")
    mon2 = watch(r2.bus, f"type='signal',path='{VI_1}',member='StateChanged'")

    t0 = time.monotonic()
    assert r1.call(VI_1, INSTANCE, "Failover") is None
    assert r2.node.wait_vip(VIP, within=DOWN)
    took = time.monotonic() - t0
    # a priority 0 advert: r2 waits only its skew time (0.06 s), not master down (0.36 s)
    assert took < 0.3, took
    assert r2.prop("LastReason") == f"priority 0 advert from {r1.node.ipv4}"
    assert r1.node.wait_no_vip(VIP, within=DOWN)

    # r1 (priority 150, preempt on) hears r2's 100 and yet does not take the VIP back
    time.sleep(2.0)
    assert r2.holds() and not r1.holds()
    assert r1.prop("State") == "BACKUP"
    assert r1.prop("Yielding") is True
    assert r1.prop("MasterAddress") == r2.node.ipv4

    # dbus-monitor saw the move on r1's instance: the signal and the property change
    sigs = signals(mon)
    assert ("MASTER", "BACKUP", "failover requested") in state_changes(sigs, VI_1), sigs
    changed = [
        s.strings
        for s in sigs
        if s.path == VI_1 and s.member == "PropertiesChanged" and "State" in s.strings
    ]
    assert any(s[s.index("State") + 1] == "BACKUP" for s in changed), changed
    taken = ("BACKUP", "MASTER", f"priority 0 advert from {r1.node.ipv4}")
    assert state_changes(signals(mon2), VI_1) == [taken]

    # nothing to hand over on a BACKUP
    message = r1.busctl_fails(VI_1, INSTANCE, "Failover")
    assert "BACKUP" in message and "not MASTER" in message, message
    name, _ = r1.refusal(VI_1, f"{INSTANCE}.Failover")
    assert name == ERR + "NotMaster"

    # ResetPriority ends the hand-over: r1 preempts again
    r1.call(VI_1, INSTANCE, "ResetPriority")
    assert r1.node.wait_vip(VIP, within=DOWN), r1.daemon.log_text()
    assert r2.node.wait_no_vip(VIP, within=DOWN)
    assert r1.prop("State") == "MASTER"
    assert r1.prop("Yielding") is False


def test_only_root_steers_whatever_the_bus_policy(bus, lab, tmp_path):
    loose_policy = tmp_path / "loose.conf"
    loose_policy.write_text(LOOSE_POLICY)
    with PrivateBus(policies=(loose_policy,)) as loose:
        # r1, the master, on a bus open to all; r2 on a bus with the project's policy
        r1, r2 = two_routers(lab, loose, bus, pair_conf(150), pair_conf(100))

        # anyone may look
        assert r2.prop("State", uid=NOBODY) == "BACKUP"
        assert r2.prop("MasterAddress", uid=NOBODY) == r1.node.ipv4
        rows = r2.call(ROOT, MANAGER, "ListInstances", uid=NOBODY)
        assert [(row[0], row[1], row[7]) for row in rows] == [("VI_1", "BACKUP", 100)]

        # the project's policy: the bus itself refuses a non-root caller's order
        r = r2.bus.busctl("call", BUS, VI_1, INSTANCE, "SetPriority", "y", "254", uid=NOBODY,
                          check=False)  # fmt: skip
        assert r.returncode != 0 and "Access denied" in r.stderr, r
        name, message = r2.refusal(VI_1, f"{INSTANCE}.SetPriority", "byte:254", uid=NOBODY)
        assert name == ACCESS_DENIED
        assert r2.prop("BasePriority") == 100 and r2.prop("PriorityOverridden") is False
        assert r2.counters().get("dbus_denied", 0) == 0  # it never reached the daemon

        # a loose bus lets the call through: the daemon refuses it itself
        assert r1.prop("State", uid=NOBODY) == "MASTER"
        name, message = r1.refusal(VI_1, f"{INSTANCE}.Failover", uid=NOBODY)
        assert name == ACCESS_DENIED
        assert "root" in message and "65534" in message, message
        for method, *args in (
            (f"{INSTANCE}.SetPriority", "byte:1"),
            (f"{INSTANCE}.Maintenance", "boolean:true"),
            (f"{MANAGER}.Reload",),
        ):
            path = ROOT if method.startswith(MANAGER) else VI_1
            name, _ = r1.refusal(path, method, *args, uid=NOBODY)
            assert name == ACCESS_DENIED, method
        time.sleep(0.5)  # a Failover would have moved the VIP in well under this
        assert r1.holds() and not r2.holds()
        assert r1.prop("State") == "MASTER" and r1.prop("Yielding") is False
        assert r1.prop("BasePriority") == 150
        assert r1.counters()["dbus_denied"] >= 4


def test_set_priority_moves_the_election_and_maintenance_takes_a_router_out(bus, bus2, lab):
    r1, r2 = two_routers(lab, bus, bus2, pair_conf(150), pair_conf(100))

    # the backup is raised above the master: it preempts
    r2.call(VI_1, INSTANCE, "SetPriority", "y", "200")
    assert r2.node.wait_vip(VIP, within=DOWN), r2.daemon.log_text()
    assert r1.node.wait_no_vip(VIP, within=DOWN)
    assert r2.prop("BasePriority") == 200
    assert r2.prop("EffectivePriority") == 200
    assert r2.prop("PriorityOverridden") is True
    assert r2.prop("ConfigPriority") == 100
    assert wait_for(lambda: r1.prop("MasterAddress") == r2.node.ipv4, within=DOWN)
    assert r1.prop("State") == "BACKUP"

    # out of range: refused, nothing changes
    for bad in ("0", "255"):
        name, message = r2.refusal(VI_1, f"{INSTANCE}.SetPriority", f"byte:{bad}")
        assert name == ERR + "InvalidArgs", (bad, name)
        assert f"priority {bad}" in message and "1..254" in message, message
    name, _ = r2.refusal(VI_1, f"{INSTANCE}.SetPriority", "int32:200")  # not a byte
    assert name == "org.freedesktop.DBus.Error.InvalidArgs"
    assert r2.prop("BasePriority") == 200 and r2.holds()

    # back to the configured priority: r1 (150) preempts again
    r2.call(VI_1, INSTANCE, "ResetPriority")
    assert r1.node.wait_vip(VIP, within=DOWN)
    assert r2.node.wait_no_vip(VIP, within=DOWN)
    assert r2.prop("EffectivePriority") == 100 and r2.prop("PriorityOverridden") is False

    # maintenance on the master: the VIP leaves for r2 (priority 0: no master down wait)
    mon = watch(r1.bus, f"type='signal',path='{VI_1}',member='StateChanged'")
    r1.call(VI_1, INSTANCE, "Maintenance", "b", "true")
    assert r2.node.wait_vip(VIP, within=DOWN)
    assert r1.node.wait_no_vip(VIP, within=DOWN)
    assert r2.prop("LastReason") == f"priority 0 advert from {r1.node.ipv4}"
    assert r1.prop("State") == "FAULT"
    assert r1.prop("LastReason") == "maintenance"
    assert r1.prop("Maintenance") is True
    time.sleep(1.0)  # out of elections: r1 stays out although its priority is higher
    assert r2.holds() and not r1.holds() and r1.prop("State") == "FAULT"

    # maintenance off: BACKUP first, then the election (150 against 100) gives it back
    r1.call(VI_1, INSTANCE, "Maintenance", "b", "false")
    assert r1.node.wait_vip(VIP, within=DOWN)
    assert r2.node.wait_no_vip(VIP, within=DOWN)
    assert r1.prop("Maintenance") is False
    changes = state_changes(signals(mon), VI_1)
    assert [c[:2] for c in changes] == [("MASTER", "FAULT"), ("FAULT", "BACKUP"),
                                        ("BACKUP", "MASTER")], changes  # fmt: skip
    assert [c[2] for c in changes[:2]] == ["maintenance", "maintenance ended"], changes


def test_reload_over_dbus_checks_applies_and_refuses_a_bad_file(bus, lab):
    r1 = start(lab.add_node("r1"), bus, pair_conf(150))
    assert r1.node.wait_vip(VIP, within=DOWN * 2)
    conf = r1.daemon.config
    conf.write_text(keepalived_conf(vrrp_instance(priority=120, vips=[f"{VIP}/24", f"{VIP3}/24"])))

    # the dry run names the changes and touches nothing
    planned = r1.call(ROOT, MANAGER, "CheckReload")
    assert planned and all(isinstance(line, str) for line in planned), planned
    assert any("VI_1" in line for line in planned), planned
    time.sleep(0.3)
    assert not r1.holds(VIP3)
    assert r1.prop("ConfigPriority") == 150
    assert r1.prop("VirtualAddresses") == [f"{VIP}/24"]
    assert r1.prop("Reloads", ROOT, MANAGER) == 0

    # the real one applies them and announces them
    mon = watch(r1.bus, f"type='signal',path='{ROOT}',member='Reloaded'")
    assert r1.call(ROOT, MANAGER, "Reload") == planned
    assert r1.node.wait_vip(VIP3, within=DOWN)
    assert r1.holds(VIP)
    assert r1.prop("ConfigPriority") == 120
    assert r1.prop("VirtualAddresses") == [f"{VIP}/24", f"{VIP3}/24"]
    assert r1.prop("Reloads", ROOT, MANAGER) == 1
    reloaded = [s for s in signals(mon) if s.member == "Reloaded"]
    assert [s.strings for s in reloaded] == [tuple(planned)], reloaded

    # a bad file: refused with FILE:LINE, and the running instance is left exactly as it was
    before = r1.managed_objects()[VI_1][INSTANCE]
    good = conf.read_text()
    bad = good.replace("virtual_router_id 51", "virtual_router_id 300")
    conf.write_text(bad)
    line = bad.splitlines().index("    virtual_router_id 300") + 1
    for method in ("CheckReload", "Reload"):
        name, message = r1.refusal(ROOT, f"{MANAGER}.{method}")
        assert name == ERR + "ConfigInvalid", (method, name)
        assert f"{conf}:{line}:" in message, message
    time.sleep(0.3)
    assert r1.holds(VIP) and r1.holds(VIP3)
    after = r1.managed_objects()[VI_1][INSTANCE]
    del before["Counters"], after["Counters"]  # adverts go on being sent
    assert after == before
    assert r1.prop("Reloads", ROOT, MANAGER) == 1
    assert r1.counters()["reload_failed"] == 1


def test_sync_group_failover_moves_every_vip(bus, bus2, lab):
    def conf(priority: int) -> str:
        return pair_conf(
            priority,
            vrrp_instance("VI_2", vrid=52, priority=priority, vips=[f"{VIP2}/24"]),
            "vrrp_sync_group web_group {\n    group {\n        VI_1\n        VI_2\n    }\n}\n",
        )

    r1, r2 = two_routers(lab, bus, bus2, conf(150), conf(100))
    assert r1.node.wait_vip(VIP2, within=DOWN)
    group = f"{ROOT}/group/web_5fgroup"
    assert r1.prop("State", group, GROUP) == "MASTER"
    assert r1.prop("Members", group, GROUP) == ["VI_1", "VI_2"]

    r1.call(group, GROUP, "Failover")
    assert wait_for(lambda: r2.holds(VIP) and r2.holds(VIP2), within=DOWN), r2.daemon.log_text()
    assert wait_for(lambda: not r1.holds(VIP) and not r1.holds(VIP2), within=DOWN)
    assert wait_for(lambda: r2.prop("State", group, GROUP) == "MASTER", within=DOWN)
    assert r1.prop("State", group, GROUP) == "BACKUP"
    time.sleep(1.0)  # r1 yields: no preempting back
    assert r2.holds(VIP) and r2.holds(VIP2) and not r1.holds(VIP)

    name, _ = r1.refusal(group, f"{GROUP}.Failover")
    assert name == ERR + "NotMaster"

    # r2 hands back the same way
    r2.call(group, GROUP, "Failover")
    assert wait_for(lambda: r1.holds(VIP) and r1.holds(VIP2), within=DOWN), r1.daemon.log_text()
    assert wait_for(lambda: not r2.holds(VIP) and not r2.holds(VIP2), within=DOWN)
    assert wait_for(lambda: r1.prop("State", group, GROUP) == "MASTER", within=DOWN)


def test_real_server_drain_and_weight_reach_the_kernel_table(bus, lab):
    farm = Farm(lab, n=2)
    s1, s2 = farm.servers
    svc = f"{VIP}:80/TCP"
    body = f"""
virtual_server {VIP} 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    {"".join(real_server(n, farm.tmp) for n in farm.servers)}
}}
"""
    director = start(farm.director, bus, director_conf(body))
    rs1, rs2 = f"{s1.ipv4}:80", f"{s2.ipv4}:80"

    def weights() -> dict[str, int]:
        return kernel_table(farm.director).get(svc, {})

    assert farm.director.wait_vip(VIP, within=5), director.daemon.log_text()
    assert wait_for(lambda: weights() == {rs1: 1, rs2: 1}, within=5, step=0.2), weights()
    assert director.prop("LvsBackend", ROOT, MANAGER) == "nftables"
    # the operator finds the objects the way a table would show them
    paths = {row[1]: row[-1] for row in director.call(ROOT, MANAGER, "ListRealServers")}
    assert paths.keys() == {rs1, rs2}
    p1 = paths[rs1]
    assert p1.startswith(f"{ROOT}/virtual_server/_3198_2e18_2e0_2e100_3a80_2fTCP/real_server/")

    # drained: weight 0 in the kernel, no new requests
    director.call(p1, RS, "Disable")
    assert wait_for(lambda: weights() == {rs1: 0, rs2: 1}, within=3, step=0.1), weights()
    assert director.prop("Enabled", p1, RS) is False
    assert Counter(farm.requests(6)) == {"rs2": 6}

    director.call(p1, RS, "Enable")
    assert wait_for(lambda: weights() == {rs1: 1, rs2: 1}, within=3, step=0.1), weights()
    assert director.prop("Enabled", p1, RS) is True
    assert Counter(farm.requests(6)) == {"rs1": 3, "rs2": 3}

    director.call(p1, RS, "SetWeight", "i", "5")
    assert wait_for(lambda: weights() == {rs1: 5, rs2: 1}, within=3, step=0.1), weights()
    assert director.prop("Weight", p1, RS) == 5
    assert director.prop("ConfigWeight", p1, RS) == 1
    assert director.prop("WeightOverridden", p1, RS) is True
    for bad in ("-1", "65536"):
        name, message = director.refusal(p1, f"{RS}.SetWeight", f"int32:{bad}")
        assert name == ERR + "InvalidArgs", (bad, name)
        assert bad in message and "0..65535" in message, message
    assert weights() == {rs1: 5, rs2: 1}

    director.call(p1, RS, "ResetWeight")
    assert wait_for(lambda: weights() == {rs1: 1, rs2: 1}, within=3, step=0.1), weights()
    assert director.prop("WeightOverridden", p1, RS) is False
