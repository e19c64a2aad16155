"""The nftables LVS backend for real: a director NATs a VIP to three real servers.

    client (lan) ── director (lan + rs, forwarding) ── rs1, rs2, rs3 (rs, default via director)

Every real server answers HTTP with its own name on ports 80 and 81 (IPv4 and IPv6). The
backend runs in the director's namespace, one short process per step, so every step also
exercises adoption: each process starts from `load()` of what the previous one left.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from typing import Any

import pytest

from tests.lab.lab import PYTHON, Lab, Node

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
VIP6 = "fd00:198:18::100"

SERVER = textwrap.dedent("""
    import asyncio, socket, sys
    NAME = sys.argv[1].encode()

    async def handle(reader, writer):
        try:
            while True:  # HTTP/1.1 keep-alive: one answer per request, same connection
                head = await asyncio.wait_for(reader.readuntil(b"\\r\\n\\r\\n"), 10)
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s"
                             % (len(NAME), NAME))
                await writer.drain()
        except Exception:
            pass
        writer.close()

    async def main():
        servers = []
        for port in (80, 81):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
            servers.append(await asyncio.start_server(handle, sock=s))
        print("ready", flush=True)
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())
""")

# runs on the client (or the director): sequential requests, each on a new connection
REQUESTS = textwrap.dedent("""
    import json, socket, sys
    args = json.loads(sys.stdin.read())

    def get(host, port, source=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(1)
        try:
            if source:
                s.bind((source, 0))
            s.connect((host, port))
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""
            while b"\\r\\n\\r\\n" not in data or len(data.split(b"\\r\\n\\r\\n", 1)[1]) < 3:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\\r\\n\\r\\n", 1)[1].decode() or "EMPTY"
        except OSError as e:
            return "ERR " + type(e).__name__
        finally:
            s.close()

    out = [get(args["host"], args["port"], src) for src in args["sources"]
           for _ in range(args["n"])]
    print(json.dumps(out))
""")

# runs on the director: the nftables backend, driven one step per process
DRIVER = textwrap.dedent("""
    import asyncio, json, sys
    from hakeeper.lvs.nft import NftBackend, parse_service_key
    from hakeeper.lvs.reconcile import diff
    from hakeeper.lvs.table import Dest, DestKey, Entry, Service

    def to_table(spec):
        table = {}
        for s in spec:
            key = parse_service_key(s["key"])
            svc = Service(key, s["sched"], tuple(s.get("flags", ())), s.get("persistence"),
                          s.get("netmask"))
            dests = {DestKey(a, p): Dest(DestKey(a, p), "NAT", w) for a, p, w in s["dests"]}
            table[key] = Entry(svc, dests)
        return table

    def to_spec(table):
        out = []
        for key, e in table.items():
            s = e.service
            out.append({"key": str(key), "sched": s.sched, "flags": list(s.flags),
                        "persistence": s.persistence_timeout, "netmask": s.netmask,
                        "dests": sorted([d.key.address, d.key.port, d.weight]
                                        for d in e.dests.values())})
        return sorted(out, key=lambda s: s["key"])

    async def main(cmd):
        b = NftBackend()
        current = await b.load()
        out = {"before": to_spec(current)}
        if cmd["op"] == "sync":
            ops = diff(current, to_table(cmd["table"]))
            await b.apply(ops)
            out["ops"] = [type(op).__name__ for op in ops]
            out["after"] = to_spec(await NftBackend().load())  # a fresh instance adopts it
            await b.close(remove=False)
        elif cmd["op"] == "counters":
            out["counters"] = [[str(s), str(d) if d else None, c.conns]
                               for (s, d), c in (await b.counters()).items()]
            await b.close(remove=False)
        elif cmd["op"] == "close":
            await b.close(remove=True)
        print(json.dumps(out))

    asyncio.run(main(json.loads(sys.stdin.read())))
""")


class Farm:
    def __init__(self, lab: Lab) -> None:
        lab.add_segment("rs")
        self.client = lab.add_node("client")
        self.director = d = lab.add_node("dir", segments=("lan", "rs"))
        d.sysctl("net.ipv4.ip_forward", 1)
        d.sysctl("net.ipv6.conf.all.forwarding", 1)
        d.run(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])
        d.run(["ip", "addr", "add", f"{VIP6}/64", "dev", "eth0", "nodad"])
        gw4, gw6 = d.ports["eth1"].ipv4, d.ports["eth1"].ipv6
        self.servers = [lab.add_node(f"rs{i}", segments=("rs",)) for i in (1, 2, 3)]
        procs = []
        for node in self.servers:
            node.run(["ip", "route", "add", "default", "via", gw4])
            node.run(["ip", "-6", "route", "add", "default", "via", gw6])
            procs.append(node.popen([PYTHON, "-c", SERVER, node.name], stdout=-1, text=True))
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def rs(self, node: Node, port: int = 80, weight: int = 1, v6: bool = False) -> list[Any]:
        return [node.ipv6 if v6 else node.ipv4, port, weight]

    def sync(self, *services: dict[str, Any]) -> dict[str, Any]:
        out = self._drive({"op": "sync", "table": list(services)})
        # adoption: a new backend instance reads back exactly the table applied
        want = sorted((_norm(s) for s in services), key=lambda s: s["key"])
        assert out["after"] == want, (out["after"], want)
        return out

    def counters(self) -> dict[tuple[str, str | None], int]:
        rows = self._drive({"op": "counters"})["counters"]
        return {(s, d): n for s, d, n in rows}

    def close(self) -> None:
        self._drive({"op": "close"})

    def _drive(self, cmd: dict[str, Any]) -> dict[str, Any]:
        r = self.director.run([PYTHON, "-c", DRIVER], input=json.dumps(cmd))
        return json.loads(r.stdout)

    def requests(
        self,
        n: int,
        port: int = 80,
        host: str = VIP,
        sources: list[str] | None = None,
        node: Node | None = None,
    ) -> list[str]:
        args = {"host": host, "port": port, "n": n, "sources": sources or [None]}
        total = n * len(args["sources"])
        r = (node or self.client).run(
            [PYTHON, "-c", REQUESTS], input=json.dumps(args), timeout=total * 1.5 + 10
        )
        return json.loads(r.stdout)

    def ruleset(self) -> list[dict[str, Any]]:
        r = self.director.run(["nft", "-j", "list", "table", "inet", "hakeeper_lvs"])
        return json.loads(r.stdout)["nftables"]


def service(key: str, sched: str, dests: list[list[Any]], **kw: Any) -> dict[str, Any]:
    return {"key": key, "sched": sched, "dests": dests, **kw}


def _norm(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": s["key"],
        "sched": s["sched"],
        "flags": list(s.get("flags", ())),
        "persistence": s.get("persistence"),
        "netmask": s.get("netmask"),
        "dests": sorted(s["dests"]),
    }


def of_service(items: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    """Everything nft holds for one service: chains, rules (handles, counters), its map."""
    out: dict[str, Any] = {}
    for item in items:
        for kind in ("chain", "rule", "map", "set", "counter"):
            obj = item.get(kind)
            if obj is None:
                continue
            name = obj.get("chain") if kind == "rule" else obj.get("name")
            if name is not None and sid in name:
                out.setdefault(f"{kind} {name}", []).append(obj)
    return out


def test_schedulers_drain_and_remove(lab: Lab) -> None:
    farm = Farm(lab)
    r1, r2, r3 = farm.servers
    svc = f"{VIP}:80/TCP"

    # rr: exactly round-robin, in a fixed cycle
    farm.sync(service(svc, "rr", [farm.rs(n) for n in farm.servers]))
    got = farm.requests(9)
    assert Counter(got) == {"rs1": 3, "rs2": 3, "rs3": 3}, got
    assert got[:3] * 3 == got, got

    # wrr 1/2/3: IPVS's interleaved order, exact proportions per cycle of 6
    farm.sync(service(svc, "wrr", [farm.rs(r1, 80, 1), farm.rs(r2, 80, 2), farm.rs(r3, 80, 3)]))
    got = farm.requests(12)
    assert got == ["rs3", "rs2", "rs3", "rs1", "rs2", "rs3"] * 2, got
    assert farm.counters()[(svc, f"{r3.ipv4}:80")] >= 6

    # drain: a connection made before weight 0 keeps its server; new ones never go there
    code = textwrap.dedent(f"""
        import socket, sys
        s = socket.create_connection(({VIP!r}, 80), timeout=2)
        def ask():
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            data = b""
            while b"\\r\\n\\r\\n" not in data or len(data.split(b"\\r\\n\\r\\n", 1)[1]) < 3:
                chunk = s.recv(4096)
                if not chunk:
                    return "CLOSED"
                data += chunk
            return data.split(b"\\r\\n\\r\\n", 1)[1].decode()
        print(ask(), flush=True)
        sys.stdin.readline()
        print(ask(), flush=True)
    """)
    held = farm.client.popen([PYTHON, "-c", code], stdin=-1, stdout=-1, text=True)
    assert held.stdout is not None and held.stdin is not None
    first = held.stdout.readline().strip()
    assert first in ("rs1", "rs2", "rs3"), first
    weights = {"rs1": 1, "rs2": 2, "rs3": 3, first: 0}
    farm.sync(service(svc, "wrr", [farm.rs(n, 80, weights[n.name]) for n in farm.servers]))
    got = farm.requests(12)
    assert first not in got and "ERR" not in " ".join(got), got
    held.stdin.write("\n")
    held.stdin.flush()
    assert held.stdout.readline().strip() == first  # conntrack kept the NAT binding
    held.wait(5)

    # sh: each source sticks to one server; sources spread over more than one
    farm.client.run(["ip", "addr", "add", "198.18.0.200/24", "dev", "eth0"])
    sources = [f"198.18.0.{200 + i}" for i in range(8)]
    for src in sources[1:]:
        farm.client.run(["ip", "addr", "add", f"{src}/24", "dev", "eth0"])
    farm.sync(service(svc, "sh", [farm.rs(n) for n in farm.servers]))
    got = farm.requests(4, sources=sources)
    per_source = [set(got[i * 4 : i * 4 + 4]) for i in range(len(sources))]
    assert all(len(s) == 1 and "ERR" not in next(iter(s)) for s in per_source), got
    assert len(set(got)) > 1, got

    # DelDest: rs2 leaves the rotation
    out = farm.sync(service(svc, "rr", [farm.rs(r1), farm.rs(r3)]))
    assert "DelDest" in out["ops"], out
    assert Counter(farm.requests(6)) == {"rs1": 3, "rs3": 3}

    # clean stop: nothing of hakeeper's stays in the kernel
    farm.close()
    tables = farm.director.run(["nft", "list", "tables"]).stdout
    assert "hakeeper" not in tables, tables
    assert set(farm.requests(1)) == {"ERR ConnectionRefusedError"}


def test_adopt_change_one_service_counters(lab: Lab) -> None:
    farm = Farm(lab)
    r1, r2, _ = farm.servers
    a, b = f"{VIP}:80/TCP", f"{VIP}:81/TCP"
    svc_a = service(a, "rr", [farm.rs(n) for n in farm.servers])
    svc_b = service(b, "wrr", [farm.rs(r1, 81, 1), farm.rs(r2, 81, 1)])
    farm.sync(svc_a, svc_b)
    assert Counter(farm.requests(6)) == {"rs1": 2, "rs2": 2, "rs3": 2}
    assert Counter(farm.requests(4, port=81)) == {"rs1": 2, "rs2": 2}
    counters = farm.counters()
    assert counters[(a, None)] == 6
    assert all(counters[(a, f"{n.ipv4}:80")] == 2 for n in farm.servers), counters
    assert counters[(b, f"{r1.ipv4}:81")] == 2

    before = farm.ruleset()
    # a one-destination change of service b: one op, in one transaction
    svc_b2 = service(b, "wrr", [farm.rs(r1, 81, 1), farm.rs(r2, 81, 3)])
    out = farm.sync(svc_a, svc_b2)
    assert out["before"] == sorted([_norm(svc_a), _norm(svc_b)], key=lambda s: s["key"])
    assert out["ops"] == ["EditDest"], out
    after = farm.ruleset()
    # service a: same chains, same rule handles, same counters, same map
    assert of_service(after, "TCP/198.18.0.100/80") == of_service(before, "TCP/198.18.0.100/80")
    assert of_service(after, "TCP/198.18.0.100/81") != of_service(before, "TCP/198.18.0.100/81")
    assert Counter(farm.requests(8, port=81)) == {"rs1": 2, "rs2": 6}
    counters = farm.counters()
    assert counters[(b, f"{r2.ipv4}:81")] == 2 + 6  # per-destination counts survive the change
    assert counters[(a, None)] == 6

    # persistence switched on for b: its destination chains are rebuilt, their counts kept
    svc_b3 = {**svc_b2, "persistence": 60}
    out = farm.sync(svc_a, svc_b3)
    assert out["ops"] == ["EditService"], out
    assert farm.counters()[(b, f"{r2.ipv4}:81")] == 8
    assert len(set(farm.requests(4, port=81))) == 1  # one client, one server now

    # a client on the director itself goes through the output hook
    assert Counter(farm.requests(3, node=farm.director)) == {"rs1": 1, "rs2": 1, "rs3": 1}

    # the service is deleted with its objects; the other stays
    farm.sync(svc_a)
    assert of_service(farm.ruleset(), "TCP/198.18.0.100/81") == {}
    assert set(farm.requests(1, port=81)) == {"ERR ConnectionRefusedError"}
    farm.close()
    assert "hakeeper" not in farm.director.run(["nft", "list", "tables"]).stdout


def test_fwmark_persistence_and_ipv6(lab: Lab) -> None:
    farm = Farm(lab)
    r1, r2, r3 = farm.servers
    # the operator marks what the fwmark service balances: TCP port 8080 to the VIP
    farm.director.run(
        ["nft", "-f", "-"],
        input=textwrap.dedent(f"""
        table inet marking {{
            chain pre {{
                type filter hook prerouting priority mangle;
                ip daddr {VIP} tcp dport 8080 meta mark set 7
            }}
        }}
    """),
    )
    fw = "fwmark:7/TCP/v4"
    farm.sync(service(fw, "rr", [farm.rs(r1, 80), farm.rs(r2, 81)]))
    assert Counter(farm.requests(4, port=8080)) == {"rs1": 2, "rs2": 2}

    # persistence with a /24 granularity: every source of the client's /24 sticks to one
    # server while rr would spread them; another service stays round-robin
    farm.client.run(["ip", "addr", "add", "198.18.0.201/24", "dev", "eth0"])
    farm.client.run(["ip", "addr", "add", "198.18.0.202/24", "dev", "eth0"])
    p = f"{VIP}:80/TCP"
    persistent = service(
        p, "rr", [farm.rs(n) for n in farm.servers], persistence=30, netmask="255.255.255.0"
    )
    fw_svc = service(fw, "rr", [farm.rs(r1, 80), farm.rs(r2, 81)])
    farm.sync(fw_svc, persistent)
    got = farm.requests(3, sources=[farm.client.ipv4, "198.18.0.201", "198.18.0.202"])
    assert len(set(got)) == 1 and got[0].startswith("rs"), got
    # that server drained: the clients are balanced afresh, and stick to their new one
    stuck = {"rs1": r1, "rs2": r2, "rs3": r3}[got[0]]
    drained = service(
        p,
        "rr",
        [farm.rs(n, 80, 0 if n is stuck else 1) for n in farm.servers],
        persistence=30,
        netmask="255.255.255.0",
    )
    farm.sync(fw_svc, drained)
    again = farm.requests(4, sources=[farm.client.ipv4, "198.18.0.201"])
    assert len(set(again)) == 1 and got[0] not in again, again

    # IPv6: a service on the v6 VIP, wrr to the servers' v6 addresses
    v6 = f"[{VIP6}]:80/TCP"
    farm.sync(
        fw_svc,
        drained,
        service(v6, "wrr", [farm.rs(r1, 80, 1, v6=True), farm.rs(r3, 80, 2, v6=True)]),
    )
    assert farm.requests(6, host=VIP6) == ["rs3", "rs1", "rs3"] * 2
    farm.close()


FUZZ = textwrap.dedent("""
    import asyncio, random, sys
    from hakeeper.lvs.nft import SCHEDULERS, NftBackend
    from hakeeper.lvs.reconcile import diff
    from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey

    POOL = [ServiceKey(4, "TCP", "198.18.0.100", 80), ServiceKey(4, "UDP", "198.18.0.100", 53),
            ServiceKey(6, "TCP", "fd00:198:18::100", 443), ServiceKey(4, "TCP", fwmark=7),
            ServiceKey(6, "SCTP", fwmark=9)]

    def random_table(rng):
        table = {}
        for key in rng.sample(POOL, rng.randint(0, len(POOL))):
            sched = rng.choice(SCHEDULERS)
            flags = rng.choice([(), (sched + "-port",)]) if sched in ("sh", "mh") else ()
            timeout, netmask = rng.choice([None, 60, 300]), None
            if timeout:
                netmask = rng.choice(["255.255.255.0", "255.255.255.255"] if key.family == 4
                                     else ["64", "128"])
            dests = {}
            for h in rng.sample(range(1, 7), rng.randint(0, 5)):
                addr = f"198.18.1.{h}" if key.family == 4 else f"fd00:198:18:1::{h}"
                dk = DestKey(addr, rng.choice([80, 0]) if key.fwmark else 80)
                dests[dk] = Dest(dk, "NAT", rng.randint(0, 3))
            table[key] = Entry(Service(key, sched, flags, timeout, netmask), dests)
        return table

    async def main(seed, rounds):
        rng, current, backend = random.Random(seed), {}, NftBackend()
        for i in range(rounds):
            want = random_table(rng)
            await backend.apply(diff(current, want))
            got = await NftBackend().load()
            assert got == want, (i, got, want)
            current = want
        await backend.close(remove=True)
        print("ok")

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
""")


def test_random_changes_are_accepted_and_read_back(lab: Lab) -> None:
    """Seeded random tables, one after another: every batch the backend makes is one the
    kernel accepts, and a fresh instance reads back exactly the table applied."""
    node = lab.add_node("dir")
    assert node.run([PYTHON, "-c", FUZZ, "20240601", "150"], timeout=60).stdout.strip() == "ok"
    assert "hakeeper" not in node.run(["nft", "list", "tables"]).stdout
