"""The lab: network namespaces joined by a bridge, where hakeeper is tested for real.

    switch namespace: br0 ──── n1e0 ═══ eth0 (r1: 198.18.0.1/24, fd00:198:18::1/64)
                         ├─── n2e0 ═══ eth0 (r2: 198.18.0.2/24, fd00:198:18::2/64)
                         └─── ...

Each node is a namespace with one end of a veth pair; the other end is a port of the
segment's bridge in the switch namespace. Extra segments (more bridges, 198.18.N.0/24,
fd00:198:18:N::/64) give a node eth1, eth2... Addresses come only from 198.18.0.0/15 and
fd00:198:18::/48, nothing is made outside the lab's own namespaces, and every namespace and
process is on a list and removed by `close()`, also after a failure.

Namespace names are `hk-<pid>-<n>-<name>`: unique per lab and per test process, so labs in
parallel runs never collide and leftovers can be traced to the run that made them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
NS_PREFIX = f"hk-{os.getpid()}-"
_lab_counter = itertools.count(1)
# every namespace made by this process and not yet deleted: the session check reads it
LIVE_NAMESPACES: set[str] = set()
NFT_TABLE = "hk_lab"
HOST_RESERVED = range(100, 110)  # .100-.109 are left for VIPs


class LabError(RuntimeError):
    """The lab could not be built or driven (not a failure of the code under test)."""


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, raw sockets); run the tests as root"
    try:
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        return "the lab needs iproute2's `ip` command"
    if r.returncode != 0:
        return f"`ip netns` is unavailable: {r.stderr.strip()}"
    return None


def ip_netns_list() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _run(argv: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("timeout", 30)
    r = subprocess.run(list(argv), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr.strip() or r.stdout}")
    return r


def wait_until(predicate: Callable[[], bool], within: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


@dataclass
class Segment:
    """One L2 segment: a bridge in the switch namespace and its address plan."""

    name: str
    bridge: str
    index: int  # 0 -> 198.18.0.0/24, fd00:198:18::/64; N -> 198.18.N.0/24, fd00:198:18:N::/64

    def ipv4(self, host: int) -> str:
        return f"198.18.{self.index}.{host}"

    def ipv6(self, host: int) -> str:
        return f"fd00:198:18:{self.index:x}::{host:x}" if self.index else f"fd00:198:18::{host:x}"


@dataclass
class Port:
    """A node's interface on a segment, and the switch-side veth end it is paired with."""

    node: Node
    ifname: str
    segment: Segment
    switch_ifname: str
    ipv4: str
    ipv6: str


@dataclass
class Node:
    """A router, client or real server: one namespace, `eth0` on the first segment."""

    lab: Lab
    name: str
    ns: str
    host: int
    ipv4: str = ""
    ipv6: str = ""
    ifname: str = "eth0"
    ports: dict[str, Port] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, ns={self.ns!r}, ipv4={self.ipv4!r})"

    # -- running things inside ------------------------------------------------------------

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *map(str, argv)]

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 30, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion inside the namespace; output captured as text."""
        kw.setdefault("cwd", REPO)
        return _run(self.argv(argv), check=check, timeout=timeout, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start in the namespace, in a new session so its whole group can be ended by PID.

        The process is recorded and ended at `lab.close()` if still running.
        """
        kw.setdefault("cwd", REPO)
        kw["start_new_session"] = True
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(argv), **kw)
        self.lab.processes.append(proc)
        return proc

    def python(
        self, code: str, check: bool = True, timeout: float = 30, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet in the namespace with hakeeper importable."""
        return self.run([PYTHON, "-c", code], check=check, timeout=timeout, **kw)

    def popen_python(self, code: str, **kw: Any) -> subprocess.Popen[Any]:
        return self.popen([PYTHON, "-c", code], **kw)

    # -- looking inside -------------------------------------------------------------------

    def addresses(self, ifname: str | None = None) -> set[str]:
        """The addresses on `ifname` (no prefix length); empty if there is no such link."""
        r = self.run(["ip", "-j", "addr", "show", "dev", ifname or self.ifname], check=False)
        if r.returncode != 0:
            return set()
        return {a["local"] for link in json.loads(r.stdout or "[]") for a in link["addr_info"]}

    def links(self) -> dict[str, dict[str, Any]]:
        return {link["ifname"]: link for link in json.loads(self.run(["ip", "-j", "link"]).stdout)}

    def mac(self, ifname: str | None = None) -> str:
        link = json.loads(
            self.run(["ip", "-j", "link", "show", "dev", ifname or self.ifname]).stdout
        )
        return str(link[0]["address"]).lower()

    def neighbour(self, addr: str, ifname: str | None = None) -> str | None:
        """The MAC the neighbour table holds for `addr`, or None."""
        r = self.run(["ip", "-j", "neigh", "show", addr, "dev", ifname or self.ifname], check=False)
        for entry in json.loads(r.stdout or "[]"):
            if entry.get("lladdr"):
                return str(entry["lladdr"]).lower()
        return None

    def wait_vip(self, addr: str, ifname: str | None = None, within: float = 3.0) -> bool:
        return wait_until(lambda: addr in self.addresses(ifname), within)

    def wait_no_vip(self, addr: str, ifname: str | None = None, within: float = 3.0) -> bool:
        return wait_until(lambda: addr not in self.addresses(ifname), within)

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])


class Lab:
    """A switch namespace with bridges, and nodes plugged into them.

    Use as a context manager (or the `lab` pytest fixture): everything is removed on exit.
    """

    def __init__(self, name: str | None = None) -> None:
        self.prefix = f"{NS_PREFIX}{next(_lab_counter)}-"
        self.name = name or self.prefix.rstrip("-")
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[Any]] = []
        self.nodes: dict[str, Node] = {}
        self.segments: dict[str, Segment] = {}
        self._hosts = (h for h in range(1, 250) if h not in HOST_RESERVED)
        self._closed = False
        try:
            self.switch = self._make_ns("sw")
            # the switch forwards frames and nothing else: no IPv6 of its own (RS, MLD, DAD)
            self._ns_run(self.switch, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            self._ns_run(self.switch, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
            self.lan = self.add_segment("lan")
        except BaseException:
            self.close()
            raise

    # -- building -------------------------------------------------------------------------

    def _make_ns(self, short: str) -> str:
        ns = f"{self.prefix}{short}"
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        LIVE_NAMESPACES.add(ns)
        self._ns_run(ns, ["ip", "link", "set", "lo", "up"])
        return ns

    @staticmethod
    def _ns_run(
        ns: str, argv: Sequence[str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", ns, *argv], check=check)

    def add_segment(self, name: str) -> Segment:
        """A new L2 segment: a bridge, forwarding at once, flooding multicast (VRRP)."""
        if name in self.segments:
            raise LabError(f"segment {name} exists")
        seg = Segment(name=name, bridge=f"br{len(self.segments)}", index=len(self.segments))
        # forward_delay 0 and no STP: ports forward the moment they are up; no multicast
        # snooping: 224.0.0.18 and ff02::12 reach every port without IGMP/MLD joins
        self._ns_run(self.switch, [
            "ip", "link", "add", seg.bridge, "type", "bridge",
            "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0",
        ])  # fmt: skip
        self._ns_run(self.switch, ["ip", "link", "set", seg.bridge, "up"])
        self.segments[name] = seg
        return seg

    def add_node(self, name: str, segments: Sequence[str] = ("lan",)) -> Node:
        """A namespace plugged into `segments` (eth0 on the first, eth1 on the next...)."""
        if name in self.nodes:
            raise LabError(f"node {name} exists")
        if len(name) > 20 or not name.replace("-", "").isalnum():
            raise LabError(f"node name {name!r}: short, letters, digits and '-' only")
        ns = self._make_ns(name)
        node = Node(lab=self, name=name, ns=ns, host=next(self._hosts))
        self.nodes[name] = node
        # no DAD: the addresses (and the link-local adverts go out from) are usable at once
        for key in ("all", "default"):
            node.sysctl(f"net.ipv6.conf.{key}.accept_dad", 0)
            node.sysctl(f"net.ipv6.conf.{key}.dad_transmits", 0)
        for i, seg_name in enumerate(segments):
            self.connect(node, seg_name, f"eth{i}")
        return node

    def add_nodes(self, *names: str) -> list[Node]:
        return [self.add_node(n) for n in names]

    def connect(self, node: Node, segment: str, ifname: str) -> Port:
        """Plug `node` into `segment` as `ifname` with its host number's addresses."""
        seg = self.segments[segment]
        sw_if = f"n{node.host}s{seg.index}"
        # both ends are made inside lab namespaces: nothing ever appears in the host's
        node.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", sw_if,
                  "netns", self.switch])  # fmt: skip
        self._ns_run(self.switch, ["ip", "link", "set", sw_if, "master", seg.bridge, "up"])
        port = Port(node, ifname, seg, sw_if, seg.ipv4(node.host), seg.ipv6(node.host))
        node.run(["ip", "addr", "add", f"{port.ipv4}/24", "dev", ifname])
        node.run(["ip", "addr", "add", f"{port.ipv6}/64", "dev", ifname, "nodad"])
        node.run(["ip", "link", "set", ifname, "up"])
        node.ports[ifname] = port
        if ifname == node.ifname:
            node.ipv4, node.ipv6 = port.ipv4, port.ipv6
            # nodes have no default route; this one lets a plain socket that names no
            # interface send to 224.0.0.18 (tests forging packets), as on a real host
            node.run(["ip", "route", "add", "224.0.0.0/4", "dev", ifname])
        # ready when the kernel has made the link-local (IPv6 adverts leave from it) and
        # nothing is tentative any more
        if not wait_until(lambda: self._ready(node, ifname), within=5.0, step=0.02):
            raise LabError(
                f"{node.name}:{ifname} did not come up: {node.run(['ip', 'addr']).stdout}"
            )
        return port

    @staticmethod
    def _ready(node: Node, ifname: str) -> bool:
        r = node.run(["ip", "-j", "addr", "show", "dev", ifname], check=False)
        info = [a for link in json.loads(r.stdout or "[]") for a in link["addr_info"]]
        link_local = any(a.get("scope") == "link" and a["family"] == "inet6" for a in info)
        tentative = any(a.get("tentative") for a in info)
        return link_local and not tentative

    # -- faults ---------------------------------------------------------------------------

    def _port(self, node: Node, ifname: str | None) -> Port:
        return node.ports[ifname or node.ifname]

    def cut(self, node: Node, ifname: str | None = None) -> None:
        """Hard link loss: the switch side goes down, so the node's end loses carrier."""
        port = self._port(node, ifname)
        self._ns_run(self.switch, ["ip", "link", "set", port.switch_ifname, "down"])

    def restore(self, node: Node, ifname: str | None = None) -> None:
        port = self._port(node, ifname)
        self._ns_run(self.switch, ["ip", "link", "set", port.switch_ifname, "up"])

    def block_vrrp(self, node: Node) -> None:
        """A firewall in `node` dropping VRRP (IP protocol 112) both ways: split brain."""
        self.unblock_vrrp(node)
        rules = (
            f"table inet {NFT_TABLE} {{\n"
            "  chain input { type filter hook input priority -300; meta l4proto 112 drop; }\n"
            "  chain output { type filter hook output priority -300; meta l4proto 112 drop; }\n"
            "}\n"
        )
        node.run(["nft", "-f", "-"], input=rules)

    def unblock_vrrp(self, node: Node) -> None:
        node.run(["nft", "delete", "table", "inet", NFT_TABLE], check=False)

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """End every recorded process (by PID), then delete every namespace. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for proc in reversed(self.processes):
            _end_group(proc)
        # a daemon's own children that left its group still live in our namespaces: they can
        # only have been started there by this lab, so end them by PID too
        for ns in self.namespaces:
            for pid in _netns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for ns in reversed(self.namespaces):
            r = _run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0 and ns in ip_netns_list():
                errors.append(f"{ns}: {r.stderr.strip()}")
            else:
                LIVE_NAMESPACES.discard(ns)
        if errors:
            raise LabError("could not delete namespaces: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end_group(proc: subprocess.Popen[Any], grace: float = 2.0) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it if it lingers; reap `proc`.

    The group is signalled only while its leader is unreaped (alive or a zombie): until then
    the group id cannot belong to anyone else. Members outliving a reaped leader are found
    by the namespace sweep in `Lab.close()`.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not _exited(proc.pid):
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _exited(pid: int) -> bool:
    """Has `pid` exited? Looks without reaping it, so its id stays ours."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _netns_pids(ns: str) -> list[int]:
    r = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit() and int(p) != os.getpid()]
