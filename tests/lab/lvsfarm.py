"""An LVS lab: a director, a client, real servers and a sorry server, each its own namespace.

Shared by the LVS lab tests and the demo. The director has eth0 on the client segment (where
the VIP lives) and eth1 on the real servers' segment; the real servers route back through it,
as LVS-NAT needs.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.lab.daemons import Daemon, wait_for
from tests.lab.lab import Lab, Node

VIP = "198.18.0.100"
DELAY_LOOP = 1.0


class Farm:
    """A director, a client, real servers and a sorry server, each its own namespace."""

    def __init__(self, lab: Lab, n: int = 3) -> None:
        self.lab = lab
        lab.add_segment("rs")
        self.client = lab.add_node("client")
        self.director = lab.add_node("dir", segments=("lan", "rs"))
        self.director.sysctl("net.ipv4.ip_forward", 1)
        gateway = self.director.ports["eth1"].ipv4
        self.servers = [lab.add_node(f"rs{i}", segments=("rs",)) for i in range(1, n + 1)]
        self.sorry = lab.add_node("sorry", segments=("rs",))
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="hk-lvs-"))
        self.tmp.chmod(0o755)
        for node in (*self.servers, self.sorry):
            node.run(["ip", "route", "add", "default", "via", gateway])
            self.start(node)

    def start(self, node: Node) -> None:
        """An HTTP server answering its node's name on port 80 (and 81 for a second VS)."""
        root = self.tmp / node.name
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text(node.name)
        code = textwrap.dedent(f"""
            import functools, http.server, socketserver, threading
            class Server(http.server.ThreadingHTTPServer):
                def server_bind(self):  # http.server's getfqdn() would wait on DNS here
                    socketserver.TCPServer.server_bind(self)
                    self.server_name, self.server_port = "rs", self.server_address[1]
            H = functools.partial(http.server.SimpleHTTPRequestHandler, directory={str(root)!r})
            http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
            for port in (81, 80):
                s = Server(({node.ipv4!r}, port), H)
                threading.Thread(target=s.serve_forever, daemon=port == 81).start()
        """)
        self.procs[node.name] = node.popen_python(code, stderr=subprocess.DEVNULL)
        probe = f"import urllib.request as u; u.urlopen('http://{node.ipv4}/', timeout=1)"
        assert wait_for(lambda: node.python(probe, check=False).returncode == 0, within=5)

    def stop(self, node: Node) -> None:
        proc = self.procs.pop(node.name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def requests(self, n: int, port: int = 80) -> list[str]:
        """`n` sequential requests from the client, each on a new connection."""
        code = textwrap.dedent(f"""
            import json, urllib.request as u
            out = []
            for _ in range({n}):
                try:
                    out.append(u.urlopen('http://{VIP}:{port}/', timeout=1).read().decode())
                except Exception as e:
                    out.append('ERR')
            print(json.dumps(out))
        """)
        return json.loads(self.client.python(code, timeout=n * 1.5 + 10).stdout)


def script(directory: Path, name: str, line: str) -> str:
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{line}" >> {directory}/events.log\n')
    path.chmod(stat.S_IRWXU)
    return str(path)


def events(directory: Path) -> list[str]:
    path = directory / "events.log"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def real_server(node: Node, d: Path, weight: int = 1, extra: str = "", port: int = 80) -> str:
    up = script(d, f"{node.name}-up.sh", f"{node.name} up")
    down = script(d, f"{node.name}-down.sh", f"{node.name} down")
    return f"""
    real_server {node.ipv4} {port} {{
        weight {weight}
        notify_up {up}
        notify_down {down}
        {extra}
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }}
    }}"""


def director_conf(body: str) -> str:
    return f"""
global_defs {{
    router_id dir
    lvs_counters_interval 1
    enable_script_security
    script_user root
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
{body}
"""


def rs_view(daemon: Daemon, vs: str, rs: str) -> dict[str, Any]:
    for v in daemon.state()["virtual_servers"]:
        if v["name"] == vs:
            for r in v["real_servers"]:
                if r["name"] == rs:
                    return r
    raise KeyError((vs, rs))


def vs_view(daemon: Daemon, vs: str) -> dict[str, Any]:
    for v in daemon.state()["virtual_servers"]:
        if v["name"] == vs:
            return v
    raise KeyError(vs)


def kernel_table(director: Node) -> dict[str, dict[str, int]]:
    """What the kernel holds, read back through the nftables backend: service → dest → weight."""
    code = textwrap.dedent("""
        import asyncio, json
        from hakeeper.lvs.backend import select_backend
        table = asyncio.run(select_backend("nftables").load())
        print(json.dumps({str(k): {str(d): v.weight for d, v in e.dests.items()}
                          for k, e in table.items()}))
    """)
    return json.loads(director.python(code).stdout)


def wait_alive(daemon: Daemon, vs: str, rs: str, alive: bool, within: float) -> float:
    start = time.monotonic()
    assert wait_for(lambda: rs_view(daemon, vs, rs)["alive"] is alive, within=within, step=0.1), (
        f"{rs} not {'up' if alive else 'down'} within {within}s"
    )
    return time.monotonic() - start
