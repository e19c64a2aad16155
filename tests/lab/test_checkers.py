"""Every health-check kind against a real server in another namespace: up, down, timeouts.

    client (198.18.0.1, fd00:198:18::1) ── lan ── rs (198.18.0.2, fd00:198:18::2)

Real servers of each kind run in `rs` (tests/lab/servers.py, aiosmtpd, the kernel's own ICMP);
the checks run in `client`, each batch in one process calling run_check concurrently
(`python -m tests.lab.servers check`), so what is tested is what the checker process does.
Faults are real: a server killed, nftables dropping packets, the link cut.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.lab.daemons import wait_for
from tests.lab.lab import PYTHON, Lab
from tests.lab.servers import BODY
from tests.unit.checkhelp import self_signed

pytestmark = pytest.mark.lab

TIMEOUT = 1.0  # connect_timeout of every check here
SLOW = TIMEOUT + 0.6  # a timed-out check must have ended by then


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Rig:
    """A client and a real-server node; servers in `rs`, checks from `client`."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.client = lab.add_node("client")
        self.rs = lab.add_node("rs")
        self.v4, self.v6 = self.rs.ipv4, self.rs.ipv6

    def serve(self, mode: str, port: int, *extra: str, v6: bool = False) -> subprocess.Popen[Any]:
        """Start a tests.lab.servers server in `rs`; return once it listens."""
        addr = self.v6 if v6 else self.v4
        proc = self.rs.popen(
            [PYTHON, "-m", "tests.lab.servers", mode, addr, str(port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            line = proc.stdout.readline() if sel.select(timeout=15) else ""
        if line.strip() != "ready":
            proc.kill()
            raise AssertionError(f"{mode} server did not start: {proc.communicate()[1]}")
        return proc

    def stop(self, proc: subprocess.Popen[Any]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def check(self, *specs: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the checks (all at once) in `client`; their outcomes in order."""
        r = self.client.run(
            [PYTHON, "-m", "tests.lab.servers", "check"], input=json.dumps(list(specs)), timeout=60
        )
        return list(json.loads(r.stdout))

    def spec(
        self, kind: str, port: int | None = None, *, v6: bool = False, **fields: Any
    ) -> dict[str, Any]:
        extra = {k: fields.pop(k) for k in ("urls", "virtualhost", "delay_loop") if k in fields}
        return {
            "kind": kind,
            "address": self.v6 if v6 else self.v4,
            "port": port,
            "timeout": TIMEOUT,
            "checker": fields,
            **extra,
        }

    def firewall(self, *rules: str) -> None:
        """nftables in `rs` dropping what `rules` match on input."""
        chain = "; ".join(rules)
        self.rs.run(
            ["nft", "-f", "-"],
            input=(
                "table inet hk_checks {\n"
                f"  chain input {{ type filter hook input priority -300; {chain}; }}\n"
                "}\n"
            ),
        )

    def open_firewall(self) -> None:
        self.rs.run(["nft", "delete", "table", "inet", "hk_checks"])


def assert_outcome(result: dict[str, Any], ok: bool, detail: str | None = None) -> None:
    assert result["ok"] is ok, result
    if detail is not None:
        assert result["detail"] == detail, result


def assert_timed_out(result: dict[str, Any], detail: str) -> None:
    assert_outcome(result, False, detail)
    assert TIMEOUT - 0.1 <= result["took"] < SLOW, result


@pytest.fixture
def rig(lab: Lab) -> Rig:
    return Rig(lab)


# -- TCP_CHECK ----------------------------------------------------------------------------


def test_tcp_check_up_refused_and_dropped(rig: Rig) -> None:
    rig.serve("http", 80)
    rig.serve("http", 80, v6=True)
    up, up6, refused = rig.check(
        rig.spec("TCP_CHECK", 80), rig.spec("TCP_CHECK", 80, v6=True), rig.spec("TCP_CHECK", 81)
    )
    assert_outcome(up, True, "connected")
    assert_outcome(up6, True, "connected")
    assert_outcome(refused, False, "connect failed: connection refused")

    rig.firewall("tcp dport 80 drop")  # SYNs vanish: only the timeout can tell
    (dropped,) = rig.check(rig.spec("TCP_CHECK", 80))
    assert_timed_out(dropped, "timeout connecting after 1s")
    rig.open_firewall()
    assert rig.check(rig.spec("TCP_CHECK", 80))[0]["ok"]


def test_tcp_check_leaves_from_bindto_and_bind_if(rig: Rig) -> None:
    rig.client.run(["ip", "addr", "add", "198.18.0.201/24", "dev", "eth0"])
    rig.serve("http", 80)
    rig.firewall("ip saddr != 198.18.0.201 tcp dport 80 reject with tcp reset")
    plain, bound, on_eth0, on_lo, no_dev = rig.check(
        rig.spec("TCP_CHECK", 80),
        rig.spec("TCP_CHECK", 80, bindto="198.18.0.201", bind_port=4242),
        rig.spec("TCP_CHECK", 80, bindto="198.18.0.201", bind_if="eth0"),
        rig.spec("TCP_CHECK", 80, bindto="198.18.0.201", bind_if="lo"),
        rig.spec("TCP_CHECK", 80, bind_if="nosuchdev"),
    )
    assert_outcome(plain, False, "connect failed: connection refused")
    assert_outcome(bound, True, "connected")
    assert_outcome(on_eth0, True, "connected")
    assert_outcome(on_lo, False)  # no way to the real server through lo
    assert_outcome(no_dev, False, "cannot bind to device nosuchdev: no such device")
    # the fixed source port is free again for the next attempt
    assert rig.check(rig.spec("TCP_CHECK", 80, bindto="198.18.0.201", bind_port=4242))[0]["ok"]


# -- HTTP_GET and genhash ------------------------------------------------------------------


def test_http_get_status_digest_and_timeout(rig: Rig) -> None:
    rig.serve("http", 80)
    rig.serve("http", 80, v6=True)
    rig.serve("hang", 8080)
    # genhash in the client prints the digest a `digest` line needs
    out = rig.client.run(
        [PYTHON, "-m", "hakeeper.check.genhash", "-s", rig.v4, "-p", "80", "-u", "/"]
    ).stdout
    digest = out.strip()
    assert digest == md5(BODY)
    chunked_raw = b"5\r\nhello\r\n7\r\n chunks\r\n0\r\n\r\n"
    results = rig.check(
        rig.spec("HTTP_GET", 80, urls=[{"path": "/", "digest": digest}]),
        rig.spec("HTTP_GET", 80, urls=[{"path": "/", "digest": md5(b"stale page")}]),
        rig.spec("HTTP_GET", 80, urls=[{"path": "/down"}]),
        rig.spec("HTTP_GET", 80, urls=[{"path": "/down", "status_code": [[503, 503]]}]),
        rig.spec("HTTP_GET", 80, urls=[{"path": "/health"}, {"path": "/missing"}]),
        rig.spec(
            "HTTP_GET",
            80,
            http_protocol="1.1",
            urls=[{"path": "/chunked", "digest": md5(chunked_raw)}],
        ),
        rig.spec("HTTP_GET", 80, v6=True, urls=[{"path": "/", "digest": digest}]),
        rig.spec("HTTP_GET", 8080, urls=[{"path": "/"}]),
        rig.spec("HTTP_GET", 81, urls=[{"path": "/"}]),
    )
    good, stale, down, wanted_503, second_fails, chunked, v6, hung, closed = results
    assert_outcome(good, True, "HTTP 200 on / (digest ok)")
    assert_outcome(stale, False, f"digest mismatch on / (got {digest})")
    assert_outcome(down, False, "HTTP 503 on /down")
    assert_outcome(wanted_503, True, "HTTP 503 on /down")
    assert_outcome(second_fails, False, "HTTP 404 on /missing")
    assert_outcome(chunked, True, "HTTP 200 on /chunked (digest ok)")
    assert_outcome(v6, True, "HTTP 200 on / (digest ok)")
    assert_timed_out(hung, "timeout reading / after 1s")
    assert_outcome(closed, False, "connect failed: connection refused")


# -- SSL_GET ------------------------------------------------------------------------------


def test_ssl_get_with_a_self_signed_certificate_and_sni(rig: Rig, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "www.example")
    tmp_path.chmod(0o755)
    rig.serve("http", 443, "--tls", str(cert), str(key))
    rig.serve("http", 80)
    rig.serve("hang", 8443)
    genhash = [PYTHON, "-m", "hakeeper.check.genhash", "-S", "-I", "-V", "www.example"]
    sni = rig.client.run([*genhash, "-s", rig.v4, "-p", "443", "-u", "/sni"]).stdout
    assert sni.strip() == md5(b"www.example")  # the server saw the name genhash sent
    results = rig.check(
        rig.spec("SSL_GET", 443, urls=[{"path": "/", "digest": md5(BODY)}]),
        rig.spec(
            "SSL_GET",
            443,
            enable_sni=True,
            virtualhost="www.example",
            urls=[{"path": "/sni", "digest": sni.strip()}],
        ),
        rig.spec(
            "SSL_GET",
            443,
            virtualhost="www.example",  # no enable_sni: no name sent
            urls=[{"path": "/sni", "digest": sni.strip()}],
        ),
        rig.spec("SSL_GET", 443, urls=[{"path": "/down"}]),
        rig.spec("SSL_GET", 80, urls=[{"path": "/"}]),
        rig.spec("SSL_GET", 8443, urls=[{"path": "/"}]),
    )
    body, with_sni, without_sni, down, plain, hung = results
    assert_outcome(body, True, "HTTP 200 on / (digest ok)")
    assert_outcome(with_sni, True, "HTTP 200 on /sni (digest ok)")
    assert_outcome(without_sni, False, f"digest mismatch on /sni (got {md5(b'-')})")
    assert_outcome(down, False, "HTTP 503 on /down")
    assert_outcome(plain, False)
    assert plain["detail"].startswith("TLS handshake failed"), plain
    assert_timed_out(hung, "timeout in TLS handshake after 1s")


# -- SMTP_CHECK ---------------------------------------------------------------------------


def test_smtp_check_against_aiosmtpd(rig: Rig) -> None:
    smtpd = rig.rs.popen(
        [PYTHON, "-m", "aiosmtpd", "-n", "-l", f"{rig.v4}:25"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = f"import socket; socket.create_connection(({rig.v4!r}, 25), 0.5).close()"
    assert wait_for(lambda: rig.rs.python(probe, check=False).returncode == 0, within=15)
    rig.serve("hang", 2525)
    up, named, hung, closed = rig.check(
        rig.spec("SMTP_CHECK", 25),
        rig.spec("SMTP_CHECK", 25, helo_name="lb1.example"),
        rig.spec("SMTP_CHECK", 2525),
        rig.spec("SMTP_CHECK", 26),
    )
    assert_outcome(up, True, "SMTP 220/250")
    assert_outcome(named, True, "SMTP 220/250")
    assert_timed_out(hung, "timeout waiting for greeting after 1s")
    assert_outcome(closed, False, "connect failed: connection refused")
    rig.stop(smtpd)
    assert_outcome(
        rig.check(rig.spec("SMTP_CHECK", 25))[0], False, "connect failed: connection refused"
    )


# -- DNS_CHECK ----------------------------------------------------------------------------


def test_dns_check_against_a_dnspython_server(rig: Rig) -> None:
    server = rig.serve("dns", 53)
    rig.serve("dns", 53, v6=True)
    rig.serve("udp-silent", 5353)
    results = rig.check(
        rig.spec("DNS_CHECK", 53),
        rig.spec("DNS_CHECK", 53, type="A", name="www.example"),
        rig.spec("DNS_CHECK", 53, type="A", name="missing.example"),
        rig.spec("DNS_CHECK", 53, v6=True),
        rig.spec("DNS_CHECK", 5353),
    )
    soa, a, nxdomain, v6, silent = results
    assert_outcome(soa, True, "DNS NOERROR for SOA .")
    assert_outcome(a, True, "DNS NOERROR for A www.example")
    assert_outcome(nxdomain, False, "DNS NXDOMAIN for A missing.example")
    assert_outcome(v6, True, "DNS NOERROR for SOA .")
    assert_timed_out(silent, "no DNS reply within 1s")
    rig.stop(server)
    (gone,) = rig.check(rig.spec("DNS_CHECK", 53))
    assert_outcome(gone, False, "connection refused")
    assert gone["took"] < 0.5  # the port unreachable came back at once


# -- UDP_CHECK ----------------------------------------------------------------------------


def test_udp_check_replies_silence_and_unreachable(rig: Rig) -> None:
    rig.serve("udp-echo", 7)
    rig.serve("udp-echo", 7, v6=True)
    rig.serve("udp-silent", 9)
    ping, pong = b"hk-ping".hex(), b"hk-pi".hex()
    results = rig.check(
        rig.spec("UDP_CHECK", 7, payload=ping, require_reply=pong),
        rig.spec("UDP_CHECK", 7, payload=ping, require_reply=b"other".hex()),
        rig.spec("UDP_CHECK", 7, v6=True, require_reply=""),
        rig.spec("UDP_CHECK", 9),
        rig.spec("UDP_CHECK", 9, require_reply=""),
        rig.spec("UDP_CHECK", 10),
        rig.spec("UDP_CHECK", 10, v6=True),
    )
    echo, mismatch, echo6, silent, silent_required, closed, closed6 = results
    assert_outcome(echo, True, "reply of 7 bytes")
    assert_outcome(mismatch, False, "reply of 7 bytes does not match")
    assert_outcome(echo6, True, "reply of 32 bytes")  # keepalived's default payload, echoed
    assert_outcome(silent, True, "no ICMP error within 1s")
    assert_timed_out(silent_required, "no reply within 1s")
    for result in (closed, closed6):
        assert_outcome(result, False, "connection refused")
        assert result["took"] < 0.5


# -- PING_CHECK ---------------------------------------------------------------------------


def icmp_socket_kind(rig: Rig) -> str:
    """Which socket PING_CHECK opens in the client: "raw" or "datagram"."""
    code = textwrap.dedent(f"""
        from tests.lab.servers import build_target
        from hakeeper.check import ping
        sock, raw = ping._open(build_target({{"kind": "PING_CHECK", "address": {rig.v4!r}}}))
        print("raw" if raw else "datagram")
    """)
    return rig.client.python(code).stdout.strip()


def test_ping_check_up_then_dropped_then_cut(rig: Rig) -> None:
    # a fresh namespace keeps ping_group_range at "1 0": raw sockets (root) are used
    assert icmp_socket_kind(rig) == "raw"
    raw4, raw6 = rig.check(rig.spec("PING_CHECK"), rig.spec("PING_CHECK", v6=True))
    assert_outcome(raw4, True, "echo reply")
    assert_outcome(raw6, True, "echo reply")
    # opened as keepalived does, the unprivileged ICMP datagram socket is used
    rig.client.sysctl("net.ipv4.ping_group_range", "0 2147483647")
    assert icmp_socket_kind(rig) == "datagram"
    dgram4, dgram6 = rig.check(rig.spec("PING_CHECK"), rig.spec("PING_CHECK", v6=True))
    assert_outcome(dgram4, True, "echo reply")
    assert_outcome(dgram6, True, "echo reply")

    rig.firewall("icmp type echo-request drop", "icmpv6 type echo-request drop")
    dropped4, dropped6 = rig.check(rig.spec("PING_CHECK"), rig.spec("PING_CHECK", v6=True))
    assert_timed_out(dropped4, "no echo reply within 1s")
    assert_timed_out(dropped6, "no echo reply within 1s")
    rig.open_firewall()
    assert rig.check(rig.spec("PING_CHECK"))[0]["ok"]

    rig.lab.cut(rig.rs)
    (cut,) = rig.check(rig.spec("PING_CHECK"))
    assert_timed_out(cut, "no echo reply within 1s")


# -- MISC_CHECK and FILE_CHECK --------------------------------------------------------------


def test_misc_and_file_checks_in_the_checker_namespace(rig: Rig, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)

    def script(name: str, body: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        path.chmod(0o755)
        return str(path)

    weight = script("weight.sh", 'exit "$1"\n')
    # a script that really looks at the real server: can it open a TCP connection?
    connect = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)"
    probe = script("probe.sh", f"exec {PYTHON} -c '{connect}' \"$@\"\n")
    slow = script("slow.sh", "sleep 10\n")
    state = tmp_path / "state"
    rig.serve("http", 80)
    results = rig.check(
        rig.spec("MISC_CHECK", misc_path=[weight, "0"]),
        rig.spec("MISC_CHECK", misc_path=[weight, "1"], misc_dynamic=True),
        rig.spec("MISC_CHECK", misc_path=[weight, "12"], misc_dynamic=True),
        rig.spec("MISC_CHECK", misc_path=[probe, rig.v4, "80"]),
        rig.spec("MISC_CHECK", misc_path=[probe, rig.v4, "81"]),
        rig.spec("MISC_CHECK", misc_path=[slow], misc_timeout=TIMEOUT),
        rig.spec("MISC_CHECK", misc_path=[str(tmp_path / "absent.sh")]),
        rig.spec("FILE_CHECK", file=str(state)),
    )
    zero, one, twelve, probe_up, probe_down, timed_out, absent, no_file = results
    assert_outcome(zero, True, "exit 0")
    assert_outcome(one, False, "exit 1")
    assert_outcome(twelve, True, "exit 12: weight 10")
    assert twelve["weight"] == 10
    assert_outcome(probe_up, True, "exit 0")
    assert_outcome(probe_down, False, "exit 1")
    assert_timed_out(timed_out, "script timed out after 1s")
    assert_outcome(absent, False)
    assert absent["detail"].startswith("script refused:"), absent
    assert_outcome(no_file, True, "file holds 0")  # a missing file reads as 0

    state.write_text("3\n")
    down, reversed_up = rig.check(
        rig.spec("FILE_CHECK", file=str(state)),
        rig.spec("FILE_CHECK", file=str(state), weight_reverse=True),
    )
    assert_outcome(down, False, "file holds 3")
    assert_outcome(reversed_up, True, "file holds 3")
