"""keepalived's D-Bus API (org.keepalived.Vrrp1): hakeeper answers what keepalived 2.2.7 answers.

One keepalived.conf (with `enable_dbus`) runs under real keepalived on one lab segment and under
hakeeper on another. On each segment a peer (keepalived without D-Bus) makes the daemon MASTER
of VI_MASTER (eth0, IPv4) and VI_6 (eth0, IPv6) and BACKUP of VI_BACKUP (on a second port
named `eth0.5` as a VLAN would be: keepalived's path escaping makes it `eth0_5`; the container
has no 8021q module for a real VLAN). Both daemons want the same bus name, so each
has its own private system-like bus: keepalived's with the policy its package ships, hakeeper's
with the project's. Real clients (busctl, dbus-send, dbus-monitor, tcpdump) ask both the same
things, and the answers are compared with each other, not with hard-coded copies.

Where hakeeper answers differently on purpose, the test pins both answers and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import Daemon, start_daemon, wait_for
from tests.lab.dbusbus import NOBODY, PrivateBus
from tests.lab.lab import Lab, Node, lab_unavailable

pytestmark = pytest.mark.lab

NAME = "org.keepalived.Vrrp1"
ROOT = "/org/keepalived/Vrrp1"
VRRP = f"{ROOT}/Vrrp"
VRRP_IFACE = "org.keepalived.Vrrp1.Vrrp"
INSTANCE_IFACE = "org.keepalived.Vrrp1.Instance"
ERR = "org.freedesktop.DBus.Error."
PROPERTIES = "org.freedesktop.DBus.Properties"
# the policy Debian's keepalived package installs: its bus is set up as the package sets it up
KEEPALIVED_POLICY = Path("/etc/dbus-1/system.d/org.keepalived.Vrrp1.conf")
# keepalived's PrintData / PrintStats files (hakeeper writes its own beside its state file)
KEEPALIVED_DATA = Path("/tmp/keepalived.data")
KEEPALIVED_STATS = Path("/tmp/keepalived.stats")

VLAN = "eth0.5"
VIP4 = "198.18.0.100"
VLAN_VIP = "198.18.50.100"  # any address: the VIP needs no subnet of its own
VIP6 = "fd00:198:18::100"
MASTER_PATH = f"{ROOT}/Instance/eth0/51/IPv4"
BACKUP_PATH = f"{ROOT}/Instance/eth0_5/52/IPv4"  # '.' is not allowed in a path element
V6_PATH = f"{ROOT}/Instance/eth0/53/IPv6"
INSTANCES = {"VI_MASTER": MASTER_PATH, "VI_BACKUP": BACKUP_PATH, "VI_6": V6_PATH}
SETTLED = {MASTER_PATH: 2, BACKUP_PATH: 1, V6_PATH: 2}  # keepalived's BACKUP 1, MASTER 2
INIT, BACKUP, MASTER, FAULT, STOP = 0, 1, 2, 3, 98


def conf(win: int, lose: int, dbus: bool, order: tuple[str, ...] = tuple(INSTANCES)) -> str:
    """VI_MASTER and VI_6 at priority `win`, VI_BACKUP at `lose` (the peer swaps them);
    `order`: which instances, in which order."""
    defs = {
        "VI_MASTER": vrrp_instance("VI_MASTER", vrid=51, priority=win, vips=(f"{VIP4}/24",)),
        "VI_BACKUP": vrrp_instance(
            "VI_BACKUP", interface=VLAN, vrid=52, priority=lose, vips=(f"{VLAN_VIP}/24",)
        ),
        "VI_6": vrrp_instance("VI_6", vrid=53, priority=win, vips=(f"{VIP6}/64",)),
    }
    extra = "    enable_dbus\n" if dbus else ""
    return keepalived_conf(*(defs[name] for name in order), global_extra=extra)


TESTED_CONF = conf(200, 100, dbus=True)  # the one file both daemons run
PEER_CONF = conf(100, 200, dbus=False)


# -- dbus-monitor, read as it goes --------------------------------------------------------


@dataclass(frozen=True)
class Sig:
    path: str
    member: str
    args: tuple[Any, ...] = ()


ARITY = {"VrrpStatusChange": 1}  # arguments of keepalived's signals (the others have none)


class Watch:
    """dbus-monitor on keepalived's two interfaces; a thread parses the signals as they come,
    so a test can wait for one and look at what came after a mark."""

    def __init__(self, bus: PrivateBus) -> None:
        self.proc = bus.monitor(
            f"type='signal',interface='{VRRP_IFACE}'", f"type='signal',interface='{INSTANCE_IFACE}'"
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # its own NameLost: it has become a monitor
            if "member=NameLost" in line:
                break
        else:
            raise AssertionError(f"dbus-monitor did not start: exit {self.proc.wait(5)}")
        self._seen: list[Sig] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """A signal is seen once whole: dbus-monitor prints its arguments after the header."""
        assert self.proc.stdout is not None
        pending: Sig | None = None
        for line in self.proc.stdout:
            head = re.match(r"signal .* path=(\S+); interface=\S+; member=(\S+)$", line)
            if head is not None:
                pending = Sig(head[1], head[2])
            elif line.startswith(" ") and pending is not None:
                pending = replace(pending, args=(*pending.args, _arg(line.strip())))
            if pending is not None and len(pending.args) == ARITY.get(pending.member, 0):
                with self._lock:
                    self._seen.append(pending)
                pending = None

    def mark(self) -> int:
        with self._lock:
            return len(self._seen)

    def since(self, mark: int = 0) -> list[Sig]:
        with self._lock:
            return self._seen[mark:]

    def wait(self, mark: int, want: Callable[[list[Sig]], bool], within: float = 5) -> bool:
        return wait_for(lambda: want(self.since(mark)), within=within, step=0.02)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        self._thread.join(5)
        self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _arg(text: str) -> Any:
    kind, _, value = text.partition(" ")
    if kind in ("uint32", "int32", "byte"):
        return int(value)
    if kind == "string":
        return value.strip('"')
    return text


def statuses(sigs: list[Sig], path: str) -> list[int]:
    return [s.args[0] for s in sigs if s.path == path and s.member == "VrrpStatusChange"]


def vrrp_signals(sigs: list[Sig]) -> list[str]:
    return [s.member for s in sigs if s.path == VRRP]


# -- one daemon and the clients that talk to it -------------------------------------------


@dataclass
class Side:
    kind: str  # "keepalived" or "hakeeper"
    node: Node
    peer: Node
    bus: PrivateBus
    watch: Watch
    daemon: Daemon | None = None
    peer_daemon: Daemon | None = None
    settled_at: float = field(default=0.0)

    def busctl(self, *args: str, uid: int | None = None) -> str:
        return self.bus.busctl(*args, uid=uid).stdout

    def get(self, path: str, prop: str, uid: int | None = None) -> str:
        """busctl get-property as a user reads it: the type, then the value."""
        return self.busctl("get-property", NAME, path, INSTANCE_IFACE, prop, uid=uid).strip()

    def state(self, path: str) -> int | None:
        r = self.bus.busctl(
            "--json=short", "get-property", NAME, path, INSTANCE_IFACE, "State", check=False
        )
        return json.loads(r.stdout)["data"][0] if r.returncode == 0 else None

    def call(self, path: str, iface: str, member: str) -> str:
        """A method call as root; busctl prints the reply (nothing for keepalived's)."""
        return self.busctl("call", NAME, path, iface, member)

    def refusal(self, path: str, method: str, *args: str, uid: int | None = None) -> str:
        """The error name of a refused call, as dbus-send prints it (busctl shows only the
        message, which is each implementation's own prose)."""
        argv = ["dbus-send", f"--bus={self.bus.address}", "--print-reply", f"--dest={NAME}"]
        argv += [path, method, *args]
        if uid is not None:
            argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert r.returncode != 0, f"{self.kind}: {method} was accepted: {r.stdout}"
        m = re.match(r"Error (\S+):", r.stderr.strip())
        assert m is not None, r.stderr
        return m[1]

    @property
    def stats_file(self) -> Path:
        assert self.daemon is not None
        return KEEPALIVED_STATS if self.kind == "keepalived" else self.daemon.workdir / "stats.txt"

    @property
    def data_file(self) -> Path:
        assert self.daemon is not None
        return KEEPALIVED_DATA if self.kind == "keepalived" else self.daemon.state_file

    def log(self) -> str:
        return self.daemon.log_text()[-3000:] if self.daemon is not None else ""


def _remove_keepalived_dumps() -> None:
    for f in (KEEPALIVED_DATA, KEEPALIVED_STATS):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


@pytest.fixture(scope="module")
def sides(lab_session: None) -> Iterator[list[Side]]:
    """[keepalived, hakeeper], each settled: MASTER of VI_MASTER and VI_6, BACKUP of
    VI_BACKUP, every signal since before it started recorded."""
    why = lab_unavailable()
    if why is not None:
        pytest.fail(f"lab test cannot run: {why}", pytrace=False)
    assert KEEPALIVED_POLICY.exists(), f"keepalived's package did not install {KEEPALIVED_POLICY}"
    with contextlib.ExitStack() as stack:
        stack.callback(_remove_keepalived_dumps)
        kbus = stack.enter_context(PrivateBus(policies=(KEEPALIVED_POLICY,)))
        hbus = stack.enter_context(PrivateBus())
        lab = stack.enter_context(Lab())  # closed first: daemons end before their buses
        # each pair on segments of its own (no VRRP between the two); the second port is
        # named like a VLAN (the name is what matters here)
        for seg in ("k-vlan", "h", "h-vlan"):
            lab.add_segment(seg)
        out = []
        for kind, bus, seg in (("keepalived", kbus, "lan"), ("hakeeper", hbus, "h")):
            node = lab.add_node(kind[0], (seg,))
            peer = lab.add_node(f"{kind[0]}p", (seg,))
            for n in (node, peer):
                lab.connect(n, f"{kind[0]}-vlan", VLAN)
            watch = Watch(bus)
            stack.callback(watch.close)
            out.append(Side(kind, node, peer, bus, watch))
        for side in out:  # the peers first: they are masters until the daemon preempts
            side.peer_daemon = start_daemon(side.peer, "keepalived", PEER_CONF)
        for side in out:
            assert side.peer.wait_vip(VLAN_VIP, VLAN, within=10), side.peer_daemon.log_text()
        k, h = out
        k.daemon = start_daemon(
            k.node, "keepalived", TESTED_CONF, env={"DBUS_SYSTEM_BUS_ADDRESS": kbus.address}
        )
        h.daemon = start_daemon(h.node, "hakeeper", TESTED_CONF, suffix=".conf", bus=hbus.address)
        for side in out:
            settled = wait_for(
                lambda s=side: all(s.state(p) == v for p, v in SETTLED.items()), within=15
            )
            assert settled, f"{side.kind} did not settle:\n{side.log()}"
            side.settled_at = time.monotonic()
        yield out


# -- the tests, in the order a daemon lives -----------------------------------------------


def collapse(xs: list[int]) -> list[int]:
    """Repeats dropped, and a leading INIT (0): keepalived may come on the bus that early."""
    out = [x for i, x in enumerate(xs) if i == 0 or xs[i - 1] != x]
    return out[1:] if out[:1] == [INIT] else out


def test_started_signals(sides: list[Side]) -> None:
    """VrrpStarted once, each instance's state as it stands, then the transitions, with
    keepalived's numbers. keepalived 2.2.7 races here: its main thread may signal a transition
    while its D-Bus thread is still announcing, so a state can come twice, even before
    VrrpStarted, and it may announce INIT (0) when it is that early. hakeeper announces from
    its one loop: VrrpStarted first, then each state once in config order, then only changes,
    which is one of the orders keepalived sends."""
    for side in sides:
        sigs = side.watch.since()
        assert vrrp_signals(sigs) == ["VrrpStarted"], (side.kind, sigs)
        for path in (MASTER_PATH, V6_PATH):  # BACKUP when the bus came up, or MASTER already
            assert collapse(statuses(sigs, path)) in ([BACKUP, MASTER], [MASTER]), side.kind
        assert collapse(statuses(sigs, BACKUP_PATH)) == [BACKUP], (side.kind, sigs)
        after = sigs[sigs.index(Sig(VRRP, "VrrpStarted")) + 1 :]
        announced = iter(s.path for s in after)
        assert all(p in announced for p in INSTANCES.values()), (side.kind, sigs)
    sigs = sides[1].watch.since()
    assert sigs[0] == Sig(VRRP, "VrrpStarted")
    assert [s.path for s in sigs[1:4]] == list(INSTANCES.values())
    for path in INSTANCES.values():  # each state once, never INIT
        assert statuses(sigs, path) == collapse(statuses(sigs, path)), sigs


def test_object_paths(sides: list[Side]) -> None:
    """The same objects, at keepalived's paths: interface with '.' escaped to '_'."""
    trees = []
    for side in sides:
        paths = side.busctl("--list", "tree", NAME).split()
        trees.append(sorted(p for p in paths if p.startswith(ROOT)))
    assert trees[0] == trees[1]
    assert {VRRP, *INSTANCES.values()} <= set(trees[1])
    for path in (ROOT, f"{ROOT}/Instance", f"{ROOT}/Instance/eth0_5"):  # inner nodes: no members
        tables = [members(side, path) for side in sides]
        assert tables[0] == tables[1] == [], path


def members(side: Side, path: str) -> list[tuple[str, ...]]:
    """busctl introspect's table: (name, kind, signature, result or flags) per member."""
    rows = []
    for line in side.busctl("introspect", NAME, path).splitlines()[1:]:
        cols = line.split()
        if not cols:
            continue
        name, kind, sig = cols[:3]
        # a property's value column differs with the state; its flags are the last column
        rows.append((name, kind, sig, cols[-1] if kind == "property" else " ".join(cols[3:])))
    return rows


def interface_xml(side: Side, path: str, iface: str) -> list[tuple[str, ...]]:
    """Every member of `iface` with its argument names, types and directions."""
    root = ET.fromstring(side.busctl("introspect", "--xml-interface", NAME, path))
    node = root.find(f"interface[@name='{iface}']")
    assert node is not None, (side.kind, path, iface)
    out = []
    for m in node:
        args = tuple(f"{a.get('name')}:{a.get('type')}:{a.get('direction', '')}" for a in m)
        out.append((m.tag, m.get("name", ""), m.get("type", ""), m.get("access", ""), *args))
    return sorted(out)


def test_introspection(sides: list[Side]) -> None:
    """The same interfaces, members and types on both object kinds. One difference is
    keepalived's own: 2.2.7's interface file says Name is `s`, but it answers `(s)` on the
    wire (later keepalived fixed the file); hakeeper declares what it sends, `(s)`."""
    k, h = sides
    wire = json.loads(
        k.busctl("--json=short", "get-property", NAME, MASTER_PATH, INSTANCE_IFACE, "Name")
    )["type"]
    assert wire == "(s)"

    def declared_as_sent(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        return [(n, kind, wire if n == ".Name" else sig, rest) for n, kind, sig, rest in rows]

    for path, iface in ((VRRP, VRRP_IFACE), (MASTER_PATH, INSTANCE_IFACE)):
        assert declared_as_sent(members(k, path)) == members(h, path), path
        ours = interface_xml(h, path, iface)
        theirs = [
            (t[0], t[1], wire if t[:2] == ("property", "Name") else t[2], *t[3:])
            for t in interface_xml(k, path, iface)
        ]
        assert sorted(theirs) == ours, path
    table = dict((r[0], r[2]) for r in members(k, MASTER_PATH))
    assert table[".Name"] in ("s", "(s)")  # 2.2.7 says `s`; a fixed keepalived `(s)`
    assert table[".State"] == "(us)"


def test_name_and_state(sides: list[Side]) -> None:
    """Get and GetAll answer the same type and value for the same state, also to non-root."""
    k, h = sides
    for name, path in INSTANCES.items():
        for prop in ("Name", "State"):
            assert k.get(path, prop) == h.get(path, prop) == h.get(path, prop, uid=NOBODY)
            assert k.get(path, prop, uid=NOBODY) == k.get(path, prop)
        assert h.get(path, "Name") == f'(s) "{name}"'
        get_all = ("call", NAME, path, PROPERTIES, "GetAll", "s", INSTANCE_IFACE)
        assert k.busctl(*get_all) == h.busctl(*get_all) == h.busctl(*get_all, uid=NOBODY)
        assert k.busctl(*get_all, uid=NOBODY) == k.busctl(*get_all)
    assert h.get(MASTER_PATH, "State") == '(us) 2 "Master"'
    assert h.get(BACKUP_PATH, "State") == '(us) 1 "Backup"'


def test_methods_need_root_and_errors(sides: list[Side]) -> None:
    """Anyone may read and introspect; only root may call methods (each bus's policy); wrong
    calls get the same error names."""
    calls = [
        (VRRP, f"{VRRP_IFACE}.{m}")
        for m in ("PrintData", "PrintStats", "PrintStatsClear", "ReloadConfig")
    ]
    calls.append((MASTER_PATH, f"{INSTANCE_IFACE}.SendGarp"))
    for side in sides:
        side.busctl("introspect", NAME, MASTER_PATH, uid=NOBODY)
        side.busctl("introspect", NAME, VRRP, uid=NOBODY)
        for path, method in calls:
            assert side.refusal(path, method, uid=NOBODY) == ERR + "AccessDenied", side.kind
    k, h = sides
    same = [
        (MASTER_PATH, f"{INSTANCE_IFACE}.Nope"),
        (MASTER_PATH, f"{INSTANCE_IFACE}.SendGarp", "string:x"),
        (VRRP, f"{VRRP_IFACE}.Nope"),
    ]
    for path, method, *args in same:
        assert k.refusal(path, method, *args) == h.refusal(path, method, *args), method
    # GLib answers InvalidArgs for an unknown property and for Set on a read-only one;
    # hakeeper gives the specific names the D-Bus spec has for both (its own contract)
    unknown = (MASTER_PATH, f"{PROPERTIES}.Get", f"string:{INSTANCE_IFACE}", "string:Nope")
    assert k.refusal(*unknown) == ERR + "InvalidArgs"
    assert h.refusal(*unknown) == ERR + "UnknownProperty"
    put = (
        MASTER_PATH,
        f"{PROPERTIES}.Set",
        f"string:{INSTANCE_IFACE}",
        "string:State",
        "variant:string:x",
    )
    assert k.refusal(*put) == ERR + "InvalidArgs"
    assert h.refusal(*put) == ERR + "PropertyReadOnly"
    # and for a path with no object GLib says UnknownMethod, hakeeper UnknownObject
    nothing = (f"{ROOT}/Instance/eth0/99/IPv4", f"{INSTANCE_IFACE}.SendGarp")
    assert k.refusal(*nothing) == ERR + "UnknownMethod"
    assert h.refusal(*nothing) == ERR + "UnknownObject"


# -- methods --------------------------------------------------------------------------------


@contextlib.contextmanager
def capture(node: Node, ifname: str, bpf: str) -> Iterator[list[str]]:
    """tcpdump's lines for what `node` sends on `ifname` while the block runs."""
    proc = node.popen(
        ["tcpdump", "-i", ifname, "-nn", "-l", "-p", "-Q", "out", bpf],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # it prints this once its filter is on the socket
        if "listening on" in line:
            break
    else:
        raise AssertionError(f"tcpdump did not start: exit {proc.wait(5)}")
    lines: list[str] = []
    try:
        yield lines
        time.sleep(0.5)  # what was sent has reached the capture
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        lines += [line for line in out.splitlines() if line.strip()]


def test_send_garp(sides: list[Side]) -> None:
    """SendGarp: an empty reply, and one gratuitous ARP (IPv4) or unsolicited NA (IPv6) per
    VIP goes out at once; a BACKUP holds no VIP, answers the same and sends nothing."""
    for side in sides:  # the GARP rounds of becoming master are over
        time.sleep(max(0.0, side.settled_at + 1.5 - time.monotonic()))
    sent: dict[str, list[list[str]]] = {}
    for side in sides:
        with (
            capture(side.node, "eth0", "arp") as arp,
            capture(side.node, "eth0", "icmp6 and ip6[40] == 136") as na,
            capture(side.node, VLAN, "arp") as vlan_arp,
        ):
            for path in INSTANCES.values():
                assert side.call(path, INSTANCE_IFACE, "SendGarp") == "", side.kind
        sent[side.kind] = [arp, na, vlan_arp]
    for kind, (arp, na, vlan_arp) in sent.items():
        assert len([x for x in arp if VIP4 in x]) == 1, (kind, arp)
        assert len([x for x in na if f"tgt is {VIP6}" in x]) == 1, (kind, na)
        assert vlan_arp == [], (kind, vlan_arp)


def masked(text: str) -> list[str]:
    return [re.sub(r"\d+", "N", line) for line in text.splitlines()]


def fresh(path: Path, since: float) -> bool:
    return path.exists() and path.stat().st_mtime >= since


def test_print_stats(sides: list[Side]) -> None:
    """PrintStats writes keepalived's layout line by line (numbers aside), mode 0600;
    PrintStatsClear writes them, then sets every counter to zero."""
    texts = []
    for side in sides:
        before = time.time() - 0.01
        side.call(VRRP, VRRP_IFACE, "PrintStats")
        assert fresh(side.stats_file, before), side.kind  # written before the reply
        texts.append(side.stats_file.read_text())
        assert side.stats_file.stat().st_mode & 0o777 == 0o600, side.kind
    k, h = texts
    assert masked(k) == masked(h)
    assert [line for line in h.splitlines() if line.startswith("VRRP")] == [
        f"VRRP Instance: {name}" for name in INSTANCES
    ]
    for side in sides:
        side.call(VRRP, VRRP_IFACE, "PrintStatsClear")
        cleared = side.stats_file.read_text()
        side.call(VRRP, VRRP_IFACE, "PrintStats")
        after = side.stats_file.read_text()
        assert masked(cleared) == masked(k)
        assert re.findall(r"Became master: (\d+)", cleared) == ["1", "0", "1"], side.kind
        assert re.findall(r"Became master: (\d+)", after) == ["0", "0", "0"], side.kind
        sent = [int(n) for n in re.findall(r"\n    Sent: (\d+)\n  Became", after)]
        before = [int(n) for n in re.findall(r"\n    Sent: (\d+)\n  Became", cleared)]
        assert sent[0] < before[0], (side.kind, before, sent)  # VI_MASTER's adverts restart


def test_print_data(sides: list[Side]) -> None:
    """PrintData: an empty reply once the dump is written (keepalived's text dump; hakeeper's
    state file, its JSON dump)."""
    for side in sides:
        before = time.time() - 0.01
        assert side.call(VRRP, VRRP_IFACE, "PrintData") == ""
        assert fresh(side.data_file, before), side.kind
        text = side.data_file.read_text()
        for name in INSTANCES:
            assert name in text, (side.kind, name)
    h = sides[1]
    assert {i["name"] for i in json.loads(h.data_file.read_text())["instances"]} == set(INSTANCES)


# -- signals --------------------------------------------------------------------------------


def both_see(sides: list[Side], marks: list[int], path: str, status: int) -> None:
    for side, mark in zip(sides, marks, strict=True):
        seen = side.watch.wait(mark, lambda sigs: statuses(sigs, path)[-1:] == [status])
        assert seen, (side.kind, status, side.watch.since(mark), side.log())


def test_status_change_signals(sides: list[Side]) -> None:
    """A transition sends VrrpStatusChange with keepalived's number (FAULT 3, BACKUP 1,
    MASTER 2) on the instance's path, and State reads the same on both."""
    marks = [side.watch.mark() for side in sides]
    for side in sides:
        side.node.run(["ip", "link", "set", VLAN, "down"])
    both_see(sides, marks, BACKUP_PATH, FAULT)
    assert sides[0].get(BACKUP_PATH, "State") == sides[1].get(BACKUP_PATH, "State")
    assert sides[1].get(BACKUP_PATH, "State") == '(us) 3 "Fault"'
    for side in sides:
        side.node.run(["ip", "link", "set", VLAN, "up"])
    both_see(sides, marks, BACKUP_PATH, BACKUP)
    for side in sides:  # the peer goes: its priority-0 advert hands VI_BACKUP over
        assert side.peer_daemon is not None
        side.peer_daemon.stop()
    both_see(sides, marks, BACKUP_PATH, MASTER)
    assert sides[0].get(BACKUP_PATH, "State") == sides[1].get(BACKUP_PATH, "State")
    time.sleep(0.3)  # nothing else follows
    seen = [side.watch.since(mark) for side, mark in zip(sides, marks, strict=True)]
    assert seen[0] == seen[1]
    assert statuses(seen[1], BACKUP_PATH) == [FAULT, BACKUP, MASTER]
    assert {s.path for s in seen[1]} == {BACKUP_PATH}


def reload(sides: list[Side], text: str) -> list[int]:
    """Both daemons get `text` as their config file and a ReloadConfig; returns the marks
    taken before, once VrrpReloaded has come from both."""
    marks = [side.watch.mark() for side in sides]
    for side in sides:
        assert side.daemon is not None
        side.daemon.config.write_text(text)
        assert side.call(VRRP, VRRP_IFACE, "ReloadConfig") == ""  # the reply comes first
    for side, mark in zip(sides, marks, strict=True):
        reloaded = side.watch.wait(mark, lambda sigs: "VrrpReloaded" in vrrp_signals(sigs))
        assert reloaded, (side.kind, side.log())
    return marks


def since(sides: list[Side], marks: list[int]) -> list[list[Sig]]:
    return [side.watch.since(mark) for side, mark in zip(sides, marks, strict=True)]


def paths(side: Side) -> set[str]:
    return {p for p in side.busctl("--list", "tree", NAME).split() if p.startswith(ROOT)}


def test_reload_config(sides: list[Side]) -> None:
    """ReloadConfig: an empty reply, then VrrpReloaded. What stays keeps its object and
    state; a removed instance says FAULT (keepalived's word for deleted) before VrrpReloaded
    and its object goes; an added one has its object and says its states after it."""
    marks = reload(sides, TESTED_CONF)
    time.sleep(0.3)  # nothing else follows
    assert since(sides, marks) == [[Sig(VRRP, "VrrpReloaded")]] * 2
    for path in INSTANCES.values():  # the peers are gone: every instance is MASTER
        assert sides[0].get(path, "State") == sides[1].get(path, "State") == '(us) 2 "Master"'

    marks = reload(sides, conf(200, 100, dbus=True, order=("VI_MASTER", "VI_BACKUP")))
    time.sleep(0.3)
    removed = [Sig(V6_PATH, "VrrpStatusChange", (FAULT,)), Sig(VRRP, "VrrpReloaded")]
    assert since(sides, marks) == [removed] * 2
    assert paths(sides[0]) == paths(sides[1])
    assert V6_PATH not in paths(sides[1])

    marks = reload(sides, TESTED_CONF)
    both_see(sides, marks, V6_PATH, MASTER)  # no peer: BACKUP, then MASTER at once
    added = [Sig(VRRP, "VrrpReloaded"), *(Sig(V6_PATH, "VrrpStatusChange", (n,)) for n in (1, 2))]
    assert since(sides, marks) == [added] * 2
    assert V6_PATH in paths(sides[0]) and paths(sides[0]) == paths(sides[1])


# VI_BACKUP comes back last: the order of the file is the order of the instances
FINAL_ORDER = ("VI_MASTER", "VI_6", "VI_BACKUP")


def test_reload_with_instances_in_fault(sides: list[Side]) -> None:
    """An instance removed while in FAULT says nothing (it said FAULT already); one a reload
    adds while its link is down says FAULT before VrrpReloaded (keepalived reads the new
    config, instances in FAULT included, before it announces the reload)."""
    marks = [side.watch.mark() for side in sides]
    for side in sides:
        side.node.run(["ip", "link", "set", VLAN, "down"])
    both_see(sides, marks, BACKUP_PATH, FAULT)
    marks = reload(sides, conf(200, 100, dbus=True, order=("VI_MASTER", "VI_6")))
    time.sleep(0.3)
    assert since(sides, marks) == [[Sig(VRRP, "VrrpReloaded")]] * 2
    assert BACKUP_PATH not in paths(sides[0]) | paths(sides[1])

    marks = reload(sides, conf(200, 100, dbus=True, order=FINAL_ORDER))
    time.sleep(0.3)
    added = [Sig(BACKUP_PATH, "VrrpStatusChange", (FAULT,)), Sig(VRRP, "VrrpReloaded")]
    assert since(sides, marks) == [added] * 2
    assert sides[0].get(BACKUP_PATH, "State") == sides[1].get(BACKUP_PATH, "State")
    assert sides[1].get(BACKUP_PATH, "State") == '(us) 3 "Fault"'

    marks = [side.watch.mark() for side in sides]
    for side in sides:
        side.node.run(["ip", "link", "set", VLAN, "up"])
    both_see(sides, marks, BACKUP_PATH, MASTER)  # no peer: BACKUP, then MASTER
    up = [Sig(BACKUP_PATH, "VrrpStatusChange", (n,)) for n in (BACKUP, MASTER)]
    assert since(sides, marks) == [up] * 2


def test_stop_signals(sides: list[Side]) -> None:
    """At stop: every instance's VrrpStatusChange STOP (98) in config order, then
    VrrpStopped, the last word on the bus."""
    marks = [side.watch.mark() for side in sides]
    for side in sides:
        assert side.daemon is not None
        assert side.daemon.stop(timeout=10) == 0, side.log()
    for side, mark in zip(sides, marks, strict=True):
        stopped = side.watch.wait(mark, lambda sigs: "VrrpStopped" in vrrp_signals(sigs))
        assert stopped, (side.kind, side.watch.since(mark), side.log())
    seen = [side.watch.since(mark) for side, mark in zip(sides, marks, strict=True)]
    assert seen[0] == seen[1]
    stops = [Sig(INSTANCES[name], "VrrpStatusChange", (STOP,)) for name in FINAL_ORDER]
    assert seen[1] == [*stops, Sig(VRRP, "VrrpStopped")]
