"""The net layer against a real kernel: addresses, routes, rules, VMACs, VRRP sockets,
gratuitous ARP / unsolicited NA on the wire, and link events, in lab namespaces.

The code under test runs in child processes inside the nodes (`ip netns exec ... python -c`),
never in the pytest process itself, so each sees exactly one namespace as the daemon does.
"""

from __future__ import annotations

import json
import queue
import subprocess
import textwrap
import threading
from ipaddress import IPv6Address
from typing import Any

import pytest

from hakeeper.net.garp import icmp6_checksum
from tests.lab.lab import Node

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
VIP6 = "fd00:198:18::100"
OTHER_MAC = "02:00:5e:ff:00:01"

PRELUDE = """\
import asyncio, errno, ipaddress, json, socket, sys, time
from hakeeper.config.model import VirtualAddress, VirtualRoute, VirtualRule
from hakeeper.net.netlink import Netlink, NetlinkError
ip = ipaddress.ip_address
def out(obj):
    print(json.dumps(obj), flush=True)
# a snippet left indented by mistake fails here, instead of silently joining out()'s body
_ = None
"""


def py(node: Node, body: str, timeout: float = 20) -> list[Any]:
    """Run `body` in `node`; return the JSON lines it printed with `out()`."""
    r = node.python(PRELUDE + textwrap.dedent(body), check=False, timeout=timeout)
    assert r.returncode == 0, f"{node.name}: {r.stderr}\n{r.stdout}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


class Helper:
    """A helper process in a node; its stdout lines are read by a thread into a queue, so a
    line can be waited for with a timeout (select() on a buffered pipe misses lines that
    are already in the buffer)."""

    def __init__(self, node: Node, body: str) -> None:
        self.node = node
        self.proc = node.popen_python(
            PRELUDE + textwrap.dedent(body),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def line(self, within: float) -> str | None:
        try:
            return self.lines.get(timeout=within)
        except queue.Empty:
            return None

    def json(self, within: float = 5) -> Any:
        line = self.line(within)
        assert line, f"{self.node.name}: no output within {within}s: {self.stderr()}"
        return json.loads(line)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()


def start(node: Node, body: str) -> Helper:
    """Start `body` in `node` and wait for its first line, "ready"."""
    helper = Helper(node, body)
    line = helper.line(within=10)
    assert line == '"ready"', f"{node.name}: helper did not start: {line!r} {helper.stderr()}"
    return helper


def ip_json(node: Node, *argv: str) -> Any:
    return json.loads(node.run(["ip", "-j", *argv]).stdout or "[]")


# -- addresses ----------------------------------------------------------------------------


def test_vips_are_added_and_deleted_idempotently(lab):
    r1 = lab.add_node("r1")
    [res] = py(
        r1,
        f"""
        nl = Netlink()
        v4 = VirtualAddress(ip("{VIP}"), 24, label="eth0:vip")
        v6 = VirtualAddress(ip("{VIP6}"), 64)
        for _ in range(2):
            nl.add_vip("eth0", v4)
            nl.add_vip("eth0", v6)
        try:
            nl.add_vip("nosuch0", v4)
            missing = None
        except NetlinkError as e:
            missing = [e.op, e.errno]
        out({{"has": [nl.has_vip("eth0", v4), nl.has_vip("eth0", v6)], "missing": missing}})
        """,
    )
    assert res == {"has": [True, True], "missing": ["add_vip", 19]}
    assert {VIP, VIP6} <= r1.addresses("eth0")
    info = {a["local"]: a for a in ip_json(r1, "addr", "show", "dev", "eth0")[0]["addr_info"]}
    assert info[VIP]["label"] == "eth0:vip" and info[VIP]["prefixlen"] == 24
    # nodad: usable at once, never tentative
    assert info[VIP6].get("nodad") and not info[VIP6].get("tentative")

    [gone] = py(
        r1,
        f"""
        nl = Netlink()
        v4 = VirtualAddress(ip("{VIP}"), 24)
        v6 = VirtualAddress(ip("{VIP6}"), 64)
        for _ in range(2):
            nl.del_vip("eth0", v4)
            nl.del_vip("eth0", v6)
        nl.del_vip("nosuch0", v4)
        out([nl.has_vip("eth0", v4), nl.has_vip("eth0", v6)])
        nl.close()
        """,
    )
    assert gone == [False, False]
    assert not {VIP, VIP6} & r1.addresses("eth0")
    assert r1.ipv4 in r1.addresses("eth0")


def test_link_queries_and_primary_address(lab):
    r1 = lab.add_node("r1")
    r1.run(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])

    body = f"""
        nl = Netlink()
        lladdr = nl.primary_address("eth0", 6)
        out({{
            "up": nl.link_is_up("eth0"),
            "v4": str(nl.primary_address("eth0", 4, exclude=[ip("{VIP}")])),
            "v6": str(lladdr), "v6_ll": lladdr.is_link_local,
            "mac": nl.link_mac("eth0"),
            "index": nl.link_index("eth0") == socket.if_nametoindex("eth0"),
            "nosuch": [nl.link_is_up("nosuch0"), nl.primary_address("nosuch0", 4)],
        }})
    """
    [res] = py(r1, body)
    assert res["up"] is True
    assert res["v4"] == r1.ipv4
    assert res["v6_ll"] is True and res["v6"] in r1.addresses("eth0")
    assert res["mac"] == r1.mac("eth0")
    assert res["index"] is True
    assert res["nosuch"] == [False, None]
    lab.cut(r1)  # the switch side down: eth0 is still admin up but has no carrier
    [res] = py(r1, body)
    assert res["up"] is False


def test_netlink_works_inside_a_running_event_loop(lab):
    """The daemon calls Netlink from its asyncio loop; pyroute2's sync API alone cannot."""
    r1 = lab.add_node("r1")
    [res] = py(
        r1,
        f"""
        async def main():
            nl = Netlink()
            nl.add_vip("eth0", VirtualAddress(ip("{VIP}"), 24))
            up = nl.link_is_up("eth0")
            nl.close()
            return up
        out(asyncio.run(main()))
        """,
    )
    assert res is True
    assert VIP in r1.addresses("eth0")


# -- routes and rules ---------------------------------------------------------------------


def test_routes_and_rules_are_idempotent(lab):
    r1 = lab.add_node("r1")
    routes = "[" + ", ".join([
        'VirtualRoute("198.18.20.0/24", table=100, metric=7)',
        'VirtualRoute("198.18.21.0/24", via="198.18.0.254", table=100)',
        'VirtualRoute("default", via="198.18.0.254", table=101)',
        'VirtualRoute("198.18.22.0/24", type="blackhole")',
        'VirtualRoute("fd00:198:18:30::/64", type="unreachable")',
        'VirtualRoute("fd00:198:18:31::/64", dev="eth0", table=100)',
    ]) + "]"  # fmt: skip
    rules = "[" + ", ".join([
        'VirtualRule(src="198.18.0.0/24", table=100, priority=100)',
        'VirtualRule(dst="198.18.40.0/24", table=101, priority=101, fwmark=5)',
        'VirtualRule(src="fd00:198:18::/64", table=100, priority=102)',
    ]) + "]"  # fmt: skip
    py(
        r1,
        f"""
        nl = Netlink()
        for _ in range(2):
            for r in {routes}:
                nl.add_route(r, "eth0")
            for r in {rules}:
                nl.add_rule(r)
        """,
    )
    t100 = r1.run(["ip", "route", "show", "table", "100"]).stdout
    assert "198.18.20.0/24 dev eth0" in t100 and "metric 7" in t100
    assert "198.18.21.0/24 via 198.18.0.254" in t100
    assert "default via 198.18.0.254" in r1.run(["ip", "route", "show", "table", "101"]).stdout
    assert "blackhole 198.18.22.0/24" in r1.run(["ip", "route"]).stdout
    assert "unreachable fd00:198:18:30::/64" in r1.run(["ip", "-6", "route"]).stdout
    assert (
        "fd00:198:18:31::/64 dev eth0"
        in r1.run(["ip", "-6", "route", "show", "table", "100"]).stdout
    )
    rules4 = r1.run(["ip", "rule"]).stdout
    assert rules4.count("from 198.18.0.0/24 lookup 100") == 1
    assert "to 198.18.40.0/24 fwmark 0x5 lookup 101" in rules4
    assert "from fd00:198:18::/64 lookup 100" in r1.run(["ip", "-6", "rule"]).stdout

    py(
        r1,
        f"""
        nl = Netlink()
        for _ in range(2):
            for r in {rules}:
                nl.del_rule(r)
            for r in {routes}:
                nl.del_route(r, "eth0")
        """,
    )
    assert r1.run(["ip", "route", "show", "table", "100"]).stdout.strip() == ""
    assert r1.run(["ip", "route", "show", "table", "101"]).stdout.strip() == ""
    assert "198.18." not in r1.run(["ip", "rule"]).stdout
    assert "blackhole" not in r1.run(["ip", "route"]).stdout
    assert "unreachable" not in r1.run(["ip", "-6", "route"]).stdout


# -- VMAC ---------------------------------------------------------------------------------


def sysctl(node: Node, key: str) -> str:
    return node.run(["cat", f"/proc/sys/net/{key}"]).stdout.strip()


def test_vmac_is_made_with_the_rfc_mac_and_removed(lab):
    r1 = lab.add_node("r1")
    [res] = py(
        r1,
        """
        nl = Netlink()
        a = nl.ensure_vmac("eth0", "vrrp.51", 51, 4)
        b = nl.ensure_vmac("eth0", "vrrp.51", 51, 4)
        c = nl.ensure_vmac("eth0", "vrrp6.52", 52, 6)
        out({"same": a == b, "index": a == socket.if_nametoindex("vrrp.51"),
             "up": nl.link_is_up("vrrp.51")})
        """,
    )
    assert res == {"same": True, "index": True, "up": True}
    [link] = ip_json(r1, "-d", "link", "show", "dev", "vrrp.51")
    assert link["address"] == "00:00:5e:00:01:33"
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    assert link["link"] == "eth0" and "UP" in link["flags"]
    assert sysctl(r1, "ipv4/conf/vrrp.51/arp_ignore") == "1"
    assert sysctl(r1, "ipv4/conf/vrrp.51/accept_local") == "1"
    assert sysctl(r1, "ipv4/conf/vrrp.51/rp_filter") == "0"
    assert (sysctl(r1, "ipv4/conf/eth0/arp_ignore"), sysctl(r1, "ipv4/conf/eth0/arp_filter")) == (
        "1",
        "1",
    )
    [link6] = ip_json(r1, "-d", "link", "show", "dev", "vrrp6.52")
    assert link6["address"] == "00:00:5e:00:02:34"
    # IPv6 VMAC: no EUI-64 link-local of the virtual MAC, but the base's own link-local
    base_ll = {a for a in r1.addresses("eth0") if a.startswith("fe80:")}
    assert r1.addresses("vrrp6.52") == base_ll

    py(
        r1,
        """
        nl = Netlink()
        nl.ensure_vmac("eth0", "vrrp.51", 51, 4)  # a new process adopts the existing VMAC
        for _ in range(2):
            nl.remove_vmac("vrrp.51")
            nl.remove_vmac("vrrp6.52")
        """,
    )
    links = r1.links()
    assert "vrrp.51" not in links and "vrrp6.52" not in links
    assert "eth0" in links


def test_vmac_with_a_wrong_mac_is_replaced(lab):
    r1 = lab.add_node("r1")
    r1.run(["ip", "link", "add", "vrrp.51", "link", "eth0", "address", OTHER_MAC,
            "type", "macvlan", "mode", "bridge"])  # fmt: skip
    py(r1, 'Netlink().ensure_vmac("eth0", "vrrp.51", 51, 4)')
    [link] = ip_json(r1, "-d", "link", "show", "dev", "vrrp.51")
    assert link["address"] == "00:00:5e:00:01:33"
    assert link["linkinfo"]["info_data"]["mode"] == "private"


# -- VRRP sockets -------------------------------------------------------------------------

RECEIVER = """
from hakeeper.net.vrrpsock import VrrpSocket
async def main():
    def on_packet(payload, src, dst, ttl, ifindex):
        if payload == b"boom":
            raise RuntimeError("a bad packet must not stop the reader")
        out({{"payload": payload.hex(), "src": str(src), "dst": str(dst), "ttl": ttl,
              "ifindex": ifindex == socket.if_nametoindex("eth0")}})
    sock = VrrpSocket("eth0", {family}, on_packet)
    sock.own.update(ip(a) for a in {own})
    out("ready")
    await asyncio.sleep(8)
    sock.close()
asyncio.run(main())
"""

SENDER = """
from hakeeper.net.vrrpsock import VrrpSocket
async def main():
    sock = VrrpSocket("eth0", {family}, None, receive=False, send_ifname={send_if!r})
    for payload, dst in {sends}:
        sock.send(bytes.fromhex(payload), ip(dst), ip({src!r}))
        await asyncio.sleep(0.05)
    sock.close()
asyncio.run(main())
"""


@pytest.mark.parametrize("family", [4, 6])
def test_vrrp_socket_multicast_and_unicast(lab, family):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    if family == 4:
        src, group, unicast = r1.ipv4, "224.0.0.18", r2.ipv4
    else:
        src = next(a for a in r1.addresses("eth0") if a.startswith("fe80:"))
        group, unicast = "ff02::12", r2.ipv6
    rx = start(r2, RECEIVER.format(family=family, own=[]))
    sends = [(b"boom".hex(), group), ("31330a01", group), ("31330a02", unicast)]
    py(r1, SENDER.format(family=family, send_if=None, src=src, sends=sends))
    got = [rx.json(), rx.json()]
    assert got[0] == {"payload": "31330a01", "src": src, "dst": group, "ttl": 255, "ifindex": True}
    assert got[1] == {
        "payload": "31330a02",
        "src": src,
        "dst": unicast,
        "ttl": 255,
        "ifindex": True,
    }


def test_vrrp_socket_ignores_its_own_and_sends_from_a_vmac(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    py(r1, 'Netlink().ensure_vmac("eth0", "vrrp.51", 51, 4)')
    rx = start(r2, RECEIVER.format(family=4, own=[]))
    cap = start(r2, CAPTURE.format(ethertype=0x0800, match="frame[23] == 112", count=1))
    sends = [("31330a03", "224.0.0.18")]
    py(r1, SENDER.format(family=4, send_if="vrrp.51", src=r1.ipv4, sends=sends))
    got = rx.json()
    assert got["payload"] == "31330a03" and got["src"] == r1.ipv4 and got["ttl"] == 255
    frame = bytes.fromhex(cap.json())
    assert frame[6:12] == bytes.fromhex("00005e000133")  # the virtual router MAC
    assert frame[0:6] == bytes.fromhex("01005e000012")  # 224.0.0.18's multicast MAC
    assert frame[15] == 0xC0  # TOS internetwork control, as keepalived sends

    # what comes from a source we send from is our own, looped back: dropped
    rx1 = start(r1, RECEIVER.format(family=4, own=[r2.ipv4]))
    r2.run(["ip", "addr", "add", "198.18.0.50/24", "dev", "eth0"])
    sends = [("31330a04", "224.0.0.18")]
    py(r2, SENDER.format(family=4, send_if=None, src=r2.ipv4, sends=sends))
    sends = [("31330a05", "224.0.0.18")]
    py(r2, SENDER.format(family=4, send_if=None, src="198.18.0.50", sends=sends))
    got = rx1.json()
    assert (got["payload"], got["src"]) == ("31330a05", "198.18.0.50")


# -- GARP and unsolicited NA --------------------------------------------------------------

CAPTURE = """
deadline = time.monotonic() + 8
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("eth0", 0))
s.settimeout(0.2)
out("ready")
seen = 0
while time.monotonic() < deadline and seen < {count}:
    try:
        frame = s.recv(2048)
    except TimeoutError:
        continue
    if int.from_bytes(frame[12:14], "big") == {ethertype} and ({match}):
        out(frame.hex())
        seen += 1
"""


def test_gratuitous_arp_on_the_wire_updates_the_neighbour(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    # r2 believes the VIP is at some other MAC; r1's GARP must override it
    r2.run(["ip", "neigh", "replace", VIP, "lladdr", OTHER_MAC, "dev", "eth0", "nud", "stale"])
    cap = start(
        r2,
        CAPTURE.format(ethertype=0x0806, match="frame[28:32] == bytes([198, 18, 0, 100])", count=1),
    )
    py(r1, f'from hakeeper.net.garp import send_garp\nsend_garp("eth0", ip("{VIP}"))')
    frame = bytes.fromhex(cap.json())
    mac = bytes.fromhex(r1.mac("eth0").replace(":", ""))
    vip = bytes([198, 18, 0, 100])
    assert frame[0:6] == b"\xff" * 6 and frame[6:12] == mac
    # Ethernet/IPv4, hlen 6, plen 4, op 1 (request), sender = target = VIP, target MAC bcast
    assert frame[14:22] == bytes.fromhex("0001080006040001")
    assert frame[22:28] == mac and frame[28:32] == vip
    assert frame[32:38] == b"\xff" * 6 and frame[38:42] == vip
    assert r2.neighbour(VIP) == r1.mac("eth0")


def test_unsolicited_na_on_the_wire_updates_the_neighbour(lab):
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    r2.run(
        ["ip", "-6", "neigh", "replace", VIP6, "lladdr", OTHER_MAC, "dev", "eth0", "nud", "stale"]
    )
    cap = start(
        r2, CAPTURE.format(ethertype=0x86DD, match="frame[20] == 58 and frame[54] == 136", count=1)
    )
    code = f"""
        from hakeeper.net.garp import GarpSender
        g = GarpSender()
        g.send_unsolicited_na("eth0", ip("{VIP6}"))
        g.close()
    """
    py(r1, code)
    frame = bytes.fromhex(cap.json())
    mac = bytes.fromhex(r1.mac("eth0").replace(":", ""))
    assert frame[0:6] == bytes.fromhex("333300000001") and frame[6:12] == mac
    ip6, icmp = frame[14:54], frame[54:]
    assert ip6[7] == 255  # hop limit, or the receiver must drop it (RFC 4861 §7.1.2)
    assert IPv6Address(ip6[8:24]) == IPv6Address(VIP6)
    assert IPv6Address(ip6[24:40]) == IPv6Address("ff02::1")
    assert icmp[0] == 136 and icmp[4] & 0x20  # Override
    assert not icmp[4] & 0x40  # never Solicited to a multicast destination
    assert IPv6Address(icmp[8:24]) == IPv6Address(VIP6)
    assert icmp[24:26] == b"\x02\x01" and icmp[26:32] == mac
    body = icmp[:2] + b"\0\0" + icmp[4:]
    assert int.from_bytes(icmp[2:4], "big") == icmp6_checksum(
        IPv6Address(VIP6), IPv6Address("ff02::1"), body
    )
    assert r2.neighbour(VIP6) == r1.mac("eth0")


# -- link monitor -------------------------------------------------------------------------

LINKMON = """
from hakeeper.net.linkmon import LinkMonitor
async def main():
    mon = LinkMonitor(lambda name, up: out([name, up]))
    mon.start()
    out("ready")
    await asyncio.sleep(8)
    mon.close()
asyncio.run(main())
"""


def test_link_monitor_reports_cut_and_restore_only(lab):
    r1 = lab.add_node("r1")
    mon = start(r1, LINKMON)
    # not an up/down change: no report
    r1.run(["ip", "link", "set", "eth0", "mtu", "1400"])
    lab.cut(r1)
    assert mon.json() == ["eth0", False]
    lab.restore(r1)
    assert mon.json() == ["eth0", True]
    r1.run(["ip", "link", "set", "eth0", "down"])
    assert mon.json() == ["eth0", False]
    r1.run(["ip", "link", "set", "eth0", "up"])
    assert mon.json() == ["eth0", True]
    assert mon.line(within=0.3) is None
