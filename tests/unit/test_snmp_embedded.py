"""The embedded SNMP agent serving a DictView, asked by the real net-snmp tools over
127.0.0.1 and ::1: v2c reads, walks that end cleanly, bounded GetBulk, refused communities,
sources and v3 credentials (each counted), garbage datagrams, Sets as configured, and
notifications received by a real snmptrapd. Every process is ended by its PID."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.embedded import (
    Community,
    EmbeddedAgent,
    EmbeddedConfig,
    TrapTarget,
    V3User,
    derive_engine_id,
    from_pysnmp,
    to_pysnmp,
)
from tests.unit.agentxhelp import DictView, sample_view
from tests.unit.test_agentx_snmpd import free_udp_port, wait_for

T = TypeVar("T")
ROOT = (1, 3, 6, 1, 3, 5798)
R = ".1.3.6.1.3.5798"
LAST = f"{R}.10.2.2"
END = "No more variables left in this MIB View (It is past the end of the MIB tree)"
ALICE = V3User("alice", "alice-auth", "alice-priv", auth="SHA", access="rw")
CAROL = V3User("carol", "carol-auth-256", "carol-priv", auth="SHA-256")  # read-only
DAVE = V3User("dave", "dave-auth", "dave-priv", access="none")  # only for notifications
V3_ALICE = ("-v3", "-l", "authPriv", "-u", "alice", "-a", "SHA", "-A", "alice-auth", "-x", "AES")
V3_CAROL = ("-v3", "-l", "authPriv", "-u", "carol", "-a", "SHA-256", "-A", "carol-auth-256")


class Agent:
    """The agent on its own event loop in a thread, as the daemon would run it; the test
    thread runs the net-snmp tools against it."""

    def __init__(self, view: DictView, config: EmbeddedConfig, tmp: Path) -> None:
        self.view = view
        self.agent = EmbeddedAgent(view, config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        (tmp / "persist").mkdir(exist_ok=True)
        # No host config, no host MIBs, no writes to the host's persistent dir.
        self.env = {
            **os.environ,
            "SNMPCONFPATH": str(tmp),
            "SNMP_PERSISTENT_DIR": str(tmp / "persist"),
            "MIBS": "",
        }
        try:
            self.call(self.agent.start())
        except BaseException:
            self.close()
            raise
        self.port = self.agent.addresses[0][1]

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    @property
    def counters(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            return self.agent.counters

        return self.call(read())

    def cli(
        self, tool: str, *args: str, target: str | None = None, timeout: float = 1.0
    ) -> subprocess.CompletedProcess[str]:
        """`args`: options, then "--" and the OIDs (and values); without "--" the last
        argument is the OID (a walk's root)."""
        target = target or f"127.0.0.1:{self.port}"
        if "--" in args:
            opts, rest = args[: args.index("--")], args[args.index("--") + 1 :]
        else:
            opts, rest = args[:-1], args[-1:]
        # -r 0: one try, so a refused request costs one timeout and counts once
        cmd = [tool, "-On", "-t", str(timeout), "-r", "0", *opts, target, *rest]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=15)

    def lines(self, tool: str, *args: str, **kw: Any) -> list[str]:
        r = self.cli(tool, *args, **kw)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    def close(self) -> None:
        if self.thread.is_alive():
            try:
                self.call(self.agent.stop())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


def v2c(community: str = "public") -> tuple[str, ...]:
    return ("-v2c", "-c", community)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def start(view: DictView | None = None, **config: Any) -> Agent:
        config.setdefault("listen", (("127.0.0.1", 0), ("::1", 0)))
        config.setdefault("communities", (Community("public"), Community("private", access="rw")))
        config.setdefault("users", (ALICE, CAROL, DAVE))
        agent = Agent(view or sample_view(ROOT), EmbeddedConfig(**config), tmp_path)
        agents.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in agents:
            agent.close()


# --- reads ------------------------------------------------------------------------------------


def test_v2c_get_every_value_type_and_the_missing_ones(serve: Callable[..., Agent]) -> None:
    a = serve()
    oids = [f"{R}.{i}.0" for i in range(1, 10)]
    got = a.lines("snmpget", *v2c(), "--", *oids, f"{R}.1.7", f"{R}.99.0")
    assert got == [
        f'{R}.1.0 = STRING: "hakeeper"',
        f"{R}.2.0 = INTEGER: -5",
        f"{R}.3.0 = OID: .1.3.6.1.4.1",
        f"{R}.4.0 = IpAddress: 192.0.2.7",
        f"{R}.5.0 = Counter32: 4000000000",
        f"{R}.6.0 = Gauge32: 42",
        f"{R}.7.0 = Timeticks: (12345) 0:02:03.45",
        f"{R}.8.0 = OPAQUE: 01 02 ",
        f"{R}.9.0 = Counter64: 1099511627777",
        f"{R}.1.7 = No Such Instance currently exists at this OID",
        f"{R}.99.0 = No Such Object available on this agent at this OID",
    ]


def test_walks_end_cleanly_and_getnext_past_the_end_is_end_of_mib_view(
    serve: Callable[..., Agent],
) -> None:
    a = serve()
    end = f"{LAST} = {END}"
    walk = a.lines("snmpwalk", *v2c(), R)
    # our last object is also the view's: the walk hears endOfMibView and stops, no error
    assert len(walk) == 14 and walk[0].startswith(f"{R}.1.0 =") and walk[-1] == end
    assert walk[-2].startswith(f"{LAST} =")
    assert a.lines("snmpbulkwalk", *v2c(), "-Cr3", R) == walk
    assert a.lines("snmpwalk", *v2c(), ".1") == walk
    past = a.lines("snmpgetnext", *v2c(), "--", LAST, ".1.4")
    assert past == [end, end.replace(LAST, ".1.4")]


def test_ipv6_listener(serve: Callable[..., Agent]) -> None:
    a = serve()
    port6 = a.agent.addresses[1][1]
    got = a.lines("snmpget", *v2c(), "--", f"{R}.1.0", target=f"udp6:[::1]:{port6}")
    assert got == [f'{R}.1.0 = STRING: "hakeeper"']
    got = a.lines(
        "snmpget", *V3_ALICE, "-X", "alice-priv", "--", f"{R}.2.0", target=f"udp6:[::1]:{port6}"
    )
    assert got == [f"{R}.2.0 = INTEGER: -5"]


def test_getbulk_with_non_repeaters_and_a_huge_max_repetitions_is_capped(
    serve: Callable[..., Agent],
) -> None:
    many = DictView({(*ROOT, 20, i): p.Integer(i) for i in range(1, 2001)})
    a = serve(many, bulk_max_varbinds=50)
    got = a.lines("snmpbulkget", *v2c(), "-Cn1", "-Cr1000000", "--", f"{R}.20.5", f"{R}.20")
    assert len(got) == 50
    assert got[0] == f"{R}.20.6 = INTEGER: 6"  # the non-repeater
    assert got[1:] == [f"{R}.20.{i} = INTEGER: {i}" for i in range(1, 50)]
    assert a.counters["bulk_truncated"] == 1
    # repetitions stop at the end of the view instead of repeating endOfMibView
    short = serve(bulk_max_varbinds=50)
    got = short.lines("snmpbulkget", *v2c(), "-Cr40", "--", f"{R}.10.2.1")
    assert got == [
        f'{R}.10.2.2 = STRING: "VI_2"',
        f"{R}.10.2.2 = {END}",
    ]


def test_getbulk_answer_is_cut_to_the_message_size(serve: Callable[..., Agent]) -> None:
    big = DictView({(*ROOT, 30, i): p.OctetString(bytes(1000)) for i in range(1, 201)})
    a = serve(big, bulk_max_varbinds=1000)
    got = [x for x in a.lines("snmpbulkget", *v2c(), "-Cr200", "--", f"{R}.30") if " = " in x]
    assert 50 < len(got) < 66  # ~64 of 1000 octets fit in 65507 octets
    assert a.counters["bulk_truncated"] == 1


# --- who may ask --------------------------------------------------------------------------------


def test_wrong_community_gets_no_answer_and_is_counted(serve: Callable[..., Agent]) -> None:
    a = serve()
    r = a.cli("snmpget", *v2c("guess"), "--", f"{R}.1.0", timeout=0.3)
    assert r.returncode != 0 and "Timeout" in r.stderr
    assert a.counters["bad_community"] == 1
    assert a.lines("snmpget", *v2c(), "--", f"{R}.1.0")  # the right one still works


def test_source_outside_the_allowed_networks_is_dropped_and_counted(
    serve: Callable[..., Agent],
) -> None:
    a = serve(
        allowed_sources=("127.0.0.1/32",),
        communities=(Community("public"), Community("lab", sources=("127.0.0.2/32",))),
    )
    r = a.cli("snmpget", *v2c(), "--clientaddr=127.0.0.2", "--", f"{R}.1.0", timeout=0.3)
    assert r.returncode != 0 and "Timeout" in r.stderr
    assert a.counters["source_denied"] == 1
    assert a.lines("snmpget", *v2c(), "--", f"{R}.1.0")  # from 127.0.0.1 it is fine
    # a community's own networks replace the default ones
    assert a.lines("snmpget", *v2c("lab"), "--clientaddr=127.0.0.2", "--", f"{R}.1.0")
    r = a.cli("snmpget", *v2c("lab"), "--", f"{R}.1.0", timeout=0.3)
    assert r.returncode != 0 and a.counters["source_denied"] == 2


def test_v3_authpriv_sha_and_sha256(serve: Callable[..., Agent]) -> None:
    a = serve()
    assert a.lines("snmpget", *V3_ALICE, "-X", "alice-priv", "--", f"{R}.1.0") == [
        f'{R}.1.0 = STRING: "hakeeper"'
    ]
    walk = a.lines("snmpbulkwalk", *V3_CAROL, "-x", "AES", "-X", "carol-priv", R)
    assert walk == a.lines("snmpwalk", *v2c(), R)


def test_v3_bad_credentials_get_the_usual_reports_and_are_counted(
    serve: Callable[..., Agent],
) -> None:
    a = serve()
    before = a.counters
    bob = ("-v3", "-l", "authPriv", "-u", "bob", "-a", "SHA", "-A", "alice-auth", "-x", "AES")
    r = a.cli("snmpget", *bob, "-X", "alice-priv", "--", f"{R}.1.0")
    assert r.returncode != 0 and "Unknown user name" in r.stderr
    wrong_auth = (*V3_ALICE[:-4], "-A", "not-alices", "-x", "AES")
    r = a.cli("snmpget", *wrong_auth, "-X", "alice-priv", "--", f"{R}.1.0")
    assert r.returncode != 0 and "Authentication failure" in r.stderr
    r = a.cli("snmpget", *V3_ALICE, "-X", "not-alices", "--", f"{R}.1.0")
    assert r.returncode != 0 and "Decryption error" in r.stderr
    # below authPriv: USM reports the level unsupported for this user
    no_priv = ("-v3", "-l", "authNoPriv", "-u", "alice", "-a", "SHA", "-A", "alice-auth")
    r = a.cli("snmpget", *no_priv, "--", f"{R}.1.0")
    assert r.returncode != 0 and "Unsupported security level" in r.stderr
    # a user without access authenticates fine and is told it is not authorized
    dave = ("-v3", "-l", "authPriv", "-u", "dave", "-a", "SHA", "-A", "dave-auth", "-x", "AES")
    r = a.cli("snmpget", *dave, "-X", "dave-priv", "--", f"{R}.1.0")
    assert r.returncode != 0 and "authorizationError" in r.stderr
    after = a.counters
    for name in (
        "unknown_user",
        "wrong_digest",
        "decryption_errors",
        "unsupported_sec_level",
        "auth_denied",
    ):
        assert after[name] == before[name] + 1, name
    assert after["requests"] == before["requests"]


def test_garbage_datagrams_are_counted_and_the_agent_still_answers(
    serve: Callable[..., Agent],
) -> None:
    a = serve()
    rnd = random.Random(6)
    junk = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))) for _ in range(50)]
    junk += [
        b"",
        b"\x30\x03\x02\x01\x05",  # a message of SNMP version 6
        b"\x30\x82\xff\xff\x02\x01\x01",  # length past the end
        b"\x30\x0e\x02\x01\x01\x04\x06public\xa0\x01\x00",  # v2c, a broken PDU
        b"\x30\x0b\x02\x01\x00\x04\x06public",  # v1: not served
    ]
    for family, port in ((socket.AF_INET, a.port), (socket.AF_INET6, a.agent.addresses[1][1])):
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            for data in junk:
                s.sendto(data, (host, port))

    def refused() -> int:
        c = a.counters
        return c["parse_errors"] + c["bad_version"] + c["undecodable"]

    # every datagram is counted once as refused, none reaches the view
    wait_for(lambda: refused() == 2 * len(junk), what="every junk datagram counted")
    assert a.counters["requests"] == 0 and a.counters["internal_errors"] == 0
    assert a.lines("snmpget", *v2c(), "--", f"{R}.1.0") == [f'{R}.1.0 = STRING: "hakeeper"']


# --- writes -------------------------------------------------------------------------------------


def test_set_through_the_view_phases_for_rw_principals(serve: Callable[..., Agent]) -> None:
    a = serve()
    prio = f"{R}.10.1.1"
    assert a.lines("snmpset", *v2c("private"), "--", prio, "i", "150") == [f"{prio} = INTEGER: 150"]
    assert a.view.values[(*ROOT, 10, 1, 1)] == p.Integer(150)
    assert [c[0] for c in a.view.calls] == ["test", "commit", "cleanup"]
    got = a.lines("snmpset", *V3_ALICE, "-X", "alice-priv", "--", prio, "i", "160")
    assert got == [f"{prio} = INTEGER: 160"]
    assert a.view.values[(*ROOT, 10, 1, 1)] == p.Integer(160)


def test_set_errors_come_from_the_view(serve: Callable[..., Agent]) -> None:
    a = serve()
    rw = v2c("private")
    r = a.cli("snmpset", *rw, "--", f"{R}.1.0", "s", "x")
    assert "notWritable" in r.stderr
    r = a.cli("snmpset", *rw, "--", f"{R}.10.1.1", "s", "x")
    assert "wrongType" in r.stderr
    r = a.cli("snmpset", *rw, "--", f"{R}.10.1.1", "i", "999")
    assert "wrongValue" in r.stderr
    # the second commit fails: the first is undone, the manager hears commitFailed
    a.view.calls.clear()
    a.view.fail_commit.add((*ROOT, 10, 1, 2))
    r = a.cli("snmpset", *rw, "--", f"{R}.10.1.1", "i", "7", f"{R}.10.1.2", "i", "8")
    assert "commitFailed" in r.stderr and "Failed object: " + f"{R}.10.1.2" in r.stderr
    assert [c[0] for c in a.view.calls] == ["test", "test", "commit", "commit", "undo", "cleanup"]
    assert a.view.values[(*ROOT, 10, 1, 1)] == p.Integer(100)


def test_writes_are_refused_unless_configured(serve: Callable[..., Agent]) -> None:
    a = serve()
    prio = f"{R}.10.1.1"
    r = a.cli("snmpset", *v2c(), "--", prio, "i", "150")  # public is read-only by default
    assert "noAccess" in r.stderr
    r = a.cli("snmpset", *V3_CAROL, "-x", "AES", "-X", "carol-priv", "--", prio, "i", "150")
    assert "noAccess" in r.stderr
    assert a.counters["write_denied"] == 2
    assert a.view.calls == [] and a.view.values[(*ROOT, 10, 1, 1)] == p.Integer(100)


# --- notifications ------------------------------------------------------------------------------


@pytest.fixture
def snmptrapd(tmp_path: Path) -> Iterator[tuple[int, Path, Callable[[bytes], None]]]:
    """A real snmptrapd on 127.0.0.1 logging to a file; `arm(engine_id)` starts it knowing
    the v3 user as sent from that engine (a trap receiver keys v3 users by the sender)."""
    port = free_udp_port()
    log = tmp_path / "traps.log"
    procs: list[subprocess.Popen[bytes]] = []

    def arm(engine_id: bytes) -> None:
        conf = tmp_path / "snmptrapd.conf"
        conf.write_text(
            "authCommunity log traps\n"
            f"createUser -e 0x{engine_id.hex()} alice SHA alice-auth AES alice-priv\n"
            "authUser log alice\n"
        )
        (tmp_path / "trapd").mkdir()
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path / "trapd"), "MIBS": ""}
        # %P names the security model and principal: proves which door a trap came in by
        cmd = ["snmptrapd", "-f", "-On", "-C", "-c", str(conf), "-Lf", str(log)]
        cmd += ["-F", r"TRAP %P: %v\n", f"udp:127.0.0.1:{port}"]
        procs.append(subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL))
        wait_for(lambda: log.exists() and "NET-SNMP version" in log.read_text(), what="snmptrapd")

    try:
        yield port, log, arm
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_notifications_reach_snmptrapd_as_v2c_and_v3(
    serve: Callable[..., Agent], snmptrapd: tuple[int, Path, Callable[[bytes], None]]
) -> None:
    port, log, arm = snmptrapd
    a = serve(
        trap_targets=(
            TrapTarget("127.0.0.1", port, community="traps"),
            TrapTarget("127.0.0.1", port, user="alice"),
        ),
        engine_id=bytes.fromhex("8000000005") + b"trap-test",
    )
    arm(a.agent.engine_id)
    trap = (*ROOT, 0, 1)
    name = p.VarBind((*ROOT, 10, 2, 1), p.OctetString(b"VI_1"))
    assert a.call(a.agent.notify(trap, [name])) == 2

    def traps() -> list[str]:
        return [line for line in log.read_text().splitlines() if line.startswith("TRAP")]

    wait_for(lambda: len(traps()) == 2, what="both traps in snmptrapd's log")
    for line in traps():
        assert re.search(r"\.1\.3\.6\.1\.2\.1\.1\.3\.0 = Timeticks: \(\d+\)", line), line
        assert f".1.3.6.1.6.3.1.1.4.1.0 = OID: {R}.0.1" in line
        assert f'{R}.10.2.1 = STRING: "VI_1"' in line
    kinds = sorted(line.split(":")[0] for line in traps())
    assert kinds == [
        "TRAP TRAP2, SNMP v2c, community traps",
        "TRAP TRAP2, SNMP v3, user alice, context ",
    ]
    assert a.counters["notifications_sent"] == 2
    # a notification community that is not a request community opens no door
    r = a.cli("snmpget", *v2c("traps"), "--", f"{R}.1.0", timeout=0.3)
    assert r.returncode != 0 and "Timeout" in r.stderr
    assert a.counters["bad_community"] == 1


def test_notification_failures_are_counted(serve: Callable[..., Agent]) -> None:
    a = serve(trap_targets=(TrapTarget("name.invalid", 162, community="public"),))
    assert a.call(a.agent.notify((*ROOT, 0, 1))) == 0
    assert a.counters["notification_errors"] == 1


# --- pieces -------------------------------------------------------------------------------------


def test_value_translation_round_trips() -> None:
    values = [
        p.Integer(-(2**31)),
        p.OctetString(b"\x00\xff"),
        p.Null(),
        p.ObjectIdentifier((1, 3, 6, 1)),
        p.IpAddress(b"\x0a\x00\x00\x01"),
        p.Counter32(2**32 - 1),
        p.Gauge32(7),
        p.TimeTicks(2**32 - 1),
        p.Opaque(b"x"),
        p.Counter64(2**64 - 1),
        p.NO_SUCH_OBJECT,
        p.NO_SUCH_INSTANCE,
        p.END_OF_MIB_VIEW,
    ]
    for value in values:
        assert from_pysnmp(to_pysnmp(value)) == value


def test_engine_id_is_stable_and_well_formed() -> None:
    assert derive_engine_id("host-a") == derive_engine_id("host-a") != derive_engine_id("host-b")
    eid = derive_engine_id()
    assert eid == derive_engine_id() and eid[0] & 0x80 and eid[4] == 5 and len(eid) == 17


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown v3 user"):
        EmbeddedConfig(trap_targets=(TrapTarget("192.0.2.1", user="nobody"),))
    with pytest.raises(ValueError, match="at least 8"):
        V3User("u", "short", "alsoshort")
    with pytest.raises(ValueError):
        EmbeddedConfig(allowed_sources=("not-a-network",))
    with pytest.raises(ValueError, match="exactly one"):
        TrapTarget("192.0.2.1")
    assert "secret" not in repr(V3User("u", "secret-auth", "secret-priv"))
    assert "secret" not in repr(Community("secret"))


# --- the v2c read path without pysnmp's codec (ber.py) -----------------------------------------


def test_plain_v2c_reads_answer_alike_with_and_without_the_fast_path(
    serve: Callable[..., Agent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same questions to an agent whose v2c reads go through ber.py and to one where
    pysnmp does everything: the net-snmp tools print the same answers."""
    many = {(*ROOT, 20, i): p.Integer(i) for i in range(1, 301)}

    def view() -> DictView:
        return DictView({**sample_view(ROOT).values, **many})

    def ask(a: Agent) -> list[list[str]]:
        oids = [f"{R}.{i}.0" for i in range(1, 10)]
        return [
            a.lines("snmpget", *v2c(), "--", *oids, f"{R}.1.7", f"{R}.99.0"),
            a.lines("snmpwalk", *v2c(), R),
            a.lines("snmpbulkwalk", *v2c(), "-Cr7", R),
            a.lines("snmpgetnext", *v2c(), "--", LAST, ".1.4", ".0.0"),
            a.lines("snmpbulkget", *v2c(), "-Cn2", "-Cr40", "--", f"{R}.1.0", R, f"{R}.20.7"),
            a.lines("snmpget", *v2c("private"), "--", f"{R}.10.1.1"),
        ]

    fast = serve(view())
    answers = ask(fast)
    # every one of them went that way: a walk is one request a line
    assert fast.agent._counts["fast_packets_in"] > len(answers[1]) > 300
    assert fast.counters["packets_in"] >= fast.agent._counts["fast_packets_in"]
    monkeypatch.setattr(EmbeddedAgent, "_fast", lambda self, t, a, d: False)
    slow = serve(view())
    assert ask(slow) == answers
    assert slow.agent._counts["fast_packets_in"] == 0
    assert answers[0][0] == f'{R}.1.0 = STRING: "hakeeper"' and len(answers[1]) == 314
